"""The server half of each option: settings the applications need for the topology to work.

A balancer configuration is only half of what the guides describe: Lightstreamer must announce
each server's direct host name (control_link_address) and split its ports into create and
control ports, and Verastream clients must connect to the balancer's address instead of asking
the management server "via domain". Every target's output README lists these, from here.
"""
from __future__ import annotations

from .model import CookieStickiness, Service, Topology
from .rules.common import cite


def _lightstreamer(model: Topology, svc: Service) -> list[tuple[str, tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...]]] = []
    routes = model.routes_to(svc.name)
    create = sorted({r.port_name for _l, r in routes if r.server is None})
    control = sorted({r.port_name for _l, r in routes if r.server is not None})
    for s in svc.servers:
        if s.direct_host:
            out.append((f"server `{s.name}` ({s.address}): `<control_link_address>{s.direct_host}"
                        "</control_link_address>` in lightstreamer_conf.xml, the name its clients use to reach it "
                        "directly", ("004", "§2.2 Leverage Application Stickiness - Options 1.B")))
    if create and control and set(create).isdisjoint(control):
        for s in svc.servers:
            ports = [f"{s.port(p)} `<port_type>CREATE_ONLY</port_type>`" for p in create] + \
                    [f"{s.port(p)} `<port_type>CONTROL_ONLY</port_type>`" for p in control]
            out.append((f"server `{s.name}`: port " + ", port ".join(ports) + " (the balanced host creates "
                        "sessions, the direct host controls them)",
                        ("004", "§2.2.1 Option 1.B.1 - Servers Behind the Load Balancer")))
    st = svc.stickiness
    if st.mode == "application" or isinstance(st, CookieStickiness) and st.max_lifetime_ms is not None:
        out.append(("to even out long sessions after a failure, `<max_session_duration_minutes>` on the servers "
                    "ends every session after that time (the clients recover; a trade-off)",
                    ("004", "§5 How to Force a Rebalancing")))
    return out


def _verastream(model: Topology, svc: Service) -> list[tuple[str, tuple[str, ...]]]:
    ends = sorted({f"{l.address}:{l.port}" for l, _r in model.routes_to(svc.name)})
    if not ends:
        return []
    return [(f"clients (connector API, Web Builder projects, web services) connect to {', '.join(ends)} directly, "
             "not \"via domain\": the balancer makes the management server's weighted draw",
             ("002", "Implementing Host Integrator Domains", "002", "What Happens At Runtime"))]


def _flynet(model: Topology, svc: Service) -> list[tuple[str, tuple[str, ...]]]:
    fb = svc.fallback
    if fb is None or fb.kind != "server":
        return []
    return [(f"the fallback server {fb.address}:{fb.port} must always answer (e.g. a Flynet server kept out of "
             "the pool), so users read the emulator's own 'No sessions available'", ("001", "Minimum Servers"))]


_BY_PROFILE = {"lightstreamer": _lightstreamer, "verastream": _verastream, "flynet": _flynet}


def application_settings(model: Topology) -> list[tuple[str, list[tuple[str, tuple]]]]:
    """(service, [(setting, citation refs)]) for every routed service whose application needs
    settings of its own."""
    out: list[tuple[str, list[tuple[str, tuple]]]] = []
    for svc in model.services:
        lines = _BY_PROFILE.get(svc.profile, lambda m, s: [])(model, svc) if model.routes_to(svc.name) else []
        if lines:
            out.append((svc.name, lines))
    return out


def markdown(model: Topology) -> list[str]:
    """The README section (markdown lines), or nothing when no application needs a setting."""
    settings = application_settings(model)
    if not settings:
        return []
    lines = ["## Settings the applications need", "",
             "The balancer configuration relies on these settings on the application side:", ""]
    for name, items in settings:
        lines.append(f"Service `{name}`:")
        lines += [f"- {text}" for text, _refs in items]
        refs = []
        for _text, r in items:
            for pair in zip(r[::2], r[1::2]):
                if pair not in refs:
                    refs.append(pair)
        lines += ["", "Source: " + cite(*[x for pair in refs for x in pair]), ""]
    return lines
