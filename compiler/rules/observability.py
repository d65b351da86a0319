"""LBC65x: access logs and the admin (metrics) endpoint.

The admin endpoint shows every server's counters and, on Envoy, is the proxy's admin interface
(which can also stop or drain it): it belongs on loopback or a management address, never on an
address clients reach. An access log needs its destination spelled out.
"""
from __future__ import annotations

import ipaddress

from . import Finding, Rule, register
from .common import E, LBC_LANGUAGE, W, cite, replace_in, y

MANUALS = ("HAProxy 2.6 Configuration Manual, \"prometheus-exporter\" service and \"stats\"; Envoy 1.40 "
           "documentation, \"Administration interface\"; nginx documentation, \"ngx_http_stub_status_module\"")

BASE = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      web:
        servers:
          - {name: w1, address: 10.0.1.11, port: 8080}
    listeners:
      - {name: web, vip: public, port: 80, routes: [{service: web}]}
    admin: {address: 127.0.0.1, port: 9100}
    access_log: {to: stdout}
    """)


def variant(*pairs: str) -> str:
    return replace_in(BASE, *pairs)


def _ip(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# ------------------------------------------------------------------ LBC650
def check_admin_off_vips(model, ctx):
    a = model.admin
    if a is None:
        return
    ip = _ip(a.address)
    if ip is not None and ip.is_unspecified:
        yield Finding(a.path + ("address",), f"the admin endpoint binds {a.address}, every address of the balancer: "
                      "the VIPs too, so clients could read (on Envoy: change) the proxy's state",
                      hint="use 127.0.0.1 (the default) or a management address")
        return
    for v in model.vips:
        vip = _ip(v.address)
        if ip is not None and vip is not None and vip == ip:
            yield Finding(a.path + ("address",), f"the admin endpoint binds VIP '{v.name}' ({v.address}), where "
                          "clients connect", related=((v.path, "VIP defined here"),),
                          hint="use 127.0.0.1 (the default) or a management address")


register(Rule(
    "LBC650", "admin-off-vips", E,
    "The admin (metrics) endpoint binds a VIP's address or every address.",
    "Bind it to loopback (the default) or a management address that no VIP uses.",
    MANUALS,
    why="The metrics page lists every server, its state and its traffic, and Envoy's admin interface also "
        "accepts commands that stop or drain the proxy. On a VIP (or on 0.0.0.0, which includes the VIPs) "
        "every client could reach it. lbc therefore keeps it off the addresses clients use.",
    bad=variant("admin: {address: 127.0.0.1, port: 9100}", "admin: {address: 192.0.2.10, port: 9100}"),
    good=BASE,
    check=check_admin_off_vips,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC651
def check_admin_port_free(model, ctx):
    a = model.admin
    if a is None:
        return
    ip = _ip(a.address)
    for l in model.listeners:
        lip = _ip(l.address)
        # a listener on 0.0.0.0 (or ::) holds the port on every address, loopback included
        same = lip is not None and ip is not None and (lip == ip or (lip.is_unspecified and lip.version == ip.version))
        if l.port == a.port and same:
            yield Finding(a.path + ("port",), f"listener '{l.name}' binds {l.address}:{l.port}, the admin endpoint's "
                          "address and port: one of them could not start", related=((l.path + ("port",),
                                                                                    "listener bound here"),))


register(Rule(
    "LBC651", "admin-port-in-use", E,
    "A listener binds the admin endpoint's address and port.",
    "Give the admin endpoint a port no listener uses on its address.",
    LBC_LANGUAGE,
    why="One socket owns an address and port: the proxy would refuse to start (HAProxy, nginx) or fail when "
        "it binds the second (Envoy), which a configuration check does not always see.",
    bad=variant("port: 80, routes", "port: 9100, routes", "address: 192.0.2.10}", "address: 0.0.0.0}"),
    good=variant("address: 192.0.2.10}", "address: 0.0.0.0}"),
    check=check_admin_port_free,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC652
def _log_blocks(model):
    seen = set()
    for l in model.listeners:
        if l.access_log is not None and l.access_log.path not in seen:
            seen.add(l.access_log.path)
            yield l.access_log


def check_log_destination(model, ctx):
    for log in _log_blocks(model):
        if log.to == "file" and log.file is None:
            yield Finding(log.path + ("to",), "`to: file` needs `file:` (the log file's path)",
                          hint="add e.g. `file: /var/log/lbc/access.log`")
        if log.to == "syslog" and log.syslog_address is None:
            yield Finding(log.path + ("to",), "`to: syslog` needs `syslog: {address: ...}` (the syslog server)",
                          hint="add e.g. `syslog: {address: 192.0.2.53}`")
        if log.file is not None and log.file.rsplit("/", 1)[-1] in ("", ".", ".."):
            yield Finding(log.path + ("file",), f"'{log.file}' names a folder, not a log file",
                          hint="add the file's name, e.g. `file: /var/log/lbc/access.log`")
        if log.file is not None and log.to != "file":
            yield Finding(log.path + ("file",), f"`file:` is given but the log goes to {log.to}",
                          hint="write `to: file`, or remove `file:`")
        if log.syslog_address is not None and log.to != "syslog":
            yield Finding(log.path + ("syslog",), f"`syslog:` is given but the log goes to {log.to}",
                          hint="write `to: syslog`, or remove `syslog:`")


register(Rule(
    "LBC652", "access-log-destination", E,
    "An access log's `to` and its `file:` or `syslog:` disagree, or `file:` names a folder.",
    "`to: file` takes `file:`, `to: syslog` takes `syslog:`; the others take neither.",
    LBC_LANGUAGE,
    why="Each destination needs its own details, and details for another destination are a sign the "
        "topology says something other than what its author meant.",
    bad=variant("access_log: {to: stdout}", "access_log: {to: file}"),
    good=variant("access_log: {to: stdout}", "access_log: {to: file, file: /var/log/lbc/access.log}"),
    check=check_log_destination,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC653
def check_admin_reachable(model, ctx):
    a = model.admin
    ip = _ip(a.address) if a is not None else None
    if ip is None or ip.is_loopback or ip.is_unspecified:   # unspecified: LBC650's error
        return
    if any(_ip(v.address) == ip for v in model.vips) or model.balancers is not None:   # LBC650's, LBC654's error
        return
    yield Finding(a.path + ("address",), f"the admin endpoint on {a.address} is reachable from the network: it "
                  "shows every server's state, and on Envoy it is the admin interface, which can also stop or drain "
                  "the proxy", hint="keep that address on a management network or behind a firewall, or "
                                    "acknowledge with `ignore: {LBC653: reason}`")


register(Rule(
    "LBC653", "admin-reachable", W,
    "The admin endpoint is not on loopback.",
    "Keep its address on a management network (firewalled), or use 127.0.0.1 and scrape locally.",
    MANUALS,
    why="HAProxy's and nginx's pages only read, but Envoy's admin interface has endpoints that change the "
        "running proxy (POST /quitquitquit, /drain_listeners, /runtime_modify, /healthcheck/fail). A scraper "
        "on another host needs the endpoint on a routable address; that address then must be reachable only "
        "from the monitoring network.",
    bad=variant("admin: {address: 127.0.0.1, port: 9100}", "admin: {address: 198.51.100.7, port: 9100}"),
    good=variant("admin: {address: 127.0.0.1, port: 9100}",
                 "admin:\n  address: 198.51.100.7\n  port: 9100\n  ignore: {LBC653: 'management VLAN, firewalled'}"),
    check=check_admin_reachable,
))


# ------------------------------------------------------------------ LBC654
def check_admin_on_nodes(model, ctx):
    a, b = model.admin, model.balancers
    ip = _ip(a.address) if a is not None else None
    if b is None or ip is None or ip.is_loopback or ip.is_unspecified:
        return
    yield Finding(a.path + ("address",), f"with {len(b.nodes)} balancer nodes, the admin address {a.address} can be "
                  "bound by one node only: every node runs its own admin endpoint",
                  hint="use 127.0.0.1 (each node's own loopback) and scrape each node")


register(Rule(
    "LBC654", "admin-per-node", E,
    "With balancer nodes, the admin endpoint is on a fixed non-loopback address.",
    "Use loopback: each node then serves its own metrics.",
    cite("004", "§6 Accessing Server Instances Directly and the Monitoring Dashboard Case"),
    why="Each balancer node runs its own proxy, so each has its own admin endpoint, and its counters describe "
        "that node only. An address other than loopback belongs to one box: the proxy on every other node would "
        "fail to bind it. The Lightstreamer guide makes the same point about its servers' monitoring dashboard: "
        "it shows one instance, so it is reached on each instance directly; lbc applies that reasoning to the "
        "balancer nodes.",
    bad=variant("admin: {address: 127.0.0.1, port: 9100}", "admin: {address: 198.51.100.7, port: 9100}")
    + "balancers:\n  nodes:\n    lb1: {address: 192.0.2.2, interface: eth0, priority: 150}\n"
      "    lb2: {address: 192.0.2.3, interface: eth0, priority: 100}\n  vrrp:\n    public: {router_id: 51}\n",
    good=BASE + "balancers:\n  nodes:\n    lb1: {address: 192.0.2.2, interface: eth0, priority: 150}\n"
                "    lb2: {address: 192.0.2.3, interface: eth0, priority: 100}\n  vrrp:\n    public: {router_id: 51}\n",
    check=check_admin_on_nodes,
    acknowledgeable=False,
))
