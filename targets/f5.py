"""F5 BIG-IP target: bigip.conf for `tmsh load sys config merge file`, plus the iRules.

Output:
  bigip.conf        monitors, persistence and profiles, pools, iRules (`ltm rule`), virtual servers
  irules/NAME.tcl   a copy of each `ltm rule` body, byte for byte, for review and linting
  README.md         how to install the certificates and load the file, and what was not verified

The plan (f5_lower) decides everything; this module only writes it as tmsh objects through the
one serialiser (f5_tmsh.dump). Every object lives in /Common and is named `<topology>.<name>`.
"""
from __future__ import annotations

import ipaddress
from typing import Callable

from lbc import appsettings
from lbc.model import Topology

from . import f5_lower
from .f5_lower import Plan
from .f5_tmsh import Block, Obj, dump
from lbc.targets import spec

_OPTIONS = {  # client-ssl options for the lowest accepted TLS version
    "1.0": ["dont-insert-empty-fragments", "no-ssl"],
    "1.1": ["dont-insert-empty-fragments", "no-ssl", "no-tlsv1"],
    "1.2": ["dont-insert-empty-fragments", "no-ssl", "no-tlsv1", "no-tlsv1.1"],
    "1.3": ["dont-insert-empty-fragments", "no-ssl", "no-tlsv1", "no-tlsv1.1", "no-tlsv1.2"],
}


def _path_fn(topology: str):
    return lambda local: f"/Common/{topology}.{local}"


def _member_name(address: str, port: int, fqdn: bool) -> str:
    ipv6 = not fqdn and ":" in address    # a member's address is an IP address in normal form, or a name
    return f"/Common/{address}{'.' if ipv6 else ':'}{port}"


def objects(plan: Plan) -> list[Obj]:
    """Every tmsh object of the plan, kind by kind in the order bigip.conf lists them."""
    p = _path_fn(plan.topology)
    return [obj for kind in _KINDS for obj in kind(plan, p)]


