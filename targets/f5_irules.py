"""iRule text for the F5 targets: the Tcl quoting function and the rendering of rule specs.

iRules run in TMM's Tcl 8.4 and, for lbc's harness, in tclsh 8.6. The generated text therefore
uses only constructs both accept: no `{*}`, no `in`/`ni`, no 8.5+ commands, no iRule-only expr
operators (`starts_with`, `contains`, ...). The templates (templates/f5/) hold the Tcl of the
events; the routing switch, per host name, is written here (Jinja is too slow for 10,000 branches).
Every value is quoted with `tcl_word`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import jinja2

# A bare Tcl word needs no quoting at all: pool paths, host names, addresses, numbers.
_BARE = re.compile(r"^[A-Za-z0-9_./:*-]+$")
# Inside double quotes these pass as they are; everything else becomes a \uXXXX escape, so no
# quote, brace, bracket, dollar, backslash, semicolon or hash from user text reaches the rule
# (braces matter twice: Tcl and tmsh both find the end of a rule body by counting them).
_SAFE_IN_QUOTES = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,.:/_=+@%!?'&~*()-")


class TclQuoteError(ValueError):
    """A string Tcl 8.4 cannot hold (characters outside the Basic Multilingual Plane)."""


def tcl_representable(text: str) -> bool:
    return all(ord(c) <= 0xFFFF for c in text)


def tcl_word(text: str) -> str:
    """The ONE quoting function for Tcl: `text` as a single Tcl word with exactly its characters."""
    if text and _BARE.match(text):
        return text
    out = []
    for c in text:
        if c in _SAFE_IN_QUOTES:
            out.append(c)
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:  # Tcl 8.4 strings are UCS-2; refusals() reports this before render
            raise TclQuoteError(f"character U+{ord(c):X} cannot be written in an iRule (Tcl 8.4)")
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------- rule specs (plain data, slotted as f5_lower's plan)

@dataclass(frozen=True, slots=True)
class Failure:
    """What a route does when its server(s) cannot serve."""
    kind: str                        # respond | pool | reject
    status: int = 503
    body: str = ""
    content_type: str = "text/plain"
    pool: str = ""                   # kind pool: the fallback pool's path


@dataclass(frozen=True, slots=True)
class Action:
    """What a route does: balance over a pool, or go to one member of it."""
    pool: str                        # full path
    member: Optional[tuple[str, int]] = None
    failure: Optional[Failure] = None  # None: no fallback configured
    persist: Optional[str] = None    # a `persist ...` command, when the listener mixes stickiness
    ssl_profile: Optional[str] = None  # server-ssl profile path, when the listener mixes them
    # the fallback only once selection fails (LB_FAILED), not when no member is active: persisted
    # clients of full members (up, disabled: Flynet health states) still reach them
    fallback_on_failure: bool = False
    # the route's own access list: data group paths (deny, allow; either may be None), checked in the
    # routing branch after the listener's list; None: no list
    access: Optional[tuple[Optional[str], Optional[str]]] = None


@dataclass(frozen=True, slots=True)
class Redirect:
    """What a route that redirects does: answer with `scheme://host[:port]` + the request's path and query."""
    status: int
    scheme: str
    host: Optional[str]              # None: the request's host name (its port dropped)
    port_suffix: str                 # "" or ":<port>"


@dataclass(frozen=True, slots=True)
class PathRoute:
    kind: str                        # exact | prefix
    value: str                       # the path as written (starts with "/")
    strip: int                       # characters the server does not see (0: none)
    action: "Action | Redirect"


@dataclass(frozen=True, slots=True)
class PathChoice:
    """A host routed by path: the first matching entry wins (exact, then longest prefix), then
    `rest` (the route for every path), else 404."""
    paths: tuple[PathRoute, ...]
    rest: "Action | Redirect | None" = None


