"""bigip.conf text: one serialiser, its parser, and the structural check of lbc's own output.

No offline tmsh validator exists (../shared/research/f5.md §4), so lbc checks what it emits:
  * `dump` is the only writer of tmsh text; `parse` reads it back and `dump(parse(t)) == t`;
  * `check` compares every property with a hand-written allow-list per object kind (from the
    tmsh reference pages for the kinds lbc emits), and resolves every reference: pools, monitors,
    persistence and profiles named by objects, certificate files (which must be installed first),
    and every object path and member named inside the iRules.

Run on an output folder: `python -m lbc.targets.f5_tmsh OUTDIR` (exit 1 on a finding).
"""
from __future__ import annotations

import ipaddress
import re
import sys
from dataclasses import dataclass, field
from typing import Optional, Union

# ---------------------------------------------------------------- data

# A block is an ordered list of entries (key, value): value None is a bare item (`rules { /Common/r }`),
# a str is a scalar (`interval 5`), a list is a nested block (`members { ... }`, `/Common/http { }`).
Value = Union[None, str, list]
Block = list


@dataclass
class Obj:
    kind: str                      # e.g. "ltm pool", "ltm monitor http"
    name: str                      # full path, /Common/...
    body: Block = field(default_factory=list)
    raw: Optional[str] = None      # `ltm rule`: the Tcl text between the braces


class TmshError(ValueError):
    pass


_BARE = re.compile(r"^[A-Za-z0-9_./:*%-]+$")


def quote(text: str) -> str:
    """The ONE quoting function for tmsh values.

    lbc's values are names, numbers, addresses and monitor strings whose unusual characters are
    already \\xHH escapes (f5_lower.monitor_text); a quote, control or non-ASCII character here
    is a bug upstream, so it is refused rather than guessed at.
    """
    if text and _BARE.match(text):
        return text
    if any(c == '"' or ord(c) < 0x20 or ord(c) > 0x7E for c in text) or text.endswith("\\"):
        raise TmshError(f"refusing to write {text!r} in a tmsh string")
    return '"' + text + '"'


# ---------------------------------------------------------------- writer

def _dump_block(block: Block, depth: int, out: list[str]) -> None:
    pad = "    " * depth
    for key, value in block:
        if value is None:
            out.append(f"{pad}{quote(key)}")
        elif isinstance(value, str):
            out.append(f"{pad}{quote(key)} {quote(value)}")
        elif not value:
            out.append(f"{pad}{quote(key)} {{ }}")
        else:
            out.append(f"{pad}{quote(key)} {{")
            _dump_block(value, depth + 1, out)
            out.append(f"{pad}}}")


def dump(objs: list[Obj], header: tuple[str, ...] = ()) -> str:
    out = [f"# {h}" if h else "#" for h in header]
    for o in objs:
        if out:
            out.append("")
        if o.raw is not None:
            if not o.raw.endswith("\n"):
                raise TmshError("a rule body must end with a newline")
            out.append(f"{o.kind} {quote(o.name)} {{\n{o.raw}}}")
        elif not o.body:
            out.append(f"{o.kind} {quote(o.name)} {{ }}")
        else:
            out.append(f"{o.kind} {quote(o.name)} {{")
            _dump_block(o.body, 1, out)
            out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- reader

_TOKEN = re.compile(r'\s*(?:(\{)|(\})|"((?:[^"\\]|\\.)*)"|([^\s{}"]+))')


def _words(line: str, lineno: int) -> list[tuple[str, str]]:
    """('{'|'}'|'w', text) tokens of one line."""
    toks, pos = [], 0
    while pos < len(line):
        if line[pos:].strip() == "":
            break
        m = _TOKEN.match(line, pos)
        if not m:
            raise TmshError(f"line {lineno}: cannot read {line[pos:]!r}")
        if m.group(1):
            toks.append(("{", "{"))
        elif m.group(2):
            toks.append(("}", "}"))
        elif m.group(3) is not None:
            toks.append(("w", m.group(3)))
        else:
            toks.append(("w", m.group(4)))
        pos = m.end()
    return toks


