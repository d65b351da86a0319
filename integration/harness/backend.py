#!/usr/bin/env python3
"""A conformance backend: one process per server. Standard library only (it also runs in containers).

    backend.py --name s1 --listen 127.0.0.21 [--port 0] [--mode http|tcp]
               [--tls CERT KEY] [--client-ca CA] [--proxy-protocol] [--health-path /health]

It prints `READY <port>` on stdout once it listens (port 0 = the OS picks one), then serves until
it is killed. Every answer names the server and says what it saw, as one JSON object:

  {"server": NAME, "port": its own port, "peer": "addr:port", "proxy": {"version": 2, "src": ..., "dst": ...} | null,
   "tls": bool, "sni": ..., "client_cert": {"subject_cn": ...} | null, "method", "path", "headers": [[k, v], ...]}

mode http (plain, or TLS with --tls):
  GET <health path>          the health page: status and body as set through /_lbc/health
                             (default 200 "STATUS: ACTIVE")
  POST /_lbc/health          body {"status": 200, "body": "ALL SESSIONS IN USE"}: switch the health page
  GET /_lbc/active           {"active": N}: requests in progress (e.g. held by /slow)
  GET /_lbc/checks           {"checks": N, "last": the JSON object above for the last health page request}
  GET /slow?ms=N             answer after N ms (holds a connection open)
  GET /stream?n=N&ms=M       chunked: N chunks, one every M ms, each a JSON line with its index
  GET /?respond_header=N:V   the JSON object above, with header N: V in the answer (repeatable)
  GET with Upgrade: websocket  RFC 6455 echo of text/binary frames until the client closes
  anything else              the JSON object above
mode tcp: after an optional PROXY header (v1 or v2), writes the JSON object and a newline, then
echoes every byte it receives.

--proxy-protocol makes a PROXY v1/v2 header mandatory before anything else (before TLS, too).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
MAX_SLOW_MS = 120_000


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed inside a PROXY header")
        data += chunk
    return data


def read_proxy_header(sock: socket.socket) -> dict:
    """Read a PROXY v1 or v2 header byte-exactly from a raw socket (nothing after it is consumed)."""
    first = recv_exact(sock, 12)
    if first == PROXY_V2_SIG:
        ver_cmd, fam, length = struct.unpack("!BBH", recv_exact(sock, 4))
        body = recv_exact(sock, length)
        info = {"version": 2, "command": "PROXY" if ver_cmd & 0x0F == 1 else "LOCAL"}
        if fam >> 4 == 1 and len(body) >= 12:            # AF_INET
            src, dst = socket.inet_ntop(socket.AF_INET, body[0:4]), socket.inet_ntop(socket.AF_INET, body[4:8])
            sport, dport = struct.unpack("!HH", body[8:12])
            info.update(src=src, dst=dst, src_port=sport, dst_port=dport)
        elif fam >> 4 == 2 and len(body) >= 36:          # AF_INET6
            src, dst = socket.inet_ntop(socket.AF_INET6, body[0:16]), socket.inet_ntop(socket.AF_INET6, body[16:32])
            sport, dport = struct.unpack("!HH", body[32:36])
            info.update(src=src, dst=dst, src_port=sport, dst_port=dport)
        return info
    if not first.startswith(b"PROXY "):
        raise ConnectionError(f"no PROXY header: {first!r}")
    line = first
    while not line.endswith(b"\r\n"):
        if len(line) > 107:
            raise ConnectionError("PROXY v1 line too long")
        line += recv_exact(sock, 1)
    parts = line.decode("ascii").split()
    info = {"version": 1, "command": parts[1]}
    if parts[1] in ("TCP4", "TCP6") and len(parts) == 6:
        info.update(src=parts[2], dst=parts[3], src_port=int(parts[4]), dst_port=int(parts[5]))
    return info


class State:
    def __init__(self, name: str, health_path: str):
        self.name = name
        self.health_path = health_path
        self.health_status = 200
        self.health_body = "STATUS: ACTIVE"
        self.active = 0
        self.checks = 0                      # health page requests served
        self.last_check = None               # what the last one looked like (TLS, SNI, headers)
        self.lock = threading.Lock()


# Per-connection facts learned before the HTTP handler runs (PROXY header, TLS), per thread.
_conn = threading.local()


def describe(sock, peer, state: State, method="", path="", headers=()) -> dict:
    return {
        "server": state.name,
        "port": sock.getsockname()[1],
        "peer": f"{peer[0]}:{peer[1]}",
        "proxy": getattr(_conn, "proxy", None),
        "tls": getattr(_conn, "tls", False),
        "sni": getattr(_conn, "sni", None),
        "client_cert": getattr(_conn, "client_cert", None),
        "method": method,
        "path": path,
        "headers": [[k, v] for k, v in headers],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lbc-backend"

    def log_message(self, fmt, *args):  # quiet: the tests read answers, not logs
        pass

    @property
    def st(self) -> State:
        return self.server.state

    def send_json(self, obj, status=200, extra=()):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def info(self) -> dict:
        return describe(self.connection, self.client_address, self.st, self.command, self.path, self.headers.items())

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if urlsplit(self.path).path == "/_lbc/health":
            req = json.loads(data or b"{}")
            with self.st.lock:
                self.st.health_status = int(req.get("status", self.st.health_status))
                self.st.health_body = str(req.get("body", self.st.health_body))
            self.send_json({"server": self.st.name, "health_status": self.st.health_status,
                            "health_body": self.st.health_body})
            return
        self.send_json(dict(self.info(), body=data.decode("utf-8", "replace")))

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if urlsplit(self.path).path == "/_lbc/active":
            with self.st.lock:
                return self.send_json({"server": self.st.name, "active": self.st.active})
        if urlsplit(self.path).path == "/_lbc/checks":
            with self.st.lock:
                return self.send_json({"server": self.st.name, "checks": self.st.checks, "last": self.st.last_check})
        with self.st.lock:
            self.st.active += 1
        try:
            self.serve_get()
        finally:
            with self.st.lock:
                self.st.active -= 1

    def serve_get(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if url.path == self.st.health_path:
            with self.st.lock:
                status, text = self.st.health_status, self.st.health_body
                self.st.checks += 1
                self.st.last_check = self.info()
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        if url.path == "/slow":
            time.sleep(min(int(query.get("ms", ["1000"])[0]), MAX_SLOW_MS) / 1000)
            return self.send_json(self.info())
        if url.path == "/stream":
            return self.stream(int(query.get("n", ["5"])[0]), int(query.get("ms", ["200"])[0]))
        # ?respond_header=Name:value (repeatable): headers the answer carries (S28 changes them on the way)
        extra = [tuple(h.split(":", 1)) for h in query.get("respond_header", []) if ":" in h]
        self.send_json(self.info(), extra=extra)

    def stream(self, n: int, ms: int):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for i in range(min(n, 1000)):
            if i:
                time.sleep(ms / 1000)
            line = (json.dumps({"server": self.st.name, "chunk": i, "sent": time.time()}) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Server", self.st.name)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            try:
                opcode, payload = ws_read(self.rfile)
            except (ConnectionError, OSError, ValueError):
                return
            if opcode == 8:                                   # close: answer it and stop
                ws_write(self.wfile, 8, payload[:2])
                return
            if opcode == 9:                                   # ping
                ws_write(self.wfile, 10, payload)
            elif opcode in (1, 2):
                ws_write(self.wfile, opcode, payload)


def ws_read(rfile, masked_expected: bool = True) -> tuple[int, bytes]:
    head = rfile.read(2)
    if len(head) < 2:
        raise ConnectionError("closed")
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    masked = head[1] & 0x80
    if length == 126:
        length = struct.unpack("!H", rfile.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", rfile.read(8))[0]
    if length > 1 << 20:
        raise ValueError("frame too large")
    mask = rfile.read(4) if masked else b""
    payload = rfile.read(length)
    if len(payload) < length:
        raise ConnectionError("closed inside a frame")
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload


def ws_write(wfile, opcode: int, payload: bytes) -> None:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    wfile.write(head + payload)
    wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, state: State, tls_ctx, proxy_protocol: bool, mode: str):
        self.state = state
        self.tls_ctx = tls_ctx
        self.proxy_protocol = proxy_protocol
        self.mode = mode
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        """Runs in the connection's own thread: PROXY header, then TLS, then the protocol."""
        _conn.proxy = None
        _conn.tls = False
        _conn.sni = None
        _conn.client_cert = None
        request.settimeout(30)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # headers and body leave at once
        try:
            if self.proxy_protocol:
                _conn.proxy = read_proxy_header(request)
            if self.tls_ctx is not None:
                request = self.tls_ctx.wrap_socket(request, server_side=True)
                _conn.tls = True
                _conn.sni = getattr(request, "lbc_sni", None)
                cert = request.getpeercert()
                if cert:
                    subject = dict(x[0] for x in cert.get("subject", ()))
                    _conn.client_cert = {"subject_cn": subject.get("commonName")}
        except (OSError, ssl.SSLError, ConnectionError, ValueError):
            return
        request.settimeout(None)
        if self.mode == "tcp":
            return self.tcp_echo(request, client_address)
        self.RequestHandlerClass(request, client_address, self)

    def tcp_echo(self, sock, peer):
        try:
            sock.sendall((json.dumps(describe(sock, peer, self.state)) + "\n").encode())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                sock.sendall(data)
        except OSError:
            return


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", choices=("http", "tcp"), default="http")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--client-ca", help="request (optionally) a client certificate signed by this CA")
    p.add_argument("--proxy-protocol", action="store_true")
    p.add_argument("--health-path", default="/health")
    a = p.parse_args(argv)
    ctx = None
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        if a.client_ca:
            ctx.load_verify_locations(a.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.sni_callback = lambda sslsock, name, _ctx: setattr(sslsock, "lbc_sni", name)
    srv = Server((a.listen, a.port), Handler, State(a.name, a.health_path), ctx, a.proxy_protocol, a.mode)
    print(f"READY {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
