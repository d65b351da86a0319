"""`lbc diff`: what changes between two topologies, in the topology's own words, and what a person
must know about each change (sessions that move, clients that lose access).

The comparison is made on the normalised model, so formatting, key order, comments and defaults
written out or left implicit make no difference: only what the load balancer would do.
Objects are matched by name (VIPs, certificates, services, servers within a service, listeners);
routes by what they match and where they go.

Exit codes (decK's `--non-zero-exit-code` convention, moved off 2, which is lbc's usage/I/O code):
0 nothing changed, 3 something changed, 1 a topology has errors, 2 usage or I/O problem.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Optional

from .model import Listener, Route, Server, Service, Topology

EXIT_CHANGED = 3

# model field -> topology key (durations are printed as the topology writes them)
_KEYS = {"interval_ms": "interval", "timeout_ms": "timeout", "http_path": "http.path", "http_host": "http.host",
         "expect_status": "http.expect_status", "expect_body": "http.expect_body", "port_name": "port",
         "kind": "kind", "cookie_name": "cookie.name", "cookie_max_age_ms": "cookie.max_age",
         "idle_timeout_ms": "idle_timeout", "max_lifetime_ms": "max_lifetime", "connect_ms": "connect",
         "client_ms": "client", "server_ms": "server", "tunnel_ms": "tunnel", "peak_sessions": "capacity.peak_sessions",
         "peak_users": "capacity.peak_users"}
_SKIP = {"path", "ignore", "name", "servers", "routes", "names_from_file", "declared_names", "unused"}
_TLS_ORDER = ["1.0", "1.1", "1.2", "1.3"]


@dataclass
class Change:
    op: str                              # added | removed | changed
    path: str                            # dotted, in the topology's words: services.app.servers.b.weight
    old: object = None
    new: object = None
    consequences: list[str] = field(default_factory=list)
    where: str = ""                      # file:line:col in the new topology (the old one for removals)

    def to_json(self) -> dict:
        d: dict[str, Any] = {"op": self.op, "path": self.path, "consequences": self.consequences}
        if self.op != "added":
            d["old"] = self.old
        if self.op != "removed":
            d["new"] = self.new
        if self.where:
            d["where"] = self.where
        return d


def duration(ms: Optional[int]) -> Optional[str]:
    if ms is None:
        return None
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _flat(obj, prefix: str = "") -> dict[str, object]:
    """A model object's settings as {topology key: printable value} (nested objects dotted)."""
    out: dict[str, object] = {}
    if obj is None:
        return out
    for f in fields(obj):
        if f.name in _SKIP:
            continue
        value = getattr(obj, f.name)
        key = prefix + _KEYS.get(f.name, f.name)
        if is_dataclass(value):
            out.update(_flat(value, key + "."))
        elif f.name.endswith("_ms"):
            out[key] = duration(value)
        elif isinstance(value, tuple):   # ports are (name, number) pairs; names and hosts are strings
            out[key] = [f"{x[0]}={x[1]}" if isinstance(x, tuple) else x for x in value]
        else:
            out[key] = value
    return out


def _route_key(r: Route) -> str:
    hosts = ", ".join(r.hosts) if r.hosts else "(default route)"
    if r.redirect is not None:
        rd = r.redirect
        return f"{hosts} -> redirect {rd.status} {rd.scheme}://{rd.host or '(same host)'}{rd.port_suffix}"
    where = f"{r.service}/{r.server}" if r.server else r.service
    return f"{hosts} -> {where} port {r.port_name}"


