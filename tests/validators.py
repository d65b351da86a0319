"""Each target's real validator, run on lbc's own output in a temporary folder.

VALIDATORS[target](files, workdir) -> (ok, output): write `files` (relative path -> text) under
`workdir` (a pathlib.Path), run the real tool (haproxy -c, nginx -t, envoy --mode validate,
tclsh), and return whether it accepted the configuration with the tool's output.
Each target adds its own entry; the golden-example and property tests use them all.
"""
from __future__ import annotations

from typing import Callable

from lbc.model import ip_of
from lbc.targets import spec

VALIDATORS: dict[str, Callable] = {}


# ---------------------------------------------------------------- envoy
import json as _json
import os as _os
import shutil as _shutil
import subprocess as _subprocess

# Envoy's validate mode reads every certificate, key and CA file it names. Topologies name files
# that CI does not hold (secrets), so files that do not exist are swapped for one throw-away pair.
# Each validator runs the tool in `workdir`, beside the config: a relative path is looked up there,
# where the tool itself resolves it.
_ENVOY_FILE_KEYS = ("certificate_chain", "private_key", "trusted_ca")


def _standin_pair(workdir) -> tuple[str, str]:
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lbc stand-in")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = workdir / "standin.pem", workdir / "standin.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _envoy_standins(node, pair, workdir):
    if isinstance(node, dict) and str(node.get("@type", "")).endswith(".FileAccessLog"):
        # Envoy opens access-log files when it validates: write into the work folder, not where the
        # topology's path (e.g. /var/log/lbc/) points on this machine
        node["path"] = str(workdir / "standin-access.log")
    if isinstance(node, dict):
        for k, v in node.items():
            if (k in _ENVOY_FILE_KEYS and isinstance(v, dict) and "filename" in v
                    and not (workdir / v["filename"]).exists()):
                v["filename"] = pair[1] if k == "private_key" else pair[0]
            else:
                _envoy_standins(v, pair, workdir)
    elif isinstance(node, list):
        for v in node:
            _envoy_standins(v, pair, workdir)


def validate_envoy(files: dict, workdir) -> tuple[bool, str]:
    """`envoy --mode validate` on each bootstrap lbc wrote (admin stays on loopback; nothing binds)."""
    if not _shutil.which(spec("envoy").binary):
        return False, "envoy is not installed"
    pair = _standin_pair(workdir)
    output, ok = [], True
    for rel, text in sorted(files.items()):
        if not rel.endswith(".json"):   # the README beside it
            continue
        config = _json.loads(text)
        _envoy_standins(config, pair, workdir)
        path = workdir / rel.replace("/", "_")
        path.write_text(_json.dumps(config), encoding="utf-8")
        r = _subprocess.run(spec("envoy").check_command(str(path), quiet=True),
                            capture_output=True, text=True, timeout=120, cwd=workdir)
        ok = ok and r.returncode == 0
        output.append(r.stdout + r.stderr)
    return ok, "".join(output)


VALIDATORS["envoy"] = validate_envoy


# ---------------------------------------------------------------- nginx
import re as _re

# Directives whose quoted file must exist for `nginx -t`; missing ones (secrets) get the stand-in pair.
_NGINX_FILES = _re.compile(r'\b(ssl_certificate|ssl_certificate_key|ssl_client_certificate|'
                           r'proxy_ssl_trusted_certificate) "([^"]+)";')


def nginx_command(workdir, *args: str) -> list[str]:
    """nginx on lbc's nginx.conf in `workdir`, which is also the prefix (pid, logs, temp folders)."""
    return [spec("nginx").binary, "-p", f"{workdir}/", "-c", str(workdir / "nginx.conf"), *args]


_NGINX_LISTEN = _re.compile(r'\blisten "([^"]+)"')
# nginx -t opens every access-log file: one whose path leaves the work folder (the prefix), or whose
# folder does not exist here, is written into the work folder instead; the others are checked as written
_NGINX_ACCESS_LOG = _re.compile(r'\baccess_log "([^"]+)"')


def _nginx_log_standin(m, workdir) -> str:
    # the schema keeps quotes, backslashes and `$` out of file paths: the quoted text is the path
    path = _os.path.normpath(_os.path.join(str(workdir), m.group(1)))
    inside = path.startswith(str(workdir) + _os.sep) and _os.path.isdir(_os.path.dirname(path))
    return m.group(0) if inside else 'access_log "standin-access.log"'

_NGINX_SERVER_NAME = _re.compile(r'^\s*server "\[?([^"\]]+?)\]?:[0-9]+"', _re.M)


_UNSHARE = ["unshare", "-n"] if _os.geteuid() == 0 else ["unshare", "-rn"]
_netns: dict = {}


