"""Rule objects and the registry.

A rule is metadata (ID, severity, summary, fix hint, citation, explain page with a failing
and a fixed example) plus, for rules that look at the normalised model, a `check` function
yielding Findings. Structural rules (LBC0xx, most of LBC1xx) are found by the loader, the
schema check and the model builder; they are registered here too, so every ID that lbc can
print has one explain page.

Rule modules, one per ID range: structure (LBC0xx, LBC101-105), references (LBC106-108),
tls (LBC201-LBC219), headers (LBC221-LBC226: HSTS and header changes),
tls_profile (LBC227-LBC230), stickiness (LBC3xx),
health (LBC4xx), sizing (LBC5xx), protocols (LBC6xx), redundancy (LBC7xx, several balancer nodes), capability (LBC8xx, what a target expresses);
common holds what several of them share. tests/rules/ runs every rule's explain examples
and its case file (tests/rules/cases/LBCnnn.yaml).
"""
from __future__ import annotations

from ..registry import REGISTRY, RULE_ID, CheckContext, Finding, Rule, register, rule  # noqa: F401  (the rule modules' API)
from ..report import Reporter

def run_model_rules(model, reporter: Reporter, ctx: CheckContext = CheckContext()) -> None:
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
    from . import (  # noqa: F401
        access, capability, headers, health, observability, protocols, redundancy, references, routing, sizing,
        stickiness, structure, tls, tls_profile)
