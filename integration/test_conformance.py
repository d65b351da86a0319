"""Scenarios S1-S25 of CONFORMANCE.md, each run against every selected target (see README.md).

Every topology below is compiled by lbc for the target under test and run by the real proxy.
Pass conditions are the ones CONFORMANCE.md states; where time is what a scenario tests (check
intervals, lifetimes), the deadline comes from the topology's own numbers.
"""
from __future__ import annotations

import collections
import re
import shutil
import statistics
import subprocess
import threading
import time

import pytest

from harness import client
from lbc import targets as lbc_targets
from lbc.capabilities import NATIVE
from harness.env import server
from harness.net import client_addresses, wait_until
from harness.outcomes import scenario  # noqa: F401  (also for the edge scenario files that import it from here)

pytestmark = [pytest.mark.conformance, pytest.mark.integration]

CLIENT = client_addresses(1)[0]


def web(routes=None, **kw) -> dict:
    """An HTTP listener (plain) with one default route to service `app` unless routes are given."""
    return {"name": "web", "routes": routes or [{"service": "app"}], **kw}


def hits(lb, n, listener="web", path="/", source=CLIENT, **kw) -> collections.Counter:
    addr, port = lb.addr(listener)
    got = collections.Counter()
    for _ in range(n):
        r = client.request(addr, port, path, source=source, **kw)
        assert r.status == 200, (r.status, r.text[:200])
        got[r.server] += 1
    return got


def tally(lb, n, listener="web", source=CLIENT, **kw) -> collections.Counter:
    """Like hits(), but a failed request counts as "error" instead of failing (detection windows)."""
    addr, port = lb.addr(listener)
    got = collections.Counter()
    for _ in range(n):
        r = client.try_request(addr, port, "/", source=source, **kw)
        got[r.server if r is not None and r.status == 200 else "error"] += 1
    return got


def fast_health(kind="http", **kw) -> dict:
    """Checks every 500 ms so detection fits in the scenario's deadlines."""
    base = {"interval": "500ms", "timeout": "400ms", "rise": 2, "fall": 2}
    base.update(kw)
    if kind == "http":
        base["http"] = {"path": "/health"}
    else:
        base["tcp"] = True
    return base


def run_slow(addr, port, ms, source=CLIENT, **kw) -> threading.Thread:
    """A long request in the background (holds a connection at a server for `ms`)."""
    box = {}

    def go():
        box["r"] = client.try_request(addr, port, f"/slow?ms={ms}", source=source, timeout=ms / 1000 + 10, **kw)
    t = threading.Thread(target=go, daemon=True)
    t.box = box
    t.start()
    return t


# ---------------------------------------------------------------- S1-S3 balancing

@scenario("S1")
def test_s1_round_robin(env):
    a, b = env.backends("a", "b")
    lb = env.deploy({"app": {"balance": "round-robin", "servers": [server(a), server(b)]}}, [web()])
    got = hits(lb, 200)
    assert set(got) == {"a", "b"}
    for name in "ab":
        assert 80 <= got[name] <= 120, got


@scenario("S2")
def test_s2_weighted_random(env):
    a, b = env.backends("a", "b")
    lb = env.deploy({"app": {"balance": "weighted-random",
                             "servers": [server(a, weight=80), server(b, weight=20)]}}, [web()])
    got = hits(lb, 2000)
    share = 100 * got["a"] / 2000
    assert 75 <= share <= 85, got


@scenario("S3")
def test_s3_least_connections(env):
    """Shares, not every request: on a loaded machine the proxy may not yet have released the slot of
    the previous short request when the next one arrives (a tie, which either server may win).
    Round robin would give the idle server about half; least connections gives it nearly all."""
    a, b = env.backends("a", "b")
    lb = env.deploy({"app": {"balance": "least-connections", "servers": [server(a), server(b)]}}, [web()])
    addr, port = lb.addr("web")
    slow = run_slow(addr, port, 10000)
    busy = wait_until(lambda: next((x for x in (a, b) if x.active() >= 1), None), 5, what="a busy server")
    idle = b if busy is a else a
    got = collections.Counter()
    for _ in range(40):
        got += hits(lb, 1)
        time.sleep(0.02)  # let the proxy account for the finished request before the next one
    assert busy.active() >= 1, "the long request ended before the check finished"
    assert got[idle.name] >= 34, got  # >= 85%; round robin would give ~50%
    slow.join(20)


# ---------------------------------------------------------------- S4-S5 stickiness

