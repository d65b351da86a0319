#!/usr/bin/env python3
"""Hostile-input bombs: each one run as `lbc validate` (or `lbc compile`) in its own process,
measuring wall time and peak memory (the child's maxrss from wait4). Goal: every bomb refused
with a diagnostic (exit 1) in under 1 s and 200 MB.

    python bench/bombs.py            # a table; exit 1 if a bomb misses the goal
    python bench/bombs.py --json     # the same, as JSON

tests/test_bombs.py runs the same cases with looser limits (CI machines are shared).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

LBC = [sys.executable, "-c", "from lbc.cli import main; main()"]
MIB = 1024 * 1024
BASE = ("lbc: 1\nvips: {v: {address: 127.0.0.50}}\n"
        "listeners: [{name: l, vip: v, port: 80, routes: [{service: app}]}]\n")


def _services(hosts_yaml: str) -> str:
    return ("services:\n  app:\n    servers:\n      - {name: s1, address: 127.0.0.61, port: 8080}\n"
            f"    description: {hosts_yaml}\n")


def bombs(tmp: str) -> dict[str, list[str]]:
    """{name: argv after `lbc`}; the files are written under tmp."""
    def put(name: str, text: str) -> str:
        path = os.path.join(tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path
    out: dict[str, list[str]] = {}
    big = "x" * (9 * MIB)
    out["999 aliases of a 9 MiB scalar (host list)"] = ["validate", put("alias9m.yaml", (
        "lbc: 1\nbig: &b " + big + "\nvips: {v: {address: 127.0.0.50}}\n"
        "listeners: [{name: l, vip: v, port: 80, routes: [{service: app, hosts: [" + ", ".join(["*b"] * 999)
        + "]}]}]\nservices: {app: {servers: [{name: s1, address: 127.0.0.61, port: 8080}]}}\n"))]
    out["999 aliases of a 1 MiB text"] = ["validate", put("alias1m.yaml", (
        "lbc: 1\nx-text: &t " + "y" * MIB + "\nvips: {v: {address: 127.0.0.50}}\n"
        "listeners: [{name: l, vip: v, port: 80, routes: [{service: app}]}]\n"
        "services: {app: {description: [" + ", ".join(["*t"] * 999) + "], servers: "
        "[{name: s1, address: 127.0.0.61, port: 8080}]}}\n"))]
    keys = ", ".join(f"k{i:05d}: {'z' * 230}" for i in range(20_000))
    out["5 MB single line, 20,000 errors"] = ["validate", put("oneline.yaml", "{lbc: 1, " + keys + "}\n")]
    laughs = ["lbc: 1", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        laughs.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    out["billion laughs (9 levels)"] = ["validate", put("laughs.yaml", "\n".join(laughs) + "\n")]
    out["nesting 50,000 deep"] = ["validate", put("deep.yaml", "[" * 50_000 + "]" * 50_000 + "\n")]
    out["integer of 5,000 digits"] = ["validate", put("digits.yaml", BASE + _services("x").replace(
        "port: 8080", "port: " + "9" * 5000))]
    fifo = os.path.join(tmp, "fifo.yaml")
    os.mkfifo(fifo)
    out["FIFO with no writer as the topology"] = ["validate", fifo]
    os.mkfifo(os.path.join(tmp, "cert.pem"))
    out["FIFO as a certificate path"] = ["validate", "--check-files", put("fifocert.yaml", (
        "lbc: 1\nvips: {v: {address: 127.0.0.50}}\ncertificates: {c: {cert: cert.pem, key: cert.pem}}\n"
        "services: {app: {servers: [{name: s1, address: 127.0.0.61, port: 8080}]}}\n"
        "listeners: [{name: l, vip: v, port: 443, tls: {mode: terminate, certificates: [c]}, "
        "routes: [{service: app}]}]\n"))]
    out["/dev/zero as the topology"] = ["validate", "/dev/zero"]
    return out


def run_one(argv: list[str], timeout: float = 60) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(LBC + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN, so measure by difference
    return {"exit": proc.returncode, "seconds": round(elapsed, 3), "stderr": err.decode(errors="replace")[-400:],
            "stdout_bytes": len(out)}


def measure() -> list[dict]:
    import resource
    rows = []
    with tempfile.TemporaryDirectory(prefix="lbc-bombs-") as tmp:
        for name, argv in bombs(tmp).items():
            # each bomb in its own grandchild so the peak RSS is that bomb's alone
            code = ("import json, os, resource, sys; sys.path.insert(0, %r); import bombs; "
                    "r = bombs.run_one(%r); "
                    "r['peak_mb'] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1); "
                    "print(json.dumps(r))") % (os.path.dirname(os.path.abspath(__file__)), argv)
            r = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                          check=True).stdout)
            r["bomb"] = name
            r["ok"] = r["exit"] == 1 and r["seconds"] < 1.0 and r["peak_mb"] < 200
            rows.append(r)
    del resource
    return rows


def main() -> int:
    rows = measure()
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'bomb':<42} {'exit':>4} {'time s':>7} {'peak MB':>8}  goal")
        for r in rows:
            print(f"{r['bomb']:<42} {r['exit']:>4} {r['seconds']:>7.3f} {r['peak_mb']:>8.1f}  "
                  f"{'ok' if r['ok'] else 'MISSED'}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
