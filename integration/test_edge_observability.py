"""Scenario S32 of CONFORMANCE.md: access logs and the metrics endpoint, on every selected target.

The proxy logs to its standard output (`access_log: {to: stdout}`), which the runner writes to the
proxy's log file; the test reads the lines back and checks lbc's fields against what each request
did (the client, the host, the status and the server that answered it). Hostile paths (quotes,
backslashes, an encoded CR LF, a raw control byte) must not add or split lines, and JSON lines must
give the path back exactly. The metrics endpoint on the topology's admin address is scraped before
and after: the per-server counters (HAProxy, Envoy) rise by the requests each server answered;
nginx's stub_status has no per-server counters (declared: LBC802), only its request total, which
rises by the requests sent. About 10 s per target.
"""
from __future__ import annotations

import collections
import json
import re
import socket
from typing import Optional

import pytest

from harness import client
from harness.env import server
from harness.net import free_port, wait_until
from test_conformance import CLIENT, scenario, web

pytestmark = [pytest.mark.conformance, pytest.mark.integration]

N = 20
HOST = "s32.test"
HOSTILE = '/s32/"quoted"\\back%0D%0Ainjected'
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def _lines(lb, listener: str, want: int) -> list[str]:
    """The proxy's access-log lines of one listener, once `want` of them are written (bounded wait:
    Envoy flushes its log about once a second)."""
    def read():
        with open(lb.proc.log_path, encoding="utf-8", errors="replace") as f:
            got = [l for l in f.read().splitlines() if f"listener={listener} " in l or f'"listener":"{listener}"' in l]
        return got if len(got) >= want else None
    try:
        return wait_until(read, 15, interval=0.2, what=f"{want} access-log lines of {listener}")
    except TimeoutError:
        with open(lb.proc.log_path, encoding="utf-8", errors="replace") as f:
            raise AssertionError(f"fewer than {want} lines for {listener}:\n{f.read()[-3000:]}") from None


def _text_fields(line: str) -> dict:
    return {k: v[1:-1] if v.startswith('"') else v for k, v in FIELD.findall(line)}


def _raw(address: str, port: int, path: bytes) -> Optional[str]:
    """A request with a raw control byte in its path (http.client refuses to send one): the backend
    that answered it, or None (the proxy refused it)."""
    got = b""
    with socket.create_connection((address, port), timeout=5, source_address=(CLIENT, 0)) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nConnection: close\r\n\r\n")
        try:
            while len(got) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
    m = re.search(rb'"server": *"([^"]+)"', got)
    return m.group(1).decode() if m and got.startswith(b"HTTP/1.1 200") else None


def _scrape(url_host: str, port: int, path: str) -> str:
    r = client.request(url_host, port, path, host=f"{url_host}:{port}")
    assert r.status == 200, (r.status, r.text[:200])
    return r.text


def _counters(target: str, text: str, addresses: dict[str, str]) -> dict[str, int]:
    """Requests per server name from the metrics page; nginx: {'*': requests handled by nginx}."""
    out: collections.Counter = collections.Counter()
    if target == "haproxy":
        for _proxy, srv, value in re.findall(r'^haproxy_server_sessions_total\{proxy="([^"]+)",server="([^"]+)"\} '
                                            r'([0-9]+)', text, re.M):
            out[srv] += int(value)
    elif target == "envoy":
        by_addr = {v: k for k, v in addresses.items()}
        for addr, value in re.findall(r'^envoy_cluster_endpoint_rq_total\{[^}]*envoy_endpoint_address="([^"]+)"[^}]*\} '
                                      r'([0-9]+)', text, re.M):
            if addr in by_addr:
                out[by_addr[addr]] += int(value)
    else:
        m = re.search(r"server accepts handled requests\s+[0-9]+ [0-9]+ ([0-9]+)", text)
        assert m, text
        out["*"] = int(m.group(1))
    return dict(out)