def _rule_body(lines: list[str], start: int) -> tuple[str, int]:
    """The Tcl text of an `ltm rule`, up to the brace that closes it (Tcl's own counting:
    backslash-escaped braces do not count)."""
    depth = 1
    body: list[str] = []
    for i in range(start, len(lines)):
        line = lines[i]
        j = 0
        while j < len(line):
            c = line[j]
            if c == "\\":
                j += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    if line[:j].strip() or line[j + 1:].strip():
                        raise TmshError(f"line {i + 1}: the closing brace of a rule must stand alone")
                    return "".join(l + "\n" for l in body), i + 1
            j += 1
        body.append(line)
    raise TmshError("unterminated ltm rule")


def parse(text: str) -> tuple[list[Obj], tuple[str, ...]]:
    """Objects and header comment lines of a bigip.conf in lbc's layout."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    objs: list[Obj] = []
    header: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            if objs:
                raise TmshError(f"line {i + 1}: comments only before the first object")
            header.append(line[2:] if line.startswith("# ") else line[1:])
            i += 1
            continue
        toks = _words(line, i + 1)
        if len(toks) < 3 or toks[-1][0] != "{" and not (toks[-2][0] == "{" and toks[-1][0] == "}"):
            raise TmshError(f"line {i + 1}: expected `KIND NAME {{`")
        empty = toks[-1][0] == "}"
        words = toks[:-2] if empty else toks[:-1]
        if any(t != "w" for t, _ in words):
            raise TmshError(f"line {i + 1}: unexpected brace")
        kind = " ".join(w for _, w in words[:-1])
        name = words[-1][1]
        if kind == "ltm rule" and not empty:
            raw, i = _rule_body(lines, i + 1)
            objs.append(Obj(kind, name, raw=raw))
            continue
        if empty:
            objs.append(Obj(kind, name, []))
            i += 1
            continue
        body, i = _parse_block(lines, i + 1)
        objs.append(Obj(kind, name, body))
    return objs, tuple(header)


def _parse_block(lines: list[str], i: int) -> tuple[Block, int]:
    block: Block = []
    while i < len(lines):
        toks = _words(lines[i], i + 1)
        kinds = [t for t, _ in toks]
        if kinds == ["}"]:
            return block, i + 1
        if kinds == ["w"]:
            block.append((toks[0][1], None))
        elif kinds == ["w", "w"]:
            block.append((toks[0][1], toks[1][1]))
        elif kinds == ["w", "{", "}"]:
            block.append((toks[0][1], []))
        elif kinds == ["w", "{"]:
            sub, i = _parse_block(lines, i + 1)
            block.append((toks[0][1], sub))
            continue
        else:
            raise TmshError(f"line {i + 1}: cannot read {lines[i].strip()!r}")
        i += 1
    raise TmshError("unterminated block")


# ---------------------------------------------------------------- allow-list

class _V:
    """A property's value check: returns a problem or None."""

    def __call__(self, value: Value) -> Optional[str]:
        raise NotImplementedError


class Enum(_V):
    def __init__(self, *allowed: str):
        self.allowed = allowed

    def __call__(self, v):
        return None if isinstance(v, str) and v in self.allowed else f"{v!r} is not one of {', '.join(self.allowed)}"


class Int(_V):
    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def __call__(self, v):
        if isinstance(v, str) and re.fullmatch(r"[0-9]+", v) and self.lo <= int(v) <= self.hi:
            return None
        return f"{v!r} is not an integer in {self.lo}..{self.hi}"


class Text(_V):
    def __init__(self, pattern: str = r"[\x20-\x7e]*"):
        self.pattern = re.compile(pattern)

    def __call__(self, v):
        return None if isinstance(v, str) and self.pattern.fullmatch(v) else f"{v!r} is not a valid value here"


class Ref(_V):
    """A reference to another object; resolved by the reference check."""

    def __init__(self, category: str):
        self.category = category

    def __call__(self, v):
        return None if isinstance(v, str) and v.startswith("/") else f"{v!r} is not an object path"


class Addr(_V):
    def __call__(self, v):
        try:
            ipaddress.ip_address(v)
            return None
        except (ValueError, TypeError):
            return f"{v!r} is not an IP address"


class Sub(_V):
    """A nested block of known properties."""

    def __init__(self, props: dict, required: tuple = ()):
        self.props, self.required = props, required


class Named(_V):
    """A block of named entries (`members`, `profiles`, `persist`, `cert-key-chain`), each with its own body."""

    def __init__(self, key: _V, props: dict, required: tuple = ()):
        self.key, self.props, self.required = key, props, required


class Items(_V):
    """A block of bare items (`rules { ... }`, `options { ... }`)."""

    def __init__(self, item: _V):
        self.item = item