@scenario("S4")
def test_s4_cookie_stickiness(env):
    a, b = env.backends("a", "b")
    cert = env.cert("lb-sticky", ["sticky.test"])
    lb = env.deploy({"app": {"servers": [server(a), server(b)],
                             "stickiness": {"mode": "cookie", "cookie": {"name": "CONFSRV"}}}},
                    [web(), {"name": "tls", "tls": {"mode": "terminate", "certificates": ["sticky"]},
                             "routes": [{"hosts": ["sticky.test"], "service": "app"}]}],
                    certificates={"sticky": {"cert": cert.cert, "key": cert.key}})
    addr, port = lb.addr("web")
    first = client.request(addr, port, "/", source=CLIENT)
    cookie = first.set_cookies().get("CONFSRV")
    assert cookie is not None, first.headers
    assert "expires" not in cookie.attributes and "max-age" not in cookie.attributes, cookie.raw
    got = hits(lb, 100, cookies={"CONFSRV": cookie.value})
    assert got == {first.server: 100}, got
    assert set(hits(lb, 20)) == {"a", "b"}     # clients without the cookie are still balanced
    # the same attributes in every target: HttpOnly always, Secure only where the client used TLS
    assert "httponly" in cookie.attributes and "secure" not in cookie.attributes, cookie.raw
    taddr, tport = lb.addr("tls")
    over_tls = client.request(taddr, tport, "/", host="sticky.test", tls=client.tls_context(env.ca), source=CLIENT)
    tls_cookie = over_tls.set_cookies().get("CONFSRV")
    assert tls_cookie is not None and {"httponly", "secure"} <= set(tls_cookie.attributes), over_tls.headers


@scenario("S5")
def test_s5_source_ip_stickiness(env):
    a, b = env.backends("a", "b")
    lb = env.deploy({"app": {"servers": [server(a), server(b)], "stickiness": {"mode": "source-ip"}}}, [web()])
    where = {}
    for src in client_addresses(20):
        got = hits(lb, 5, source=src)
        assert len(got) == 1, (src, got)
        where[src] = next(iter(got))
    assert set(where.values()) == {"a", "b"}, where


# ---------------------------------------------------------------- S6-S10 health, failover, tiers, limits, fallback

@scenario("S6")
def test_s6_health_check_by_body(env):
    a, b = env.backends("a", "b")
    health = {"http": {"path": "/health", "expect_status": 200, "expect_body": "ACTIVE"},
              "interval": "1s", "timeout": "500ms", "rise": 2, "fall": 2}
    lb = env.deploy({"app": {"servers": [server(a), server(b)], "health": health}}, [web()])
    assert set(hits(lb, 10)) == {"a", "b"}
    a.set_health(body="ALL SESSIONS IN USE")
    t0 = time.monotonic()
    wait_until(lambda: tally(lb, 10) == {"b": 10}, 2 * 1 + 1, interval=0.1, what="a out of rotation")
    out_after = time.monotonic() - t0
    assert hits(lb, 20) == {"b": 20}
    a.set_health(body="STATUS: ACTIVE - 10 Sessions Available")
    t1 = time.monotonic()
    wait_until(lambda: "a" in tally(lb, 4), 2 * 1 + 1, interval=0.1, what="a back in rotation")
    print(f"S6: out after {out_after:.2f} s, back after {time.monotonic() - t1:.2f} s")


@scenario("S7")
def test_s7_failover_of_sticky_client(env):
    a, b = env.backends("a", "b")
    lb = env.deploy({"app": {"servers": [server(a), server(b)], "health": fast_health(),
                             "stickiness": {"mode": "cookie"}, "redispatch": True}}, [web()])
    addr, port = lb.addr("web")
    first = client.request(addr, port, "/", source=CLIENT)
    jar = {"LBSRV": first.set_cookies()["LBSRV"].value}
    sticky = {"a": a, "b": b}[first.server]
    other = "b" if first.server == "a" else "a"
    sticky.kill()
    errors, t0 = 0, time.monotonic()

    def answered_by_other():
        nonlocal errors
        r = client.try_request(addr, port, "/", source=CLIENT, cookies=jar)
        if r is None or r.status != 200:
            errors += 1
            return False
        jar.update({k: c.value for k, c in r.set_cookies().items()})
        return r.server == other
    wait_until(answered_by_other, 2 * 0.5 + 1, interval=0.05, what="the sticky client served by the other server")
    for _ in range(20):
        r = client.request(addr, port, "/", source=CLIENT, cookies=jar)
        assert (r.status, r.server) == (200, other), (r.status, r.text[:200])
        jar.update({k: c.value for k, c in r.set_cookies().items()})
    print(f"S7: {errors} failed request(s) before the switch, switched after {time.monotonic() - t0:.2f} s")


