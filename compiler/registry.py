"""The rule registry: what a rule is, and the table of every rule by ID.

Rules register themselves from the modules lbc.rules loads (an explicit list); the Reporter
(lbc.report) looks them up to attach severity, hint and citation to a finding.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from .diagnostics import Severity

RULE_ID = re.compile(r"^LBC[0-9]{3}$")


@dataclass(frozen=True)
class Finding:
    path: tuple
    message: str
    hint: Optional[str] = None                          # overrides the rule's hint
    related: tuple[tuple[tuple, str], ...] = ()         # (path, note)
    key: bool = False                                   # point at the key rather than the value
    severity: Optional[Severity] = None                 # overrides the rule's severity (e.g. --check-files)


@dataclass(frozen=True)
class CheckContext:
    """What a model check may know besides the model: the options that change what it looks at."""
    check_files: bool = False    # --check-files: read the certificate files (missing ones are errors)
    target: Optional[str] = None  # --target: the findings that depend on how that target works


@dataclass(frozen=True)
class Rule:
    id: str
    name: str                    # slug, e.g. x509-requires-passthrough
    severity: Severity
    summary: str                 # one line: what the rule demands
    hint: str                    # how to fix it
    source: str                  # citation: seed file and section, or "lbc" for lbc's own rules
    why: str = ""                # the explain page's reasoning, in lbc's own words
    bad: str = ""                # a topology (YAML) that triggers the rule
    good: str = ""               # the same topology, fixed
    check: Optional[Callable[[Any, CheckContext], Iterable[Finding]]] = None   # check(model, ctx), model rules
    # False for findings that leave no usable model or output (structure, target capabilities):
    # an `ignore:` cannot make those work, so it is not honoured.
    acknowledgeable: bool = True


REGISTRY: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if not RULE_ID.match(rule.id):
        raise ValueError(f"bad rule id {rule.id}")
    if rule.id in REGISTRY:
        raise ValueError(f"duplicate rule id {rule.id}")
    if not rule.source:
        raise ValueError(f"rule {rule.id} has no citation")
    REGISTRY[rule.id] = rule
    return rule


def rule(id: str) -> Rule:
    """A rule by ID; the rule modules are loaded first if they are not yet (the loader reports before
    anything else has imported them)."""
    if id not in REGISTRY:
        from .rules import all_rules   # the explicit module list (lbc.rules imports this module)
        all_rules()
    return REGISTRY[id]
