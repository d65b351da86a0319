"""Real TLS ClientHello bytes, made offline by Python's ssl module (no network)."""
from __future__ import annotations

import ssl
from typing import Optional


def client_hello(server_name: Optional[str]) -> bytes:
    """The first flight a TLS client sends, with `server_name` as SNI (None: no SNI)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
    if not data or data[0] != 22:
        raise RuntimeError("no ClientHello produced")
    return data