@scenario("S8")
def test_s8_three_priority_groups(env):
    a, b, c, d = env.backends("a", "b", "c", "d")
    lb = env.deploy({"app": {"servers": [server(a, priority=1), server(b, priority=1), server(c, priority=2),
                                         server(d, priority=3)],
                             "health": fast_health("tcp")}}, [web()])
    assert set(hits(lb, 20)) == {"a", "b"}
    deadline = 2 * 0.5 + 1
    a.kill()
    wait_until(lambda: tally(lb, 10) == {"b": 10}, deadline, interval=0.1, what="tier 1 without a")
    assert hits(lb, 20) == {"b": 20}, "tier 1 still has b: tiers 2 and 3 must not serve"
    b.kill()
    wait_until(lambda: tally(lb, 10) == {"c": 10}, deadline, interval=0.1, what="tier 2 takes over")
    assert hits(lb, 20) == {"c": 20}
    c.kill()
    wait_until(lambda: tally(lb, 10) == {"d": 10}, deadline, interval=0.1, what="tier 3 takes over")
    assert hits(lb, 20) == {"d": 20}


@scenario("S8")
def test_s8_full_group_overflows_to_the_next(env):
    """A group whose servers are all at max_sessions counts as unavailable (002 "Failover"): new
    sessions go to the next group while the first stays full, and back when a slot frees up.
    (max_sessions 2 with 2 long requests: a just-finished request may hold its slot a moment longer.)"""
    a, c = env.backends("a", "c")
    lb = env.deploy({"app": {"servers": [server(a, priority=1, max_sessions=2), server(c, priority=2)]}}, [web()])
    addr, port = lb.addr("web")
    assert hits(lb, 5) == {"a": 5}
    slow = [run_slow(addr, port, 4000) for _ in range(2)]
    wait_until(lambda: a.active() == 2, 5, what="two long requests on a")
    got = hits(lb, 10)
    assert a.active() == 2, "the long requests ended before the check finished"
    assert got == {"c": 10}, got
    for t in slow:
        t.join(15)
    assert hits(lb, 5) == {"a": 5}


@scenario("S9")
def test_s9_session_limit(env):
    a, b = env.backends("a", "b")
    lb = env.deploy({"app": {"balance": "round-robin",
                             "servers": [server(a, max_sessions=1), server(b, max_sessions=100)]}}, [web()])
    addr, port = lb.addr("web")
    slow = []
    for _ in range(4):                       # round robin: a long request lands on a within two tries
        slow.append(run_slow(addr, port, 4000))
        wait_until(lambda: a.active() + b.active() >= len(slow), 5, what="long request started")
        if a.active():
            break
    assert a.active() == 1, "could not put a long request on a"
    got = hits(lb, 20)
    assert a.active() == 1, "the long request ended before the check finished"
    assert got == {"b": 20}, got
    for t in slow:
        t.join(15)


@scenario("S10")
def test_s10_fallback(env):
    a, b = env.backends("a", "b")
    lb = env.deploy({"app": {"servers": [server(a), server(b)], "health": fast_health(),
                             "fallback": {"respond": {"status": 503, "body": "No sessions available"}}}}, [web()])
    addr, port = lb.addr("web")
    assert set(hits(lb, 10)) == {"a", "b"}
    a.kill()
    b.kill()

    def fallback():
        r = client.try_request(addr, port, "/", source=CLIENT)
        return r is not None and r.status == 503 and r.text == "No sessions available"
    wait_until(fallback, 2 * 0.5 + 1, interval=0.05, what="the fallback answer")
    for _ in range(10):
        r = client.request(addr, port, "/", source=CLIENT)
        assert (r.status, r.text) == (503, "No sessions available"), (r.status, r.text[:200])
        assert r.header("Content-Type").startswith("text/plain")


# ---------------------------------------------------------------- S11-S14 TLS

@scenario("S11")
def test_s11_tls_terminate(env):
    a, b = env.backends("a", "b")
    cert_one = env.cert("lb-one", ["one.test", "www.one.test"])
    cert_two = env.cert("lb-two", ["two.test"])
    lb = env.deploy({"app": {"servers": [server(a), server(b)]}},
                    [{"name": "tls", "tls": {"mode": "terminate", "certificates": ["one", "two"]},
                      "routes": [{"hosts": ["one.test", "www.one.test", "two.test"], "service": "app"}]}],
                    certificates={"one": {"cert": cert_one.cert, "key": cert_one.key},
                                  "two": {"cert": cert_two.cert, "key": cert_two.key}})
    addr, port = lb.addr("tls")
    ctx = client.tls_context(env.ca)                    # verifies the chain and the requested name
    for host, expect in (("one.test", "one.test"), ("www.one.test", "one.test"), ("two.test", "two.test")):
        r = client.request(addr, port, "/", host=host, tls=ctx, source=CLIENT)
        assert r.status == 200
        assert dict(x[0] for x in r.peer_cert["subject"])["commonName"] == expect
        seen = r.json()
        assert seen["tls"] is False, "the server must receive plain HTTP"
        assert r.seen_header("X-Forwarded-Proto") == ["https"]


