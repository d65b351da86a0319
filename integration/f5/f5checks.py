"""The F5 scenario checks, as functions returning what went wrong (empty: passed).

The conformance tests assert each returns []; the mutation tests break the compiled bigip.conf on
purpose and assert the same check then reports a failure, so no check can pass by construction.
"""
from __future__ import annotations

import ipaddress
import os
import re
import textwrap
from collections import Counter
from typing import Optional

from lbc import targets
from lbc.pipeline import Options, check_file, render
from lbc.targets.f5_tmsh import Obj, check_output, dump, parse

from f5hello import client_hello
from f5sim import F5Sim, _block

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def example(name: str) -> str:
    return os.path.join(ROOT, "examples", name)


def compile_f5(path: str, target: str = "f5"):
    """(files, result): files is None when compile refused the topology."""
    tgt = targets.get(target)
    result = check_file(path, Options(), tgt)
    if result.failed:
        return None, result
    files = render(result.model, tgt)
    if target == "f5":   # every configuration the harness runs also passes the structural check
        problems = check_output(files)
        assert problems == [], problems
    return files, result


def compile_text(tmp_path, text: str, target: str = "f5"):
    p = tmp_path / "topology.yaml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return compile_f5(str(p), target)


def all_rules() -> list[tuple[str, str]]:
    """(example:rule path, rule text) of every iRule lbc writes for the examples."""
    out = []
    for name in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        if name.endswith(".yaml"):
            files, _ = compile_f5(example(name))
            for o in parse(files["bigip.conf"])[0] if files else ():
                if o.kind == "ltm rule":
                    out.append((f"{name}:{o.name}", o.raw))
    return out


def edit_rule(conf: str, edit) -> str:
    """bigip.conf with each `ltm rule` body replaced by edit(body) (for the mutation checks)."""
    objs, header = parse(conf)
    out = [Obj(o.kind, o.name, o.body, edit(o.raw)) if o.kind == "ltm rule" else o for o in objs]
    return dump(out, header)


def _members(sim: F5Sim, pool: str) -> list[tuple[str, int]]:
    return [(m["address"], m["port"]) for m in sim.members(pool)]


# ---------------------------------------------------------------- S10 fallback

def check_fallback(conf: str, listener: str, host: str, pool_suffix: tuple[str, str],
                   status: int, body: str, content_type: str) -> list[str]:
    """Every member down, or every connection failing: the configured answer, not a reset."""
    problems = []
    for state in ("down", "unreachable", "offline"):
        sim = F5Sim(conf, listener)
        pool = sim.pool_of(*pool_suffix)
        for a, p in _members(sim, pool):
            sim.set_state(pool, a, p, state)
        r = sim.http(host)
        if r["kind"] != "respond":
            problems.append(f"members {state}: expected the fallback answer, got {r['kind']} {r.get('reason', '')}")
            continue
        headers = dict(zip(r["headers"][::2], r["headers"][1::2]))
        if int(r["status"]) != status or r["content"] != body or headers.get("Content-Type") != content_type:
            problems.append(f"members {state}: answer {r['status']} {r['content']!r} {headers}, "
                            f"expected {status} {body!r} {content_type}")
    sim = F5Sim(conf, listener)
    r = sim.http(host)
    if r["kind"] != "server":
        problems.append(f"members up: expected a server, got {r['kind']}")
    return problems


def check_fallback_server(conf: str, listener: str, host: Optional[str], pool_suffix: tuple[str, str],
                          fallback: tuple[str, int], chunks: Optional[list[bytes]] = None) -> list[str]:
    """Every member down or unreachable: the fallback server gets the connection."""
    problems = []
    for state in ("down", "unreachable"):
        sim = F5Sim(conf, listener)
        pool = sim.pool_of(*pool_suffix)
        for a, p in _members(sim, pool):
            sim.set_state(pool, a, p, state)
        r = sim.http(host) if chunks is None else sim.tcp(chunks)
        if r["kind"] != "server" or (r["member"][0], int(r["member"][1])) != fallback:
            problems.append(f"members {state}: expected the fallback server {fallback}, got {r}")
    return problems


