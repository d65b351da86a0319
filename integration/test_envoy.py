"""Envoy only: free text with every character a config language could trip on reaches Envoy
unchanged, proven by what the real proxy does with it (answer bytes, health decisions)."""
from __future__ import annotations

import shutil

import pytest

from harness import client
from harness.env import server
from harness.net import client_addresses, wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("envoy") is None, reason="envoy is not installed")]

# (line separators and C1 controls are refused by the loader: tests/test_loader.py; `${name}` is a
# placeholder for a value: tests/test_compose.py)
HOSTILE = 'No "sessions" {x} ; # $v %d %LOCAL_REPLY_BODY% \\n \\ \' é ✓ 🙂 ]]> <a> \u00a0 y'
CLIENT = client_addresses(1)[0]


@pytest.fixture
def envoy_env(local_env):
    return local_env("envoy")


def test_hostile_fallback_body_and_health_text(envoy_env):
    a = envoy_env.backend("a")
    health = {"http": {"path": "/health", "expect_body": HOSTILE}, "interval": "500ms", "timeout": "400ms",
              "rise": 1, "fall": 1}
    lb = envoy_env.deploy({"app": {"servers": [server(a)], "health": health,
                                   "fallback": {"respond": {"status": 503, "body": HOSTILE,
                                                            "content_type": "text/plain; charset=utf-8"}}}},
                          [{"name": "web", "routes": [{"service": "app"}]}])
    addr, port = lb.addr("web")

    def answer():
        r = client.try_request(addr, port, "/", source=CLIENT)
        return r and (r.status, r.body.decode("utf-8") if r.status == 503 else r.server)

    # "STATUS: ACTIVE" lacks the text: the server is out and the fallback answers, byte for byte.
    wait_until(lambda: answer() == (503, HOSTILE), 5, interval=0.1, what="the fallback answer")
    r = client.request(addr, port, "/", source=CLIENT)
    assert r.header("Content-Type") == "text/plain; charset=utf-8"
    # A health page containing the text (as UTF-8) brings the server in.
    a.set_health(body=f"before {HOSTILE} after")
    wait_until(lambda: answer() == (200, "a"), 5, interval=0.1, what="the server back by its body")
    a.set_health(body=HOSTILE[:-1])
    wait_until(lambda: answer() == (503, HOSTILE), 5, interval=0.1, what="the server out again")