@scenario("S12")
def test_s12_tls_bridge(env):
    good_cert = env.cert("srv-good", ["app.internal"])
    rogue_ca = env.certs.ca(f"rogue-ca-{env._next()}")
    bad_cert = env.cert("srv-bad", ["app.internal"], ca=rogue_ca)
    good = env.backend("good", tls=good_cert)
    bad = env.backend("bad", tls=bad_cert)
    lb_cert = env.cert("lb", ["bridge.test"])
    lb = env.deploy({"app": {"servers": [server(good), server(bad)], "health": fast_health(),
                             "upstream_tls": {"ca": env.ca.cert, "verify_name": "app.internal"}}},
                    [{"name": "tls", "tls": {"mode": "bridge", "certificates": ["lb"]},
                      "routes": [{"hosts": ["bridge.test"], "service": "app"}]}],
                    certificates={"lb": {"cert": lb_cert.cert, "key": lb_cert.key}})
    addr, port = lb.addr("tls")
    ctx = client.tls_context(env.ca)
    for _ in range(20):
        r = client.request(addr, port, "/", host="bridge.test", tls=ctx, source=CLIENT)
        assert r.status == 200, r.text[:200]
        seen = r.json()
        assert seen["server"] == "good", "a server whose certificate does not verify was used"
        assert seen["tls"] is True and seen["sni"] == "app.internal"


@scenario("S13")
def test_s13_tls_passthrough_sni(env):
    one = env.backend("one", tls=env.cert("srv-one", ["one.test"]))
    two = env.backend("two", tls=env.cert("srv-two", ["two.test"]))
    lb = env.deploy({"pool-one": {"servers": [server(one)], "stickiness": {"mode": "source-ip"}},
                     "pool-two": {"servers": [server(two)], "stickiness": {"mode": "source-ip"}}},
                    [{"name": "pass", "tls": {"mode": "passthrough"},
                      "routes": [{"hosts": ["one.test"], "service": "pool-one"},
                                 {"hosts": ["two.test"], "service": "pool-two"}]}])
    assert not any("PRIVATE KEY" in text for text in lb.files.values())
    assert all(c.key is None for c in lb.model.certificates), "the LB must hold no key"
    addr, port = lb.addr("pass")
    ctx = client.tls_context(env.ca)
    for host, name in (("one.test", "one"), ("two.test", "two"), ("ONE.test", "one")):
        r = client.request(addr, port, "/", host=host, tls=ctx, source=CLIENT)
        assert r.status == 200
        assert dict(x[0] for x in r.peer_cert["subject"])["commonName"] == host.lower(), "not the server's certificate"
        assert r.json()["server"] == name and r.json()["sni"] == host


@scenario("S14")
def test_s14_x509_client_cert_passthrough(env):
    srv = env.backend("sso", tls=env.cert("srv-sso", ["sso.test"]), client_ca=env.ca)
    user = env.certs.client(f"client-{env._next()}", env.ca)
    lb = env.deploy({"app": {"servers": [server(srv)], "x509_client_auth": True,
                             "stickiness": {"mode": "source-ip"}}},
                    [{"name": "pass", "tls": {"mode": "passthrough"}, "routes": [{"hosts": ["sso.test"], "service": "app"}]}])
    addr, port = lb.addr("pass")
    r = client.request(addr, port, "/", host="sso.test", tls=client.tls_context(env.ca, user), source=CLIENT)
    assert r.json()["client_cert"] == {"subject_cn": user.name}


# ---------------------------------------------------------------- S15-S17 routing, WebSocket, streaming

@scenario("S15")
def test_s15_multihost_control_link(env):
    ls1c, ls2c = env.backends("ls1", "ls2")
    ls1k = env.backend("ls1", address=ls1c.address)
    ls2k = env.backend("ls2", address=ls2c.address)
    servers = [server(ls1c, ports={"create": ls1c.port, "control": ls1k.port}, direct_host="push1.test"),
               server(ls2c, ports={"create": ls2c.port, "control": ls2k.port}, direct_host="push2.test")]
    lb = env.deploy({"ls": {"servers": servers, "stickiness": {"mode": "application"}}},
                    [web([{"hosts": ["push.test"], "service": "ls", "port": "create"},
                          {"direct_hosts": True, "service": "ls", "port": "control"}])])
    addr, port = lb.addr("web")
    balanced = collections.Counter()
    for _ in range(20):
        r = client.request(addr, port, "/", host="push.test", source=CLIENT).json()
        assert r["port"] in (ls1c.port, ls2c.port)
        balanced[r["server"]] += 1
    assert set(balanced) == {"ls1", "ls2"}, balanced
    for host, name, ctl in (("push1.test", "ls1", ls1k), ("push2.test", "ls2", ls2k)):
        for _ in range(10):
            r = client.request(addr, port, "/", host=host, source=CLIENT).json()
            assert (r["server"], r["port"]) == (name, ctl.port)


