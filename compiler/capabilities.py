"""What a target can express: the feature vocabulary, what a topology uses, and LBC8xx.

Every target declares, for every feature here, whether it is native, emulated (an info
saying what differs) or unsupported (compile fails with an error naming the feature).
`lbc targets` prints the same declarations as the support matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .model import CookieStickiness, Topology
from .report import Reporter

FEATURES: dict[str, str] = {
    "balance.round-robin": "round-robin balancing",
    "balance.least-connections": "least-connections balancing",
    "balance.weighted-random": "weighted random balancing",
    "balance.source-hash": "balancing by a hash of the client address",
    "server.weights": "unequal server weights",
    "server.max-sessions": "per-server session (connection) limit",
    "server.hold": "a server on hold: drains, sticky sessions continue",
    "server.down": "a server administratively down",
    "priority.tiers": "priority groups (next group only when the previous is down or full)",
    "health.http": "active HTTP health check (status)",
    "health.http-body": "active HTTP health check matching a body substring",
    "health.tcp": "active TCP health check",
    "health.drain-on-body": "a server whose health page lacks the expected text drains (no new sessions, sticky "
                            "clients stay); only an HTTP error or no answer is down",
    "health.tls": "HTTP health checks over TLS to servers behind TLS passthrough",
    "stickiness.cookie": "cookie stickiness (inserted session cookie)",
    "stickiness.cookie-max-age": "cookie stickiness with a cookie lifetime",
    "stickiness.source-ip": "source-IP stickiness",
    "stickiness.application": "application stickiness (per-server direct host names)",
    "stickiness.max-lifetime": "maximum stickiness lifetime (forced rebalancing)",
    "fallback.respond": "fixed answer when no server can serve",
    "fallback.server": "fallback server when no server can serve",
    "redispatch": "re-dispatch of a sticky client when its server fails",
    "routing.hosts": "routing by host name (Host header)",
    "routing.pinned-server": "a host pinned to one server",
    "routing.paths": "routing by request path (path_exact, path_prefix: exact first, then the longest prefix)",
    "routing.strip-prefix": "removing a route's path prefix before the request reaches the server",
    "routing.redirect-host": "a route answering with a redirect to another host, scheme or port (path and query kept)",
    "tls.terminate": "TLS termination",
    "tls.bridge": "TLS bridging (re-encrypt to servers)",
    "tls.upstream-verify": "verifying servers' certificates against a CA",
    "tls.passthrough": "TLS passthrough",
    "tls.sni-routing": "routing passthrough connections by SNI",
    "tls.multi-certificate": "several certificates on one listener, chosen by SNI",
    "tls.client-auth": "client certificates checked by the load balancer",
    "tls.profile": "TLS profiles (Mozilla modern / intermediate / old): versions, cipher suites, groups",
    "tls.cipher-lists": "explicit TLS cipher suite and group lists (ciphers, ciphersuites, curves)",
    "listener.websocket": "WebSocket upgrades",
    "listener.no-buffering": "unbuffered (streaming) responses",
    "listener.forwarded-headers": "X-Forwarded-For / X-Forwarded-Proto",
    "listener.hsts": "HTTP Strict Transport Security on every HTTPS answer",
    "listener.redirect-https": "plain HTTP redirected to HTTPS (same host, path and query; except prefixes routed)",
    "headers.request": "headers set or removed on requests",
    "headers.response": "headers set, added or removed on answers",
    "upstream.proxy-protocol-v1": "PROXY protocol v1 to servers",
    "upstream.proxy-protocol-v2": "PROXY protocol v2 to servers",
    "access.client-networks": "allow and deny lists of client networks (403 at L7, a closed connection at L4)",
    "access.per-route": "allow and deny lists of client networks on an L7 route, after the listener's (403)",
    "access.per-route-l4": "allow and deny lists of client networks on an SNI route of an L4 listener (closed)",
    "rate-limit.requests": "a request rate limit per client address, with a burst (429)",
    "rate-limit.connections": "a connection rate limit per client address, with a burst (the connection is closed)",
    "ha.vrrp": "balancer nodes sharing VIPs by VRRP (keepalived), one output folder per node",
    "ha.state-sync": "stickiness state that survives a failover between balancer nodes",
    "logs.stdout": "access log to the proxy's standard output or error",
    "logs.file": "access log to a file",
    "logs.syslog": "access log to a syslog server",
    "logs.json": "access log lines as JSON",
    "metrics.endpoint": "a metrics endpoint on the admin address, with per-server request counters",
}

NATIVE, EMULATED, UNSUPPORTED = "native", "emulated", "unsupported"


@dataclass(frozen=True)
class Support:
    level: str          # native | emulated | unsupported
    note: str = ""


# LBC801 and LBC802 are registered with the other rules (lbc.rules.capability).


def features_used(model: Topology) -> Iterator[tuple[str, tuple]]:
    """(feature, path of the topology value that asks for it), in a stable order."""
    routed = set(model.routed_services)
    for svc in model.services:
        if svc.name not in routed:
            continue
        yield f"balance.{svc.balance}", svc.path + ("balance",)
        if len({s.weight for s in svc.servers}) > 1:
            yield "server.weights", svc.path + ("servers",)
        for s in svc.servers:
            if s.max_sessions is not None:
                yield "server.max-sessions", s.path + ("max_sessions",)
            if s.state in ("hold", "down"):
                yield f"server.{s.state}", s.path + ("state",)
        if len(svc.tiers) > 1:
            yield "priority.tiers", svc.path + ("servers",)
        if svc.health:
            if svc.health.kind == "tcp":
                yield "health.tcp", svc.health.path
            else:
                yield "health.http", svc.health.path
                if svc.health.expect_body:
                    yield "health.http-body", svc.health.path + ("http", "expect_body")
                if svc.drains_on_body:
                    yield "health.drain-on-body", svc.health.path + ("http", "expect_body")
                if model.checks_over_tls(svc):
                    yield "health.tls", svc.health.path + ("http",)
        st = svc.stickiness
        if st.mode != "none":
            yield f"stickiness.{st.mode}", st.path + ("mode",)
            if isinstance(st, CookieStickiness) and st.cookie_max_age_ms is not None:
                yield "stickiness.cookie-max-age", st.path + ("cookie", "max_age")
            if isinstance(st, CookieStickiness) and st.max_lifetime_ms is not None:   # other modes: LBC308/LBC310
                yield "stickiness.max-lifetime", st.path + ("max_lifetime",)
            if svc.redispatch:
                yield "redispatch", svc.path
        if svc.fallback:
            yield f"fallback.{svc.fallback.kind}", svc.fallback.path
        if svc.upstream_tls and svc.upstream_tls.verify and svc.upstream_tls.ca:
            yield "tls.upstream-verify", svc.upstream_tls.path
        if svc.proxy_protocol != "none":
            yield f"upstream.proxy-protocol-{svc.proxy_protocol}", svc.path + ("proxy_protocol",)
    for l in model.listeners:
        mode = l.tls.mode
        if mode != "none":
            yield f"tls.{mode}", l.tls.path + ("mode",)
        if l.decrypts and len(l.tls.certificates) > 1:
            yield "tls.multi-certificate", l.tls.path + ("certificates",)
        if l.decrypts:
            yield "tls.profile", l.tls.path + ("profile",)
            for k in ("ciphers", "ciphersuites", "curves"):
                if getattr(l.tls, k) is not None:
                    yield "tls.cipher-lists", l.tls.path + (k,)
        if mode != "passthrough" and l.tls.client_auth != "none":
            yield "tls.client-auth", l.tls.path + ("client_auth",)
        if any(r.hosts for r in l.routes):
            yield ("tls.sni-routing" if mode == "passthrough" else "routing.hosts"), l.path + ("routes",)
        if any(r.server for r in l.routes):
            yield "routing.pinned-server", next(r.path for r in l.routes if r.server)
        yield from _path_features(l)
        if l.reads_http:
            if l.websocket:
                yield "listener.websocket", l.path
            if not l.buffering:
                yield "listener.no-buffering", l.path + ("buffering",)
            if l.forwarded_headers:
                yield "listener.forwarded-headers", l.path
            yield from _header_features(l)
    yield from _edge_features(model)
    yield from _balancer_features(model)
    yield from _observability_features(model)


def _observability_features(model: Topology) -> Iterator[tuple[str, tuple]]:
    """Access logs (per listener, the block that decided it) and the admin endpoint."""
    for l in model.listeners:
        log = l.access_log
        if log is None or not log.on:
            continue
        yield ("logs.stdout" if log.to in ("stdout", "stderr") else f"logs.{log.to}"), log.path + ("to",)
        if log.format == "json":
            yield "logs.json", log.path + ("format",)
    if model.admin is not None:
        yield "metrics.endpoint", model.admin.path


def _header_features(l) -> Iterator[tuple[str, tuple]]:
    if l.hsts is not None:
        yield "listener.hsts", l.hsts.path
    if l.redirect_https is not None:
        yield "listener.redirect-https", l.redirect_https.path
    if not l.headers.request.empty:
        yield "headers.request", l.headers.request.path
    if not l.headers.response.empty:
        yield "headers.response", l.headers.response.path


def _edge_features(model: Topology) -> Iterator[tuple[str, tuple]]:
    """Client-facing policies on listeners: access lists, rate limits."""
    for l in model.listeners:
        if l.access is not None and (l.access.allow or l.access.deny):
            yield "access.client-networks", l.access.path
        if l.rate_limit is not None:
            yield f"rate-limit.{l.rate_limit.unit}s", l.rate_limit.path
        yield from _route_access_features(l)


def _route_access_features(l) -> Iterator[tuple[str, tuple]]:
    """Per-route access lists: L7 routes, or SNI routes of an L4 listener (a separate capability)."""
    lists = [r.access for r in l.routes if r.access is not None and (r.access.allow or r.access.deny)]
    if lists:
        yield ("access.per-route" if l.reads_http else "access.per-route-l4"), lists[0].path


def _path_features(l) -> Iterator[tuple[str, tuple]]:
    paths = [r for r in l.routes if r.url_path is not None]
    if paths:
        yield "routing.paths", paths[0].path
    strips = [r for r in paths if r.url_path.strip]
    if strips:
        yield "routing.strip-prefix", strips[0].path + ("strip_prefix",)
    redirects = [r for r in l.routes if r.redirect is not None]
    if redirects:
        yield "routing.redirect-host", redirects[0].path + ("redirect",)


def _balancer_features(model: Topology) -> Iterator[tuple[str, tuple]]:
    b = model.balancers
    if b is None:
        return
    yield "ha.vrrp", b.path
    routed = set(model.routed_services)
    for svc in model.services:
        if svc.name in routed and svc.stickiness.mode == "source-ip" and b.state_sync:
            yield "ha.state-sync", svc.stickiness.path + ("mode",)


def check_capabilities(model: Topology, target, reporter: Reporter) -> None:
    """LBC801 for each unsupported feature the topology uses, LBC802 for each emulation (once per feature)."""
    seen: set[str] = set()
    for feature, path in features_used(model):
        support = target.capabilities.get(feature, Support(UNSUPPORTED, "not declared by the target"))
        if support.level == UNSUPPORTED:
            reporter.report("LBC801", path, f"target {target.name} cannot express {FEATURES[feature]} ({feature})"
                            + (f": {support.note}" if support.note else ""), target=target.name)
        elif support.level == EMULATED and feature not in seen:
            reporter.report("LBC802", path, f"target {target.name} emulates {FEATURES[feature]} ({feature}): {support.note}",
                            target=target.name)
        seen.add(feature)
    # A target may also refuse a feature only in some combinations (e.g. nginx: priority groups at L4
    # with a hash balance): refusals(model) yields (feature, path, why).
    # A feature may also be a limit of one target only (not in FEATURES): the note says it all.
    for feature, path, note in getattr(target, "refusals", lambda m: ())(model):
        what = f"{FEATURES[feature]} ({feature})" if feature in FEATURES else "this"
        reporter.report("LBC801", path, f"target {target.name} cannot express {what} here: {note}",
                        target=target.name)
