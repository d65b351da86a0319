"""The parts of nginx.conf that repeat per host, upstream or map, written as Python text.

nginx.conf.j2 keeps the file's skeleton; what it would otherwise loop over thousands of times (one
server{} per host, one upstream per service and pinned server, the map entries) is built here, with
what is the same for every host of a listener computed once. Every user string goes through `quote`.
"""
from __future__ import annotations

import re
from typing import Optional

from lbc.model import Listener
from lbc.tls_profiles import openssl_ciphers

_MAP_KEYWORDS = {"default", "hostnames", "include", "volatile"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN = re.compile(r'[^\x00-\x1f\x7f\\"$]*\Z')   # nothing to escape or refuse (most names and addresses)


def quote(value, map_key: bool = False) -> str:
    """The one way a user string reaches nginx.conf: a double-quoted token.

    Backslashes and quotes are escaped for nginx's parser; `$` (which starts a variable in
    `return` texts and map values) becomes `${lbc_dollar}`, a geo variable holding "$". A map
    key that equals one of map's keywords gets the `\\` prefix nginx asks for.
    """
    s = str(value)
    if _PLAIN.match(s) and not (map_key and s in _MAP_KEYWORDS):
        return f'"{s}"'
    if _CONTROL.search(s):
        raise ValueError(f"control character in {s!r}: the schema should have refused it")
    if map_key and s in _MAP_KEYWORDS:
        s = "\\" + s
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${lbc_dollar}")
    return f'"{s}"'


def dur(ms: int) -> str:
    """Milliseconds in the largest unit that is exact: 5s, 30m, 1h."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


PROTOCOLS = {"1.0": "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "1.1": "TLSv1.1 TLSv1.2 TLSv1.3",
             "1.2": "TLSv1.2 TLSv1.3", "1.3": "TLSv1.3"}


def _name(name: str) -> str:
    """A header name as a directive argument: nginx takes it literally (no variables in names), and an
    RFC 7230 token holds no quote, backslash or space; quoted so `#`, `'` and `$` stay plain characters."""
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise ValueError(f"{name!r} is not a header name: the schema should have refused it")
    return f'"{name}"'


def header_lines(l: Listener) -> dict[str, list[str]]:
    """The listener's header changes as directives. "proxy": with the other proxy_set_header lines (nginx
    inherits those only as a whole); "answer": add_header lines, written in the server{} and in every
    location, because a location with an add_header of its own (the stickiness cookie) inherits none."""
    req, resp = l.headers.request, l.response_headers
    proxy = [f"proxy_set_header {_name(n)} {quote(v)};" for n, v in req.set]
    proxy += [f'proxy_set_header {_name(n)} "";' for n in req.remove]
    proxy += [f"proxy_hide_header {_name(n)};" for n in list(resp.remove) + [n for n, _v in resp.set]]
    answer = [f"add_header {_name(n)} {quote(v)} always;" for n, v in resp.set + resp.add]
    return {"proxy": proxy, "answer": answer}


def _lines(indent: str, lines: list[str]) -> str:
    return "".join(f"{indent}{line}\n" for line in lines)


# ------------------------------------------------------------------ settings shared by http and stream
def read_timeout(l: Listener) -> int:
    """nginx has one read timeout for requests and upgraded (WebSocket) connections: the longer one."""
    return max(l.timeouts.server_ms, l.timeouts.tunnel_ms) if l.websocket else l.timeouts.server_ms


def proxy_settings(l: Listener, indent: str) -> str:
    """How a listener proxies (in http{} when every listener agrees, else in each server{})."""
    t = l.timeouts
    lines = [f"client_header_timeout {dur(t.client_ms)};", f"client_body_timeout {dur(t.client_ms)};",
             f"send_timeout {dur(t.client_ms)};", f"keepalive_timeout {dur(t.client_ms)};",
             f"proxy_connect_timeout {dur(t.connect_ms)};", f"proxy_read_timeout {dur(read_timeout(l))};",
             f"proxy_send_timeout {dur(read_timeout(l))};", "proxy_http_version 1.1;",
             "# every proxy_set_header is set at this one level: a level that set one would lose all the others",
             "proxy_set_header Host $http_host;"]
    if l.websocket:
        lines += ["proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $lbc_connection_upgrade;"]
    else:
        lines += ["# no \"Connection: close\" (nginx's default): the server connection stays open for the next request",
                  'proxy_set_header Connection "";']
    if l.forwarded_headers:
        lines += ["proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                  "proxy_set_header X-Forwarded-Proto $scheme;"]
    lines += header_lines(l)["proxy"]
    if not l.buffering:
        lines.append("proxy_buffering off;")
    return _lines(indent, lines)


def listener_tls(l: Listener, cert) -> str:
    """A decrypting listener's certificate and TLS profile."""
    tls = l.tls
    lines = [f"ssl_certificate {quote(cert.cert)};", f"ssl_certificate_key {quote(cert.key or cert.cert)};",
             f"ssl_protocols {PROTOCOLS[tls.min_version]};"]
    if tls.cipher_list:
        lines.append(f"ssl_ciphers {quote(openssl_ciphers(tls.cipher_list, tls.min_version))};")
    lines += [f"ssl_conf_command Ciphersuites {quote(':'.join(tls.ciphersuite_list))};",
              f"ssl_ecdh_curve {quote(':'.join(tls.curve_list))};",
              f"ssl_prefer_server_ciphers {'on' if tls.server_cipher_order else 'off'};"]
    if tls.client_auth != "none":
        if tls.client_ca:
            lines.append(f"ssl_client_certificate {quote(tls.client_ca)};")
        lines.append(f"ssl_verify_client {'on' if tls.client_auth == 'require' else 'optional'};")
    return _lines("        ", lines)


