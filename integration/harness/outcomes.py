"""Scenario outcomes per target, and the scenario x target matrix printed at the end of a run.

record(scenario, target, outcome) is the hook for any test that proves a scenario, including
targets whose conformance is simulated: outcome is "passed", "failed" or "unsupported"
(declared unsupported: lbc compile refused the scenario with LBC801, and the test asserted that).
"""
from __future__ import annotations

import pytest

PASSED, FAILED, UNSUPPORTED = "passed", "failed", "unsupported"
SCENARIOS = {
    "S1": "round robin", "S2": "weighted random", "S3": "least connections", "S4": "cookie stickiness",
    "S5": "source-IP stickiness", "S6": "health check by body", "S7": "failover of a sticky client",
    "S8": "priority groups, 3 tiers", "S9": "session limit", "S10": "fallback", "S11": "TLS terminate",
    "S12": "TLS bridge", "S13": "TLS passthrough + SNI", "S14": "X.509 client cert",
    "S15": "multihost / control link", "S16": "WebSocket", "S17": "streaming, no buffering",
    "S18": "client address", "S19": "hold / drain", "S20": "stickiness max lifetime", "S21": "many hosts",
    "S22": "full/held server keeps sessions", "S23": "HTTP check behind passthrough", "S24": "fallback server",
    "S25": "fresh weighted draw (VHI)",
    "S26": "path routing",
    "S27": "redirect to HTTPS",
    "S28": "HSTS and header changes",
    "S29": "client access lists",
    "S30": "rate limit per client",
    "S31": "TLS profile",
    "S32": "logs and metrics",
    "S33": "reload under load (lbc apply)",
    "S34": "redundant pair (VRRP failover)",
}

# (scenario, target) -> outcomes of every test that covered it
_OUTCOMES: dict[tuple[str, str], list[str]] = {}
# (scenario, target) -> what lbc compile said when it refused the scenario (LBC801)
_REFUSALS: dict[tuple[str, str], list[str]] = {}


def scenario(sid: str):
    """The mark of a test that proves the CONFORMANCE scenario `sid` (conftest records its outcome)."""
    return pytest.mark.scenario(sid)


def record(scenario: str, target: str, outcome: str, refusal: str = "") -> None:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario}")
    if outcome not in (PASSED, FAILED, UNSUPPORTED):
        raise ValueError(f"unknown outcome {outcome}")
    _OUTCOMES.setdefault((scenario, target), []).append(outcome)
    if refusal:
        _REFUSALS.setdefault((scenario, target), []).append(refusal)


def cell(scenario: str, target: str) -> str:
    """pass / FAIL / declared-unsupported / not run. A failure anywhere fails the cell; a scenario
    with passing and unsupported parts is reported as declared-unsupported (it is not fully met)."""
    got = _OUTCOMES.get((scenario, target))
    if not got:
        return "not run"
    if FAILED in got:
        return "FAIL"
    if UNSUPPORTED in got:
        return "declared-unsupported"
    return "pass"


def targets_seen() -> list[str]:
    return sorted({t for _, t in _OUTCOMES})


def matrix_lines(targets: list[str], prefix: str = "conformance") -> list[str]:
    width = max(len(s) for s in SCENARIOS.values()) + 6
    cols = [max(len(t), 20) for t in targets]
    lines = [f"{'scenario':<{width}}" + "  ".join(f"{t:<{c}}" for t, c in zip(targets, cols))]
    for sid, title in SCENARIOS.items():
        lines.append(f"{sid + ' ' + title:<{width}}" + "  ".join(f"{cell(sid, t):<{c}}" for t, c in zip(targets, cols)))
    refused = [(s, t, text) for t in targets for s in SCENARIOS for text in sorted(set(_REFUSALS.get((s, t), [])))]
    if refused:
        lines.append("declared unsupported, in lbc compile's words:")
        lines += [f"  {s} {t}: {text}" for s, t, text in refused]
    for t in targets:
        cells = [cell(s, t) for s in SCENARIOS]
        lines.append(f"{prefix} {t}: {cells.count('pass')} passed, {cells.count('FAIL')} failed, "
                     f"{cells.count('declared-unsupported')} declared-unsupported")
    return lines
