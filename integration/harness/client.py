"""Client helpers: HTTP(S), streaming, WebSocket and raw TCP, each from a chosen 127.0.0.x source.

Every call opens a fresh connection (so each request is balanced on its own and a source-IP
scenario sees the address it asked for) and has a timeout.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

from .certs import CA, Issued

DEFAULT_TIMEOUT = 10.0


def tls_context(ca: Optional[CA] = None, client_cert: Optional[Issued] = None, verify: bool = True) -> ssl.SSLContext:
    """A client TLS context trusting `ca` (hostname checked against the SNI) and presenting `client_cert`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify and ca is not None:
        ctx.load_verify_locations(ca.cert)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        ctx.load_cert_chain(client_cert.cert, client_cert.key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def connect(address: str, port: int, *, source: Optional[str] = None, tls: Optional[ssl.SSLContext] = None,
            sni: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT) -> socket.socket:
    """A TCP connection from `source` (any port), wrapped in TLS with `sni` when `tls` is given."""
    sock = socket.create_connection((address, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    if tls is not None:
        try:
            sock = tls.wrap_socket(sock, server_hostname=sni)
        except Exception:
            sock.close()
            raise
    return sock


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    peer_cert: Optional[dict] = None          # the certificate the client was shown (TLS)

    def header(self, name: str) -> Optional[str]:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def server(self) -> Optional[str]:
        """The backend's name, when a conformance backend answered."""
        try:
            return self.json().get("server")
        except (ValueError, AttributeError):
            return None

    def seen_header(self, name: str) -> list[str]:
        """Values of a request header as the backend saw it."""
        return [v for k, v in self.json()["headers"] if k.lower() == name.lower()]

    def set_cookies(self) -> dict[str, "SetCookie"]:
        out = {}
        for raw in self.header_all("Set-Cookie"):
            c = parse_set_cookie(raw)
            out[c.name] = c
        return out


@dataclass
class SetCookie:
    name: str
    value: str
    attributes: dict[str, str] = field(default_factory=dict)   # lower-case attribute -> value ("" for flags)
    raw: str = ""


def parse_set_cookie(raw: str) -> SetCookie:
    first, *attrs = [p.strip() for p in raw.split(";")]
    name, _, value = first.partition("=")
    attributes = {}
    for a in attrs:
        if a:
            k, _, v = a.partition("=")
            attributes[k.strip().lower()] = v.strip()
    return SetCookie(name.strip(), value.strip(), attributes, raw)


def request(address: str, port: int, path: str = "/", *, host: Optional[str] = None, source: Optional[str] = None,
            tls: Optional[ssl.SSLContext] = None, sni: Optional[str] = None, method: str = "GET",
            headers: Optional[dict] = None, cookies: Optional[dict] = None, body: Optional[bytes] = None,
            timeout: float = DEFAULT_TIMEOUT) -> Response:
    """One HTTP/1.1 request on a fresh connection. `host` is the Host header (default: address:port);
    `sni` defaults to `host` for TLS."""
    sock = connect(address, port, source=source, tls=tls, sni=sni or host, timeout=timeout)
    peer = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
    try:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
        conn.sock = sock
        hdrs = {"Host": host or f"{address}:{port}", "Connection": "close"}
        if cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.getheaders(), data, peer)
    finally:
        sock.close()


def try_request(*args, **kwargs) -> Optional[Response]:
    """request(), or None when the connection failed (refused, reset, timed out)."""
    try:
        return request(*args, **kwargs)
    except (OSError, http.client.HTTPException):
        return None


def stream(address: str, port: int, path: str, *, host: Optional[str] = None, source: Optional[str] = None,
           tls: Optional[ssl.SSLContext] = None, timeout: float = DEFAULT_TIMEOUT,
           max_bytes: int = 1 << 20) -> Iterator[tuple[float, bytes]]:
    """Yield (arrival time as time.time(), line) for each line of a chunked/streamed response body as it arrives."""
    sock = connect(address, port, source=source, tls=tls, sni=host, timeout=timeout)
    try:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
        conn.sock = sock
        conn.request("GET", path, headers={"Host": host or f"{address}:{port}", "Connection": "close"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise AssertionError(f"stream answered {resp.status}: {resp.read()[:200]!r}")
        pending, total = b"", 0
        while total < max_bytes:
            data = resp.read1(65536)
            if not data:
                break
            now = time.time()
            total += len(data)
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                yield now, line
    finally:
        sock.close()


class WebSocket:
    """A minimal RFC 6455 client (text frames, masked as clients must)."""

    def __init__(self, address: str, port: int, path: str = "/ws", *, host: Optional[str] = None,
                 source: Optional[str] = None, tls: Optional[ssl.SSLContext] = None, timeout: float = DEFAULT_TIMEOUT,
                 cookies: Optional[dict] = None):
        self.sock = connect(address, port, source=source, tls=tls, sni=host, timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        cookie = "Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()) + "\r\n" if cookies else ""
        req = (f"GET {path} HTTP/1.1\r\nHost: {host or address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"{cookie}Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        self.rfile = self.sock.makefile("rb")
        status_line = self.rfile.readline(65536).decode("latin-1")
        self.status = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
        self.headers: list[tuple[str, str]] = []
        while True:
            line = self.rfile.readline(65536).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            k, _, v = line.partition(":")
            self.headers.append((k.strip(), v.strip()))

    def send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self) -> str:
        head = self.rfile.read(2)
        if len(head) < 2:
            raise ConnectionError("websocket closed")
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.rfile.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.rfile.read(8))[0]
        return self.rfile.read(n).decode()

    def close(self) -> None:
        try:
            mask = os.urandom(4)
            self.sock.sendall(bytes([0x88, 0x80]) + mask)
        except OSError:
            pass
        self.rfile.close()
        self.sock.close()


def tcp_hello(address: str, port: int, *, source: Optional[str] = None, tls: Optional[ssl.SSLContext] = None,
              sni: Optional[str] = None, echo: bytes = b"ping\n", timeout: float = DEFAULT_TIMEOUT) -> tuple[dict, bytes]:
    """Against a tcp-mode backend: the JSON line it sends first, and the echo of `echo`."""
    sock = connect(address, port, source=source, tls=tls, sni=sni, timeout=timeout)
    try:
        f = sock.makefile("rb")
        info = json.loads(f.readline(65536))
        sock.sendall(echo)
        got = f.read(len(echo))
        return info, got
    finally:
        sock.close()


class KeepAlive:
    """One persistent HTTP/1.1 connection for many requests (throughput measurements)."""

    def __init__(self, address: str, port: int, *, host: str, source: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.host = host
        self.conn = http.client.HTTPConnection(address, port, timeout=timeout,
                                               source_address=(source, 0) if source else None)

    def get(self, path: str = "/") -> tuple[int, bytes]:
        self.conn.request("GET", path, headers={"Host": self.host})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()