def upstream_tls(u: Optional[dict], stream: bool, indent: str = "        ") -> str:
    """TLS towards the servers (targets/nginx.py `_upstream_tls`); "" when the servers speak plain."""
    if not u:
        return ""
    lines = ["proxy_ssl on;"] if stream else []
    lines.append(f"proxy_ssl_server_name {'on' if u['sni'] else 'off'};")
    if u["name"]:
        lines.append(f"proxy_ssl_name {quote(u['name'])};")
    if u["verify"]:
        lines += ["proxy_ssl_verify on;", "proxy_ssl_verify_depth 9;", f"proxy_ssl_trusted_certificate {quote(u['ca'])};"]
    else:
        lines.append("proxy_ssl_verify off;")
    return _lines(indent, lines)


# ------------------------------------------------------------------ upstreams and maps
def upstreams(ups: list, zone: str, kib: int, keepalive: int) -> str:
    """Every upstream of a block; the first one sizes the shared zone."""
    out = []
    for i, u in enumerate(ups):
        out.append(f"\n    upstream {quote(u.name)} {{\n        zone {zone}{f' {kib}k' if i == 0 else ''};\n")
        if u.method:
            out.append(f"        {u.method};\n")
        for addr, params in u.servers:
            out.append(f"        server {quote(addr)}{''.join(' ' + p for p in params)};\n")
        if zone == "lbc_http":
            if i == 0:
                out.append("        # idle connections kept open to the servers (per worker): no new connection per request\n")
            out.append(f"        keepalive {keepalive};\n")
        out.append("    }\n")
    return "".join(out)


def maps(block_maps: list[dict]) -> str:
    out = []
    for m in block_maps:
        out.append(f"\n    map {m['source']} {m['var']} {{\n")
        if m["hostnames"]:
            out.append("        hostnames;\n")
        for key, value, literal in m["entries"]:
            out.append(f"        {quote(key, map_key=True)} {quote(value) if literal else value};\n")
        if m["default"] is not None:
            out.append(f"        default {quote(m['default'])};\n")
        out.append("    }\n")
    return "".join(out)


