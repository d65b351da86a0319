"""Model -> F5 plan: the BIG-IP objects lbc emits, as plain data, shared by the tmsh and AS3 outputs.

Every F5 decision is made here once (priority-group inversion, ratios, member states, monitor
strings, which routes need an iRule); `f5.py` writes the plan as bigip.conf and `f5_as3.py` as an
AS3 declaration. Names are local (`fvterm.default.pool`); each output turns them into full paths
with its own `path` function, which the iRule text also uses. Local names are unique across all
kinds (AS3 has one namespace per Application): the last dot-part names the kind (pool, monitor,
cookie, http, ...), and a virtual server, alone, is the bare listener name.

BIG-IP facts this relies on are in ../shared/research/f5.md (§1); what is not verified on a device
is said in docs/f5.md.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from lbc import accesslog
from lbc.capabilities import EMULATED, FEATURES, NATIVE, UNSUPPORTED, Support
from lbc.model import (ApplicationStickiness, CookieStickiness, HostTable, Listener, NoStickiness, Route, Server,
                       Service, SourceIpStickiness, Topology, assert_never, ip_text)
from .f5_irules import (Action, Branch, Failure, PathChoice, PathRoute, Redirect, RuleSpec, render_access_rule,
                        render_header_rule, render_rate_rule, render_redirect_rule, render_rule, tcl_representable, tcl_word)

PathFn = Callable[[str], str]

# ---------------------------------------------------------------- capabilities

_COMMON: dict[str, Support] = {
    "balance.round-robin": Support(NATIVE, "load-balancing-mode round-robin"),
    "balance.least-connections": Support(NATIVE, "load-balancing-mode least-connections-member"),
    "balance.weighted-random": Support(EMULATED, "BIG-IP has no weighted random mode: ratio-member gives a deterministic "
                                                 "weighted rotation; shares follow the weights, the order is not random"),
    "balance.source-hash": Support(EMULATED, "BIG-IP has no hash balancing mode: source-address persistence with the "
                                             "CARP hash (hash-algorithm carp) maps each client address to one member "
                                             "while the set of available members is unchanged"),
    "server.weights": Support(NATIVE, "member ratio with a ratio-* load-balancing mode"),
    "server.max-sessions": Support(NATIVE, "member connection-limit (enforced per TMM)"),
    "server.hold": Support(NATIVE, "member session user-disabled: no new balanced sessions, persisted and pinned "
                                   "clients continue"),
    "server.down": Support(NATIVE, "member state user-down (forced offline)"),
    "priority.tiers": Support(NATIVE, "member priority-group, inverted (BIG-IP serves the highest group first), with "
                                      "min-active-members 1; whether a member at its connection limit activates the "
                                      "next group needs a device check"),
    "health.http": Support(NATIVE, "http monitor (https when the service bridges TLS); timeout = interval x fall + 1 s, "
                                   "time-until-up = interval x (rise - 1); no per-probe timeout"),
    "health.http-body": Support(NATIVE, "monitor recv, a POSIX regular expression lbc escapes"),
    "health.tcp": Support(NATIVE, "tcp monitor"),
    "health.drain-on-body": Support(NATIVE, "monitor recv finds the text; recv-disable matches any answer with the "
                                            "expected status, so such a member is up (disabled): persisted clients "
                                            "stay, no new sessions; only no answer or another status is down"),
    "health.tls": Support(NATIVE, "https monitor (its default server-ssl profile; the Host header from the check's "
                                  "host, no SNI of its own)"),
    "stickiness.cookie": Support(NATIVE, "cookie persistence, method insert, expiration 0 (a session cookie)"),
    "stickiness.cookie-max-age": Support(NATIVE, "cookie persistence expiration"),
    "stickiness.source-ip": Support(NATIVE, "source-addr persistence; its timeout restarts with traffic (idle timeout)"),
    "stickiness.application": Support(NATIVE, "an iRule sends each direct host to its member (pool P member A PORT), "
                                              "guarded by LB::status"),
    "stickiness.max-lifetime": Support(UNSUPPORTED, "BIG-IP persistence records expire on idle time only; a hard "
                                                    "lifetime would need an iRule-managed timestamp, which lbc does not "
                                                    "generate"),
    "fallback.respond": Support(NATIVE, "an iRule answers with HTTP::respond when no member is active and in LB_FAILED"),
    "fallback.server": Support(NATIVE, "a fallback pool chosen by an iRule when no member is active, and by "
                                       "LB::reselect in LB_FAILED"),
    "redispatch": Support(NATIVE, "persistence to an unavailable member is ignored; reselect-tries retries another "
                                  "member when a connection fails"),
    "routing.hosts": Support(NATIVE, "an iRule switches on the Host header"),
    "routing.pinned-server": Support(NATIVE, "an iRule selects the member (pool P member A PORT), guarded by LB::status"),
    "routing.paths": Support(NATIVE, "an iRule compares HTTP::path inside the host's branch (exact, then the longest "
                                     "prefix); proven in lbc's Tcl harness, not on a BIG-IP"),
    "routing.strip-prefix": Support(NATIVE, "HTTP::path [string range ...] in the iRule (the query stays)"),
    "routing.redirect-host": Support(NATIVE, "HTTP::respond N Location \"scheme://host[:port][HTTP::uri]\" in the "
                                             "route's iRule branch (tmsh and AS3 carry the same iRule)"),
    "tls.terminate": Support(NATIVE, "client-ssl profile"),
    "tls.bridge": Support(NATIVE, "client-ssl and server-ssl profiles"),
    "tls.profile": Support(EMULATED, "client-ssl `ciphers` (the profile's suites by name, TLS 1.3 as TLS13-*) and "
                                     "`options` no-tlsv1.x; BIG-IP has no group list (its own curves) and no "
                                     "client-order setting here; which names a BIG-IP version accepts needs a device "
                                     "check"),
    "tls.cipher-lists": Support(EMULATED, "`ciphers` and `ciphersuites` in the cipher string; `curves` is refused"),
    "tls.upstream-verify": Support(NATIVE, "server-ssl peer-cert-mode require with ca-file and authenticate-name"),
    "tls.passthrough": Support(NATIVE, "a tcp-only virtual server"),
    "tls.sni-routing": Support(NATIVE, "an iRule reads the server name from the ClientHello (TCP::collect) without "
                                       "decrypting"),
    "tls.multi-certificate": Support(NATIVE, "one client-ssl profile per certificate with server-name; the first is "
                                             "sni-default"),
    "tls.client-auth": Support(NATIVE, "client-ssl peer-cert-mode request/require with ca-file"),
    "listener.websocket": Support(NATIVE, "websocket profile beside the http profile"),
    "listener.no-buffering": Support(NATIVE, "the http profile forwards response data as it arrives; lbc attaches no "
                                             "buffering profile (compression, acceleration)"),
    "listener.hsts": Support(NATIVE, "http profile hsts (mode, maximum-age, include-subdomains, preload); whether "
                                     "it reaches the answers lbc's iRules write (HTTP::respond: 404, fallback) needs "
                                     "a device check"),
    "headers.request": Support(NATIVE, "an iRule of its own: HTTP::header remove, then remove + insert for set, in "
                                       "HTTP_REQUEST (the http profile inserts and erases one header only)"),
    "headers.response": Support(NATIVE, "the same iRule in HTTP_RESPONSE: server answers only, not the answers "
                                        "lbc's iRules write with HTTP::respond"),
    "listener.forwarded-headers": Support(NATIVE, "http profile insert-xforwarded-for and header-insert "
                                                  "X-Forwarded-Proto"),
    "upstream.proxy-protocol-v1": Support(EMULATED, "BIG-IP has no PROXY protocol setting: an iRule writes the v1 "
                                                    "header with TCP::respond in SERVER_CONNECTED"),
    "upstream.proxy-protocol-v2": Support(EMULATED, "BIG-IP has no PROXY protocol setting: an iRule writes the v2 "
                                                    "header with TCP::respond in SERVER_CONNECTED"),
    "listener.redirect-https": Support(NATIVE, "an iRule of its own (after the access list and rate limit): "
                                               "HTTP::respond N Location \"https://<Host name>[:port][HTTP::uri]\" "
                                               "unless [HTTP::path] starts with an except prefix; event disable all"),
    "access.client-networks": Support(NATIVE, "address data groups (deny, allow), one `class match` lookup each in "
                                              "an iRule listed first on the virtual server: HTTP::respond 403 (L7) "
                                              "or reject (L4) in CLIENT_ACCEPTED; `event disable all` keeps the "
                                              "routing iRule from running after it (not verified on a device)"),
    "access.per-route": Support(NATIVE, "address data groups per distinct list (<listener>.route<k>.deny/.allow) "
                                        "looked up in the routing iRule's branch of the chosen route: "
                                        "HTTP::respond 403 (not verified on a device)"),
    "access.per-route-l4": Support(UNSUPPORTED, "not lowered: the SNI branch runs after CLIENT_ACCEPTED's own "
                                                "access check; put the list on a listener of its own"),
    "rate-limit.requests": Support(EMULATED, "an iRule counts each client address's requests in a session table "
                                             "(`table incr`, HTTP_REQUEST) over fixed windows of whole seconds "
                                             "(burst/rate rounded up) starting at the client's first request; "
                                             "beyond rate x window in the window: 429; refused requests count"),
    "rate-limit.connections": Support(EMULATED, "the same in CLIENT_ACCEPTED for connections: `reject` beyond the "
                                                "limit"),
    "ha.vrrp": Support(EMULATED, "BIG-IP pairs fail over by their device group (a floating traffic group holds the "
                                 "virtual addresses; ConfigSync copies the configuration), not keepalived: lbc writes "
                                 "one configuration for the group and no keepalived.conf; set up the device trust, "
                                 "device group and traffic group on the devices (docs/pair.md)"),
    "ha.state-sync": Support(NATIVE, "the source-address persistence profile mirrors its records to the device "
                                     "group's peer (mirror enabled): source-IP sticky clients keep their server "
                                     "after a failover; open connections are not mirrored (not verified on a device)"),
    "logs.stdout": Support(UNSUPPORTED, "BIG-IP has no standard output for traffic logs: use `to: syslog`"),
    "logs.file": Support(UNSUPPORTED, "BIG-IP writes traffic logs to remote servers (request logging, high-speed "
                                      "logging), not to a file lbc names: use `to: syslog`"),
    "logs.syslog": Support(NATIVE, "HTTP listeners: a request logging profile sends one line per response over UDP "
                                   "(mds-udp) to a pool holding the syslog server, as the template's text without a "
                                   "syslog header (facility unused); host and path unquoted; bytes_in, connect_ms and "
                                   "total_ms are `-`, service is the virtual's default pool; TCP listeners refused. "
                                   "The template's variables are not verified on a device"),
    "logs.json": Support(UNSUPPORTED, "the request logging template does not escape values for JSON"),
    "metrics.endpoint": Support(UNSUPPORTED, "BIG-IP has its own statistics and telemetry (tmsh show ltm pool, SNMP, "
                                             "Telemetry Streaming): lbc writes no admin endpoint"),
}
assert set(_COMMON) == set(FEATURES), "declare every feature for F5"


def capabilities(overrides: Optional[dict[str, Support]] = None) -> dict[str, Support]:
    caps = dict(_COMMON)
    caps.update(overrides or {})
    return caps


def listener_idle_ms(lst) -> int:
    """The TCP profile's idle timeout: the longest of the listener's client, server (and tunnel) timeouts."""
    idle = max(lst.timeouts.client_ms, lst.timeouts.server_ms)
    if lst.websocket or not lst.reads_http:
        idle = max(idle, lst.timeouts.tunnel_ms)
    return idle


def refusals(model: Topology) -> Iterator[tuple[str, tuple, str]]:
    """Combinations BIG-IP (as lbc lowers it) cannot express; each becomes an LBC801."""
    for lst in model.listeners:
        log = lst.access_log
        if log is not None and log.to == "syslog" and not lst.reads_http:
            yield ("logs.syslog", log.path + ("to",), f"listener '{lst.name}' is TCP: BIG-IP's request logging "
                   "profile logs HTTP requests only")
        yield from _tls_refusals(lst)
        idle = _seconds(listener_idle_ms(lst))
        if idle > IDLE_MAX_S:
            yield ("idle-timeout", lst.path + ("timeouts",), f"listener '{lst.name}' would keep idle connections "
                   f"{idle} s; BIG-IP's TCP profile (as AS3 declares it) allows at most {IDLE_MAX_S} s")
    for svc in model.services:
        st = svc.stickiness
        for ms, key in ((st.cookie_max_age_ms if isinstance(st, CookieStickiness) else None, ("cookie", "max_age")),
                        (st.idle_timeout_ms if isinstance(st, SourceIpStickiness) else None, ("idle_timeout",))):
            if ms is not None and _seconds(ms) > PERSIST_MAX_S:
                yield ("stickiness.cookie-max-age" if key[0] == "cookie" else "stickiness.source-ip", st.path + key,
                       f"BIG-IP persistence (as AS3 declares it) lasts at most {PERSIST_MAX_S} s (7 days)")
        if svc.health is not None:
            # BIG-IP monitor properties count seconds up to a day; lbc derives two of them (monitor_times)
            too_long = [f"{k.replace('_', '-')} {v} s" for k, v in monitor_times(svc.health).items()
                        if v > MONITOR_MAX_S]
            if too_long:
                yield ("health.tcp" if svc.health.kind == "tcp" else "health.http", svc.health.path + ("interval",),
                       f"a BIG-IP monitor counts at most {MONITOR_MAX_S} s, and this check needs "
                       f"{', '.join(too_long)} (timeout = interval x fall + 1 s, time-until-up = interval x "
                       "(rise - 1)); use a shorter interval")
        fb = svc.fallback
        if fb and fb.kind == "respond" and not tcl_representable(fb.body):
            yield ("fallback.respond", fb.path + ("respond", "body"), "iRules run Tcl 8.4, whose strings cannot hold "
                   "characters outside the Basic Multilingual Plane (e.g. emoji)")


# BIG-IP's names of the TLS 1.3 suites in a cipher string.
F5_TLS13 = {"TLS_AES_128_GCM_SHA256": "TLS13-AES128-GCM-SHA256", "TLS_AES_256_GCM_SHA384": "TLS13-AES256-GCM-SHA384",
            "TLS_CHACHA20_POLY1305_SHA256": "TLS13-CHACHA20-POLY1305-SHA256"}


def f5_ciphers(t) -> str:
    """The client-ssl cipher string: the TLS 1.2-and-older suites (BIG-IP takes OpenSSL names), then the
    TLS 1.3 suites by BIG-IP's names."""
    return ":".join(list(t.cipher_list if t.min_version != "1.3" else ()) + [F5_TLS13[s] for s in t.ciphersuite_list])


