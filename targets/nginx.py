"""nginx target: open-source nginx 1.22+ (Debian nginx-light + libnginx-mod-stream).

L7 listeners become `http` server blocks; L4 listeners (tcp, passthrough) become `stream`
servers, routed by SNI with `ssl_preread`. Open-source nginx has no active health checks, no
inserted-cookie stickiness and no drain (NGINX Plus features): what can be emulated is, and
CAPABILITIES says how it differs; what cannot is refused (LBC801), also per combination in
`refusals()`.

Output: `nginx.conf`, and `modules.conf` (the `load_module` line for the stream module) when a
stream listener exists. Every file nginx writes (pid, error log, access log, temp folders) is
relative to the prefix, so the caller chooses where they go: `nginx -p DIR -c nginx.conf`.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterator, Optional

import jinja2

from lbc import accesslog
from lbc.capabilities import EMULATED, NATIVE, UNSUPPORTED, Support
from lbc.model import (AccessList, AccessLog, ApplicationStickiness, CookieStickiness, HostTable, Listener, NoStickiness, Route,
                       Server, Service, SourceIpStickiness, Topology, assert_never, ip_text)
from lbc.targets import spec
from lbc.targets.nginx_text import ServerText, dur as _dur, header_lines, listener_tls, maps, proxy_settings, quote, \
    upstream_tls, upstreams

# Debian's path; a packager or test may point elsewhere (or edit/empty modules.conf).
STREAM_MODULE_DEFAULT = "/usr/lib/nginx/modules/ngx_stream_module.so"
STREAM_MODULE_ENV = "LBC_NGINX_STREAM_MODULE"

CAPABILITIES: dict[str, Support] = {
    "balance.round-robin": Support(NATIVE, "the default balancing, state shared by workers through a zone"),
    "balance.least-connections": Support(NATIVE, "least_conn"),
    "balance.weighted-random": Support(NATIVE, "`random` (not `random two`, which inverts two weights on nginx 1.22)"),
    "balance.source-hash": Support(NATIVE, "`hash $remote_addr consistent` on the full address (`ip_hash` uses "
                                           "only three octets)"),
    "server.weights": Support(NATIVE, "weight=N; nginx refuses weight=0, so a weight-0 server is handled as on hold"),
    "server.max-sessions": Support(NATIVE, "max_conns with a shared zone; when every server is full nginx answers "
                                           "502 at once (no queue), which moves to the next group or the fallback"),
    "server.hold": Support(EMULATED, "nginx has no drain: the server is `down` in the balanced upstreams and stays "
                                     "in the per-server upstreams that cookie and direct-host requests use; "
                                     "refused with source-IP stickiness (a hash moves a held server's clients)"),
    "server.down": Support(NATIVE, "down"),
    "rate-limit.requests": Support(NATIVE, "limit_req_zone on $binary_remote_addr (10 MB, about 160,000 "
                                           "clients) with rate=N r/s, limit_req burst=(burst - 1) nodelay, "
                                           "limit_req_status 429: a leaky bucket drained at the rate in "
                                           "millisecond steps; refused requests are not counted"),
    "rate-limit.connections": Support(UNSUPPORTED, "open-source nginx limits concurrent connections per address "
                                                   "(limit_conn), not their rate, and the stream module has no "
                                                   "limit_req"),
    "access.per-route": Support(NATIVE, "one `geo` per distinct list; `if ($lbc_access_N) { return 403; }` in the "
                                        "route's location, after the server's own list (nginx chooses locations on "
                                        "the decoded, normalised path: see routing.paths)"),
    "access.per-route-l4": Support(UNSUPPORTED, "the stream module would need a map from the SNI and the client "
                                                "address together; not lowered: put the list on a listener of its own"),
    "access.client-networks": Support(NATIVE, "one `geo` lookup of $remote_addr (a radix tree, the longest prefix "
                                              "wins; lbc drops allowed networks inside denied ones so that deny "
                                              "wins); L7: `return 403`, L4: the connection is passed to an "
                                              "upstream that is down, which closes it"),
    "priority.tiers": Support(EMULATED, "L7: one upstream per group, chained by `error_page 502 504` to named "
                                        "locations; a group is left when every server is failed (passive) or "
                                        "full. L4 has no error_page: two groups at most, by `backup`, and not "
                                        "with hash or random balancing"),
    "health.http": Support(EMULATED, "open-source nginx has no active checks: passive only, a server is out "
                                     "after `fall` failed connections or timeouts of real requests within "
                                     "rise x interval, and tried again after that time; the check's path and "
                                     "status are not used"),
    "health.http-body": Support(UNSUPPORTED, "open-source nginx has no active checks (`health_check` and `match` "
                                             "are NGINX Plus): a server that answers 200 without the text would "
                                             "keep its traffic"),
    "health.drain-on-body": Support(UNSUPPORTED, "open-source nginx has no active checks, so it never learns "
                                                 "that a server is full or on hold (its health page's text)"),
    "health.tls": Support(EMULATED, "passive checks only: they ride the clients' own TLS connections"),
    "health.tcp": Support(EMULATED, "passive only: a server is out after `fall` failed connections of real "
                                    "traffic within rise x interval, and tried again after that time"),
    "stickiness.cookie": Support(EMULATED, "no `sticky` in open-source nginx: the cookie is set from the answering "
                                           "server ($upstream_addr, so servers need IP addresses) and mapped back "
                                           "to a per-server upstream whose backups are the first group, reached "
                                           "through a named location per server (`error_page 418 = "
                                           "@svc.port$lbc_sticky_N`: every proxy_pass names its upstream literally, "
                                           "so no per-request search of all upstreams; services whose servers have "
                                           "the same names and addresses share the maps); a server's max_sessions "
                                           "is counted apart for those pinned requests"),
    "stickiness.cookie-max-age": Support(NATIVE, "Max-Age on the emulated cookie"),
    "stickiness.source-ip": Support(EMULATED, "`hash $remote_addr consistent`: no affinity table, so no idle "
                                              "expiry, and new clients are spread by the hash (weights kept), "
                                              "not by the service's balance method"),
    "stickiness.application": Support(NATIVE, "per-server upstreams chosen by server_name (L7) or SNI map (L4)"),
    "stickiness.max-lifetime": Support(UNSUPPORTED, "open-source nginx cannot date a cookie or an affinity"),
    "fallback.respond": Support(EMULATED, "L7: `error_page 502 504` (nginx's own errors: no server, all full, "
                                          "connect failure or timeout) to a `return`; L4: refused, a stream can "
                                          "only be closed"),
    "fallback.server": Support(EMULATED, "L7: `error_page 502 504` to a location proxying to that server; L4: a "
                                         "`backup` server, so not with hash or random balancing or a second "
                                         "priority group"),
    "redispatch": Support(NATIVE, "proxy_next_upstream on connection errors and timeouts; a pinned client's "
                                  "upstream lists the first group as backup, and the cookie is rewritten"),
    "routing.hosts": Support(NATIVE, "server_name (exact and wildcard hashes, sized for the names)"),
    "routing.pinned-server": Support(NATIVE, "a per-server upstream (the first group as backup)"),
    "routing.paths": Support(NATIVE, "a location per route (`= path`, prefix); for a prefix '/p/' also `= /p`, "
                                     "which nginx would otherwise answer with a 301 to '/p/'. nginx matches the "
                                     "decoded, normalised path (LBC613 keeps the written paths normal)"),
    "routing.strip-prefix": Support(NATIVE, "rewrite ... break in the route's location (the query stays)"),
    "routing.redirect-host": Support(NATIVE, "return N \"scheme://host[:port]$request_uri\" in the route's location "
                                             "($host when the redirect keeps the host)"),
    "tls.terminate": Support(NATIVE),
    "tls.profile": Support(NATIVE, "ssl_protocols, ssl_ciphers, ssl_conf_command Ciphersuites, ssl_ecdh_curve, "
                                   "ssl_prefer_server_ciphers (OpenSSL 3.0: TLS 1.0/1.1 get @SECLEVEL=0; no 3DES)"),
    "tls.cipher-lists": Support(NATIVE, "ssl_ciphers / ssl_conf_command Ciphersuites / ssl_ecdh_curve"),
    "tls.bridge": Support(NATIVE, "proxy_ssl_*; nginx uses one name for SNI and verification per service"),
    "tls.upstream-verify": Support(NATIVE, "proxy_ssl_verify with proxy_ssl_trusted_certificate"),
    "tls.passthrough": Support(NATIVE, "stream module"),
    "tls.sni-routing": Support(NATIVE, "ssl_preread + map $ssl_preread_server_name"),
    "tls.multi-certificate": Support(NATIVE, "one server{} per certificate, chosen by SNI (L7 only; L4 refused)"),
    "tls.client-auth": Support(NATIVE, "ssl_verify_client"),
    "listener.websocket": Support(NATIVE, "Upgrade/Connection passed (Connection \"\" otherwise: upstream keepalive); "
                                          "nginx has one read timeout for requests and "
                                          "upgraded connections, so the longer of timeouts.server and "
                                          "timeouts.tunnel is used"),
    "listener.no-buffering": Support(NATIVE, "proxy_buffering off"),
    "listener.forwarded-headers": Support(NATIVE, "X-Forwarded-For ($proxy_add_x_forwarded_for), X-Forwarded-Proto"),
    "listener.hsts": Support(NATIVE, "add_header ... always, in the server{} and every location: also on nginx's "
                                     "own answers (404 for an unknown host, 502/504, fallback pages)"),
    "listener.redirect-https": Support(NATIVE, "return N \"https://$host[:port]$request_uri\" in the server{}, "
                                               "inside `if ($uri !~ \"^(except prefixes)\")` when there are "
                                               "exceptions (compared with the normalised path, as locations are); "
                                               "runs before limit_req, so redirects are not rate limited"),
    "headers.request": Support(NATIVE, "proxy_set_header (an empty value removes the header)"),
    "headers.response": Support(EMULATED, "removal is proxy_hide_header, which removes a header the server sent, "
                                          "not one nginx writes itself (Server, Date); set = proxy_hide_header + "
                                          "add_header ... always; add = add_header ... always"),
    "upstream.proxy-protocol-v1": Support(NATIVE, "stream (L4) listeners only, one setting per listener"),
    "upstream.proxy-protocol-v2": Support(UNSUPPORTED, "nginx sends PROXY protocol v1 only"),
    "ha.vrrp": Support(NATIVE, "keepalived.conf per node: VRRP instances owning the VIPs, a check of nginx's PID "
                               "file that gives the VIPs up when it dies; a failover cuts the open connections"),
    "ha.state-sync": Support(EMULATED, "no table to copy: source-IP stickiness is a hash of the client address "
                                       "(`hash $remote_addr consistent`) over the same server list, computed "
                                       "identically on every node, so a sticky client keeps its server across a "
                                       "failover (while the nodes see the same servers up); cookie stickiness "
                                       "names the server"),
    "logs.stdout": Support(NATIVE, "access_log /dev/stdout or /dev/stderr with lbc's log_format (escape=default: "
                                   "quotes, backslashes and control characters as \\xHH)"),
    "logs.file": Support(NATIVE, "access_log FILE"),
    "logs.syslog": Support(NATIVE, "access_log syslog:server=ADDRESS:PORT,facility=F,tag=lbc"),
    "logs.json": Support(NATIVE, "log_format escape=json"),
    "metrics.endpoint": Support(EMULATED, "stub_status at /status on the admin address: nginx-wide connection and "
                                          "request totals in nginx's own text format, not Prometheus, and no "
                                          "per-server counters (open-source nginx keeps none; NGINX Plus does). A "
                                          "Prometheus exporter such as nginx-prometheus-exporter can read it"),
}

_REDIRECTS = {301, 302, 303, 307, 308}


# ------------------------------------------------------------------ small helpers
def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _pow2(n: int, floor: int) -> int:
    return max(floor, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


def _bucket(longest: int) -> int:
    """Room for three of the longest names in a bucket (each: pointer + length + name, word aligned;
    then an end pointer), with which nginx builds 10,000-name hashes without a warning (measured)."""
    return _pow2(3 * ((longest + 10 + 7) // 8 * 8) + 8, 64)


def _covers(names: tuple[str, ...], host: str) -> bool:
    if host in names:
        return True
    rest = host.split(".", 1)[1] if "." in host else ""
    return bool(rest) and not host.startswith("*.") and f"*.{rest}" in names


def _method(svc: Service) -> str:
    if svc.stickiness.mode == "source-ip" or svc.balance == "source-hash":
        return "hash $remote_addr consistent"
    return {"least-connections": "least_conn", "weighted-random": "random"}.get(svc.balance, "")


def _groups(svc: Service) -> list[list[Server]]:
    """The servers by priority group, in serving order (Service.tier for every tier, in one pass)."""
    by: dict[int, list[Server]] = {}
    for s in svc.servers:
        by.setdefault(s.priority, []).append(s)
    return [by[p] for p in sorted(by)]


def _levels(svc: Service) -> int:
    """How many fall-back steps an L4 upstream would need: the groups, plus a fallback server."""
    return len(svc.tiers) + (1 if svc.fallback and svc.fallback.kind == "server" else 0)


class _Names:
    """nginx compares upstream names without case; give each object a distinct, readable one."""

    def __init__(self):
        self.used: set[str] = set()

    def get(self, wanted: str) -> str:
        name, n = wanted, 1
        while name.lower() in self.used:
            n += 1
            name = f"{wanted}.{n}"
        self.used.add(name.lower())
        return name


# ------------------------------------------------------------------ lowering
@dataclass
class _Upstream:
    name: str
    method: str
    servers: list[tuple[str, list[str]]] = field(default_factory=list)   # (host:port, parameters)


@dataclass
class _Chain:
    """Everything one (service, port) needs in one block (http or stream)."""
    service: Service
    port: str
    tiers: list[str]                      # upstream names, in serving order
    pins: dict[str, str]                  # server name -> its pinned upstream
    fallback: Optional[dict] = None
    sticky_var: Optional[str] = None      # L7 cookie: $var holding the chosen named location's suffix
    pin_suffix: dict[str, str] = field(default_factory=dict)   # L7 cookie: server name -> its suffix
    setcookie_var: Optional[str] = None   # L7 cookie: $var holding the Set-Cookie value
    tls: bool = False                     # L7 cookie: reached over TLS, so the cookie is Secure


class _Block:
    """The upstreams, maps and chains of one `http` or `stream` block."""

    def __init__(self, kind: str):
        self.kind = kind
        self.names = _Names()
        self.upstreams: list[_Upstream] = []
        self.maps: list[dict] = []
        self.chains: dict[tuple[str, str, bool], _Chain] = {}
        self.reject: Optional[str] = None
        self.geos: list[dict] = []        # geo blocks: client address -> value (access lists)
        self.geo_vars: dict[tuple, str] = {}   # (allow, deny) -> its geo's variable
        self.rate_zones: list[dict] = []  # limit_req_zone per rate-limited listener
        self.map_vars: dict[tuple, str] = {}   # (source, entries, default) -> the variable of that map

    def var(self, stem: str) -> str:
        return f"$lbc_{stem}_{len(self.maps)}"

    def server_line(self, svc: Service, s: Server, port: str, *, down: bool = False, backup: bool = False,
                    weight: bool = True) -> tuple[str, list[str]]:
        params = []
        if weight and s.weight > 1:
            params.append(f"weight={s.weight}")
        if s.max_sessions is not None:
            params.append(f"max_conns={s.max_sessions}")
        if svc.health:
            # nginx parses fail_timeout in whole seconds (`1500ms` is refused): round up
            rest_s = max(1, math.ceil(svc.health.rise * svc.health.interval_ms / 1000))
            params += [f"max_fails={svc.health.fall}", f"fail_timeout={_dur(rest_s * 1000)}"]
        if backup:
            params.append("backup")
        if down:
            params.append("down")
        return _hostport(s.address, s.port(port)), params

    def chain(self, model: Topology, svc_name: str, port: str, tls: bool = False) -> _Chain:
        svc = model.service(svc_name)
        # A cookie's attributes depend on the listener (Secure over TLS): one chain per kind of listener.
        cookie = self.kind == "http" and svc.stickiness.mode == "cookie"
        key = (svc_name, port, tls and cookie)
        if key in self.chains:
            return self.chains[key]
        method = _method(svc)
        tiers: list[str] = []
        stream_backups: list[tuple[str, list[str]]] = []
        groups = _groups(svc)
        if self.kind == "stream" and len(groups) > 1:
            # no error_page in stream: the second group becomes backup servers (refusals() keep it at two)
            stream_backups = [self.server_line(svc, s, port, backup=True, down=s.admission != "active") for s in groups[1]]
            groups = groups[:1]
        for i, group in enumerate(groups):
            up = _Upstream(self.names.get(f"{svc.name}.{port}" + (f".tier{i + 1}" if i else "")), method)
            up.servers = [self.server_line(svc, s, port, down=s.admission != "active") for s in group] + stream_backups
            self.upstreams.append(up)
            tiers.append(up.name)
        c = _Chain(svc, port, tiers, {}, tls=tls and cookie)
        fb = svc.fallback
        if fb and self.kind == "stream":
            if fb.kind == "server":   # the last backup of the (only) upstream; a text is refused at L4
                self.upstreams[-1].servers.append((_hostport(fb.address, fb.port), ["backup"]))
        elif fb and fb.kind == "respond":
            c.fallback = {"kind": "respond", "name": self.names.get(f"{svc.name}.{port}.fallback"),
                          "status": fb.status, "body": fb.body, "content_type": fb.content_type}
        elif fb:
            up = _Upstream(self.names.get(f"{svc.name}.{port}.fallback"), "", [(_hostport(fb.address, fb.port), [])])
            self.upstreams.append(up)
            c.fallback = {"kind": "server", "name": up.name}
        self.chains[key] = c
        match svc.stickiness:
            case CookieStickiness() as st if cookie:
                self.cookie(st, svc, port, c)
            case CookieStickiness() | NoStickiness() | SourceIpStickiness() | ApplicationStickiness():
                pass   # a cookie at L4 is refused; source-IP is the upstream's hash (_method); application pins by name
            case _:
                assert_never(svc.stickiness)
        return c

    def pin(self, c: _Chain, server: str) -> str:
        """An upstream that sends to one server, then (redispatch) to the first group."""
        if server in c.pins:
            return c.pins[server]
        svc, port = c.service, c.port
        s = svc.server(server)
        up = _Upstream(self.names.get(f"{svc.name}.{port}.srv.{s.name}"), "")
        up.servers.append(self.server_line(svc, s, port, down=s.state == "down", weight=False))
        if svc.redispatch:
            first = svc.tier(svc.tiers[0])
            up.servers += [self.server_line(svc, o, port, backup=True, weight=False)
                           for o in first if o.name != s.name and o.admission == "active"]
        self.upstreams.append(up)
        c.pins[server] = up.name
        return up.name

    def cookie(self, st: CookieStickiness, svc: Service, port: str, c: _Chain) -> None:
        values = _Names()
        by_value = [(values.get(s.name), s) for s in svc.servers]
        attrs = "; Path=/; HttpOnly"
        if c.tls:   # the same attributes in every target: Secure where the client speaks TLS
            attrs += "; Secure"
        if st.cookie_max_age_ms is not None:
            attrs += f"; Max-Age={math.ceil(st.cookie_max_age_ms / 1000)}"
        value_var = self.shared_map("cookie", "$http_cookie", [
            (f"~(?:^|;)\\s*{re.escape(st.cookie_name)}=(?<lbc_value>[^;]*)", "$lbc_value", False)], None)
        for _v, s in by_value:
            self.pin(c, s.name)
        # the named location of server s is the service's own plus ".srv.<value>": services whose servers
        # have the same names share this map, and the Set-Cookie one when their addresses agree too
        c.pin_suffix = {s.name: f".srv.{v}" for v, s in by_value}
        c.sticky_var = self.shared_map("sticky", value_var, [(v, f".srv.{v}", True) for v, s in by_value], "")
        # $upstream_addr lists every server tried ("a:p, b:p : c:p"); the last one answered
        c.setcookie_var = self.shared_map("setcookie", "$upstream_addr", [
            (f"~(?:^|\\s){re.escape(_hostport(s.address, s.port(port)))}\\z", f"{st.cookie_name}={v}{attrs}", True)
            for v, s in by_value if ip_text(s.address) is not None], "")

    def shared_map(self, stem: str, source: str, entries: list[tuple[str, str, bool]], default: Optional[str]) -> str:
        """The variable of a map; equal maps are one. nginx gives each request a slot per variable (zeroed
        memory) and searches them linearly when it loads a configuration: a map per service would cost
        every request time in the number of services."""
        key = (source, tuple(entries), default)
        if key not in self.map_vars:
            self.map_vars[key] = var = self.var(stem)
            self.maps.append({"source": source, "var": var, "hostnames": False, "entries": entries, "default": default})
        return self.map_vars[key]

    def access(self, l: Listener) -> Optional[str]:
        """A listener's access list as one `geo` lookup (a radix tree; the longest prefix wins, which
        the model's `AccessList.table` makes equal to deny-first): $var is 1 for a refused client."""
        return self.access_list(l.access)

    def access_list(self, a: Optional[AccessList]) -> Optional[str]:
        """The geo variable of an access list (a listener's or a route's); equal lists share one geo."""
        if a is None or not (a.allow or a.deny):
            return None
        key = (a.allow, a.deny)
        if key not in self.geo_vars:
            self.geo_vars[key] = var = f"$lbc_access_{len(self.geos)}"
            self.geos.append({"var": var, "default": "0" if a.default_allows else "1",
                              "entries": [(net, "0" if ok else "1") for net, ok in a.table]})
        return self.geo_vars[key]

    def rate_limit(self, l: Listener) -> Optional[dict]:
        """A listener's request rate limit: a limit_req zone keyed by the client's address (a leaky
        bucket: `rate` per second, refused requests are not counted) used by its server blocks."""
        rl = l.rate_limit
        if rl is None or rl.unit != "request":     # connections: refused (CAPABILITIES)
            return None
        zone = {"name": f"lbc_rate_{len(self.rate_zones)}", "rate": rl.per_second,
                "burst": rl.burst - 1}           # nginx admits one request plus `burst` at once
        self.rate_zones.append(zone)
        return zone

    def reject_upstream(self) -> str:
        if self.reject is None:
            self.reject = self.names.get("lbc.no-route")
            self.upstreams.append(_Upstream(self.reject, "", [("127.0.0.1:9", ["down"])]))
        return self.reject


