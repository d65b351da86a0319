"""LBC5xx: sizing and high availability of Host Access for the Cloud (formulas in lbc.plan)."""
from __future__ import annotations

from .. import plan
from ..diagnostics import Severity
from . import Finding, Rule, register
from .common import HACLOUD, cite

E, W = Severity.ERROR, Severity.WARNING


def hacloud(profile: str, servers: int, capacity: str = "", extra: str = "") -> str:
    """A hacloud topology with `servers` servers (the examples differ only in these)."""
    port = 7443 if profile == "hacloud-session" else 8443
    lines = ["lbc: 1", "vips:", "  public: {address: 192.0.2.20}", "services:", "  app:", f"    profile: {profile}"]
    if capacity:
        lines.append(f"    capacity: {{{capacity}}}")
    lines.append("    servers:")
    lines += [f"      - {{name: s{i}, address: 10.0.2.{10 + i}, port: {port}{extra}}}" for i in range(1, servers + 1)]
    lines += ["    health: {http: {path: /health}}", "listeners:", "  - name: app", "    vip: public", "    port: 80",
              "    routes:", "      - {service: app}"]
    return "\n".join(lines) + "\n"


def _servers_path(svc):
    return svc.path + ("servers",)


# ------------------------------------------------------------------ LBC501
def check_session_minimum(model, ctx):
    for svc in model.services:
        if svc.profile == "hacloud-session" and plan.counted(svc) < 2:
            yield Finding(_servers_path(svc), f"service '{svc.name}' (hacloud-session) has {plan.counted(svc)} "
                          "server(s) in service; high availability needs at least 2", key=True)


register(Rule(
    "LBC501", "hacloud-session-minimum", E,
    "Host Access for the Cloud session servers: fewer than 2 servers (the HA minimum).",
    "Run at least two session servers (servers with state down do not count).",
    cite("000", "Session Server Sizing", "000", "High Availability"),
    why="High availability means that a failed server's users can reconnect to another one. With a single "
        "session server there is no other one; the guide sets two as the minimum even for small loads.",
    bad=hacloud("hacloud-session", 1), good=hacloud("hacloud-session", 2),
    check=check_session_minimum,
))


# ------------------------------------------------------------------ LBC502
def check_mss_quorum(model, ctx):
    for svc in model.services:
        if svc.profile != "hacloud-mss":
            continue
        n = plan.counted(svc)
        if n < 3 or n % 2 == 0:
            why = "at least 3 are required" if n < 3 else "an even number cannot form a database quorum"
            yield Finding(_servers_path(svc), f"service '{svc.name}' (hacloud-mss) has {n} server(s) in service: "
                          f"{why}; use an odd number, at least 3", key=True)


register(Rule(
    "LBC502", "hacloud-mss-odd-quorum", E,
    "MSS: fewer than 3 servers, or an even number (database quorum).",
    "Run an odd number of MSS servers, at least 3 (servers with state down do not count).",
    cite("000", "MSS Server Sizing"),
    why="MSS servers replicate their data in a cluster that decides by majority. Three is the smallest "
        "cluster that survives one failure, and an even count adds no safety: after a network split, two "
        "halves of equal size cannot tell which one holds the majority.",
    bad=hacloud("hacloud-mss", 4), good=hacloud("hacloud-mss", 5),
    check=check_mss_quorum,
))


# ------------------------------------------------------------------ LBC503
def check_session_count(model, ctx):
    for svc in model.services:
        s = plan.sizing(svc)
        if s and svc.profile == "hacloud-session" and s.peak is not None and not s.enough_servers:
            yield Finding(svc.path + ("capacity", "peak_sessions"),
                          f"service '{svc.name}': {s.peak:,} concurrent host sessions need {s.required} session "
                          f"servers, {s.present} are listed", related=((_servers_path(svc), "the servers"),))


register(Rule(
    "LBC503", "hacloud-session-sizing", W,
    "Declared peak host sessions need more session servers than listed: up to 3,000 -> 2; above -> "
    "peak / 2,000 + 1 (rounded up), at least 3.",
    "Add session servers up to the number `lbc plan` prints, or lower the declared peak.",
    cite("000", "Session Server Sizing"),
    why="Host sessions, not users, load a session server. One server carries 2,000 concurrent host "
        "sessions and keeps 1,000 more as headroom for failover. The guide's table: up to 3,000 sessions, "
        "two servers; above that, one server per 2,000 sessions plus one spare, never fewer than three. "
        "So 9,000 sessions need 6 servers.",
    bad=hacloud("hacloud-session", 5, "peak_sessions: 9000"),
    good=hacloud("hacloud-session", 6, "peak_sessions: 9000"),
    check=check_session_count,
))