class _Differ:
    def __init__(self, old: Topology, new: Topology, old_doc=None, new_doc=None):
        self.old, self.new = old, new
        self.old_doc, self.new_doc = old_doc, new_doc
        self.changes: list[Change] = []

    def where(self, path: tuple, new: bool = True) -> str:
        doc = self.new_doc if new else self.old_doc
        return str(doc.locate(path)) if doc is not None and path else ""

    def add(self, op, path, old=None, new=None, consequences=(), at=()) -> None:
        self.changes.append(Change(op, path, old, new, list(consequences), self.where(at, op != "removed")))

    def fields(self, prefix: str, old, new, at: tuple, explain, skip: tuple = ()) -> None:
        a, b = _flat(old), _flat(new)
        for key in sorted((set(a) | set(b)) - set(skip), key=lambda k: (k.count("."), k)):
            if a.get(key) != b.get(key):
                self.add("changed", f"{prefix}.{key}", a.get(key), b.get(key), explain(key, old, new),
                         at + tuple(key.split(".")))

    def run(self) -> list[Change]:
        o, n = self.old, self.new
        if o.name != n.name:
            self.add("changed", "name", o.name, n.name, ["labels only (Envoy's node metadata, comments in the files)"])
        self.named("vips", {v.name: v for v in o.vips}, {v.name: v for v in n.vips}, self.vip)
        self.named("certificates", {c.name: c for c in o.certificates}, {c.name: c for c in n.certificates},
                   self.certificate)
        self.named("services", {s.name: s for s in o.services}, {s.name: s for s in n.services}, self.service)
        self.named("listeners", {l.name: l for l in o.listeners}, {l.name: l for l in n.listeners}, self.listener)
        return self.changes

    def named(self, kind: str, old: dict, new: dict, compare) -> None:
        for name in old:
            if name not in new:
                self.add("removed", f"{kind}.{name}", _summary(old[name]), None, _removed(kind, old[name]),
                         old[name].path)
        for name, obj in new.items():
            if name not in old:
                self.add("added", f"{kind}.{name}", None, _summary(obj), _added(kind, obj), obj.path)
            else:
                compare(old[name], obj)

    def vip(self, a, b) -> None:
        if a.address != b.address:
            self.add("changed", f"vips.{b.name}.address", a.address, b.address,
                     [f"every listener on VIP '{b.name}' moves to {b.address}: clients (and DNS) must follow"], b.path)

    def certificate(self, a, b) -> None:
        self.fields(f"certificates.{b.name}", a, b, b.path,
                    lambda key, *_: [f"clients are shown a different certificate ({key} changed)"]
                    if key in ("cert", "names", "not_after") else [])

    def service(self, a: Service, b: Service) -> None:
        base = f"services.{b.name}"
        self.fields(base, a, b, b.path, lambda key, x, y: _service_consequences(key, x, y))
        old_servers, new_servers = {s.name: s for s in a.servers}, {s.name: s for s in b.servers}
        sticky = b.stickiness.mode != "none"
        for name, s in old_servers.items():
            if name not in new_servers:
                what = f"removes server {name}: " + ("its sticky sessions move to the other servers" if sticky
                                                      else "its clients' next connections go to the other servers")
                self.add("removed", f"{base}.servers.{name}", _summary(s), None, [what], s.path)
        for name, s in new_servers.items():
            if name not in old_servers:
                added = [f"adds server {name}: it takes a share of new sessions ({_share(b, s)} of its priority group)"]
                if b.stickiness.mode == "source-ip" or b.balance == "source-hash":
                    added.append("source-IP hashing: some existing clients are mapped to the new server")
                self.add("added", f"{base}.servers.{name}", None, _summary(s), added, s.path)
            else:
                old = old_servers[name]
                self.fields(f"{base}.servers.{name}", old, s, s.path,
                            lambda key, x, y, a=a, b=b: _server_consequences(key, x, y, a, b))

    def listener(self, a: Listener, b: Listener) -> None:
        base = f"listeners.{b.name}"
        # `address` is the VIP's: a changed VIP address is reported once, under vips
        self.fields(base, a, b, b.path, lambda key, x, y: _listener_consequences(key, x, y), skip=("address",))
        old_routes = {_route_key(r): r for r in a.routes}
        new_routes = {_route_key(r): r for r in b.routes}
        for key, r in old_routes.items():
            if key not in new_routes:
                lost = ", ".join(r.hosts) if r.hosts else "requests without a routed host"
                self.add("removed", f"{base}.routes", key, None, [f"{lost}: no longer routed to {r.service or 'the redirect'} "
                                                                   f"on this listener"], r.path)
        for key, r in new_routes.items():
            if key not in old_routes:
                self.add("added", f"{base}.routes", None, key, [], r.path)


def _summary(obj) -> str:
    if isinstance(obj, Server):
        ports = ", ".join(f"{p}" if n == "default" else f"{n}={p}" for n, p in obj.ports)
        return f"{obj.address}:{ports}" + (f" ({obj.state})" if obj.state != "active" else "")
    if isinstance(obj, Listener):
        return f"{obj.address}:{obj.port} {obj.protocol}, TLS {obj.tls.mode}"
    if isinstance(obj, Service):
        return f"{len(obj.servers)} server(s), {obj.balance}"
    return getattr(obj, "address", None) or getattr(obj, "cert", None) or obj.name


