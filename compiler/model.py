"""The normalised model: immutable, fully resolved, what every back end reads.

Durations are integers in milliseconds (fields end in `_ms`). References are names that
are guaranteed to resolve (`Topology.service(name)`, `Service.server(name)`). Every object
keeps `path`, its place in the topology document, so rules can point at it.

File paths (certificates, keys, CAs) stay as the topology writes them: they are where the load
balancer finds the files, and every target writes them unchanged. lbc's own checks read the
local copy, `Topology.local_file(path)`.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Literal, NoReturn, Optional, Union, get_args
from .tls_profiles import PROFILES, TlsProfileName

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
LogDestination = Literal["stdout", "stderr", "file", "syslog", "none"]
LogFormat = Literal["text", "json"]
PathKind = Literal["exact", "prefix"]
MODES = {t: get_args(t) for t in (ListenerProtocol, TlsMode, StickinessMode, Balance, HealthKind, FallbackKind,
                                  ServerState, ClientAuth, ProxyProtocol, LogDestination, LogFormat, PathKind)}


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
        for port_name, port in self.ports:   # a server has a port or two: no dict to build
            if port_name == name:
                return port
        raise KeyError(name)

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


IDLE_TIMEOUT_DEFAULT_MS = 30 * 60_000


# Stickiness is a tagged union: each mode carries only its own settings, so a back end that reads
# a cookie name must first have matched the cookie mode (mypy checks it). `mode` is the tag (fixed
# per class, as the topology writes it). `unused` names the settings the topology gave that the mode
# does not use (LBC308, LBC310 report them); writing a default value changes nothing and is not counted.
@dataclass(frozen=True)
class NoStickiness:
    mode: Literal["none"] = field(default="none", init=False)
    path: Path = ()
    unused: tuple[str, ...] = ()


@dataclass(frozen=True)
class CookieStickiness:
    mode: Literal["cookie"] = field(default="cookie", init=False)
    cookie_name: str = "LBSRV"
    cookie_max_age_ms: Optional[int] = None   # None: a session cookie
    max_lifetime_ms: Optional[int] = None     # re-balance after this long, however active (a date in the cookie)
    path: Path = ()
    unused: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceIpStickiness:
    mode: Literal["source-ip"] = field(default="source-ip", init=False)
    idle_timeout_ms: int = IDLE_TIMEOUT_DEFAULT_MS   # affinity table expiry
    idle_timeout_given: bool = False          # idle_timeout written in the topology (not lbc's default)
    path: Path = ()
    unused: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApplicationStickiness:
    """The application hands out per-server host names (servers' `direct_host`): no balancer state."""
    mode: Literal["application"] = field(default="application", init=False)
    path: Path = ()
    unused: tuple[str, ...] = ()


Stickiness = Union[NoStickiness, CookieStickiness, SourceIpStickiness, ApplicationStickiness]


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
    profile: TlsProfileName = "intermediate"        # Mozilla's server-side recommendation (tls_profiles.py)
    ciphers: Optional[tuple[str, ...]] = None       # explicit lists replace the profile's; None: the profile's
    ciphersuites: Optional[tuple[str, ...]] = None
    curves: Optional[tuple[str, ...]] = None
    written: tuple[str, ...] = ()                   # the `tls:` keys the topology wrote (rules tell choices from defaults)

    # What every target lowers: the profile's values unless the topology gives its own.
    @property
    def cipher_list(self) -> tuple[str, ...]:
        """TLS 1.2-and-older cipher suites (OpenSSL names), preferred first."""
        return self.ciphers if self.ciphers is not None else PROFILES[self.profile].ciphers

    @property
    def ciphersuite_list(self) -> tuple[str, ...]:
        """TLS 1.3 cipher suites."""
        return self.ciphersuites if self.ciphersuites is not None else PROFILES[self.profile].ciphersuites

    @property
    def curve_list(self) -> tuple[str, ...]:
        return self.curves if self.curves is not None else PROFILES[self.profile].curves

    @property
    def server_cipher_order(self) -> bool:
        return PROFILES[self.profile].server_order

    @property
    def decrypts(self) -> bool:
        """The balancer opens the TLS (terminate, bridge): it holds the certificates and sees the bytes."""
        return self.mode in DECRYPTING


@dataclass(frozen=True)
class Hsts:
    """HTTP Strict Transport Security sent on a listener's HTTPS answers."""
    max_age_s: int
    include_subdomains: bool = False
    preload: bool = False
    path: Path = ()

    @property
    def value(self) -> str:
        """The Strict-Transport-Security field value (RFC 6797 §6.1), the same on every target."""
        return f"max-age={self.max_age_s}" + ("; includeSubDomains" if self.include_subdomains else "") \
            + ("; preload" if self.preload else "")


@dataclass(frozen=True)
class HeaderChanges:
    """Changes to one direction's headers, applied in this order: remove, set (replacing), add (beside).
    Names keep the topology's spelling (HTTP compares them without case); values are literal text."""
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()
    path: Path = ()

    @property
    def empty(self) -> bool:
        return not (self.set or self.add or self.remove)


@dataclass(frozen=True)
class HeaderPolicy:
    request: HeaderChanges = HeaderChanges()
    response: HeaderChanges = HeaderChanges()     # `add` is for answers only


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
class RedirectHttps:
    """A plain-HTTP listener's answer to every request: a redirect to the same host name, path and query
    over HTTPS; requests whose path starts with one of `exempt` follow the listener's routes instead."""
    status: int                          # 301, 302, 307 or 308
    exempt: tuple[str, ...] = ()         # the topology's `except` prefixes (url_path grammar)
    port: int = 443
    path: Path = ()

    def redirects(self, url_path: str) -> bool:
        """The reference semantics: the raw request path (no query) does not start with an exempt prefix."""
        return not any(url_path.startswith(p) for p in self.exempt)

    @property
    def port_suffix(self) -> str:
        """What follows the host name in the Location: nothing for 443, ":<port>" otherwise."""
        return "" if self.port == 443 else f":{self.port}"


@dataclass(frozen=True)
class RouteRedirect:
    """A route's answer instead of a service: a redirect to `scheme://host[:port]` + the request's path
    and query. `host` None keeps the request's host name; `port` None writes no port."""
    status: int                          # 301, 302, 307 or 308
    scheme: str                          # http | https (default: the listener's own)
    host: Optional[str] = None
    port: Optional[int] = None

    @property
    def port_suffix(self) -> str:
        return "" if self.port is None else f":{self.port}"


@dataclass(frozen=True)
class Route:
    hosts: tuple[str, ...]               # empty: the listener's default route
    service: Optional[str]               # None: the route answers with `redirect`
    server: Optional[str]                # pinned server, or None to balance
    port_name: str                       # resolved named server port
    path: Path
    from_direct_hosts: bool = False      # expanded from `direct_hosts: true`
    ignore: tuple[tuple[str, str], ...] = ()
    url_path: Optional[UrlPath] = None   # None: every path (`Route.path` is the document position)
    redirect: Optional[RouteRedirect] = None   # set: no service, port_name ""
    access: Optional["AccessList"] = None  # the route's own client list, checked after the listener's

    @property
    def order(self) -> tuple:
        """Match order within one host: exact paths, then prefixes longest first, then every path."""
        u = self.url_path
        if u is None:
            return (2, 0, "")
        return (0 if u.kind == "exact" else 1, -len(u.value), u.value)

    @property
    def access_key(self) -> tuple:
        """The route's client lists as a value (equal lists, wherever written, compare equal)."""
        return () if self.access is None else ((self.access.allow, self.access.deny),)

    @property
    def action(self) -> tuple:
        """What the route does, whatever hosts it serves: two hosts whose routes have the same
        actions share one table (one virtual host, server block or iRule branch)."""
        return (self.url_path, self.service, self.port_name, self.server, self.redirect) + self.access_key


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
class AccessLog:
    """Where a listener's access log goes, and in which of lbc's two formats (docs/logs.md)."""
    to: LogDestination
    format: LogFormat = "text"
    file: Optional[str] = None           # to: file (the path as written)
    syslog_address: Optional[str] = None  # to: syslog
    syslog_port: int = 514
    facility: str = "local0"
    path: Path = ()                      # the access_log block that decided it (listener's or top level)

    @property
    def on(self) -> bool:
        return self.to != "none"


@dataclass(frozen=True)
class Admin:
    """The balancer's admin endpoint (metrics), off the VIPs."""
    address: str
    port: int
    path: Path = ("admin",)
    ignore: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AccessList:
    """Which client addresses a listener admits. Networks are normalised (`ipaddress` form, an address
    is a /32 or /128), each once, in document order.

    The order every target implements: a client in a `deny` network is refused; otherwise, with an
    `allow` list, only a client in an `allow` network passes; with none, every other client passes."""
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    path: Path = ()
    written: tuple[tuple[str, int, str], ...] = ()   # (list, index, network) for each entry as written

    @property
    def default_allows(self) -> bool:
        """What happens to a client in no listed network."""
        return not self.allow

    @cached_property
    def table(self) -> tuple[tuple[str, bool], ...]:
        """The policy as one longest-prefix lookup: (network, admitted), sorted. Equal to the order
        above: an allow network inside (or equal to) a deny network can never admit anyone and is
        left out, and a deny network inside an allow network is the longer prefix, so it wins."""
        entries = {n: False for n in self.deny}
        index = NetIndex(self.deny)
        for a in self.allow:
            if index.covering(a) is None:
                entries[a] = True
        return tuple(sorted(entries.items(), key=lambda e: net_key(e[0])))


@lru_cache(maxsize=1 << 17)
def net_key(network: str) -> tuple[int, int, int]:
    """(version, address as an integer, prefix length) of a normalised network."""
    n = ipaddress.ip_network(network)
    return n.version, int(n.network_address), n.prefixlen


class NetIndex:
    """Networks found by containment: a lookup tries the at most 129 prefixes of an address with
    integer masks, so checking n networks against m costs n x 129 steps, not n x m."""

    def __init__(self, networks=()):
        self.by_key: dict[tuple[int, int, int], str] = {}
        for n in networks:
            self.by_key.setdefault(net_key(n), n)
        # the prefix lengths present, longest first: a lookup tries only these
        self.lengths = {v: sorted({p for ver, _, p in self.by_key if ver == v}, reverse=True) for v in (4, 6)}

    def covering(self, network: str, strict: bool = False) -> Optional[str]:
        """The listed network that contains `network` (or equals it, unless strict), or None."""
        version, addr, plen = net_key(network)
        bits = 32 if version == 4 else 128
        for p in self.lengths[version]:
            if p > plen or (strict and p == plen):
                continue
            hit = self.by_key.get((version, addr >> (bits - p) << (bits - p), p))
            if hit is not None:
                return hit
        return None


RateUnit = Literal["request", "connection"]


@dataclass(frozen=True)
class RateLimit:
    """A limit per client address: `burst` at once, then `per_second` on average (a token bucket).
    What each target counts, and over which window, is its capability note (`lbc targets`)."""
    unit: RateUnit
    per_second: int
    burst: int
    path: Path = ()

    @property
    def window_ms(self) -> int:
        """The time a full burst earns back at the rate: the window of the targets that count
        requests in a sliding window instead of a bucket (at most `burst` in any such window)."""
        return max(1, self.burst * 1000 // self.per_second)


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
    # The access log in force here (the listener's own, else the top-level one); None: not set
    # anywhere, the target writes no access-log setting.
    access_log: Optional[AccessLog] = None
    hsts: Optional[Hsts] = None
    headers: HeaderPolicy = HeaderPolicy()

    @property
    def response_headers(self) -> HeaderChanges:
        """What the balancer changes on every answer: the topology's response changes, with HSTS as
        one more header set. The one place HSTS becomes a header (F5 uses its HTTP profile's own
        setting instead and reads `hsts`)."""
        r = self.headers.response
        if self.hsts is None:
            return r
        return replace(r, set=r.set + (("Strict-Transport-Security", self.hsts.value),))
    access: Optional[AccessList] = None   # None: every client is admitted
    rate_limit: Optional[RateLimit] = None
    redirect_https: Optional[RedirectHttps] = None   # None: requests follow the routes

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
        return tuple(dict.fromkeys(r.service for r in self.routes if r.service is not None))

    @property
    def default_route(self) -> Optional[Route]:
        """The default table's route for every path (the only default route when no route has a path)."""
        return next((r for r in self.routes if not r.hosts and r.url_path is None), None)

    @property
    def decides_by_path(self) -> bool:
        """A request's path chooses what happens (path routes, redirect exceptions): then a path the
        server would read otherwise (`/acme/../admin`, `//`, `%2e`) must not slip past the choice, so
        every target either normalises it before choosing (nginx, Envoy) or refuses it (HAProxy, 400)."""
        return self.reads_http and (any(r.url_path is not None for r in self.routes)
                                    or (self.redirect_https is not None and bool(self.redirect_https.exempt)))

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
    admin: Optional[Admin] = None        # the metrics endpoint; None: none is written

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
                if r.service is not None:
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
        return any(l.tls.mode == "passthrough" and (h.port_name is None or h.port_name == r.port_name)
                   for l, r in self.routes_to(svc.name))

    def require_balancers(self) -> Balancers:
        """The balancer nodes, for code that only runs on a topology with `balancers:`."""
        if self.balancers is None:
            raise ValueError(f"topology '{self.name}' has no balancer nodes")
        return self.balancers

    def for_node(self, name: str) -> "Topology":
        """The topology as one balancer node serves it: its listeners only, and its name for the
        targets that write per-node settings (HAProxy's local peer)."""
        served = set(self.require_balancers().node(name).listeners)
        return replace(self, listeners=tuple(l for l in self.listeners if l.name in served), node=name)

    def to_dict(self) -> dict:
        return asdict(self)


# An IPv4 address in its normal form (no leading zeros, each octet <= 255) is its own ip_text:
# recognised without ipaddress's parse (20,000 server addresses at 10,000 services).
_NORMAL_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                          r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def ip_text(address: str) -> Optional[str]:
    """The address as an IP address in its normal form (`str(ip_of(address))`), or None for a host name."""
    if _NORMAL_IPV4.fullmatch(address):
        return address
    ip = ip_of(address)
    return None if ip is None else str(ip)


def ip_of(address: str) -> Optional[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The address as an IP address (compare `str()` of it: the normal form), or None for a host name."""
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def local_file(base_dir: str, path: Optional[str]) -> Optional[str]:
    """The file lbc reads at compile time for a path the topology names: a relative path is taken
    from the topology file's folder (not the current directory), an absolute one as it is.
    Targets never write this: the proxy resolves a relative path from its own folder."""
    if path is None:
        return None
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))
