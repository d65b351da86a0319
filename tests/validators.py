"""Each target's real validator, run on lbc's own output in a temporary folder.

VALIDATORS[target](files, workdir) -> (ok, output): write `files` (relative path -> text) under
`workdir` (a pathlib.Path), run the real tool (haproxy -c, nginx -t, envoy --mode validate,
tclsh), and return whether it accepted the configuration with the tool's output.
Each target adds its own entry; the golden-example and property tests use them all.
"""
from __future__ import annotations

from typing import Callable

VALIDATORS: dict[str, Callable] = {}
