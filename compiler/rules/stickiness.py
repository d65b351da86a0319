"""LBC3xx: stickiness (session persistence) and what each listener lets the balancer see."""
from __future__ import annotations


from ..model import CookieStickiness, SourceIpStickiness
from . import Finding, Rule, register
from .common import (STATEFUL, E, I, W, cite, cookie_stickiness, duration, https_not_decrypted,
                     replace_in, y)



BASE = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
          - {name: w2, address: 10.0.0.12, port: 8080}
        health: {tcp: true}
        stickiness: {mode: cookie}
    listeners:
      - name: web
        vip: public
        port: 80
        routes:
          - {hosts: [www.example.com], service: web}
    """)


def variant(*pairs: str) -> str:
    return replace_in(BASE, *pairs)


WHY_STATEFUL = {
    "flynet": "the Telnet connection to the host lives in one Flynet server and cannot be shared ("
              + cite("001", "Sticky Load Balancing") + ")",
    "hacloud-session": "session servers are stateful (" + cite("000", "Using Load Balancers") + ")",
    "hacloud-mss": "MSS is stateful (" + cite("000", "Using Load Balancers") + ")",
    "lightstreamer": "control and rebind connections must reach the server that created the session ("
                     + cite("004", "§1 Introduction") + ")",
}


FLYNET = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      fvterm:
        profile: flynet
        servers:
          - {name: fv1, address: 10.0.1.11, port: 80}
          - {name: fv2, address: 10.0.1.12, port: 80}
        stickiness: {mode: cookie, cookie: {name: FVTERMSRV}}
        fallback: {server: {address: 10.0.1.99, port: 80}}
    listeners:
      - name: fvterm
        vip: public
        port: 80
        routes:
          - {hosts: [fvterm.example.com], service: fvterm}
    """)


def _per_listener(pairs):
    seen = set()
    for l, r in pairs:
        if l.name not in seen:
            seen.add(l.name)
            yield l, r


# ------------------------------------------------------------------ LBC301
def check_stateful_needs_stickiness(model, ctx):
    for svc in model.services:
        if svc.profile in STATEFUL and svc.stickiness.mode == "none":
            yield Finding(svc.stickiness.path + ("mode",), f"service '{svc.name}' (profile {svc.profile}) has no "
                          f"stickiness, but {WHY_STATEFUL[svc.profile]}")


register(Rule(
    "LBC301", "stateful-needs-stickiness", E,
    "A stateful application (profiles flynet, hacloud-session, hacloud-mss, lightstreamer) has "
    "stickiness none.",
    "Choose a stickiness mode: cookie at L7, source-ip at L4 or in passthrough, application where the "
    "application hands out per-server host names. Or remove `stickiness:` to get the profile's default.",
    cite("001", "Sticky Load Balancing", "000", "Using Load Balancers", "004", "§1 Introduction"),
    why="Each of these applications keeps a user's session in the memory of one server: Flynet holds the "
        "host's Telnet socket, the HACloud session server and MSS are stateful, a Lightstreamer session's "
        "control connections must reach the server that created it. A request balanced to another server "
        "finds no session and the user is disconnected. (Verastream is not among them: each connection is "
        "its own session, drawn afresh by weight; see LBC309.)",
    bad=FLYNET.replace("stickiness: {mode: cookie, cookie: {name: FVTERMSRV}}", "stickiness: {mode: none}"),
    good=FLYNET,
    check=check_stateful_needs_stickiness,
))


# ------------------------------------------------------------------ LBC302
def check_cookie_needs_l7(model, ctx):
    for svc in model.services:
        if svc.stickiness.mode != "cookie":
            continue
        for l, _r in _per_listener(model.routes_to(svc.name)):
            # passthrough is LBC202's finding, an undecrypted HTTPS port LBC203's
            if l.reads_http or l.tls.mode == "passthrough" or https_not_decrypted(l):
                continue
            where, said = cookie_stickiness(model, svc)
            yield Finding(
                where, f"{said}, but listener '{l.name}' works at L4 (protocol tcp): "
                "the balancer does not read HTTP there",
                hint=f"use `stickiness: {{mode: source-ip}}`, or make listener '{l.name}' `protocol: http`",
                related=((l.path + ("protocol",), "L4 listener"),))