def _locations(c: _Chain, server: Optional[str], block: _Block) -> list[dict]:
    """The location chain of one route target: `/`, then one named location per further group.

    With cookie stickiness `/` only jumps (`error_page 418 = @svc.port$lbc_sticky_N`) to the named location
    the cookie chose: one per server (`@svc.port.srv.NAME`), and the service's own for a client without
    a (known) cookie.
    Each names its upstream literally: with `proxy_pass http://$var` nginx would search every upstream
    of the configuration by name on each request. A named location keeps the method and the body."""
    scheme = "https" if c.service.upstream_tls else "http"
    fb = c.fallback
    after = ["@" + fb["name"]] if fb else []
    later = ["@" + t for t in c.tiers[1:]]

    def proxy(name: str, target: str, nxt: list[str]) -> dict:
        return {"name": name, "scheme": scheme, "target": target, "next": nxt[0] if nxt else None,
                "setcookie": c.setcookie_var}

    locs: list[dict]
    if server is None and c.sticky_var:
        own = "@" + c.tiers[0]
        locs = [{"name": "/", "jump": own + c.sticky_var}, proxy(own, c.tiers[0], later + after)]
        locs += [proxy(own + c.pin_suffix[s], up, later + after) for s, up in c.pins.items()]
    else:
        locs = [proxy("/", c.tiers[0] if server is None else block.pin(c, server), later + after)]
    locs += [proxy(name, name[1:], later[i + 1:] + after) for i, name in enumerate(later)]
    if fb and fb["kind"] == "respond":
        locs.append({"name": "@" + fb["name"], "respond": fb})
    elif fb:
        locs.append({"name": "@" + fb["name"], "scheme": scheme, "target": fb["name"], "next": None, "setcookie": None})
    return locs


