"""Python side of the iRule harness: compiled bigip.conf in, simulated decisions out.

The pools (members, priority groups, states), the virtual's default pool and the `ltm rule`
texts are read from the compiled bigip.conf with lbc's own tmsh parser, so the harness runs the
bytes lbc ships. Each batch of requests runs in one `tclsh` process (bounded by a timeout).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from lbc.targets.f5_tmsh import Obj, parse

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "harness.tcl")
TCLSH = shutil.which("tclsh")


def tcl_quote(s: str) -> str:
    """A Tcl word for the driver script (test inputs, not lbc output)."""
    return "{" + s + "}" if s and all(c not in "{}\\\n" for c in s) else '"' + "".join(
        f"\\u{ord(c):04x}" for c in s) + '"'


def _block(body: list, key: str):
    return next((v for k, v in body if k == key), None)


@dataclass
class F5Sim:
    """The virtual server of one listener, with its pools, ready to take simulated traffic."""
    conf: str
    listener: str
    states: dict = field(default_factory=dict)   # (pool path, address, port) -> state override

    def __post_init__(self):
        objs, _ = parse(self.conf)
        self.objs = objs
        vs = [o for o in objs if o.kind == "ltm virtual" and o.name.endswith("." + self.listener) and o.name.count(".") == 1 + self.listener.count(".")]
        if len(vs) != 1:
            raise KeyError(f"no single virtual server for listener {self.listener}")
        self.virtual: Obj = vs[0]
        rules = {o.name: o.raw for o in objs if o.kind == "ltm rule"}
        self.rule_names = [k for k, _ in (_block(self.virtual.body, "rules") or [])]
        self.rules = [rules[n] for n in self.rule_names]
        self.default_pool = _block(self.virtual.body, "pool") or ""
        self.l7 = any(k.endswith(".http") for k, _ in _block(self.virtual.body, "profiles"))
        self.pools = {o.name: o for o in objs if o.kind == "ltm pool"}
        self.profiles = [o.name for o in objs if o.kind.startswith("ltm profile")]
        self.data_groups = {o.name: [n for n, _ in (_block(o.body, "records") or [])]
                            for o in objs if o.kind == "ltm data-group internal"}

    def pool_of(self, service: str, port: str = "default") -> str:
        return next(n for n in self.pools if n.endswith(f".{service}.{port}.pool"))

    def members(self, pool: str) -> list[dict]:
        out = []
        for name, body in _block(self.pools[pool].body, "members"):
            tail = name.split("/", 2)[-1]
            addr, _, port = tail.rpartition("." if tail.count(":") > 1 else ":")
            state = "up"
            if _block(body, "session") == "user-disabled":
                state = "disabled"
            if _block(body, "state") == "user-down":
                state = "offline"
            state = self.states.get((pool, addr, int(port)), state)
            out.append({"address": addr, "port": int(port), "pg": int(_block(body, "priority-group") or 0),
                        "state": state})
        return out

    def set_state(self, pool: str, address: str, port: int, state: str) -> None:
        if not any(m["address"] == address and m["port"] == port for m in self.members(pool)):
            raise KeyError(f"{pool} has no member {address}:{port}")
        self.states[(pool, address, port)] = state

    def script(self, requests: list[dict]) -> str:
        lines = [f"source {tcl_quote(HARNESS)}"]
        for name, obj in self.pools.items():
            min_active = int(_block(obj.body, "min-active-members") or 0)
            members = " ".join("{" + " ".join(f"{k} {tcl_quote(str(v))}" for k, v in m.items()) + "}"
                               for m in self.members(name))
            lines.append(f"::sim::pool {tcl_quote(name)} {min_active} {{{members}}}")
        for p in self.profiles:
            lines.append(f"::sim::profile {tcl_quote(p)}")
        for name, nets in self.data_groups.items():
            lines.append(f"::sim::datagroup {tcl_quote(name)} {{{' '.join(nets)}}}")
        rules = " ".join(tcl_quote(r) for r in self.rules)
        lines.append(f"::sim::virtual {tcl_quote(self.default_pool)} {int(self.l7)} [list {rules}]")
        for r in requests:
            kind = r.get("kind", "http")
            opts = []
            for key in ("client", "cport", "vip", "vport", "host", "path", "query"):
                if key in r:
                    opts.append(f"-{key} {tcl_quote(str(r[key]))}")
            if r.get("persist"):
                opts.append(f"-persist {{{r['persist'][0]} {r['persist'][1]}}}")
            if kind == "tcp":
                opts.append("-chunks {" + " ".join(c.hex() for c in r.get("chunks", [])) + "}")
            lines.append(f"::sim::emit [::sim::{kind} {' '.join(opts)}]")
        return "\n".join(lines) + "\n"

    def run(self, requests: list[dict]) -> list[dict]:
        out = run_tcl(self.script(requests))
        results = [json.loads(l[len("RESULT "):]) for l in out.splitlines() if l.startswith("RESULT ")]
        if len(results) != len(requests):
            raise RuntimeError(f"harness gave {len(results)} results for {len(requests)} requests:\n{out}")
        for res in results:
            if res.get("kind") == "server":
                res["target"] = f"{res['member'][0]}:{res['member'][1]}"
        return results

    def http(self, host: str, **kw) -> dict:
        return self.run([dict(kw, kind="http", host=host)])[0]

    def tcp(self, chunks: list[bytes], **kw) -> dict:
        return self.run([dict(kw, kind="tcp", chunks=chunks)])[0]


def run_tcl(script: str, timeout: float = 60) -> str:
    if TCLSH is None:
        raise RuntimeError("tclsh is not installed")
    with tempfile.TemporaryDirectory(prefix="lbc-f5-") as tmp:
        path = os.path.join(tmp, "run.tcl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        # a script file, not stdin: tclsh then stops at the first error with exit status 1
        p = subprocess.run([TCLSH, path], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"tclsh failed ({p.returncode}):\n{p.stderr}\n{p.stdout}")
    return p.stdout


def lint(rule_text: str) -> list[str]:
    """The harness's lint (Tcl 8.4 constructs only, no iRule-only operators) on one rule."""
    out = run_tcl(f"source {tcl_quote(HARNESS)}\nforeach p [::sim::lint {tcl_quote(rule_text)}] {{ puts \"LINT $p\" }}\n")
    return [l[len("LINT "):] for l in out.splitlines() if l.startswith("LINT ")]
