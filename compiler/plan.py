"""Sizing (Host Access for the Cloud, "Session Server Sizing", "MSS Server Sizing"; seeds/000), VHI
shares (Verastream technical note 7021566), and what several balancer nodes add up to.

The formulas live here once: the sizing rules (LBC503-LBC505), the multi-node rules (LBC701, LBC702)
and `lbc plan` all use them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from .model import BalancerNode, Service, Topology
from .rules.common import cite

# Host Access for the Cloud, "Planning for Deployment" (seeds/000): one session server carries
# 2,000 concurrent host sessions, plus 1,000 of failover headroom;
# one MSS server 10,000 concurrent users, plus 5,000.
SESSIONS_PER_SERVER, SESSION_HEADROOM = 2_000, 1_000
USERS_PER_MSS, MSS_HEADROOM = 10_000, 5_000


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def session_servers_required(peak_sessions: int) -> int:
    """Up to 3,000 concurrent host sessions: 2 servers; above: sessions / 2,000 + 1, at least 3."""
    if peak_sessions <= 3_000:
        return 2
    return max(3, _ceil_div(peak_sessions, SESSIONS_PER_SERVER) + 1)


def mss_servers_required(peak_users: int) -> int:
    """Up to 30,000 concurrent users: 3 servers; above: users / 10,000 + 1, rounded up to an odd number."""
    if peak_users <= 30_000:
        return 3
    n = _ceil_div(peak_users, USERS_PER_MSS) + 1
    return n if n % 2 else n + 1


def counted(svc: Service) -> int:
    """Servers that count toward capacity: every server not administratively down."""
    return sum(1 for s in svc.servers if s.state != "down")


@dataclass(frozen=True)
class Sizing:
    service: str
    profile: str
    unit: str                  # "host sessions" | "users"
    peak: Optional[int]        # None: not declared
    required: int              # servers the guide asks for at this peak (the HA minimum without one)
    present: int
    per_server: int            # capacity of one server, by the guide
    headroom: int              # extra one server takes on failover
    limit: int                 # what one server may carry after a failure: capacity + headroom, or less
    load_after_loss: Optional[int]   # per remaining server with one server lost (None: nothing remains)
    path: tuple = field(default=(), compare=False)

    @property
    def enough_servers(self) -> bool:
        return self.present >= self.required

    @property
    def quorum(self) -> bool:
        """MSS replicates by majority: an odd number of servers (Host Access for the Cloud, "MSS Server Sizing")."""
        return self.profile != "hacloud-mss" or self.present % 2 == 1

    @property
    def survives_loss(self) -> bool:
        return self.peak is None or (self.load_after_loss is not None and self.load_after_loss <= self.limit)

    @property
    def ok(self) -> bool:
        return self.enough_servers and self.quorum and self.survives_loss

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("path")
        d.update(enough_servers=self.enough_servers, quorum=self.quorum, survives_loss=self.survives_loss, ok=self.ok)
        return d


def sizing(svc: Service, peak_sessions: Optional[int] = None, peak_users: Optional[int] = None) -> Optional[Sizing]:
    """The guide's sizing of a hacloud service; overrides replace the declared peaks (what-if)."""
    if svc.profile == "hacloud-session":
        peak = peak_sessions if peak_sessions is not None else svc.peak_sessions
        required = session_servers_required(peak) if peak is not None else 2
        per, head, unit = SESSIONS_PER_SERVER, SESSION_HEADROOM, "host sessions"
        # a per-server session limit below the guide's capacity caps what a server may take
        limits = [s.max_sessions for s in svc.servers if s.state != "down" and s.max_sessions]
        limit = min([per + head] + limits)
    elif svc.profile == "hacloud-mss":
        peak = peak_users if peak_users is not None else svc.peak_users
        required = mss_servers_required(peak) if peak is not None else 3
        per, head, unit = USERS_PER_MSS, MSS_HEADROOM, "users"
        limit = per + head
    else:
        return None
    present = counted(svc)
    after = _ceil_div(peak, present - 1) if peak is not None and present > 1 else None
    return Sizing(svc.name, svc.profile, unit, peak, required, present, per, head, limit, after, svc.path)


