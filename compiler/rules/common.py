"""What several rule modules need: citations of the seed guides, profile groups, route lookups."""
from __future__ import annotations

from textwrap import dedent

from ..diagnostics import Severity
from ..model import Listener, Route, Service, Topology

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO


def y(text: str) -> str:
    """An explain page's YAML example, written indented inside the rule module."""
    return dedent(text).lstrip("\n")


def web_example(listener: str = "", routes: str = "- {service: web}") -> str:
    """The example many rules start from: service `web` (one server) behind listener `web` on
    192.0.2.10:80, with the listener's other keys (`listener`) and its routes (`routes`), as YAML lines."""
    def lines(text: str, indent: int) -> str:
        return "".join(" " * indent + line + "\n" for line in dedent(text).strip("\n").splitlines())
    return ("lbc: 1\nvips:\n  public: {address: 192.0.2.10}\nservices:\n  web:\n    servers:\n"
            "      - {name: w1, address: 10.0.0.11, port: 8080}\nlisteners:\n  - name: web\n    vip: public\n"
            "    port: 80\n" + lines(listener, 4) + "    routes:\n" + lines(routes, 6))

SEEDS = {
    "000": "000_1a5a78107364a092.txt",   # Host Access for the Cloud: planning, sizing, load balancers, TLS
    "001": "001_271b4bdf9241e08f.txt",   # Flynet server load balancing
    "002": "002_8b3b25f4e5a8002d.txt",   # Verastream Host Integrator 7.x load distribution and failover
    "003": "003_dcbf1131eea475e5.txt",   # the Flynet guide, unbranded
    "004": "004_5fd5797347a5b484.txt",   # Lightstreamer Server 7.1 clustering
}
# What users read: the publisher's title of each guide (users do not have the seed files).
TITLES = {
    "000": 'Host Access for the Cloud, "Planning for Deployment"',
    "001": 'Flynet, "Flynet Server Load Balancing"',
    "002": 'Verastream Host Integrator technical note 7021566 (formerly Attachmate Technical Note 10108), '
           '"Session Server Load Distribution and Failover in Verastream Host Integrator 7.x"',
    "003": 'Flynet, "Flynet Server Load Balancing"',       # the same guide without branding: cited as 001
    "004": 'Lightstreamer, "Clustering for Load Balancing and Fail Over", Server 7.1 (updated 23/12/2019)',
}
LBC_LANGUAGE = "lbc topology language (schemas/topology.schema.json)"

# Applications whose requests must return to the server that holds the user's state: their guides
# require stickiness. Not Verastream: each connection is its own session, drawn afresh by weight
# (technical note 7021566, "What Happens At Runtime").
STATEFUL = ("flynet", "hacloud-session", "hacloud-mss", "lightstreamer")
HACLOUD = ("hacloud-session", "hacloud-mss")
HTTPS_PORTS = (443, 8443)


def duration(ms: int) -> str:
    """A duration in the topology's own notation, in the largest unit that divides it: 90s, 1h."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def replace_in(base: str, *pairs: str) -> str:
    """base with each (old, new) pair replaced once, in order; every old text must be found, so a
    rule's example cannot silently stop showing what it claims."""
    text = base
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def cite(*refs: str) -> str:
    """cite("001", "Minimum Servers", "004", "§3.2.2") ->
    'Flynet, "Flynet Server Load Balancing", "Minimum Servers" (seeds/001); Lightstreamer, ..., §3.2.2 (seeds/004)'.

    The guide's title and section come first (what a user can look up); the seed file's number
    follows for the project's own traceability. Sections of one guide are listed together; the
    unbranded Flynet copy (003) is the same guide as 001."""
    guides: dict[str, list[str]] = {}
    for seed, section in zip(refs[::2], refs[1::2]):
        seed = "001" if seed == "003" else seed
        sec = section if section.startswith("§") else f'"{section}"'
        if sec not in guides.setdefault(seed, []):
            guides[seed].append(sec)
    return "; ".join(f"{TITLES[seed]}, {', '.join(secs)} (seeds/{seed})" for seed, secs in guides.items())


def default_origin(model: Topology, path: tuple) -> str:
    """' (a default of profile X)' or ' (lbc's default)' when the value at path was filled in, else ''."""
    for d in model.defaults_applied:
        if d.path == tuple(path):
            who = d.origin.split(" (", 1)[0] if d.origin.startswith("profile ") else "lbc"
            return f" (a default of {who})" if who != "lbc" else " (lbc's default)"
    return ""


def stated_at(model: Topology, svc: Service, path: tuple) -> tuple:
    """Where a service setting is stated: its own value, or the `profile:` that filled it in."""
    for d in model.defaults_applied:
        if d.path == tuple(path) and d.origin.startswith("profile "):
            return svc.path + ("profile",)
    return path


def cookie_stickiness(model: Topology, svc: Service) -> tuple[tuple, str]:
    """Where a service's cookie stickiness is stated, and the start of a message naming it."""
    where = svc.stickiness.path + ("mode",)
    return stated_at(model, svc, where), f"service '{svc.name}' uses cookie stickiness{default_origin(model, where)}"


def https_not_decrypted(l: Listener) -> bool:
    """A listener on an HTTPS port that declares no TLS: clients speak TLS the balancer never opens."""
    return l.tls.mode == "none" and l.port in HTTPS_PORTS


def host_path(model: Topology, r: Route, k: int) -> tuple:
    """Where the k-th host of a route is written: the route's hosts, or the server's direct_host."""
    if r.from_direct_hosts and r.server and r.service:
        return model.service(r.service).server(r.server).path + ("direct_host",)
    return r.path + ("hosts", k)


def tls_path(l: Listener, key: str = "mode") -> tuple:
    return l.tls.path + (key,)


def serving(svc: Service):
    """Servers that are not administratively down."""
    return [s for s in svc.servers if s.state != "down"]
