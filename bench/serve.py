#!/usr/bin/env python3
"""Proxy CPU per request: lbc's output against a hand-written best-practice config, same 10,000 hosts.

    python bench/serve.py                        # haproxy, nginx, envoy; 6 rounds of 2 s
    python bench/serve.py --proxies nginx --hosts 10000 --rounds 10 --seconds 3

For each proxy, two processes run side by side: lbc's config on 127.0.0.40 and a hand-written one
on 127.0.0.41, with the same forwarded headers and failover (HAProxy: one `map()` line and a backend per service
with lbc's redispatch and retries, `--hand-minimal` without them; nginx: a server_name block and
an upstream with `keepalive` per host, `Connection ""` to servers; Envoy: one virtual host with one
route and a plain cluster per service). The servers are an HAProxy answering 200 itself on
127.0.0.61/62. wrk (Debian package `wrk`) loads the LAST host; the two configs take turns (ABBA) for
--rounds rounds. Measured: the proxy's own CPU time (utime+stime of the process and its workers,
from /proc) over the requests wrk completed. The machine may be shared: the ratio lbc/hand of
each round is reported as median (min-max); req/s are bounded by the whole machine.
Everything binds 127.0.0.x; every process is stopped by its PID.

--sticky (nginx only): every service has cookie stickiness and wrk sends the cookie that pins the
first server. The hand-written config pins the same way a careful operator would: one `map` of
$cookie_LBSRV to a named location, per host a named location per server with a literal proxy_pass,
and a `map` of $upstream_addr for the Set-Cookie.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen  # noqa: E402
import yaml  # noqa: E402

LBC_VIP, HAND_VIP = "127.0.0.40", "127.0.0.41"
SERVERS = ("127.0.0.61", "127.0.0.62")
TICK = os.sysconf("SC_CLK_TCK")


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_200(address: str, port: int, host: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection((address, port), timeout=1) as s:
                s.sendall(request)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no 200 from {address}:{port} for {host} after {timeout} s")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants (nginx's workers)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def wrk(address: str, port: int, host: str, seconds: float, cookie: str = "") -> int:
    extra = ["-H", f"Cookie: {cookie}"] if cookie else []
    out = subprocess.run(["wrk", "-t1", "-c20", f"-d{seconds:g}s", "-H", f"Host: {host}", *extra, f"http://{address}:{port}/"],
                         capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    return int(re.search(r"(\d+) requests in", out).group(1))


# ---------------------------------------------------------------- hand-written configs

def hand_haproxy(folder: str, hosts: int, port: int, sport: int, minimal: bool = False) -> list[str]:
    with open(os.path.join(folder, "hosts.map"), "w") as f:
        f.writelines(f"{gen.host(i)} b{i}\n" for i in range(hosts))
    backends = "".join(f"backend b{i}\n    server s1 {SERVERS[0]}:{sport}\n    server s2 {SERVERS[1]}:{sport}\n"
                       for i in range(hosts))
    with open(os.path.join(folder, "haproxy.cfg"), "w") as f:
        # The same failover as lbc's (a request to a server that just died goes to another): the L7
        # retries keep a copy of each request, ~10 % of HAProxy's CPU per request at this size, so a
        # config without them is not the same deployment (--hand-minimal measures that one).
        retry = "" if minimal else ("    retries 3\n    option redispatch 1\n"
                                    "    retry-on conn-failure empty-response response-timeout\n")
        f.write("defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n"
                + retry +
                f"frontend web\n    bind {HAND_VIP}:{port}\n"
                "    option forwardfor\n    http-request set-header X-Forwarded-Proto http\n"
                "    use_backend %[req.hdr(host),field(1,:),lower,map(hosts.map)]\n" + backends)
    return ["haproxy", "-db", "-f", "haproxy.cfg"]


def hand_nginx(folder: str, hosts: int, port: int, sport: int, sticky: bool = False) -> list[str]:
    parts = ["pid nginx.pid;\nerror_log error.log warn;\nworker_processes auto;\nworker_rlimit_nofile 8192;\n"
             "events { worker_connections 4096; }\nhttp {\n    access_log access.log;\n"
             "    client_body_temp_path client_body_temp;\n    proxy_temp_path proxy_temp;\n"
             "    server_names_hash_max_size 32768;\n    server_names_hash_bucket_size 64;\n"
             "    proxy_http_version 1.1;\n    proxy_set_header Host $http_host;\n"
             "    proxy_set_header Connection \"\";\n"
             "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
             "    proxy_set_header X-Forwarded-Proto $scheme;\n"]
    if sticky:
        parts.append(hand_nginx_sticky_maps(sport))
    for i in range(hosts):
        parts.append(f"    upstream u{i} {{ server {SERVERS[0]}:{sport}; server {SERVERS[1]}:{sport}; keepalive 16; }}\n")
        if sticky:
            parts.append(hand_nginx_sticky_server(i, port, sport))
        else:
            parts.append(f"    server {{ listen {HAND_VIP}:{port}; server_name {gen.host(i)}; "
                         f"location / {{ proxy_pass http://u{i}; }} }}\n")
    parts.append("}\n")
    with open(os.path.join(folder, "nginx.conf"), "w") as f:
        f.write("".join(parts))
    return nginx_argv(folder)


def hand_nginx_sticky_maps(sport: int) -> str:
    """Shared by every host: the cookie's value names a named location; the answering server names the cookie."""
    pins = "".join(f"s{k} @s{k}; " for k in range(1, len(SERVERS) + 1))
    cookies = "".join(f'"~{re.escape(a)}:{sport}$" "LBSRV=s{k}; Path=/; HttpOnly"; '
                      for k, a in enumerate(SERVERS, 1))
    return (f"    map $cookie_LBSRV $hand_pin {{ {pins}default @all; }}\n"
            f"    map $upstream_addr $hand_cookie {{ {cookies}default \"\"; }}\n")


