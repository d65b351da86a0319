"""Drive yaml-language-server (the engine of VS Code's YAML extension and other editors) over stdio
with lbc's schema, as an editor would: open a topology, collect the diagnostics, ask for completions.

    python tests/editor/yaml_ls.py SERVER_JS SCHEMA_JSON TOPOLOGY_YAML [LINE COL]

prints one JSON object: {"diagnostics": [...], "completion": [...]}. Bounded: every wait has a deadline.
"""
from __future__ import annotations

import json
import pathlib
import queue
import subprocess
import sys
import threading
import time

DEADLINE_S = 30


class Client:
    def __init__(self, server_js: str):
        self.proc = subprocess.Popen(["node", server_js, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.notifications: list[dict] = []
        self.inbox: queue.Queue = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()

    def send(self, msg: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _reader(self) -> None:
        while True:
            length = 0
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    self.inbox.put(None)
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.inbox.put(json.loads(self.proc.stdout.read(length)))

    def read(self, end: float) -> dict:
        msg = self.inbox.get(timeout=max(0.0, end - time.monotonic()))
        if msg is None:
            raise RuntimeError("yaml-language-server exited")
        return msg

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            msg = self.read(end)
            if msg.get("id") == self.next_id and "method" not in msg:
                return msg.get("result")
            self.answer(msg)
        raise TimeoutError(method)

    def answer(self, msg: dict) -> None:
        """Server-to-client requests get the answers an editor would give; notifications are kept."""
        if "id" in msg and "method" in msg:
            if msg["method"] == "workspace/configuration":
                self.send({"id": msg["id"], "result": [self.settings["yaml"] for _ in msg["params"]["items"]]})
            else:
                self.send({"id": msg["id"], "result": None})
        elif "method" in msg:
            self.notifications.append(msg)

    def wait_diagnostics(self, uri: str) -> list[dict]:
        """The first diagnostics published for the document (an empty list for a valid one)."""
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            for n in self.notifications:
                if n["method"] == "textDocument/publishDiagnostics" and n["params"]["uri"] == uri:
                    return n["params"]["diagnostics"]
            self.answer(self.read(end))
        raise TimeoutError("no diagnostics published")


def main(server_js: str, schema: str, topology: str, line: int | None = None, col: int | None = None) -> dict:
    schema_uri = pathlib.Path(schema).resolve().as_uri()
    doc = pathlib.Path(topology).resolve()
    c = Client(server_js)
    c.settings = {"yaml": {"schemas": {schema_uri: [doc.name]}, "validate": True, "completion": True,
                           "hover": True, "format": {"enable": False}}}
    try:
        c.request("initialize", {"processId": None, "rootUri": doc.parent.as_uri(), "capabilities": {
            "textDocument": {"completion": {"completionItem": {"documentationFormat": ["markdown", "plaintext"]}}},
            "workspace": {"configuration": True}}})
        c.send({"method": "initialized", "params": {}})
        c.send({"method": "workspace/didChangeConfiguration", "params": {"settings": c.settings}})
        c.send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": doc.as_uri(), "languageId": "yaml", "version": 1, "text": doc.read_text()}}})
        out = {"diagnostics": c.wait_diagnostics(doc.as_uri()), "completion": []}
        if line is not None:
            res = c.request("textDocument/completion", {"textDocument": {"uri": doc.as_uri()},
                                                        "position": {"line": line, "character": col}})
            out["completion"] = (res or {}).get("items", []) if isinstance(res, dict) else (res or [])
        return out
    finally:
        c.proc.kill()
        c.proc.wait(10)


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(args[0], args[1], args[2], *(int(a) for a in args[3:5]))))