def _monitors(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.monitors."""
    out: list[Obj] = []
    for m in plan.monitors:
        body: Block = [("defaults-from", f"/Common/{m.kind}"),
                ("destination", f"*:{m.alias_port}" if m.alias_port else "*:*"),
                ("interval", str(m.interval))]
        if m.recv is not None:
            body.append(("recv", m.recv))
        if m.recv_disable is not None:
            body.append(("recv-disable", m.recv_disable))
        if m.send is not None:
            body.append(("send", m.send))
        body += [("time-until-up", str(m.time_until_up)), ("timeout", str(m.timeout))]
        out.append(Obj(f"ltm monitor {m.kind}", p(m.local), body))
    return out


def _persistences(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.persistences."""
    out: list[Obj] = []
    for s in plan.persistences:
        if s.kind == "cookie":
            out.append(Obj("ltm persistence cookie", p(s.local), [
                ("cookie-name", s.cookie_name), ("defaults-from", "/Common/cookie"),
                ("expiration", str(s.expiration)), ("httponly", "enabled"), ("method", "insert"),
                ("secure", "enabled" if s.secure else "disabled")]))
        else:
            out.append(Obj("ltm persistence source-addr", p(s.local), [
                ("defaults-from", "/Common/source_addr"), ("hash-algorithm", "carp" if s.carp else "default")]
                + ([("mirror", "enabled")] if s.mirror else []) + [("timeout", str(s.timeout))]))
    return out


def _client_ssl(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.client_ssl."""
    out: list[Obj] = []
    for c in plan.client_ssl:
        chain = [("cert", p(c.cert))] + ([("key", p(c.key))] if c.key else [])
        body: Block = []
        if c.peer_cert_mode != "ignore":
            body.append(("authenticate", "once"))
        if c.ca_file:
            body.append(("ca-file", p(c.ca_file)))
        body += [("cert-key-chain", [(c.cert.removesuffix(".crt").replace(".", "_"), chain)]),
                 ("ciphers", c.ciphers),
                 ("defaults-from", "/Common/clientssl"),
                 ("options", [(o, None) for o in _OPTIONS[c.min_version]]),
                 ("peer-cert-mode", c.peer_cert_mode)]
        if c.server_name:
            body.append(("server-name", c.server_name))
        if c.sni_default:
            body.append(("sni-default", "true"))
        out.append(Obj("ltm profile client-ssl", p(c.local), body))
    return out


def _server_ssl(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.server_ssl."""
    out: list[Obj] = []
    for srv in plan.server_ssl:
        body: Block = []
        if srv.authenticate_name:
            body.append(("authenticate-name", srv.authenticate_name))
        if srv.ca_file:
            body.append(("ca-file", p(srv.ca_file)))
        body += [("defaults-from", "/Common/serverssl"),
                 ("expire-cert-response-control", "drop" if srv.verify else "ignore"),
                 ("peer-cert-mode", "require" if srv.verify else "ignore")]
        if srv.server_name:
            body.append(("server-name", srv.server_name))
        body.append(("untrusted-cert-response-control", "drop" if srv.verify else "ignore"))
        out.append(Obj("ltm profile server-ssl", p(srv.local), body))
    return out


def _http_profiles(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.http."""
    out: list[Obj] = []
    for h in plan.http:
        body: Block = [("defaults-from", "/Common/http")]
        if h.proto:
            body.append(("header-insert", f"X-Forwarded-Proto: {h.proto}"))
        if h.hsts:
            on = {True: "enabled", False: "disabled"}
            body.append(("hsts", [("include-subdomains", on[h.hsts.include_subdomains]),
                                  ("maximum-age", str(h.hsts.max_age)), ("mode", "enabled"),
                                  ("preload", on[h.hsts.preload])]))
        body.append(("insert-xforwarded-for", "enabled" if h.xff else "disabled"))
        out.append(Obj("ltm profile http", p(h.local), body))
    return out


def _tcp_profiles(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.tcp."""
    out: list[Obj] = []
    for t in plan.tcp:
        out.append(Obj("ltm profile tcp", p(t.local), [("defaults-from", "/Common/tcp"),
                                                       ("idle-timeout", str(t.idle_timeout))]))
    return out


def _request_logs(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.request_logs (AS3: f5_as3._traffic_logs)."""
    return [Obj("ltm profile request-log", p(r.local), [
        ("defaults-from", "/Common/request-log"), ("response-log-pool", p(r.pool)),
        ("response-log-protocol", "mds-udp"), ("response-log-template", r.template),
        ("response-logging", "enabled")]) for r in plan.request_logs]


def _pools(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.pools."""
    out: list[Obj] = []
    for pool in plan.pools:
        members = []
        for mb in pool.members:
            member: Block = [("fqdn", [("autopopulate", "disabled"), ("name", mb.address)])] if mb.fqdn \
                else [("address", mb.address)]
            if mb.connection_limit is not None:
                member.append(("connection-limit", str(mb.connection_limit)))
            if mb.monitor:
                member.append(("monitor", p(mb.monitor)))
            if mb.priority_group is not None:
                member.append(("priority-group", str(mb.priority_group)))
            if mb.ratio is not None:
                member.append(("ratio", str(mb.ratio)))
            if mb.state != "enabled":
                member.append(("session", "user-disabled"))
            if mb.state == "offline":
                member.append(("state", "user-down"))
            members.append((_member_name(mb.address, mb.port, mb.fqdn), member))
        body: Block = [("load-balancing-mode", pool.lb_mode), ("members", members)]
        if pool.min_active:
            body.append(("min-active-members", str(pool.min_active)))
        if pool.monitor:
            body.append(("monitor", p(pool.monitor)))
        if pool.reselect_tries:
            body.append(("reselect-tries", str(pool.reselect_tries)))
        out.append(Obj("ltm pool", p(pool.local), body))
    return out


def _data_groups(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.data_groups (AS3: f5_as3._data_groups)."""
    return [Obj("ltm data-group internal", p(d.local), [("records", [(n, []) for n in d.networks]), ("type", "ip")])
            for d in plan.data_groups]


def _rules(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.rules."""
    out: list[Obj] = []
    for r in plan.rules:
        out.append(Obj("ltm rule", p(r.local), raw=r.text))
    return out


def _virtuals(plan: Plan, p: Callable[[str], str]) -> list[Obj]:
    """The tmsh objects of plan.virtuals."""
    out: list[Obj] = []
    for v in plan.virtuals:
        ip = ipaddress.ip_address(v.address)
        body: Block = [("destination", f"/Common/{v.address}{'.' if ip.version == 6 else ':'}{v.port}"),
                ("ip-protocol", "tcp"),
                ("mask", "255.255.255.255" if ip.version == 4 else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]
        if v.persist:
            body.append(("persist", [(p(v.persist), [("default", "yes")])]))
        if v.pool:
            body.append(("pool", p(v.pool)))
        profiles = [(p(c), [("context", "clientside")]) for c in v.client_ssl]
        if v.server_ssl:
            profiles.append((p(v.server_ssl), [("context", "serverside")]))
        if v.http:
            profiles.append((p(v.http), []))
        profiles.append((p(v.tcp), []))
        if v.request_log:
            profiles.append((p(v.request_log), []))
        if v.websocket:
            profiles.append(("/Common/websocket", []))
        body.append(("profiles", profiles))
        if v.rules:
            body.append(("rules", [(p(r), None) for r in v.rules]))
        body += [("source-address-translation", [("type", "automap")]),
                 ("translate-address", "enabled"), ("translate-port", "enabled")]
        out.append(Obj("ltm virtual", p(v.local), body))
    return out


_KINDS = (_monitors, _persistences, _client_ssl, _server_ssl, _http_profiles, _tcp_profiles, _pools, _request_logs,
          _data_groups, _rules, _virtuals)


def _readme(plan: Plan, model: Topology) -> str:
    p = _path_fn(plan.topology)
    lines = [
        f"# {plan.topology}: F5 BIG-IP configuration written by lbc",
        "",
        "Load on a BIG-IP (LTM) after installing the certificate files below:",
        "",
        "```",
        "tmsh load sys config merge file /var/tmp/bigip.conf verify   # check first, changes nothing",
        "tmsh load sys config merge file /var/tmp/bigip.conf",
        "```",
        "",
        "Every object is in /Common and named `" + plan.topology + ".<name>`. The iRules are in bigip.conf as",
        "`ltm rule` objects; `irules/` holds the same text, byte for byte, for review.",
        "",
    ]
    lines += f5_lower.install_section(plan.files, p)
    lines += appsettings.markdown(model)
    lines += [
        "## What lbc checked, and what it could not",
        "",
        "lbc has no BIG-IP. It checked that this file parses and round-trips in its own layout, that",
        "every property is on its allow-list for the object kind, that every reference resolves (including",
        "pools and members named inside the iRules), and it ran the iRules in a Tcl harness against",
        "simulated traffic. TMM's load balancing, monitors, persistence and TLS were not exercised:",
        "see docs/f5.md in the lbc repository. Settings no source confirmed without a device are listed",
        "there under \"Needs a device check\".",
        "",
    ]
    return "\n".join(lines)


class F5Target:
    name = "f5"
    main_file = spec("f5").main_file
    for_people = ("README.md", "irules/")   # the iRule files are copies of what bigip.conf holds
    summary = "F5 BIG-IP LTM: bigip.conf for tmsh (load sys config merge) with iRules"
    capabilities = f5_lower.capabilities()

    def refusals(self, model: Topology):
        return f5_lower.refusals(model)

    def plan(self, model: Topology) -> Plan:
        return f5_lower.build_plan(model, _path_fn(f5_lower.safe_name(model.name)))

    def render(self, model: Topology) -> dict[str, str]:
        plan = self.plan(model)
        header = (f"lbc: {plan.topology} for F5 BIG-IP (tmsh load sys config merge file bigip.conf)",
                  "generated by lbc; edit the topology, not this file")
        files = {"bigip.conf": dump(objects(plan), header), "README.md": _readme(plan, model)}
        for r in plan.rules:
            files[f"irules/{plan.topology}.{r.local}.tcl"] = r.text
        return files


TARGET = F5Target()
