"""From schema-checked data to the normalised model.

Fills defaults (lbc's own and the profile's, recording each), parses durations, keeps file
paths as written (reading certificates from the topology file's folder: `model.local_file`),
expands `direct_hosts` routes, and reports the reference and uniqueness rules (LBC101-LBC105)
that must hold before a model can exist.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from typing import Optional

from . import certs
from .model import (AccessList, AccessLog, Admin, ApplicationStickiness, BalancerNode, Balancers, Certificate,
                    CookieStickiness, DECRYPTING, DefaultApplied, Fallback, HeaderChanges, HeaderPolicy, HealthCheck,
                    Hsts, RedirectHttps, RouteRedirect, UrlPath, IDLE_TIMEOUT_DEFAULT_MS, Listener, ListenerTLS, NoStickiness, Path, RateLimit, Route, Server,
                    Service, SourceIpStickiness, Stickiness, Timeouts, Topology, UpstreamTLS, Vip, VrrpInstance, ip_of,
                    local_file)
from .profiles import profile_defaults
from .tls_profiles import PROFILES, profile_for_min_version
from .report import Reporter
from .rules.common import cite

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "y": 365 * 86_400_000}
_DURATION = re.compile(r"^([0-9]{1,9})(ms|s|m|h|d|y)$")   # y: only the schema's long `age` type allows it


def duration_ms(text: str) -> int:
    m = _DURATION.match(text)
    if not m:  # the schema refuses these first; this guards direct callers
        raise ValueError(f"bad duration {text!r}")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


def _stickiness(raw: dict, path: Path) -> Stickiness:
    """The variant of the mode, with only its settings; those written for another mode are named in
    `unused` (a value equal to lbc's default changes nothing and is not named)."""
    mode = raw["mode"]
    cookie = raw.get("cookie") or {}
    idle_ms = duration_ms(raw["idle_timeout"]) if "idle_timeout" in raw else None
    lifetime_ms = duration_ms(raw["max_lifetime"]) if "max_lifetime" in raw else None
    unused = []
    if mode != "cookie" and (cookie.get("name", "LBSRV") != "LBSRV" or "max_age" in cookie):
        unused.append("cookie")
    if mode != "source-ip" and idle_ms not in (None, IDLE_TIMEOUT_DEFAULT_MS):
        unused.append("idle_timeout")
    if mode != "cookie" and lifetime_ms is not None:
        unused.append("max_lifetime")
    u = tuple(unused)
    if mode == "cookie":
        return CookieStickiness(cookie_name=cookie.get("name", "LBSRV"),
                                cookie_max_age_ms=duration_ms(cookie["max_age"]) if "max_age" in cookie else None,
                                max_lifetime_ms=lifetime_ms, path=path, unused=u)
    if mode == "source-ip":
        return SourceIpStickiness(idle_timeout_ms=IDLE_TIMEOUT_DEFAULT_MS if idle_ms is None else idle_ms,
                                  idle_timeout_given=idle_ms is not None, path=path, unused=u)
    if mode == "application":
        return ApplicationStickiness(path=path, unused=u)
    return NoStickiness(path=path, unused=u)   # the schema allows no other mode


def _ignore(raw: dict) -> tuple[tuple[str, str], ...]:
    ignore = raw.get("ignore")
    return tuple(sorted(ignore.items())) if ignore else ()


class _Builder:
    def __init__(self, doc, reporter: Reporter, base_dir: str):
        self.doc = doc
        self.r = reporter
        self.base_dir = base_dir
        self.defaults: list[DefaultApplied] = []

    # ------------------------------------------------------------ helpers
    def default(self, raw: dict, key: str, value, path: tuple, origin: str = "lbc default"):
        if key in raw:
            return raw[key]
        self.defaults.append(DefaultApplied(path + (key,), value, origin))
        return value

    def apply_profile(self, raw: dict, path: tuple) -> dict:
        """The service's data with the profile's defaults filled in; the document's data is not
        changed (only the mappings on a default's path are copied)."""
        profile = raw.get("profile", "generic")
        defaults = profile_defaults(profile, raw)
        if not defaults:
            return raw
        raw = dict(raw)
        for keys, value, citation in defaults:
            node = raw
            for k in keys[:-1]:
                node[k] = dict(node[k]) if isinstance(node.get(k), dict) else node.get(k, {})
                node = node[k]
            if keys[-1] not in node:
                node[keys[-1]] = value
                self.defaults.append(DefaultApplied(path + keys, value, f"profile {profile} ({citation})"))
        return raw

    def flynet_check_host(self, svc: Service, listeners: list[Listener]) -> Service:
        """Flynet's monitor request names the site (Host:); without one in the topology, the service's
        first routed host name is used (recorded as a profile default; LBC410 warns when there is none)."""
        h = svc.health
        if svc.profile != "flynet" or h is None or h.kind != "http" or h.http_host:
            return svc
        host = next((x for l in listeners for r in l.routes if r.service == svc.name and r.server is None
                     for x in r.hosts if not x.startswith("*.")), None)
        if host is None:
            return svc
        self.defaults.append(DefaultApplied(svc.path + ("health", "http", "host"), host,
                                            f"profile flynet ({cite('001', 'Using the F5 Load Balancer')}; "
                                            "the service's first routed host name)"))
        return dataclasses.replace(svc, health=dataclasses.replace(h, http_host=host))

    # ------------------------------------------------------------ objects
    def service(self, name: str, raw: dict) -> Service:
        path = ("services", name)
        raw = self.apply_profile(raw, path)
        servers = tuple(self.server(s, path + ("servers", i)) for i, s in enumerate(raw["servers"]))
        seen: dict[str, int] = {}
        for i, s in enumerate(servers):
            if s.name in seen:
                self.r.report("LBC102", s.path + ("name",), f"service '{name}' has two servers named '{s.name}'",
                              related=[(path + ("servers", seen[s.name], "name"), "first defined here")])
            seen.setdefault(s.name, i)
        health = self.health(raw["health"], path + ("health",), servers) if "health" in raw else None
        st_raw = raw.get("stickiness") or {"mode": "none"}
        if "stickiness" not in raw:
            self.defaults.append(DefaultApplied(path + ("stickiness", "mode"), "none", "lbc default"))
        stickiness = _stickiness(st_raw, path + ("stickiness",))
        fallback = None
        if "fallback" in raw:
            fb = raw["fallback"]
            if "respond" in fb:
                rs = fb["respond"]
                fallback = Fallback("respond", rs.get("status", 503), rs["body"], rs.get("content_type", "text/plain"),
                                    path=path + ("fallback",))
            else:
                fallback = Fallback("server", address=fb["server"]["address"], port=fb["server"]["port"],
                                    path=path + ("fallback",))
        upstream_tls = None
        if "upstream_tls" in raw:
            u = raw["upstream_tls"]
            upstream_tls = UpstreamTLS(u.get("ca"), u.get("verify", True), u.get("verify_name"),
                                       u.get("sni"), path=path + ("upstream_tls",))
        cap = raw.get("capacity") or {}
        return Service(
            name=name, profile=raw.get("profile", "generic"),
            balance=self.default(raw, "balance", "round-robin", path),
            servers=servers, health=health, stickiness=stickiness, fallback=fallback, upstream_tls=upstream_tls,
            proxy_protocol=raw.get("proxy_protocol", "none"),
            x509_client_auth=raw.get("x509_client_auth", False),
            redispatch=raw.get("redispatch", True),
            peak_sessions=cap.get("peak_sessions"), peak_users=cap.get("peak_users"),
            path=path, ignore=_ignore(raw),
        )

    def server(self, raw: dict, path: tuple) -> Server:
        ports = tuple(sorted(raw["ports"].items())) if "ports" in raw else (("default", raw["port"]),)
        return Server(
            name=raw["name"], address=raw["address"], ports=ports,
            weight=raw.get("weight", 1), priority=raw.get("priority", 1), max_sessions=raw.get("max_sessions"),
            direct_host=raw.get("direct_host", "").lower() or None, state=raw.get("state", "active"),
            path=path, ignore=_ignore(raw),
        )

    def health(self, raw: dict, path: tuple, servers: tuple[Server, ...]) -> HealthCheck:
        port_name = raw.get("port")
        if port_name is not None:
            for s in servers:
                if port_name not in dict(s.ports):
                    self.r.report("LBC101", path + ("port",), f"server '{s.name}' has no port named '{port_name}'",
                                  related=[(s.path, "server defined here")])
        common = dict(interval_ms=duration_ms(raw.get("interval", "5s")), timeout_ms=duration_ms(raw.get("timeout", "2s")),
                      rise=raw.get("rise", 2), fall=raw.get("fall", 3), port_name=port_name, path=path)
        if "http" in raw:
            h = raw["http"]
            return HealthCheck("http", http_path=h["path"], http_host=h.get("host"),
                               expect_status=h.get("expect_status", 200), expect_body=h.get("expect_body"), **common)
        return HealthCheck("tcp", **common)

    def certificate(self, name: str, raw: dict) -> Certificate:
        path = ("certificates", name)
        info = certs.read_certificate(local_file(self.base_dir, raw["cert"]))
        declared = tuple(n.lower() for n in raw.get("names", ()))
        return Certificate(
            name=name, cert=raw["cert"], key=raw.get("key"),
            names=info.names if info else declared, names_from_file=info is not None,
            not_after=info.not_after if info else None, path=path, ignore=_ignore(raw), declared_names=declared,
        )

    def route(self, raw: dict, path: tuple, services: dict[str, Service], scheme: str = "http") -> list[Route]:
        if ("service" in raw) == ("redirect" in raw):
            self.r.report("LBC618", path, "a route names either a `service` or a `redirect`, "
                          + ("not both" if "service" in raw else "and this one names neither"),
                          hint="keep `service:` to proxy, or `redirect: {host: ...}` to answer with a redirect")
            return []
        if "redirect" in raw:
            return self.redirect_route(raw, path, scheme)
        svc = services.get(raw["service"])
        if svc is None:
            self.r.report("LBC101", path + ("service",), f"route names service '{raw['service']}', which is not defined",
                          hint=_suggest(raw["service"], services))
            return []
        port_names = [set(dict(s.ports)) for s in svc.servers]
        common = set.intersection(*port_names) if port_names else set()
        port_name = raw.get("port")
        if port_name is None:
            port_name = "default" if "default" in common else (next(iter(common)) if len(common) == 1 else None)
            if port_name is None:
                self.r.report("LBC101", path, f"route to service '{svc.name}' must choose a port: its servers have "
                              f"{', '.join(sorted(common)) or 'no common port name'}", hint="add `port: NAME` to the route")
                return []
        elif port_name not in common:
            self.r.report("LBC101", path + ("port",), f"not every server of service '{svc.name}' has a port named '{port_name}'",
                          hint=f"ports all its servers have: {', '.join(sorted(common)) or 'none'}")
            return []
        hosts = tuple(h.lower() for h in raw.get("hosts", ()))
        url_path = self.url_path(raw, path)
        access = self.access(raw["access"], path + ("access",)) if "access" in raw else None
        if raw.get("direct_hosts"):
            if not any(s.direct_host for s in svc.servers):  # the route would expand to nothing
                self.r.report("LBC101", path + ("direct_hosts",), f"no server of service '{svc.name}' has a "
                              "`direct_host:`, so this route routes nothing", hint="give the servers `direct_host:`")
                return []
            return [Route((s.direct_host,), svc.name, s.name, port_name, path, from_direct_hosts=True, ignore=_ignore(raw),
                          url_path=url_path, access=access)
                    for s in svc.servers if s.direct_host]
        server = raw.get("server")
        if server is not None and server not in {s.name for s in svc.servers}:
            self.r.report("LBC101", path + ("server",), f"service '{svc.name}' has no server named '{server}'",
                          hint=_suggest(server, {s.name: s for s in svc.servers}))
            return []
        return [Route(hosts, svc.name, server, port_name, path, ignore=_ignore(raw), url_path=url_path, access=access)]

    def redirect_route(self, raw: dict, path: tuple, scheme: str) -> list[Route]:
        """A route that answers with a redirect: no service, so nothing that chooses a server applies."""
        extra = [k for k in ("server", "port", "direct_hosts", "strip_prefix", "access") if k in raw]
        if extra:
            what = ("a route's `access` list guards the service it reaches (a listener's list guards redirects too)"
                    if extra[0] == "access" else f"`{extra[0]}` chooses how a service is reached")
            self.r.report("LBC618", path + (extra[0],), f"{what}; a route with `redirect:` reaches no service",
                          hint=f"remove `{extra[0]}`")
            return []
        rd = raw["redirect"]
        where = path + ("redirect",)
        redirect = RouteRedirect(status=self.default(rd, "status", 308, where),
                                 scheme=self.default(rd, "scheme", scheme, where),
                                 host=rd.get("host", "").lower() or None, port=rd.get("port"))
        return [Route(tuple(h.lower() for h in raw.get("hosts", ())), None, None, "", path,
                      url_path=self.url_path(raw, path, strips=False), redirect=redirect)]

    def url_path(self, raw: dict, path: tuple, strips: bool = True) -> Optional[UrlPath]:
        """The paths a route takes; None: every path. `strips` False: a redirect (it forwards no path)."""
        if "path_exact" in raw:
            return UrlPath("exact", raw["path_exact"])
        if "path_prefix" in raw:
            return UrlPath("prefix", raw["path_prefix"],
                           strips and bool(self.default(raw, "strip_prefix", False, path)))
        return None

    def listener(self, i: int, raw: dict, vips: dict[str, Vip], certs_: dict[str, Certificate],
                 services: dict[str, Service], access_log: Optional[AccessLog] = None) -> Optional[Listener]:
        path = ("listeners", i)
        vip = vips.get(raw["vip"])
        if vip is None:
            self.r.report("LBC101", path + ("vip",), f"listener '{raw['name']}' names VIP '{raw['vip']}', which is not defined",
                          hint=_suggest(raw["vip"], vips))
        t = raw.get("tls") or {"mode": "none"}
        for j, c in enumerate(t.get("certificates", ())):
            if c not in certs_:
                self.r.report("LBC101", path + ("tls", "certificates", j), f"certificate '{c}' is not defined",
                              hint=_suggest(c, certs_))
        tls = ListenerTLS(mode=t["mode"], certificates=tuple(t.get("certificates", ())),
                          client_auth=t.get("client_auth", "none"), client_ca=t.get("client_ca"),
                          path=path + ("tls",), **self.tls_profile(t, path + ("tls",)))
        protocol = self.default(raw, "protocol", "tcp" if tls.mode == "passthrough" else "http", path)
        routes: list[Route] = []
        for j, r in enumerate(raw["routes"]):
            routes.extend(self.route(r, path + ("routes", j), services, "https" if tls.decrypts else "http"))
        self.check_hosts(routes, path)
        to = raw.get("timeouts") or {}
        d = Timeouts()
        timeouts = Timeouts(
            connect_ms=duration_ms(to["connect"]) if "connect" in to else d.connect_ms,
            client_ms=duration_ms(to["client"]) if "client" in to else d.client_ms,
            server_ms=duration_ms(to["server"]) if "server" in to else d.server_ms,
            tunnel_ms=duration_ms(to["tunnel"]) if "tunnel" in to else d.tunnel_ms,
        )
        if vip is None:
            return None
        return Listener(
            name=raw["name"], vip=vip.name, address=vip.address, port=raw["port"], protocol=protocol, tls=tls,
            routes=tuple(routes),
            websocket=self.default(raw, "websocket", protocol == "http", path),
            forwarded_headers=self.default(raw, "forwarded_headers", protocol == "http", path),
            buffering=self.default(raw, "buffering", True, path),
            timeouts=timeouts, path=path, ignore=_ignore(raw),
            access_log=self.access_log(raw["access_log"], path + ("access_log",)) if "access_log" in raw else access_log,
            hsts=self.hsts(raw["hsts"], path + ("hsts",)) if "hsts" in raw else None,
            headers=self.headers(raw.get("headers") or {}, path + ("headers",)),
            access=self.access(raw["access"], path + ("access",)) if "access" in raw else None,
            rate_limit=self.rate_limit(raw["rate_limit"], path + ("rate_limit",)) if "rate_limit" in raw else None,
            redirect_https=self.redirect_https(raw["redirect_https"], path + ("redirect_https",))
            if "redirect_https" in raw else None,
        )

    # ------------------------------------------------------------ logs and metrics
    def access_log(self, raw: Optional[dict], path: tuple) -> Optional[AccessLog]:
        """An `access_log:` block as written (LBC652 checks that `to` and its file/syslog agree)."""
        if raw is None:
            return None
        sl = raw.get("syslog") or {}
        if "address" in sl and ip_of(sl["address"]) is None:   # the schema's pattern lets '1:30' through
            self.r.report("LBC105", path + ("syslog", "address"), f"'{sl['address']}' is not an IP address")
        return AccessLog(
            to=raw["to"], format=self.default(raw, "format", "text", path) if raw["to"] != "none" else "text",
            file=raw.get("file"), syslog_address=sl.get("address"),
            syslog_port=self.default(sl, "port", 514, path + ("syslog",)) if sl else 514,
            facility=self.default(sl, "facility", "local0", path + ("syslog",)) if sl else "local0",
            path=path)

    def admin(self, raw: Optional[dict]) -> Optional[Admin]:
        if raw is None:
            return None
        address = self.default(raw, "address", "127.0.0.1", ("admin",))
        problem = _vip_problem(address)      # an address a proxy can bind, as a VIP's
        if problem:
            self.r.report("LBC105", ("admin", "address"), f"admin endpoint: '{address}' {problem}")
        return Admin(address, raw["port"], ignore=_ignore(raw))

    def tls_profile(self, t: dict, path: tuple) -> dict:
        """Profile and min_version, each from the other when only one is written (so a topology that says
        `min_version: "1.3"` keeps meaning TLS 1.3 only); explicit cipher lists stay None unless given.
        Only listeners that decrypt record these defaults: elsewhere the servers choose."""
        mv = t.get("min_version")
        mv = mv if mv is None or isinstance(mv, str) else f"{mv:.1f}"
        record = t["mode"] in DECRYPTING
        profile = t.get("profile") or (profile_for_min_version(mv) if mv else "intermediate")
        if mv is None:
            mv = PROFILES[profile].versions[0]
            if record:
                self.defaults.append(DefaultApplied(path + ("min_version",), mv,
                                                    f"lbc default (the oldest version of TLS profile {profile})"))
        if "profile" not in t and record:
            self.defaults.append(DefaultApplied(path + ("profile",), profile, "lbc default" if "min_version" not in t
                                                else f"lbc default (from min_version {mv})"))
        lists = {k: tuple(t[k]) for k in ("ciphers", "ciphersuites", "curves") if k in t}
        return dict(min_version=mv, profile=profile, written=tuple(sorted(t)), **lists)

    def hsts(self, raw: dict, path: tuple) -> Hsts:
        return Hsts(max_age_s=duration_ms(self.default(raw, "max_age", "365d", path)) // 1000,
                    include_subdomains=self.default(raw, "include_subdomains", False, path),
                    preload=self.default(raw, "preload", False, path), path=path)

    def redirect_https(self, raw: dict, path: tuple) -> RedirectHttps:
        return RedirectHttps(status=self.default(raw, "status", 308, path),
                             exempt=tuple(self.default(raw, "except", [], path)),
                             port=self.default(raw, "port", 443, path), path=path)

    @staticmethod
    def headers(raw: dict, path: tuple) -> HeaderPolicy:
        def changes(d: dict, where: tuple) -> HeaderChanges:
            return HeaderChanges(set=tuple((d.get("set") or {}).items()), add=tuple((d.get("add") or {}).items()),
                                 remove=tuple(d.get("remove") or ()), path=where)
        return HeaderPolicy(changes(raw.get("request") or {}, path + ("request",)),
                            changes(raw.get("response") or {}, path + ("response",)))

    def rate_limit(self, raw: dict, path: tuple) -> Optional[RateLimit]:
        """Exactly one of requests_per_second and connections_per_second (LBC635); burst defaults to it."""
        given = [k for k in ("requests_per_second", "connections_per_second") if k in raw]
        if len(given) != 1:
            self.r.report("LBC635", path, "a rate limit needs exactly one of requests_per_second and "
                          f"connections_per_second (it has {' and '.join(given) or 'neither'})", key=True)
            return None
        rate = raw[given[0]]
        burst = self.default(raw, "burst", rate, path)
        return RateLimit("request" if given[0] == "requests_per_second" else "connection", rate, burst, path)

    def access(self, raw: dict, path: tuple) -> AccessList:
        """The client networks, normalised (LBC630 for one that is not a network); each kept once."""
        lists: dict[str, list[str]] = {}
        written: list[tuple[str, int, str]] = []
        for kind in ("allow", "deny"):
            nets: dict[str, None] = {}
            for j, text in enumerate(raw.get(kind, ())):
                net, problem = parse_network(text)
                if problem:
                    self.r.report("LBC630", path + (kind, j), f"'{text}' {problem}",
                                  hint=f"write {net}" if net else "e.g. 192.0.2.0/24 or 2001:db8::/32")
                elif net:
                    nets.setdefault(net, None)
                    written.append((kind, j, net))
            lists[kind] = list(nets)
        return AccessList(tuple(lists["allow"]), tuple(lists["deny"]), path, tuple(written))

    def check_hosts(self, routes: list[Route], lpath: tuple) -> None:
        """Each (host, path) once per listener; the routes without hosts are the default table."""
        first: dict[tuple, Route] = {}
        defaults: dict[Optional[tuple], Route] = {}
        for r in routes:
            if r.hosts:
                continue
            key = _match_key(r)
            if key in defaults:
                self.r.report("LBC104", r.path, "a listener has more than one default route (a route without hosts)"
                              + _for_paths(r), related=[(defaults[key].path, "first default route")],
                              hint="give the route `hosts:`")
            defaults.setdefault(key, r)
        for r in routes:
            for k, h in enumerate(r.hosts):
                key = (h, _match_key(r))
                if key in first and first[key] is not r:
                    hp = r.path if r.from_direct_hosts else r.path + ("hosts", k)
                    self.r.report("LBC104", hp, f"host '{h}' is routed twice on this listener" + _for_paths(r),
                                  related=[(first[key].path, "first routed here")],
                                  hint="route each host (and path) once per listener")
                first.setdefault(key, r)


def _match_key(r: Route) -> Optional[tuple]:
    """What two routes of one host must not share: the paths they take (stripping or not). The prefix "/"
    takes every path, as a route without a path does (nginx refuses two `location /`)."""
    u = r.url_path
    return None if u is None or (u.kind, u.value) == ("prefix", "/") else (u.kind, u.value)


def _for_paths(r: Route) -> str:
    u = r.url_path
    return "" if u is None else f" for the same path ({'path_exact' if u.kind == 'exact' else 'path_prefix'} {u.value})"


def _suggest(name: str, known: dict) -> str:
    import difflib
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"defined: {', '.join(sorted(known))}" if known else "none is defined"


def build_model(doc, reporter: Reporter) -> Optional[Topology]:
    """Build the model from schema-valid data; None when a structural rule failed."""
    data = doc.data
    before = len([d for d in reporter.diagnostics if d.fails])
    base_dir = os.path.dirname(os.path.abspath(doc.file)) if os.path.exists(doc.file) else os.getcwd()
    b = _Builder(doc, reporter, base_dir)
    vips = {}
    for name, v in data["vips"].items():
        problem = _vip_problem(v["address"])
        if problem:
            reporter.report("LBC105", ("vips", name, "address"), f"VIP '{name}': '{v['address']}' {problem}")
        vips[name] = Vip(name, v["address"], ("vips", name))
    certificates = {n: b.certificate(n, c) for n, c in sorted((data.get("certificates") or {}).items())}
    services = {n: b.service(n, s) for n, s in data["services"].items()}
    ip_like: dict[str, bool] = {}   # address -> looks like an IP address but is not one (servers share addresses)
    for svc in services.values():
        for s in svc.servers:
            if s.address not in ip_like:
                ip_like[s.address] = ((re.match(r"^[0-9.]+$", s.address) is not None or ":" in s.address)
                                      and not _is_ip(s.address))
            if ip_like[s.address]:
                reporter.report("LBC105", s.path + ("address",), f"server '{s.name}': '{s.address}' is not a valid IP address")
        fb = svc.fallback
        if fb is not None and fb.kind == "server" and ip_of(fb.address or "") is None:
            reporter.report("LBC105", fb.path + ("server", "address"),
                            f"service '{svc.name}': the fallback server's address '{fb.address}' is not an IP address")
    listeners = []
    names: dict[str, int] = {}
    access_log = b.access_log(data.get("access_log"), ("access_log",))
    for i, raw in enumerate(data["listeners"]):
        if raw["name"] in names:
            reporter.report("LBC102", ("listeners", i, "name"), f"two listeners are named '{raw['name']}'",
                            related=[(("listeners", names[raw["name"]], "name"), "first defined here")])
        names.setdefault(raw["name"], i)
        lst = b.listener(i, raw, vips, certificates, services, access_log)
        if lst:
            listeners.append(lst)
    binds: dict[tuple, Listener] = {}
    for lst in listeners:
        key = (str(ip_of(lst.address) or lst.address), lst.port)
        if key in binds:
            reporter.report("LBC103", lst.path + ("port",),
                            f"listeners '{binds[key].name}' and '{lst.name}' both bind {lst.address}:{lst.port}",
                            related=[(binds[key].path, "first bound here")])
        binds.setdefault(key, lst)
    balancers = _balancers(data["balancers"], vips, listeners, reporter) if "balancers" in data else None
    admin = b.admin(data.get("admin"))
    if len([d for d in reporter.diagnostics if d.fails]) > before:
        return None
    for name, svc in services.items():
        services[name] = b.flynet_check_host(svc, listeners)
    return Topology(
        name=data.get("name") or name_from_file(doc.file),
        file=doc.file, vips=tuple(vips.values()), certificates=tuple(certificates.values()),
        services=tuple(services.values()), listeners=tuple(listeners),
        defaults_applied=tuple(b.defaults), ignore=_ignore(data), base_dir=base_dir, balancers=balancers,
        admin=admin,
    )


def _balancers(raw: dict, vips: dict[str, Vip], listeners: list[Listener], reporter: Reporter) -> Balancers:
    """The balancer nodes and the VIPs they share (references checked: LBC101, LBC102, LBC105, LBC013)."""
    path = ("balancers",)
    known = {l.name for l in listeners}
    nodes: list = []
    seen_addr: dict[str, tuple] = {}
    for name, n in raw["nodes"].items():
        npath = path + ("nodes", name)
        for j, l in enumerate(n.get("listeners", ())):
            if l not in known:
                reporter.report("LBC101", npath + ("listeners", j), f"node '{name}' serves listener '{l}', which is "
                                "not defined", hint=_suggest(l, {k: None for k in known}))
        ip = ip_of(n["address"])
        if ip is None or ip.version != 4:
            reporter.report("LBC105", npath + ("address",), f"node '{name}': '{n['address']}' is not an IPv4 address "
                            "(the nodes speak VRRP version 2, over IPv4)")
        addr = str(ip or n["address"])
        if addr in seen_addr:
            reporter.report("LBC102", npath + ("address",), f"nodes '{seen_addr[addr]}' and '{name}' have the same "
                            f"address {n['address']}",
                            related=[(path + ("nodes", seen_addr[addr], "address"), "first here")])
        seen_addr.setdefault(addr, name)
        for v in vips.values():
            if ip is not None and str(ip_of(v.address)) == addr:
                reporter.report("LBC105", npath + ("address",), f"node '{name}' has the address of VIP '{v.name}': "
                                "a node needs its own address, the VIP moves between nodes")
        served = tuple(n["listeners"]) if "listeners" in n else tuple(l.name for l in listeners)
        nodes.append(BalancerNode(name, n["address"], n["interface"], n["priority"], served, n.get("pid_file"),
                                  npath, _ignore(n)))
    instances: list = []
    router_ids: dict[int, tuple] = {}
    for vname, v in raw["vrrp"].items():
        vpath = path + ("vrrp", vname)
        vip = vips.get(vname)
        if vip is None:
            reporter.report("LBC101", vpath, f"VRRP instance for VIP '{vname}', which is not defined",
                            hint=_suggest(vname, vips), key=True)
            continue
        vip_ip = ip_of(vip.address)
        if vip_ip is not None and vip_ip.version != 4:
            reporter.report("LBC105", vpath, f"VIP '{vname}' ({vip.address}) is IPv6: lbc shares IPv4 VIPs by VRRP "
                            "(VRRP version 2) only", key=True)
        rid = v["router_id"]
        if rid in router_ids:
            reporter.report("LBC102", vpath + ("router_id",), f"VIPs '{router_ids[rid]}' and '{vname}' use the same "
                            f"virtual router ID {rid}", related=[(path + ("vrrp", router_ids[rid], "router_id"),
                                                                  "first here")])
        router_ids.setdefault(rid, vname)
        advert = duration_ms(v.get("advert_interval", "1s"))
        if advert % 1000 or not 1000 <= advert <= 255_000:
            reporter.report("LBC013", vpath + ("advert_interval",), "VRRP version 2 advertises in whole seconds, "
                            "1s to 255s", hint="e.g. `advert_interval: 1s`")
        members = tuple(v.get("nodes", raw["nodes"]))
        for j, m in enumerate(v.get("nodes", ())):
            if m not in raw["nodes"]:
                reporter.report("LBC101", vpath + ("nodes", j), f"VRRP instance '{vname}' names node '{m}', which is "
                                "not defined", hint=_suggest(m, raw["nodes"]))
        instances.append(VrrpInstance(vname, vip.address, rid, advert, v.get("preempt", True), v.get("auth_pass"),
                                      v.get("unicast", False), members, vpath, _ignore(v)))
    return Balancers(tuple(nodes), tuple(instances), raw.get("state_sync", True), raw.get("sync_port", 10000))


def name_from_file(file: str) -> str:
    """The topology's name when it has no `name:`: its file name made to fit the schema's name
    grammar. The name reaches comments, READMEs, Dockerfiles and compose files, so a file name may
    not carry anything a `name:` could not (a newline in a file name would otherwise add lines)."""
    stem = os.path.splitext(os.path.basename(file))[0]
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")
    if not name[:1].isalpha() or not name[:1].isascii():
        name = "topology-" + name if name else "topology"
    return name[:63].rstrip("-_")


def _vip_problem(address: str) -> Optional[str]:
    """Why a proxy cannot bind this address, or None. IPv4-mapped IPv6 (::ffff:a.b.c.d) is an IPv4
    address in IPv6 form that IPv6-only sockets (nginx's default) refuse; a link-local address
    needs an interface name that the topology cannot give."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "is not an IP address"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return f"is an IPv4 address in IPv6 form: write {ip.ipv4_mapped}"
    if ip.is_link_local or ip.is_multicast:
        return "is a link-local or multicast address, which a listener cannot bind without an interface"
    return None


def parse_network(text: str) -> tuple[Optional[str], Optional[str]]:
    """(normalised network, problem). An address alone is a /32 or /128. A network with host bits
    set (10.1.2.3/8) is refused, not truncated: it is as likely a wrong prefix length as a wrong
    address, so the problem names the network it would be."""
    try:
        net = ipaddress.ip_network(text)          # one parse for every well-formed entry
    except ValueError:
        try:
            wide = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None, "is not an IP network (CIDR) or address"
        return str(wide), f"has host bits set: the network is {wide}"
    if net.version == 6 and net.network_address.ipv4_mapped is not None:
        return None, "is an IPv4 network in IPv6 form: write it as IPv4"
    return str(net), None


def _is_ip(a: str) -> bool:
    try:
        ipaddress.ip_address(a)
        return True
    except ValueError:
        return False
