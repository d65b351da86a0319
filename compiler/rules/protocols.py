"""LBC6xx: streaming, protocols, client addresses and host routing."""
from __future__ import annotations


from . import Finding, Rule, register
from .common import (E, I, W, cite, default_origin, host_path,
                     y)

DASHBOARD_WORDS = ("dashboard", "monitor")


LS = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.40}
    services:
      push:
        profile: lightstreamer
        servers:
          - {name: ls1, address: 10.0.6.11, port: 8080}
          - {name: ls2, address: 10.0.6.12, port: 8080}
        health: {http: {path: /lightstreamer/healthcheck, expect_body: OK}}
        stickiness: {mode: cookie, cookie: {name: LSSRV}}
    listeners:
      - name: push
        vip: public
        port: 80
        websocket: true
        buffering: false
        routes:
          - {hosts: [push.example.com], service: push}
    """)

LS_L4 = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.42}
    services:
      push:
        profile: lightstreamer
        proxy_protocol: v2
        servers:
          - {name: ls1, address: 10.0.6.11, port: 8080}
          - {name: ls2, address: 10.0.6.12, port: 8080}
        health: {tcp: true}
        stickiness: {mode: source-ip}
    listeners:
      - name: push
        vip: public
        port: 80
        protocol: tcp
        routes:
          - {service: push}
    """)


def _lightstreamer_l7(model):
    """(service, listener) for each lightstreamer service reached through an L7 listener, once per pair."""
    for svc in model.services:
        if svc.profile != "lightstreamer":
            continue
        for l in model.listeners_of(svc.name):
            if l.reads_http:
                yield svc, l


# ------------------------------------------------------------------ LBC601
def check_forwarded_at_l4(model, ctx):
    for l in model.listeners:
        where = l.path + ("forwarded_headers",)
        # a default that follows a contradictory `protocol: http` in passthrough is LBC209's finding
        if not l.reads_http and l.forwarded_headers and not default_origin(model, where):
            yield Finding(where, f"listener '{l.name}' works at L4 (protocol tcp) and "
                          "cannot add X-Forwarded-For / X-Forwarded-Proto headers")


register(Rule(
    "LBC601", "forwarded-headers-need-l7", E,
    "X-Forwarded-For/-Proto requested on an L4 listener: use the PROXY protocol instead.",
    "Remove `forwarded_headers:` and set `proxy_protocol: v2` (or v1) on the service, if the servers accept it.",
    cite("004", "§1 Introduction"),
    why="Forwarded headers are written into each HTTP request, which a TCP-mode balancer never parses. At "
        "L4 the client's address reaches the server through the PROXY protocol instead: a short header the "
        "balancer sends before the connection's first byte, which Lightstreamer and many servers accept.",
    bad=LS_L4.replace("    protocol: tcp\n", "    protocol: tcp\n    forwarded_headers: true\n"),
    good=LS_L4,
    check=check_forwarded_at_l4,
))


# ------------------------------------------------------------------ LBC602
def check_streaming_buffering(model, ctx):
    for svc, l in _lightstreamer_l7(model):
        if l.buffering:
            where = l.path + ("buffering",)
            yield Finding(where, f"listener '{l.name}' buffers responses{default_origin(model, where)} for service "
                          f"'{svc.name}' (profile lightstreamer): clients fall back from streaming to polling")


register(Rule(
    "LBC602", "streaming-no-buffering", W,
    "Lightstreamer behind an L7 listener that buffers responses (streaming degrades to polling).",
    "Set `buffering: false` on the listener.",
    cite("004", "§1 Introduction", "004", "§3 HTTPS-Based Scenarios"),
    why="Lightstreamer pushes updates over a response that never ends. A balancer that collects the "
        "response before passing it on holds every update back, and the client, seeing nothing arrive, "
        "switches from streaming to polling. Buffers also hide the state of the client's connection, which "
        "the server watches to throttle bandwidth.",
    bad=LS.replace("    buffering: false\n", "    buffering: true\n"),
    good=LS,
    check=check_streaming_buffering,
))


# ------------------------------------------------------------------ LBC603
def partially_behind(model, svc) -> bool:
    """Lightstreamer "servers partially behind the load balancer" (§2.2.2, §3.2.1.2, §3.2.2.2): every
    server has a direct host name that the balancer does not route, so the streaming (control and
    rebind) connections reach the servers directly and only session creation crosses the balancer."""
    return (bool(svc.servers) and all(s.direct_host for s in svc.servers)
            and not any(r.server is not None for _l, r in model.routes_to(svc.name)))


