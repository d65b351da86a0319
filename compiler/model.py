"""The normalised model: immutable, fully resolved, what every back end reads.

Durations are integers in milliseconds (fields end in `_ms`). References are names that
are guaranteed to resolve (`Topology.service(name)`, `Service.server(name)`). Every object
keeps `path`, its place in the topology document, so rules can point at it.

File paths (certificates, keys, CAs) stay as the topology writes them: they are where the load
balancer finds the files, and every target writes them unchanged. lbc's own checks read the
local copy, `Topology.local_file(path)`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Literal, NoReturn, Optional, get_args

Path = tuple

# The modes of the language as types: a back end that matches on one ends with assert_never, so a
# mode added here fails the type check (make lint) wherever it is not handled yet.
ListenerProtocol = Literal["http", "tcp"]
TlsMode = Literal["none", "terminate", "bridge", "passthrough"]
StickinessMode = Literal["none", "cookie", "source-ip", "application"]
Balance = Literal["round-robin", "least-connections", "weighted-random", "source-hash"]
HealthKind = Literal["http", "tcp"]
FallbackKind = Literal["respond", "server"]
ServerState = Literal["active", "hold", "down"]
Admission = Literal["active", "hold", "down"]
ClientAuth = Literal["none", "request", "require"]
ProxyProtocol = Literal["none", "v1", "v2"]
PathKind = Literal["exact", "prefix"]
MODES = {t: get_args(t) for t in (ListenerProtocol, TlsMode, StickinessMode, Balance, HealthKind, FallbackKind,
                                  ServerState, ClientAuth, ProxyProtocol, PathKind)}


def assert_never(value: NoReturn) -> NoReturn:
    """The end of an exhaustive `match` on a mode: mypy reports the modes that reach it."""
    raise AssertionError(f"unhandled mode {value!r}")


DECRYPTING: tuple[TlsMode, ...] = ("terminate", "bridge")     # the TLS modes where the balancer opens the TLS


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    ports: tuple[tuple[str, int], ...]   # (port name, port), sorted by name
    weight: int
    priority: int                        # 1 is served first
    max_sessions: Optional[int]
    direct_host: Optional[str]
    state: ServerState
    path: Path
    ignore: tuple[tuple[str, str], ...] = ()

    def port(self, name: str) -> int:
        return dict(self.ports)[name]

    @property
    def admission(self) -> Admission:
        """What the server takes, the one answer every target lowers: "active" (new sessions),
        "hold" (no new sessions, sticky ones continue: `state: hold` or weight 0), "down" (nothing)."""
        if self.state == "down":
            return "down"
        return "hold" if self.state == "hold" or self.weight == 0 else "active"


@dataclass(frozen=True)
class HealthCheck:
    kind: HealthKind
    interval_ms: int
    timeout_ms: int
    rise: int
    fall: int
    port_name: Optional[str]             # None: the port the traffic uses
    http_path: Optional[str] = None
    http_host: Optional[str] = None
    expect_status: int = 200
    expect_body: Optional[str] = None
    path: Path = ()


@dataclass(frozen=True)
class Stickiness:
    mode: StickinessMode
    cookie_name: str = "LBSRV"
    cookie_max_age_ms: Optional[int] = None   # None: a session cookie
    idle_timeout_ms: int = 30 * 60_000        # source-ip table expiry
    max_lifetime_ms: Optional[int] = None
    path: Path = ()
    idle_timeout_given: bool = False          # idle_timeout written in the topology (not lbc's default)


@dataclass(frozen=True)
class Fallback:
    kind: FallbackKind
    status: int = 503
    body: str = ""
    content_type: str = "text/plain"
    address: Optional[str] = None
    port: Optional[int] = None
    path: Path = ()


@dataclass(frozen=True)
class UpstreamTLS:
    ca: Optional[str]                    # file path as written
    verify: bool
    verify_name: Optional[str]
    sni: Optional[str]
    path: Path = ()


@dataclass(frozen=True)
class Service:
    name: str
    profile: str
    balance: Balance
    servers: tuple[Server, ...]
    health: Optional[HealthCheck]
    stickiness: Stickiness
    fallback: Optional[Fallback]
    upstream_tls: Optional[UpstreamTLS]
    proxy_protocol: ProxyProtocol
    x509_client_auth: bool
    redispatch: bool
    peak_sessions: Optional[int]
    peak_users: Optional[int]
    path: Path
    ignore: tuple[tuple[str, str], ...] = ()

    def server(self, name: str) -> Server:
        return next(s for s in self.servers if s.name == name)

    @property
    def tiers(self) -> tuple[int, ...]:
        """Priority groups in serving order."""
        return tuple(sorted({s.priority for s in self.servers}))

    def tier(self, priority: int) -> tuple[Server, ...]:
        return tuple(s for s in self.servers if s.priority == priority)

    @property
    def drains_on_body(self) -> bool:
        """The check's body text decides admission, not life (Flynet, "Health Monitor Configuration"):
        a server whose health page answers without it (ALL SESSIONS IN USE, ON HOLD) takes no new
        sessions but keeps its sticky ones; only an HTTP error or no answer takes it down. For other
        profiles the text means up or down, as a check usually does."""
        h = self.health
        return (self.profile == "flynet" and h is not None and h.kind == "http" and h.expect_body is not None
                and self.stickiness.mode != "none")


@dataclass(frozen=True)
class Certificate:
    name: str
    cert: str                            # file path as written
    key: Optional[str]
    names: tuple[str, ...]               # SAN names: read from the PEM when readable, else as declared
    names_from_file: bool
    path: Path
    not_after: Optional[str] = None      # ISO date, when the PEM was readable
    ignore: tuple[tuple[str, str], ...] = ()
    declared_names: tuple[str, ...] = ()  # `names:` as written (compared with the file's by LBC214)


@dataclass(frozen=True)
class ListenerTLS:
    mode: TlsMode
    certificates: tuple[str, ...]
    client_auth: ClientAuth
    client_ca: Optional[str]
    min_version: str                     # "1.0" .. "1.3"
    path: Path = ()

    @property
    def decrypts(self) -> bool:
        """The balancer opens the TLS (terminate, bridge): it holds the certificates and sees the bytes."""
        return self.mode in DECRYPTING


@dataclass(frozen=True)
class UrlPath:
    """The request paths a route takes (`path_exact` / `path_prefix`): compared with the request's
    path as it arrives (no query, no decoding), case-sensitively."""
    kind: PathKind
    value: str                           # starts with "/"; a prefix to strip ends with "/"
    strip: bool = False                  # prefix only: the server sees the path without value[:-1]

    def matches(self, url_path: str) -> bool:
        return url_path == self.value if self.kind == "exact" else url_path.startswith(self.value)

    @property
    def strip_length(self) -> int:
        """How many leading characters the server does not see (the prefix without its last "/")."""
        return len(self.value) - 1 if self.strip else 0


@dataclass(frozen=True)
class Route:
    hosts: tuple[str, ...]               # empty: the listener's default route
    service: str
    server: Optional[str]                # pinned server, or None to balance
    port_name: str                       # resolved named server port
    path: Path
    from_direct_hosts: bool = False      # expanded from `direct_hosts: true`
    ignore: tuple[tuple[str, str], ...] = ()
    url_path: Optional[UrlPath] = None   # None: every path (`Route.path` is the document position)

    @property
    def order(self) -> tuple:
        """Match order within one host: exact paths, then prefixes longest first, then every path."""
        u = self.url_path
        if u is None:
            return (2, 0, "")
        return (0 if u.kind == "exact" else 1, -len(u.value), u.value)

    @property
    def action(self) -> tuple:
        """What the route does, whatever hosts it serves: two hosts whose routes have the same
        actions share one table (one virtual host, server block or iRule branch)."""
        return (self.url_path, self.service, self.port_name, self.server)


@dataclass(frozen=True)
class HostTable:
    """The ordered routes of some hosts of one listener: the first route whose `url_path` matches the
    request's path wins (`Route.order`); none matches: 404 (the default table is not consulted)."""
    hosts: tuple[str, ...]               # empty: the default table (hosts no route names)
    routes: tuple[Route, ...]            # in match order

    @property
    def by_path(self) -> bool:
        """More than "every path goes to one route": the target must look at the request's path."""
        return len(self.routes) > 1 or self.routes[0].url_path is not None

    def select(self, url_path: str) -> Optional[Route]:
        """The route a request path takes (the reference the tests compare the targets with)."""
        return next((r for r in self.routes if r.url_path is None or r.url_path.matches(url_path)), None)


