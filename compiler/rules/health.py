"""LBC4xx: health checks, failover, priority groups and availability."""
from __future__ import annotations


from . import Finding, Rule, register
from .common import E, I, W, cite, y

FLYNET_PAGE = "/FVTerm/FVHealth.aspx"


BASE = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
          - {name: w2, address: 10.0.0.12, port: 8080}
        health: {http: {path: /health}}
    listeners:
      - name: web
        vip: public
        port: 80
        routes:
          - {service: web}
    """)

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
        health:
          http: {path: /FVTerm/FVHealth.aspx, expect_body: ACTIVE, host: fvterm.example.com}
        stickiness: {mode: cookie, cookie: {name: FVTERMSRV}}
        fallback: {server: {address: 10.0.1.99, port: 80}}
    listeners:
      - name: fvterm
        vip: public
        port: 80
        routes:
          - {hosts: [fvterm.example.com], service: fvterm}
    """)


# ------------------------------------------------------------------ LBC401
def check_health_present(model, ctx):
    for svc in model.services:
        if svc.health is None and len(svc.servers) > 1:
            yield Finding(svc.path, f"service '{svc.name}' has {len(svc.servers)} servers and no health check: "
                          "a failed server keeps receiving new sessions", key=True)


register(Rule(
    "LBC401", "health-check-missing", W,
    "A service with more than one server has no health check.",
    "Add `health:` with an HTTP check of the application's health page, or at least `tcp: true`.",
    cite("000", "Using Load Balancers", "001", "Health Monitoring"),
    why="Balancing only spreads load safely if the balancer knows which servers can take it. Without an "
        "active check a stopped or overloaded server stays in rotation and every user sent to it fails. "
        "Each of the guides' applications offers a health URL for this purpose.",
    bad=BASE.replace("    health: {http: {path: /health}}\n", ""),
    good=BASE,
    check=check_health_present,
))


# ------------------------------------------------------------------ LBC402
def check_flynet_health(model, ctx):
    for svc in model.services:
        if svc.profile != "flynet":
            continue
        h = svc.health
        if h is None or h.kind != "http":
            yield Finding(h.path if h else svc.path, f"service '{svc.name}' (profile flynet) must be checked with "
                          f"an HTTP request of {FLYNET_PAGE}, not a TCP connect", key=h is None)
            continue
        if h.http_path.split("?")[0].lower() != FLYNET_PAGE.lower():
            yield Finding(h.path + ("http", "path"), f"service '{svc.name}' (profile flynet) checks {h.http_path}; "
                          f"the Flynet health page is {FLYNET_PAGE}")
        if h.expect_body != "ACTIVE":
            where = h.path + ("http", "expect_body")
            got = f"expects '{h.expect_body}'" if h.expect_body else "expects no body text"
            yield Finding(where, f"service '{svc.name}' (profile flynet): the health check {got}; a Flynet "
                          "server takes new sessions only while its health page says ACTIVE")


register(Rule(
    "LBC402", "flynet-health-page", E,
    "Flynet: the health check must request /FVTerm/FVHealth.aspx and expect the body to contain ACTIVE.",
    "Use `health: {http: {path: /FVTerm/FVHealth.aspx, expect_body: ACTIVE}}` (the profile's default).",
    cite("001", "Health Monitor Configuration", "001", "Health Monitoring", "003", "Health Monitor Configuration"),
    why="A Flynet server answers its health page with HTTP 200 in every state: 'ACTIVE - n Sessions "
        "Available', 'ON HOLD' or 'ALL SESSIONS IN USE'. A check of the status code or of the TCP port "
        "therefore keeps a full or held server in rotation; only looking for the word ACTIVE in the body "
        "sends new users to servers that can take them.",
    bad=FLYNET.replace("path: /FVTerm/FVHealth.aspx,", "path: /FVTerm/,"),
    good=FLYNET,
    check=check_flynet_health,
))


# ------------------------------------------------------------------ LBC403
FALLBACK_SERVER_HINT = ("add `fallback: {server: {address: ..., port: ...}}`: one Flynet server (or a web server) "
                        "that always answers, so users read the emulator's own 'No sessions available' message")


