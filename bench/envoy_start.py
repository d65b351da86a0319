#!/usr/bin/env python3
"""Envoy start-up on lbc's output: launch until the first 200 for the last of N hosts, and RSS.

    python bench/envoy_start.py --hosts 10000 --reps 3 [--before OLD_LBC]

With --before, an older lbc's envoy.json of the same topology starts in turn with the current one
(ABBA), so load from elsewhere on a shared machine falls on both alike. Binds 127.0.0.40 and the
servers' addresses only; every Envoy is stopped by its PID.
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
from serve import LBC_VIP, SERVERS, envoy_argv, free_port, start_servers, stop, wait_200  # noqa: E402


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lbc", default=shutil.which("lbc") or "lbc")
    ap.add_argument("--before")
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lbc-envoy-start-")
    servers: list = []
    try:
        sport = start_servers(work, servers)
        port = free_port(LBC_VIP)
        topo = os.path.join(work, "topology.yaml")
        with open(topo, "w") as f:
            yaml.safe_dump(gen.topology(a.hosts, a.hosts, vip=LBC_VIP, port=port,
                                        servers=tuple((s, sport) for s in SERVERS)), f, sort_keys=False)
        lbcs = {"after": a.lbc} | ({"before": a.before} if a.before else {})
        folders = {}
        for label, lbc in lbcs.items():
            folders[label] = os.path.join(work, label)
            subprocess.run([lbc, "compile", "-q", topo, "-t", "envoy", "-o", folders[label]], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in lbcs}
        last = gen.host(a.hosts - 1)
        for r in range(a.reps):
            for label in (list(lbcs) if r % 2 == 0 else list(reversed(lbcs))):
                procs: list = []
                t0 = time.perf_counter()
                proc = subprocess.Popen(envoy_argv(), cwd=folders[label], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                procs.append(proc)
                try:
                    wait_200(LBC_VIP, port, last, proc, timeout=120)
                    runs[label].append((time.perf_counter() - t0, rss_mib(proc.pid)))
                finally:
                    stop(procs)
        for label, rs in runs.items():
            size = os.path.getsize(os.path.join(folders[label], "envoy.json")) / 1e6
            print(f"| {label} | {a.hosts:,} | {min(t for t, _ in rs):.2f} / {statistics.median(t for t, _ in rs):.2f} s "
                  f"| {statistics.median(m for _, m in rs):.0f} MiB | {size:.1f} MB |")
    finally:
        stop(servers)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
