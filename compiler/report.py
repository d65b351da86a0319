"""The one place a finding becomes a Diagnostic: located in the document, with the rule's severity,
hint and citation, and the acknowledgement of the nearest `ignore:`. The model builder, the rules
and the capability check all report through it."""
from __future__ import annotations

from typing import Iterable, Optional

from .diagnostics import Diagnostic, Related, Severity
from .registry import REGISTRY, Finding


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