@scenario("S16")
def test_s16_websocket(env):
    a = env.backend("a")
    lb = env.deploy({"app": {"servers": [server(a)]}}, [web(websocket=True)])
    ws = client.WebSocket(*lb.addr("web"), "/ws", host="ws.test", source=CLIENT)
    try:
        assert ws.status == 101
        for i in range(100):
            ws.send(f"message {i} \u00e9")
            assert ws.recv() == f"message {i} \u00e9"
    finally:
        ws.close()


@scenario("S17")
def test_s17_streaming_without_buffering(env):
    a = env.backend("a")
    lb = env.deploy({"app": {"servers": [server(a)]}}, [web(buffering=False)])
    import json
    lines = list(client.stream(*lb.addr("web"), "/stream?n=6&ms=200", host="stream.test", source=CLIENT))
    assert len(lines) == 6
    first_arrival = lines[0][0]
    last_sent = json.loads(lines[-1][1])["sent"]
    assert first_arrival < last_sent, "the first chunk arrived only after the server ended the response"
    latency = [t - json.loads(line)["sent"] for t, line in lines]
    assert statistics.median(latency) < 0.1, f"chunks held back by the proxy: latencies {latency}"


# ---------------------------------------------------------------- S18 client address

@scenario("S18")
def test_s18_client_address_l7_forwarded_for(env):
    a = env.backend("a")
    lb = env.deploy({"app": {"servers": [server(a)]}}, [web(forwarded_headers=True)])
    for src in client_addresses(3):
        r = client.request(*lb.addr("web"), "/", source=src)
        xff = ",".join(r.seen_header("X-Forwarded-For"))
        assert [p.strip() for p in xff.split(",")][-1] == src, xff
        assert r.json()["peer"].split(":")[0] != src or src == "127.0.0.1"


@scenario("S18")
def test_s18_client_address_l4_proxy_v2(env):
    a = env.backend("a", mode="tcp", proxy_protocol=True)
    lb = env.deploy({"app": {"servers": [server(a)], "proxy_protocol": "v2"}},
                    [{"name": "raw", "protocol": "tcp", "routes": [{"service": "app"}]}])
    for src in client_addresses(3):
        info, echo = client.tcp_hello(*lb.addr("raw"), source=src)
        assert echo == b"ping\n"
        assert info["proxy"]["version"] == 2 and info["proxy"]["src"] == src, info


# ---------------------------------------------------------------- S19-S21

@scenario("S19")
def test_s19_hold_drain(env):
    a, b = env.backends("a", "b")

    def services(state):
        return {"app": {"servers": [server(a, state=state), server(b)], "stickiness": {"mode": "cookie"}}}
    lb = env.deploy(services("active"), [web()])
    addr, port = lb.addr("web")
    jar = {}

    def cookie_for_a():
        r = client.request(addr, port, "/", source=CLIENT)
        if r.server == "a":
            jar["LBSRV"] = r.set_cookies()["LBSRV"].value
        return r.server == "a"
    wait_until(cookie_for_a, 10, interval=0, what="a session on a")
    lb.stop()
    held = env.deploy(services("hold"), [web(vip="vip-web", port=port)])
    assert hits(held, 20) == {"b": 20}, "a server on hold took new sessions"
    assert hits(held, 20, cookies=jar) == {"a": 20}, "a session stuck to the held server was moved"


@scenario("S20")
def test_s20_stickiness_max_lifetime(env):
    a, b = env.backends("a", "b")
    lifetime = 2.0
    lb = env.deploy({"app": {"servers": [server(a), server(b)],
                             "stickiness": {"mode": "cookie", "max_lifetime": "2s"}}}, [web()])
    addr, port = lb.addr("web")
    t0 = time.monotonic()
    first = client.request(addr, port, "/", source=CLIENT)
    jar = {"LBSRV": first.set_cookies()["LBSRV"].value}
    while time.monotonic() - t0 < 0.75 * lifetime:
        r = client.request(addr, port, "/", source=CLIENT, cookies=jar)
        assert r.server == first.server, "re-balanced before the lifetime ended"
        time.sleep(0.1)

    def rebalanced():
        return client.request(addr, port, "/", source=CLIENT, cookies=jar).server != first.server
    # HAProxy dates its cookies in 4 s steps, so expiry may come up to 4 s late.
    wait_until(rebalanced, lifetime + 5, interval=0.1, what="re-balancing after the lifetime")
    print(f"S20: re-balanced {time.monotonic() - t0:.1f} s after the cookie was issued")


