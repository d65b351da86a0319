"""LBC611-LBC629: routing by request path, redirects to HTTPS."""
from __future__ import annotations

from . import Finding, Rule, register
from .common import E, cite, web_example, y

WEB = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      api:
        servers:
          - {name: a1, address: 10.0.0.21, port: 8080}
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
    listeners:
      - name: web
        vip: public
        port: 80
        routes:
          - {hosts: [www.example.com], path_prefix: /api/, strip_prefix: true, service: api}
          - {hosts: [www.example.com], service: web}
    """)

MANUALS = "the HAProxy Configuration Manual (path fetch), Envoy's route match reference, nginx's `location` directive"


def _url_path_at(r) -> tuple:
    return r.path + (("path_exact",) if r.url_path.kind == "exact" else ("path_prefix",))


# ------------------------------------------------------------------ LBC611
def check_path_needs_http(model, ctx):
    for l in model.listeners:
        if l.reads_http:
            continue
        for r in l.routes:
            if r.url_path is not None:
                yield Finding(_url_path_at(r), f"listener '{l.name}' does not read HTTP (protocol {l.protocol}, TLS "
                              f"{l.tls.mode}): it never sees a request path, so this route cannot be chosen by one",
                              hint="route by path on a listener with `protocol: http` whose TLS is none, terminate "
                                   "or bridge, or remove the path")


register(Rule(
    "LBC611", "path-routing-needs-http", E,
    "A route by request path on a listener that does not read HTTP (TCP, or TLS passthrough).",
    "Use `protocol: http` with TLS none, terminate or bridge, or drop `path_prefix` / `path_exact`.",
    cite("004", "§2.2.1 Option 1.B.1 - Servers Behind the Load Balancer", "004", "§3 HTTPS-Based Scenarios")
    + "; " + MANUALS,
    why="The request path is inside the HTTP request. A TCP listener forwards bytes without parsing them, and in "
        "TLS passthrough the request is encrypted end to end (the Lightstreamer guide's passthrough options route "
        "by SNI name at most), so the balancer can choose only by address, port or SNI name. No target can honour "
        "a path there.",
    bad=WEB.replace("port: 80\n", "port: 80\n    protocol: tcp\n").replace("hosts: [www.example.com], ", "", 1)
           .replace("{hosts: [www.example.com], service: web}", "{service: web}"),
    good=WEB,
    check=check_path_needs_http,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC612
def check_strip_ends_in_slash(model, ctx):
    for l in model.listeners:
        for r in l.routes:
            u = r.url_path
            if u is not None and u.strip and not u.value.endswith("/"):
                yield Finding(r.path + ("path_prefix",), f"prefix '{u.value}' is stripped but does not end in '/': "
                              "the server would see a path that does not start with '/' (e.g. "
                              f"'{u.value}x' -> 'x')", hint=f"write `path_prefix: {u.value}/`")


register(Rule(
    "LBC612", "strip-prefix-ends-in-slash", E,
    "`strip_prefix` on a prefix that does not end in '/'.",
    "End the prefix with '/': lbc removes it up to that slash, so the server's path still starts with '/'.",
    "RFC 9112 §3.2 (origin-form request target)",
    why="Applications live under paths of their own (Flynet's pages under /FVTerm/, its guide's health URL), "
        "and a server expects a request target that starts with '/'. lbc strips the prefix without its final '/', so "
        "`/api/users` reaches the server as `/users`; a prefix such as `/api` would also take `/apiary` and "
        "leave `ary`, which no server expects.",
    bad=WEB.replace("path_prefix: /api/", "path_prefix: /api"),
    good=WEB,
    check=check_strip_ends_in_slash,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC613
def _unnormal(value: str) -> bool:
    segments = value.split("/")[1:]
    inner = segments[:-1] if segments and segments[-1] == "" else segments   # a final '/' is fine
    return any(s in ("", ".", "..") for s in inner)


def check_normal_path(model, ctx):
    for l in model.listeners:
        for r in l.routes:
            if r.url_path is not None and _unnormal(r.url_path.value):
                yield Finding(_url_path_at(r), f"path '{r.url_path.value}' has an empty, '.' or '..' segment: "
                              "nginx merges and resolves these in the request before it matches, HAProxy and "
                              "Envoy do not, so the route would match on some targets only",
                              hint="write the path in its normal form (no '//', '/./' or '/../')")


register(Rule(
    "LBC613", "path-in-normal-form", E,
    "A route path with an empty, '.' or '..' segment.",
    "Write the path in normal form: no '//', '/./' or '/../'.",
    "RFC 3986 §5.2.4 (remove dot segments); nginx's `location` directive (it matches the normalised URI)",
    why="nginx decodes the request path, resolves '.' and '..' and merges slashes before it chooses a "
        "location; HAProxy and Envoy (as lbc configures them) compare the path as sent. A route written in "
        "normal form is chosen alike for the requests every client sends.",
    bad=WEB.replace("path_prefix: /api/", "path_prefix: /api//v1/"),
    good=WEB,
    check=check_normal_path,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ redirects to HTTPS (LBC614-LBC617)
PLAIN = web_example(listener="redirect_https: {status: 308, except: [/.well-known/acme-challenge/]}")
REDIRECT_MANUALS = ("RFC 9110 §15.4 (redirection); the HAProxy Configuration Manual (http-request redirect), "
                    "Envoy's route redirect reference, nginx's `return` directive")


def _redirecting(model):
    return ((l, l.redirect_https) for l in model.listeners if l.redirect_https is not None)


def check_redirect_needs_http(model, ctx):
    for l, rd in _redirecting(model):
        if not l.reads_http:
            yield Finding(rd.path, f"listener '{l.name}' does not read HTTP (protocol {l.protocol}, TLS {l.tls.mode}): "
                          "it cannot answer with a redirect", hint="redirect on a listener with `protocol: http` and "
                                                                  "TLS none, or remove `redirect_https`")


register(Rule(
    "LBC614", "redirect-https-needs-http", E,
    "`redirect_https` on a listener that does not read HTTP (TCP, or TLS passthrough).",
    "Put `redirect_https` on the plain-HTTP listener (protocol http, TLS none), or remove it.",
    cite("004", "§3 HTTPS-Based Scenarios") + "; " + REDIRECT_MANUALS,
    why="A redirect is an HTTP answer: the balancer must read the request to write one. A TCP listener forwards "
        "bytes, and in TLS passthrough the request stays encrypted to the server (the Lightstreamer guide's "
        "passthrough options), so no target can answer it with a Location.",
    bad=PLAIN.replace("port: 80\n", "port: 80\n    protocol: tcp\n"),
    good=PLAIN,
    check=check_redirect_needs_http,
    acknowledgeable=False,
))


def check_redirect_on_plain(model, ctx):
    for l, rd in _redirecting(model):
        if l.decrypts:
            yield Finding(rd.path, f"listener '{l.name}' already decrypts TLS ({l.tls.mode}): its requests came over "
                          "HTTPS, and a redirect to HTTPS would send every client back to itself, forever",
                          hint="put `redirect_https` on the port-80 listener, and `hsts` here if browsers should "
                               "keep to HTTPS")


register(Rule(
    "LBC615", "redirect-https-on-plain-http", E,
    "`redirect_https` on a listener that terminates or bridges TLS.",
    "Redirect on the plain-HTTP listener; on the HTTPS listener use `hsts`.",
    cite("004", "§3 HTTPS-Based Scenarios") + "; " + REDIRECT_MANUALS,
    why="The listener's clients already use HTTPS. Redirecting them to the same host, path and query over HTTPS "
        "answers every request with a redirect to itself: browsers stop after a few hops with a redirect-loop "
        "error, and no request ever reaches a server.",
    bad=PLAIN.replace("port: 80\n", "port: 443\n    tls: {mode: terminate, certificates: [site]}\n")
             .replace("listeners:\n", "certificates:\n  site: {cert: certs/site.pem, key: certs/site.key}\nlisteners:\n"),
    good=PLAIN,
    check=check_redirect_on_plain,
    acknowledgeable=False,
))


def check_exempt_normal(model, ctx):
    for _l, rd in _redirecting(model):
        for i, p in enumerate(rd.exempt):
            if _unnormal(p):
                yield Finding(rd.path + ("except", i), f"prefix '{p}' has an empty, '.' or '..' segment: nginx "
                              "resolves these in the request before it compares, HAProxy, Envoy and F5 do not, "
                              "so the exception would hold on some targets only",
                              hint="write the prefix in its normal form (no '//', '/./' or '/../')")


register(Rule(
    "LBC616", "redirect-except-is-a-path", E,
    "A `redirect_https.except` prefix that is not a path in normal form.",
    "Write each exception as a path prefix such as `/.well-known/acme-challenge/` (no '//', '/./' or '/../'); "
    "the schema refuses anything but a path.",
    "RFC 8555 §8.3 (ACME HTTP challenge: /.well-known/acme-challenge/<token> over plain HTTP); RFC 3986 §5.2.4; "
    + REDIRECT_MANUALS,
    why="The exceptions keep some paths on plain HTTP, typically the ACME challenge a certificate authority "
        "fetches over port 80 before a certificate exists. nginx compares the normalised path, the other targets "
        "the path as sent: only a prefix in normal form excepts the same requests everywhere.",
    bad=PLAIN.replace("except: [/.well-known/acme-challenge/]", "except: [/.well-known//acme-challenge/]"),
    good=PLAIN,
    check=check_exempt_normal,
    acknowledgeable=False,
))


def check_redirect_port(model, ctx):
    for l, rd in _redirecting(model):
        if rd.port == l.port and not l.decrypts:   # decrypting: LBC615 says it
            yield Finding(rd.path + ("port",), f"the redirect sends clients to HTTPS on port {rd.port}, the port of "
                          f"this plain-HTTP listener: they would speak TLS to a listener that expects plain HTTP",
                          hint="give the port of the HTTPS listener (443 by default)")


register(Rule(
    "LBC617", "redirect-https-port-differs", E,
    "`redirect_https.port` equal to the plain-HTTP listener's own port.",
    "Name the port of the HTTPS listener (leave `port` out for 443).",
    cite("004", "§3 HTTPS-Based Scenarios") + "; " + REDIRECT_MANUALS,
    why="The redirect keeps the host name, so the client connects to the same address on the given port and "
        "starts a TLS handshake. On the plain-HTTP listener's own port that handshake meets a server that "
        "expects HTTP and fails.",
    bad=PLAIN.replace("status: 308,", "status: 308, port: 80,"),
    good=PLAIN,
    check=check_redirect_port,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ routes that redirect (LBC618-LBC619)
ROUTE_REDIRECT = web_example(routes="""
    - {hosts: [old.example.com], redirect: {host: new.example.com, status: 301}}
    - {service: web}
    """)

register(Rule(
    "LBC618", "route-service-or-redirect", E,
    "A route names both `service` and `redirect`, or neither, or gives a redirect `server`, `port`, "
    "`direct_hosts`, `strip_prefix` or `access`.",
    "Keep `service:` to proxy the requests, or `redirect:` to answer them with a redirect.",
    REDIRECT_MANUALS,
    why="A route does one thing with a request: it proxies it to a service or answers it with a redirect. "
        "Fields that choose a server or rewrite the path forwarded to it have nothing to act on in a redirect.",
    bad=ROUTE_REDIRECT.replace("redirect: {host", "service: web, redirect: {host"),
    good=ROUTE_REDIRECT,
    acknowledgeable=False,
))


def _loops(l, r) -> bool:
    """The Location names this listener again (scheme and port) and a host whose table holds this very
    route: the path is kept, so the client meets the same redirect forever."""
    rd = r.redirect
    port = rd.port if rd.port is not None else (443 if rd.scheme == "https" else 80)
    if rd.scheme != ("https" if l.decrypts else "http") or port != l.port:
        return False
    if rd.host is None:
        return True
    parent = "*." + rd.host.split(".", 1)[-1]
    table = (next((t for t in l.route_table if rd.host in t.hosts), None)
             or next((t for t in l.route_table if parent in t.hosts), None)
             or next((t for t in l.route_table if not t.hosts), None))
    return table is not None and r in table.routes


def check_route_redirect(model, ctx):
    for l in model.listeners:
        for r in l.routes:
            if r.redirect is None:
                continue
            if not l.reads_http:
                yield Finding(r.path + ("redirect",), f"listener '{l.name}' does not read HTTP (protocol {l.protocol}, "
                              f"TLS {l.tls.mode}): it cannot answer with a redirect",
                              hint="redirect on a listener with `protocol: http` (TLS none, terminate or bridge)")
            elif _loops(l, r):
                yield Finding(r.path + ("redirect",), f"the redirect sends the client back to this listener "
                              f"('{l.name}', {r.redirect.scheme} port {l.port}) with the same host and path: "
                              "it would loop forever", hint="give another `host`, `scheme` or `port`")


register(Rule(
    "LBC619", "route-redirect-cannot-work", E,
    "A route redirect on a listener that does not read HTTP, or one that sends the client back to the same "
    "host, scheme and port (the path is kept, so it loops).",
    "Redirect on an HTTP listener, to another host, scheme or port.",
    REDIRECT_MANUALS,
    why="A redirect is an HTTP answer: a TCP or passthrough listener never reads a request to answer. The "
        "Location keeps the request's path and query, so a redirect to the listener's own host, scheme and "
        "port brings the client back to the same route, which redirects again until the client gives up.",
    bad=ROUTE_REDIRECT.replace("redirect: {host: new.example.com, status: 301}", "redirect: {status: 301}"),
    good=ROUTE_REDIRECT,
    check=check_route_redirect,
    acknowledgeable=False,
))