def _netns_available() -> bool:
    if "ok" not in _netns:
        try:
            _netns["ok"] = _subprocess.run([*_UNSHARE, "true"], capture_output=True, timeout=30).returncode == 0
        except OSError:
            _netns["ok"] = False
    return _netns["ok"]


def _free_loopback_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def validate_nginx(files: dict, workdir) -> tuple[bool, str]:
    """`nginx -t` in a private network namespace: nginx -t binds every listen address, and the VIPs
    of a topology are not on this machine, so the namespace allows non-local binds (nothing leaves it).
    Where no namespace can be made (an unprivileged container), each listen socket is swapped for a
    free loopback port instead, and the output says so."""
    if not _shutil.which(spec("nginx").binary):
        return False, "nginx is not installed"
    pair = _standin_pair(workdir)
    netns = _netns_available()
    sockets: dict[str, str] = {}
    for rel, text in files.items():
        if rel == "nginx.conf":
            text = _NGINX_FILES.sub(lambda m: m.group(0) if (workdir / m.group(2)).exists() else
                                    f'{m.group(1)} "{pair[1] if m.group(1) == "ssl_certificate_key" else pair[0]}";',
                                    text)
            text = _NGINX_ACCESS_LOG.sub(lambda m: _nginx_log_standin(m, workdir), text)
            if not netns:
                text = _NGINX_LISTEN.sub(lambda m: 'listen "%s"' % sockets.setdefault(
                    m.group(1), f"127.0.0.1:{_free_loopback_port()}"), text)
        dest = workdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
    argv = spec("nginx").check_command(str(workdir / "nginx.conf"), prefix=f"{workdir}/", quiet=True)
    if netns:
        script = ("echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind && "
                  "{ echo 1 > /proc/sys/net/ipv6/ip_nonlocal_bind || true; } 2>/dev/null && exec \"$@\"")
        # nginx resolves server host names when it reads the file; the names of a topology resolve
        # where it is deployed, not here: inside the namespace they get a stand-in address
        names = sorted({m.group(1) for m in _NGINX_SERVER_NAME.finditer(files.get("nginx.conf", ""))
                        if ip_of(m.group(1)) is None})
        if names and _os.geteuid() == 0:
            hosts = workdir / "standin-hosts"
            hosts.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {n}\n" for n in names))
            script = f"mount --bind {hosts} /etc/hosts && " + script
            argv = [*_UNSHARE, "-m", "sh", "-c", script, "sh", *argv]
        else:
            argv = [*_UNSHARE, "sh", "-c", script, "sh", *argv]
    r = _subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=workdir)
    note = "" if netns else f"(no network namespace: listen sockets swapped for loopback ports {sockets})\n"
    return r.returncode == 0, note + r.stdout + r.stderr


VALIDATORS["nginx"] = validate_nginx


# F5: no BIG-IP can run here. The real checks are lbc's structural check of bigip.conf (parse and
# round trip, per-kind property allow-list, references incl. pools/members inside iRules) and the
# iRule harness's lint under tclsh (Tcl 8.4 constructs only); f5-as3 adds F5's AS3 JSON schema.
def validate_f5(files: dict, workdir) -> tuple[bool, str]:
    import sys
    from lbc.targets.f5_tmsh import check_output
    problems = check_output(files)
    here = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "integration", "f5")
    if here not in sys.path:
        sys.path.insert(0, here)
    from f5sim import lint
    for rel in sorted(files):
        if rel.startswith("irules/"):
            problems += [f"{rel}: {p}" for p in lint(files[rel])]
    return not problems, "\n".join(problems)


VALIDATORS["f5"] = validate_f5


def validate_f5_as3(files: dict, workdir) -> tuple[bool, str]:
    """F5 AS3: F5's published AS3 schema (when ../shared/schemas has a copy), lbc's pointer checks, iRule lint."""
    import json
    import sys
    from lbc.targets.f5_as3 import check_references, schema_problems
    from lbc.targets.f5_tmsh import installed_files
    decl = json.loads(files["as3.json"])
    problems = check_references(decl, installed_files(files.get("README.md", "")))
    root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    schema = _os.path.join(root, "..", "shared", "schemas", "as3-schema.json")
    if _os.path.exists(schema):
        with open(schema, encoding="utf-8") as f:
            problems += schema_problems(decl, json.load(f))
    here = _os.path.join(root, "integration", "f5")
    if here not in sys.path:
        sys.path.insert(0, here)
    from f5sim import lint
    adc = decl["declaration"]
    for _tname, tenant in adc.items():
        if isinstance(tenant, dict) and tenant.get("class") == "Tenant":
            for app in tenant.values():
                for name, obj in (app.items() if isinstance(app, dict) else ()):
                    if isinstance(obj, dict) and obj.get("class") == "iRule":
                        problems += [f"{name}: {p}" for p in lint(obj["iRule"])]
    return not problems, "\n".join(problems)


