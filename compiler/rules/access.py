"""LBC63x: client access lists (`access:`) and rate limits per client (`rate_limit:`) on a listener."""
from __future__ import annotations

import ipaddress

from ..model import Listener, NetIndex, net_key
from . import Finding, Rule, register
from .common import E, W, replace_in, web_example, y

BASE = web_example(listener="""
    access:
      allow: [198.51.100.0/24, 203.0.113.0/24]
      deny: [198.51.100.128/25]
    """)

MANUALS = ("lbc (the access-list order); HAProxy Configuration Manual (`src`, `-f` pattern files), nginx "
           "`ngx_http_geo_module`, Envoy RBAC filter, BIG-IP iRules `class match`")


def _families(l: Listener) -> tuple[int, ...]:
    """The address families of the clients that can reach the listener's VIP."""
    try:
        ip = ipaddress.ip_address(l.address)
    except ValueError:
        return (4, 6)
    return (4, 6) if ip.is_unspecified else (ip.version,)


def access_lists(model):
    """Every access list with the listener it guards and how messages name it: the listener's own,
    then each route's (one concept: the same checks apply to both). A `direct_hosts` route expands to
    several routes sharing one list: it is checked once."""
    for l in model.listeners:
        if l.access is not None:
            yield f"listener '{l.name}'", l, l.access
        seen = set()
        for r in l.routes:
            if r.access is not None and r.access.path not in seen:
                seen.add(r.access.path)
                yield f"listener '{l.name}' route {r.path[-1] + 1}", l, r.access


