"""One folder per balancer node: the proxy's files for that node, keepalived.conf and README.md.

A topology with `balancers:` compiles, for targets that run on Linux boxes (capability
`ha.vrrp` native: haproxy, nginx, envoy), to

    <node>/<the target's files, rendered for the node>   (its listeners; HAProxy: its local peer)
    <node>/keepalived.conf                              the VRRP instances owning the shared VIPs
    <node>/README.md                                    the target's README + how to run the node

BIG-IP pairs fail over by their own device group, so the F5 targets write one configuration
(the capability note says so). Verified with keepalived 2.2.7 (Debian 12): `keepalived -t -f`
accepts the output, and CONFORMANCE S34 runs it in network namespaces.
"""
from __future__ import annotations

import re

from .capabilities import NATIVE
from .model import BalancerNode, Topology, VrrpInstance

# Where each proxy writes its PID unless the node says otherwise (`pid_file`): Debian's haproxy
# unit runs `haproxy -Ws -p /run/haproxy.pid`; nginx writes `pid nginx.pid` in its prefix (-p);
# Envoy writes none, so its service must (README).
DEFAULT_PID_FILE = {"haproxy": "/run/haproxy.pid", "nginx": "/etc/nginx/nginx.pid", "envoy": "/run/envoy.pid"}

# The check keepalived runs every second; two failures (about 2 s) give up the node's VIPs.
CHECK_INTERVAL_S, CHECK_FALL, CHECK_RISE = 1, 2, 2

_WORD = re.compile(r"^[A-Za-z0-9_.~+=/-]+$")   # what the schema allows in names, interfaces, passwords, paths


def word(value: str) -> str:
    """A value placed unquoted in keepalived.conf (the schema allows only these characters; checked again)."""
    if not _WORD.match(value):
        raise ValueError(f"{value!r} cannot be placed in keepalived.conf")
    return value


def uses_keepalived(target) -> bool:
    support = target.capabilities.get("ha.vrrp")
    return support is not None and support.level == NATIVE


def per_node(model: Topology, target) -> bool:
    """Whether this compile writes one folder per balancer node."""
    return model.balancers is not None and uses_keepalived(target)


def pid_file(node: BalancerNode, target_name: str) -> str:
    return node.pid_file or DEFAULT_PID_FILE[target_name]


def render_nodes(model: Topology, target) -> dict[str, str]:
    """{<node>/<file>: text} for every node of model.balancers."""
    files: dict[str, str] = {}
    for node in model.require_balancers().nodes:
        proxy = target.render(model.for_node(node.name))
        readme = proxy.pop("README.md", "")
        for rel, text in proxy.items():
            files[f"{node.name}/{rel}"] = text
        files[f"{node.name}/keepalived.conf"] = keepalived_conf(model, node, target.name)
        files[f"{node.name}/README.md"] = (readme.rstrip("\n") + "\n\n" if readme else "") + node_readme(
            model, node, target.name, sorted(proxy))
    return files


def instances_of(model: Topology, node: BalancerNode) -> list[VrrpInstance]:
    return [v for v in model.require_balancers().vrrp if node.name in v.nodes]


def keepalived_conf(model: Topology, node: BalancerNode, target_name: str) -> str:
    b = model.require_balancers()
    out = [f"# keepalived.conf for balancer node '{node.name}' of topology '{model.name}', written by lbc.",
           "# Check: keepalived -t -f keepalived.conf    Run: keepalived -n -l -f keepalived.conf (or the service)",
           "",
           "global_defs {",
           f"    router_id {word(node.name)}",
           "    # the check below reads a root-owned PID file and signals a root process",
           "    script_user root",
           "    enable_script_security",
           "}",
           "",
           f"# The local {target_name}: exit 0 while the process named in its PID file runs. "
           f"{CHECK_FALL} failures in a row",
           "# (a dead proxy) put every instance below in FAULT: this node gives up its VIPs.",
           "vrrp_script lbc_proxy {",
           f"    script \"/bin/sh -c 'kill -0 $(cat {word(pid_file(node, target_name))})'\"",
           f"    interval {CHECK_INTERVAL_S}",
           f"    fall {CHECK_FALL}",
           f"    rise {CHECK_RISE}",
           "}"]
    for v in instances_of(model, node):
        peers = [b.node(n) for n in v.nodes if n != node.name]
        out += ["",
                f"# VIP '{v.vip}' ({v.address}), shared by {', '.join(v.nodes)}; the highest priority whose proxy "
                "runs holds it.",
                f"vrrp_instance {word(v.vip)} {{",
                "    state BACKUP                 # every node starts as backup; the election picks the holder",
                f"    interface {word(node.interface)}",
                f"    virtual_router_id {v.router_id}",
                f"    priority {node.priority}",
                f"    advert_int {v.advert_interval_ms // 1000}"]
        if not v.preempt:
            out.append("    nopreempt                    # a recovered node does not take the VIP back")
        if v.unicast:
            out.append(f"    unicast_src_ip {word(node.address)}")
            out.append("    unicast_peer {")
            out += [f"        {word(p.address)}" for p in peers]
            out.append("    }")
        if v.auth_pass:
            out += ["    authentication {",
                    "        auth_type PASS",
                    f"        auth_pass {word(v.auth_pass)}",
                    "    }"]
        out += ["    virtual_ipaddress {",
                f"        {word(v.address)}/32 dev {word(node.interface)}",
                "    }",
                "    track_script {",
                "        lbc_proxy",
                "    }",
                "}"]
    return "\n".join(out) + "\n"