def _removed(kind: str, obj) -> list[str]:
    if kind == "listeners":
        return [f"stops serving {obj.address}:{obj.port}: its clients lose access"]
    if kind == "services":
        return [f"service {obj.name} and its {len(obj.servers)} server(s) are gone"]
    return []


def _added(kind: str, obj) -> list[str]:
    if kind == "listeners":
        return [f"starts serving {obj.address}:{obj.port}"]
    return []


def _share(svc: Service, s: Server) -> str:
    tier = [x for x in svc.tier(s.priority) if x.state == "active"]
    total = sum(x.weight for x in tier)
    return f"{round(100 * s.weight / total)}%" if total and s.state == "active" else "0%"


def _service_consequences(key: str, a: Service, b: Service) -> list[str]:
    if key == "stickiness.mode":
        return [f"stickiness {a.stickiness.mode} -> {b.stickiness.mode}: every client is re-balanced once"]
    if key == "stickiness.cookie.name" and a.stickiness.mode == b.stickiness.mode:   # else: the mode line says it
        return ["changes the cookie name: clients' existing cookies are ignored, every session is re-balanced"]
    if key == "balance" and "source-hash" in (a.balance, b.balance):
        return ["the client-to-server mapping changes: most source-IP clients move"]
    if key == "balance":
        return ["new sessions are spread differently; existing sticky sessions stay"]
    if key.startswith("health."):
        return ["health detection changes: how fast a failed server is taken out and put back"]
    if key.startswith("upstream_tls") or key == "proxy_protocol":
        return ["what the servers receive changes: they must accept it before this is applied"]
    return []


def _server_consequences(key: str, a: Server, b: Server, old_svc: Service, new_svc: Service) -> list[str]:
    name = b.name
    if key == "state":
        return {("active", "hold"): [f"puts {name} on hold: no new sessions, its sticky clients stay (drain)"],
                ("active", "down"): [f"takes {name} down: its sessions move to the other servers now"],
                ("hold", "down"): [f"takes {name} down: its remaining sticky sessions move now"],
                }.get((a.state, b.state), [f"{name} takes new sessions again"] if b.state == "active" else [])
    if key == "weight":
        return [f"{name}'s share of new sessions in its priority group: {_share(old_svc, a)} -> {_share(new_svc, b)}"]
    if key == "priority":
        return [f"{name} moves from priority group {a.priority} to {b.priority}"]
    if key in ("address", "ports"):
        moved = [f"{name} is a different endpoint: open connections to the old one end at the reload"]
        if new_svc.stickiness.mode == "cookie":
            moved.append("Envoy's and nginx's cookies hold the server's address: those sticky sessions are re-balanced")
        return moved
    if key == "max_sessions":
        return [f"{name} accepts {b.max_sessions if b.max_sessions is not None else 'unlimited'} concurrent sessions"]
    return []


def _listener_consequences(key: str, a: Listener, b: Listener) -> list[str]:
    if key in ("vip", "port"):
        return [f"clients must connect to {b.address}:{b.port} instead of {a.address}:{a.port}"]
    if key == "tls.min_version":
        old, new = _TLS_ORDER.index(a.tls.min_version), _TLS_ORDER.index(b.tls.min_version)
        if new > old:
            lost = ", ".join(f"TLS {v}" for v in _TLS_ORDER[old:new])
            return [f"tightens the TLS profile: clients that speak only {lost} lose access"]
        return ["loosens the TLS profile: older clients are accepted again"]
    if key == "tls.client_auth":
        if b.tls.client_auth == "require":
            return ["clients without a certificate signed by the client CA lose access"]
        return ["client certificates are no longer required"]
    if key == "tls.mode":
        return ["what clients connect with changes (TLS on/off or who terminates it): clients must follow"]
    if key == "tls.certificates":
        return ["clients are shown a different certificate"]
    if key.startswith("timeouts."):
        attr = key.split(".")[1] + "_ms"
        shorter = getattr(b.timeouts, attr) < getattr(a.timeouts, attr)
        return ["idle connections are closed sooner" if shorter else "idle connections are kept open longer"]
    if key == "protocol":
        return ["the listener switches between HTTP and TCP forwarding"]
    return []


