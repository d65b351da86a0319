"""`lbc apply`: put a topology into service on the balancer host, safely.

    compile -> check with the real binary -> keep the previous version -> swap the files by rename
    -> activate (reload, runtime API, or nothing for Envoy's watched files) -> verify -> or roll back

The config folder (`--config-dir`) is where the proxy reads its files; it may hold files lbc did not
write (certificates, logs, nginx's pid): lbc replaces only the files it wrote, listed in
`.lbc/manifest.json`, and refuses to overwrite any other. `.lbc/` also holds the previous version
(`previous/`), the staging folder of the check (`stage/`) and the lock.

Activation per target (how the proxy runs on the host is given by flags, `Host` below):
- haproxy: master-worker mode (`-W`). A reload through the master CLI (`-S SOCKET`: `reload`),
  a command (`systemctl reload haproxy`), or SIGUSR2 to the master (its PID file). When only
  server weights or maintenance states changed and the master CLI is known, the change goes
  through the runtime API instead (`set server B/S weight|state`): no reload, sessions undisturbed.
- nginx: SIGHUP to the master (its PID file, `nginx.pid` in the folder by default) or a command.
- envoy: no reload. Envoy runs on `bootstrap.json` and watches `lds.json`, `cds.json` and
  `eds/*.json`; each is replaced by a rename, endpoints first and listeners last.

Exit codes: 0 applied (or nothing to change), 1 refused before anything changed, or failed and
rolled back (the previous version is serving), 2 usage or I/O problem (also: another apply holds
the lock), 4 failed and the rollback failed too: a person must look.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import owned
from .model import Topology
from .targets import spec

STATE_DIR = ".lbc"
MANIFEST = "manifest.json"
STATS_SOCKET = "haproxy.sock"      # in .lbc/: HAProxy's stats socket for hitless reloads
EXIT_ROLLBACK_FAILED = 4
CHECK_TIMEOUT = 120


@dataclass
class Host:
    """How the proxy runs on this host (flags of `lbc apply`)."""
    pid_file: Optional[str] = None         # the master's PID file
    master_socket: Optional[str] = None    # HAProxy master CLI (haproxy -W -S PATH)
    reload_command: Optional[str] = None   # e.g. "systemctl reload haproxy" (run without a shell)
    admin: list[str] = field(default_factory=list)    # Envoy admin URLs (one per process of a fleet)
    probes: list[str] = field(default_factory=list)   # URLs that must answer (status < 500) afterwards
    runtime: bool = True                   # use HAProxy's runtime API when it is enough
    activate: bool = True                  # False: install the files only (the proxy is not running yet)
    timeout: float = 20.0                  # seconds to wait for the new version to run
    binary: Optional[str] = None           # the proxy binary (default: the target's name on PATH)


class Refused(Exception):
    """Stopped before anything on the host changed (exit 1)."""


class UsageError(Exception):
    """A usage or I/O problem (exit 2)."""


class StepFailed(Exception):
    """Activation or verification failed after the swap: roll back."""


@dataclass
class Outcome:
    result: str = ""                       # applied | unchanged | refused | rolled-back | rollback-failed
    path: str = ""                         # reload | runtime | watched-files | endpoint-files | none
    steps: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def code(self) -> int:
        return {"applied": 0, "unchanged": 0, "refused": 1, "rolled-back": 1,
                "rollback-failed": EXIT_ROLLBACK_FAILED}[self.result]

    def text(self) -> str:
        lines = [f"  {s}" for s in self.steps]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines.append({"applied": f"applied ({self.path})", "unchanged": "nothing to change",
                      "refused": "refused: nothing on the host was changed",
                      "rolled-back": "FAILED and rolled back: the previous version is serving",
                      "rollback-failed": "FAILED and the rollback failed too: check the proxy now"}[self.result])
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        return json.dumps({"result": self.result, "path": self.path, "steps": self.steps, "error": self.error,
                           "exit_code": self.code}, indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------ files

def deployed_files(model: Topology, target, config_dir: str,
                   apply_layout: Optional[bool] = None) -> tuple[dict[str, str], set[str]]:
    """What `lbc apply` writes into a config folder for this target, and the files an earlier apply
    wrote that this one no longer has. `apply_layout` None: as the folder shows (an apply's
    manifest, else a plain `lbc compile -o` output).

    The apply layout differs from `lbc compile` in two ways, both for reloads without loss:
    Envoy gets the watched-files layout (the same lowering as envoy.json), and HAProxy's global
    section gets a stats socket with `expose-fd listeners`, HAProxy's documented way for the
    master to hand the listening sockets to the next worker (it adds `-x` itself when one exists)
    instead of the new worker binding its own. (On 2.6.12 a quick test without it refused no
    connection either; the documented mechanism is kept rather than relying on that.)"""
    from .pipeline import render
    folder = os.path.abspath(config_dir)
    manifest = read_manifest(folder)
    if apply_layout is None:
        apply_layout = bool(manifest.files)
    if target.name == "envoy" and apply_layout:
        from lbc.targets.envoy import dynamic_files
        files = dynamic_files(model, folder)
    else:
        files = render(model, target)
    if target.name == "haproxy" and apply_layout:
        files["haproxy.cfg"] = _with_stats_socket(files["haproxy.cfg"], os.path.join(folder, STATE_DIR, STATS_SOCKET))
    return files, set(manifest.files) - set(files)


def _with_stats_socket(cfg: str, path: str) -> str:
    from lbc.targets.haproxy import quote
    line = (f"    # added by lbc apply: a reload hands the listening sockets to the new worker\n"
            f"    stats socket {quote(path)} mode 600 level admin expose-fd listeners\n")
    head, sep, tail = cfg.partition("\nglobal\n")
    if not sep:
        raise ValueError("haproxy.cfg has no global section")
    return head + sep + line + tail


_ABOUT = "files written by lbc apply, with the SHA-256 of their content; lbc apply replaces or removes only these"


def read_manifest(folder: str) -> owned.Manifest:
    """The files an earlier apply wrote into the config folder (none: an empty manifest)."""
    return _read_manifest(os.path.join(folder, STATE_DIR, MANIFEST))


def _read_manifest(path: str) -> owned.Manifest:
    try:
        return owned.read(path) or owned.Manifest({})
    except owned.ManifestError:
        raise UsageError(f"{path} cannot be read as lbc's list of the files it wrote (edited?): "
                         "move the config folder's .lbc away and apply again") from None


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _swap_order(target: str, rels) -> list[str]:
    """Envoy must know a cluster's endpoints before the cluster, and clusters before the listeners
    that use them; the bootstrap (read at start only) goes last. Others: any order (read at reload)."""
    if target != "envoy":
        return sorted(rels)
    rank = {"cds.json": 1, "lds.json": 2, "bootstrap.json": 3}
    return sorted(rels, key=lambda r: (rank.get(r, 0), r))


class _Folder:
    """The config folder and lbc's state inside it."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.state = os.path.join(self.path, STATE_DIR)

    def sub(self, *parts: str) -> str:
        return os.path.join(self.state, *parts)

    def lock(self):
        os.makedirs(self.state, exist_ok=True)
        f = open(self.sub("lock"), "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise UsageError(f"another lbc apply is running on {self.path} (pid {holder}); try again when it ends") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        return f

    def current(self, rels) -> dict[str, Optional[str]]:
        return {rel: _read(os.path.join(self.path, rel)) for rel in rels}

    def refuse_foreign(self, files: dict[str, str], manifest: owned.Manifest) -> None:
        """lbc never overwrites a file it did not write (an `lbc compile -o` folder counts as lbc's)."""
        from .pipeline import OUTPUT_MARKER
        if os.path.exists(os.path.join(self.path, OUTPUT_MARKER)):
            return
        ours = set(manifest.files)
        foreign = [rel for rel in sorted(files) if rel not in ours and os.path.lexists(os.path.join(self.path, rel))]
        if foreign:
            raise Refused(f"{os.path.join(self.path, foreign[0])} exists and was not written by lbc apply; "
                          "move it away (lbc replaces only files it wrote)")

    def stage(self, files: dict[str, str], owned: set[str]) -> str:
        """The new files in `.lbc/stage`, next to links to everything else in the folder
        (certificates, logs), so the proxy's own check resolves relative paths as it will live."""
        stage = self.sub("stage")
        shutil.rmtree(stage, ignore_errors=True)
        os.makedirs(stage)
        for rel, text in files.items():
            _write(os.path.join(stage, rel), text)
        mine = {rel.split("/")[0] for rel in set(files) | owned} | {STATE_DIR}
        for entry in sorted(os.listdir(self.path)):
            if entry not in mine:
                os.symlink(os.path.join(self.path, entry), os.path.join(stage, entry))
        return stage

    def keep_previous(self, manifest: owned.Manifest) -> None:
        prev = self.sub("previous")
        shutil.rmtree(prev, ignore_errors=True)
        os.makedirs(prev)
        for rel in manifest.files:
            src = os.path.join(self.path, rel)
            if os.path.exists(src):
                os.makedirs(os.path.dirname(os.path.join(prev, rel)), exist_ok=True)
                shutil.copy2(src, os.path.join(prev, rel))
        _write(os.path.join(prev, MANIFEST), owned.text(manifest, _ABOUT))

    def install(self, target: str, files: dict[str, str], source: str, stale: set[str],
                manifest: owned.Manifest) -> None:
        """Each file replaced by a rename from `source` (same file system); files of the earlier
        version that this one lacks are removed (lbc wrote them); the manifest is written last."""
        for rel in _swap_order(target, files):
            dest = os.path.join(self.path, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(os.path.join(source, rel), dest)
        for rel in sorted(stale):
            try:
                os.remove(os.path.join(self.path, rel))
            except FileNotFoundError:
                pass
        tmp = self.sub(MANIFEST + ".tmp")
        _write(tmp, owned.text(manifest, _ABOUT))
        os.replace(tmp, self.sub(MANIFEST))

    def restore_previous(self, target: str, new_files: set[str]) -> dict[str, str]:
        """Put the kept version back (by rename, as any install); returns its files."""
        prev = self.sub("previous")
        manifest = _read_manifest(os.path.join(prev, MANIFEST))
        old = manifest.files
        restore = self.sub("restore")
        shutil.rmtree(restore, ignore_errors=True)
        for rel in old:
            os.makedirs(os.path.dirname(os.path.join(restore, rel)), exist_ok=True)
            shutil.copy2(os.path.join(prev, rel), os.path.join(restore, rel))
        self.install(target, dict.fromkeys(old, ""), restore, new_files - set(old), manifest)
        shutil.rmtree(restore, ignore_errors=True)
        return {rel: _read(os.path.join(self.path, rel)) or "" for rel in old}


# ------------------------------------------------------------------ the proxies

def _run(argv: list[str], cwd: Optional[str] = None, timeout: float = CHECK_TIMEOUT) -> tuple[int, str]:
    try:
        p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise UsageError(f"{argv[0]}: not found (give the binary with --binary)") from None
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(argv)} did not finish within {timeout:.0f} s"
    return p.returncode, (p.stdout + p.stderr).strip()


def master_cli(path: str, command: str, timeout: float = 10.0) -> str:
    """One command on HAProxy's master CLI (`@1 ...` reaches the current worker)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode(errors="replace")


def _try(fn, *args):
    try:
        return fn(*args)
    except OSError:
        return None


def _children(pid: int) -> set[int]:
    """The PIDs whose parent is `pid` (a master's workers)."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid(path: str) -> int:
    text = _read(path)
    if not text or not text.split()[0].isdigit():
        raise StepFailed(f"no PID in {path}: is the proxy running?")
    pid = int(text.split()[0])
    if not _alive(pid):
        raise StepFailed(f"the master process {pid} (from {path}) is not running")
    return pid


def _wait(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise StepFailed(f"{what} (waited {timeout:.0f} s)")
        time.sleep(interval)


class _Proxy:
    """Check, activate and verify for one target. Subclasses fill in the target's ways."""
    name = ""

    def __init__(self, host: Host, folder: _Folder):
        self.host, self.folder = host, folder
        self.binary = host.binary or self.name

    def check(self, stage: str, model: Topology, target) -> str:
        raise NotImplementedError

    def require(self) -> None:
        """UsageError when the flags do not say how to activate (checked before anything changes)."""

    def snapshot(self):
        """What runs now, to tell afterwards that something new runs."""
        return None

    def preflight(self, current: dict, files: dict) -> Optional[str]:
        """A last check before the swap that the proxy's own check cannot make (Refused stops)."""
        return None

    def activate(self, commands) -> str:
        raise NotImplementedError

    def verify(self, before, commands) -> str:
        raise NotImplementedError

    def run_command(self) -> str:
        code, out = _run(shlex.split(self.host.reload_command), timeout=60)
        if code != 0:
            raise StepFailed(f"`{self.host.reload_command}` failed ({code}): {out[-500:]}")
        return f"ran `{self.host.reload_command}`"

    def runtime_commands(self, old: dict, new: dict) -> Optional[list[str]]:
        return None


class _MasterWorker(_Proxy):
    """A master process that forks new workers on reload and keeps the old ones if the new
    configuration fails: "new workers appeared" is the proof the new version runs."""
    reload_signal = signal.SIGHUP
    default_pid_file: Optional[str] = None

    def pid_file(self) -> Optional[str]:
        return self.host.pid_file or (os.path.join(self.folder.path, self.default_pid_file)
                                      if self.default_pid_file else None)

    def snapshot(self):
        pf = self.pid_file()
        if pf is None:
            return None
        pid = _pid(pf)
        return pid, _children(pid)

    def require(self) -> None:
        if not (self.host.reload_command or self.pid_file() or getattr(self.host, "master_socket", None)):
            raise UsageError(f"lbc cannot reload {self.name}: give --pid-file, --reload-command"
                             + (" or --master-socket" if self.name == "haproxy" else ""))

    def activate(self, commands) -> str:
        if self.host.reload_command:
            return self.run_command()
        pid_file = self.pid_file()
        if pid_file is None:   # require() refused this before anything changed; HAProxy's master CLI came first
            raise StepFailed(f"lbc cannot reload {self.name}: give --pid-file or --reload-command")
        pid = _pid(pid_file)
        os.kill(pid, self.reload_signal)
        return f"sent {signal.Signals(self.reload_signal).name} to the master process {pid}"

    def verify(self, before, commands) -> str:
        if before is None:
            return "no PID file: cannot tell which version runs (probes only)"
        pid, old = before

        def fresh():
            if not _alive(pid):
                raise StepFailed(f"the master process {pid} exited")
            return _children(pid) - old
        new = _wait(fresh, self.host.timeout, f"{self.name} started no new worker: it refused the new "
                                                    "configuration (see its log)")
        return f"master {pid} is running new worker(s) {', '.join(map(str, sorted(new)))}"


class _HAProxy(_MasterWorker):
    name = "haproxy"
    reload_signal = signal.SIGUSR2

    def check(self, stage: str, model: Topology, target) -> str:
        from lbc.targets.haproxy import key_links
        for link, key in key_links(model):   # HAProxy 2.6 finds a separate key only at <certificate>.key
            dest = os.path.join(stage, link)
            if not os.path.lexists(dest) and os.path.exists(os.path.join(self.folder.path, key)):
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.symlink(os.path.join(self.folder.path, key), dest)
        code, out = _run(spec(self.name).check_command("haproxy.cfg", quiet=True, binary=self.binary), cwd=stage)
        if code != 0:
            raise Refused(f"haproxy -c refused the new configuration:\n{out}")
        return "haproxy -c: configuration valid"

    def proc(self) -> tuple[int, int, set[int]]:
        """(reloads, failed reloads, worker PIDs) from the master CLI's `show proc`."""
        # The master re-executes itself on reload: its socket refuses connections for a moment.
        text = _wait(lambda: _try(master_cli, self.host.master_socket, "show proc"), self.host.timeout,
                     f"the master CLI {self.host.master_socket} does not answer")
        m = re.search(r"^\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", text, re.M)
        if not m:
            raise StepFailed(f"unexpected answer to `show proc`: {text[:300]}")
        workers = {int(w) for w in re.findall(r"^(\d+)\s+worker\s", text, re.M)}
        return int(m.group(1)), int(m.group(2)), workers

    def snapshot(self):
        if self.host.master_socket:
            return self.proc()
        return super().snapshot()

    @property
    def socket(self) -> str:
        """The master CLI's path: the runtime API and a reload through the CLI are chosen only when given."""
        if not self.host.master_socket:
            raise StepFailed("this step needs HAProxy's master CLI: give --master-socket")
        return self.host.master_socket

    def activate(self, commands) -> str:
        if commands is not None:
            for c in commands:
                answer = master_cli(self.socket, "@1 " + c).strip()
                if answer:
                    raise StepFailed(f"runtime API refused `{c}`: {answer[:300]}")
            return "runtime API: " + "; ".join(commands)
        if self.host.master_socket and not self.host.reload_command:
            master_cli(self.host.master_socket, "reload")
            return "reload through the master CLI"
        return super().activate(commands)

    def verify(self, before, commands) -> str:
        if commands is not None:
            return self.verify_runtime(commands)
        if not self.host.master_socket:
            return super().verify(before, commands)
        reloads, failed, old = before

        def reloaded():
            r, f, workers = self.proc()
            if f > failed:
                raise StepFailed("HAProxy refused the new configuration at reload (see its log); "
                                 "the master kept the old workers")
            return r > reloads and (workers - old)
        _wait(reloaded, self.host.timeout, "HAProxy did not report a new worker after the reload")
        return "master CLI: reload counted, a new worker runs"

    def verify_runtime(self, commands) -> str:
        for c in commands:
            m = re.match(r"set server (\S+)/(\S+) (weight (\d+)|state (maint|ready))$", c)
            if m is None:   # lbc writes only these two commands (haproxy_runtime_delta)
                raise StepFailed(f"cannot verify `{c}`")
            state = master_cli(self.socket, f"@1 show servers state {m.group(1)}")
            row = next((l.split() for l in state.splitlines() if len(l.split()) > 8 and l.split()[3] == m.group(2)), None)
            if row is None:
                raise StepFailed(f"server {m.group(1)}/{m.group(2)} not found after `{c}`")
            admin, weight = int(row[6]), int(row[7])
            if m.group(4) is not None and weight != int(m.group(4)):
                raise StepFailed(f"{m.group(1)}/{m.group(2)} has weight {weight} after `{c}`")
            if m.group(5) is not None and bool(admin & 0x01) != (m.group(5) == "maint"):
                raise StepFailed(f"{m.group(1)}/{m.group(2)} has admin state {admin} after `{c}`")
        return "runtime API: the servers report the new weights and states"

    def preflight(self, current: dict, files: dict) -> Optional[str]:
        """A new listener on a port another process holds passes `haproxy -c`, but at the reload
        HAProxy 2.6 pauses the running listeners while it retries the bind (connections are refused
        for about 2 s) before giving up: find it first by binding the new addresses for a moment."""
        before = set(_BIND.findall(current.get("haproxy.cfg") or ""))
        for address, port in sorted(set(_BIND.findall(files["haproxy.cfg"])) - before):
            address = address.strip("[]")
            with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((address, int(port)))
                except OSError as e:
                    if e.errno == errno.EADDRINUSE:
                        raise Refused(f"{address}:{port} is in use by another process: the reload would fail") from e
        return None

    def runtime_commands(self, old: dict, new: dict) -> Optional[list[str]]:
        if not (self.host.master_socket and self.host.runtime) or set(old) != set(new):
            return None
        changed = [rel for rel in new if old[rel] != new[rel]]
        if changed != ["haproxy.cfg"] or old["haproxy.cfg"] is None:
            return None
        return haproxy_runtime_delta(old["haproxy.cfg"], new["haproxy.cfg"])


_BIND = re.compile(r"^\s+bind (\[[0-9a-fA-F:.]+\]|[^\s:\[]+):(\d+)", re.M)
_SERVER = re.compile(r"^\s+server (\S+) (\S+)(.*)$")
_SECTION = re.compile(r"^(backend|listen) (\S+)")


def _server_settings(tail: str) -> Optional[tuple[int, bool, str]]:
    """(weight, disabled, every other setting) of a server line's tail; None if it has quotes."""
    if "'" in tail or '"' in tail:
        return None
    words = tail.split()
    weight, disabled, rest = 1, False, []
    i = 0
    while i < len(words):
        if words[i] == "weight" and i + 1 < len(words):
            weight, i = int(words[i + 1]), i + 2
            continue
        if words[i] == "disabled":
            disabled = True
        else:
            rest.append(words[i])
        i += 1
    return weight, disabled, " ".join(rest)


def haproxy_runtime_delta(old: str, new: str) -> Optional[list[str]]:
    """Runtime API commands that bring a worker running `old` to what `new` says, when the two
    differ only in server weights and maintenance (`disabled`); None when a reload is needed.
    lbc writes a server on hold as `weight 0`, so hold and back are weight changes."""
    a, b = old.splitlines(), new.splitlines()
    if len(a) != len(b):
        return None
    section, commands = None, []
    for x, y in zip(a, b):
        m = _SECTION.match(y)
        if m or (y and not y[0].isspace()):
            section = m.group(2) if m else None
        if x == y:
            continue
        mx, my = _SERVER.match(x), _SERVER.match(y)
        if not (mx and my and section) or mx.group(1, 2) != my.group(1, 2):
            return None
        sx, sy = _server_settings(mx.group(3)), _server_settings(my.group(3))
        if sx is None or sy is None or sx[2] != sy[2]:
            return None
        name = f"{section}/{my.group(1)}"
        if sx[0] != sy[0]:
            commands.append(f"set server {name} weight {sy[0]}")
        if sx[1] != sy[1]:
            commands.append(f"set server {name} state {'maint' if sy[1] else 'ready'}")
    return commands or None


class _Nginx(_MasterWorker):
    name = "nginx"
    reload_signal = signal.SIGHUP
    default_pid_file = "nginx.pid"     # lbc's nginx.conf: `pid nginx.pid;` in the prefix (the folder)

    def check(self, stage: str, model: Topology, target) -> str:
        code, out = _run(spec(self.name).check_command(os.path.join(stage, "nginx.conf"), prefix=stage + os.sep,
                                                       quiet=True, binary=self.binary))
        if code != 0:
            raise Refused(f"nginx -t refused the new configuration:\n{out}")
        return "nginx -t: configuration valid"


class _Envoy(_Proxy):
    name = "envoy"

    def check(self, stage: str, model: Topology, target) -> str:
        # `--mode validate` does not read watched files: validate the same lowering as one static file.
        from lbc.targets.envoy import bootstrap, serialise
        path = os.path.join(stage, ".lbc-validate.json")
        _write(path, serialise(bootstrap(model)))
        code, out = _run(spec(self.name).check_command(path, quiet=True, binary=self.binary)
                         + ["--disable-hot-restart"], cwd=stage)
        if code != 0:
            raise Refused(f"envoy --mode validate refused the new configuration:\n{out[-3000:]}")
        return "envoy --mode validate: configuration valid"

    def stats(self, admin: str) -> dict[str, str]:
        url = admin.rstrip("/") + "/stats?filter=(version_text|update_rejected)$"
        with urllib.request.urlopen(url, timeout=5) as r:
            lines = r.read().decode().splitlines()
        return dict(l.split(": ", 1) for l in lines if ": " in l)

    def snapshot(self):
        out = {}
        for admin in self.host.admin:
            try:
                out[admin] = self.stats(admin)
            except OSError as e:
                raise StepFailed(f"Envoy admin {admin} does not answer: {e}") from e
        return out

    def activate(self, commands) -> str:
        return "no reload: Envoy follows the renamed files"

    def verify(self, before, versions) -> str:
        if not self.host.admin:
            return "no --admin URL: cannot tell which version runs (probes only)"
        for admin in self.host.admin:
            rejected_before = sum(int(v) for k, v in before[admin].items() if k.endswith("update_rejected"))

            def running(admin=admin, rejected_before=rejected_before):   # bound now: called in this pass
                now = self.stats(admin)
                if sum(int(v) for k, v in now.items() if k.endswith("update_rejected")) > rejected_before:
                    raise StepFailed(f"Envoy ({admin}) rejected the update (see its log); it keeps the old one")
                texts = {v.strip('"') for k, v in now.items() if k.endswith("version_text")}
                return versions <= texts
            try:
                _wait(running, self.host.timeout, f"Envoy ({admin}) does not run the new version")
            except OSError as e:
                raise StepFailed(f"Envoy admin {admin} stopped answering: {e}") from e
        return f"{len(self.host.admin)} Envoy process(es) run the new version"


PROXIES = {"haproxy": _HAProxy, "nginx": _Nginx, "envoy": _Envoy}


def probe(urls: list[str], timeout: float) -> str:
    """Every URL answers with a status below 500 within the timeout (retried)."""
    for url in urls:
        def answers(url=url):
            try:
                with urllib.request.urlopen(url, timeout=3) as r:
                    return r.status < 500
            except urllib.error.HTTPError as e:
                return e.code < 500
            except OSError:
                return False
        _wait(answers, timeout, f"probe {url} did not answer below 500", interval=0.25)
    return f"probes answered: {', '.join(urls)}" if urls else ""


def _envoy_versions(files: dict[str, str], stats_excluded: bool) -> set[str]:
    """The version_info of every watched file (what Envoy's admin reports as version_text)."""
    out = set()
    for rel, text in files.items():
        if rel == "bootstrap.json" or (stats_excluded and rel.startswith("eds/")):
            continue   # past 1,000 clusters per-cluster statistics are off: endpoint versions not visible
        out.add(json.loads(text)["version_info"])
    return out


# ------------------------------------------------------------------ the procedure

def apply(model: Topology, target, config_dir: str, host: Host, source: str = "") -> Outcome:
    if target.name not in PROXIES:
        raise UsageError(f"lbc apply supports {', '.join(PROXIES)}; {target.name} is deployed by its own tools")
    if not os.path.isdir(config_dir):
        raise UsageError(f"{config_dir} is not a folder")
    folder = _Folder(config_dir)
    out = Outcome()
    lock = folder.lock()
    try:
        _apply(model, target, folder, host, source, out)
    finally:
        shutil.rmtree(folder.sub("stage"), ignore_errors=True)
        lock.close()
    return out


def _apply(model: Topology, target, folder: _Folder, host: Host, source: str, out: Outcome) -> None:
    proxy = PROXIES[target.name](host, folder)
    if host.activate:
        proxy.require()
    files, stale = deployed_files(model, target, folder.path, apply_layout=True)
    manifest = read_manifest(folder.path)
    current = folder.current(files)
    changed = sorted(rel for rel in files if current[rel] != files[rel])
    out.steps.append(f"compiled {source or model.name} for {target.name}: {len(files)} file(s), "
                     f"{len(changed)} changed" + (f" ({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''})"
                                                  if changed else "") + (f", {len(stale)} to remove" if stale else ""))
    if not changed and not stale:
        out.result, out.path = "unchanged", "none"
        return
    try:
        folder.refuse_foreign(files, manifest)
        stage = folder.stage(files, stale)
        out.steps.append(proxy.check(stage, model, target))
        if host.activate:
            proxy.preflight(current, files)
    except Refused as e:
        out.result, out.error = "refused", str(e)
        return
    commands = proxy.runtime_commands(current, files) if host.activate else None
    before = proxy_snapshot(proxy, host, out)
    if before is _FAILED:
        return
    folder.keep_previous(manifest)
    out.steps.append(f"kept the previous version in {folder.sub('previous')}")
    new_manifest = owned.Manifest({rel: [owned.sha256(text.encode("utf-8"))] for rel, text in files.items()},
                                  {"target": target.name, "topology": model.name})
    folder.install(target.name, files, stage, stale, new_manifest)
    out.steps.append(f"swapped {len(changed)} file(s) by rename" + (f", removed {len(stale)}" if stale else ""))
    if not host.activate:
        out.result, out.path = "applied", "files only (--no-activate)"
        return
    out.path = _path_name(target.name, commands, changed)
    try:
        _activate_and_verify(proxy, target, files, commands, before, host, out)
        out.result = "applied"
    except (StepFailed, OSError, UsageError) as e:   # e.g. a reload command that is not there
        out.error = str(e)
        out.steps.append(f"failed: {e}; rolling back")
        _rollback(proxy, target, folder, files, current, commands, host, out)


_FAILED = object()


def proxy_snapshot(proxy, host: Host, out: Outcome):
    if not host.activate:
        return None
    try:
        return proxy.snapshot()
    except StepFailed as e:   # nothing changed yet: the proxy is not in a state to be changed
        out.result, out.error = "refused", str(e)
        return _FAILED


def _path_name(target: str, commands, changed: list[str]) -> str:
    if commands is not None:
        return "runtime API, no reload"
    if target == "envoy":
        return "endpoint files, no reload" if all(r.startswith("eds/") for r in changed) else "watched files, no reload"
    return "reload"


def _activate_and_verify(proxy, target, files, commands, before, host: Host, out: Outcome) -> None:
    out.steps.append(proxy.activate(commands))
    if target.name == "envoy":
        excluded = "stats_config" in json.loads(files["bootstrap.json"])
        out.steps.append(proxy.verify(before, _envoy_versions(files, excluded)))
    else:
        out.steps.append(proxy.verify(before, commands))
    if host.probes:
        out.steps.append(probe(host.probes, host.timeout))


def _rollback(proxy, target, folder: _Folder, files, old_files: dict, commands, host: Host, out: Outcome) -> None:
    try:
        previous = folder.restore_previous(target.name, set(files))
        out.steps.append("restored the previous files")
        before = proxy.snapshot()
        back = None
        if commands is not None:
            back = haproxy_runtime_delta(files["haproxy.cfg"], old_files["haproxy.cfg"]) or []
        out.steps.append(proxy.activate(back))
        if target.name == "envoy":
            excluded = "stats_config" in json.loads(previous.get("bootstrap.json", "{}"))
            # Envoy kept the old version when it rejected the new one: only the ones it took must return
            out.steps.append(proxy.verify(before, _envoy_versions(previous, excluded)))
        else:
            out.steps.append(proxy.verify(before, back))
        out.result = "rolled-back"
    except (StepFailed, OSError, UsageError) as e:
        out.steps.append(f"rollback failed: {e}")
        out.result = "rollback-failed"
        return
    if host.probes:
        # The previous version runs again; a probe failing now fails for another reason (a server,
        # the probe itself): said, but the rollback stands.
        try:
            out.steps.append(probe(host.probes, host.timeout))
        except StepFailed as e:
            out.steps.append(f"after the rollback too: {e}")