@dataclass(frozen=True)
class Timeouts:
    connect_ms: int = 5_000
    client_ms: int = 60_000
    server_ms: int = 60_000
    tunnel_ms: int = 3_600_000


@dataclass(frozen=True)
class Listener:
    name: str
    vip: str
    address: str                         # the VIP's address
    port: int
    protocol: ListenerProtocol
    tls: ListenerTLS
    routes: tuple[Route, ...]
    websocket: bool
    forwarded_headers: bool
    buffering: bool
    timeouts: Timeouts
    path: Path
    ignore: tuple[tuple[str, str], ...] = ()

    @property
    def reads_http(self) -> bool:
        """The balancer parses HTTP on this listener (L7). The one place this is decided: `protocol:
        http` alone is not enough, passthrough never reads the bytes whatever the listener declares."""
        return self.protocol == "http" and self.tls.mode != "passthrough"

    @property
    def decrypts(self) -> bool:
        return self.tls.decrypts

    @property
    def sees_host_names(self) -> bool:
        """The balancer can route this listener's traffic by host name (Host header or SNI)."""
        return self.reads_http or self.tls.mode != "none"

    @property
    def routed_services(self) -> tuple[str, ...]:
        """The services this listener sends traffic to, each once, in document order."""
        return tuple(dict.fromkeys(r.service for r in self.routes))

    @property
    def default_route(self) -> Optional[Route]:
        """The default table's route for every path (the only default route when no route has a path)."""
        return next((r for r in self.routes if not r.hosts and r.url_path is None), None)

    @cached_property
    def route_table(self) -> tuple[HostTable, ...]:
        """The per-listener route table every target lowers: host -> routes in match order. Hosts
        whose routes do the same (`Route.action`) share one entry, in document order; the default
        table (the routes without hosts) comes last."""
        per_host: dict[str, list[Route]] = {}
        defaults: list[Route] = []
        for r in self.routes:
            for h in r.hosts:
                per_host.setdefault(h, []).append(r)
            if not r.hosts:
                defaults.append(r)
        shared: dict[tuple, tuple[list[str], tuple[Route, ...]]] = {}
        for h, rs in per_host.items():
            ordered = tuple(sorted(rs, key=lambda r: r.order))
            shared.setdefault(tuple(r.action for r in ordered), ([], ordered))[0].append(h)
        table = [HostTable(tuple(hosts), routes) for hosts, routes in shared.values()]
        if defaults:
            table.append(HostTable((), tuple(sorted(defaults, key=lambda r: r.order))))
        return tuple(table)

    @property
    def routes_by_path(self) -> bool:
        """Some host of this listener is routed by the request's path."""
        return any(t.by_path for t in self.route_table)


