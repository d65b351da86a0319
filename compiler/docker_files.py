"""`lbc compile --docker`: a Dockerfile and a compose.yaml that run the compiled files in a container.

The Dockerfile bakes the compiled files into the target's official image. Certificates and keys
are never baked in: compose.yaml mounts each one read-only at the path the compiled config names
(a relative path from the config folder, as the proxy in the container resolves it), from the file
lbc read, named relative to the output folder (compose resolves it from compose.yaml's folder), so
the folder works from any checkout and its bytes do not depend on where lbc ran. Host networking,
because the listeners bind the VIP addresses of the host.

The container starts through a short shell script: it checks that every VIP is an address of the
host (a clear message instead of a bind error), and for nginx links its log files to the
container's standard output and error (`docker compose logs`).
"""
from __future__ import annotations

import ipaddress
import json
import os
import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Callable, Optional

import yaml

from .model import Topology
from .targets import spec

DOCKERFILE = "Dockerfile"
COMPOSE = "compose.yaml"


@dataclass(frozen=True)
class Runtime:
    base: str                      # default FROM (the Dockerfile's BASE build argument)
    # where the compiled files go in the image; also where the proxy resolves a relative file path
    # from (HAProxy: `default-path config`; nginx: the folder of nginx.conf; Envoy: its working
    # directory, the Dockerfile's WORKDIR)
    config_dir: str
    main: str                      # the main compiled file
    command: tuple[str, ...]
    prepare: str = ""              # shell run at build time, in config_dir
    env: tuple[tuple[str, str], ...] = ()
    tmpfs: tuple[str, ...] = ("/tmp", "/run")
    caps: tuple[str, ...] = ("NET_BIND_SERVICE",)
    logs: tuple[str, ...] = ()     # shell run before the proxy starts: where its log files go
    # (file, link) beyond the files at their own path, both as the config names them
    extra_mounts: Optional[Callable[[Topology], list[tuple[str, str]]]] = None


def _haproxy_key_mounts(model: Topology) -> list[tuple[str, str]]:
    """HAProxy 2.6 reads a separate key only at <certificate>.key: mount the key there."""
    from .targets.haproxy import key_links
    return [(key, link) for link, key in key_links(model)]


def _runtime(target: str, **docker) -> Runtime:
    """The container facts of the target's spec (image, folder, command), with Docker's own settings."""
    ts = spec(target)
    assert ts.runtime is not None, target
    return Runtime(ts.runtime.image, ts.runtime.config_dir, ts.main_file, ts.runtime.command, **docker)


RUNTIMES = {
    "haproxy": _runtime("haproxy", extra_mounts=_haproxy_key_mounts),
    "envoy": _runtime("envoy", env=(("ENVOY_UID", "0"),)),   # the image's entrypoint must not switch user (no SETUID here)
    "nginx": _runtime("nginx",
                      # nginx.conf names error.log and access.log under the prefix: send them to
                      # the container's output, as the official image does for its own files
                      logs=("ln -sf /dev/stderr /tmp/error.log", "ln -sf /dev/stdout /tmp/access.log"),
                      # modules.conf loads the stream module the Debian way; an nginx built with it
                      # inside (the official image) must not load it again.
                      prepare="if [ -f modules.conf ] && nginx -V 2>&1 | grep -qE -- '--with-stream( |$)'; "
                              "then echo '# the stream module is built into this nginx' > modules.conf; fi",
                      # the master starts its workers as another user and hands them its temp folders
                      caps=("NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN")),
}

# The Dockerfile only names files lbc wrote itself; anything else is a bug in a target.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")


def supported() -> list[str]:
    return sorted(RUNTIMES)


def _dockerfile_path(rel: str) -> str:
    """The Dockerfile's one quoting function: JSON-form arguments over a restricted character set."""
    if not _SAFE_PATH.match(rel) or rel.startswith("/") or ".." in rel.split("/"):
        raise ValueError(f"cannot place {rel!r} in a Dockerfile")
    return json.dumps(rel)


