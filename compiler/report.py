"""The one place a finding becomes a Diagnostic: located in the document, with the rule's severity,
hint and citation, and the acknowledgement of the nearest `ignore:`. The loader, the schema check,
the includes (compose), the model builder, the rules and the capability check all report through it."""
from __future__ import annotations

from typing import Iterable, Optional

from .diagnostics import MAX_DIAGNOSTICS, Diagnostic, Location, Related, Severity
from .registry import Finding, rule


class Reporter:
    """Turns (rule ID, document path, message) into located, acknowledged Diagnostics.
    Without a document (the loader, before there is one) it locates by position only (`at`)."""

    def __init__(self, doc=None):
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
               severity: Optional[Severity] = None, target: str = "", acknowledge: bool = True) -> Diagnostic:
        """A finding at a document path. acknowledge=False: one that stops the check before a model
        exists (the schema's), which no `ignore:` can make usable."""
        ack = self.acknowledgement(rule_id, path) if acknowledge and rule(rule_id).acknowledgeable else ""
        return self.at(rule_id, self.doc.locate(path, key=key), message, hint=hint, severity=severity,
                       related=[(self.doc.locate(p), note) for p, note in related], target=target, acknowledged=ack)

    def at(self, rule_id: str, location: Location, message: str, hint: Optional[str] = None,
           related: Iterable[tuple[Location, str]] = (), severity: Optional[Severity] = None,
           target: str = "", acknowledged: str = "") -> Diagnostic:
        """A finding at a position (line, column): the rule gives the severity, citation and, unless
        `hint` is given ("" for none), the hint."""
        r = rule(rule_id)
        d = Diagnostic(
            id=rule_id, severity=severity or r.severity, message=message, location=location,
            hint=r.hint if hint is None else hint, source=r.source,
            related=tuple(Related(loc, note) for loc, note in related),
            target=target, acknowledged=acknowledged,
        )
        self.diagnostics.append(d)
        return d

    def finding(self, rule_id: str, f: Finding) -> Diagnostic:
        return self.report(rule_id, f.path, f.message, hint=f.hint, related=f.related, key=f.key,
                           severity=f.severity)


def cap_diagnostics(diags: list[Diagnostic], limit: int = MAX_DIAGNOSTICS) -> list[Diagnostic]:
    """The first `limit` diagnostics (errors first), and one more saying how many were left out.
    The note is as severe as the worst one it stands for, so capping never changes the outcome."""
    if len(diags) <= limit:
        return diags
    ranked = sorted(diags, key=lambda d: (not d.fails, d.severity is not Severity.WARNING))
    kept, dropped = ranked[:limit], ranked[limit:]
    worst = min((d.severity for d in dropped if not d.acknowledged), key=lambda s: s.rank, default=Severity.INFO)
    first = diags[0].location
    note = Reporter().at("LBC003", Location(first.file, 0, 0), f"{len(dropped)} more diagnostics not shown "
                         f"(at most {limit} per file)", hint="fix the ones shown and run again", severity=worst)
    return sorted(kept, key=lambda d: d.sort_key()) + [note]