# ---------------------------------------------------------------- S15 multihost / control link

def check_pinned(conf: str, listener: str, balanced_host: str, pool_suffix: tuple[str, str],
                 pins: dict[str, tuple[str, int]]) -> list[str]:
    """The balanced host spreads; each direct host always reaches its own server, also on hold,
    and never a server whose monitor says it is down."""
    problems = []
    sim = F5Sim(conf, listener)
    pool = sim.pool_of(*pool_suffix)
    results = sim.run([{"host": balanced_host}] * 100)
    counts = Counter(r.get("target") for r in results)
    members = _members(sim, pool)
    for a, p in members:
        share = counts.get(f"{a}:{p}", 0)
        if not 40 <= share <= 60:
            problems.append(f"balanced host: {a}:{p} got {share} of 100 (expected 40-60)")
    variants = []
    for host, member in pins.items():
        variants += [(h, member) for h in (host, host.upper(), f"{host}:8443")]
    results = sim.run([{"host": h} for h, _ in variants] * 5)
    for (h, member), r in zip(variants * 5, results):
        got = (r["member"][0], int(r["member"][1])) if r["kind"] == "server" else r["kind"]
        if got != member:
            problems.append(f"{h}: expected {member}, got {got}")
    for host, (a, p) in pins.items():
        pinned_pool = next(n for n in sim.pools if (a, p) in _members(sim, n))
        for state, should_reach in (("disabled", True), ("busy", False), ("down", False)):
            s2 = F5Sim(conf, listener)
            s2.set_state(pinned_pool, a, p, state)
            r = s2.http(host)
            reached = r["kind"] == "server" and (r["member"][0], int(r["member"][1])) == (a, p)
            if reached != should_reach:
                problems.append(f"{host} with its server {state}: "
                                f"{'expected' if should_reach else 'must not reach'} {a}:{p}, got {r}")
    return problems


# ---------------------------------------------------------------- S13 SNI selection

def check_sni(conf: str, listener: str, routes: dict[Optional[str], Optional[tuple[str, str]]]) -> list[str]:
    """Each server name reaches its pool, whole or in pieces; routes[name] None means refused."""
    problems = []
    sim = F5Sim(conf, listener)
    cases = []
    for name, suffix in routes.items():
        hello = client_hello(name)
        expected = sim.pool_of(*suffix) if suffix else None
        cases.append((name, [hello], expected))
        cases.append((name, [hello[:3], hello[3:50], hello[50:]], expected))
        if name:
            cases.append((name.upper(), [client_hello(name.upper())], expected))
    results = sim.run([{"kind": "tcp", "chunks": c} for _, c, _ in cases])
    for (name, chunks, expected), r in zip(cases, results):
        got = r.get("pool") if r["kind"] == "server" else None
        if r["kind"] not in ("server", "reject") or got != expected:
            problems.append(f"SNI {name!r} in {len(chunks)} piece(s): expected {expected or 'refused'}, got {r}")
    r = sim.tcp([b"GET / HTTP/1.0\r\n\r\n"])
    if r["kind"] == "server" and routes.get(None) is None:
        problems.append(f"plain HTTP on a passthrough listener reached {r['pool']}")
    return problems


# ---------------------------------------------------------------- S19 hold

def check_hold(conf: str, listener: str, host: str, pool_suffix: tuple[str, str], held: tuple[str, int]) -> list[str]:
    """A held server gets no new balanced sessions; a client persisted to it stays."""
    problems = []
    sim = F5Sim(conf, listener)
    pool = sim.pool_of(*pool_suffix)
    states = {(m["address"], m["port"]): m["state"] for m in sim.members(pool)}
    if states.get(held) != "disabled":
        problems.append(f"{held} is not held in bigip.conf (state {states.get(held)})")
    results = sim.run([{"host": host}] * 60)
    hits = sum(1 for r in results if r["kind"] == "server" and (r["member"][0], int(r["member"][1])) == held)
    if hits:
        problems.append(f"the held server got {hits} of 60 new sessions")
    if len({r.get("target") for r in results}) < len(states) - 1:
        problems.append("the servers not on hold did not all take sessions")
    r = sim.http(host, persist=held)
    if r["kind"] != "server" or (r["member"][0], int(r["member"][1])) != held:
        problems.append(f"a client persisted to the held server was moved: {r}")
    return problems