def _upstream_tls(svc: Service) -> Optional[dict]:
    u = svc.upstream_tls
    if u is None:
        return None
    # the name is sent as SNI and checked in the certificate: sni, else verify_name (as the other targets)
    name = u.sni or u.verify_name
    return {"sni": name is not None, "name": name, "verify": u.verify and u.ca is not None, "ca": u.ca}


def _http_server(model: Topology, l: Listener, block: _Block) -> list[dict]:
    """One server{} per (route table entry, certificate) and a default server for the listener's socket."""
    certs = [model.certificate(n) for n in l.tls.certificates] if l.decrypts else []
    groups: dict[tuple, list[str]] = {}
    default_table = None
    for i, t in enumerate(l.route_table):
        if not t.hosts:
            default_table = t
        for h in t.hosts:
            cert = next((c for c in certs if _covers(c.names, h)), certs[0] if certs else None)
            groups.setdefault((i, cert.name if cert else None), []).append(h)
    blocks = []
    refused = block.access(l)
    rate = block.rate_limit(l)
    redirect = _redirect_https(l)
    listen = _hostport(l.address, l.port)

    def block_for(t: Optional[HostTable], cert_name, hosts, default):
        b = {"listen": listen, "default": default, "hosts": hosts,
             "cert": model.certificate(cert_name) if cert_name else None, "locations": [], "upstream_tls": None,
             "refused": refused, "rate": rate, "redirect": redirect}
        if t is None:
            b["locations"] = [{"name": "/", "status": 404}]
        elif not t.by_path and t.routes[0].redirect is not None:
            b["locations"] = [_redirect_location("/", t.routes[0])]
        elif not t.by_path:
            r = t.routes[0]
            c = block.chain(model, r.service, r.port_name, tls=l.decrypts)
            b["locations"] = _locations(c, r.server, block)
            b["locations"][0]["refused"] = block.access_list(r.access)
            b["upstream_tls"] = _upstream_tls(c.service)
        else:
            b["locations"] = _path_locations(model, l, t, block)
        return b

    blocks.append(block_for(default_table, certs[0].name if certs else None, [], True))
    for (i, cert_name), hosts in groups.items():
        blocks.append(block_for(l.route_table[i], cert_name, hosts, False))
    return blocks