def diff_models(old: Topology, new: Topology, old_doc=None, new_doc=None) -> list[Change]:
    return _Differ(old, new, old_doc, new_doc).run()


def format_text(changes: list[Change], old_name: str, new_name: str) -> str:
    if not changes:
        return f"no changes between {old_name} and {new_name}\n"
    sign = {"added": "+", "removed": "-", "changed": "~"}
    lines = []
    for c in changes:
        if c.op == "changed":
            head = f"~ {c.path}: {_show(c.old)} -> {_show(c.new)}"
        else:
            head = f"{sign[c.op]} {c.path}: {c.new if c.op == 'added' else c.old}"   # a summary, not a value
        lines.append(head + (f"    ({c.where})" if c.where else ""))
        lines.extend(f"    => {text}" for text in c.consequences)
    lines.append(f"{len(changes)} change(s) from {old_name} to {new_name}")
    return "\n".join(lines) + "\n"


def _show(v) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return json.dumps(v) if isinstance(v, str) and (not v or " " in v) else str(v)


def format_json(changes: list[Change], old_name: str, new_name: str) -> str:
    return json.dumps({"old": old_name, "new": new_name, "changed": bool(changes),
                       "changes": [c.to_json() for c in changes]}, indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------ compiled files against a folder

def diff_files(files: dict[str, str], folder: str, owned: Optional[set[str]] = None) -> list[tuple[str, str]]:
    """(relative path, unified diff or a one-line note) for each compiled file that differs from the
    folder's copy. `owned`: files of an earlier lbc write that the new compile no longer has."""
    out = []
    for rel in sorted(set(files) | (owned or set())):
        path = os.path.join(folder, rel)
        current = None
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                current = f.read()
        new = files.get(rel)
        if new == current:
            continue
        if new is None:
            out.append((rel, f"- {rel}: no longer written (removed by the next apply)"))
        elif current is None:
            out.append((rel, f"+ {rel}: new file"))
        else:
            text = "".join(difflib.unified_diff(current.splitlines(True), new.splitlines(True),
                                                f"{folder}/{rel}", f"compiled/{rel}", n=2))
            out.append((rel, text))
    return out


# ------------------------------------------------------------------ the command (registered in cli.py)

def run(files: list[str], target: Optional[str], against: Optional[str], as_json: bool, check, print_result,
        get_target, fail_usage, out, options=None, labels=None) -> int:
    """`lbc diff OLD NEW` or `lbc diff NEW --target T --against DIR`; returns the exit code.
    options: one pipeline Options per file (an environment each); labels: how the text names them."""
    from .pipeline import Options
    options = options or [Options() for _ in files]
    labels = labels or files
    if against is not None:
        if len(files) != 1 or target is None:
            fail_usage("--against DIR compares one topology, compiled with --target, with the folder")
        tgt = get_target(target)
        result = check(files[0], options[0], tgt)
        if result.failed or result.model is None:
            print_result([result])
            return 1
        if not os.path.isdir(against):
            fail_usage(f"{against} is not a folder")
        from .apply import UsageError, deployed_files
        try:
            compiled, owned = deployed_files(result.model, tgt, against)
        except UsageError as e:   # an unreadable manifest in the folder
            fail_usage(str(e))
        found = diff_files(compiled, against, owned)
        if as_json:
            out(json.dumps({"topology": files[0], "target": target, "folder": against, "changed": bool(found),
                            "files": [{"file": rel, "diff": text} for rel, text in found]}, indent=2, sort_keys=True) + "\n")
        else:
            out("".join(text if text.endswith("\n") else text + "\n" for _, text in found)
                or f"{against} already holds what {files[0]} compiles to for {target}\n")
        return EXIT_CHANGED if found else 0
    if len(files) != 2 or target is not None:
        fail_usage("give two topology files (lbc diff OLD NEW), or one with --target T --against DIR")
    results = [check(f, o) for f, o in zip(files, options)]
    if any(r.failed or r.model is None for r in results):
        print_result(results)
        return 1
    old, new = results
    changes = diff_models(old.model, new.model, old.doc, new.doc)
    out((format_json if as_json else format_text)(changes, labels[0], labels[1]))
    return EXIT_CHANGED if changes else 0