def _tls_refusals(lst: Listener) -> Iterator[tuple[str, tuple, str]]:
    t = lst.tls
    if not t.decrypts:
        return
    if t.curves is not None:
        yield ("tls.cipher-lists", t.path + ("curves",), "a BIG-IP client-ssl profile has no list of key-exchange "
               "groups (lbc writes none; BIG-IP uses its own)")
    unknown = [s for s in t.ciphersuite_list if s not in F5_TLS13]
    if unknown:
        yield ("tls.cipher-lists", t.path + ("ciphersuites",), f"lbc knows no BIG-IP name for {', '.join(unknown)} "
               f"(it writes {', '.join(F5_TLS13)})")


# ---------------------------------------------------------------- the plan (plain data)
# Slotted: one object per instance instead of two (no __dict__): 20,000 members at 10,000
# services, less to allocate and less for the collector to walk while the plan is built.

@dataclass(frozen=True, slots=True)
class Member:
    server: str
    address: str
    port: int
    fqdn: bool                       # address is a DNS name (an FQDN node)
    ratio: Optional[int]             # None: all equal, not written
    priority_group: Optional[int]    # None: one tier
    connection_limit: Optional[int]
    state: str                       # enabled | disabled (hold, weight 0) | offline (down)
    monitor: Optional[str] = None    # member-level monitor when the pool's members differ