def _redirect_https(l: Listener) -> Optional[dict]:
    """The server-level redirect to HTTPS (rewrite phase: before location choice, after the access list's
    `if`). `except` prefixes become one anchored regex on $uri, the path nginx also chooses locations by;
    their text is url_path (letters, digits, . _ ~ - /), so escaping '.' is all it needs."""
    rd = l.redirect_https
    if rd is None:
        return None
    exempt = "|".join(p.replace(".", "\\.") for p in rd.exempt)
    return {"status": rd.status, "location": f"https://$host{rd.port_suffix}$request_uri",
            "unless": f"^({exempt})" if exempt else None}


def _redirect_location(name: str, r: Route) -> dict:
    """A route that answers with a redirect: `return` with the path and query as the client sent them
    ($request_uri). The host is a DNS name (schema) or nginx's $host (the Host's name, lower-cased)."""
    rd = r.redirect
    assert rd is not None
    return {"name": name, "redirect": {"status": rd.status,
                                       "location": f"{rd.scheme}://{rd.host or '$host'}{rd.port_suffix}$request_uri"}}


def _path_locations(model: Topology, l: Listener, t: HostTable, block: _Block) -> list[dict]:
    """A host routed by path: one location per route (nginx itself takes `=` first, then the longest
    prefix), each with its own chain's named locations; a path no route takes answers 404."""
    wanted: list[tuple[str, Optional[Route]]] = []
    for r in t.routes:
        u = r.url_path
        wanted.append(("/" if u is None else (f"= {quote(u.value)}" if u.kind == "exact" else quote(u.value)), r))
    exact = {r.url_path.value for r in t.routes if r.url_path is not None and r.url_path.kind == "exact"}
    for r in t.routes:
        u = r.url_path
        if u is not None and u.kind == "prefix" and u.value.endswith("/") and len(u.value) > 1:
            # nginx answers "/api" with a 301 to "/api/" when a proxied location is "/api/": an exact
            # location keeps "/api" where the route table sends it
            bare = u.value[:-1]
            if bare not in exact:
                exact.add(bare)
                wanted.append((f"= {quote(bare)}", t.select(bare)))
    locs: list[dict] = []
    named: set[str] = set()
    for name, r in wanted:
        if r is None:
            locs.append({"name": name, "status": 404})
            continue
        if r.redirect is not None:
            locs.append(_redirect_location(name, r))
            continue
        c = block.chain(model, r.service, r.port_name, tls=l.decrypts)
        chain = _locations(c, r.server, block)
        chain[0]["name"] = name
        chain[0]["refused"] = block.access_list(r.access)   # the route's list, after the server's
        if r.url_path is not None and r.url_path.strip:
            # the prefix ends in "/" (LBC612): drop what comes before it; the query stays
            chain[0]["rewrite"] = f"^.{{{r.url_path.strip_length}}}(.*)"
        tls = _upstream_tls(c.service)
        for loc in chain:
            if loc["name"].startswith("@"):
                if loc["name"] in named:      # another route of this host uses the same chain
                    continue
                named.add(loc["name"])
            loc["upstream_tls"] = tls
            locs.append(loc)
    if not any(r.url_path is None for r in t.routes):
        locs.append({"name": "/", "status": 404})
    return locs


