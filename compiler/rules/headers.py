"""LBC221-LBC226: HSTS and the headers a listener changes on requests and answers.

No vendor guide of the seeds speaks of these; the rules rest on the HTTP and HSTS RFCs, the browsers'
preload list requirements, and on what each proxy does with the headers it owns.
"""
from __future__ import annotations

from typing import Iterator

from ..model import HeaderChanges, Listener, Topology
from . import Finding, Rule, register
from .common import E, LBC_LANGUAGE, replace_in, y

RFC6797 = "RFC 6797 (HTTP Strict Transport Security), §7.2 and §8.1"
PRELOAD = "the browsers' HSTS preload list submission requirements (hstspreload.org)"
RFC9110 = "RFC 9110 (HTTP Semantics) §5.1 and §5.5, RFC 9112 (HTTP/1.1) §6 and §7.6.1"

ONE_YEAR_S = 365 * 86_400
F5_MAX_AGE_S = 2**32 - 1          # the largest HSTS period a BIG-IP HTTP profile takes (hstsPeriod)

BASE = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    certificates:
      site: {cert: certs/site.pem, key: certs/site.key, names: ["*.example.com", example.com]}
    services:
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
        health: {tcp: true}
    listeners:
      - name: web
        vip: public
        port: 443
        tls: {mode: terminate, certificates: [site]}
        hsts: {max_age: 365d}
        routes:
          - {hosts: [www.example.com], service: web}
    """)


def variant(*pairs: str) -> str:
    return replace_in(BASE, *pairs)


# ------------------------------------------------------------------ LBC221
def check_hsts_needs_https(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        if l.hsts is None or (l.reads_http and l.decrypts):
            continue
        why = ("passes TLS through: it never reads the answers" if l.tls.mode == "passthrough" else
               "serves plain HTTP: browsers ignore the header there (RFC 6797 §8.1)" if l.tls.mode == "none" else
               "is a TCP listener: it never reads the answers")
        yield Finding(l.hsts.path, f"listener '{l.name}' has `hsts:` but {why}", key=True,
                      hint="put `hsts:` on the HTTPS listener that terminates or bridges TLS with protocol http; "
                           "redirect plain HTTP to it instead")


register(Rule(
    "LBC221", "hsts-needs-https", E,
    "HSTS only on a listener that decrypts TLS and reads HTTP (tls mode terminate or bridge, protocol http).",
    "Move `hsts:` to the HTTPS listener; on plain HTTP redirect to HTTPS instead.",
    RFC6797,
    why="Strict-Transport-Security tells a browser to use only HTTPS for the host. A browser ignores it when it "
        "arrives over plain HTTP (an attacker could forge it there), so lbc never sends it on plain HTTP. A "
        "passthrough or TCP listener never reads the answers, so it cannot add a header to them: the servers "
        "must send it themselves.",
    bad=variant("tls: {mode: terminate, certificates: [site]}", "tls: {mode: passthrough}", "port: 443", "port: 443"),
    good=BASE,
    check=check_hsts_needs_https,
))


# ------------------------------------------------------------------ LBC222
def check_hsts_values(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        h = l.hsts
        if h is None:
            continue
        if h.max_age_s > F5_MAX_AGE_S:
            yield Finding(h.path + ("max_age",), f"listener '{l.name}': max_age {h.max_age_s} s is above "
                          f"{F5_MAX_AGE_S} s (about 136 years)", hint="use at most 2y, what the preload list expects")
        if h.preload and (h.max_age_s < ONE_YEAR_S or not h.include_subdomains):
            missing = [w for w, bad in (("max_age of at least 1 year (365d)", h.max_age_s < ONE_YEAR_S),
                                        ("include_subdomains: true", not h.include_subdomains)) if bad]
            yield Finding(h.path + ("preload",), f"listener '{l.name}' asks for the HSTS preload list without "
                          f"{' and '.join(missing)}, which the list requires",
                          hint="set `max_age: 1y` (or more) and `include_subdomains: true`, or drop `preload`")


register(Rule(
    "LBC222", "hsts-preload-requirements", E,
    "HSTS `preload` requires max_age of at least one year and include_subdomains; max_age fits in 32 bits.",
    "Set `max_age: 1y` or more and `include_subdomains: true`, or remove `preload: true`.",
    f"{RFC6797}; {PRELOAD}",
    why="`preload` asks browser vendors to ship the host in their built-in HSTS list. The list accepts only "
        "hosts whose header says max-age of at least 31536000 seconds with includeSubDomains and preload; a "
        "header with preload but less is a request the list refuses, and a sign the setting was not thought "
        "through (preloading is hard to undo: every subdomain must serve HTTPS). The BIG-IP HTTP profile "
        "stores the period in 32 bits, so lbc refuses a longer max_age everywhere.",
    bad=variant("hsts: {max_age: 365d}", "hsts: {max_age: 30d, preload: true}"),
    good=variant("hsts: {max_age: 365d}", "hsts: {max_age: 2y, include_subdomains: true, preload: true}"),
    check=check_hsts_values,
))


# ------------------------------------------------------------------ LBC223
def check_headers_need_http(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        if l.reads_http:
            continue
        if not (l.headers.request.empty and l.headers.response.empty):
            yield Finding(l.path + ("headers",), f"listener '{l.name}' changes headers but does not read HTTP "
                          f"({'TLS passthrough' if l.tls.mode == 'passthrough' else 'protocol tcp'})", key=True,
                          hint="change headers on an HTTP listener (protocol http, TLS none, terminate or bridge)")


register(Rule(
    "LBC223", "headers-need-http", E,
    "Header changes need a listener that reads HTTP (protocol http, not passthrough).",
    "Use `protocol: http` with TLS none, terminate or bridge, or drop `headers:`.",
    f"{RFC9110}; {LBC_LANGUAGE}",
    why="At L4, and in TLS passthrough, the balancer forwards bytes it does not parse: there are no headers it "
        "could set or remove.",
    bad=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        services:
          db:
            servers:
              - {name: d1, address: 10.0.0.21, port: 5432}
        listeners:
          - name: db
            vip: public
            port: 5432
            protocol: tcp
            headers: {response: {set: {X-Frame-Options: DENY}}}
            routes:
              - {service: db}
        """),
    good=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        services:
          db:
            servers:
              - {name: d1, address: 10.0.0.21, port: 5432}
        listeners:
          - name: db
            vip: public
            port: 5432
            protocol: tcp
            routes:
              - {service: db}
        """),
    check=check_headers_need_http,
))


# ------------------------------------------------------------------ LBC224 (schema)
register(Rule(
    "LBC224", "header-text", E,
    "A header name is not an RFC 7230 token, or a header value holds a control character or non-ASCII text.",
    "Write names with letters, digits and !#$%&'*+.^_`|~- only; values as printable ASCII without line breaks.",
    f"{RFC9110}; {LBC_LANGUAGE}",
    why="A header name with a space, ':' or a line break, or a value with CR or LF, would let the configuration "
        "write a second header or split the answer (response splitting). The schema refuses them before any "
        "target sees them; what remains is quoted per target (HAProxy and Envoy double '%', nginx writes '$' "
        "through a variable, Tcl and JSON escape the rest).",
    bad=variant("hsts: {max_age: 365d}", "headers: {response: {set: {\"X Frame\": DENY}}}"),
    good=variant("hsts: {max_age: 365d}", "headers: {response: {set: {X-Frame-Options: DENY}}}"),
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC225
# Framing and hop-by-hop fields: the proxy writes them per connection (RFC 9110 §7.6.1, RFC 9112 §6).
FRAMING = ("host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
           "proxy-connection")


def _changed(c: HeaderChanges) -> Iterator[tuple[str, tuple]]:
    """(name, where it is written) for every header a direction touches."""
    for kind in ("set", "add"):
        for name, _v in getattr(c, kind):
            yield name, c.path + (kind, name)
    for k, name in enumerate(c.remove):
        yield name, c.path + ("remove", k)


def _owned(model: Topology, l: Listener, direction: str) -> dict[str, str]:
    """Header (lower case) -> what in lbc owns it on this listener and direction."""
    owned = {h: "the proxy writes it for each connection (message framing or a hop-by-hop field)" for h in FRAMING}
    if l.forwarded_headers and direction == "request":
        for h in ("x-forwarded-for", "x-forwarded-proto"):
            owned[h] = "`forwarded_headers: true` writes it"
    if l.hsts is not None and direction == "response":
        owned["strict-transport-security"] = "`hsts:` writes it"
    if l.decrypts and l.tls.client_auth != "none" and direction == "request":
        owned["x-ssl-client-dn"] = owned["x-forwarded-client-cert"] = "`client_auth` passes the client certificate in it"
    if any(model.service(s).stickiness.mode == "cookie" for s in l.routed_services):
        owned["set-cookie" if direction == "response" else "cookie"] = "cookie stickiness reads and writes it"
    return owned


def check_owned_headers(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        if not l.reads_http:
            continue
        for direction, c in (("request", l.headers.request), ("response", l.headers.response)):
            owned = _owned(model, l, direction)
            for name, where in _changed(c):
                why = owned.get(name.lower())
                if why:
                    yield Finding(where, f"listener '{l.name}' changes the {direction} header '{name}': {why}",
                                  key=where[-2] != "remove",
                                  hint="leave this header to lbc; change the setting that owns it instead")


register(Rule(
    "LBC225", "header-owned-by-proxy", E,
    "A header change touches a header the proxy or another lbc setting owns (Host, Content-Length, "
    "Transfer-Encoding, Connection and the other hop-by-hop fields; X-Forwarded-For/-Proto with forwarded_headers; "
    "Strict-Transport-Security with hsts; the cookie header with cookie stickiness).",
    "Remove the change, or change the setting that owns the header (forwarded_headers, hsts, stickiness).",
    f"{RFC9110}; {LBC_LANGUAGE}",
    why="Content-Length, Transfer-Encoding and Connection frame the message on each connection: setting them by "
        "hand desynchronises client, proxy and server (request smuggling). Host selects the route and the "
        "server's site. Headers that another lbc setting writes would be written twice, or the setting would "
        "silently stop working: removing Set-Cookie drops the stickiness cookie, setting X-Forwarded-For lets "
        "a constant replace the client's address.",
    bad=variant("hsts: {max_age: 365d}", "headers: {request: {set: {Host: internal.example.com}}}"),
    good=variant("hsts: {max_age: 365d}", "headers: {request: {set: {X-Site: internal}}}"),
    check=check_owned_headers,
))


# ------------------------------------------------------------------ LBC226
def check_header_twice(model: Topology, ctx) -> Iterator[Finding]:
    for l in model.listeners:
        for c in (l.headers.request, l.headers.response):
            first: dict[str, tuple] = {}
            for name, where in _changed(c):
                k = name.lower()
                if k in first:
                    yield Finding(where, f"listener '{l.name}' changes header '{name}' twice "
                                  f"({first[k][-2]} and {where[-2]}); HTTP names ignore case",
                                  key=where[-2] != "remove", related=((first[k], "first changed here"),),
                                  hint="name each header once per direction: `set` replaces, `add` appends, "
                                       "`remove` deletes")
                first.setdefault(k, where)


register(Rule(
    "LBC226", "header-changed-twice", E,
    "One header is named twice in a direction's set/add/remove (names compare without case).",
    "Name each header once per direction.",
    f"{RFC9110}; {LBC_LANGUAGE}",
    why="Set and remove of the same header, or set of X-A and x-a, leave the result to each proxy's order of "
        "operations, which differs between targets.",
    bad=variant("hsts: {max_age: 365d}", "headers: {response: {set: {X-Frame-Options: DENY}, remove: [x-frame-options]}}"),
    good=variant("hsts: {max_age: 365d}", "headers: {response: {set: {X-Frame-Options: DENY}}}"),
    check=check_header_twice,
))