def _compose_str(s: str) -> str:
    """compose.yaml's one quoting function: `$` starts an interpolation, `$$` is a literal dollar.
    YAML quoting itself is left to the YAML emitter."""
    return s.replace("$", "$$")


def mounted_files(model: Topology) -> list[str]:
    """The files the balancer itself reads at run time (its certificates, keys and CAs), as the
    compiled config names them."""
    paths: set[str] = set()
    for lst in model.listeners:
        if lst.decrypts:
            for name in lst.tls.certificates:
                cert = model.certificate(name)
                paths.update(p for p in (cert.cert, cert.key) if p)
            if lst.tls.client_ca:
                paths.add(lst.tls.client_ca)
    for svc in model.services:
        if svc.upstream_tls and svc.upstream_tls.ca:
            paths.add(svc.upstream_tls.ca)
    return sorted(paths)


def log_folders(model: Topology) -> list[str]:
    """The folders of access-log files named by absolute paths: the container writes there (mounted
    read-write from the same path on the host; a relative path stays in the container's tmpfs)."""
    files = [l.access_log.file for l in model.listeners if l.access_log is not None and l.access_log.to == "file"]
    return sorted({posixpath.dirname(f) for f in files if f is not None and posixpath.isabs(f)})


def observability_comments(model: Topology) -> list[str]:
    """compose.yaml's word on where the access logs and the metrics are."""
    logs = {l.access_log.to for l in model.listeners if l.access_log is not None and l.access_log.on}
    out = []
    if logs & {"stdout", "stderr"}:
        out.append("# Access logs go to the container's output: docker-compose logs.")
    if log_folders(model):
        out.append("# Access-log files: the folders mounted read-write below (they must exist on this host).")
    if model.admin is not None:
        out.append(f"# Metrics: the admin endpoint on {model.admin.address}:{model.admin.port} (host network, "
                   "not published elsewhere).")
    return out


def _host_path(model: Topology, path: str, out_dir: str) -> str:
    """A file the topology names, as compose.yaml in out_dir finds it: an absolute path as it is,
    a relative one (taken from the topology's folder) relative to out_dir."""
    if os.path.isabs(path):
        return path
    rel = os.path.relpath(model.local_file(path) or path, os.path.abspath(out_dir)).replace(os.sep, "/")
    return rel if rel.startswith("../") else "./" + rel


def mounts(model: Topology, target: str, out_dir: str) -> list[tuple[str, str]]:
    """(file on this host, path in the container) for every file the balancer reads at run time."""
    rt = RUNTIMES[target]
    named = [(p, p) for p in mounted_files(model)] + (rt.extra_mounts(model) if rt.extra_mounts else [])
    out: dict[str, str] = {}
    for src, dest in named:
        dest = dest if posixpath.isabs(dest) else posixpath.normpath(posixpath.join(rt.config_dir, dest))
        out.setdefault(dest, _host_path(model, src, out_dir))   # certs/a.pem and ./certs/a.pem: one mount
    return [(src, dest) for dest, src in out.items()]


def _vip_check(address: str) -> str | None:
    """Shell that stops the container with a clear message when the VIP is not an address of the
    host, unless the host allows binding foreign addresses (a VRRP backup: keepalived moves the VIP)."""
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified or ip.is_loopback:   # a wildcard, or 127/8 and ::1: always local on Linux
        return None
    if ip.version == 4:
        sysctl, table = "/proc/sys/net/ipv4/ip_nonlocal_bind", "/proc/net/fib_trie"
        found = f"grep -A1 -x ' *|-- {ip}' {table} | grep -q 'host LOCAL'"
    else:
        sysctl, table = "/proc/sys/net/ipv6/ip_nonlocal_bind", "/proc/net/if_inet6"
        found = f"grep -q '^{ip.exploded.replace(':', '')} ' {table}"
    message = shlex.quote(f"lbc: VIP {ip} is not an address of this host; add it (ip address add) or let "
                          "keepalived hold it, then start again")
    return f"{{ [ \"$(cat {sysctl} 2>/dev/null)\" = 1 ] || {found} || {{ echo {message} >&2; exit 1; }}; }}"