def _stream_server(model: Topology, l: Listener, block: _Block) -> dict:
    first = model.service(l.routes[0].service)    # refusals() make the services of a stream listener agree
    srv = {"listen": _hostport(l.address, l.port), "listener": l,
           "cert": model.certificate(l.tls.certificates[0]) if l.decrypts and
           l.tls.certificates else None,
           "preread": False, "pass": None, "proxy_protocol": first.proxy_protocol == "v1",
           "upstream_tls": _upstream_tls(first)}

    def target(r) -> str:
        c = block.chain(model, r.service, r.port_name)
        return block.pin(c, r.server) if r.server else c.tiers[0]

    if not any(r.hosts for r in l.routes):
        srv["pass"] = target(l.routes[0])
        return _stream_access(l, block, srv)
    source = "$ssl_preread_server_name" if l.tls.mode == "passthrough" else "$ssl_server_name"
    srv["preread"] = l.tls.mode == "passthrough"
    var = block.var("sni")
    d = l.default_route
    block.maps.append({"source": source, "var": var, "hostnames": True,
                       "entries": [(h, target(r), True) for r in l.routes for h in r.hosts],
                       "default": target(d) if d else block.reject_upstream()})
    srv["pass"] = var
    return _stream_access(l, block, srv)


def _stream_access(l: Listener, block: _Block, srv: dict) -> dict:
    """stream has no `return`: a refused client is passed to the upstream that is down, which
    closes the connection before anything is read or sent."""
    refused = block.access(l)
    if refused is not None:
        var = block.var("access_pass")
        passed = srv["pass"]
        block.maps.append({"source": refused, "var": var, "hostnames": False,
                           "entries": [("0", passed, not passed.startswith("$"))],
                           "default": block.reject_upstream()})
        srv["pass"] = var
    return srv