register(Rule(
    "LBC302", "cookie-needs-l7", E,
    "Cookie stickiness requires an L7 (HTTP) listener; at L4 use source-IP.",
    "Use `stickiness: {mode: source-ip}` at L4, or `protocol: http` on the listener.",
    cite("004", "§2.1.2 Option 1.A.2 - Cookie Based", "004", "§1 Introduction"),
    why="Inserting a cookie means rewriting HTTP responses and reading HTTP requests. A listener in TCP "
        "mode forwards bytes without parsing them, so there is no cookie to set or read. The Lightstreamer "
        "guide counts the loss of cookie affinity among the costs of switching traffic at Layer 4.",
    bad=variant("    port: 80\n", "    port: 80\n    protocol: tcp\n",
                "- {hosts: [www.example.com], service: web}", "- {service: web}"),
    good=variant("    port: 80\n", "    port: 80\n    protocol: tcp\n",
                 "- {hosts: [www.example.com], service: web}", "- {service: web}",
                 "stickiness: {mode: cookie}", "stickiness: {mode: source-ip}"),
    check=check_cookie_needs_l7,
))


# ------------------------------------------------------------------ LBC303
def check_flynet_session_cookie(model, ctx):
    for svc in model.services:
        st = svc.stickiness
        if svc.profile == "flynet" and isinstance(st, CookieStickiness) and st.cookie_max_age_ms is not None:
            yield Finding(st.path + ("cookie", "max_age"), f"service '{svc.name}': the Flynet cookie must be a "
                          "session cookie, without an expiry")



register(Rule(
    "LBC303", "flynet-session-cookie", W,
    "The Flynet persistence cookie has a lifetime (max_age); it must be a session cookie.",
    "Remove `max_age:` from the cookie.",
    cite("001", "Session Persistence", "003", "Session Persistence"),
    why="The guide asks for an inserted cookie without an expiry time, one the browser forgets when it "
        "closes. A cookie that expires while the user still works sends the next request to another server, "
        "where the user's host connection does not exist; a session cookie lives exactly as long as the "
        "browser session.",
    bad=FLYNET.replace("cookie: {name: FVTERMSRV}", "cookie: {name: FVTERMSRV, max_age: 8h}"),
    good=FLYNET,
    check=check_flynet_session_cookie,
))


# ------------------------------------------------------------------ LBC304
def check_source_ip(model, ctx):
    for svc in model.services:
        if svc.stickiness.mode != "source-ip":
            continue
        l7 = [l for l in model.listeners_of(svc.name) if l.reads_http]
        if l7:
            yield Finding(svc.stickiness.path + ("mode",), f"service '{svc.name}' sticks by source IP on L7 "
                          f"listener '{l7[0].name}', where a cookie is possible: clients whose provider changes "
                          "their address between requests lose their server")


register(Rule(
    "LBC304", "source-ip-unreliable", I,
    "Source-IP stickiness on an L7 listener: clients whose address changes between requests lose their "
    "server; a cookie is preferable where possible.",
    "Use `stickiness: {mode: cookie}` on L7 listeners, or acknowledge when clients have stable addresses.",
    cite("004", "§2.1.1 Option 1.A.1 - IP-Address Based", "004", "§3.1.1 Option 2.A.1 - IP-Address Based"),
    why="Some Internet providers send one client's requests from changing addresses (carrier NAT, proxy "
        "farms); affinity by address then moves the client between servers mid-session. Where the balancer "
        "reads HTTP anyway, an inserted cookie identifies the client itself. At L4 and in passthrough there "
        "is no cookie, and with HTTPS address switching is rare, so lbc only mentions it for L7 listeners.",
    bad=variant("stickiness: {mode: cookie}", "stickiness: {mode: source-ip}"),
    good=BASE,
    check=check_source_ip,
))


# ------------------------------------------------------------------ LBC305
LIGHTSTREAMER_EXPIRY = ("a Lightstreamer session outlives it: the next rebind or control connection then "
                        "reaches another server, the session is interrupted and the client must open a new one "
                        "(a trade-off against lasting imbalance: " + cite("004", "§4 Stickiness Expiration") + ")")


