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