# ---------------------------------------------------------------- S18 (L4): the PROXY header

def parse_proxy(data: bytes) -> dict:
    """A PROXY protocol v1 or v2 header, parsed as a server would (haproxy's proxy-protocol.txt)."""
    if data.startswith(b"PROXY "):
        line, _, rest = data.partition(b"\r\n")
        _, fam, src, dst, sport, dport = line.decode("ascii").split(" ")
        return {"version": 1, "family": fam, "src": src, "dst": dst, "sport": int(sport), "dport": int(dport),
                "rest": rest}
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    if not data.startswith(sig):
        raise ValueError("no PROXY signature")
    ver_cmd, fam, length = data[12], data[13], int.from_bytes(data[14:16], "big")
    body = data[16:16 + length]
    if fam == 0x11:
        src, dst = ipaddress.IPv4Address(body[0:4]), ipaddress.IPv4Address(body[4:8])
        ports = body[8:12]
    elif fam == 0x21:
        src, dst = ipaddress.IPv6Address(body[0:16]), ipaddress.IPv6Address(body[16:32])
        ports = body[32:36]
    else:
        raise ValueError(f"family {fam:#x}")
    return {"version": ver_cmd >> 4, "command": ver_cmd & 0xF, "family": fam, "src": str(src), "dst": str(dst),
            "sport": int.from_bytes(ports[0:2], "big"), "dport": int.from_bytes(ports[2:4], "big"),
            "length": length, "rest": data[16 + length:]}


def check_proxy(conf: str, listener: str, version: int, client: str, cport: int, vip: str, vport: int,
                chunks: Optional[list[bytes]] = None, host: Optional[str] = None) -> list[str]:
    sim = F5Sim(conf, listener)
    kw = dict(client=client, cport=cport, vip=vip, vport=vport)
    r = sim.tcp(chunks, **kw) if chunks is not None else sim.http(host, **kw)
    if r["kind"] != "server":
        return [f"expected a server connection, got {r}"]
    try:
        h = parse_proxy(bytes.fromhex(r["server_data"]))
    except (ValueError, IndexError) as e:
        return [f"the server cannot parse the PROXY header {r['server_data']!r}: {e}"]
    problems = []
    want = {"version": version, "src": str(ipaddress.ip_address(client)), "dst": str(ipaddress.ip_address(vip)),
            "sport": cport, "dport": vport}
    if version == 2:
        want.update(command=1, family=0x11 if ipaddress.ip_address(client).version == 4 else 0x21)
    for k, v in want.items():
        got = h.get(k)
        if version == 1 and k in ("src", "dst"):
            got = str(ipaddress.ip_address(got))
        if got != v:
            problems.append(f"PROXY header {k}: {got!r}, expected {v!r}")
    if h.get("rest"):
        problems.append(f"bytes after the PROXY header: {h['rest']!r}")
    return problems


# ---------------------------------------------------------------- monitor strings

def monitor_bytes(s: str) -> bytes:
    """A monitor send/recv string as the monitor reads it (K4186 escapes decoded)."""
    out, i = bytearray(), 0
    simple = {"r": 13, "n": 10, "t": 9, "\\": 92, "'": 39}
    while i < len(s):
        c = s[i]
        if c == "\\" and s[i + 1] == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif c == "\\" and s[i + 1] in simple:
            out.append(simple[s[i + 1]])
            i += 2
        else:
            out += c.encode("ascii")
            i += 1
    return bytes(out)


