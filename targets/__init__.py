"""The back ends. One module per target; the registry below is explicit (no import magic).

Each target has a TargetSpec below (name, module, main file, binary, container runtime) and a
module exposing TARGET, an object with:
  name          the --target value
  summary       one line for `lbc targets`
  capabilities  {feature: Support} for every feature in lbc.capabilities.FEATURES
  render(model) -> {relative path: text}, deterministic
  main_file     the file the proxy loads (`lbc compile` without -o prints it)
  for_people    paths (or folder prefixes ending in /) of output files the main file does not read
  refusals(model) optional: yields (feature, path, why) for features it supports in general but
                cannot express in this combination; each becomes an LBC801 error
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Optional, Protocol

from lbc.capabilities import Support
from lbc.model import Topology


class Target(Protocol):
    name: str
    summary: str
    capabilities: dict[str, Support]
    main_file: str
    for_people: tuple[str, ...]

    def render(self, model: Topology) -> dict[str, str]: ...


@dataclass(frozen=True)
class Runtime:
    """How the proxy runs the compiled files in a container (`lbc compile --docker`, the Docker tests)."""
    image: str                     # the upstream image (the Dockerfile's default BASE)
    config_dir: str                # where the compiled files go; the proxy resolves relative paths from here
    command: tuple[str, ...]       # the proxy in the foreground, reading config_dir/main_file


@dataclass(frozen=True)
class TargetSpec:
    """What is known about a target without importing its back end: the one place each fact lives.
    `lbc targets`, the CLI help, the Docker files, the test validators and runners read it."""
    name: str                      # the --target value
    module: str                    # inside lbc.targets, exposing TARGET (imported on first use only,
                                   # so `lbc validate` never pays for the back ends)
    main_file: str                 # the file the proxy loads (`lbc compile` without -o prints it)
    binary: Optional[str] = None   # the proxy's program (and process name); None: no local binary (F5)
    runtime: Optional[Runtime] = None   # None: lbc writes no container files for it
    # The proxy's own check of a compiled folder (after the binary): {main} is the main file's path,
    # {prefix} the folder where nginx may write. The output README, lbc apply, the test validators and
    # the conformance runners all run this; `quiet` is added where only the verdict is wanted.
    check: tuple[str, ...] = ()
    quiet: tuple[str, ...] = ()
    # Source-IP stickiness is a hash of the client address, the same on every balancer node (nginx,
    # Envoy), not a per-node table that a failover loses (HAProxy, BIG-IP): LBC703 is only a note.
    source_ip_hash: bool = False

    def check_command(self, main: str, prefix: str = "", quiet: bool = False,
                      binary: Optional[str] = None) -> list[str]:
        """The check as an argument list (`binary`: another path to the same program, lbc apply's --binary)."""
        assert self.binary and self.check, f"target {self.name} has no local check"
        return ([binary or self.binary] + [a.format(main=main, prefix=prefix) for a in self.check]
                + list(self.quiet if quiet else ()))

    def check_text(self, main: str, prefix: str = "") -> str:
        """The check as a person types it (the output README), with `main` written as given."""
        return " ".join(self.check_command(main, prefix))


SPECS: dict[str, TargetSpec] = {s.name: s for s in (
    TargetSpec("haproxy", "haproxy", "haproxy.cfg", "haproxy",
               Runtime("haproxy:2.6", "/usr/local/etc/haproxy",
                       ("haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg")),
               check=("-c", "-f", "{main}"), quiet=("-q",)),
    TargetSpec("envoy", "envoy", "envoy.json", "envoy",
               Runtime("envoyproxy/envoy:v1.40-latest", "/etc/envoy", ("envoy", "-c", "/etc/envoy/envoy.json")),
               check=("--mode", "validate", "-c", "{main}"), quiet=("--log-level", "error"), source_ip_hash=True),
    # nginx writes its pid, logs and temp files under the prefix (-p): the container's tmpfs /tmp
    TargetSpec("nginx", "nginx", "nginx.conf", "nginx",
               Runtime("nginx:1.22", "/etc/nginx",
                       ("nginx", "-p", "/tmp/", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;")),
               check=("-t", "-p", "{prefix}", "-c", "{main}"), quiet=("-q",), source_ip_hash=True),
    TargetSpec("f5", "f5", "bigip.conf"),
    TargetSpec("f5-as3", "f5_as3", "as3.json"),
)}


def available() -> list[str]:
    return list(SPECS)


def spec(name: str) -> TargetSpec:
    return SPECS[name]


def get(name: str) -> Target:
    if name not in SPECS:
        raise KeyError(name)
    return importlib.import_module(f"lbc.targets.{SPECS[name].module}").TARGET


def names_text(names: Optional[list[str]] = None) -> str:
    """'haproxy, envoy, nginx, f5 or f5-as3': for help texts and messages."""
    names = available() if names is None else names
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def files_needed_beside(target: Target, files: dict[str, str]) -> list[str]:
    """The output files other than the main one that the proxy reads (host maps, modules.conf)."""
    return sorted(f for f in files if f != target.main_file
                  and not any(f == p or (p.endswith("/") and f.startswith(p)) for p in target.for_people))