@dataclass(frozen=True, slots=True)
class Pool:
    local: str
    service: str
    lb_mode: str
    min_active: int                  # 1 with priority groups, else 0
    monitor: Optional[str]
    reselect_tries: int
    members: tuple[Member, ...]
    fallback: bool = False           # the pool of a fallback server


@dataclass(frozen=True, slots=True)
class Monitor:
    local: str
    kind: str                        # http | https | tcp
    interval: int                    # seconds
    timeout: int
    time_until_up: int
    alias_port: Optional[int]        # None: the member's own port
    send: Optional[str] = None       # in the monitor string language (escapes like \r\n, \xHH)
    recv: Optional[str] = None
    recv_disable: Optional[str] = None


@dataclass(frozen=True, slots=True)
class Persistence:
    local: str
    kind: str                        # cookie | source-addr
    cookie_name: str = ""
    expiration: int = 0              # seconds, 0: a session cookie
    secure: bool = False
    timeout: int = 0                 # source-addr: idle seconds
    carp: bool = False
    mirror: bool = False             # source-addr: records copied to the device group's peer (balancers.state_sync)


@dataclass(frozen=True, slots=True)
class FileObject:
    local: str                       # e.g. fvterm.crt
    kind: str                        # cert | key
    source: str                      # the PEM file's path as the topology writes it


