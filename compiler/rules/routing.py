"""LBC611-LBC629: routing by request path (and, later, redirects)."""
from __future__ import annotations

from . import Finding, Rule, register
from .common import E, cite, y

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
    cite("001", "Health Monitor Configuration") + "; RFC 9112 §3.2 (origin-form request target)",
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
    cite("001", "Health Monitor Configuration") + "; nginx's `location` directive (it matches the normalised "
    "URI); RFC 3986 §5.2.4",
    why="nginx decodes the request path, resolves '.' and '..' and merges slashes before it chooses a "
        "location; HAProxy and Envoy (as lbc configures them) compare the path as sent. A route written in "
        "normal form is chosen alike for the requests every client sends.",
    bad=WEB.replace("path_prefix: /api/", "path_prefix: /api//v1/"),
    good=WEB,
    check=check_normal_path,
    acknowledgeable=False,
))