def check_streaming_websocket(model, ctx):
    for svc, l in _lightstreamer_l7(model):
        if not l.websocket and not partially_behind(model, svc):
            yield Finding(l.path + ("websocket",), f"listener '{l.name}' refuses WebSocket upgrades for service "
                          f"'{svc.name}' (profile lightstreamer): clients fall back to HTTP after a delay",
                          hint="set `websocket: true`; or, where the balancer cannot carry WebSocket, let the "
                               "streaming connections bypass it: give each server a `direct_host` its clients "
                               "reach directly and route only the balanced host name (servers partially behind "
                               "the load balancer: " + cite("004", "§2.2.2 Option 1.B.2 - Servers Partially Behind "
                                                            "the Load Balancer") + ")")


register(Rule(
    "LBC603", "streaming-websocket", W,
    "Lightstreamer behind an L7 listener without WebSocket support (unless the servers are only partially "
    "behind the balancer, so streaming bypasses it).",
    "Set `websocket: true` on the listener (the default for HTTP listeners), or let the streaming connections "
    "reach the servers directly by their direct host names (servers partially behind the balancer).",
    cite("004", "§1 Introduction", "004", "§2.2.2 Option 1.B.2 - Servers Partially Behind the Load Balancer"),
    why="Lightstreamer clients try WebSocket first. Without support at the balancer the attempt hangs "
        "until a timeout, and only then do they fall back to HTTP streaming, which costs seconds at every "
        "connection. The guide calls WebSocket support highly recommended, and required for the cookie "
        "and name-based options that work at Layer 7. Its 'partially behind' layouts exist for balancers "
        "without WebSocket: only session creation crosses the balancer, and the streaming connections go to "
        "each server's own public host name; lbc recognises them (every server has a `direct_host`, and no "
        "route of the balancer carries those names) and stays silent.",
    bad=LS.replace("    websocket: true\n", "    websocket: false\n"),
    good=LS,
    check=check_streaming_websocket,
))


# ------------------------------------------------------------------ LBC604
def check_dashboard(model, ctx):
    for svc in model.services:
        if svc.profile != "lightstreamer":
            continue
        for _l, r in model.routes_to(svc.name):
            if r.server is not None:
                continue
            for k, h in enumerate(r.hosts):
                first = h.split(".")[0]
                if any(w in first for w in DASHBOARD_WORDS):
                    yield Finding(host_path(model, r, k), f"host '{h}' looks like the monitoring dashboard but is "
                                  f"balanced over every server of service '{svc.name}': each request may show "
                                  "another instance")


register(Rule(
    "LBC604", "dashboard-direct", W,
    "A Lightstreamer monitoring dashboard host name is balanced; it must reach one instance directly.",
    "Route one dashboard host name per server (`server:` on the route, or the servers' direct hosts).",
    cite("004", "§6 Accessing Server Instances Directly and the Monitoring Dashboard Case"),
    why="The monitoring dashboard inspects the single instance that serves it and ignores the "
        "control-link address, so the guide does not support reaching it through the balancer's address: "
        "successive requests would land on different instances. lbc recognises a dashboard route by its "
        "host name (a first label containing 'dashboard' or 'monitor').",
    bad=LS.replace("      - {hosts: [push.example.com], service: push}\n",
                   "      - {hosts: [push.example.com], service: push}\n"
                   "      - {hosts: [dashboard.example.com], service: push}\n"),
    good=LS.replace("      - {hosts: [push.example.com], service: push}\n",
                    "      - {hosts: [push.example.com], service: push}\n"
                    "      - {hosts: [dashboard1.example.com], service: push, server: ls1}\n"
                    "      - {hosts: [dashboard2.example.com], service: push, server: ls2}\n"),
    check=check_dashboard,
))


# ------------------------------------------------------------------ LBC605
def check_separate_ports(model, ctx):
    for svc in model.services:
        if svc.stickiness.mode != "application":
            continue
        pairs = model.routes_to(svc.name)
        balanced = {r.port_name for _l, r in pairs if r.server is None}
        for _l, r in pairs:
            if r.server is not None and r.port_name in balanced:
                yield Finding(r.path + ("port",) if not r.from_direct_hosts else r.path,
                              f"service '{svc.name}': the control connections (direct hosts) use the same server "
                              f"port '{r.port_name}' as session creation")
                break