def check_max_lifetime(model, ctx):
    for svc in model.services:
        st = svc.stickiness
        if isinstance(st, CookieStickiness) and st.max_lifetime_ms is not None:   # source-ip: LBC310
            yield Finding(st.path + ("max_lifetime",), f"service '{svc.name}': stickiness ends after "
                          f"{duration(st.max_lifetime_ms)} however active the client is; each expiry interrupts "
                          "its session, which the client must recover")
        elif svc.profile == "lightstreamer":
            # any end of affinity interrupts a long-lived session, whatever ends it (§4)
            if isinstance(st, SourceIpStickiness) and st.idle_timeout_given:
                yield Finding(st.path + ("idle_timeout",), f"service '{svc.name}': source-IP affinity ends after "
                              f"{duration(st.idle_timeout_ms)} without a new connection, but {LIGHTSTREAMER_EXPIRY}")
            elif isinstance(st, CookieStickiness) and st.cookie_max_age_ms is not None:
                yield Finding(st.path + ("cookie", "max_age"), f"service '{svc.name}': the stickiness cookie expires "
                              f"after {duration(st.cookie_max_age_ms)}, but {LIGHTSTREAMER_EXPIRY}")


register(Rule(
    "LBC305", "stickiness-max-lifetime", W,
    "A maximum stickiness lifetime interrupts sessions at each expiry; the client must recover. On "
    "Lightstreamer services also a source-IP `idle_timeout` or a cookie `max_age`: any end of affinity does.",
    "Keep it only if the application's clients recover from a moved session, and choose the duration as a "
    "trade-off; acknowledge the finding with the reason.",
    cite("004", "§4 Stickiness Expiration", "004", "§5.1 When LB Stickiness Is Leveraged"),
    why="A lifetime makes the balancer forget a client's server periodically, which slowly evens out load "
        "after a failure. But the next request then lands on another server where the session does not "
        "exist: the client sees an error and must open a new session. It is a trade-off to choose "
        "knowingly, and only with clients that recover by themselves. A Lightstreamer session lives for "
        "hours on one server, so for the lightstreamer profile an idle expiry of source-IP affinity or a "
        "cookie lifetime is the same trade-off: the guide's point is that any end of affinity, whatever "
        "ends it, interrupts the session at the next rebind.",
    bad=variant("stickiness: {mode: cookie}", "stickiness: {mode: cookie, max_lifetime: 60m}"),
    good=BASE,
    check=check_max_lifetime,
))


# ------------------------------------------------------------------ LBC306
def check_application_stickiness(model, ctx):
    balanced = {}  # host -> path, for every route that balances
    for l in model.listeners:
        for r in l.routes:
            if r.server is None and r.service is not None:   # a redirect balances nothing
                for k, h in enumerate(r.hosts):
                    balanced.setdefault(h, r.path + ("hosts", k))
    for svc in model.services:
        if svc.stickiness.mode != "application":
            continue
        seen: dict[str, tuple] = {}
        for s in svc.servers:
            if not s.direct_host:
                yield Finding(s.path, f"server '{s.name}' of service '{svc.name}' (application stickiness) has no "
                              "`direct_host:`: clients cannot come back to it", hint="give each server its own "
                              "`direct_host:` (the name its control_link_address announces)")
                continue
            where = s.path + ("direct_host",)
            if s.direct_host in seen:
                yield Finding(where, f"servers of service '{svc.name}' share the direct host name "
                              f"'{s.direct_host}'", related=((seen[s.direct_host], "first used here"),))
            elif s.direct_host in balanced:
                yield Finding(where, f"the direct host name '{s.direct_host}' of server '{s.name}' is also a "
                              "balanced host name", related=((balanced[s.direct_host], "balanced here"),))
            seen.setdefault(s.direct_host, where)


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
    "LBC306", "application-stickiness-hosts", E,
    "Application stickiness: every server has its own direct host name, unique, and different from every "
    "balanced host name.",
    "Give each server a distinct `direct_host:` that no balanced route uses, and set the same name as that "
    "server's `<control_link_address>` in lightstreamer_conf.xml (the output README lists them).",
    cite("004", "§2.2 Leverage Application Stickiness - Options 1.B"),
    why="With application stickiness the server that creates a session tells the client a host name that "
        "reaches that server only (Lightstreamer's control_link_address), and the client sends every later "
        "request there. The name must differ per server and from the balanced name: a shared or balanced "
        "name would be spread over servers again and the session lost.",
    bad=LS_APP.replace(", direct_host: push2.example.com}", "}")
              .replace("      - {direct_hosts: true, service: push, port: control}\n", ""),
    good=LS_APP.replace("      - {direct_hosts: true, service: push, port: control}\n", ""),
    check=check_application_stickiness,
))