def start_script(model: Topology, target: str) -> str:
    """The container's command: the VIP checks, the log links, then the proxy itself."""
    rt = RUNTIMES[target]
    checks = [c for c in (_vip_check(a) for a in sorted({l.address for l in model.listeners})) if c]
    return " && ".join([*checks, *rt.logs, "exec " + shlex.join(rt.command)])


def _image_name(model: Topology, target: str) -> str:
    return f"lbc-{model.name}-{target}".lower()


def dockerfile(model: Topology, target: str, compiled: dict[str, str]) -> str:
    rt = RUNTIMES[target]
    lines = [
        f"# Written by `lbc compile --docker` for topology '{model.name}', target {target}.",
        "# Bakes the compiled files into the image; certificates and keys are mounted at run time",
        f"# by {COMPOSE} (docker-compose up -d --build). BASE may name a mirror of the same image.",
        f"ARG BASE={rt.base}",
        "FROM ${BASE}",
    ]
    for rel in sorted(compiled):
        lines.append(f"COPY [{_dockerfile_path(rel)}, {json.dumps(rt.config_dir + '/' + rel)}]")
    lines += [f"WORKDIR {rt.config_dir}"]
    if rt.prepare:
        lines.append(f"RUN {rt.prepare}")
    lines += [f"ENV {k}={v}" for k, v in rt.env]
    lines.append(f"CMD {json.dumps(['sh', '-c', start_script(model, target)])}")
    return "\n".join(lines) + "\n"


def compose(model: Topology, target: str, out_dir: str) -> str:
    rt = RUNTIMES[target]
    name = _image_name(model, target)
    volumes = mounts(model, target, out_dir)
    service = {
        "build": {"context": "."},
        "image": name,
        "network_mode": "host",
        # A few tries for a proxy that dies, then stop: a missing VIP or certificate must show up
        # as an exited container with its reason in `logs`, not as an endless restart loop.
        "restart": "on-failure:3",
        "read_only": True,
        "tmpfs": list(rt.tmpfs),
        # Root in the container (the official haproxy image would run as `haproxy`, which cannot
        # bind ports below 1024 on the host network nor read 0600 root keys), but with no
        # capability beyond binding those ports (and what nginx's master needs for its workers).
        "user": "root",
        "cap_drop": ["ALL"],
        "cap_add": list(rt.caps),
        "security_opt": ["no-new-privileges:true"],
    }
    binds = [{"type": "bind", "source": _compose_str(src), "target": _compose_str(dest), "read_only": True}
             for src, dest in volumes]
    # access-log files: written on the host, the only writable mounts
    binds += [{"type": "bind", "source": _compose_str(d), "target": _compose_str(d), "read_only": False}
              for d in log_folders(model)]
    if binds:
        service["volumes"] = binds
    doc = {"services": {target: service}}   # no top-level `name`: Compose v1 (Debian's docker-compose) refuses it
    head = [
        f"# Written by `lbc compile --docker` for topology '{model.name}', target {target}.",
        "# Run from this folder: docker-compose up -d --build (Compose v1, Debian 12), or",
        "# docker compose up -d --build (Compose v2). Then docker-compose ps / logs show its state.",
    ]
    if volumes:
        head.append("# Each source file below must exist on this host, at its path relative to this folder;")
        head.append("# keep keys owned by root, mode 0600.")
    head += observability_comments(model)
    return "\n".join(head) + "\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)


def docker_files(model: Topology, target: str, compiled: dict[str, str], out_dir: str) -> dict[str, str]:
    """{relative path: text} to add to the output folder out_dir; ValueError for a target with no container."""
    if target not in RUNTIMES:
        raise ValueError(f"--docker is available for {', '.join(supported())}, not {target}")
    clash = {DOCKERFILE, COMPOSE} & set(compiled)
    if clash:
        raise ValueError(f"target {target} already writes {sorted(clash)}")
    return {DOCKERFILE: dockerfile(model, target, compiled), COMPOSE: compose(model, target, out_dir)}