@dataclass(frozen=True)
class Share:
    server: str
    weight: int
    state: str
    share: float               # fraction of the group's new sessions (0 for servers on hold or down)
    max_sessions: Optional[int]


@dataclass(frozen=True)
class Group:
    priority: int
    servers: tuple[Share, ...]
    capacity: Optional[int]    # sum of max_sessions when every taking server has one, else None (unlimited)


def shares(svc: Service) -> list[Group]:
    """Per priority group, each server's share of new sessions (VHI: proportional to weight,
    Verastream technical note 7021566)."""
    groups = []
    for p in svc.tiers:
        tier = svc.tier(p)
        taking = [s for s in tier if s.admission == "active"]
        total = sum(s.weight for s in taking)
        rows = tuple(Share(s.name, s.weight, s.state, (s.weight / total) if s in taking and total else 0.0,
                           s.max_sessions) for s in tier)
        limits = [s.max_sessions for s in taking if s.max_sessions]
        capacity = sum(limits) if taking and len(limits) == len(taking) else None   # every server limited
        groups.append(Group(p, rows, capacity))
    return groups


@dataclass(frozen=True)
class NodeRole:
    """One balancer node as VRRP starts: the VIPs it holds (highest priority of each instance; keepalived
    breaks a tie by the higher address) and those it may take over."""
    node: str
    address: str
    priority: int
    holds: tuple[str, ...]
    may_hold: tuple[str, ...]
    listeners: tuple[str, ...]


@dataclass(frozen=True)
class NodeLoad:
    """What the nodes that reach a service add up to at its servers."""
    service: str
    nodes: tuple[str, ...]                     # the balancer nodes serving a listener that routes to it
    checks_per_minute: Optional[float]         # health checks one server answers, all nodes together
    limits: tuple[tuple[str, int, int], ...]   # (server, max_sessions per node, up to this across the nodes)


def node_roles(model: Topology) -> list[NodeRole]:
    import ipaddress
    b = model.balancers
    if b is None:
        return []
    holder = {}
    for v in b.vrrp:
        members = [b.node(n) for n in v.nodes]
        holder[v.vip] = max(members, key=lambda n: (n.priority, ipaddress.ip_address(n.address))).name
    return [NodeRole(n.name, n.address, n.priority, tuple(v for v, h in holder.items() if h == n.name),
                     tuple(v.vip for v in b.vrrp if n.name in v.nodes), n.listeners) for n in b.nodes]


def node_load(model: Topology, svc: Service) -> NodeLoad:
    nodes: tuple[BalancerNode, ...] = ()
    if model.balancers is not None:
        nodes = model.balancers.nodes_serving({l.name for l in model.listeners_of(svc.name)})
    n = len(nodes)
    checks = n * 60_000 / svc.health.interval_ms if svc.health is not None and n else None
    limits = tuple((s.name, s.max_sessions, n * s.max_sessions) for s in svc.servers if s.max_sessions is not None)
    return NodeLoad(svc.name, tuple(x.name for x in nodes), checks, limits)


def plan(model: Topology, peak_sessions: Optional[int] = None, peak_users: Optional[int] = None,
         service: Optional[str] = None) -> dict:
    """Plain data for `lbc plan`: sizing of hacloud services, shares of the others."""
    out: dict = {"topology": model.name, "sizing": [], "shares": [], "nodes": node_roles(model), "node_load": []}
    for svc in model.services:
        if service is not None and svc.name != service:
            continue
        if model.balancers is not None:
            out["node_load"].append(node_load(model, svc))
        s = sizing(svc, peak_sessions, peak_users)
        if s is not None:
            out["sizing"].append(s)
        else:
            out["shares"].append((svc, shares(svc)))
    return out


