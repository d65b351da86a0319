"""Small helpers shared by the fast tests."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from lbc.pipeline import Options, Result, check_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def lbc(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The command line in a child process (arguments may be paths), its output captured."""
    return subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=cwd, env=env)