def recv_matches(recv: str, response: bytes) -> bool:
    """Whether a monitor recv string matches a response (POSIX ERE approximated by Python's re on
    bytes, which agrees for what lbc emits: literals, escaped specials, [.], (.|\\n)*, ^)."""
    return re.search(monitor_bytes(recv), response, re.DOTALL) is not None


# ---------------------------------------------------------------- S22 Flynet health states

# What a health page answer makes of a member, by BIG-IP's monitor rules: recv matches -> up;
# else recv-disable matches -> up but disabled (persisted clients only); else (another status) the
# monitor is down while the server still accepts connections ("busy"); no answer -> down.
def monitor_state(monitor: Obj, answer: Optional[bytes]) -> str:
    if answer is None:
        return "down"
    recv, disable = _block(monitor.body, "recv"), _block(monitor.body, "recv-disable")
    if recv is not None and recv_matches(recv, answer):
        return "up"
    if disable not in (None, "none") and recv_matches(disable, answer):
        return "disabled"
    return "busy"


def flynet_page(status: int, body: str) -> bytes:
    return (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: text/html\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def pool_monitor(sim: F5Sim, pool: str) -> Obj:
    name = _block(sim.pools[pool].body, "monitor")
    return next(o for o in sim.objs if o.kind.startswith("ltm monitor") and o.name == name)


def check_health_states(conf: str, listener: str, host: str, pool_suffix: tuple[str, str]) -> list[str]:
    """001 "Health Monitor Configuration": a member whose page answers without ACTIVE takes no new
    session and keeps its persisted ones; an HTTP error or no answer moves them; every member
    full: new clients get the fallback, persisted ones their own member."""
    problems = []
    sim = F5Sim(conf, listener)
    pool = sim.pool_of(*pool_suffix)
    monitor = pool_monitor(sim, pool)
    first, *others = [m for m in sim.members(pool) if m["state"] == "up"]
    a = (first["address"], first["port"])
    pages = {"ACTIVE - 10 Sessions Available": (flynet_page(200, "STATUS: ACTIVE - 10 Sessions Available"), "up", True),
             "ALL SESSIONS IN USE": (flynet_page(200, "STATUS: ALL SESSIONS IN USE"), "disabled", True),
             "ON HOLD": (flynet_page(200, "STATUS: ON HOLD"), "disabled", True),
             "HTTP 500": (flynet_page(500, "Server Error"), "busy", False),
             "no answer": (None, "down", False)}
    for what, (answer, want, keeps) in pages.items():
        state = monitor_state(monitor, answer)
        if state != want:
            problems.append(f"health page {what}: the monitor makes the member {state}, expected {want}")
            continue
        sim = F5Sim(conf, listener)
        sim.set_state(pool, *a, state)
        new = sim.run([{"host": host}] * 30)
        if state != "up" and any(r.get("member") and (r["member"][0], int(r["member"][1])) == a for r in new):
            problems.append(f"health page {what}: the member still took new sessions")
        r = sim.http(host, persist=a)
        stayed = r["kind"] == "server" and (r["member"][0], int(r["member"][1])) == a
        if keeps and not stayed:
            problems.append(f"health page {what}: a client persisted to the member was moved: {r}")
        if not keeps and (stayed or r["kind"] != "server"):
            problems.append(f"health page {what}: a client persisted to the member was not re-dispatched: {r}")
    sim = F5Sim(conf, listener)
    full = monitor_state(monitor, flynet_page(200, "STATUS: ALL SESSIONS IN USE"))
    members = [(m["address"], m["port"]) for m in sim.members(pool) if m["state"] == "up"]
    for m in members:
        sim.set_state(pool, *m, full)
    r = sim.http(host)
    if r["kind"] not in ("respond", "server") or (r["kind"] == "server" and r["pool"] == pool):
        problems.append(f"every member full: a new client got {r}, not the fallback")
    for m in members:
        r = sim.http(host, persist=m)
        if r["kind"] != "server" or (r["member"][0], int(r["member"][1])) != m:
            problems.append(f"every member full: the client persisted to {m} got {r}")
    return problems
