"""LBC8xx: what the chosen target can express. The findings are made by lbc.capabilities (only with
--target); the rules are registered here, with the others, so that every ID has its page whatever
was imported first."""
from __future__ import annotations

from ..diagnostics import Severity
from . import Rule, register

register(Rule("LBC801", "target-unsupported", Severity.ERROR,
              "The topology uses a feature the chosen target cannot express.",
              "Choose another target (`lbc targets` shows the matrix) or drop the feature.", "lbc target capabilities",
              why="A configuration that silently drops a feature would balance differently from what the topology says; "
                  "lbc refuses to compile it instead.",
              acknowledgeable=False))  # an `ignore:` cannot make the target express the feature
register(Rule("LBC802", "target-emulated", Severity.INFO,
              "The chosen target expresses a feature by emulation; the note says what differs.",
              "Read the note; if the difference matters, choose a target that supports the feature natively.",
              "lbc target capabilities",
              why="Some targets lack a feature natively (e.g. open-source nginx has no active health checks); lbc "
                  "emulates it as closely as the target allows and says how the behaviour differs."))