# ------------------------------------------------------------------ refusals (per combination)
def refusals(model: Topology) -> Iterator[tuple[str, tuple, str]]:
    seen: set[tuple] = set()
    for feature, path, why in _refusals(model):
        if (feature, path) not in seen:
            seen.add((feature, path))
            yield feature, path, why


def _refusals(model: Topology) -> Iterator[tuple[str, tuple, str]]:
    for l in model.listeners:
        services = [model.service(n) for n in l.routed_services]
        for svc in services:
            yield from _service_refusals(svc)
            yield from (_l7_refusals(svc) if l.reads_http else _l4_refusals(svc))
        if not l.reads_http:
            yield from _l4_listener_refusals(l, services)


def _service_refusals(svc: Service):
    if svc.stickiness.mode == "source-ip":
        for s in svc.servers:
            if s.admission == "hold":   # `state: hold` or weight 0: both are written `down` here
                yield ("server.hold", s.path + ("state" if s.state == "hold" else "weight",),
                       "with source-IP stickiness (a hash of the address) a held server's clients would move")
    u = svc.upstream_tls
    if u is not None and u.verify:
        if u.ca is None:
            yield "tls.bridge", u.path, "nginx verifies servers only against a CA file: give upstream_tls.ca"
        elif not (u.sni or u.verify_name):
            yield ("tls.upstream-verify", u.path, "nginx always checks the certificate's name: give "
                   "upstream_tls.verify_name or sni")
        if u.sni and u.verify_name and u.sni != u.verify_name:
            yield "tls.bridge", u.path + ("verify_name",), "nginx uses one name (proxy_ssl_name) for SNI and verification"