@dataclass(frozen=True, slots=True)
class Branch:
    hosts: tuple[str, ...]
    action: "Action | Redirect | PathChoice"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    l7: bool
    sni: bool                        # L4 passthrough: choose by the ClientHello's server name
    exact: tuple[Branch, ...] = ()   # exact host names
    wildcard: tuple[Branch, ...] = ()  # '*.example.com' keys, matched on the first label stripped
    default: "Action | Redirect | PathChoice | None" = None  # the routes without hosts; None: refuse the request
    lb_failed: tuple[tuple[str, Failure], ...] = ()  # (pool path, failure) for LB_FAILED
    proxy: Optional[str] = None      # v1 | v2
    proxy_pools: tuple[str, ...] = ()  # pools whose servers read a PROXY header
    routing: bool = True             # False: no selection needed (the virtual's default pool serves)


# ---------------------------------------------------------------- rendering

def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("lbc.templates", "f5"), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["tcl"] = lambda v: tcl_word(str(v))
    # the routing switch and its actions, written in Python (below), as text for the templates
    for function in (choose, act, fail):
        env.globals[function.__name__] = _as_text(function)
    return env


def _as_text(lines_function: Callable[..., list[str]]) -> Callable[..., str]:
    return lambda *args: "\n".join(lines_function(*args))


_ENV: Optional[jinja2.Environment] = None


def render_header_rule(request, response) -> str:
    """The iRule of a listener's header changes (model.HeaderChanges for each direction): remove, then
    set (remove + insert: exactly one value, whatever the client or server sent), then add."""
    global _ENV
    if _ENV is None:
        _ENV = _env()
    return _ENV.get_template("headers.tcl.j2").render(request=request, response=response)
def render_access_rule(listener: str, l7: bool, deny: Optional[str], allow: Optional[str]) -> str:
    """The iRule of a client access list: data group paths (deny, allow; either may be None)."""
    return _render("access.tcl.j2", listener=listener, l7=l7, deny=deny, allow=allow)


def render_rate_rule(listener: str, l7: bool, unit: str, table: str, window: int, limit: int) -> str:
    """The iRule of a rate limit per client address: `table incr` in a subtable, fixed windows."""
    return _render("rate.tcl.j2", listener=listener, l7=l7, unit=unit, table=table, window=window, limit=limit)


def render_redirect_rule(listener: str, status: int, exempt: tuple[str, ...], port_suffix: str) -> str:
    """The iRule redirecting a plain-HTTP listener to HTTPS, except paths under `exempt` (url_path text)."""
    return _render("redirect.tcl.j2", listener=listener, status=status, exempt=exempt, port_suffix=port_suffix)


def render_rule(spec: RuleSpec) -> str:
    return _render("irule.tcl.j2", spec=spec)


# ---------------------------------------------------------------- the routing switch
# Written here rather than in the template: a branch per host name is 10,000 Jinja macro calls
# at 10,000 hosts (0.1 s). Each function returns the lines of its Tcl text, unindented.

def choose(spec: RuleSpec, key: str, l7: bool) -> list[str]:
    """`switch` on the variable `key` (a host name): the exact names, then the wildcard keys
    (in $lbc_wild), then the default route, else no route."""
    out = [f"switch -- ${key} {{"]
    out += _branches(spec.exact, l7, 4)
    out.append("    default {")
    if spec.wildcard:
        out.append("        switch -- $lbc_wild {")
        out += _branches(spec.wildcard, l7, 12)
        out.append("            default {")
        out += _indent(act(spec.default, l7) if spec.default else no_route(l7), 16)
        out += ["            }", "        }"]
    else:
        out += _indent(act(spec.default, l7) if spec.default else no_route(l7), 8)
    return out + ["    }", "}"]


def _branches(branches: tuple[Branch, ...], l7: bool, width: int) -> list[str]:
    """One switch branch per Branch: its host names joined by `-` (fall through), then the body."""
    pad = " " * width
    out: list[str] = []
    for b in branches:
        out += [f"{pad}{tcl_word(h)} -" for h in b.hosts[:-1]]
        if b.hosts:
            out.append(f"{pad}{tcl_word(b.hosts[-1])} {{")
            out += _indent(act(b.action, l7), width + 4)
            out.append(pad + "}")
    return out


def act(a: "Action | Redirect | PathChoice", l7: bool) -> list[str]:
    """What a branch does: a choice by path, or one action."""
    return _by_path(a) if isinstance(a, PathChoice) else _act_one(a, l7)


