#!/usr/bin/env python3
"""Whole-process cost of `lbc validate` and `lbc compile -t T` versus topology size (issue 18's table).

    python bench/scale.py                          # 1k and 10k, median of 5
    python bench/scale.py --sizes 1000,10000,50000 --reps 5 --lbc .venv/bin/lbc

Each command runs as its own process (interpreter start, imports and teardown included, as users
pay them) on a topology from gen.py with one service per host; output goes to a temporary folder
(compile) and diagnostics to /dev/null. Reported per command and size, medians of the runs: wall
seconds, CPU seconds (user + system of the whole process, from wait4) and peak RSS (MiB, wait4).
On a shared machine the wall time grows with other tenants' load while the CPU time barely does:
compare CPU figures across runs, wall figures only within one run. Commands of one size run
interleaved, round after round (ABBA), so a burst of load touches every command alike. The last
column is the growth from 10,000 to 50,000 (CPU; issue 18 asks for at most 6x), and the load
average at the start and end of the run is printed with the table.
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


def run_once(argv: list[str], timeout: float) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one process."""
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
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def commands(lbc: str, topo: str, out: str) -> dict[str, list[str]]:
    cmds = {"validate": [lbc, "validate", "-q", topo]}
    for t in TARGETS:
        cmds[f"compile {t}"] = [lbc, "compile", "-q", topo, "-t", t, "-o", os.path.join(out, t)]
    return cmds


def measure(lbc: str, sizes: list[int], reps: int, only: list[str] | None, before: str | None = None,
            features: bool = False) -> dict:
    results: dict = {}
    folder = tempfile.mkdtemp(prefix="lbc-scale-")
    try:
        for n in sizes:
            topo = os.path.join(folder, f"h{n}.yaml")
            with open(topo, "w", encoding="utf-8") as f:
                yaml.safe_dump(gen.topology(n, n, features=features), f, sort_keys=False)
            cmds = commands(lbc, topo, os.path.join(folder, "out"))
            if only:
                cmds = {k: v for k, v in cmds.items() if k in only}
            if before:  # another lbc (e.g. an older checkout) interleaved with this one: a fair ratio
                cmds = {f"{label}{k}": v for k, argv in cmds.items()
                        for label, v in (("before: ", [before] + argv[1:]), ("", argv))}
            runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in cmds}
            for r in range(reps):
                order = list(cmds) if r % 2 == 0 else list(reversed(cmds))  # ABBA
                for name in order:
                    runs[name].append(run_once(cmds[name], timeout=600))
            for name, rs in runs.items():
                wall, cpu, rss = (statistics.median(r[i] for r in rs) for i in range(3))
                results[(name, n)] = (wall, cpu, rss)
                print(f"  {name:<24} {n:>6}: wall {wall:6.2f} s  CPU {cpu:6.2f} s  {rss:6.0f} MiB",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def table(results: dict, sizes: list[int], reps: int, load: str, what: str = "") -> str:
    names = list(dict.fromkeys(k[0] for k in results))
    growth = 10_000 in sizes and 50_000 in sizes
    head = ("| command | " + " | ".join(f"{n:,}: wall s / CPU s / RSS MiB" for n in sizes)
            + (" | 50k/10k (CPU) |" if growth else " |"))
    lines = [f"Whole process, {what}median of {reps} runs (interleaved); load average {load}.", head,
             "|" + "---|" * (len(sizes) + 1 + growth)]
    for name in names:
        cells = []
        for n in sizes:
            wall, cpu, rss = results[(name, n)]
            cells.append(f"{wall:.2f} / {cpu:.2f} / {rss:.0f}")
        if growth:
            cells.append(f"{results[(name, 50_000)][1] / results[(name, 10_000)][1]:.1f}x")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lbc", default=shutil.which("lbc") or "lbc")
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", help="comma-separated command names, e.g. 'validate,compile envoy'")
    ap.add_argument("--before", help="another lbc executable to run interleaved with --lbc (rows 'before: ...')")
    ap.add_argument("--features", action="store_true",
                    help="every service with an HTTP health check and cookie stickiness (gen.py --features)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    before_load = load_average()
    results = measure(a.lbc, sizes, a.reps, a.only.split(",") if a.only else None, a.before, a.features)
    what = "every service with a health check and cookie stickiness; " if a.features else ""
    print(table(results, sizes, a.reps, f"{before_load} at the start, {load_average()} at the end", what))
    return 0


if __name__ == "__main__":
    sys.exit(main())