def hand_nginx_sticky_server(i: int, port: int, sport: int) -> str:
    ups = "".join(f"    upstream u{i}s{k} {{ server {a}:{sport}; keepalive 16; }}\n" for k, a in enumerate(SERVERS, 1))
    named = "".join(f"location @s{k} {{ proxy_pass http://u{i}s{k}; add_header Set-Cookie $hand_cookie; }} "
                    for k in range(1, len(SERVERS) + 1))
    return (ups + f"    server {{ listen {HAND_VIP}:{port}; server_name {gen.host(i)}; "
            f"location / {{ error_page 418 = $hand_pin; return 418; }} "
            f"location @all {{ proxy_pass http://u{i}; add_header Set-Cookie $hand_cookie; }} {named}}}\n")


def hand_envoy(folder: str, hosts: int, port: int, sport: int) -> list[str]:
    vhosts = [{"name": f"h{i}", "domains": [gen.host(i)], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": f"c{i}"}}]}
              for i in range(hosts)]
    clusters = [{"name": f"c{i}", "type": "STATIC", "connect_timeout": "5s", "load_assignment": {
        "cluster_name": f"c{i}", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": a, "port_value": sport}}}} for a in SERVERS]}]}}
        for i in range(hosts)]
    config = {"static_resources": {"listeners": [{"name": "web", "address": {"socket_address": {
        "address": HAND_VIP, "port_value": port}}, "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "web", "strip_any_host_port": True, "use_remote_address": True, "route_config": {"name": "web", "virtual_hosts": vhosts},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}],
        "clusters": clusters}}
    with open(os.path.join(folder, "envoy.json"), "w") as f:
        json.dump(config, f)
    return envoy_argv()


def nginx_argv(folder: str) -> list[str]:
    return ["nginx", "-p", folder + "/", "-c", "nginx.conf", "-e", "error.log", "-g", "daemon off;"]


def envoy_argv() -> list[str]:
    admin = free_port("127.0.0.1")
    override = json.dumps({"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}}})
    return [shutil.which("envoy") or "envoy", "-c", "envoy.json", "--config-yaml", override, "--base-id", str(admin),
            "--disable-hot-restart", "--concurrency", "1", "-l", "error"]


def lbc_argv(proxy: str, folder: str) -> list[str]:
    return {"haproxy": ["haproxy", "-db", "-f", "haproxy.cfg"], "nginx": nginx_argv(folder), "envoy": envoy_argv()}[proxy]


HAND = {"haproxy": hand_haproxy, "nginx": hand_nginx, "envoy": hand_envoy}


# ---------------------------------------------------------------- the run

def start(argv: list[str], folder: str, procs: list) -> subprocess.Popen:
    log = open(os.path.join(folder, "proxy.log"), "wb")
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 else []
    proc = subprocess.Popen(pin + argv, cwd=folder, stdout=log, stderr=log)
    log.close()
    procs.append(proc)
    return proc


def stop(procs: list) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def bench(proxy: str, lbc: str, work: str, hosts: int, rounds: int, seconds: float, sport: int,
          sticky: bool = False) -> dict:
    procs: list = []
    try:
        lport, hport = free_port(LBC_VIP), free_port(HAND_VIP)
        topo = os.path.join(work, "topology.yaml")
        doc = gen.topology(hosts, hosts, vip=LBC_VIP, port=lport, servers=tuple((a, sport) for a in SERVERS))
        if sticky:
            for svc in doc["services"].values():
                svc["stickiness"] = {"mode": "cookie"}      # the cookie LBSRV, valued s1 / s2
        with open(topo, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        lfolder, hfolder = os.path.join(work, f"{proxy}-lbc"), os.path.join(work, f"{proxy}-hand")
        subprocess.run([lbc, "compile", "-q", topo, "-t", proxy, "-o", lfolder], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.makedirs(hfolder)
        runs = {"lbc": (start(lbc_argv(proxy, lfolder), lfolder, procs), LBC_VIP, lport),
                "hand": (start(HAND[proxy](hfolder, hosts, hport, sport, **({"sticky": True} if sticky else {})), hfolder,
                               procs), HAND_VIP, hport)}
        cookie = "LBSRV=s1" if sticky else ""
        last = gen.host(hosts - 1)
        for proc, addr, port in runs.values():
            wait_200(addr, port, last, proc)
            wrk(addr, port, last, 1, cookie)  # warm up
        per_req: dict[str, list[float]] = {"lbc": [], "hand": []}
        rates: dict[str, list[float]] = {"lbc": [], "hand": []}
        for r in range(rounds):
            for name in (("lbc", "hand") if r % 4 in (0, 3) else ("hand", "lbc")):
                proc, addr, port = runs[name]
                cpu0, t0 = tree_cpu(proc.pid), time.perf_counter()
                n = wrk(addr, port, last, seconds, cookie)
                cpu1, t1 = tree_cpu(proc.pid), time.perf_counter()
                per_req[name].append((cpu1 - cpu0) / n * 1e6)
                rates[name].append(n / (t1 - t0))
        ratios = [a / b for a, b in zip(per_req["lbc"], per_req["hand"])]
        return {"proxy": proxy + (" (cookie)" if sticky else ""), "hosts": hosts, "rounds": rounds,
                "lbc_us": statistics.median(per_req["lbc"]), "hand_us": statistics.median(per_req["hand"]),
                "lbc_rps": statistics.median(rates["lbc"]), "hand_rps": statistics.median(rates["hand"]),
                "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}
    finally:
        stop(procs)


def start_servers(work: str, procs: list) -> int:
    sport = free_port(SERVERS[0])
    folder = os.path.join(work, "servers")
    os.makedirs(folder)
    with open(os.path.join(folder, "haproxy.cfg"), "w") as f:
        f.write("defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n"
                "frontend answer\n" + "".join(f"    bind {a}:{sport}\n" for a in SERVERS)
                + "    http-request return status 200 content-type text/plain string ok\n")
    proc = subprocess.Popen(["haproxy", "-db", "-f", "haproxy.cfg"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(proc)
    for a in SERVERS:
        wait_200(a, sport, "x", proc, timeout=15)
    return sport


def table(results: list[dict], seconds: float) -> str:
    lines = [f"Proxy CPU per request, lbc vs hand-written, last of N hosts (wrk -t1 -c20, {seconds:g} s chunks, "
             "ABBA; median (min-max) of the per-round ratios; shared machine)",
             "| proxy | hosts | rounds | lbc µs/req | hand µs/req | CPU/req ratio | lbc req/s | hand req/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['proxy']} | {r['hosts']:,} | {r['rounds']} | {r['lbc_us']:.1f} | {r['hand_us']:.1f} | "
                     f"**{r['ratio']:.2f}** ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) | {r['lbc_rps']:,.0f} | "
                     f"{r['hand_rps']:,.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lbc", default=shutil.which("lbc") or "lbc")
    ap.add_argument("--proxies", default="haproxy,nginx,envoy")
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--hand-minimal", action="store_true",
                    help="hand-written HAProxy without lbc's failover retries (not the same behaviour)")
    ap.add_argument("--sticky", action="store_true", help="cookie stickiness on every service, requests pinned (nginx only)")
    a = ap.parse_args()
    if a.hand_minimal:
        HAND["haproxy"] = functools.partial(hand_haproxy, minimal=True)
    if a.sticky and a.proxies != "nginx":
        print("serve.py: --sticky has a hand-written config for nginx only: give --proxies nginx", file=sys.stderr)
        return 2
    missing = [p for p in ["wrk", "haproxy"] + a.proxies.split(",") if shutil.which(p) is None]
    if missing:
        print(f"serve.py: not installed: {', '.join(missing)} (wrk is the Debian package wrk)", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="lbc-serve-")
    procs: list = []
    results = []
    try:
        sport = start_servers(work, procs)
        for proxy in a.proxies.split(","):
            results.append(bench(proxy, a.lbc, work, a.hosts, a.rounds, a.seconds, sport, a.sticky))
            print(f"  {proxy}: ratio {results[-1]['ratio']:.2f}", file=sys.stderr, flush=True)
    finally:
        stop(procs)
        shutil.rmtree(work, ignore_errors=True)
    print(table(results, a.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