# ------------------------------------------------------------------ LBC630 (found by the model builder)
register(Rule(
    "LBC630", "bad-client-network", E,
    "An access-list entry is not a network, or has host bits set (10.1.2.3/8).",
    "Write a network (192.0.2.0/24, 2001:db8::/32) or one address; the message names the network meant.",
    "lbc (the topology language, schemas/topology.schema.json)",
    why="A prefix with host bits set is ambiguous: `10.1.2.3/8` may mean 10.0.0.0/8 or 10.1.2.3/32, and the "
        "proxies disagree (some truncate silently, some refuse). lbc refuses it and names the network the prefix "
        "gives, so the author decides. An address written alone is one client: a /32 (IPv4) or /128 (IPv6).",
    bad=replace_in(BASE, "deny: [198.51.100.128/25]", "deny: [198.51.100.130/25]"),
    good=BASE,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC631
def check_redundant(model, ctx):
    for who, l, a in access_lists(model):
        families = _families(l)
        index = {"allow": NetIndex(a.allow), "deny": NetIndex(a.deny)}
        first: dict[tuple[str, str], int] = {}
        for kind, j, net in a.written:
            where = a.path + (kind, j)
            version = net_key(net)[0]
            if version not in families:
                yield Finding(where, f"{who}: {net} is IPv{version}, but the VIP {l.address} only "
                              f"receives IPv{families[0]} clients: the entry never matches")
                continue
            if (kind, net) in first:
                yield Finding(where, f"{who}: {net} is listed twice in `{kind}`",
                              related=((a.path + (kind, first[(kind, net)]), "first listed here"),))
                continue
            first[(kind, net)] = j
            wider = index[kind].covering(net, strict=True)
            denied = index["deny"].covering(net) if kind == "allow" else None
            if wider is not None:
                yield Finding(where, f"{who}: {net} is inside {wider}, also in `{kind}`: the "
                              "entry changes nothing")
            elif denied is not None:
                yield Finding(where, f"{who}: {net} is covered by denied {denied}: deny wins, so "
                              "this entry admits no one")


register(Rule(
    "LBC631", "redundant-client-network", W,
    "An access-list entry that changes nothing: listed twice, inside a wider entry of the same list, an allowed "
    "network inside a denied one, or an address family the VIP never receives.",
    "Remove the entry, or correct its prefix if it was meant to differ.",
    MANUALS,
    why="The order is fixed: a denied client is refused whatever `allow` says, then an `allow` list admits only "
        "its networks. An allowed network inside a denied one can therefore never admit anyone, and an entry "
        "inside a wider one of the same list adds nothing. Such entries usually hide a typo in a prefix length, "
        "and in a list of thousands they make the review harder.",
    bad=replace_in(BASE, "allow: [198.51.100.0/24, 203.0.113.0/24]",
                   "allow: [198.51.100.0/24, 203.0.113.0/24, 203.0.113.64/26]"),
    good=BASE,
    check=check_redundant,
))


# ------------------------------------------------------------------ LBC632
def check_admits_no_one(model, ctx):
    for who, l, a in access_lists(model):
        for fam in _families(l):
            if ("0.0.0.0/0" if fam == 4 else "::/0") in a.deny:
                why = "its `deny` list holds every address"
            elif a.allow and not any(ok and net_key(n)[0] == fam for n, ok in a.table):
                why = ("every `allow` entry is denied" if any(net_key(n)[0] == fam for n in a.allow)
                       else f"its `allow` list has no IPv{fam} network")
            else:
                continue
            yield Finding(a.path, f"{who} admits no IPv{fam} client: {why}", key=True)
            break


register(Rule(
    "LBC632", "access-admits-no-one", E,
    "An access list that refuses every client of the listener's address family.",
    "Remove the listener, or correct the lists: a `deny` entry wins over every `allow` entry it covers.",
    MANUALS,
    why="A listener that refuses everyone is almost always a mistake in the lists (an `allow` list of IPv6 "
        "networks on an IPv4 VIP, a deny of 0.0.0.0/0 meant for another listener); the configuration would load "
        "and every client would be refused.",
    bad=replace_in(BASE, "allow: [198.51.100.0/24, 203.0.113.0/24]\n      deny: [198.51.100.128/25]",
                   "deny: [0.0.0.0/0]"),
    good=BASE,
    check=check_admits_no_one,
))


# ------------------------------------------------------------------ LBC633
def check_empty(model, ctx):
    for who, _l, a in access_lists(model):
        if not a.allow and not a.deny:
            yield Finding(a.path, f"{who} has an access list with no entries: it admits every client",
                          key=True)


register(Rule(
    "LBC633", "empty-access-list", W,
    "An `access:` block with no entries, which admits every client.",
    "Give `allow` or `deny` networks, or remove `access:`.",
    "lbc (the topology language, schemas/topology.schema.json)",
    why="An empty `allow` list does not mean \"allow no one\": with no networks listed there is no allow list at "
        "all, so every client passes. The block is most likely unfinished, or its entries went to another listener.",
    bad=replace_in(BASE, "allow: [198.51.100.0/24, 203.0.113.0/24]\n      deny: [198.51.100.128/25]",
                   "allow: []"),
    good=BASE,
    check=check_empty,
))


# ------------------------------------------------------------------ rate limits
RATE = replace_in(BASE, "    access:\n      allow: [198.51.100.0/24, 203.0.113.0/24]\n      deny: [198.51.100.128/25]\n",
                  "    rate_limit: {requests_per_second: 20, burst: 40}\n")
RATE_MANUALS = ("lbc (rate limits per client address); HAProxy Configuration Manual (stick tables, `sc_gpc0_rate`), "
                "nginx `ngx_http_limit_req_module`, Envoy local rate limit filter, BIG-IP iRules `table`")


# ------------------------------------------------------------------ LBC637
def check_path_list_bypass(model, ctx):
    """A path route's list guards the path as each proxy matches it (raw on HAProxy, Envoy and BIG-IP:
    `/%61dmin/` is not `/admin/`). When another route of the same host reaches the same service without
    that list, a request spelled differently gets the guarded path served anyway."""
    for l in model.listeners:
        if not any(r.access is not None and r.url_path is not None for r in l.routes):
            continue          # the route table is only built where a path route has a list
        for t in l.route_table:
            for r in t.routes:
                if r.access is None or r.url_path is None or not (r.access.allow or r.access.deny):
                    continue
                other = next((o for o in t.routes if o is not r and o.service == r.service
                              and o.access_key != r.access_key), None)
                if other is not None:
                    yield Finding(r.access.path, f"listener '{l.name}': the access list of the route for "
                                  f"{r.url_path.value} guards service '{r.service}', which another route of the "
                                  f"same host reaches without it: a path spelled differently (percent-escaped, "
                                  f"doubled slashes) takes that route to the same servers",
                                  related=((other.path, "the other route"),),
                                  hint="route the guarded path to a service of its own, or put the list on the listener")
                    break


register(Rule(
    "LBC637", "route-access-bypass", W,
    "A path route's access list guards a service that another route of the same host reaches without it.",
    "Route the guarded path to a service of its own (the same servers under another name is enough), or move "
    "the list to the listener.",
    "lbc (the access-list order, path routing); HAProxy Configuration Manual (`path`), Envoy route matching "
    "(`prefix`), nginx `location`",
    why="Proxies read a request's path differently before matching a route: lbc has each target normalise or "
        "refuse dot segments, `//` and escaped dots or slashes, but a percent-escaped letter stays as sent on "
        "HAProxy and BIG-IP (nginx decodes it). `/%61dmin/x` does not take the `/admin/` route there; it takes the "
        "host's other route, and when that route goes to the same servers, a server that "
        "decodes or normalises the path answers `/admin/x` to a client the list refuses. A list is only as strong "
        "as the separation of what it guards.",
    bad=web_example(routes="""
        - {service: web}
        - {path_prefix: /admin/, service: web, access: {allow: [198.51.100.0/24]}}
        """),
    good=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        services:
          web:
            servers:
              - {name: w1, address: 10.0.0.11, port: 8080}
          admin:
            servers:
              - {name: w1, address: 10.0.0.11, port: 8080}
        listeners:
          - name: web
            vip: public
            port: 80
            routes:
              - {service: web}
              - {path_prefix: /admin/, service: admin, access: {allow: [198.51.100.0/24]}}
        """),
    check=check_path_list_bypass,
))


# ------------------------------------------------------------------ LBC634
def check_requests_need_l7(model, ctx):
    for l in model.listeners:
        rl = l.rate_limit
        if rl is not None and rl.unit == "request" and not l.reads_http:
            yield Finding(rl.path + ("requests_per_second",),
                          f"listener '{l.name}' does not read HTTP ({'TLS passthrough' if l.tls.mode == 'passthrough' else 'protocol tcp'}): "
                          "it cannot count requests, only connections",
                          hint="use `connections_per_second`, or make the listener read HTTP")


register(Rule(
    "LBC634", "request-rate-needs-l7", E,
    "A requests-per-second limit on a listener that does not read HTTP.",
    "Use `connections_per_second` on an L4 or passthrough listener.",
    RATE_MANUALS,
    why="At L4 (and in TLS passthrough) the balancer forwards a byte stream: one connection may carry any "
        "number of requests, which it never sees. It can count and refuse connections, not requests.",
    bad=replace_in(RATE, "    port: 80\n", "    port: 80\n    protocol: tcp\n"),
    good=replace_in(RATE, "    port: 80\n", "    port: 80\n    protocol: tcp\n",
                    "requests_per_second: 20", "connections_per_second: 20"),
    check=check_requests_need_l7,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC635 (found by the model builder)
register(Rule(
    "LBC635", "rate-limit-one-rate", E,
    "A rate limit with both requests_per_second and connections_per_second, or neither.",
    "Give exactly one of them.",
    "lbc (the topology language, schemas/topology.schema.json)",
    why="One listener counts one thing per client: requests (L7) or new connections. Two limits at once would "
        "make the answer to a refused client depend on which ran out first; none leaves only a burst.",
    bad=replace_in(RATE, "requests_per_second: 20, burst: 40", "burst: 40"),
    good=RATE,
    acknowledgeable=False,
))


# ------------------------------------------------------------------ LBC636
def check_burst(model, ctx):
    for l in model.listeners:
        rl = l.rate_limit
        if rl is not None and rl.burst < rl.per_second:
            yield Finding(rl.path + ("burst",),
                          f"listener '{l.name}': a burst of {rl.burst} is below the rate of {rl.per_second} per "
                          f"second: a client within the rate whose {rl.unit}s come together (a page and its "
                          "assets, a reconnect storm) is refused",
                          hint=f"give `burst:` at least {rl.per_second}, or leave it out (it defaults to the rate)")


register(Rule(
    "LBC636", "burst-below-rate", W,
    "A rate limit whose burst is smaller than its per-second rate.",
    "Make `burst` at least the per-second rate (the default).",
    RATE_MANUALS,
    why="Clients do not space their requests evenly: a browser asks for a page and its assets at once. With a "
        "burst below the per-second rate, a client that stays well within the rate on average is refused "
        "whenever its requests bunch up, and the targets that count in a window (HAProxy) count it in a window "
        "shorter than a second.",
    bad=replace_in(RATE, "burst: 40", "burst: 5"),
    good=RATE,
    check=check_burst,
))