# ------------------------------------------------------------------ LBC307
def check_application_needs_host_visibility(model, ctx):
    for svc in model.services:
        if svc.stickiness.mode != "application":
            continue
        for l, r in model.routes_to(svc.name):
            if r.hosts and not l.sees_host_names:
                yield Finding(r.path, f"listener '{l.name}' routes host names to service '{svc.name}' "
                              "(application stickiness) at L4 without TLS: it can see neither a Host header nor "
                              "an SNI name", hint="make the listener `protocol: http` (L7), or pass TLS through "
                              "and route by SNI, or give each server its own VIP")


register(Rule(
    "LBC307", "app-stickiness-needs-host-names", E,
    "Application stickiness needs the balancer to see host names: L7, or SNI routing in passthrough.",
    "Use `protocol: http`, or TLS passthrough (SNI), or one VIP per server.",
    cite("004", "§2.2.1 Option 1.B.1 - Servers Behind the Load Balancer", "004", "§3 HTTPS-Based Scenarios"),
    why="The direct host names reach the right server only if the balancer can tell them apart. At L7 it "
        "reads the Host header; in TLS passthrough it can read the SNI name of the handshake. A plain TCP "
        "listener sees neither, which is why the guide says name-based virtual hosting is impossible at L4 "
        "and falls back to one address per server.",
    bad=LS_APP.replace("    port: 80\n", "    port: 80\n    protocol: tcp\n").replace("    buffering: false\n", "")
              .replace("    stickiness: {mode: application}\n",
                       "    stickiness: {mode: application}\n    proxy_protocol: v2\n"),
    good=LS_APP.replace("    stickiness: {mode: application}\n",
                        "    stickiness: {mode: application}\n    proxy_protocol: v2\n"),
    check=check_application_needs_host_visibility,
    acknowledgeable=False,   # no target can route on a name it never sees
))


# ------------------------------------------------------------------ LBC308
def check_ignored_settings(model, ctx):
    for svc in model.services:
        st = svc.stickiness
        if "cookie" in st.unused:
            yield Finding(st.path + ("cookie",), f"service '{svc.name}': cookie settings have no effect with "
                          f"stickiness mode {st.mode}", key=True)
        if "idle_timeout" in st.unused:
            yield Finding(st.path + ("idle_timeout",), f"service '{svc.name}': idle_timeout applies to source-ip "
                          f"stickiness only, not to mode {st.mode}", key=True)
        if "max_lifetime" in st.unused and st.mode != "source-ip":   # source-ip: LBC310's error
            yield Finding(st.path + ("max_lifetime",), f"service '{svc.name}': max_lifetime has no effect with "
                          f"stickiness mode {st.mode}", key=True)


register(Rule(
    "LBC308", "stickiness-setting-ignored", W,
    "A stickiness setting that the chosen mode does not use (cookie settings without cookie mode, "
    "idle_timeout without source-ip, max_lifetime without balancer stickiness).",
    "Remove the setting, or choose the mode it belongs to.",
    "lbc topology language; " + cite("004", "§4 Stickiness Expiration"),
    why="A setting that silently does nothing usually means the mode is not the one intended, e.g. a cookie "
        "name given while the mode is still source-ip.",
    bad=variant("stickiness: {mode: cookie}", "stickiness: {mode: source-ip, cookie: {name: WEBSRV}}",
                "    port: 80\n", "    port: 80\n    protocol: tcp\n",
                "- {hosts: [www.example.com], service: web}", "- {service: web}"),
    good=variant("stickiness: {mode: cookie}", "stickiness: {mode: source-ip}",
                 "    port: 80\n", "    port: 80\n    protocol: tcp\n",
                 "- {hosts: [www.example.com], service: web}", "- {service: web}"),
    check=check_ignored_settings,
))


