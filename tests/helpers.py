"""Small helpers shared by the fast tests."""
from __future__ import annotations

import os
import sys
import textwrap

from lbc.pipeline import Options, Result, check_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The CLI runner is the conformance harness's (integration/harness/cli.py): one copy for both suites.
if os.path.join(ROOT, "integration") not in sys.path:
    sys.path.append(os.path.join(ROOT, "integration"))
from harness.cli import lbc  # noqa: E402,F401
EXAMPLES = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".yaml"))


def example_path(name: str) -> str:
    return os.path.join(ROOT, "examples", name)


def check_text(tmp_path, text: str, name: str = "topology.yaml", options: Options = Options(), target=None) -> Result:
    """Write a topology (dedented) to tmp_path and run the front end on it."""
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return check_file(str(p), options, target)


def ids(result: Result) -> list[str]:
    return [d.id for d in result.diagnostics]

