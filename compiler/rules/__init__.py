"""Rule objects and the registry.

A rule is metadata (ID, severity, summary, fix hint, citation, explain page with a failing
and a fixed example) plus, for rules that look at the normalised model, a `check` function
yielding Findings. Structural rules (LBC0xx, most of LBC1xx) are found by the loader, the
schema check and the model builder; they are registered here too, so every ID that lbc can
print has one explain page.

Rule modules, one per ID range: structure (LBC0xx, LBC101-105), references (LBC106-108),
tls (LBC2xx), stickiness (LBC3xx), health (LBC4xx), sizing (LBC5xx), protocols (LBC6xx), redundancy
(LBC7xx, several balancer nodes);
common holds what several of them share. tests/rules/ runs every rule's explain examples
and its case file (tests/rules/cases/LBCnnn.yaml).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from ..diagnostics import Diagnostic, Related, Severity

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
    check: Optional[Callable[..., Iterable[Finding]]] = None   # check(model, ctx) for model rules
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
    return REGISTRY[id]


class Reporter:
    """Turns (rule ID, document path, message) into located, acknowledged Diagnostics."""

    def __init__(self, doc):
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []

    def acknowledgement(self, rule_id: str, path: tuple) -> str:
        """The reason given in the nearest enclosing `ignore:` for this rule, or ''."""
        node = self.doc.data
        reason = ""
        for i in range(len(path) + 1):
            if isinstance(node, dict) and isinstance(node.get("ignore"), dict) and rule_id in node["ignore"]:
                reason = str(node["ignore"][rule_id])
            if i == len(path):
                break
            try:
                node = node[path[i]]
            except (KeyError, IndexError, TypeError):
                break
        return reason

    def report(self, rule_id: str, path: tuple, message: str, hint: Optional[str] = None,
               related: Iterable[tuple[tuple, str]] = (), key: bool = False,
               severity: Optional[Severity] = None, target: str = "") -> Diagnostic:
        r = REGISTRY[rule_id]
        sev = severity or r.severity
        ack = self.acknowledgement(rule_id, path) if r.acknowledgeable else ""
        d = Diagnostic(
            id=rule_id, severity=sev, message=message, location=self.doc.locate(path, key=key),
            hint=r.hint if hint is None else hint, source=r.source,
            related=tuple(Related(self.doc.locate(p), note) for p, note in related),
            target=target, acknowledged=ack,
        )
        self.diagnostics.append(d)
        return d

    def finding(self, rule_id: str, f: Finding) -> Diagnostic:
        return self.report(rule_id, f.path, f.message, hint=f.hint, related=f.related, key=f.key,
                           severity=f.severity)


def run_model_rules(model, reporter: Reporter, ctx=None) -> None:
    """Run every registered rule that has a model check, in ID order."""
    for rid in sorted(REGISTRY):
        r = REGISTRY[rid]
        if r.check is None:
            continue
        for f in r.check(model, ctx):
            reporter.finding(rid, f)


def all_rules() -> list[Rule]:
    _load_rule_modules()
    return [REGISTRY[k] for k in sorted(REGISTRY)]


_loaded = False


def _load_rule_modules() -> None:
    """Import the rule modules once (explicit list: no import-time magic elsewhere)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import structure, references, tls, stickiness, health, sizing, protocols, redundancy  # noqa: F401
