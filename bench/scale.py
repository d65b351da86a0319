#!/usr/bin/env python3
"""Whole-process cost of `lbc validate` and `lbc compile -t T` versus topology size (issue 18's table).

    python bench/scale.py                          # 1k and 10k, median of 5
    python bench/scale.py --sizes 1000,10000,50000 --reps 5 --lbc .venv/bin/lbc

Each command runs as its own process (interpreter start, imports and teardown included, as users
pay them) on a topology from gen.py with one service per host; output goes to a temporary folder
(compile) and diagnostics to /dev/null. Reported: wall seconds min / median and the peak RSS (MiB,
from wait4) of the median run. Commands of one size run interleaved, round after round, so a burst
of load from elsewhere on a shared machine touches every command alike; read the medians.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen  # noqa: E402
import yaml  # noqa: E402

TARGETS = ("haproxy", "envoy", "nginx", "f5", "f5-as3")


def run_once(argv: list[str], timeout: float) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise RuntimeError(f"timed out: {' '.join(argv)}")
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: warnings/errors in the topology are not expected but not a crash
        raise RuntimeError(f"exit {code}: {' '.join(argv)}")
    proc.returncode = code
    return wall, usage.ru_maxrss / 1024


def commands(lbc: str, topo: str, out: str) -> dict[str, list[str]]:
    cmds = {"validate": [lbc, "validate", "-q", topo]}
    for t in TARGETS:
        cmds[f"compile {t}"] = [lbc, "compile", "-q", topo, "-t", t, "-o", os.path.join(out, t)]
    return cmds


def measure(lbc: str, sizes: list[int], reps: int, only: list[str] | None, before: str | None = None) -> dict:
    results: dict = {}
    folder = tempfile.mkdtemp(prefix="lbc-scale-")
    try:
        for n in sizes:
            topo = os.path.join(folder, f"h{n}.yaml")
            with open(topo, "w", encoding="utf-8") as f:
                yaml.safe_dump(gen.topology(n, n), f, sort_keys=False)
            cmds = commands(lbc, topo, os.path.join(folder, "out"))
            if only:
                cmds = {k: v for k, v in cmds.items() if k in only}
            if before:  # another lbc (e.g. an older checkout) interleaved with this one: a fair ratio
                cmds = {f"{label}{k}": v for k, argv in cmds.items()
                        for label, v in (("before: ", [before] + argv[1:]), ("", argv))}
            runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
            for r in range(reps):
                order = list(cmds) if r % 2 == 0 else list(reversed(cmds))  # ABBA
                for name in order:
                    runs[name].append(run_once(cmds[name], timeout=600))
            for name, rs in runs.items():
                walls = sorted(w for w, _ in rs)
                med = statistics.median(walls)
                rss = statistics.median(m for _, m in rs)
                results[(name, n)] = (walls[0], med, rss)
                print(f"  {name:<16} {n:>6}: {walls[0]:6.2f} / {med:6.2f} s  {rss:6.0f} MiB", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def table(results: dict, sizes: list[int], reps: int) -> str:
    names = list(dict.fromkeys(k[0] for k in results))
    head = "| command | " + " | ".join(f"{n:,} hosts: min / median s, RSS MiB" for n in sizes) + " |"
    lines = [f"Whole process, {reps} runs each (interleaved); the machine may be shared: read medians.", head,
             "|" + "---|" * (len(sizes) + 1)]
    for name in names:
        cells = []
        for n in sizes:
            lo, med, rss = results[(name, n)]
            cells.append(f"{lo:.2f} / {med:.2f}, {rss:.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lbc", default=shutil.which("lbc") or "lbc")
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", help="comma-separated command names, e.g. 'validate,compile envoy'")
    ap.add_argument("--before", help="another lbc executable to run interleaved with --lbc (rows 'before: ...')")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    results = measure(a.lbc, sizes, a.reps, a.only.split(",") if a.only else None, a.before)
    print(table(results, sizes, a.reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