@dataclass(frozen=True, slots=True)
class ClientSSL:
    local: str
    cert: str                        # file object local names
    key: Optional[str]
    server_name: Optional[str]
    sni_default: bool
    peer_cert_mode: str              # ignore | request | require
    ca_file: Optional[str]
    min_version: str
    ciphers: str = ""                # the cipher string (f5_ciphers)


@dataclass(frozen=True, slots=True)
class ServerSSL:
    local: str
    verify: bool
    ca_file: Optional[str]
    authenticate_name: Optional[str]
    server_name: Optional[str]


@dataclass(frozen=True, slots=True)
class Hsts:
    max_age: int                     # seconds
    include_subdomains: bool
    preload: bool


@dataclass(frozen=True, slots=True)
class HttpProfile:
    local: str
    xff: bool
    proto: Optional[str]             # X-Forwarded-Proto value, or None
    hsts: Optional[Hsts] = None      # the profile's own HSTS insertion


@dataclass(frozen=True, slots=True)
class TcpProfile:
    local: str
    idle_timeout: int                # seconds


@dataclass(frozen=True, slots=True)
class RequestLog:
    local: str
    pool: str                        # local name of the pool holding the syslog server
    template: str                    # the line, in the request logging profile's $VARIABLES


@dataclass(frozen=True, slots=True)
class Rule:
    local: str
    text: str


@dataclass(frozen=True, slots=True)
class DataGroup:
    local: str
    networks: tuple[str, ...]        # type ip (address) records: normalised networks


@dataclass(frozen=True, slots=True)
class Virtual:
    local: str
    listener: str
    address: str
    port: int
    l7: bool
    tls_mode: str
    pool: Optional[str]
    persist: Optional[str]
    client_ssl: tuple[str, ...]
    server_ssl: Optional[str]
    http: Optional[str]
    tcp: str
    websocket: bool
    rules: tuple[str, ...]
    request_log: Optional[str] = None


@dataclass(frozen=True, slots=True)
class Plan:
    topology: str
    monitors: tuple[Monitor, ...]
    persistences: tuple[Persistence, ...]
    files: tuple[FileObject, ...]
    client_ssl: tuple[ClientSSL, ...]
    server_ssl: tuple[ServerSSL, ...]
    http: tuple[HttpProfile, ...]
    tcp: tuple[TcpProfile, ...]
    pools: tuple[Pool, ...]
    rules: tuple[Rule, ...]
    virtuals: tuple[Virtual, ...]
    request_logs: tuple[RequestLog, ...] = ()
    data_groups: tuple[DataGroup, ...] = ()


# ---------------------------------------------------------------- string encodings

def install_section(files: tuple[FileObject, ...], object_path: Callable[[str], str]) -> list[str]:
    """The README's certificate installation, the same for both F5 targets: tmsh takes each file's
    path as the topology writes it."""
    if not files:
        return []
    lines = ["## Certificates and keys", "",
             "Copy the PEM files to the BIG-IP at the paths below, the topology's as written (absolute paths",
             "are recommended: tmsh gets a relative one unchanged), then install them:", "", "```"]
    lines += [f"tmsh install sys crypto {f.kind} {object_path(f.local)} from-local-file {f.source}" for f in files]
    return lines + ["```", ""]


def safe_name(text: str) -> str:
    """A topology name as an F5 name part (the file-derived default name is not schema-checked)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", text) or "lbc"
    return name if name[0].isalpha() else "t" + name


_MONITOR_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,:/_=@%!&~-")
_ERE_SPECIAL = frozenset(".[\\()*+?{|^$")


def _hex(c: str) -> str:
    return "".join(f"\\x{b:02x}" for b in c.encode("utf-8"))


def monitor_text(text: str, extra_safe: str = "") -> str:
    """Literal text in a monitor send string: anything unusual as \\xHH, so no quote, backslash or
    backquote (AS3 expands backquotes) reaches the configuration."""
    return "".join(c if c in _MONITOR_SAFE or c in extra_safe else _hex(c) for c in text)


def monitor_ere_literal(text: str) -> str:
    """`text` as a POSIX ERE matching it literally, in the monitor string language.

    The monitor decodes \\xHH first (K4186), then matches the regular expression (K5917): an ERE
    special character becomes \\x5c (a backslash) followed by the character itself, hex-encoded.
    """
    out = []
    for c in text:
        if c in _ERE_SPECIAL:
            out.append("\\x5c" + _hex(c))
        elif c in _MONITOR_SAFE:
            out.append(c)
        else:
            out.append(_hex(c))
    return "".join(out)


MONITOR_MAX_S = 86_400     # BIG-IP's (and AS3's) bound on a monitor's interval, timeout and time-until-up
PERSIST_MAX_S = 604_800    # AS3's bound on a persistence profile's cookie ttl and source-address duration
IDLE_MAX_S = 86_400        # AS3's bound on a TCP profile's idle timeout (tmsh would take more; one rule for both)


def monitor_times(h) -> dict[str, int]:
    """A monitor's interval, timeout (fall probes missed, plus a second) and time-until-up, in seconds."""
    interval = _seconds(h.interval_ms)
    return dict(interval=interval, timeout=interval * h.fall + 1, time_until_up=interval * (h.rise - 1))


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