def _l7_refusals(svc: Service):
    if svc.proxy_protocol == "v1":
        yield ("upstream.proxy-protocol-v1", svc.path + ("proxy_protocol",),
               "nginx's http proxy cannot send a PROXY protocol header (only stream listeners can)")
    fb = svc.fallback
    if fb and fb.kind == "respond" and fb.status in _REDIRECTS:
        yield "fallback.respond", fb.path + ("respond", "status"), "nginx's `return` makes a redirect's text its Location"
    if svc.stickiness.mode == "cookie":
        for s in svc.servers:
            if ip_text(s.address) is None:
                yield ("stickiness.cookie", s.path + ("address",),
                       "the emulated cookie names the server from its IP address ($upstream_addr): give an IP address")
        if len(svc.tiers) > 1 and not svc.redispatch:
            yield ("priority.tiers", svc.path + ("redispatch",),
                   "with cookie stickiness, a pinned client whose server fails moves to the next group even without "
                   "redispatch")


def _l4_refusals(svc: Service):
    if svc.stickiness.mode == "cookie":
        yield "stickiness.cookie", svc.stickiness.path + ("mode",), "a TCP stream has no cookies"
    steps = _levels(svc)
    if steps > 2 or (steps == 2 and _method(svc) not in ("", "least_conn")):
        why = ("stream has no error_page, so groups and a fallback server need `backup`: two steps at most, and not "
               "with hash or random balancing")
        if len(svc.tiers) > 1:
            yield "priority.tiers", svc.path + ("servers",), why
        else:
            yield "fallback.server", svc.fallback.path, why


def _l4_listener_refusals(l: Listener, services: list[Service]):
    if len({s.proxy_protocol for s in services}) > 1:
        yield ("upstream.proxy-protocol-v1", l.path + ("routes",),
               "stream sets PROXY protocol per listener: the services routed here must agree")
    if len({_upstream_tls(s) and tuple(sorted(_upstream_tls(s).items())) for s in services}) > 1:
        yield "tls.bridge", l.path + ("routes",), "stream sets upstream TLS per listener: the services routed here must agree"
    if l.decrypts and len(l.tls.certificates) > 1:
        yield ("tls.multi-certificate", l.tls.path + ("certificates",),
               "the stream module of nginx 1.22 cannot choose a certificate by SNI")


# ------------------------------------------------------------------ render
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("lbc.templates", "nginx"), undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
_ENV.filters["q"] = quote
_ENV.filters["qkey"] = lambda v: quote(v, map_key=True)
_ENV.filters["dur"] = _dur
_ENV.globals.update(maps=maps, proxy_settings=proxy_settings, listener_tls=listener_tls, upstream_tls=upstream_tls)

def _zone_kib(upstreams: list[_Upstream]) -> int:
    peers = sum(len(u.servers) for u in upstreams)
    return _pow2(64 + peers, 64)      # about 1 KiB a peer, measured with 10,000 servers


# Idle server connections each worker keeps per upstream. Without them nginx opens (and the server
# accepts) a connection per request: 2.5x the proxy CPU per request of a hand-written config at
# 10,000 hosts (bench/serve.py). 16 covers bursts; the memory is ~1 KiB per upstream and worker.
UPSTREAM_KEEPALIVE = 16


def _proxy_settings(l: Listener) -> tuple:
    """What a listener's server{} blocks set for proxying (equal for all listeners: set once in http{})."""
    return l.timeouts, l.websocket, l.forwarded_headers, l.buffering, tuple(header_lines(l)["proxy"])


# ------------------------------------------------------------------ access logs (lbc.accesslog's fields)
# nginx reports times in seconds ("0.002"); these maps turn one time into whole milliseconds, and keep
# what is not a single time (several servers tried: "0.001, 0.002"; none: "-") as it is.
_MS_MAPS = {"http": (("connect", "$upstream_connect_time"), ("header", "$upstream_header_time"),
                     ("total", "$request_time")),
            "stream": (("connect", "$upstream_connect_time"), ("total", "$session_time"))}


def _log_formats(l: Listener, kind: str, service: str) -> dict:
    """The log_format of one listener: its name, escaping and text (inside single quotes)."""
    log = l.access_log
    l7 = kind == "http"
    exprs = {"time": "$msec", "client": "$remote_addr:$remote_port", "listener": l.name, "host": "$http_host",
             "method": "$request_method", "path": "$request_uri", "status": "$status", "service": service,
             "server": "$upstream_addr", "bytes_in": "$request_length" if l7 else "$bytes_received",
             "bytes_out": "$bytes_sent", "connect_ms": "$lbc_ms_connect", "response_ms": "$lbc_ms_header",
             "total_ms": "$lbc_ms_total"}
    if log.format == "json":
        vals = accesslog.values(exprs, l7)
        text = "{" + ",".join(f'"{f}":"{v}"' for f, v in vals.items()) + "}"
    else:
        text = accesslog.text_line(exprs, l7, lambda v: f'"{v}"')
    return {"name": f"lbc_{l.name}", "escape": "json" if log.format == "json" else "default", "text": text}


def _log_destination(log: AccessLog, fmt: str) -> str:
    match log.to:
        case "stdout" | "stderr":
            return f"/dev/{log.to} {fmt}"
        case "file":
            return f"{quote(log.file)} {fmt}"
        case "syslog":
            return f"syslog:server={_hostport(log.syslog_address, log.syslog_port)},facility={log.facility},tag=lbc {fmt}"
        case "none":
            return "off"
        case _:
            assert_never(log.to)


