"""HAProxy 2.6+: the model lowered into haproxy.cfg, host maps and a deployment README.

Layout of the output (paths in haproxy.cfg are relative to its folder: `default-path config`):
  haproxy.cfg            one frontend per listener, one backend per (listener, service, port)
                         and, with priority groups, one backend per group
  maps/<listener>.hosts  host (Host header or SNI) -> route, one tree lookup whatever the count
  maps/<listener>.wildcards   parent domain of `*.name` routes -> route
  README.md              what to deploy where

A route value is `<backend>` or `<backend>/<server>` (a pinned host). A backend name is
`<listener>.<service>.<port>` (+ `.p<priority>` per group, `.fallback`): user names cannot
contain a dot, so these never collide. When a service has several priority groups or a fallback,
the frontend chooses among its backends: sticky and pinned clients first (their server is up),
then the first group with a usable server that has a free slot (`be_conn_free`, which counts no
held, down or full server), then the fallback. HAProxy traps this avoids (verified on 2.6):
`connslots()` ignores the queue, `errorfile 503` also answers queued requests, `balance random`
draws twice, streaming needs `option http-no-delay`, `disabled` drops cookie sessions (hold is
`weight 0`), a second `defaults` resets timeouts.
"""
from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import jinja2

from lbc import accesslog, appsettings
from lbc.capabilities import EMULATED, NATIVE, Support, UNSUPPORTED
from lbc.model import (AccessLog, ApplicationStickiness, CookieStickiness, Listener, NoStickiness, Route, RouteRedirect, Server,
                       Service, SourceIpStickiness, Topology, assert_never)
from lbc.targets.readme import application_notes, deployed_files, observability_notes
from lbc.tls_profiles import openssl_ciphers
from lbc.targets import spec

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IDENT = re.compile(r"^[A-Za-z0-9_.:/-]+$")       # names and hosts (schema-restricted) used unquoted
_MAP_WORD = re.compile(r"^[A-Za-z0-9_.:/~?|-]+$")  # a map key or value: also paths (schema: url_path) and "?", "|"


def quote(value) -> str:
    """The one way a user string reaches haproxy.cfg: a single-quoted word.

    Inside single quotes HAProxy expands nothing (no `$VAR`, no escapes); a single quote is
    written as `'\\''` (close, escaped quote, reopen), which HAProxy joins into one word.
    """
    s = str(value)
    if _CONTROL.search(s):
        raise ValueError(f"control character in {s!r}: the schema should have refused it")
    return "'" + s.replace("'", "'\\''") + "'"


def ident(value: str) -> str:
    """A name or host placed unquoted (the schema allows only these characters; checked again here)."""
    if not _IDENT.match(value):
        raise ValueError(f"{value!r} cannot be placed unquoted in haproxy.cfg")
    return value