def member_address(addr: str) -> tuple[str, bool]:
    """(address, is_fqdn)."""
    ip = ip_text(addr)
    return (addr.lower(), True) if ip is None else (ip, False)


# ---------------------------------------------------------------- lowering

class _Lower:
    def __init__(self, model: Topology, path: PathFn):
        self.m = model
        self.path = path
        self.monitors: dict[str, Monitor] = {}
        self.persist: dict[str, Persistence] = {}
        self.files: dict[str, FileObject] = {}
        self.client_ssl: dict[str, ClientSSL] = {}
        self.server_ssl: dict[str, ServerSSL] = {}
        self.http: dict[str, HttpProfile] = {}
        self.tcp: dict[str, TcpProfile] = {}
        self.pools: dict[str, Pool] = {}
        self.rules: dict[str, Rule] = {}
        self.virtuals: dict[str, Virtual] = {}
        self.request_logs: dict[str, RequestLog] = {}
        self.data_groups: dict[str, DataGroup] = {}
        self.route_lists: dict[str, dict[tuple, int]] = {}   # listener -> route access list -> its number

    # -- objects
    def file(self, local: str, kind: str, source: str) -> str:
        self.files.setdefault(local, FileObject(local, kind, source))
        return local

    def monitor_for(self, svc: Service, server: Server, port: int) -> Optional[str]:
        h = svc.health
        if h is None:
            return None
        hport = server.port(h.port_name) if h.port_name else port
        alias = None if hport == port else hport
        local = f"{svc.name}.monitor" if alias is None else f"{svc.name}.{alias}.monitor"
        if local in self.monitors:
            return local
        common: dict[str, Any] = dict(**monitor_times(h), alias_port=alias)
        if h.kind == "tcp":
            self.monitors[local] = Monitor(local, "tcp", **common)
            return local
        if h.http_host:
            send = (f"GET {monitor_text(h.http_path, '.?*+')} HTTP/1.1\\r\\nHost: {monitor_text(h.http_host, '.')}"
                    "\\r\\nConnection: Close\\r\\n\\r\\n")
        else:  # one send string serves every member: no per-server Host, so HTTP/1.0 without one
            send = f"GET {monitor_text(h.http_path, '.?*+')} HTTP/1.0\\r\\n\\r\\n"
        recv = f"^HTTP/1[.][01] {h.expect_status}"
        if h.expect_body:
            # the body follows the status line and the headers; (.|\n) spans lines whatever `.` does
            recv += f" (.|\\n)*{monitor_ere_literal(h.expect_body)}"
        # Drain on body: an answer with the expected status but without the text (Flynet's ALL
        # SESSIONS IN USE, ON HOLD) leaves the member up (disabled): its persisted clients stay.
        disable = f"^HTTP/1[.][01] {h.expect_status}" if svc.drains_on_body else None
        tls = svc.upstream_tls is not None or self.m.checks_over_tls(svc)
        self.monitors[local] = Monitor(local, "https" if tls else "http", send=send, recv=recv,
                                       recv_disable=disable, **common)
        return local

    def pool(self, svc: Service, port_name: str) -> str:
        local = _pool_local(svc.name, port_name)
        if local in self.pools:
            return local
        tiers = svc.tiers
        # BIG-IP serves the HIGHEST group first; lbc's priority 1 is served first
        groups = {tier: len(tiers) - i for i, tier in enumerate(tiers)} if len(tiers) > 1 else {}
        weights = {s.weight for s in svc.servers if s.weight > 0}
        unequal = len(weights) > 1
        ports = [s.port(port_name) for s in svc.servers]
        monitors = [self.monitor_for(svc, s, port) for s, port in zip(svc.servers, ports)]
        one_monitor = len(set(monitors)) == 1    # then it is the pool's, none per member
        shared = monitors[0] if one_monitor else None
        members = []
        for s, port, monitor in zip(svc.servers, ports, monitors):
            addr, fqdn = member_address(s.address)
            members.append(Member(
                server=s.name, address=addr, port=port, fqdn=fqdn,
                ratio=s.weight if unequal and s.weight > 0 else None,
                priority_group=groups.get(s.priority),
                connection_limit=s.max_sessions, state=_MEMBER_STATE[s.admission],
                monitor=None if one_monitor else monitor))
        match svc.balance:
            case "least-connections":
                mode = "ratio-least-connections-member" if unequal else "least-connections-member"
            case "weighted-random":
                mode = "ratio-member"
            case "round-robin" | "source-hash":   # source-hash is round-robin plus CARP persistence
                mode = "ratio-member" if unequal else "round-robin"
            case _:
                assert_never(svc.balance)
        self.pools[local] = Pool(local, svc.name, mode, 1 if len(tiers) > 1 else 0, shared,
                                 min(3, len(svc.servers) - 1) if svc.redispatch else 0, tuple(members))
        return local

    def fallback_pool(self, svc: Service) -> str:
        local = f"{svc.name}.fallback.server"
        fb = svc.fallback
        addr, fqdn = member_address(fb.address)
        self.pools.setdefault(local, Pool(local, svc.name, "round-robin", 0, None, 0, (
            Member("fallback", addr, fb.port, fqdn, None, None, None, "enabled"),), fallback=True))
        return local

    def persistence(self, svc: Service, secure: bool) -> Optional[str]:
        st = svc.stickiness
        match st:
            case CookieStickiness():
                local = f"{svc.name}.cookie"
                exp = _seconds(st.cookie_max_age_ms) if st.cookie_max_age_ms is not None else 0
                self.persist.setdefault(local, Persistence(local, "cookie", cookie_name=st.cookie_name,
                                                           expiration=exp, secure=secure))
                return local
            case SourceIpStickiness() | NoStickiness() | ApplicationStickiness():
                pass   # source-addr below, also for source-hash balancing
            case _:
                assert_never(st)
        if st.mode == "source-ip" or svc.balance == "source-hash":
            local = f"{svc.name}.source-addr"
            timeout = _seconds(st.idle_timeout_ms) if isinstance(st, SourceIpStickiness) else 180
            b = self.m.balancers
            self.persist.setdefault(local, Persistence(local, "source-addr", timeout=timeout,
                                                       carp=svc.balance == "source-hash",
                                                       mirror=b is not None and b.state_sync))
            return local
        return None

    def server_ssl_for(self, svc: Service) -> Optional[str]:
        u = svc.upstream_tls
        if u is None:
            return None
        local = f"{svc.name}.serverssl"
        ca = self.file(f"{svc.name}.ca.crt", "cert", u.ca) if (u.verify and u.ca) else None
        self.server_ssl.setdefault(local, ServerSSL(local, u.verify and ca is not None, ca,
                                                    u.verify_name if u.verify else None, u.sni or u.verify_name))
        return local

    # -- listeners
    def listener(self, lst: Listener) -> None:
        m = self.m
        local = lst.name
        tls = lst.tls
        secure = lst.decrypts
        services = lst.routed_services

        # persistence: one profile on the virtual; per-route `persist` only when the services differ
        persists = {n: self.persistence(m.service(n), secure) for n in services}
        keys = {n: _persist_key(m.service(n)) for n in services}
        mixed_persist = len(set(keys.values())) > 1
        default_persist = next((persists[n] for n in services if persists[n]), None)

        client_ssl = self.client_ssl_profiles(lst) if secure else []
        server_ssls = {n: self.server_ssl_for(m.service(n)) for n in services} if tls.mode == "bridge" else {}
        distinct_ssl = sorted({v for v in server_ssls.values() if v})
        server_ssl = next((server_ssls[n] for n in services if server_ssls.get(n)), None)
        mixed_ssl = len(distinct_ssl) > 1

        http = self.http_profile(lst)
        tcp = f"{local}.tcp"
        self.tcp[tcp] = TcpProfile(tcp, _seconds(listener_idle_ms(lst)))

        # routes -> iRule actions
        def action(r: Route) -> "Action | Redirect":
            if r.service is None:       # the route answers with a redirect
                rd = r.redirect
                assert rd is not None
                return Redirect(rd.status, rd.scheme, rd.host, rd.port_suffix)
            svc = m.service(r.service)
            pool = self.pool(svc, r.port_name)
            member = None
            if r.server:
                s = svc.server(r.server)
                member = (member_address(s.address)[0], s.port(r.port_name))
            return Action(self.path(pool), member, self.failure(svc, lst),
                          persist=self.persist_cmd(svc, persists[svc.name]) if mixed_persist else None,
                          ssl_profile=self.path(server_ssls[svc.name]) if mixed_ssl and server_ssls.get(svc.name) else None,
                          fallback_on_failure=svc.drains_on_body, access=self.route_access(lst, r))

        exact, wildcard, default = self.host_branches(lst, action)
        l7 = lst.reads_http
        sni_routing = tls.mode == "passthrough" and bool(exact or wildcard)
        lb_failed = self.failed_pools(lst)
        proxies = {m.service(n).proxy_protocol for n in services} - {"none"}
        proxy = max(proxies) if proxies else None   # v2 > v1; rules keep one version per listener
        proxy_pools = tuple(sorted({self.path(_pool_local(r.service, r.port_name)) for r in lst.routes
                                    if r.service and m.service(r.service).proxy_protocol != "none"}))
        routing = bool(exact or wildcard or mixed_persist or mixed_ssl
                       or (default and (isinstance(default, (PathChoice, Redirect)) or default.member
                                        or default.failure)))
        if not l7 and not sni_routing and default is None:
            routing = False
        if isinstance(default, Action) and default.access:    # the default route's list needs the iRule
            routing = True
        spec = RuleSpec(l7=l7, sni=sni_routing, exact=tuple(exact), wildcard=tuple(wildcard), default=default,
                        lb_failed=tuple(lb_failed), proxy=proxy, proxy_pools=proxy_pools, routing=routing)
        # the access list first: a refused client meets no other rule
        rules: tuple[str, ...] = self.access(lst) + self.rate_limit(lst) + self.redirect_https(lst) \
            + self.header_rule(lst)
        if routing or lb_failed or proxy:
            self.rules[f"{local}.irule"] = Rule(f"{local}.irule", render_rule(spec))
            rules += (f"{local}.irule",)
        default_pool = None
        if default is not None and lst.default_route is not None and lst.default_route.service is not None:
            default_pool = _pool_local(lst.default_route.service, lst.default_route.port_name)
        self.virtuals[local] = Virtual(
            local, lst.name, member_address(lst.address)[0], lst.port, l7, tls.mode, default_pool,
            default_persist, tuple(client_ssl), server_ssl, http, tcp, lst.websocket and l7, rules,
            self.request_log(lst))

    def client_ssl_profiles(self, lst: Listener) -> list[str]:
        """The client-ssl profiles of a decrypting listener: several certificates make one profile per
        certificate name (server-name takes one name, a wildcard allowed), the first the sni-default;
        one certificate makes one profile."""
        m, tls, local = self.m, lst.tls, lst.name
        client_ssl: list[str] = []
        multi = len(tls.certificates) > 1
        ca = self.file(f"{local}.client-ca.crt", "cert", tls.client_ca) if tls.client_ca else None
        for cname in tls.certificates:
            cert = m.certificate(cname)
            crt = self.file(f"{cname}.crt", "cert", cert.cert)
            key = self.file(f"{cname}.key", "key", cert.key) if cert.key else None
            for j, sni in enumerate(cert.names if multi and cert.names else [None]):
                prof = f"{local}.{cname}" + (f".{j}" if j else "") + ".clientssl"
                self.client_ssl[prof] = ClientSSL(
                    prof, crt, key, server_name=sni, sni_default=multi and not client_ssl,
                    peer_cert_mode={"none": "ignore"}.get(tls.client_auth, tls.client_auth),
                    ca_file=ca, min_version=tls.min_version, ciphers=f5_ciphers(tls))
                client_ssl.append(prof)
        return client_ssl

    def http_profile(self, lst: Listener) -> Optional[str]:
        """The listener's HTTP profile (L7 only): X-Forwarded-For/-Proto and HSTS."""
        if not lst.reads_http:
            return None
        http = f"{lst.name}.http"
        self.http[http] = HttpProfile(http, lst.forwarded_headers,
                                      ("https" if lst.decrypts else "http") if lst.forwarded_headers else None,
                                      Hsts(lst.hsts.max_age_s, lst.hsts.include_subdomains, lst.hsts.preload)
                                      if lst.hsts else None)
        return http

    def host_branches(self, lst: Listener, action: Callable[[Route], "Action | Redirect"]):
        """The route table as the iRule's exact-name and wildcard branches (merged) and the default."""
        exact: list[Branch] = []
        wildcard: list[Branch] = []
        default: "Action | Redirect | PathChoice | None" = None
        for t in lst.route_table:
            a = self.table_action(t, action)
            if not t.hosts:
                default = a
                continue
            ex = tuple(h for h in t.hosts if not h.startswith("*."))
            wc = tuple(h for h in t.hosts if h.startswith("*."))
            if ex:
                exact.append(Branch(ex, a))
            if wc:
                wildcard.append(Branch(wc, a))
        return _merge(exact), _merge(wildcard), default

    def failed_pools(self, lst: Listener) -> list[tuple[str, Failure]]:
        """The pools whose LB_FAILED the iRule handles (a fallback pool, or an answer at L7), each once."""
        ports: dict[str, list[str]] = {}     # service -> the ports its routes use, in route order
        for r in lst.routes:
            if r.service is not None:
                ports.setdefault(r.service, []).append(r.port_name)
        lb_failed: dict[str, Failure] = {}
        for n in lst.routed_services:
            svc = self.m.service(n)
            f = self.failure(svc, lst)
            if f is not None and (f.kind == "pool" or (f.kind == "respond" and lst.reads_http)):
                for port_name in ports[n]:
                    lb_failed.setdefault(self.path(_pool_local(svc.name, port_name)), f)
        return list(lb_failed.items())

    def request_log(self, lst: Listener) -> Optional[str]:
        """lbc's access-log line (text format) as a request logging profile sending to the syslog server."""
        log = lst.access_log
        if log is None or log.to != "syslog" or not lst.reads_http:   # others: refused (capabilities)
            return None
        pool = f"{lst.name}.accesslog.pool"
        addr, _fqdn = member_address(log.syslog_address)
        self.pools[pool] = Pool(pool, lst.name, "round-robin", 0, None, 0,
                                (Member("syslog", addr, log.syslog_port, False, None, None, None, "enabled"),))
        local = f"{lst.name}.requestlog"
        self.request_logs[local] = RequestLog(local, pool, accesslog.text_line(dict(_LOG_FIELDS, listener=lst.name),
                                                                               True, lambda v: v))
        return local

    def header_rule(self, lst: Listener) -> tuple[str, ...]:
        """The listener's header changes as an iRule of their own, first on the virtual. An iRule, not the
        HTTP profile: the profile inserts one header and erases one (header-insert, header-erase), and
        lbc's X-Forwarded-Proto already takes its insert. HSTS stays the profile's (`Hsts`)."""
        h = lst.headers
        if h.request.empty and h.response.empty:
            return ()
        local = f"{lst.name}.headers.irule"
        self.rules[local] = Rule(local, render_header_rule(h.request, h.response))
        return (local,)

    def access(self, lst: Listener) -> tuple[str, ...]:
        """A listener's access list: an address data group per list (one `class match` lookup each,
        whatever its size) and an iRule listed first on the virtual. Its local name, or ()."""
        a = lst.access
        if a is None or not (a.allow or a.deny):
            return ()
        groups = {}
        for kind, nets in (("deny", a.deny), ("allow", a.allow)):
            if nets:
                local = f"{lst.name}.{kind}.datagroup"
                self.data_groups[local] = DataGroup(local, nets)
                groups[kind] = self.path(local)
        local = f"{lst.name}.access.irule"
        self.rules[local] = Rule(local, render_access_rule(lst.name, lst.reads_http, groups.get("deny"),
                                                           groups.get("allow")))
        return (local,)

    def route_access(self, lst: Listener, r: Route) -> Optional[tuple[Optional[str], Optional[str]]]:
        """A route's access list as address data groups (deny, allow) that the routing iRule's branch for
        the route looks up; equal lists of one listener share their data groups."""
        a = r.access
        if a is None or not (a.allow or a.deny):
            return None
        numbers = self.route_lists.setdefault(lst.name, {})
        k = numbers.setdefault(r.access_key, len(numbers) + 1)
        paths: list[Optional[str]] = []
        for kind, nets in (("deny", a.deny), ("allow", a.allow)):
            local = f"{lst.name}.route{k}.{kind}.datagroup"
            if nets:
                self.data_groups[local] = DataGroup(local, nets)
            paths.append(self.path(local) if nets else None)
        return paths[0], paths[1]

    def rate_limit(self, lst: Listener) -> tuple[str, ...]:
        """A rate limit per client address: an iRule counting in a session table (`table incr`) with
        fixed windows of whole seconds (table lifetimes are seconds). The window is burst/rate rounded
        up, the limit the rate times the window: never stricter than asked."""
        rl = lst.rate_limit
        if rl is None:
            return ()
        window = max(1, math.ceil(rl.burst / rl.per_second))
        local = f"{lst.name}.rate.irule"
        table = f"lbc.{safe_name(self.m.name)}.{lst.name}.rate"     # not a path: names no BIG-IP object
        self.rules[local] = Rule(local, render_rate_rule(lst.name, lst.reads_http, rl.unit, table, window,
                                                         max(rl.burst, rl.per_second * window)))
        return (local,)

    def redirect_https(self, lst: Listener) -> tuple[str, ...]:
        """The redirect to HTTPS as an iRule of its own, before the header and routing iRules."""
        rd = lst.redirect_https
        if rd is None:
            return ()
        local = f"{lst.name}.redirect.irule"
        self.rules[local] = Rule(local, render_redirect_rule(lst.name, rd.status, rd.exempt, rd.port_suffix))
        return (local,)

    @staticmethod
    def table_action(t: HostTable, action: Callable[[Route], "Action | Redirect"]) -> "Action | Redirect | PathChoice":
        """What a route table entry does: one action, or a choice by path (in the table's order)."""
        if not t.by_path:
            return action(t.routes[0])
        paths = tuple(PathRoute(r.url_path.kind, r.url_path.value, r.url_path.strip_length, action(r))
                      for r in t.routes if r.url_path is not None)
        rest = next((action(r) for r in t.routes if r.url_path is None), None)
        return PathChoice(paths, rest)

    def failure(self, svc: Service, lst: Listener) -> Optional[Failure]:
        fb = svc.fallback
        if fb is None:
            return None
        if fb.kind == "server":
            return Failure("pool", pool=self.path(self.fallback_pool(svc)))
        return Failure("respond", fb.status, fb.body, fb.content_type)

    def persist_cmd(self, svc: Service, persist: Optional[str]) -> str:
        p = self.persist.get(persist) if persist else None
        if p is None:
            return "persist none"
        if p.kind == "cookie":
            return f"persist cookie insert {tcl_word(p.cookie_name)} {p.expiration}"
        return f"persist source_addr {p.timeout}"

    def build(self) -> Plan:
        for lst in self.m.listeners:
            self.listener(lst)

        def s(d):
            return tuple(d[k] for k in sorted(d))
        return Plan(safe_name(self.m.name), s(self.monitors), s(self.persist), s(self.files), s(self.client_ssl),
                    s(self.server_ssl), s(self.http), s(self.tcp), s(self.pools), s(self.rules), s(self.virtuals),
                    s(self.request_logs), s(self.data_groups))