# ------------------------------------------------------------------ LBC309
def check_verastream_affinity(model, ctx):
    for svc in model.services:
        if svc.profile != "verastream":
            continue
        if svc.stickiness.mode == "source-ip":
            where, what = svc.stickiness.path + ("mode",), "source-IP affinity"
        elif svc.balance == "source-hash":
            where, what = svc.path + ("balance",), "a hash of the client address (balance source-hash)"
        else:
            continue
        yield Finding(where, f"service '{svc.name}' (profile verastream) keeps each client address on one server "
                      f"by {what}, but every Host Integrator session is a fresh weighted draw: when a few "
                      "application servers open all the sessions, the weights stop applying", key=True)


VHI = y("""
    lbc: 1
    vips:
      internal: {address: 192.0.2.30}
    services:
      vhi:
        profile: verastream
        balance: weighted-random
        servers:
          - {name: vhi-a, address: 10.0.4.11, port: 9681, weight: 60}
          - {name: vhi-b, address: 10.0.4.12, port: 9681, weight: 40}
    listeners:
      - {name: vhi, vip: internal, port: 9681, protocol: tcp, routes: [{service: vhi}]}
    """)

register(Rule(
    "LBC309", "verastream-no-affinity", W,
    "Verastream: source-IP affinity (or a client-address hash) on a service whose sessions are each a fresh "
    "weighted draw.",
    "Remove `stickiness:` (the verastream profile's default is none) and balance by weight; each connection "
    "is its own session.",
    cite("002", "What Happens At Runtime", "002", "Implementing Host Integrator Domains"),
    why="The management server answers every session request with a new weighted random draw inside the first "
        "priority group that can serve; nothing asks for affinity, because a session lives on its connection. "
        "The clients of a domain are usually a few application servers (web services, connectors), so "
        "affinity by client address pins each of them, with all its sessions, to one session server: an "
        "independent run sent 200 of 200 sessions from one application server to one session server with "
        "weights 60/40.",
    bad=VHI.replace("    balance: weighted-random\n", "    balance: weighted-random\n"
                    "    stickiness: {mode: source-ip}\n"),
    good=VHI,
    check=check_verastream_affinity,
))


# ------------------------------------------------------------------ LBC310
def check_max_lifetime_needs_cookie(model, ctx):
    routed = set(model.routed_services)
    for svc in model.services:
        st = svc.stickiness
        if st.mode == "source-ip" and "max_lifetime" in st.unused and svc.name in routed:
            yield Finding(st.path + ("max_lifetime",), f"service '{svc.name}': max_lifetime needs cookie stickiness; "
                          "a source-IP affinity entry has no date and lives until it is idle (idle_timeout)")


register(Rule(
    "LBC310", "max-lifetime-needs-cookie", E,
    "`max_lifetime` with source-IP stickiness: only a cookie can carry the date a session started.",
    "Use `idle_timeout` to end source-IP affinity, or cookie stickiness with `max_lifetime` on an HTTP listener.",
    "lbc topology language; " + cite("004", "§4 Stickiness Expiration"),
    why="A hard lifetime needs the date the affinity began. A cookie can carry it (HAProxy's `maxlife`, "
        "Envoy's cookie TTL), but source-IP affinity is a table entry keyed by the address, or a hash of it: "
        "HAProxy and BIG-IP expire those entries when they are idle, Envoy's hash has no clock at all. No "
        "target can end a source-IP affinity after a fixed time however busy the client is.",
    bad=variant("stickiness: {mode: cookie}", "stickiness: {mode: source-ip, max_lifetime: 60m}",
                "    port: 80\n", "    port: 80\n    protocol: tcp\n",
                "- {hosts: [www.example.com], service: web}", "- {service: web}"),
    good=variant("stickiness: {mode: cookie}", "stickiness: {mode: source-ip, idle_timeout: 60m}",
                 "    port: 80\n", "    port: 80\n    protocol: tcp\n",
                 "- {hosts: [www.example.com], service: web}", "- {service: web}"),
    check=check_max_lifetime_needs_cookie,
    acknowledgeable=False,
))
