#!/usr/bin/env python3
"""Benchmarks (kept out of the test run): compile time at 1k / 10k hosts for every target, and
HAProxy throughput to the last of 1 vs 10,000 routed host names (CONFORMANCE S21).

    python bench/run.py                 # everything
    python bench/run.py --compile-only  # or --haproxy-only

Compile: lbc's front end (load, schema, model, rules, capabilities) and the target's render,
in-process, median of --repeat runs; topologies from gen.py with one service per host.
Throughput: a real HAProxy runs the compiled config; its two servers are a second HAProxy that
answers every request itself (so the servers are never the bottleneck); --clients processes
each send --requests requests on one keep-alive connection to the LAST host, the configs taking
turns for --rounds rounds. Everything binds 127.0.0.x; every process is stopped by its PID.
"""
from __future__ import annotations

import argparse
import gc
import http.client
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import yaml  # noqa: E402

import gen  # noqa: E402
from lbc import targets  # noqa: E402
from lbc.pipeline import Options, check_file, render  # noqa: E402

VIP = "127.0.0.40"
SERVERS = ("127.0.0.61", "127.0.0.62")


def write_topology(folder: str, hosts: int, services: int, **kw) -> str:
    path = os.path.join(folder, f"bench-{hosts}h-{services}s.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(gen.topology(hosts, services, **kw), f, sort_keys=False)
    return path


# ---------------------------------------------------------------- compile time

def compile_once(path: str, target_name: str) -> tuple[float, float, int]:
    tgt = targets.get(target_name)
    t0 = time.perf_counter()
    result = check_file(path, Options(), tgt)
    t1 = time.perf_counter()
    if result.failed:
        raise RuntimeError(f"{target_name} refused {path}: {[str(d) for d in result.diagnostics if d.fails][:3]}")
    files = render(result.model, tgt)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, sum(len(v) for v in files.values())


def bench_compile(folder: str, sizes: list[int], repeat: int) -> None:
    print(f"compile time (median of {repeat}; front end = load+schema+model+rules, render = the target)")
    print(f"{'target':<8} {'hosts':>6} {'front end s':>12} {'render s':>9} {'total s':>8} {'output':>9}")
    paths = {n: write_topology(folder, n, n) for n in sizes}
    for name in targets.available():
        for n in sizes:
            runs = []
            for _ in range(repeat):
                gc.collect()
                runs.append(compile_once(paths[n], name))
            fe = statistics.median(r[0] for r in runs)
            rd = statistics.median(r[1] for r in runs)
            print(f"{name:<8} {n:>6} {fe:>12.2f} {rd:>9.2f} {fe + rd:>8.2f} {runs[0][2] / 1e6:>7.2f}MB", flush=True)


# ---------------------------------------------------------------- HAProxy throughput

def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_listening(proc: subprocess.Popen, address: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with {proc.returncode}; see haproxy.log in {proc.args}")
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout} s")


def start_haproxy(folder: str, procs: list) -> subprocess.Popen:
    log = open(os.path.join(folder, "haproxy.log"), "wb")
    proc = subprocess.Popen(["haproxy", "-db", "-f", "haproxy.cfg"], cwd=folder, stdout=log, stderr=log)
    log.close()
    procs.append(proc)
    return proc


FAST_SERVER = """defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend answer
{binds}
    http-request return status 200 content-type text/plain string ok
"""


ACL_CHAIN = """defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind {vip}:{port}
{rules}
backend pool
{servers}
"""


def client_worker(args) -> float:
    address, port, host, n = args
    conn = http.client.HTTPConnection(address, port, timeout=10)
    t0 = time.perf_counter()
    for _ in range(n):
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{host}: {r.status}")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def run_chunk(pool, address: str, port: int, host: str, clients: int, requests: int) -> float:
    """Seconds for `clients` processes to send `requests` each."""
    t0 = time.perf_counter()
    pool.map(client_worker, [(address, port, host, requests)] * clients)
    return time.perf_counter() - t0


def bench_haproxy(folder: str, clients: int, requests: int, rounds: int) -> None:
    if not shutil.which("haproxy"):
        print("haproxy is not installed: no throughput figures")
        return
    procs: list[subprocess.Popen] = []
    try:
        ports = [free_port(a) for a in SERVERS]
        srv_dir = os.path.join(folder, "servers")
        os.makedirs(srv_dir, exist_ok=True)
        with open(os.path.join(srv_dir, "haproxy.cfg"), "w") as f:
            f.write(FAST_SERVER.format(binds="\n".join(f"    bind {a}:{p}" for a, p in zip(SERVERS, ports))))
        p = start_haproxy(srv_dir, procs)
        for a, port in zip(SERVERS, ports):
            wait_listening(p, a, port)
        configs = {}
        tgt = targets.get("haproxy")
        for label, hosts, services in (("1 host", 1, 1), ("10,000 hosts / 1 service", 10_000, 1),
                                       ("10,000 hosts / 10,000 services", 10_000, 10_000)):
            port = free_port(VIP)
            path = write_topology(folder, hosts, services, vip=VIP, port=port, servers=tuple(zip(SERVERS, ports)))
            result = check_file(path, Options(), tgt)
            assert not result.failed, [str(d) for d in result.diagnostics if d.fails]
            out = os.path.join(folder, f"haproxy-{hosts}h-{services}s")
            for rel, text in render(result.model, tgt).items():
                os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
                with open(os.path.join(out, rel), "w", encoding="utf-8") as f:
                    f.write(text)
            t0 = time.perf_counter()
            lb = start_haproxy(out, procs)
            wait_listening(lb, VIP, port)
            configs[label] = (port, gen.host(hosts - 1), time.perf_counter() - t0)
        # Control (not lbc output): the same 10,000 hosts as one ACL per host, the layout lbc avoids;
        # it shows the measurement can see routing cost.
        port = free_port(VIP)
        ctl = os.path.join(folder, "haproxy-acl-chain")
        os.makedirs(ctl, exist_ok=True)
        with open(os.path.join(ctl, "haproxy.cfg"), "w") as f:
            f.write(ACL_CHAIN.format(vip=VIP, port=port, rules="\n".join(
                f"    use_backend pool if {{ hdr(host) -i {gen.host(i)} }}" for i in range(10_000)),
                servers="\n".join(f"    server s{k} {a}:{p}" for k, (a, p) in enumerate(zip(SERVERS, ports), 1))))
        t0 = time.perf_counter()
        lb = start_haproxy(ctl, procs)
        wait_listening(lb, VIP, port)
        configs["control: 10,000 ACLs (not lbc)"] = (port, gen.host(9_999), time.perf_counter() - t0)
        # Short chunks in alternating order (ABC, CBA, ...): load from elsewhere on the machine
        # falls on every config alike; each config's rate is its total requests over its total time.
        spent: dict[str, list[float]] = {k: [] for k in configs}
        with multiprocessing.get_context("fork").Pool(clients) as pool:
            for port, host, _ in configs.values():          # warm up
                run_chunk(pool, VIP, port, host, clients, requests)
            for i in range(rounds):
                order = list(configs) if i % 2 == 0 else list(configs)[::-1]
                for label in order:
                    port, host, _ = configs[label]
                    spent[label].append(run_chunk(pool, VIP, port, host, clients, requests))
        per_chunk = clients * requests
        base = per_chunk * rounds / sum(spent["1 host"])
        print(f"\nHAProxy req/s to the last host ({clients} client processes, {rounds} alternating chunks of "
              f"{requests} keep-alive requests each per config)")
        for label, (_, _host, start) in configs.items():
            r = per_chunk * rounds / sum(spent[label])
            chunk_rates = [per_chunk / t for t in spent[label]]
            print(f"  {label:<32} {r:>7.0f} req/s (chunks {min(chunk_rates):.0f}-{max(chunk_rates):.0f})  "
                  f"ratio {r / base:.2f}  listening {start:.2f} s after start")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compile-only", action="store_true")
    ap.add_argument("--haproxy-only", action="store_true")
    ap.add_argument("--sizes", default="1000,10000", help="host counts for the compile benchmark")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--requests", type=int, default=500, help="requests per client per chunk")
    ap.add_argument("--rounds", type=int, default=30, help="chunks per config")
    a = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="lbc-bench-")
    try:
        if not a.haproxy_only:
            bench_compile(folder, [int(s) for s in a.sizes.split(",")], a.repeat)
        if not a.compile_only:
            bench_haproxy(folder, a.clients, a.requests, a.rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