def check_fallback(model, ctx):
    for svc in model.services:
        if svc.profile != "flynet":
            continue
        if svc.fallback is None:
            yield Finding(svc.path, f"service '{svc.name}' has no fallback: when every server is full or down, users "
                          "get a bare HTTP 503 instead of Flynet's 'No sessions available'", key=True,
                          hint=FALLBACK_SERVER_HINT)
        elif svc.fallback.kind == "respond":
            yield Finding(svc.fallback.path + ("respond",), f"service '{svc.name}' answers with a fixed page made by "
                          "the balancer when every server is full or down; the Flynet guide asks for one server "
                          "that always answers, so users see the emulator's own 'No sessions available' message "
                          "rather than an HTTP error", hint=FALLBACK_SERVER_HINT)


register(Rule(
    "LBC403", "fallback-missing", W,
    "Flynet: no fallback server for when every server is full or down (none at all, or a fixed answer made by "
    "the balancer).",
    "Add `fallback: {server: {address: ..., port: ...}}`, a server that always answers (e.g. one Flynet server "
    "kept out of the pool), instead of `fallback: {respond: ...}` or nothing.",
    cite("001", "Minimum Servers", "003", "Minimum Servers", "002", "What Happens At Runtime"),
    why="When all servers report full or on hold, the balancer has nowhere to send a new user. The guide asks "
        "that one server always responds, so users see the terminal emulator's own 'No sessions available' "
        "error instead of an HTTP 503. A page the balancer makes up is only an imitation: it is an HTTP error "
        "to the emulator's client and says nothing the application knows. (Host Integrator clients get error "
        "2643 in the same situation from the management server.)",
    bad=FLYNET.replace("fallback: {server: {address: 10.0.1.99, port: 80}}",
                       "fallback: {respond: {status: 503, body: No sessions available}}"),
    good=FLYNET,
    check=check_fallback,
))


# ------------------------------------------------------------------ LBC404
def check_priority_groups(model, ctx):
    for svc in model.services:
        for p in svc.tiers:
            tier = svc.tier(p)
            if all(s.weight == 0 for s in tier):
                yield Finding(tier[0].path + ("weight",), f"priority group {p} of service '{svc.name}': every server "
                              "has weight 0, so the group never takes a session",
                              related=tuple((s.path + ("weight",), f"server '{s.name}'") for s in tier[1:]))


VHI = y("""
    lbc: 1
    vips:
      internal: {address: 192.0.2.30}
    services:
      vhi:
        profile: verastream
        servers:
          - {name: vhi-a, address: 10.0.4.11, port: 9681, priority: 1, weight: 80}
          - {name: vhi-b, address: 10.0.4.12, port: 9681, priority: 1, weight: 20}
          - {name: vhi-c, address: 10.0.4.13, port: 9681, priority: 2, weight: 100}
    listeners:
      - name: vhi
        vip: internal
        port: 9681
        protocol: tcp
        routes:
          - {service: vhi}
    """)

register(Rule(
    "LBC404", "priority-groups", E,
    "Priority groups: priorities are integers from 1; a group whose servers all have weight 0 can never serve.",
    "Give at least one server of each priority group a weight above 0 (or remove the group).",
    cite("002", "What Happens At Runtime", "002", "Implementing Host Integrator Domains"),
    why="Inside a priority group each server receives new sessions in proportion to its weight: a random "
        "number between 1 and the sum of the group's weights picks the server. With a sum of 0 the group "
        "has nothing to pick, so it is skipped or, on some balancers, fails every request. The schema "
        "refuses priorities below 1.",
    bad=VHI.replace("priority: 2, weight: 100", "priority: 2, weight: 0"),
    good=VHI,
    check=check_priority_groups,
))


# ------------------------------------------------------------------ LBC405
def check_weight_sum(model, ctx):
    for svc in model.services:
        if svc.profile != "verastream":
            continue
        for p in svc.tiers:
            tier = svc.tier(p)
            total = sum(s.weight for s in tier)
            if total not in (0, 100):  # 0 is LBC404's finding
                yield Finding(tier[0].path + ("weight",), f"weights of priority group {p} of service '{svc.name}' "
                              f"sum to {total}, not 100: a server's share is less obvious to read")