def _by_path(c: PathChoice) -> list[str]:
    """The first matching path wins: exact paths, then prefixes longest first (lbc orders them)."""
    out = ["set lbc_path [HTTP::path]"]
    for i, p in enumerate(c.paths):
        keyword = "} elseif" if i else "if"
        if p.kind == "exact":
            out.append(f"{keyword} {{[string equal $lbc_path {tcl_word(p.value)}]}} {{")
        else:
            out.append(f"{keyword} {{[string first {tcl_word(p.value)} $lbc_path] == 0}} {{")
        if p.strip:
            out.append(f"    HTTP::path [string range $lbc_path {p.strip} end]")
        out += _indent(_act_one(p.action, True), 4)
    out.append("} else {")
    out += _indent(_act_one(c.rest, True) if c.rest else ["HTTP::respond 404 noserver Connection close"], 4)
    return out + ["}"]


def _act_one(a: "Action | Redirect", l7: bool) -> list[str]:
    if isinstance(a, Redirect):
        return _redirect(a)
    out = _route_access(a.access) if a.access else []
    if a.persist:
        out.append(a.persist)
    if a.ssl_profile:
        out.append(f"SSL::profile {tcl_word(a.ssl_profile)}")
    pool = tcl_word(a.pool)
    if a.member:
        # `pool P member A PORT` ignores the monitor: only send there while the member is not down
        member = f"{pool} member {tcl_word(a.member[0])} {a.member[1]}"
        return out + [f'if {{[LB::status pool {member}] eq "down"}} {{', *_indent(fail(a.failure), 4),
                      "} else {", f"    pool {member}", "}"]
    if a.failure and not a.fallback_on_failure:
        return out + [f"if {{[active_members {pool}] < 1}} {{", *_indent(fail(a.failure), 4),
                      "} else {", f"    pool {pool}", "}"]
    return out + [f"pool {pool}"]


def _redirect(a: Redirect) -> list[str]:
    """A route that redirects: the Location keeps the request's path and query (HTTP::uri)."""
    if a.host:
        out = [f"set lbc_location {tcl_word(a.scheme + '://' + a.host + a.port_suffix)}"]
    else:
        out = [f"set lbc_location {tcl_word(a.scheme + '://')}",
               f'append lbc_location [getfield [HTTP::host] ":" 1] {tcl_word(a.port_suffix)}']
    return out + [f'HTTP::respond {a.status} noserver Location "$lbc_location[HTTP::uri]" Connection close']


def _route_access(access: tuple[Optional[str], Optional[str]]) -> list[str]:
    """The route's access list, after the listener's: deny first, then the allow data group."""
    deny, allow = access
    tests = ([f"[class match [IP::client_addr] equals {tcl_word(deny)}]"] if deny else []) \
        + ([f"![class match [IP::client_addr] equals {tcl_word(allow)}]"] if allow else [])
    return [f"if {{ {' || '.join(tests)} }} {{", '    HTTP::respond 403 content "Forbidden" noserver Connection close',
            "    return", "}"]


def fail(f: Optional[Failure]) -> list[str]:
    """What a route does when no member can serve: the fallback's answer or pool, else reject."""
    if f is not None and f.kind == "respond":
        return [f"HTTP::respond {f.status} content {tcl_word(f.body)} noserver Content-Type "
                f"{tcl_word(f.content_type)} Connection close"]
    if f is not None and f.kind == "pool":
        return [f"pool {tcl_word(f.pool)}"]
    return ["reject"]


def no_route(l7: bool) -> list[str]:
    return ["HTTP::respond 404 noserver Connection close" if l7 else "reject"]


def _indent(lines: list[str], width: int) -> list[str]:
    pad = " " * width
    return [pad + line for line in lines]


def _render(template: str, **ctx) -> str:
    global _ENV
    if _ENV is None:
        _ENV = _env()
    text = _ENV.get_template(template).render(**ctx)
    # Blank lines only between the `when` blocks, no trailing spaces: stable, reviewable output.
    out: list[str] = []
    for l in (l.rstrip() for l in text.splitlines()):
        if l == "" and (not out or out[-1] != "}"):
            continue
        out.append(l)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