LS_APP = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.41}
    services:
      push:
        profile: lightstreamer
        stickiness: {mode: application}
        servers:
          - {name: ls1, address: 10.0.6.11, ports: {create: 8081, control: 8080}, direct_host: push1.example.com}
          - {name: ls2, address: 10.0.6.12, ports: {create: 8081, control: 8080}, direct_host: push2.example.com}
        health: {tcp: true, port: create}
    listeners:
      - name: push
        vip: public
        port: 80
        buffering: false
        routes:
          - {hosts: [push.example.com], service: push, port: create}
          - {direct_hosts: true, service: push, port: control}
    """)

register(Rule(
    "LBC605", "separate-create-control-ports", I,
    "Application stickiness: separate server ports for session creation and control are recommended.",
    "Give the servers two ports (e.g. `ports: {create: 8081, control: 8080}`) and route the balanced host "
    "to one and the direct hosts to the other; on the servers, `<port_type>CREATE_ONLY</port_type>` and "
    "`<port_type>CONTROL_ONLY</port_type>` (the output README lists them).",
    cite("004", "§2.2 Leverage Application Stickiness - Options 1.B"),
    why="With two ports the server can mark one CREATE_ONLY and the other CONTROL_ONLY, which lets its "
        "backpressure features tell new sessions from existing ones. One port works, but the guide "
        "strongly recommends the two-port setup.",
    bad=LS_APP.replace("ports: {create: 8081, control: 8080}", "ports: {main: 8080}")
              .replace("ports: {create: 8081, control: 8080}", "ports: {main: 8080}")
              .replace("port: create}", "port: main}").replace("port: create}", "port: main}")
              .replace("port: control}", "port: main}"),
    good=LS_APP,
    check=check_separate_ports,
))


# ------------------------------------------------------------------ LBC606
def check_host_routes_visible(model, ctx):
    for l in model.listeners:
        if l.sees_host_names:
            continue
        for r in l.routes:
            if r.hosts and r.service and model.service(r.service).stickiness.mode != "application":  # LBC307's case
                yield Finding(r.path + ("hosts",) if not r.from_direct_hosts else r.path,
                              f"listener '{l.name}' routes by host name at L4 without TLS: it sees neither a Host "
                              "header nor an SNI name, so these routes never match",
                              hint="make the listener `protocol: http`, use TLS passthrough (SNI), or a default "
                                   "route (no `hosts:`) per listener")


register(Rule(
    "LBC606", "host-routing-needs-visibility", E,
    "Host-name routes on an L4 listener without TLS, which cannot see host names.",
    "Use `protocol: http`, TLS passthrough (routing by SNI), or one listener (VIP or port) per destination.",
    cite("004", "§2.2.1 Option 1.B.1 - Servers Behind the Load Balancer", "004", "§3 HTTPS-Based Scenarios"),
    why="A host name reaches the balancer either in the HTTP Host header (visible at L7) or as SNI in a "
        "TLS handshake (visible in passthrough). A plain TCP stream carries neither where the balancer "
        "looks, so only the destination address and port can tell connections apart.",
    bad=LS_L4.replace("      - {service: push}\n", "      - {hosts: [push.example.com], service: push}\n"),
    good=LS_L4,
    check=check_host_routes_visible,
    acknowledgeable=False,   # no target can route on a name it never sees
))


# ------------------------------------------------------------------ LBC607
def check_client_address_at_l4(model, ctx):
    for svc in model.services:
        if svc.profile != "lightstreamer" or svc.proxy_protocol != "none":
            continue
        l4 = [l for l in model.listeners_of(svc.name) if not l.reads_http]
        if l4:
            yield Finding(svc.path,
                          f"service '{svc.name}' is reached at L4 through listener '{l4[0].name}' without the "
                          "PROXY protocol: its servers see the balancer's address instead of the client's", key=True)


register(Rule(
    "LBC607", "l4-client-address", I,
    "Lightstreamer at L4 without the PROXY protocol: the servers do not learn the client's address.",
    "Set `proxy_protocol: v2` (or v1) on the service and enable it on the servers.",
    cite("004", "§1 Introduction"),
    why="At L4 there are no X-Forwarded headers. Lightstreamer supports the PROXY protocol, which carries "
        "the originating address to the server; without it, the server's logs, limits and reports all "
        "show the balancer.",
    bad=LS_L4.replace("    proxy_protocol: v2\n", ""),
    good=LS_L4,
    check=check_client_address_at_l4,
))