@scenario("S32")
def test_s32_access_log_and_metrics(env):
    a, b = env.backends("a", "b")
    addresses = {x.name: f"{x.address}:{x.port}" for x in (a, b)}
    admin_port = free_port("127.0.0.1")
    lb = env.deploy({"app": {"servers": [server(a), server(b)]}},
                    [web([{"hosts": [HOST], "service": "app"}]),
                     {"name": "webjson", "routes": [{"service": "app"}], "access_log": {"to": "stdout", "format": "json"}}],
                    top={"access_log": {"to": "stdout"}, "admin": {"address": "127.0.0.1", "port": admin_port}})
    metrics = {"haproxy": "/metrics", "envoy": "/stats/prometheus", "nginx": "/status"}[env.target]
    before = _counters(env.target, _scrape("127.0.0.1", admin_port, metrics), addresses)

    served: dict[str, collections.Counter] = {}
    answered: dict[tuple[str, str], str] = {}      # (listener, path) -> server name
    for listener in ("web", "webjson"):
        addr, port = lb.addr(listener)
        served[listener] = collections.Counter()
        for i in range(N):
            path = f"/s32/{listener}/{i}?q={i}"
            r = client.request(addr, port, path, host=HOST, source=CLIENT)
            assert r.status == 200, (r.status, r.text[:200])
            served[listener][r.server] += 1
            answered[(listener, path)] = r.server
        # hostile requests: the proxy may refuse them (400) or pass them on; either way one line each
        r = client.try_request(addr, port, HOSTILE, host=HOST, source=CLIENT)
        for name in (r.server if r is not None and r.status == 200 else None, _raw(addr, port, b"/s32/raw\x01byte")):
            if name:
                served[listener][name] += 1
    sent = N + 2

    after = _counters(env.target, _scrape("127.0.0.1", admin_port, metrics), addresses)
    if env.target == "nginx":
        # stub_status: one total for nginx (the two scrapes count themselves): declared, no per-server counters
        rose = after["*"] - before["*"]
        assert 2 * sent <= rose <= 2 * sent + 2, (before, after)
    else:
        total = served["web"] + served["webjson"]
        for name in addresses:
            assert after.get(name, 0) - before.get(name, 0) == total[name], (name, before, after, total)

    # text lines: one per request; the fields say what the request did
    lines = _lines(lb, "web", sent)
    assert len(lines) == sent, "\n".join(lines)
    fields = [_text_fields(l) for l in lines]
    assert [list(f)[:14] for f in fields[:1]] == [["time", "client", "listener", "host", "method", "path", "status",
                                                    "service", "server", "bytes_in", "bytes_out", "connect_ms",
                                                    "response_ms", "total_ms"]], lines[0]
    by_path = {f["path"]: f for f in fields}
    for (listener, path), name in answered.items():
        if listener != "web":
            continue
        f = by_path[path]
        assert f["client"].rsplit(":", 1)[0] == CLIENT, f
        assert (f["host"], f["method"], f["status"], f["server"]) == (HOST, "GET", "200", addresses[name]), f
        assert re.fullmatch(r"[0-9]+", f["total_ms"]) and re.fullmatch(r"[0-9]+|-", f["connect_ms"]), f
        assert re.fullmatch(r"[0-9]+\.[0-9]{3}", f["time"]), f
    assert not any("\x01" in l for l in lines)

    # JSON lines: every line parses, the hostile path comes back exactly
    jlines = _lines(lb, "webjson", sent)
    assert len(jlines) == sent, "\n".join(jlines)
    docs = [json.loads(l) for l in jlines]
    assert any(d["path"] == HOSTILE for d in docs), docs
    for d in docs:
        if str(d["path"]).startswith("/s32/webjson/"):
            assert (d["host"], str(d["status"]), d["server"]) == (HOST, "200", addresses[answered[("webjson", d["path"])]]), d
    print(f"S32 {env.target}: {sent} lines per listener; counters before {before} after {after}")