_RUN = {
    "haproxy": "haproxy -W -db -f haproxy.cfg -p {pid}    # -p: the PID file keepalived checks",
    "nginx": "nginx -p \"$PWD/\" -c nginx.conf    # writes nginx.pid in this folder: pid_file must name it",
    "envoy": "envoy -c envoy.json & echo $! > {pid}    # Envoy writes no PID file: its service must",
}


def node_readme(model: Topology, node: BalancerNode, target_name: str, proxy_files: list[str]) -> str:
    b = model.require_balancers()
    pid = pid_file(node, target_name)
    lines = [f"# Balancer node '{node.name}'", "",
             f"This folder is one of {len(b.nodes)} balancer nodes ({', '.join(n.name for n in b.nodes)}) of "
             f"topology '{model.name}'. Deploy it on the box with address {node.address}; the other folders go "
             "to the other nodes. docs/pair.md in lbc describes the whole procedure.", "",
             "| file | what it is |", "| --- | --- |"]
    lines += [f"| `{f}` | the {target_name} configuration for this node |" for f in proxy_files]
    lines += ["| `keepalived.conf` | VRRP: which VIPs this node may hold, its priority, and the check of the local "
              "proxy |",
              "", "## Running the node", "",
              "1. Let the proxy bind VIPs the node does not hold yet (backups must be ready to serve):", "",
              "       sysctl -w net.ipv4.ip_nonlocal_bind=1    # and persist it in /etc/sysctl.d/", "",
              f"2. Start the proxy so that it writes its PID to `{pid}` (keepalived's check reads it):", "",
              "       " + _RUN[target_name].format(pid=pid), "",
              "3. Check and start keepalived (Debian: `apt-get install keepalived`, config at "
              "/etc/keepalived/keepalived.conf):", "",
              "       keepalived -t -f keepalived.conf",
              "       keepalived -n -l -f keepalived.conf    # or: systemctl restart keepalived",
              "", "## VIPs this node may hold", "",
              "| VIP | address | router id | priority | preempt | advert |", "| --- | --- | --- | --- | --- | --- |"]
    for v in instances_of(model, node):
        lines.append(f"| {v.vip} | {v.address} | {v.router_id} | {node.priority} | {'yes' if v.preempt else 'no'} "
                     f"| {v.advert_interval_ms // 1000}s |")
    lines += ["", "## What a failover keeps and what it costs", ""]
    lines += [f"- {line}" for line in failover_notes(model, target_name)]
    return "\n".join(lines) + "\n"


def failover_notes(model: Topology, target_name: str) -> list[str]:
    """What moving the VIP to another node keeps, per target (the README and docs/pair.md say it)."""
    b = model.require_balancers()
    notes = ["Connections open through the failed node are cut; clients reconnect to the VIP, now held by "
             "another node (a few seconds: the check's 2 failures, then one advertisement).",
             "Cookie stickiness survives: the cookie names the server, every node reads it the same way."]
    if target_name == "haproxy":
        notes.append("Source-IP stickiness survives only through the `peers` section (state_sync: true, port "
                     f"{b.sync_port} between the nodes' addresses): the stick tables are copied as they change."
                     if b.state_sync else
                     "state_sync is false: each node's stick table is its own, so source-IP sticky clients are "
                     "balanced anew after a failover (LBC703).")
    else:
        notes.append("Source-IP stickiness is a hash of the client address over the same server list on every node: "
                     "a sticky client reaches the same server through any node, with no state to copy (as long as "
                     "the nodes see the same servers up).")
    notes.append(f"Each node enforces max_sessions on its own and runs its own health checks "
                 f"({len(b.nodes)} nodes: servers see {len(b.nodes)} x the checks); `lbc plan` shows the totals.")
    return notes
