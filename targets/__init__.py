"""The back ends. One module per target; the registry below is explicit (no import magic).

A target is an object with:
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
from typing import Protocol

from lbc.capabilities import Support
from lbc.model import Topology


class Target(Protocol):
    name: str
    summary: str
    capabilities: dict[str, Support]
    main_file: str
    for_people: tuple[str, ...]

    def render(self, model: Topology) -> dict[str, str]: ...


# target name -> module (inside lbc.targets) exposing TARGET; imported on first use only, so that
# `lbc validate` never pays for the back ends.
_MODULES = {
    "haproxy": "haproxy",
    "envoy": "envoy",
    "nginx": "nginx",
    "f5": "f5",
    "f5-as3": "f5_as3",
}


def available() -> list[str]:
    return list(_MODULES)


def get(name: str) -> Target:
    if name not in _MODULES:
        raise KeyError(name)
    return importlib.import_module(f"lbc.targets.{_MODULES[name]}").TARGET


def files_needed_beside(target: Target, files: dict[str, str]) -> list[str]:
    """The output files other than the main one that the proxy reads (host maps, modules.conf)."""
    return sorted(f for f in files if f != target.main_file
                  and not any(f == p or (p.endswith("/") and f.startswith(p)) for p in target.for_people))