def _n(x: Optional[int]) -> str:
    return "-" if x is None else f"{x:,}"


def format_plan(p: dict) -> str:
    lines: list[str] = [f"Plan for {p['topology']}", ""]
    if p["sizing"]:
        lines.append("Sizing (" + cite("000", "Session Server Sizing", "000", "MSS Server Sizing") + "):")
        head: tuple[str, ...] = ("service", "profile", "peak", "required", "present", "load after losing one", "limit",
                                 "verdict")
        rows: list[tuple[str, ...]] = []
        for s in p["sizing"]:
            if s.ok:
                verdict = "ok"
            elif not s.enough_servers:
                verdict = f"add {s.required - s.present} server(s)"
            elif not s.quorum:
                verdict = "even count: add one server (quorum)"
            else:
                verdict = "overloaded after a failure"
            rows.append((s.service, s.profile, f"{_n(s.peak)} {s.unit}" if s.peak is not None else "not declared",
                         str(s.required), str(s.present), _n(s.load_after_loss),
                         f"{s.limit:,}" + (" (max_sessions)" if s.limit < s.per_server + s.headroom else
                                           f" ({s.per_server:,} + {s.headroom:,} headroom)"), verdict))
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
        for r in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        lines.append("")
    for svc, groups in p["shares"]:
        lines.append(f"Shares of new sessions, service {svc.name} (profile {svc.profile}, balance {svc.balance}):")
        if svc.balance not in ("weighted-random", "round-robin"):
            lines.append(f"  ({svc.balance}: the weights bias the choice, actual shares follow the load)")
        for g in groups:
            cap = f", group capacity {g.capacity:,} sessions" if g.capacity is not None else ""
            first = "serves first" if g is groups[0] else "only when every server above is down or full"
            lines.append(f"  priority {g.priority} ({first}{cap}):")
            for s in g.servers:
                extra = f"  max_sessions {s.max_sessions:,}" if s.max_sessions else ""
                state = "" if s.state == "active" else f" [{s.state}]"
                lines.append(f"    {s.server:<20} weight {s.weight:>3}  {s.share * 100:5.1f} %{extra}{state}")
        lines.append("")
    if p["nodes"]:
        lines.append("Balancer nodes (VRRP: the highest priority whose proxy runs holds a VIP):")
        head = ("node", "address", "priority", "holds at start", "may take over", "listeners")
        rows = [(r.node, r.address, str(r.priority), ", ".join(r.holds) or "-",
                 ", ".join(v for v in r.may_hold if v not in r.holds) or "-", ", ".join(r.listeners) or "-")
                for r in p["nodes"]]
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        for r in [head] + rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        lines.append("")
        lines.append("What the nodes add up to at each service's servers (each node counts on its own):")
        for load in p["node_load"]:
            parts = [f"reached by {len(load.nodes)} node(s)" + (f" ({', '.join(load.nodes)})" if load.nodes else "")]
            if load.checks_per_minute is not None:
                parts.append(f"{load.checks_per_minute:g} health checks a minute per server")
            parts += [f"{server}: max_sessions {each:,} per node, up to {total:,} in all"
                      for server, each, total in load.limits]
            lines.append(f"  {load.service}: " + "; ".join(parts))
        lines.append("")
    if not p["sizing"] and not p["shares"]:
        lines.append("No service to plan.")
    return "\n".join(lines).rstrip() + "\n"


def plan_json(p: dict) -> dict:
    return {
        "topology": p["topology"],
        "sizing": [s.to_dict() for s in p["sizing"]],
        "shares": [{"service": svc.name, "profile": svc.profile, "balance": svc.balance,
                    "groups": [asdict(g) for g in groups]} for svc, groups in p["shares"]],
        **({"nodes": [asdict(r) for r in p["nodes"]], "node_load": [asdict(x) for x in p["node_load"]]}
           if p["nodes"] else {}),
    }