@dataclass(frozen=True)
class Vip:
    name: str
    address: str
    path: Path


@dataclass(frozen=True)
class BalancerNode:
    """One balancer box of a redundant set: it runs the proxy and keepalived."""
    name: str
    address: str                         # the node's own address (VRRP adverts, HAProxy peers)
    interface: str
    priority: int                        # VRRP priority: the highest running node holds the VIPs
    listeners: tuple[str, ...]           # the listeners it serves (every listener unless restricted)
    pid_file: Optional[str]              # None: the target's default
    path: Path
    ignore: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VrrpInstance:
    """One VIP shared by the nodes through VRRP."""
    vip: str
    address: str
    router_id: int
    advert_interval_ms: int
    preempt: bool
    auth_pass: Optional[str]
    unicast: bool
    nodes: tuple[str, ...]               # the nodes that may hold it, in document order
    path: Path
    ignore: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Balancers:
    nodes: tuple[BalancerNode, ...]
    vrrp: tuple[VrrpInstance, ...]
    state_sync: bool
    sync_port: int
    path: Path = ("balancers",)

    def node(self, name: str) -> BalancerNode:
        return next(n for n in self.nodes if n.name == name)

    def nodes_serving(self, listeners: set[str]) -> tuple[BalancerNode, ...]:
        """The nodes that serve at least one of these listeners."""
        return tuple(n for n in self.nodes if listeners.intersection(n.listeners))