register(Rule(
    "LBC405", "weights-sum-100", I,
    "Verastream: the weights inside one priority group do not sum to 100.",
    "Scale the group's weights so that they sum to 100; each weight is then the server's percentage.",
    cite("002", "Implementing Host Integrator Domains"),
    why="Weights are relative, so any sum works. The guide's tip is a convention for people: with a sum "
        "of 100 each weight reads directly as the percentage of new sessions the server gets (`lbc plan` "
        "prints the shares either way).",
    bad=VHI.replace("weight: 80}", "weight: 3}").replace("weight: 20}", "weight: 1}"),
    good=VHI,
    check=check_weight_sum,
))


# ------------------------------------------------------------------ LBC406
def check_active_server(model, ctx):
    for svc in model.services:
        if any(s.state == "active" for s in svc.servers):
            continue
        held = [s for s in svc.servers if s.state == "hold"] or list(svc.servers)
        states = ", ".join(f"'{s.name}' {s.state}" for s in svc.servers)
        yield Finding(held[0].path + ("state",), f"service '{svc.name}' has no active server ({states}): it takes "
                      "no new sessions", related=tuple((s.path + ("state",), f"server '{s.name}'") for s in held[1:]))


register(Rule(
    "LBC406", "no-active-server", W,
    "A service's only servers are on hold (draining) or down, so it takes no new sessions.",
    "Bring a server back to `state: active`, or add one, before putting the last one on hold.",
    cite("001", "Placing a Server On Hold", "004", "§5.3 Notes on Instance Replacement"),
    why="Holding a server lets its current users finish while new users go elsewhere. If no other server "
        "is active, there is no elsewhere: every new user is refused. That is sometimes the intent "
        "(maintenance of the whole service), which is worth acknowledging explicitly.",
    bad=BASE.replace("port: 8080}\n      - {name: w2, address: 10.0.0.12, port: 8080}",
                     "port: 8080, state: hold}\n      - {name: w2, address: 10.0.0.12, port: 8080, state: down}"),
    good=BASE.replace("port: 8080}\n      - {name: w2, address: 10.0.0.12, port: 8080}",
                      "port: 8080, state: hold}\n      - {name: w2, address: 10.0.0.12, port: 8080}"),
    check=check_active_server,
))


# ------------------------------------------------------------------ LBC407
def check_terminal_id(model, ctx):
    for svc in model.services:
        if svc.profile != "terminal-id":
            continue
        for p in svc.tiers:
            active = [s for s in svc.tier(p) if s.state == "active"]
            if not active:
                continue
            if len(active) > 1:
                yield Finding(active[1].path, f"service '{svc.name}' (profile terminal-id) balances over "
                              f"{len(active)} active servers, but Terminal ID Manager does not replicate its state: "
                              "each server would hand out IDs on its own", key=True,
                              related=((active[0].path, f"server '{active[0].name}' is active too"),))
            break  # only the first group that can serve takes traffic


TID = y("""
    lbc: 1
    vips:
      internal: {address: 192.0.2.50}
    services:
      tid:
        profile: terminal-id
        servers:
          - {name: tid-active, address: 10.0.8.11, port: 7070}
          - {name: tid-passive, address: 10.0.8.12, port: 7070, priority: 2}
        health: {tcp: true}
    listeners:
      - name: tid
        vip: internal
        port: 7070
        protocol: tcp
        routes:
          - {service: tid}
    """)

register(Rule(
    "LBC407", "terminal-id-no-ha", W,
    "Terminal ID Manager has no HA: more than one server takes traffic at once.",
    "Keep one active server and put the standby in a lower priority group (`priority: 2`), accepting that "
    "IDs lose their state on failover.",
    cite("000", "Terminal ID Manager"),
    why="Terminal ID Manager keeps the pool of terminal IDs in one server's memory and does not replicate "
        "it. Balancing between two would let both hand out the same IDs. The guide allows a passive "
        "server that takes over when the active one is unavailable (the IDs then lose their current "
        "state), which in lbc is a second priority group.",
    bad=TID.replace(", priority: 2}", "}"),
    good=TID,
    check=check_terminal_id,
))


# ------------------------------------------------------------------ LBC408 (the schema checks it)
register(Rule(
    "LBC408", "session-limit-positive", E,
    "A per-server session limit (max_sessions) below 1.",
    "Give max_sessions a value of at least 1, or remove it for no limit; to stop new sessions use "
    "`state: hold` or `weight: 0`.",
    cite("002", "What Happens At Runtime"),
    why="A server at its concurrent-session limit is skipped and the next server, then the next priority "
        "group, is tried. A limit of 0 would make the server permanently full, which is what holding it "
        "says explicitly (and which some proxies reject as a limit).",
    bad=VHI.replace("weight: 20}", "weight: 20, max_sessions: 0}"),
    good=VHI.replace("weight: 20}", "weight: 20, max_sessions: 500}"),
))


