"""lbc's command line in a child process: the one runner the fast tests (tests/helpers.py) and the
conformance suite share."""
from __future__ import annotations

import subprocess
import sys


def lbc(*args, cwd=None, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`lbc ARGS...` (arguments may be paths) with this Python, its output captured as text."""
    return subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
