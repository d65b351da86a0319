"""LBC7xx: several balancer boxes (`balancers:`): what each box counts on its own, and what a failover loses.

lbc's other rules describe one balancer. With N nodes sharing the VIPs, a per-server limit and the
health checks are per node, a per-node stickiness table is lost when the VIP moves, and a node that
takes a VIP over must serve what the VIP's clients expect.
"""
from __future__ import annotations

from .. import plan
from ..targets import spec
from . import Finding, Rule, register
from .common import E, I, W, cite, replace_in, y

PAIR = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      app:
        servers:
          - {name: app1, address: 10.0.1.11, port: 7443}
        stickiness: {mode: source-ip}
    listeners:
      - {name: app, vip: public, port: 443, protocol: tcp, routes: [{service: app}]}
    balancers:
      nodes:
        lb1: {address: 192.0.2.2, interface: eth0, priority: 150}
        lb2: {address: 192.0.2.3, interface: eth0, priority: 100}
      vrrp:
        public: {router_id: 51}
    """)


def variant(*pairs: str) -> str:
    return replace_in(PAIR, *pairs)


# The guides describe one balancer: Host Access for the Cloud's "High Availability" defines high
# availability and leaves redundancy beyond its core services out of scope. What several balancer
# nodes do is lbc's own reasoning; the guides are cited for the facts it starts from.
OWN = "lbc (several balancer nodes); see "


# ------------------------------------------------------------------ LBC701
def check_max_sessions_per_node(model, ctx):
    if model.balancers is None:
        return
    for svc in model.services:
        load = plan.node_load(model, svc)
        n = len(load.nodes)
        if n < 2 or not load.limits:
            continue
        totals = ", ".join(f"{server}: {n} x {each:,} = {total:,}" for server, each, total in load.limits)
        # A Verastream session server enforces its own limit (technical note 7021566, step 6): the excess is
        # refused there instead of being balanced to another server.
        excess = ("; a Verastream session server refuses the sessions beyond its own limit, so those clients are "
                  "refused where one balancer would have chosen another server") if svc.profile == "verastream" else ""
        yield Finding(svc.server(load.limits[0][0]).path + ("max_sessions",),
                      f"service '{svc.name}': max_sessions is counted by each balancer node, and {n} nodes "
                      f"({', '.join(load.nodes)}) reach it: a server can be sent up to {totals} sessions when "
                      "more than "
                      "one node sends traffic (the former holder's connections drain after a failover, or the "
                      f"nodes hold different VIPs){excess}",
                      hint=f"if the server's limit is hard, give each node its share (max_sessions / {n}); "
                           "otherwise acknowledge this with `ignore: {LBC701: reason}`")


register(Rule(
    "LBC701", "max-sessions-per-node", I,
    "With several balancer nodes, max_sessions is a per-node limit: the rule states the effective total per server.",
    "If the server's limit is hard, divide max_sessions by the number of nodes that reach the service.",
    OWN + cite("002", "What Happens At Runtime", "000", "High Availability"),
    why="A balancer counts only the sessions it opened itself. With VRRP one node holds a VIP at a time, but "
        "after a failover the former holder's connections to the servers stay open until they time out while the "
        "new holder opens its own, and nodes that hold different VIPs routing to one service send traffic at the "
        "same time. Each node then sees room on a server that the others have used: a server with no limit of its "
        "own can be sent N times max_sessions. One that enforces its own limit refuses the excess instead: a "
        "Verastream Host Integrator session server that \"has reached its concurrent active session limit\" is "
        "\"not eligible to fulfill the request\" (technical note 7021566, \"What Happens At Runtime\", step 6), so "
        "those clients are refused where one balancer, counting every session, would have chosen another server. "
        "The guides describe a single balancer; Host Access for the Cloud, \"Planning for Deployment\", \"High "
        "Availability\", leaves redundancy beyond the core services out of its scope. What a redundant balancer "
        "layer does to the server limits is lbc's own reasoning.",
    bad=variant("port: 7443}\n", "port: 7443, max_sessions: 500}\n"),
    good=variant("port: 7443}\n", "port: 7443, max_sessions: 250}\n", "balancers:",
                 "ignore: {LBC701: 'each node opens up to 250: the servers take 500 in all'}\nbalancers:"),
    check=check_max_sessions_per_node,
))


# ------------------------------------------------------------------ LBC702
def check_health_checks_per_node(model, ctx):
    if model.balancers is None:
        return
    for svc in model.services:
        load = plan.node_load(model, svc)
        n = len(load.nodes)
        if n < 2 or load.checks_per_minute is None:
            continue
        yield Finding(svc.health.path,
                      f"service '{svc.name}': each of the {n} balancer nodes ({', '.join(load.nodes)}) checks every "
                      f"server every {svc.health.interval_ms / 1000:g} s, so each server answers "
                      f"{load.checks_per_minute:g} checks a minute, not {load.checks_per_minute / n:g} (backup nodes "
                      "check too, to be ready to take over)",
                      hint="nothing to fix if the servers can afford it; else lengthen `health.interval`")


register(Rule(
    "LBC702", "health-checks-per-node", I,
    "With several balancer nodes, every node runs the health checks: the servers see the checks times the nodes.",
    "Nothing to fix if the servers can afford it; else lengthen `health.interval`.",
    OWN + cite("000", "Using Load Balancers"),
    why="A backup node keeps its proxy running, with its own view of which servers are up, so that it can serve "
        "the moment it takes the VIP over. Each node therefore probes every server: a check page that does real "
        "work (a session count, a database query) costs the servers N times what one balancer would cost. Host "
        "Access for the Cloud, \"Planning for Deployment\", \"Using Load Balancers\", gives each tier a health "
        "check endpoint; the load those checks add when the balancers are redundant is lbc's own reasoning.",
    bad=variant("    stickiness", "    health: {tcp: true, interval: 2s}\n    stickiness"),
    good=variant("    stickiness", "    health: {tcp: true, interval: 4s}\n    stickiness",
                 "balancers:", "ignore: {LBC702: 'two nodes checking every 4 s: one check per 2 s per server'}\n"
                 "balancers:"),
    check=check_health_checks_per_node,
))


# ------------------------------------------------------------------ LBC703
def check_source_ip_without_sync(model, ctx):
    b = model.balancers
    if b is None or b.state_sync:
        return
    hashed = ctx.target is not None and spec(ctx.target).source_ip_hash   # no table to lose: a note only
    for svc in model.services:
        if svc.stickiness.mode == "source-ip" and len(plan.node_load(model, svc).nodes) >= 2:
            yield Finding(svc.stickiness.path + ("mode",),
                          f"service '{svc.name}' sticks by source IP, but `balancers.state_sync` is false: on "
                          "HAProxy (stick table) and BIG-IP (persistence records) each node keeps its own table, "
                          "so after a failover every sticky client is balanced anew and may lose its session "
                          "(nginx and Envoy hash the address on every node alike and are not affected)",
                          related=((b.path + ("state_sync",), "state synchronisation turned off"),),
                          severity=I if hashed else None)


register(Rule(
    "LBC703", "source-ip-failover-without-sync", W,
    "Source-IP stickiness on several balancer nodes without state synchronisation: a failover loses it.",
    "Set `balancers.state_sync: true` (HAProxy peers; BIG-IP: persistence mirroring), or use cookie stickiness, "
    "which names the server and needs no shared state.",
    cite("000", "High Availability", "001", "Sticky Load Balancing"),
    why="Source-IP stickiness remembers, per client address, the server that client was given. HAProxy keeps that "
        "in a stick table and BIG-IP in persistence records, both in one box's memory. When the VIP moves to "
        "another node, that node has never seen the client and picks a server afresh: for an application whose "
        "session lives in one server (Flynet, \"Flynet Server Load Balancing\", \"Sticky Load Balancing\"), the "
        "user is disconnected by a failover that should have been invisible. HAProxy's `peers` copy every table "
        "change to the other nodes (CONFORMANCE S34 shows clients keeping their server with it, and half of them "
        "moving without it). nginx and Envoy keep no table: they hash the client address over the same server list "
        "on every node, so with `--target nginx` or `--target envoy` this is reported as information only.",
    bad=variant("    public: {router_id: 51}\n", "    public: {router_id: 51}\n  state_sync: false\n"),
    good=PAIR,
    check=check_source_ip_without_sync,
))


# ------------------------------------------------------------------ LBC704
def check_shared_vip_listeners(model, ctx):
    b = model.balancers
    if b is None:
        return
    on_vip: dict[str, set[str]] = {}
    for l in model.listeners:
        on_vip.setdefault(l.vip, set()).add(l.name)
    owned = {v.vip: v for v in b.vrrp}
    for v in b.vrrp:
        expected = on_vip.get(v.vip, set())
        for name in v.nodes:
            node = b.node(name)
            served = expected & set(node.listeners)
            if served != expected:
                missing = ", ".join(sorted(expected - served))
                yield Finding(node.path + ("listeners",),
                              f"node '{name}' may hold VIP '{v.vip}' but does not serve its listener(s) {missing}: "
                              "after a failover to this node those clients find nothing listening",
                              hint=f"add {missing} to node '{name}'s listeners, or remove '{name}' from "
                                   f"`balancers.vrrp.{v.vip}.nodes`",
                              related=((v.path, "the VIP's VRRP instance"),), key=True)
    for node in b.nodes:
        for lname in node.listeners:
            l = next((x for x in model.listeners if x.name == lname), None)
            if l is None:
                continue
            v = owned.get(l.vip)
            if v is None or node.name not in v.nodes:
                why = (f"VIP '{l.vip}' is not shared by VRRP (no `balancers.vrrp.{l.vip}`)" if v is None else
                       f"node '{node.name}' is not among the nodes of `balancers.vrrp.{l.vip}`")
                yield Finding(node.path + (("listeners",) if node.listeners != tuple(x.name for x in model.listeners)
                                           else ()),
                              f"node '{node.name}' serves listener '{lname}' on VIP '{l.vip}', but {why}: this "
                              "node never holds that address, so the listener is either unreachable or bound "
                              "on several boxes at once",
                              hint=f"add `{l.vip}: {{router_id: N}}` under `balancers.vrrp` (or the node to its nodes)",
                              related=((l.path + ("vip",), "the listener's VIP"),), key=True)
                break


register(Rule(
    "LBC704", "shared-vip-listeners-differ", E,
    "Every node that may hold a shared VIP must serve the same listeners on it, and only on VIPs it may hold.",
    "Give every node of a VRRP instance the same listeners on that VIP (or leave `listeners:` out: every node "
    "serves every listener), and share every listener's VIP under `balancers.vrrp`.",
    OWN + cite("000", "High Availability"),
    why="VRRP moves an address, not a configuration. If the node that takes a VIP over does not serve one of the "
        "VIP's listeners, the failover that should keep the service up takes that listener down; if a node serves a "
        "listener on a VIP it can never hold, the listener is dead weight or, worse, a second box answering for "
        "the same address. Host Access for the Cloud, \"Planning for Deployment\", \"High Availability\", defines "
        "high availability as \"a system's ability to continue providing services when a failure occurs somewhere "
        "in the system\", achieved \"by adding redundancy to key components\"; it does not discuss redundant "
        "balancers, and applying that definition to them is lbc's own reasoning.",
    bad=variant("    lb2: {address: 192.0.2.3, interface: eth0, priority: 100}\n",
                "    lb2: {address: 192.0.2.3, interface: eth0, priority: 100, listeners: []}\n"),
    good=PAIR,
    check=check_shared_vip_listeners,
))