# lbc's access-log fields as request logging variables; what BIG-IP does not report is `-`
_LOG_FIELDS = {"time": "$TIME_UNIX", "client": "$CLIENT_IP:$CLIENT_PORT", "host": "${Host}", "method": "$HTTP_METHOD",
               "path": "$HTTP_URI", "status": "$HTTP_STATCODE", "service": "$VIRTUAL_POOL_NAME",
               "server": "$SERVER_IP:$SERVER_PORT", "bytes_in": "-", "bytes_out": "$RESPONSE_SIZE", "connect_ms": "-",
               "response_ms": "$RESPONSE_MSECS", "total_ms": "-"}


def _merge(branches: list[Branch]) -> list[Branch]:
    """One switch branch per distinct action (hosts in route order): thousands of hosts routed
    alike share one body instead of repeating it."""
    hosts: dict["Action | Redirect | PathChoice", list[str]] = {}
    for b in branches:
        hosts.setdefault(b.action, []).extend(b.hosts)
    return [Branch(tuple(h), a) for a, h in hosts.items()]


_MEMBER_STATE = {"down": "offline", "hold": "disabled", "active": "enabled"}   # by Server.admission


def _pool_local(service: str, port_name: str) -> str:
    return f"{service}.{port_name}.pool"


def _persist_key(svc: Service) -> tuple:
    st = svc.stickiness
    if isinstance(st, CookieStickiness):
        return ("cookie", st.cookie_name, st.cookie_max_age_ms)
    if st.mode == "source-ip" or svc.balance == "source-hash":
        return ("source-addr", st.idle_timeout_ms if isinstance(st, SourceIpStickiness) else None,
                svc.balance == "source-hash")
    return ("none",)


def build_plan(model: Topology, path: PathFn) -> Plan:
    return _Lower(model, path).build()