_SECONDS = Int(0, 2_147_483_647)
_ENABLED = Enum("enabled", "disabled")
_HOST = Text(r"(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MONITOR_STR = Text(r'[\x20-\x7e]*')   # quote() already refused quotes and control characters
_LB_MODES = Enum("round-robin", "ratio-member", "least-connections-member", "ratio-least-connections-member")
_MONITOR_COMMON = {
    "defaults-from": Ref("monitor"), "destination": Text(r"\*:(\*|[0-9]{1,5})"),
    "interval": Int(1, 86_400), "timeout": Int(1, 86_400), "time-until-up": Int(0, 86_400),
}
_HTTP_MONITOR = dict(_MONITOR_COMMON, send=_MONITOR_STR, recv=_MONITOR_STR, **{"recv-disable": _MONITOR_STR})
_MEMBER = {
    "address": Addr(), "fqdn": Sub({"autopopulate": _ENABLED, "name": _HOST}, ("name",)),
    "connection-limit": Int(0, 2_147_483_647), "monitor": Ref("monitor"), "priority-group": Int(0, 65_535),
    "ratio": Int(1, 65_535), "session": Enum("user-enabled", "user-disabled"), "state": Enum("user-up", "user-down"),
}

ALLOW: dict[str, dict] = {
    "ltm monitor http": _HTTP_MONITOR,
    "ltm monitor https": _HTTP_MONITOR,
    "ltm monitor tcp": dict(_MONITOR_COMMON),
    "ltm persistence cookie": {
        "cookie-name": Text(r"[A-Za-z][A-Za-z0-9_-]{0,63}"), "defaults-from": Ref("persistence"),
        "expiration": _SECONDS, "httponly": _ENABLED, "method": Enum("insert"), "secure": _ENABLED,
    },
    "ltm persistence source-addr": {
        "defaults-from": Ref("persistence"), "hash-algorithm": Enum("default", "carp"), "timeout": _SECONDS,
        "mirror": Enum("enabled", "disabled"),
    },
    "ltm profile client-ssl": {
        "authenticate": Enum("once", "always"), "ca-file": Ref("file"),
        "cert-key-chain": Named(Text(r"[A-Za-z0-9_.-]+"), {"cert": Ref("file"), "key": Ref("file")}, ("cert",)),
        "ciphers": Text(r"[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)*"),
        "defaults-from": Ref("profile"),
        "options": Items(Enum("dont-insert-empty-fragments", "no-ssl", "no-tlsv1", "no-tlsv1.1", "no-tlsv1.2",
                              "no-tlsv1.3")),
        "peer-cert-mode": Enum("ignore", "request", "require"), "server-name": _HOST, "sni-default": Enum("true", "false"),
    },
    "ltm profile server-ssl": {
        "authenticate-name": _HOST, "ca-file": Ref("file"), "defaults-from": Ref("profile"),
        "expire-cert-response-control": Enum("drop", "ignore"), "peer-cert-mode": Enum("ignore", "require"),
        "server-name": _HOST, "untrusted-cert-response-control": Enum("drop", "ignore"),
    },
    "ltm profile http": {
        "defaults-from": Ref("profile"), "header-insert": Text(r"X-Forwarded-Proto: https?"),
        "insert-xforwarded-for": _ENABLED,
        "hsts": Sub({"include-subdomains": _ENABLED, "maximum-age": Int(0, 4_294_967_295), "mode": _ENABLED,
                     "preload": _ENABLED}, ("mode",)),
    },
    "ltm profile tcp": {"defaults-from": Ref("profile"), "idle-timeout": Int(1, 2_147_483_647)},
    "ltm profile request-log": {
        "defaults-from": Ref("profile"), "response-log-pool": Ref("pool"), "response-log-protocol": Enum("mds-udp"),
        "response-log-template": Text(r"[\x20-\x7e]+"), "response-logging": _ENABLED,
    },
    "ltm pool": {
        "load-balancing-mode": _LB_MODES, "members": Named(Text(r"/Common/[^\s]+"), _MEMBER),
        "min-active-members": Int(0, 65_535), "monitor": Ref("monitor"), "reselect-tries": Int(0, 65_535),
    },
    "ltm data-group internal": {
        "records": Named(Text(r"[0-9A-Fa-f.:]+/[0-9]{1,3}"), {}), "type": Enum("ip"),
    },
    "ltm virtual": {
        "destination": Text(r"/Common/[0-9A-Fa-f.:]+[.:][0-9]{1,5}"), "ip-protocol": Enum("tcp"), "mask": Addr(),
        "persist": Named(Ref("persistence"), {"default": Enum("yes", "no")}),
        "pool": Ref("pool"),
        "profiles": Named(Ref("profile"), {"context": Enum("all", "clientside", "serverside")}),
        "rules": Items(Ref("rule")),
        "source-address-translation": Sub({"type": Enum("automap")}, ("type",)),
        "translate-address": _ENABLED, "translate-port": _ENABLED,
    },
}
REQUIRED = {
    "ltm virtual": ("destination", "ip-protocol", "mask", "profiles"),
    "ltm pool": ("load-balancing-mode", "members"),
    "ltm persistence cookie": ("defaults-from", "method", "cookie-name", "expiration"),
    "ltm profile client-ssl": ("defaults-from", "cert-key-chain"),
}
# Built-in objects of every BIG-IP that lbc's objects may name.
BUILTIN = {
    "monitor": {"/Common/http", "/Common/https", "/Common/tcp"},
    "persistence": {"/Common/cookie", "/Common/source_addr"},
    "profile": {"/Common/http", "/Common/tcp", "/Common/clientssl", "/Common/serverssl", "/Common/websocket",
                "/Common/request-log"},
}
_CATEGORY = {"ltm data-group": "data-group", "ltm monitor": "monitor", "ltm persistence": "persistence", "ltm profile": "profile",
             "ltm pool": "pool", "ltm rule": "rule", "ltm virtual": "virtual"}


def _category(kind: str) -> Optional[str]:
    return next((c for prefix, c in _CATEGORY.items() if kind == prefix or kind.startswith(prefix + " ")), None)


def _check_block(block: Block, props: dict, required: tuple, where: str, refs: list, problems: list) -> None:
    seen = set()
    for key, value in block:
        if key in seen:
            problems.append(f"{where}: {key} appears twice")
        seen.add(key)
        v = props.get(key)
        if v is None:
            problems.append(f"{where}: unknown property {key!r}")
            continue
        _check_value(v, value, f"{where} {key}", refs, problems)
    for r in required:
        if r not in seen:
            problems.append(f"{where}: missing {r}")


def _check_value(v: _V, value: Value, where: str, refs: list, problems: list) -> None:
    if isinstance(v, Sub):
        if not isinstance(value, list):
            problems.append(f"{where}: expected a block")
            return
        _check_block(value, v.props, v.required, where, refs, problems)
    elif isinstance(v, Named):
        if not isinstance(value, list):
            problems.append(f"{where}: expected a block")
            return
        for name, sub in value:
            if not isinstance(sub, list):
                problems.append(f"{where}: entry {name!r} needs a body")
                continue
            err = v.key(name)
            if err:
                problems.append(f"{where}: {err}")
            if isinstance(v.key, Ref):
                refs.append((v.key.category, name, where))
            _check_block(sub, v.props, v.required, f"{where} {name}", refs, problems)
    elif isinstance(v, Items):
        if not isinstance(value, list) or any(sub is not None for _, sub in value):
            problems.append(f"{where}: expected a list of items")
            return
        for item, _ in value:
            err = v.item(item)
            if err:
                problems.append(f"{where}: {err}")
            if isinstance(v.item, Ref):
                refs.append((v.item.category, item, where))
    else:
        if not isinstance(value, str):
            problems.append(f"{where}: expected a value")
            return
        err = v(value)
        if err:
            problems.append(f"{where}: {err}")
        if isinstance(v, Ref):
            refs.append((v.category, value, where))


# iRule commands that name objects; `pool X member A P` and `LB::status pool X member A P` name a member.
RULE_POOL = re.compile(r"(?<![\w:./-])pool\s+(\S+?)(?:\s+member\s+(\S+)\s+([0-9]+))?(?=[\s\]]|$)")
_RULE_PATH = re.compile(r"(?<![\w/])(/Common/[A-Za-z0-9_.:-]+)")


def check(text: str, external_files: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Problems in a bigip.conf written by lbc (empty list: it passes).

    external_files: certificate/key objects installed before the load (the output README's import
    commands); a profile naming any other file object is reported.
    """
    problems: list[str] = []
    try:
        objs, header = parse(text)
    except TmshError as e:
        return [f"parse: {e}"]
    if dump(objs, header) != text:
        problems.append("round trip: the text is not in lbc's canonical layout (dump(parse(text)) != text)")
    names: dict[str, set[str]] = {c: set(b) for c, b in BUILTIN.items()}
    names.setdefault("pool", set())
    names.setdefault("rule", set())
    names.setdefault("data-group", set())
    names.setdefault("virtual", set())
    names["file"] = set(external_files)
    members: dict[str, set[tuple[str, str]]] = {}
    refs: list[tuple[str, str, str]] = []
    for o in objs:
        cat = _category(o.kind)
        where = f"{o.kind} {o.name}"
        if cat is None or (o.kind not in ALLOW and o.kind != "ltm rule"):
            problems.append(f"{where}: lbc does not emit this kind of object")
            continue
        if not o.name.startswith("/Common/"):
            problems.append(f"{where}: not under /Common")
        if o.name in names[cat] and o.name not in BUILTIN.get(cat, ()):
            problems.append(f"{where}: defined twice")
        names[cat].add(o.name)
        if o.kind == "ltm rule":
            continue
        _check_block(o.body, ALLOW[o.kind], REQUIRED.get(o.kind, ()), where, refs, problems)
        if o.kind == "ltm pool":
            for key, value in o.body:
                if key == "members" and isinstance(value, list):
                    members[o.name] = {_member_key(n, sub) for n, sub in value}
    for cat, name, where in refs:
        if name not in names.get(cat, ()):
            problems.append(f"{where}: {cat} {name} is not defined")
    for o in objs:
        if o.kind == "ltm rule":
            problems.extend(_check_rule(o, names, members))
    return problems


def _member_key(name: str, body: Value) -> tuple[str, str]:
    """(address, port) of a member named /Common/ADDR:PORT (IPv6: /Common/ADDR.PORT)."""
    tail = name.split("/", 2)[-1]
    sep = "." if tail.count(":") > 1 else ":"
    addr, _, port = tail.rpartition(sep)
    return addr, port


def _check_rule(o: Obj, names: dict, members: dict) -> list[str]:
    problems = []
    where = f"ltm rule {o.name}"
    known = names["pool"] | names["profile"] | names["data-group"]
    for m in _RULE_PATH.finditer(o.raw):
        if m.group(1) not in known:
            problems.append(f"{where}: names {m.group(1)}, which is not a pool, profile or data group lbc defines")
    for m in RULE_POOL.finditer(o.raw):
        pool, addr, port = m.groups()
        if pool not in names["pool"]:
            problems.append(f"{where}: `pool {pool}`: no such pool")
        elif addr and (addr, port) not in members.get(pool, set()):
            problems.append(f"{where}: `pool {pool} member {addr} {port}`: no such member")
    return problems


# ---------------------------------------------------------------- output folder

_INSTALL = re.compile(r"install sys crypto (?:cert|key) (\S+) from-local-file")


def installed_files(readme: str) -> set[str]:
    """File objects the output README tells the operator to install before loading."""
    return set(_INSTALL.findall(readme))


def check_output(files: dict[str, str]) -> list[str]:
    """The structural check of an F5 output folder: bigip.conf, its iRule copies, the README's imports."""
    if "bigip.conf" not in files:
        return ["bigip.conf is missing"]
    problems = check(files["bigip.conf"], installed_files(files.get("README.md", "")))
    try:
        objs, _ = parse(files["bigip.conf"])
    except TmshError:
        return problems
    rules = {o.name.rsplit("/", 1)[-1]: o.raw for o in objs if o.kind == "ltm rule"}
    copies = {p[len("irules/"):-len(".tcl")]: t for p, t in files.items() if p.startswith("irules/") and p.endswith(".tcl")}
    for name in sorted(set(rules) | set(copies)):
        if rules.get(name) != copies.get(name):
            problems.append(f"irules/{name}.tcl differs from the ltm rule of the same name in bigip.conf")
    return problems


def main(argv: list[str]) -> int:
    import os
    if len(argv) != 1:
        print("usage: python -m lbc.targets.f5_tmsh OUTPUT_FOLDER", file=sys.stderr)
        return 2
    files = {}
    for dirpath, _, fnames in os.walk(argv[0]):
        for n in fnames:
            full = os.path.join(dirpath, n)
            with open(full, encoding="utf-8") as f:
                files[os.path.relpath(full, argv[0])] = f.read()
    problems = check_output(files)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