FASTEST = 10  # S21 compares the fastest quarter of each config's 40 chunks


def _seconds(ka: client.KeepAlive, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        status, _ = ka.get("/")
        assert status == 200
    return time.perf_counter() - t0


def _wrk_rates(one: tuple, many: tuple, host: str, chunks: int = 16, path: str = "/") -> tuple[float, float]:
    """Requests per second of each config under a real load generator (wrk: 20 connections, 1 s
    chunks, ABBA order), the fastest quarter of each config's chunks (other load only slows, and on
    a busy 2-core machine it comes in bursts). About 35 s per target."""
    rates: dict[str, list[float]] = {"one": [], "many": []}
    for i in range(chunks + 1):
        for name in (("one", "many") if i % 4 in (0, 3) else ("many", "one")):
            addr, port = one if name == "one" else many
            out = subprocess.run(["wrk", "-t1", "-c20", "-d1s", "-H", f"Host: {host}", f"http://{addr}:{port}{path}"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            assert "Non-2xx" not in out and "Socket errors" not in out, out
            if i:  # the first round warms up
                rates[name].append(float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)))
    best = {name: statistics.mean(sorted(r)[-(len(r) // 4):]) for name, r in rates.items()}
    return best["one"], best["many"]


@scenario("S21")
def test_s21_many_hosts(env):
    a = env.backend("a")
    hosts = [f"h{i:05d}.many.test" for i in range(10_000)]
    one = env.deploy({"app": {"servers": [server(a)]}}, [{"name": "one", "routes": [{"hosts": [hosts[-1]], "service": "app"}]}])
    many = env.deploy({"app": {"servers": [server(a)]}},
                      [{"name": "many", "routes": [{"hosts": [h], "service": "app"} for h in hosts]}])
    r = client.request(*many.addr("many"), "/", host=hosts[-1], source=CLIENT)
    assert (r.status, r.server) == (200, "a")
    r = client.request(*many.addr("many"), "/", host=hosts[0], source=CLIENT)
    assert (r.status, r.server) == (200, "a")
    # Short alternating rounds: load from elsewhere on the machine falls on both configs alike.
    # Other load only ever adds time, and on a busy 2-core machine it comes in bursts: measure
    # again (at most 3 rounds) while the 10,000-host config is behind; a per-host scan (0.004 of
    # the 1-host rate at 10,000 hosts) never catches up, however often it is measured.
    if shutil.which("wrk"):
        tool, measure = "wrk", lambda: _wrk_rates(one.addr("one"), many.addr("many"), hosts[-1])
    else:
        tool, measure = "python client", lambda: _s21_rates(one, many, hosts[-1])
    ratios = []
    for _ in range(3):
        rate_one, rate_many = measure()
        ratios.append(round(rate_many / rate_one, 2))
        print(f"S21 ({tool}): 1 host {rate_one:.0f} req/s, 10,000 hosts {rate_many:.0f} req/s (last host), "
              f"ratio {ratios[-1]:.2f}")
        if ratios[-1] >= 0.9:
            break
    assert max(ratios) >= 0.9, ratios


def _s21_rates(one, many, host: str) -> tuple[float, float]:
    """Without wrk: short alternating chunks (ABBA) on persistent connections; the fastest quarter
    of each config's chunks is compared."""
    ka_one = client.KeepAlive(*one.addr("one"), host=host, source=CLIENT)
    ka_many = client.KeepAlive(*many.addr("many"), host=host, source=CLIENT)
    try:
        _seconds(ka_one, 100), _seconds(ka_many, 100)          # warm up
        chunks: dict[str, list[float]] = {"one": [], "many": []}
        for i in range(40):
            order = ("one", "many") if i % 4 in (0, 3) else ("many", "one")
            for name in order:
                chunks[name].append(_seconds(ka_one if name == "one" else ka_many, 50))
    finally:
        ka_one.close()
        ka_many.close()
    spent = {name: sum(sorted(times)[:FASTEST]) for name, times in chunks.items()}
    return FASTEST * 50 / spent["one"], FASTEST * 50 / spent["many"]


# ---------------------------------------------------------------- S22-S25: the guides re-read

def _stick(lb, cookie: str, want: str, tries: int = 40) -> dict:
    """A cookie jar stuck to server `want` (new sessions until one lands there; bounded)."""
    addr, port = lb.addr("web")
    for _ in range(tries):
        r = client.request(addr, port, "/", source=CLIENT)
        if r.server == want:
            return {cookie: r.set_cookies()[cookie].value}
    raise AssertionError(f"no new session reached {want} in {tries} tries")


@scenario("S22")
def test_s22_full_or_held_server_keeps_its_sessions(env):
    """Flynet health states (001 "Health Monitor Configuration"): a server whose page answers without
    ACTIVE takes no new sessions and keeps its own; only no answer (or an HTTP error) takes it down."""
    a, b, fb = env.backends("a", "b", "fb", health_path="/FVTerm/FVHealth.aspx")
    health = {"http": {"path": "/FVTerm/FVHealth.aspx", "expect_body": "ACTIVE"},
              "interval": "500ms", "timeout": "400ms", "rise": 2, "fall": 2}
    lb = env.deploy({"app": {"profile": "flynet", "servers": [server(a), server(b)], "health": health,
                             "stickiness": {"mode": "cookie", "cookie": {"name": "S22"}},
                             "fallback": {"server": {"address": fb.address, "port": fb.port}}}}, [web()])
    deadline = 2 * 0.5 + 1                                  # fall x interval + 1 s (rise likewise)
    x, y = _stick(lb, "S22", "a"), _stick(lb, "S22", "b")
    for state in ("ALL SESSIONS IN USE", "ON HOLD"):
        a.set_health(body=state)
        wait_until(lambda: tally(lb, 4) == {"b": 4}, deadline, interval=0.05, what=f"a ({state}) out for new clients")
        assert hits(lb, 100, cookies=x) == {"a": 100}, f"a client of a full server was moved ({state})"
        assert hits(lb, 10) == {"b": 10}
        a.set_health(body="STATUS: ACTIVE - 10 Sessions Available")
        wait_until(lambda: "a" in tally(lb, 4), deadline, interval=0.05, what="a back for new clients")
    for srv in (a, b):
        srv.set_health(body="ALL SESSIONS IN USE")
    wait_until(lambda: tally(lb, 4) == {"fb": 4}, deadline, interval=0.05, what="new clients to the fallback")
    assert tally(lb, 10) == {"fb": 10}
    assert hits(lb, 20, cookies=x) == {"a": 20} and hits(lb, 20, cookies=y) == {"b": 20}, \
        "every server full: a stuck client left its own server"
    for srv in (a, b):
        srv.set_health(body="STATUS: ACTIVE - 10 Sessions Available")
    wait_until(lambda: set(tally(lb, 10)) == {"a", "b"}, deadline, interval=0.1, what="both back")
    addr, port = lb.addr("web")
    if lbc_targets.get(env.target).capabilities["health.drain-on-body"].level == NATIVE:
        # an HTTP error is "offline" too (targets that declare the feature native tell the two apart)
        a.set_health(status=500)
        wait_until(lambda: client.request(addr, port, "/", source=CLIENT, cookies=x).server == "b", deadline,
                   interval=0.1, what="a's client moved once a's page answered an HTTP error")
        a.set_health(status=200)
        wait_until(lambda: "a" in tally(lb, 6), deadline + 1, interval=0.1, what="a back after the error")
    a.kill()

    def moved():
        r = client.try_request(addr, port, "/", source=CLIENT, cookies=x)
        if r is not None and r.status == 200:
            x.update({k: c.value for k, c in r.set_cookies().items()})
            return r.server == "b"
        return False
    wait_until(moved, deadline, interval=0.05, what="a's client re-dispatched once a stopped answering")
    assert hits(lb, 20, cookies=x) == {"b": 20}


@scenario("S23")
def test_s23_http_check_behind_passthrough(env):
    """An HTTP check of servers behind TLS passthrough speaks TLS, with the check's host as SNI and Host."""
    a = env.backend("a", tls=env.cert("srv-a", ["app.test"]))
    b = env.backend("b", tls=env.cert("srv-b", ["app.test"]))
    health = {"http": {"path": "/health", "expect_body": "ACTIVE", "host": "app.test"},
              "interval": "500ms", "timeout": "400ms", "rise": 2, "fall": 2}
    lb = env.deploy({"app": {"servers": [server(a), server(b)], "health": health}},
                    [{"name": "pass", "tls": {"mode": "passthrough"},
                      "routes": [{"hosts": ["app.test"], "service": "app"}]}])
    addr, port = lb.addr("pass")
    ctx = client.tls_context(env.ca)

    def spread(n=10):
        got = collections.Counter()
        for _ in range(n):
            r = client.try_request(addr, port, "/", host="app.test", tls=ctx, source=CLIENT)
            got[r.server if r is not None and r.status == 200 else "error"] += 1
        return got
    wait_until(lambda: a.checks(env.ca)["checks"] >= 2 and b.checks(env.ca)["checks"] >= 2, 5, interval=0.1,
               what="health checks at both servers")
    for srv in (a, b):
        seen = srv.checks(env.ca)["last"]
        assert seen["tls"] is True and seen["sni"] == "app.test", seen
        assert [v for k, v in seen["headers"] if k.lower() == "host"] == ["app.test"], seen
    wait_until(lambda: set(spread()) == {"a", "b"}, 5, interval=0.1, what="both servers up and serving")
    a.set_health(body="ALL SESSIONS IN USE", ca=env.ca)
    wait_until(lambda: spread(4) == {"b": 4}, 2 * 0.5 + 1, interval=0.05, what="a out of rotation")
    assert spread(20) == {"b": 20}


@scenario("S24")
def test_s24_fallback_server(env):
    """Flynet "Minimum Servers": with every server out, the client reads what the fallback server
    answered (its status and body), never an answer the balancer made up."""
    a, b = env.backends("a", "b")
    fb = env.backend("fb", health_path="/")          # answers "/" with the page set below
    page = "No sessions available (the emulator's own page)"
    fb.set_health(status=503, body=page)
    lb = env.deploy({"app": {"servers": [server(a), server(b)], "health": fast_health(),
                             "fallback": {"server": {"address": fb.address, "port": fb.port}}}}, [web()])
    addr, port = lb.addr("web")
    assert set(hits(lb, 10)) == {"a", "b"}
    a.kill()
    b.kill()

    def fallback():
        r = client.try_request(addr, port, "/", source=CLIENT)
        return r is not None and (r.status, r.text) == (503, page)
    wait_until(fallback, 2 * 0.5 + 1, interval=0.05, what="the fallback server's answer")
    seen = fb.checks()["checks"]
    for _ in range(10):
        r = client.request(addr, port, "/", source=CLIENT)
        assert (r.status, r.text) == (503, page), (r.status, r.text[:200])
        assert r.header("Content-Type") == "text/plain; charset=utf-8", r.headers
    assert fb.checks()["checks"] >= seen + 10, "the answers did not come from the fallback server"


def _draws(lb, n: int, listener: str = "vhi") -> collections.Counter:
    """n new TCP connections from ONE client address: which server each one reached."""
    addr, port = lb.addr(listener)
    got = collections.Counter()
    for _ in range(n):
        info, echo = client.tcp_hello(addr, port, source=CLIENT)
        assert echo == b"ping\n"
        got[info["server"]] += 1
    return got


def _vhi(servers) -> dict:
    """A Verastream domain: the profile's defaults (weighted random, no affinity), TCP checks."""
    return {"vhi": {"profile": "verastream", "servers": servers,
                    "health": {"tcp": True, "interval": "500ms", "timeout": "400ms", "rise": 2, "fall": 2}}}


DRAWS = 1000
VHI_LISTENER = {"name": "vhi", "protocol": "tcp", "routes": [{"service": "vhi"}]}


@scenario("S25")
def test_s25_fresh_weighted_draw_per_session(env):
    """Technical note 7021566, "What Happens At Runtime": every session request is a new weighted
    draw; one client address does not stick to one server."""
    a, b = env.backends("a", "b", mode="tcp")
    lb = env.deploy(_vhi([server(a, weight=60), server(b, weight=40)]), [VHI_LISTENER])
    # 1,000 rather than CONFORMANCE's 500 sessions: a random balancer then misses +-6 points about
    # once in 10,000 runs instead of once in 150
    got = _draws(lb, DRAWS)
    share = 100 * got["a"] / DRAWS
    print(f"S25: one client address, {DRAWS} sessions: {dict(got)} ({share:.1f} % on the weight-60 server)")
    assert 54 <= share <= 66, got


@scenario("S25")
def test_s25_fresh_weighted_draw_in_the_first_usable_group(env):
    a, b, c, d = env.backends("a", "b", "c", "d", mode="tcp")
    lb = env.deploy(_vhi([server(a, weight=60, priority=1), server(b, weight=40, priority=1),
                          server(c, weight=60, priority=2), server(d, weight=40, priority=2)]), [VHI_LISTENER])
    got = _draws(lb, DRAWS)
    assert set(got) == {"a", "b"} and 54 <= 100 * got["a"] / DRAWS <= 66, got
    a.kill()
    b.kill()
    addr, port = lb.addr("vhi")

    def second_group():
        try:
            return client.tcp_hello(addr, port, source=CLIENT, timeout=2)[0]["server"] in ("c", "d")
        except (OSError, ValueError):
            return False
    wait_until(second_group, 2 * 0.5 + 2, interval=0.1, what="the second group serving")
    got = _draws(lb, DRAWS)
    assert set(got) <= {"c", "d"} and 54 <= 100 * got["c"] / DRAWS <= 66, got