CAPABILITIES: dict[str, Support] = {
    "balance.round-robin": Support(NATIVE, "balance roundrobin"),
    "balance.least-connections": Support(NATIVE, "balance leastconn"),
    "balance.weighted-random": Support(NATIVE, "balance random(1): one weighted draw (plain `random` draws two "
                                               "and keeps the less loaded)"),
    "balance.source-hash": Support(NATIVE, "balance source with hash-type consistent"),
    "server.weights": Support(NATIVE, "weight 0-256"),
    "server.max-sessions": Support(NATIVE, "maxconn; a full server's requests wait in the queue (timeout queue) "
                                           "unless another priority group or the fallback can take them"),
    "server.hold": Support(NATIVE, "weight 0: no new sessions, sticky and pinned clients continue"),
    "server.down": Support(NATIVE, "disabled (maintenance)"),
    "priority.tiers": Support(EMULATED, "one backend per group, chosen in the frontend: sticky clients go back to "
                                        "their server's group while it is up, new ones to the first group whose "
                                        "usable servers have a free slot (be_conn_free); each group has its own "
                                        "health checks and stick table"),
    "health.http": Support(NATIVE, "option httpchk + http-check; without `host` the check is HTTP/1.0 with no "
                                   "Host header"),
    "health.http-body": Support(NATIVE, "http-check expect string"),
    "health.tcp": Support(NATIVE, "connect check"),
    "health.drain-on-body": Support(NATIVE, "the body check decides which servers take new sessions; a second, "
                                            "status-only check (backend <target>.live, no traffic) decides which "
                                            "are alive: cookie clients stay on a live server (option persist), the "
                                            "cookie of a dead one is ignored (ignore-persist). "
                                            "Cookie stickiness only"),
    "health.tls": Support(NATIVE, "check-ssl verify none (the balancer holds no CA in passthrough), check-sni "
                                  "from the check's host"),
    "stickiness.cookie": Support(NATIVE, "cookie insert indirect nocache httponly (a session cookie)"),
    "stickiness.cookie-max-age": Support(NATIVE, "cookie attr Max-Age"),
    "stickiness.source-ip": Support(NATIVE, "stick-table type ipv6 + stick on src, expiring after idle_timeout"),
    "stickiness.application": Support(NATIVE, "direct host names mapped to use-server in the service's backend"),
    "stickiness.max-lifetime": Support(NATIVE, "cookie maxlife: HAProxy stores dates in 4 s steps, so expiry "
                                               "comes up to 4 s late; cookie stickiness only"),
    "fallback.respond": Support(NATIVE, "a backend answering with http-request return, chosen when no server can "
                                        "take the session (HTTP listeners)"),
    "fallback.server": Support(NATIVE, "a backend with that server, chosen when no server can take the session"),
    "redispatch": Support(NATIVE, "option redispatch 1, retries 3, retry-on conn-failure empty-response "
                                  "response-timeout (HTTP)"),
    "routing.hosts": Support(NATIVE, "map file lookup on the lower-cased Host (or SNI)"),
    "routing.pinned-server": Support(NATIVE, "use-server in the service's backend"),
    "routing.paths": Support(NATIVE, "the host map gives a host's table, then ONE map_beg lookup (a prefix tree) on "
                                     "table + path: the longest prefix wins, an exact path is stored with a '?' "
                                     "terminator so it beats every prefix"),
    "routing.strip-prefix": Support(NATIVE, "http-request set-path %[path,bytes(n)] (the query stays)"),
    "routing.redirect-host": Support(NATIVE, "the route's map value is ~r<n>; http-request redirect prefix "
                                             "\"scheme://host[:port]\" code N if the value is ~r<n> (after the one "
                                             "route lookup)"),
    "tls.terminate": Support(NATIVE, "bind ssl crt; HAProxy 2.6 reads a separate key only from <cert>.key "
                                     "(see the output README)"),
    "tls.bridge": Support(NATIVE, "server ssl verify required ca-file, sni, verifyhost"),
    "tls.profile": Support(NATIVE, "bind ssl-min-ver, ciphers, ciphersuites, curves, prefer-client-ciphers (OpenSSL "
                                   "3.0: TLS 1.0/1.1 get @SECLEVEL=0; it has no 3DES)"),
    "tls.cipher-lists": Support(NATIVE, "bind ciphers / ciphersuites / curves"),
    "tls.upstream-verify": Support(NATIVE, "verify required ca-file"),
    "tls.passthrough": Support(NATIVE, "mode tcp"),
    "tls.sni-routing": Support(NATIVE, "req.ssl_sni map lookup after the ClientHello"),
    "tls.multi-certificate": Support(NATIVE, "several crt on one bind, chosen by SNI; the first is the default"),
    "tls.client-auth": Support(NATIVE, "bind ca-file verify optional|required; X-SSL-Client-DN to HTTP servers"),
    "listener.websocket": Support(NATIVE, "upgrades pass in mode http; timeout tunnel applies"),
    "listener.no-buffering": Support(NATIVE, "option http-no-delay"),
    "listener.forwarded-headers": Support(NATIVE, "option forwardfor + X-Forwarded-Proto"),
    "listener.hsts": Support(NATIVE, "http-after-response set-header: also on the answers HAProxy writes itself "
                                     "(404 for an unknown host, 503, fallback pages)"),
    "listener.redirect-https": Support(NATIVE, "http-request redirect prefix https://<Host name>[:port] code N "
                                               "unless { path_beg <except prefixes> } (path_beg -f a pattern file "
                                               "for more than 8), after the access list and rate limit"),
    "headers.request": Support(NATIVE, "http-request del-header / set-header"),
    "headers.response": Support(NATIVE, "http-after-response del-header / set-header / add-header: on server "
                                        "answers and on the answers HAProxy writes itself"),
    "upstream.proxy-protocol-v1": Support(NATIVE, "send-proxy (checks too)"),
    "upstream.proxy-protocol-v2": Support(NATIVE, "send-proxy-v2 (checks too)"),
    "access.client-networks": Support(NATIVE, "`src -f` pattern files (acl/<listener>.deny, .allow) looked up in a "
                                              "tree; L7: http-request deny deny_status 403, L4: tcp-request "
                                              "connection reject"),
    "access.per-route": Support(NATIVE, "the chosen route's map value names its list (~<k>); `src -f` pattern "
                                        "files acl/<listener>.route<k>.deny/.allow, looked up only for that route "
                                        "(http-request deny deny_status 403)"),
    "access.per-route-l4": Support(NATIVE, "as per-route, once the SNI is read: tcp-request content reject"),
    "rate-limit.requests": Support(NATIVE, "a stick table per frontend counts each client's admitted requests "
                                           "(sc-inc-gpc0) over a sliding window of burst/rate seconds "
                                           "(gpc0_rate); at `burst` in the window the request gets 429; refused "
                                           "requests are not counted"),
    "rate-limit.connections": Support(NATIVE, "the same on tcp-request connection: at `burst` admitted connections "
                                              "in a window of burst/rate seconds the connection is rejected"),
    "ha.vrrp": Support(NATIVE, "keepalived.conf per node: VRRP instances owning the VIPs, a check of the local "
                               "HAProxy's PID file that gives the VIPs up when it dies; a failover cuts the open "
                               "connections"),
    "ha.state-sync": Support(NATIVE, "a `peers` section (each node's address, sync_port) on every stick table: "
                                     "source-IP sticky clients keep their server across a failover"),
    "logs.stdout": Support(NATIVE, "log stdout|stderr format raw, with lbc's log-format"),
    "logs.file": Support(UNSUPPORTED, "HAProxy writes logs only to syslog servers, unix sockets (such as /dev/log, "
                                      "where the syslog daemon writes the file), stdout/stderr or rings: use "
                                      "`to: syslog` or `to: stdout`"),
    "logs.syslog": Support(NATIVE, "log ADDRESS:PORT len 8192 FACILITY (RFC 3164 over UDP)"),
    "logs.json": Support(NATIVE, "log-format with every value through the json converter"),
    "metrics.endpoint": Support(NATIVE, "a frontend on the admin address: the built-in Prometheus exporter at "
                                        "/metrics (haproxy_server_* per server) and the read-only stats page at "
                                        "/stats"),
}


def refusals(model: Topology) -> Iterator[tuple[str, tuple, str]]:
    """Combinations HAProxy cannot express (LBC801)."""
    routed = set(model.routed_services)
    for svc in model.services:
        st = svc.stickiness
        if svc.drains_on_body and st.mode != "cookie" and svc.name in routed:
            yield ("health.drain-on-body", svc.health.path + ("http", "expect_body"),
                   f"HAProxy keeps a client on a server its check took out only by cookie; with {st.mode} "
                   "stickiness the clients of a full server would move (use cookie stickiness)")
    # a fixed answer at L4 (LBC409), host routes on plain TCP (LBC606, LBC307) and a lifetime without a
    # cookie (LBC310) are refused by the language for every target


# ------------------------------------------------------------------ the lowered form (what the template prints)

