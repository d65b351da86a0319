"""`lbc compile --docker`: a Dockerfile and a compose.yaml that run the compiled files in a container.

The Dockerfile bakes the compiled files into the target's official image. Certificates and keys
are never baked in: compose.yaml mounts each one read-only at the path the compiled config names
(a relative path from the config folder, as the proxy in the container resolves it), from the file
lbc read on this host. Host networking, because the listeners bind the VIP addresses of the host.
"""
from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from typing import Callable, Optional

import yaml

from .model import Topology

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
    # (file, link) beyond the files at their own path, both as the config names them
    extra_mounts: Optional[Callable[[Topology], list[tuple[str, str]]]] = None


def _haproxy_key_mounts(model: Topology) -> list[tuple[str, str]]:
    """HAProxy 2.6 reads a separate key only at <certificate>.key: mount the key there."""
    from .targets.haproxy import key_links
    return [(key, link) for link, key in key_links(model)]


RUNTIMES = {
    "haproxy": Runtime("haproxy:2.6", "/usr/local/etc/haproxy", "haproxy.cfg",
                       ("haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"),
                       extra_mounts=_haproxy_key_mounts),
    "envoy": Runtime("envoyproxy/envoy:v1.40-latest", "/etc/envoy", "envoy.json",
                     ("envoy", "-c", "/etc/envoy/envoy.json"),
                     env=(("ENVOY_UID", "0"),)),   # the image's entrypoint must not switch user (no SETUID here)
    # nginx writes its pid, logs and temp files under the prefix (-p): the tmpfs /tmp.
    "nginx": Runtime("nginx:1.22", "/etc/nginx", "nginx.conf",
                     ("nginx", "-p", "/tmp/", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"),
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
        if lst.tls.mode in ("terminate", "bridge"):
            for name in lst.tls.certificates:
                cert = model.certificate(name)
                paths.update(p for p in (cert.cert, cert.key) if p)
            if lst.tls.client_ca:
                paths.add(lst.tls.client_ca)
    for svc in model.services:
        if svc.upstream_tls and svc.upstream_tls.ca:
            paths.add(svc.upstream_tls.ca)
    return sorted(paths)


def mounts(model: Topology, target: str) -> list[tuple[str, str]]:
    """(file on this host, path in the container) for every file the balancer reads at run time."""
    rt = RUNTIMES[target]
    named = [(p, p) for p in mounted_files(model)] + (rt.extra_mounts(model) if rt.extra_mounts else [])
    out: dict[str, str] = {}
    for src, dest in named:
        dest = dest if posixpath.isabs(dest) else posixpath.normpath(posixpath.join(rt.config_dir, dest))
        out.setdefault(dest, model.local_file(src))   # certs/a.pem and ./certs/a.pem: one mount
    return [(src, dest) for dest, src in out.items()]


def _image_name(model: Topology, target: str) -> str:
    return f"lbc-{model.name}-{target}".lower()


def dockerfile(model: Topology, target: str, compiled: dict[str, str]) -> str:
    rt = RUNTIMES[target]
    lines = [
        f"# Written by `lbc compile --docker` for topology '{model.name}', target {target}.",
        "# Bakes the compiled files into the image; certificates and keys are mounted at run time",
        f"# by {COMPOSE} (docker compose up -d --build). BASE may name a mirror of the same image.",
        f"ARG BASE={rt.base}",
        "FROM ${BASE}",
    ]
    for rel in sorted(compiled):
        lines.append(f"COPY [{_dockerfile_path(rel)}, {json.dumps(rt.config_dir + '/' + rel)}]")
    lines += [f"WORKDIR {rt.config_dir}"]
    if rt.prepare:
        lines.append(f"RUN {rt.prepare}")
    lines += [f"ENV {k}={v}" for k, v in rt.env]
    lines.append(f"CMD {json.dumps(list(rt.command))}")
    return "\n".join(lines) + "\n"


def compose(model: Topology, target: str) -> str:
    rt = RUNTIMES[target]
    name = _image_name(model, target)
    volumes = mounts(model, target)
    service = {
        "build": {"context": "."},
        "image": name,
        "network_mode": "host",
        "restart": "unless-stopped",
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
    if volumes:
        service["volumes"] = [{"type": "bind", "source": _compose_str(src), "target": _compose_str(dest),
                               "read_only": True} for src, dest in volumes]
    doc = {"services": {target: service}}   # no top-level `name`: Compose v1 (Debian's docker-compose) refuses it
    head = [
        f"# Written by `lbc compile --docker` for topology '{model.name}', target {target}.",
        "# Run from this folder: docker compose up -d --build",
    ]
    if volumes:
        head.append("# Each source file below must exist on this host; keep keys owned by root, mode 0600.")
    return "\n".join(head) + "\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)


def docker_files(model: Topology, target: str, compiled: dict[str, str]) -> dict[str, str]:
    """{relative path: text} to add to the compiled output; ValueError for a target with no container."""
    if target not in RUNTIMES:
        raise ValueError(f"--docker is available for {', '.join(supported())}, not {target}")
    clash = {DOCKERFILE, COMPOSE} & set(compiled)
    if clash:
        raise ValueError(f"target {target} already writes {sorted(clash)}")
    return {DOCKERFILE: dockerfile(model, target, compiled), COMPOSE: compose(model, target)}