VALIDATORS["f5-as3"] = validate_f5_as3


# ---------------------------------------------------------------- haproxy
# A `crt` or `ca-file` that does not exist here (secrets) is swapped for a stand-in: for `crt`, one
# PEM holding the stand-in certificate and key (HAProxy 2.6 wants the key in it or at <crt>.key).
_HAPROXY_FILES = _re.compile(r"\b(crt|ca-file) '([^']+)'")


def _haproxy_has_key(path) -> bool:
    if _os.path.exists(f"{path}.key"):
        return True
    with open(path, encoding="utf-8", errors="replace") as f:
        return "PRIVATE KEY-----" in f.read()


def validate_haproxy(files: dict, workdir) -> tuple[bool, str]:
    """`haproxy -c` on lbc's haproxy.cfg in `workdir` (its maps beside it; nothing binds)."""
    if not _shutil.which(spec("haproxy").binary):
        return False, "haproxy is not installed"
    cert, key = _standin_pair(workdir)
    bundle = workdir / "standin-bundle.pem"
    bundle.write_text(open(cert).read() + open(key).read())

    def standin(m):
        kind, path = m.group(1), workdir / m.group(2)
        if path.exists() and (kind == "ca-file" or _haproxy_has_key(path)):
            return m.group(0)
        return f"{kind} '{bundle if kind == 'crt' else cert}'"

    for rel, text in files.items():
        if rel == "haproxy.cfg":
            text = _HAPROXY_FILES.sub(standin, text)
        dest = workdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
    r = _subprocess.run(spec("haproxy").check_command(str(workdir / "haproxy.cfg")), capture_output=True, text=True,
                        timeout=120, cwd=workdir)
    return r.returncode == 0, r.stdout + r.stderr


VALIDATORS["haproxy"] = validate_haproxy


# ---------------------------------------------------------------- balancer nodes (keepalived)
NODE_FILES = ("keepalived.conf", "README.md")   # what lbc adds to a node's folder beside the proxy's files


def node_folders(files: dict) -> dict[str, dict]:
    """A compile with balancer nodes writes <node>/<file>: {node: the proxy's files} (without NODE_FILES,
    which the proxy's validator does not read). Otherwise {"": files}."""
    nodes = {rel.split("/", 1)[0] for rel in files if rel.count("/") == 1 and rel.endswith("/keepalived.conf")}
    if not nodes:
        return {"": files}
    return {n: {rel.split("/", 1)[1]: text for rel, text in files.items()
                if rel.startswith(n + "/") and rel.split("/", 1)[1] not in NODE_FILES}
            for n in sorted(nodes)}


_KA_INTERFACE = _re.compile(r"^\s*interface (\S+)$", _re.M)


def validate_keepalived(text: str, workdir) -> tuple[bool, str]:
    """`keepalived -t` (its own configuration check) on one node's keepalived.conf, in a private network
    namespace that has the interfaces it names (keepalived refuses a configuration whose interface is
    missing); nothing is started. Needs keepalived and a network namespace."""
    if not _shutil.which("keepalived"):
        return False, "keepalived is not installed"
    path = workdir / "keepalived.conf"
    path.write_text(text, encoding="utf-8")
    links = " && ".join(f"ip link add {i} type veth peer name lbcpeer{n}"
                        for n, i in enumerate(sorted(set(_KA_INTERFACE.findall(text)))))
    script = f"{links + ' && ' if links else ''}exec keepalived -t -l -f \"$1\""
    r = _subprocess.run([*_UNSHARE, "sh", "-c", script, "sh", str(path)], capture_output=True, text=True,
                        timeout=60, cwd=workdir)
    return r.returncode == 0, r.stdout + r.stderr


def keepalived_checkable() -> bool:
    return bool(_shutil.which("keepalived")) and _netns_available()


def validate_output(target: str, files: dict, workdir) -> tuple[bool, str]:
    """The target's validator on a compile's files; with balancer nodes, on every node's folder, and
    keepalived's own check on every node's keepalived.conf where it can run."""
    for node, proxy_files in node_folders(files).items():
        folder = workdir / (node or "out")
        folder.mkdir(exist_ok=True)
        ok, output = VALIDATORS[target](proxy_files, folder)
        if not ok:
            return ok, output
        if node and keepalived_checkable():
            ok, output = validate_keepalived(files[f"{node}/keepalived.conf"], folder)
            if not ok:
                return ok, output
    return True, ""