@dataclass
class BackendCfg:
    name: str
    mode: str                                  # http | tcp
    lines: list[str] = field(default_factory=list)       # settings, in order
    servers: list[str] = field(default_factory=list)     # complete `server` lines
    comment: str = ""


@dataclass
class FrontendCfg:
    name: str
    mode: str
    lines: list[str] = field(default_factory=list)
    comment: str = ""


def _ms(ms: int) -> str:
    """A duration HAProxy reads exactly (its default unit is ms)."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _addr(address: str, port: int) -> str:
    if ":" in address:  # only an IPv6 address may hold one: parsed only then (20,000 parses at 10k services)
        try:
            if ipaddress.ip_address(address).version == 6:
                return f"[{address}]:{port}"
        except ValueError:
            pass
    return f"{ident(address)}:{port}"


_BALANCE = {"round-robin": "roundrobin", "least-connections": "leastconn", "weighted-random": "random(1)",
            "source-hash": "source"}


@dataclass
class Target:
    """The backends one route target (listener, service, port) needs, and how the frontend picks one."""
    base: str                                  # <listener>.<service>.<port>
    service: Service
    port_name: str
    groups: list[tuple[int, str]]              # (priority, backend name), serving order
    fallback: Optional[str]                    # fallback backend name
    live: Optional[str] = None                 # status-only checks (drain-on-body): which servers are alive

    @property
    def selects(self) -> bool:
        return len(self.groups) > 1 or self.fallback is not None

    def backend_of(self, server: str) -> str:
        prio = self.service.server(server).priority
        return next(b for p, b in self.groups if p == prio)


class Lowering:
    def __init__(self, model: Topology):
        self.model = model
        self.frontends: list[FrontendCfg] = []
        self.backends: list[BackendCfg] = []
        self.maps: dict[str, str] = {}

    # ---------------------------------------------------------------- per listener
    def listener(self, l: Listener) -> None:
        mode = "http" if l.reads_http else "tcp"
        fe = FrontendCfg(ident(l.name), mode, comment=f"listener {l.name}: {l.address}:{l.port}, "
                                                        f"{l.protocol}, TLS {l.tls.mode}")
        fe.lines.append(f"bind {_addr(l.address, l.port)}{self.bind_tls(l, mode)}")
        fe.lines.append(f"timeout client {_ms(l.timeouts.client_ms)}")
        fe.lines.extend(access_log_lines(l, mode))
        fe.lines.extend(self.access(l, mode))
        fe.lines.extend(self.rate_limit(l, mode))
        if l.decides_by_path:   # HAProxy 2.6's normalize-uri is experimental: refuse what it would change
            fe.lines.append("http-request deny deny_status 400 if { path_sub /./ /../ // } or { path_end /. /.. } "
                            "or { path_sub -i %2e %2f %5c }")
        fe.lines.extend(self.redirect_https(l))
        rule = "http-request" if mode == "http" else "tcp-request content"
        if mode == "http":
            if not l.buffering:
                fe.lines.append("option http-no-delay")
            if l.forwarded_headers:
                fe.lines.append("option forwardfor")
                proto = "https" if l.decrypts else "http"
                fe.lines.append(f"http-request set-header X-Forwarded-Proto {proto}")
            if l.tls.client_auth != "none" and l.decrypts:
                fe.lines.append("http-request del-header X-SSL-Client-DN")
                fe.lines.append("http-request set-header X-SSL-Client-DN %[ssl_c_s_dn] if { ssl_c_used }")
            if not l.websocket:
                fe.lines.append("http-request deny deny_status 400 if { req.hdr(upgrade),lower -m str websocket }")
            fe.lines.extend(header_rules(l))
        self.routing(l, fe, mode, rule)
        self.frontends.append(fe)

    def routing(self, l: Listener, fe: FrontendCfg, mode: str, rule: str) -> None:
        """The backends the listener's routes reach and the frontend lines that choose among them: one map
        lookup per request (host, then the host's path table), redirects, per-route access lists."""
        targets: dict[tuple[str, str], Target] = {}
        proxied = [(r, r.service) for r in l.routes if r.service is not None]
        for r, name in proxied:
            key = (name, r.port_name)
            if key not in targets:
                targets[key] = self.target(l, mode, self.model.service(name), r.port_name)
        pins: dict[tuple[str, str], set[str]] = {(name, r.port_name): set() for r, name in proxied}
        for r, name in proxied:
            if r.server:
                pins[(name, r.port_name)].add(r.server)
        for key, t in targets.items():
            self.emit_backends(l, mode, t, sorted(pins[key]))
        # a route that redirects maps to "~r<n>" (no backend name starts with "~"): one lookup still decides
        redirects = {rd: f"~r{n}" for n, rd in enumerate(dict.fromkeys(r.redirect for r in l.routes if r.redirect))}

        def backend_value(r: Route) -> str:
            if r.redirect is not None:
                return redirects[r.redirect]
            t = targets[(r.service or "", r.port_name)]
            if r.server is None:
                return t.base if t.selects else t.groups[0][1]
            return f"{t.base if t.selects else t.backend_of(r.server)}/{r.server}"

        access_of, access_lines = self.route_access(l, mode)

        def value(r: Route) -> str:
            return backend_value(r) + access_of(r)

        table = l.route_table
        # a host whose table looks at the path maps to its table's key (":g<n>"), then the paths map decides
        keys = {i: f":g{i}" for i, t in enumerate(table) if t.by_path}

        def entry(i: int) -> str:
            return keys.get(i) or value(table[i].routes[0])

        hosted = [(i, t) for i, t in enumerate(table) if t.hosts]
        default = next((i for i, t in enumerate(table) if not t.hosts), None)
        plain_default = default is not None and default not in keys and not table[default].routes[0].server
        simple = not hosted and not keys and not redirects and not any(t.selects for t in targets.values()) and (
            default is None or plain_default) and not access_lines
        if simple:
            if default is not None:
                fe.lines.append(f"default_backend {entry(default)}")
            return

        if hosted:
            if mode == "tcp" and l.tls.mode == "passthrough":
                fe.lines.append("tcp-request inspect-delay 5s")
                fe.lines.append("tcp-request content reject if !{ req.ssl_hello_type 1 }")
                fetch = "req.ssl_sni,lower"
            elif mode == "tcp":
                fetch = "ssl_fc_sni,lower"
            else:
                fetch = "req.hdr(host),field(1,:),lower"
            exact = {h: entry(i) for i, t in hosted for h in t.hosts if not h.startswith("*.")}
            wild = {h[2:]: entry(i) for i, t in hosted for h in t.hosts if h.startswith("*.")}
            hosts_map = f"maps/{l.name}.hosts"
            self.maps[hosts_map] = _map_text(exact, f"listener {l.name}: host -> backend[/pinned server]"
                                             + (" or :g<n>, its table in the paths map" if keys else ""))
            if wild:  # the host is looked up twice: fetched once
                fe.lines.append(f"{rule} set-var(txn.lbc_host) {fetch}")
                fetch = "var(txn.lbc_host)"
            fe.lines.append(f"{rule} set-var(txn.lbc_route) {fetch},map({hosts_map})")
            if wild:
                wild_map = f"maps/{l.name}.wildcards"
                self.maps[wild_map] = _map_text(wild, f"listener {l.name}: parent domain of *.name -> "
                                                      "backend[/pinned server]")
                fe.lines.append(f"{rule} set-var(txn.lbc_route) var(txn.lbc_host),field(2,.,0),map({wild_map}) "
                                "if !{ var(txn.lbc_route) -m found }")
        if default is not None:
            cond = " if !{ var(txn.lbc_route) -m found }" if hosted else ""
            fe.lines.append(f"{rule} set-var(txn.lbc_route) str({entry(default)}){cond}")
        else:
            fe.lines.append("http-request deny deny_status 404 if !{ var(txn.lbc_route) -m found }" if mode == "http"
                            else "tcp-request content reject if !{ var(txn.lbc_route) -m found }")
        if keys:
            fe.lines.extend(self.path_routing(l, table, keys, value))
        fe.lines.extend(self.route_redirects(redirects))
        fe.lines.extend(access_lines)
        if not any(pins.values()) and not any(t.selects for t in targets.values()):
            # every value left is a backend's name: no second variable (each rule costs every request)
            fe.lines.append("use_backend %[var(txn.lbc_route)]")
            return
        fe.lines.append(f"{rule} set-var(txn.lbc_target) var(txn.lbc_route),field(1,/)")
        if any(pins.values()):
            fe.lines.append(f"{rule} set-var(txn.lbc_pin) var(txn.lbc_route),field(2,/) "
                            "if { var(txn.lbc_route) -m sub / }")
        for key, t in targets.items():
            if t.selects:
                fe.lines.extend(self.selection(t, sorted(pins[key]), mode))
        fe.lines.append("use_backend %[var(txn.lbc_target)]")

    def access(self, l: Listener, mode: str) -> list[str]:
        """Client access lists: one pattern file per list, read into a tree (`src -f`), so a lookup
        costs the same at 10 or 10,000 networks. Deny first, then the allow list: the language's order.
        L7 answers 403; L4 closes the connection before reading anything."""
        a = l.access
        if a is None:
            return []
        out = []
        for kind, nets in (("deny", a.deny), ("allow", a.allow)):
            if not nets:
                continue
            name = f"acl/{l.name}.{kind}"
            self.maps[name] = _pattern_text(nets, f"listener {l.name}: client networks to {kind} (src -f)")
            cond = f"{{ src -f {name} }}" if kind == "deny" else f"!{{ src -f {name} }}"
            out.append(f"http-request deny deny_status 403 if {cond}" if mode == "http"
                       else f"tcp-request connection reject if {cond}")
        return out

    def route_access(self, l: Listener, mode: str):
        """Per-route access lists, checked after the listener's and only for the route chosen: the route's
        map value carries "~<k>" (its list's number; backend names have no "~"), and the list's `src -f`
        lookup runs only when the chosen route has that number. Returns (suffix of a route's value, lines)."""
        numbers: dict[tuple, int] = {}
        for r in l.routes:
            if r.access is not None and (r.access.allow or r.access.deny):
                numbers.setdefault(r.access_key, len(numbers) + 1)
        if not numbers:
            return (lambda r: ""), []
        rule = "http-request" if mode == "http" else "tcp-request content"
        refuse = "deny deny_status 403" if mode == "http" else "reject"
        lines = [f"{rule} set-var(txn.lbc_access) var(txn.lbc_route),field(2,~) if {{ var(txn.lbc_route) -m sub ~ }}",
                 f"{rule} set-var(txn.lbc_route) var(txn.lbc_route),field(1,~)"]
        for ((allow, deny),), k in numbers.items():
            chosen = f"{{ var(txn.lbc_access) -m str {k} }}"
            for kind, nets in (("deny", deny), ("allow", allow)):
                if not nets:
                    continue
                name = f"acl/{l.name}.route{k}.{kind}"
                self.maps[name] = _pattern_text(nets, f"listener {l.name}: client networks to {kind} on the routes "
                                                      f"whose value ends ~{k} (src -f)")
                lines.append(f"{rule} {refuse} if {chosen} {{ src -f {name} }}" if kind == "deny"
                             else f"{rule} {refuse} if {chosen} !{{ src -f {name} }}")
        return (lambda r: f"~{numbers[r.access_key]}" if r.access_key in numbers else ""), lines

    def rate_limit(self, l: Listener, mode: str) -> list[str]:
        """A rate limit per client address: the frontend's own stick table counts the client's admitted
        requests (connections) over a sliding window of burst/rate seconds; at `burst` in the window,
        the next one is refused (refused ones are not counted, so a client over the limit gets the
        rate back as the window slides)."""
        rl = l.rate_limit
        if rl is None:
            return []
        window = rl.window_ms
        rule = "http-request" if mode == "http" else "tcp-request connection"
        refuse = "deny deny_status 429" if mode == "http" else "reject"
        return [f"stick-table type ipv6 size 1m expire {_ms(max(2 * window, 1000))} store gpc0_rate({_ms(window)})",
                f"{rule} track-sc0 src",
                f"{rule} {refuse} if {{ sc_gpc0_rate(0) ge {rl.burst} }}",
                f"{rule} sc-inc-gpc0(0)"]
    def redirect_https(self, l: Listener) -> list[str]:
        """Every request but the except prefixes answered with a redirect to HTTPS. `redirect prefix` appends
        the request's path and query; the host is the Host header's name (its port dropped, as nginx's
        $host). Prefixes are url_path text (no quotes, spaces or '$'): safe as words."""
        rd = l.redirect_https
        if rd is None:
            return []
        line = (f'http-request redirect prefix "https://%[req.hdr(host),field(1,:)]{rd.port_suffix}" '
                f"code {rd.status}")
        if not rd.exempt:
            return [line]
        if len(rd.exempt) <= 8:
            return [f"{line} unless {{ path_beg {' '.join(rd.exempt)} }}"]
        name = f"acl/{l.name}.redirect-except"
        self.maps[name] = "\n".join([f"# listener {l.name}: path prefixes not redirected to HTTPS (path_beg -f)",
                                      *rd.exempt]) + "\n"
        return [f"{line} unless {{ path_beg -f {name} }}"]

    @staticmethod
    def route_redirects(redirects: dict[RouteRedirect, str]) -> list[str]:
        """Routes that answer with a redirect: the route lookup left "~r<n>". `redirect prefix` appends the
        request's path and query. Host names are DNS names (schema): safe inside the quotes."""
        lines = []
        for rd, key in redirects.items():
            host = rd.host or "%[req.hdr(host),field(1,:)]"
            lines.append(f'http-request redirect prefix "{rd.scheme}://{host}{rd.port_suffix}" code {rd.status} '
                         f"if {{ var(txn.lbc_route) -m str {key} }}")
        return lines

    def path_routing(self, l: Listener, table, keys: dict[int, str], value) -> list[str]:
        """Frontend lines choosing by path within a host's table: ONE longest-prefix lookup
        (map_beg, a prefix tree) on ":g<n>" + path + "?". An exact path is stored with the "?"
        (which no path contains) so it matches only itself and, being longer, beats every prefix;
        a route for every path is the prefix "/". A value may end in "|<n>": strip n characters."""
        entries: dict[str, str] = {}
        strips: set[int] = set()
        for i, key in keys.items():
            for r in table[i].routes:
                u = r.url_path
                path = "/" if u is None else (u.value + "?" if u.kind == "exact" else u.value)
                entries[key + path] = value(r) + (f"|{u.strip_length}" if u is not None and u.strip else "")
                if u is not None and u.strip:
                    strips.add(u.strip_length)
        paths_map = f"maps/{l.name}.paths"
        self.maps[paths_map] = _map_text(entries, f"listener {l.name}: :g<n> (a host's table) + path (+ '?' when "
                                                  "exact) -> backend[/pinned server][|characters to strip]",
                                         lookup="one longest-prefix lookup (map_beg)")
        lines = ["http-request set-var(txn.lbc_path) path",
                 "http-request set-var(txn.lbc_route) var(txn.lbc_route),concat(,txn.lbc_path,?),"
                 f"map_beg({paths_map}) if {{ var(txn.lbc_route) -m beg : }}",
                 # no path of the host's table matched: the lookup left the table's key
                 "http-request deny deny_status 404 if { var(txn.lbc_route) -m beg : }"]
        if strips:
            lines.append("http-request set-var(txn.lbc_strip) var(txn.lbc_route),field(2,|) "
                         "if { var(txn.lbc_route) -m sub | }")
            lines.extend(f"http-request set-path %[path,bytes({n})] if {{ var(txn.lbc_strip) -m int {n} }}"
                         for n in sorted(strips))
            lines.append("http-request set-var(txn.lbc_route) var(txn.lbc_route),field(1,|)")
        return lines

    def bind_tls(self, l: Listener, mode: str) -> str:
        if not l.decrypts:
            return ""
        parts = [" ssl"]
        for name in l.tls.certificates:
            parts.append(f"crt {quote(self.model.certificate(name).cert)}")
        parts.append(f"ssl-min-ver TLSv{l.tls.min_version}")
        parts.extend(tls_profile_options(l.tls))
        if mode == "http":
            parts.append("alpn h2,http/1.1")
        if l.tls.client_auth != "none":
            if l.tls.client_ca:
                parts.append(f"ca-file {quote(l.tls.client_ca)}")
            parts.append("verify optional" if l.tls.client_auth == "request" else "verify required")
        return " ".join(parts)

    # ---------------------------------------------------------------- per service
    def target(self, l: Listener, mode: str, svc: Service, port_name: str) -> Target:
        base = ident(f"{l.name}.{svc.name}.{port_name}")
        tiers = svc.tiers
        groups = [(p, base if len(tiers) == 1 else f"{base}.p{p}") for p in tiers]
        fallback = f"{base}.fallback" if svc.fallback else None
        live = f"{base}.live" if svc.drains_on_body and svc.stickiness.mode == "cookie" and mode == "http" else None
        return Target(base, svc, port_name, groups, fallback, live)

    def selection(self, t: Target, pinned: list[str], mode: str) -> list[str]:
        """Frontend rules choosing among a target's backends (groups, fallback)."""
        acl = f"{{ var(txn.lbc_target) -m str {t.base} }}"
        out = []
        svc = t.service
        for name in pinned:     # a pinned host follows its server's group while the server is up
            b = t.backend_of(name)
            out.append(f"use_backend {b} if {acl} {{ var(txn.lbc_pin) -m str {name} }} {{ srv_is_up({b}/{name}) }}")
        st = svc.stickiness
        if st.mode == "cookie" and mode == "http":
            for s in svc.servers:
                if s.state == "down":
                    continue
                b = t.backend_of(s.name)
                out.append(f"use_backend {b} if {acl} {{ req.cook({st.cookie_name}),field(1,|) -m str {s.name} }} "
                           f"{{ srv_is_up({t.live or b}/{s.name}) }}")
        elif st.mode == "source-ip" and len(t.groups) > 1:
            for _, b in t.groups:
                out.append(f"use_backend {b} if {acl} {{ src,in_table({b}) }} {{ nbsrv({b}) gt 0 }}")
        for i, (_, b) in enumerate(t.groups):
            last = i == len(t.groups) - 1
            if last and t.fallback is None:
                out.append(f"use_backend {b} if {acl}")
            else:
                out.append(f"use_backend {b} if {acl} !{{ be_conn_free({b}) eq 0 }}")
        if t.fallback:
            out.append(f"use_backend {t.fallback} if {acl}")
        return out

    def emit_backends(self, l: Listener, mode: str, t: Target, pinned: list[str]) -> None:
        svc = t.service
        for prio, name in t.groups:
            servers = svc.tier(prio)
            be = BackendCfg(name, mode, comment=f"service {svc.name}, port {t.port_name}"
                            + (f", priority group {prio}" if len(t.groups) > 1 else "") + f", listener {l.name}")
            self.common(be, l, mode)
            be.lines.append(f"balance {_BALANCE[svc.balance]}")
            if svc.balance == "source-hash":
                be.lines.append("hash-type consistent")
            be.lines.extend(self.stickiness(svc, l, t, servers, mode))
            be.lines.extend(self.health(svc, l, mode))
            be.lines.append("retries 3")
            if svc.redispatch:
                be.lines.append("option redispatch 1")
                if mode == "http":
                    be.lines.append("retry-on conn-failure empty-response response-timeout")
            in_group = {s.name for s in servers}
            for name in pinned:
                if name in in_group:
                    be.lines.append(f"use-server {ident(name)} if {{ var(txn.lbc_pin) -m str {name} }}")
            be.servers = [self.server_line(svc, s, t.port_name, l, mode) for s in servers]
            self.backends.append(be)
        if t.live:
            be = BackendCfg(t.live, mode, comment=f"service {svc.name}: which servers are alive (any answer with the "
                            "expected status; the page's text only decides new sessions), listener "
                            f"{l.name}; no traffic")
            be.lines.extend(self.health(svc, l, mode, body=False))
            be.servers = [self.server_line(svc, s, t.port_name, l, mode, live=True) for s in svc.servers]
            self.backends.append(be)
        if t.fallback:
            fb = svc.fallback
            be = BackendCfg(t.fallback, mode, comment=f"service {svc.name}: fallback when no server can take a "
                                                      f"session, listener {l.name}")
            self.common(be, l, mode)
            if fb.kind == "respond":
                # HAProxy refuses `string ''`: an empty body is a response without one (nor a content type)
                be.lines.append(f"http-request return status {fb.status} content-type {quote(fb.content_type)} "
                                f"string {quote(fb.body)}" if fb.body else f"http-request return status {fb.status}")
            else:
                be.servers = [f"server fallback {_addr(fb.address, fb.port)}"]
            self.backends.append(be)

    def stickiness(self, svc: Service, l: Listener, t: Target, servers: Sequence[Server], mode: str) -> list[str]:
        """The backend lines that keep a client on its server, per stickiness mode."""
        st = svc.stickiness
        lines: list[str] = []
        match st:
            case CookieStickiness() if mode == "http":   # a cookie on a TCP listener is LBC302's error
                cookie = f"cookie {ident(st.cookie_name)} insert indirect nocache httponly"
                if l.decrypts:
                    cookie += " secure"
                if st.max_lifetime_ms is not None:
                    cookie += f" maxlife {_ms(st.max_lifetime_ms)}"
                if st.cookie_max_age_ms is not None:
                    cookie += f" attr {quote(f'Max-Age={max(1, st.cookie_max_age_ms // 1000)}')}"
                lines.append(cookie)
                if t.live:
                    # A server the body check took out (full, on hold) still serves its own clients
                    # (option persist) while it answers at all; the cookie of one that does not is
                    # ignored, and a failed connection is re-dispatched (force-persist would forbid that).
                    lines.append("option persist")
                    for s in servers:
                        lines.append(f"ignore-persist if {{ req.cook({ident(st.cookie_name)}),field(1,|) -m str "
                                     f"{ident(s.name)} }} !{{ srv_is_up({t.live}/{ident(s.name)}) }}")
            case SourceIpStickiness():
                lines.append(f"stick-table type ipv6 size 1m expire {_ms(st.idle_timeout_ms)}"
                                + (f" peers {PEERS}" if _peers(self.model) else ""))
                lines.append("stick on src")
            case CookieStickiness() | NoStickiness() | ApplicationStickiness():
                pass   # application: the servers' host names pin, no balancer state
            case _:
                assert_never(st)
        return lines

    def common(self, be: BackendCfg, l: Listener, mode: str) -> None:
        to = l.timeouts
        be.lines.append(f"timeout connect {_ms(to.connect_ms)}")
        be.lines.append(f"timeout server {_ms(to.server_ms)}")
        be.lines.append(f"timeout tunnel {_ms(to.tunnel_ms)}")
        if mode == "http" and not l.buffering:
            be.lines.append("option http-no-delay")

    def health(self, svc: Service, l: Listener, mode: str, body: bool = True) -> list[str]:
        h = svc.health
        if h is None:
            return []
        out = []
        if h.kind == "http":
            out.append("option httpchk")
            send = f"http-check send meth GET uri {quote(h.http_path)}"
            send += f" ver HTTP/1.1 hdr Host {quote(h.http_host)}" if h.http_host else " ver HTTP/1.0"
            out.append(send)
            out.append(f"http-check expect status {h.expect_status}")
            if h.expect_body and body:
                out.append(f"http-check expect string {quote(h.expect_body)}")
        out.append(f"timeout check {_ms(h.timeout_ms)}")
        out.append(f"default-server inter {_ms(h.interval_ms)} rise {h.rise} fall {h.fall}")
        return out

    def server_line(self, svc: Service, s: Server, port_name: str, l: Listener, mode: str, live: bool = False) -> str:
        """A `server` line; `live`: for the status-only check backend (no traffic, so no weight or cookie)."""
        parts = [f"server {ident(s.name)} {_addr(s.address, s.port(port_name))}"]
        h = svc.health
        if h is not None:
            parts.append("check")
            if h.port_name and h.port_name != port_name:
                parts.append(f"port {s.port(h.port_name)}")
            if l.tls.mode == "passthrough" and self.model.checks_over_tls(svc):
                # the servers speak TLS on this port; the balancer holds no CA in passthrough
                parts.append("check-ssl verify none")
                if h.http_host:
                    parts.append(f"check-sni {ident(h.http_host)}")
        if not live:            # the live backend's servers check exactly as these do, and carry no traffic
            if s.admission == "hold":      # state hold or weight 0
                parts.append("weight 0")
            elif s.weight != 1:
                parts.append(f"weight {s.weight}")
            if s.max_sessions is not None:
                parts.append(f"maxconn {s.max_sessions}")
            if svc.stickiness.mode == "cookie" and mode == "http":
                parts.append(f"cookie {ident(s.name)}")
        if svc.proxy_protocol != "none":
            parts.append("send-proxy" if svc.proxy_protocol == "v1" else "send-proxy-v2")
            if h is not None:
                parts.append("check-send-proxy")
        u = svc.upstream_tls
        if l.tls.mode == "bridge" and u is not None:
            parts.append("ssl")
            if u.verify:
                parts.append(f"verify required ca-file {quote(u.ca) if u.ca else '@system-ca'}")
            else:
                parts.append("verify none")
            sni = u.sni or u.verify_name
            if sni:
                parts.append(f"sni str({ident(sni)})")
            if u.verify and u.verify_name:
                parts.append(f"verifyhost {ident(u.verify_name)}")
            if h is not None:
                parts.append("check-ssl")
                if sni:
                    parts.append(f"check-sni {ident(sni)}")
        if s.state == "down":
            parts.append("disabled")
        return " ".join(parts)


PEERS = "lbc"   # the peers section's name
ADMIN_FRONTEND = "lbc.admin"   # user names hold no dot: never a listener's name
METRICS = ("`/metrics` (Prometheus: `haproxy_server_sessions_total{proxy,server}` counts each server's sessions) and "
           "`/stats` (the read-only stats page; `/stats;csv` for scripts).")


# ------------------------------------------------------------------ access logs and the admin endpoint
# lbc's fields (lbc.accesslog) as HAProxy log-format tags. Host and path are read into variables
# by the first http-request rules: the request's headers are gone when the line is written.
_LOG_FIELDS = {"time": "%Ts.%ms", "client": "%ci:%cp", "method": "%HM", "status": "%ST", "service": "%b",
               "server": "%si:%sp", "bytes_in": "%U", "bytes_out": "%B", "connect_ms": "%Tc", "response_ms": "%Tr",
               "host": "%[var(txn.lbc_log_host)]", "path": "%[var(txn.lbc_log_path)]"}


def access_log_lines(l: Listener, mode: str) -> list[str]:
    """The frontend lines writing lbc's access log for this listener (none when it is not set)."""
    log = l.access_log
    if log is None:
        return []
    if not log.on:
        return ["# access log: none"]
    l7 = mode == "http"
    exprs = dict(_LOG_FIELDS, listener=ident(l.name), total_ms="%Ta" if l7 else "%Tt")
    if log.format == "json":
        vals = accesslog.values(exprs, l7)
        for f in accesslog.QUOTED & set(vals):   # free text through the json converter
            vals[f] = vals[f].replace("]", ",json(utf8s)]") if vals[f].startswith("%[") else vals[f]
        fmt = "{" + ",".join(f'"{f}":"{v}"' for f, v in vals.items()) + "}"
    else:
        # +Q quotes, +E escapes '"' and '\\' inside the quotes
        fmt = accesslog.text_line(exprs, l7, lambda v: "%{+Q,+E}" + v[1:] if v.startswith("%[") else v)
    lines = [f"log {_log_target(log)}"]
    if l7:
        # connections closed without a request are not requests (nginx and Envoy do not log them either)
        lines += ["option dontlognull", "http-request set-var(txn.lbc_log_host) req.hdr(host)",
                  "http-request set-var(txn.lbc_log_path) url"]
    # the format holds no single quote, and HAProxy expands nothing inside single quotes
    return lines + [f"log-format '{fmt}'"]


def _log_target(log: AccessLog) -> str:
    match log.to:
        case "stdout" | "stderr":
            return f"{log.to} format raw local0"
        case "syslog":
            return f"{_addr(log.syslog_address, log.syslog_port)} len 8192 {log.facility}"
        case "file" | "none":   # file: refused (capabilities), none: no `log` line
            raise ValueError(f"no HAProxy log target for {log.to}")
        case _:
            assert_never(log.to)


def admin_frontend(model: Topology) -> Optional[FrontendCfg]:
    """The metrics endpoint: Prometheus exporter and the read-only stats page, on the admin address."""
    a = model.admin
    if a is None:
        return None
    return FrontendCfg(ADMIN_FRONTEND, "http", comment=f"the admin endpoint: /metrics (Prometheus) and /stats "
                       f"(read-only), on {a.address}:{a.port}, off the VIPs",
                       lines=[f"bind {_addr(a.address, a.port)}", "no log",
                              "http-request use-service prometheus-exporter if { path /metrics }",
                              "stats enable", "stats uri /stats"])


def tls_profile_options(t) -> list[str]:
    """The profile's (or the topology's) suites and groups on the bind line. HAProxy prefers the server's
    cipher order by default; Mozilla's modern and intermediate leave the choice to the client."""
    out = []
    if t.cipher_list:
        out.append(f"ciphers {quote(openssl_ciphers(t.cipher_list, t.min_version))}")
    out.append(f"ciphersuites {quote(':'.join(t.ciphersuite_list))}")
    out.append(f"curves {quote(':'.join(t.curve_list))}")
    if not t.server_cipher_order:
        out.append("prefer-client-ciphers")
    return out


def log_format_text(value: str) -> str:
    """A literal text as a log-format argument (set-header values): `%` starts a sample there, `%%` is one."""
    return quote(value.replace("%", "%%"))


def header_rules(l: Listener) -> list[str]:
    """The listener's header changes: requests before routing, answers with http-after-response, which
    also reaches the answers HAProxy writes itself (deny, errorfile, fallback), so HSTS is on all of them."""
    lines = []
    for rule, c in (("http-request", l.headers.request), ("http-after-response", l.response_headers)):
        lines += [f"{rule} del-header {quote(name)}" for name in c.remove]
        lines += [f"{rule} set-header {quote(name)} {log_format_text(v)}" for name, v in c.set]
        lines += [f"{rule} add-header {quote(name)} {log_format_text(v)}" for name, v in c.add]
    return lines


def _peers(model: Topology) -> list[tuple[str, str]]:
    """(node, address:port) of every balancer node, when this model is rendered for one node of a set
    that synchronises its stick tables; else []."""
    b = model.balancers
    if b is None or model.node is None or not b.state_sync:
        return []
    return [(ident(n.name), _addr(n.address, b.sync_port)) for n in b.nodes]


def _map_text(entries: dict[str, str], what: str, lookup: str = "one exact-match lookup") -> str:
    lines = [f"# {what}. Written by lbc; {lookup} per request."]
    lines += [f"{_map_word(k)} {_map_word(v)}" for k, v in sorted(entries.items())]
    return "\n".join(lines) + "\n"


def _pattern_text(networks: tuple[str, ...], what: str) -> str:
    lines = [f"# {what}. Written by lbc; one tree lookup per connection or request."]
    lines += [ident(n) for n in networks]     # normalised by lbc: digits, dots, colons, a slash
    return "\n".join(lines) + "\n"
def _map_word(value: str) -> str:
    """A map file splits on blanks and has no quoting: only these characters reach it."""
    if not _MAP_WORD.match(value):
        raise ValueError(f"{value!r} cannot be written in a HAProxy map file")
    return value


def key_links(model: Topology) -> list[tuple[str, str]]:
    """(link to create, key file): HAProxy 2.6 loads a key kept apart from its certificate only
    from `<certificate file>.key`."""
    out = {}
    for l in model.listeners:
        if not l.decrypts:
            continue
        for name in l.tls.certificates:
            c = model.certificate(name)
            cert = posixpath.normpath(c.cert)
            if c.key and posixpath.normpath(c.key) not in (cert, cert + ".key"):
                out[c.cert + ".key"] = c.key
    return sorted(out.items())


def link_target(link: str, key: str) -> str:
    """What `ln -s`, run in haproxy.cfg's folder, must store so that `link` reaches `key`.

    HAProxy reads both paths from haproxy.cfg's folder, but a relative link is read from the
    link's own folder: certs/a.pem.key -> a.key, not certs/a.key. When the way back from the
    link's folder passes through folders lbc cannot name (an absolute link, or one further up
    than the key), the shell's $PWD, haproxy.cfg's folder, says where the key is."""
    if posixpath.isabs(key):
        return key
    key, where = posixpath.normpath(key), posixpath.normpath(posixpath.dirname(link) or ".")
    if posixpath.isabs(where) or _ups(where) > _ups(key):
        return f'"$PWD/{key}"'
    # any anchor works now: relpath climbs at most to where the key's own `..` lead
    anchor = "/" + "/".join(["d"] * (_ups(key) + 1))
    return posixpath.relpath(posixpath.join(anchor, key), posixpath.join(anchor, where))


def _ups(path: str) -> int:
    """How many folders a normalised relative path climbs before it descends."""
    parts = path.split("/")
    return next((i for i, p in enumerate(parts) if p != ".."), len(parts))


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("lbc.templates", "haproxy"), undefined=jinja2.StrictUndefined,
                          keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
_ENV.filters["q"] = quote
_ENV.globals["check"] = spec("haproxy").check_text(spec("haproxy").main_file)   # the file header and README


def render(model: Topology) -> dict[str, str]:
    low = Lowering(model)
    for l in model.listeners:
        low.listener(l)
    admin = admin_frontend(model)
    if admin is not None:
        low.frontends.append(admin)
    files = {"haproxy.cfg": _ENV.get_template("haproxy.cfg.j2").render(model=model, frontends=low.frontends,
                                                                        backends=low.backends, peers=_peers(model),
                                                                        peers_name=PEERS)}
    files.update(low.maps)
    files["README.md"] = _ENV.get_template("README.md.j2").render(model=model, maps=sorted(low.maps),
                                                                  key_links=[(link_target(link, key), link)
                                                                             for link, key in key_links(model)],
                                                                  files=deployed_files(model),
                                                                  app_settings=appsettings.markdown(model),
                                                                  notes=application_notes(model, active_health=True),
                                                                  observability=observability_notes(model, METRICS))
    return files


class HAProxyTarget:
    name = "haproxy"
    main_file = spec("haproxy").main_file
    for_people = ("README.md",)
    summary = "HAProxy 2.6+: haproxy.cfg, host maps and a deployment README"
    capabilities = CAPABILITIES

    def render(self, model: Topology) -> dict[str, str]:
        return render(model)

    def refusals(self, model: Topology):
        return refusals(model)


TARGET = HAProxyTarget()