# ------------------------------------------------------------------ http server blocks
class ServerText:
    """The server{} blocks of one http listener; what every block of the listener repeats is made once."""

    def __init__(self, l: Listener, shared: bool, log_directive: Optional[str]):
        self.l = l
        self.shared = shared
        answer = header_lines(l)["answer"]
        self.answer = _lines("        ", answer)
        self.answer_loc = _lines("            ", answer)
        self.log = f"        access_log {log_directive};\n" if log_directive is not None else ""
        self.proxy = "" if shared else proxy_settings(l, "        ")
        self.ssl = " ssl" if l.decrypts else ""
        self.openings: dict[tuple, str] = {}    # (listen, default) -> the block's first lines
        self.tls: dict[str, str] = {}           # certificate name -> its lines
        self.up_tls: dict[tuple, str] = {}      # _upstream_tls(...) items -> its lines (server level)

    def _opening(self, listen: str, default: bool) -> str:
        key = (listen, default)
        if key not in self.openings:
            mark, flag = (" (default server)", " default_server") if default else ("", "")
            self.openings[key] = (f"\n    # listener {self.l.name}{mark}\n    server {{\n"
                                  f"        listen {quote(listen)}{self.ssl}{flag};\n")
        return self.openings[key]

    def _cert(self, cert) -> str:
        if cert.name not in self.tls:
            self.tls[cert.name] = listener_tls(self.l, cert)
        return self.tls[cert.name]

    def _upstream_tls(self, u: Optional[dict], indent: str) -> str:
        if not u:
            return ""
        key = (indent, tuple(u.items()))
        if key not in self.up_tls:
            self.up_tls[key] = upstream_tls(u, False, indent)
        return self.up_tls[key]

    def block(self, b: dict) -> str:
        out = [self._opening(b["listen"], b["default"])]
        if b["hosts"]:
            out.append(f"        server_name {' '.join(quote(h) for h in b['hosts'])};\n")
        if b["cert"]:
            out.append(self._cert(b["cert"]))
        out += [self.log, self.answer]
        out.append(_server_checks(b))
        locs = b["locations"]
        if len(locs) == 1 and "status" in locs[0]:
            out.append(f"\n        location / {{\n{self.answer_loc}            return {locs[0]['status']};\n        }}\n    }}\n")
            return "".join(out)
        out += [self.proxy, self._upstream_tls(b["upstream_tls"], "        ")]
        if len(locs) > 2:
            out.append("        recursive_error_pages on;\n")
        for loc in locs:
            out.append(f"\n        location {loc['name']} {{\n{self.answer_loc}")
            out.append(self._location_body(loc))
            out.append("        }\n")
        out.append("    }\n")
        return "".join(out)

    def _location_body(self, loc: dict) -> str:
        if "status" in loc:
            return f"            return {loc['status']};\n"
        if "redirect" in loc:
            return f"            return {loc['redirect']['status']} \"{loc['redirect']['location']}\";\n"
        if "respond" in loc:
            r = loc["respond"]
            return f"            default_type {quote(r['content_type'])};\n            return {r['status']} {quote(r['body'])};\n"
        out = []
        if loc.get("refused"):
            out.append(f"            if ({loc['refused']}) {{\n                return 403;\n            }}\n")
        if "rewrite" in loc:
            # `break` would also stop the `return` of a jump: without it the named location gets the new path
            out.append(f"            rewrite {quote(loc['rewrite'])} $1{'' if 'jump' in loc else ' break'};\n")
        if "jump" in loc:
            out.append(f"            error_page 418 = {loc['jump']};\n            return 418;\n")
            return "".join(out)
        if loc.get("upstream_tls"):
            out.append(self._upstream_tls(loc["upstream_tls"], "            "))
        out.append(f"            proxy_pass {quote(loc['scheme'] + '://' + loc['target'])};\n")
        if loc["next"]:
            out.append(f"            error_page 502 504 = {loc['next']};\n")
        if loc["setcookie"]:
            out.append(f"            add_header Set-Cookie {loc['setcookie']} always;\n")
        return "".join(out)


def _server_checks(b: dict) -> str:
    """What a server{} does before choosing a location: refuse, redirect, rate limit."""
    out = []
    if b["refused"]:
        out.append(f"        if ({b['refused']}) {{\n            return 403;\n        }}\n")
    rd = b["redirect"]
    if rd:
        if rd["unless"]:
            out.append(f"        if ($uri !~ {quote(rd['unless'])}) {{\n"
                       f"            return {rd['status']} \"{rd['location']}\";\n        }}\n")
        else:
            out.append(f"        return {rd['status']} \"{rd['location']}\";\n")
    rate = b["rate"]
    if rate:
        burst = f" burst={rate['burst']}" if rate["burst"] else ""
        out.append(f"        limit_req zone={rate['name']}{burst} nodelay;\n        limit_req_status 429;\n")
    return "".join(out)