# ------------------------------------------------------------------ LBC504
def check_mss_count(model, ctx):
    for svc in model.services:
        s = plan.sizing(svc)
        if s and svc.profile == "hacloud-mss" and s.peak is not None and not s.enough_servers:
            yield Finding(svc.path + ("capacity", "peak_users"),
                          f"service '{svc.name}': {s.peak:,} concurrent users need {s.required} MSS servers, "
                          f"{s.present} are listed", related=((_servers_path(svc), "the servers"),))


register(Rule(
    "LBC504", "hacloud-mss-sizing", W,
    "Declared peak users need more MSS servers than listed: up to 30,000 -> 3; above -> peak / 10,000 + 1, "
    "rounded up to an odd number.",
    "Add MSS servers up to the number `lbc plan` prints (an odd number), or lower the declared peak.",
    cite("000", "MSS Server Sizing"),
    why="One MSS server carries 10,000 concurrent users with 5,000 of failover headroom. The guide's table: "
        "up to 30,000 users, three servers; above, one per 10,000 users plus one, made odd for the quorum. "
        "So 45,000 users need 7 servers (5 + 1 = 6, rounded up to 7).",
    bad=hacloud("hacloud-mss", 5, "peak_users: 45000"),
    good=hacloud("hacloud-mss", 7, "peak_users: 45000"),
    check=check_mss_count,
))


# ------------------------------------------------------------------ LBC505
def check_failover_headroom(model, ctx):
    for svc in model.services:
        s = plan.sizing(svc)
        if s is None or s.peak is None or s.survives_loss:
            continue
        key = "peak_sessions" if svc.profile == "hacloud-session" else "peak_users"
        if s.load_after_loss is None:
            msg = f"with one of its {s.present} server(s) lost, none is left to carry {s.peak:,} {s.unit}"
        else:
            rest = "the remaining server carries" if s.present == 2 else f"each of the remaining {s.present - 1} carries"
            msg = (f"with one server lost, {rest} {s.load_after_loss:,} {s.unit}, above the {s.limit:,} one server "
                   "may take")
        yield Finding(svc.path + ("capacity", key), f"service '{svc.name}': {msg}",
                      related=((_servers_path(svc), "the servers"),))


register(Rule(
    "LBC505", "hacloud-failover-headroom", W,
    "After losing one server the others cannot carry the declared peak within capacity + failover headroom "
    "(2,000 + 1,000 host sessions; 10,000 + 5,000 users), or within a lower max_sessions.",
    "Add servers, raise per-server limits (max_sessions) up to the guide's capacity, or lower the peak.",
    cite("000", "Session Server Sizing", "000", "MSS Server Sizing", "000", "High Availability"),
    why="Headroom is the free capacity that absorbs a failed server's users. The guide sizes each server "
        "for 2,000 host sessions with room for 1,000 more during a failover (10,000 + 5,000 users for MSS). "
        "If the remaining servers would each carry more than that, a single failure overloads them in turn. "
        "A per-server max_sessions below the guide's figure lowers that ceiling.",
    bad=hacloud("hacloud-session", 2, "peak_sessions: 3000", ", max_sessions: 2000"),
    good=hacloud("hacloud-session", 2, "peak_sessions: 3000", ", max_sessions: 3000"),
    check=check_failover_headroom,
))


# ------------------------------------------------------------------ LBC506
def check_least_connections(model, ctx):
    for svc in model.services:
        if svc.profile in HACLOUD and svc.balance != "least-connections":
            yield Finding(svc.path + ("balance",), f"service '{svc.name}' ({svc.profile}) balances by {svc.balance}; "
                          "the guide recommends least connections so that no server is overloaded")


register(Rule(
    "LBC506", "hacloud-least-connections", W,
    "Host Access for the Cloud services should balance by least connections.",
    "Use `balance: least-connections` (the profile's default).",
    cite("000", "Using Load Balancers"),
    why="Host sessions are long-lived and uneven. Round robin or random spreading ignores how many "
        "sessions each server already holds, so one server can become overloaded while others idle; "
        "least connections sends each new session to the server with the fewest.",
    bad=hacloud("hacloud-session", 2).replace("    profile: hacloud-session\n",
                                              "    profile: hacloud-session\n    balance: round-robin\n"),
    good=hacloud("hacloud-session", 2).replace("    profile: hacloud-session\n",
                                               "    profile: hacloud-session\n    balance: least-connections\n"),
    check=check_least_connections,
))