# ------------------------------------------------------------------ LBC409
def check_fallback_at_l4(model, ctx):
    for svc in model.services:
        if not svc.fallback or svc.fallback.kind != "respond":
            continue
        l4 = [l for l in model.listeners_of(svc.name) if not l.reads_http]
        if l4:
            yield Finding(svc.fallback.path + ("respond",), f"service '{svc.name}' answers with a fixed HTTP response "
                          f"when no server can serve, but listener '{l4[0].name}' works at L4: there is no HTTP "
                          "request to answer", key=True,
                          hint="use `fallback: {server: {address: ..., port: ...}}` (a server that always "
                               "answers), or an L7 listener",
                          related=((l4[0].path, f"L4 listener '{l4[0].name}'"),))


register(Rule(
    "LBC409", "fallback-respond-needs-l7", E,
    "A fallback `respond:` (a fixed HTTP answer) on a service reached through an L4 listener.",
    "At L4 use `fallback: {server: ...}`; a fixed answer needs an L7 (HTTP) listener.",
    cite("001", "Minimum Servers", "004", "§1 Introduction"),
    why="A fixed answer is an HTTP response written by the balancer. At L4 (TCP, or TLS passthrough) the "
        "balancer never parses a request and, in passthrough, could not even encrypt a response; the "
        "only fallback it can offer is another server that always answers.",
    bad=VHI.replace("      - {name: vhi-c, address: 10.0.4.13, port: 9681, priority: 2, weight: 100}\n",
                    "      - {name: vhi-c, address: 10.0.4.13, port: 9681, priority: 2, weight: 100}\n"
                    "    fallback: {respond: {body: No sessions available}}\n"),
    good=VHI.replace("      - {name: vhi-c, address: 10.0.4.13, port: 9681, priority: 2, weight: 100}\n",
                     "      - {name: vhi-c, address: 10.0.4.13, port: 9681, priority: 2, weight: 100}\n"
                     "    fallback: {server: {address: 10.0.4.99, port: 9681}}\n"),
    check=check_fallback_at_l4,
    acknowledgeable=False,   # no target can send an HTTP answer where it reads no HTTP
))


# ------------------------------------------------------------------ LBC410
def check_flynet_check_host(model, ctx):
    for svc in model.services:
        h = svc.health
        if svc.profile != "flynet" or h is None or h.kind != "http" or h.http_host:
            continue
        # with a routed host name the profile fills `host` in (build.py); here the routes name none
        yield Finding(h.path + ("http",), f"service '{svc.name}' (profile flynet): the health check sends no Host "
                      "header and no route names a host to take it from, so a Flynet site bound to a host name "
                      "in IIS may answer the check with another site's page (or an error) instead of its "
                      "health page", hint="add `host: <the site's host name>` to `health.http`")


register(Rule(
    "LBC410", "flynet-check-host", W,
    "Flynet: the health check names no Host (which the guide's monitor request sends) and no route names a "
    "host name to fill it in from.",
    "Add `host:` with the Flynet site's host name to `health.http` (e.g. the name users reach it by); "
    "without it the profile uses the service's first routed host name.",
    cite("001", "Using the F5 Load Balancer", "001", "Health Monitor Configuration"),
    why="The guide's example monitor request is `GET /FVTerm/FVHealth.aspx HTTP/1.1` with a `Host:` header. "
        "Flynet runs in IIS, where a site is often bound to a host name: a request without that name reaches "
        "the default site, which may not be Flynet at all, and the check then measures something else. With "
        "`host:` lbc sends HTTP/1.1 with that Host header (and, behind TLS passthrough, uses it as SNI). "
        "When the topology gives none, the flynet profile takes the service's first routed host name "
        "(`lbc compile --explain-defaults` shows it); only without any does this warning remain.",
    bad=FLYNET.replace(", host: fvterm.example.com}", "}").replace("{hosts: [fvterm.example.com], service: fvterm}",
                                                                    "{service: fvterm}"),
    good=FLYNET.replace(", host: fvterm.example.com}", "}"),
    check=check_flynet_check_host,
))
