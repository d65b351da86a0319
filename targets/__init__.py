"""The back ends. One module per target; the registry below is explicit (no import magic).

A target is an object with:
  name          the --target value
  summary       one line for `lbc targets`
  capabilities  {feature: Support} for every feature in lbc.capabilities.FEATURES
  render(model) -> {relative path: text}, deterministic
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

    def render(self, model: Topology) -> dict[str, str]: ...


# target name -> module (inside lbc.targets) exposing TARGET
_MODULES = {
    "haproxy": "haproxy",
    "envoy": "envoy",
    "nginx": "nginx",
    "f5": "f5",
    "f5-as3": "f5_as3",
}


def available() -> list[str]:
    return [n for n in _MODULES if _module(n) is not None]


def _module(name: str):
    try:
        return importlib.import_module(f"lbc.targets.{_MODULES[name]}")
    except ModuleNotFoundError as e:
        if e.name == f"lbc.targets.{_MODULES[name]}":
            return None  # not written yet
        raise


def get(name: str) -> Target:
    mod = _module(name) if name in _MODULES else None
    if mod is None:
        raise KeyError(name)
    return mod.TARGET