@dataclass(frozen=True)
class DefaultApplied:
    """A value the topology did not give, filled in by a profile or by lbc's defaults."""
    path: Path
    value: object
    origin: str                          # e.g. "profile flynet (001 Health Monitoring)" or "lbc default"


@dataclass(frozen=True)
class Topology:
    name: str
    file: str
    vips: tuple[Vip, ...]
    certificates: tuple[Certificate, ...]
    services: tuple[Service, ...]
    listeners: tuple[Listener, ...]
    defaults_applied: tuple[DefaultApplied, ...] = ()
    ignore: tuple[tuple[str, str], ...] = ()
    base_dir: str = ""                   # the topology file's folder (absolute): where relative paths are read
    balancers: Optional[Balancers] = None    # several boxes sharing the VIPs; None: one balancer
    node: Optional[str] = None           # the balancer node this model is rendered for (see for_node)

    def local_file(self, path: Optional[str]) -> Optional[str]:
        return local_file(self.base_dir, path)

    # Lookups by name are indexed once: back ends call them per route, and a scan made
    # 10,000-service topologies quadratic (f5 render 18 s -> see bench/).
    @cached_property
    def _by_name(self) -> dict[str, dict]:
        return {"service": {s.name: s for s in self.services},
                "certificate": {c.name: c for c in self.certificates},
                "vip": {v.name: v for v in self.vips}}

    def service(self, name: str) -> Service:
        return self._by_name["service"][name]

    def certificate(self, name: str) -> Certificate:
        return self._by_name["certificate"][name]

    def vip(self, name: str) -> Vip:
        return self._by_name["vip"][name]

    # Built once per model: rules ask for every service, and a scan per question would cost
    # services x routes (10^8 for a 10,000-service topology).
    @cached_property
    def _routes_by_service(self) -> dict[str, tuple[tuple[Listener, Route], ...]]:
        idx: dict[str, list[tuple[Listener, Route]]] = {}
        for l in self.listeners:
            for r in l.routes:
                idx.setdefault(r.service, []).append((l, r))
        return {k: tuple(v) for k, v in idx.items()}

    def routes_to(self, service: str) -> tuple[tuple[Listener, Route], ...]:
        """Every (listener, route) that sends traffic to the service, in document order."""
        return self._routes_by_service.get(service, ())

    def listeners_of(self, service: str) -> tuple[Listener, ...]:
        """The listeners that route to the service, each once, in document order."""
        return tuple({l.name: l for l, _r in self.routes_to(service)}.values())

    @property
    def routed_services(self) -> tuple[str, ...]:
        """The services some listener routes to, in the order the routes name them first."""
        return tuple(self._routes_by_service)

    def checks_over_tls(self, svc: Service) -> bool:
        """An HTTP check of a service behind TLS passthrough: its servers speak TLS on that port, so
        the check must too (never clear text to a TLS port). A check on a port of its own that no
        passthrough route uses is taken as the plain HTTP port it usually is."""
        h = svc.health
        if h is None or h.kind != "http":
            return False
        return any(l.tls.mode == "passthrough" and r.service == svc.name
                   and (h.port_name is None or h.port_name == r.port_name)
                   for l in self.listeners for r in l.routes)

    def for_node(self, name: str) -> "Topology":
        """The topology as one balancer node serves it: its listeners only, and its name for the
        targets that write per-node settings (HAProxy's local peer)."""
        served = set(self.balancers.node(name).listeners)
        return replace(self, listeners=tuple(l for l in self.listeners if l.name in served), node=name)

    def to_dict(self) -> dict:
        return asdict(self)


def local_file(base_dir: str, path: Optional[str]) -> Optional[str]:
    """The file lbc reads at compile time for a path the topology names: a relative path is taken
    from the topology file's folder (not the current directory), an absolute one as it is.
    Targets never write this: the proxy resolves a relative path from its own folder."""
    if path is None:
        return None
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))