def _log_setup(model: Topology, stream_servers: list[dict]) -> dict:
    """log_format and ms maps per block, and each listener's `access_log` value (absent: none set)."""
    out: dict = {"formats": {"http": [], "stream": []}, "directive": {}}
    stream_pass = {s["listener"].name: s["pass"] for s in stream_servers}
    for l in model.listeners:
        if l.access_log is None:
            continue
        kind = "http" if l.reads_http else "stream"
        fmt = None
        if l.access_log.on:
            # the upstream that served: http's $proxy_host; a stream's proxy_pass (a map's variable or a name)
            service = "$proxy_host" if kind == "http" else stream_pass[l.name]
            fmt = _log_formats(l, kind, service)
            out["formats"][kind].append(fmt)
        out["directive"][l.name] = _log_destination(l.access_log, fmt["name"] if fmt else "")
    out["ms_maps"] = {k: _MS_MAPS[k] if out["formats"][k] else () for k in _MS_MAPS}
    return out


def render(model: Topology) -> dict[str, str]:
    http, stream = _Block("http"), _Block("stream")
    http_servers: list[dict] = []
    stream_servers: list[dict] = []
    for l in model.listeners:
        if l.reads_http:
            http_servers.append({"listener": l, "blocks": _http_server(model, l, http)})
        else:
            stream_servers.append(_stream_server(model, l, stream))
    names_per_socket: dict[str, int] = {}
    longest = 0
    for s in http_servers:
        for b in s["blocks"]:
            names_per_socket[b["listen"]] = names_per_socket.get(b["listen"], 0) + len(b["hosts"])
            longest = max([longest] + [len(h) for h in b["hosts"]])
    map_entries = max([len(m["entries"]) for m in http.maps + stream.maps] + [0])
    map_longest = max([len(k) for m in http.maps + stream.maps for k, _, _ in m["entries"] if k[:1] != "~"] + [0])
    settings = {_proxy_settings(s["listener"]) for s in http_servers}
    shared = http_servers[0]["listener"] if len(settings) == 1 else None
    logs = _log_setup(model, stream_servers)
    ctx = {
        "shared": shared, "http_servers": http_servers, "stream_servers": stream_servers, "http": http,
        "stream": stream, "websocket": any(l.reads_http and l.websocket for l in model.listeners),
        "names_hash_max": _pow2(max(names_per_socket.values(), default=0), 512), "names_hash_bucket": _bucket(longest),
        "map_hash_max": _pow2(map_entries, 2048), "map_hash_bucket": _bucket(map_longest),
        "http_upstreams": upstreams(http.upstreams, "lbc_http", _zone_kib(http.upstreams), UPSTREAM_KEEPALIVE),
        "stream_upstreams": upstreams(stream.upstreams, "lbc_stream", _zone_kib(stream.upstreams), UPSTREAM_KEEPALIVE),
        "http_servers_text": "".join(_http_servers_text(http_servers, shared is not None, logs)),
        "logs": logs, "admin": model.admin,
        "admin_listen": _hostport(model.admin.address, model.admin.port) if model.admin else None,
    }
    files = {"nginx.conf": _ENV.get_template("nginx.conf.j2").render(**ctx)}
    if stream_servers:
        module = os.environ.get(STREAM_MODULE_ENV, STREAM_MODULE_DEFAULT)
        files["modules.conf"] = ("# The stream module (Debian: libnginx-mod-stream). Empty this file if the nginx that\n"
                                 "# runs this configuration loads the module already.\n"
                                 f"load_module {quote(module)};\n")
    files["README.md"] = _readme(model, bool(stream_servers))
    return files


def _http_servers_text(http_servers: list[dict], shared: bool, logs: dict) -> Iterator[str]:
    for s in http_servers:
        l = s["listener"]
        text = ServerText(l, shared, logs["directive"].get(l.name))
        for b in s["blocks"]:
            yield text.block(b)


PREFIX = "/var/lib/lbc-nginx/"   # the README's prefix folder: where nginx writes its pid, logs, temp files


def _readme(model: Topology, stream: bool) -> str:
    from lbc.targets.readme import application_notes, observability_notes, readme
    written = [("nginx.conf", "the configuration; paths in it are relative to its own folder")]
    if stream:
        written.append(("modules.conf", "loads the stream module (Debian: libnginx-mod-stream); empty it if your "
                                        "nginx has the module built in"))
    return readme(
        "README.md.j2", model, title="nginx configuration", target="nginx", needs="Needs open-source nginx 1.22 or newer.",
        written=written, deploy_to="/etc/nginx/lbc/",
        commands=[(f"mkdir -p {PREFIX.rstrip('/')}", "a prefix folder for what nginx writes"),
                  (spec("nginx").check_text('"$PWD/nginx.conf"', PREFIX), "check"),
                  (f"nginx -p {PREFIX} -c \"$PWD/nginx.conf\"", "run (or through your service manager)")],
        relative_from="nginx reads a relative path from the folder of `nginx.conf`; absolute paths keep them "
                      "independent of where this folder is deployed.",
        # nginx checks servers passively only: there is no health URL for the servers to answer
        notes=application_notes(model, active_health=False),
        operating=["Open-source nginx has no active health checks: a server leaves after `fall` failed "
                   "requests and is tried again once `fail_timeout` has passed (passive checks).",
                   "nginx writes its pid, `error.log`, `access.log` and temporary files under the prefix (-p).",
                   "`worker_rlimit_nofile` is twice `worker_connections`: each proxied connection holds two "
                   "descriptors."]
        + observability_notes(model, "`/status` (stub_status: nginx-wide connection and request totals in nginx's "
                                     "own format, not Prometheus; open-source nginx keeps no per-server counters)."))


class _Nginx:
    name = "nginx"
    main_file = spec("nginx").main_file
    for_people = ("README.md",)
    summary = "open-source nginx 1.22+ (http + stream with ssl_preread); passive health checks only"
    capabilities = CAPABILITIES

    @staticmethod
    def render(model: Topology) -> dict[str, str]:
        return render(model)

    @staticmethod
    def refusals(model: Topology):
        return refusals(model)


TARGET = _Nginx()
