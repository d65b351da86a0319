"""One diagnostic type for every stage, and the formatters that print them."""
from __future__ import annotations

import hashlib
import os
from urllib.parse import quote
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Iterable, Sequence

from .jsonout import standard_dumps

Path = tuple  # a path into the topology document, e.g. ("services", "web", "servers", 0, "port")


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True)
class Location:
    file: str
    line: int = 0  # 1-based; 0 when the finding concerns the whole file
    col: int = 0   # 1-based
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True)
class Related:
    location: Location
    note: str


@dataclass(frozen=True)
class Diagnostic:
    id: str
    severity: Severity
    message: str
    location: Location
    hint: str = ""
    source: str = ""          # citation: seed guide file and section
    related: tuple[Related, ...] = ()
    target: str = ""          # set for LBC8xx target-capability findings
    acknowledged: str = ""    # the reason, when the topology acknowledges this finding with `ignore:`

    @property
    def fails(self) -> bool:
        return self.severity is Severity.ERROR and not self.acknowledged

    def sort_key(self):
        return (self.location.file, self.location.line, self.location.col, self.id, self.message)

    def to_dict(self) -> dict:
        d = {
            "id": self.id, "severity": self.severity.value, "message": self.message,
            "file": self.location.file, "line": self.location.line, "col": self.location.col,
            "end_line": self.location.end_line, "end_col": self.location.end_col,
            "hint": self.hint, "source": self.source,
            "related": [{"file": r.location.file, "line": r.location.line, "col": r.location.col, "note": r.note}
                        for r in self.related],
        }
        if self.target:
            d["target"] = self.target
        if self.acknowledged:
            d["acknowledged"] = self.acknowledged
        return d


MAX_DIAGNOSTICS = 10_000  # per file: beyond this a file is not a topology with mistakes; bounds memory and time


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    unique = {(d.sort_key(), d.severity.rank): d for d in diags}
    return [unique[k] for k in sorted(unique)]


def promote_warnings(diags: Sequence[Diagnostic]) -> list[Diagnostic]:
    """--strict: warnings fail like errors (acknowledged ones still do not)."""
    return [replace(d, severity=Severity.ERROR) if d.severity is Severity.WARNING and not d.acknowledged else d
            for d in diags]


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.fails for d in diags)


# ---------------------------------------------------------------- formatters

MAX_QUOTED = 120  # characters of a source line shown under a diagnostic (a 5 MB line is shown as 120)


def _source_line(sources: dict[str, list[str]], loc: Location) -> tuple[str, int] | None:
    """The source line to quote (at most MAX_QUOTED characters around the column) and the caret's
    column in it."""
    lines = sources.get(loc.file)
    if not lines or not (1 <= loc.line <= len(lines)):
        return None
    line, col = lines[loc.line - 1].rstrip("\n"), max(loc.col, 1)
    if len(line) > MAX_QUOTED:
        start = max(0, min(col - 1 - MAX_QUOTED // 2, len(line) - MAX_QUOTED))
        line, col = line[start:start + MAX_QUOTED], col - start
    # the file may hold control characters outside strings; never send them to a terminal
    return "".join(c if c.isprintable() or c == "\t" else "?" for c in line), col


def format_text(diags: Sequence[Diagnostic], sources: dict[str, list[str]], color: bool = False,
                max_per_rule: int = 0, quiet: bool = False) -> str:
    """Compiler-style text: `file:line:col: error[LBC104]: message`, the source line, a caret, the hint.

    max_per_rule > 0 prints each rule's first findings of each kind and then one "and N more" line,
    so a 10,000-service topology does not print 10,000 copies of one warning. quiet leaves out
    infos, acknowledged findings and the summary line of a clean run.
    """
    def paint(code: str, s: str) -> str:
        return f"\x1b[{code}m{s}\x1b[0m" if color else s
    sev_color = {"error": "1;31", "warning": "1;33", "info": "1;36"}
    out: list[str] = []
    shown: dict[tuple, int] = {}
    for d in diags:
        if quiet and (d.acknowledged or d.severity is Severity.INFO):
            continue
        kind = (d.id, d.severity.value, bool(d.acknowledged))
        shown[kind] = shown.get(kind, 0) + 1
        if max_per_rule and shown[kind] > max_per_rule:
            continue
        label = f"{d.severity.value}[{d.id}]"
        if d.acknowledged:  # reported, but compactly: the author has already read the long form
            out.append(f"{paint('1', str(d.location))}: {label} (acknowledged: {d.acknowledged}): {d.message}")
            continue
        out.append(f"{paint('1', str(d.location))}: {paint(sev_color[d.severity.value], label)}: {d.message}")
        quoted = _source_line(sources, d.location)
        if quoted is not None:
            src, col = quoted
            gutter = str(d.location.line)
            out.append(f"{' ' * len(gutter)} |")
            out.append(f"{gutter} | {src}")
            width = 1
            if d.location.end_line == d.location.line and d.location.end_col > d.location.col:
                width = min(d.location.end_col - d.location.col, len(src) - col + 1)
            out.append(f"{' ' * len(gutter)} | {' ' * (col - 1)}{paint(sev_color[d.severity.value], '^' * max(width, 1))}")
        for r in d.related:
            out.append(f"  note: {r.location}: {r.note}")
        if d.hint:
            out.append(f"  = hint: {d.hint}")
        if d.source:
            out.append(f"  = see: {d.source} (lbc explain {d.id})")
        out.append("")
    for (rid, sev, ack), n in sorted(shown.items()):
        if max_per_rule and n > max_per_rule:
            out.append(f"... and {n - max_per_rule} more {sev}[{rid}]{' (acknowledged)' if ack else ''} "
                       f"(--max-per-rule 0 lists every one)")
    errors = sum(1 for d in diags if d.fails)
    warnings = sum(1 for d in diags if d.severity is Severity.WARNING and not d.acknowledged)
    acknowledged = sum(1 for d in diags if d.acknowledged)
    if quiet and not errors and not warnings:
        return "\n".join(out) + ("\n" if out else "")
    out.append(f"{errors} error(s), {warnings} warning(s)" + (f", {acknowledged} acknowledged" if acknowledged else ""))
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Unreadable:
    """An input lbc could not read (missing, a folder, no permission): reported, and the run ends with exit 2."""
    file: str
    reason: str

    def __str__(self) -> str:
        return f"cannot read {self.file}: {self.reason}"


def display_path(file: str, root: str) -> str:
    """A path as annotations and SARIF show it: relative to root (the working directory) when inside it."""
    if file.startswith("<"):  # <stdin>
        return file
    full = os.path.abspath(file)
    rel = os.path.relpath(full, root)
    return full if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel.replace(os.sep, "/")


def _unrooted(text: str, root: str) -> str:
    """Messages name files as lbc resolved them; keep the checkout's location out of machine formats."""
    return text.replace(os.path.join(root, ""), "")


def format_json(diags: Sequence[Diagnostic], unreadable: Sequence[Unreadable] = ()) -> str:
    doc = {"version": 1, "diagnostics": [d.to_dict() for d in diags]}
    if unreadable:
        doc["unreadable"] = [{"file": u.file, "reason": u.reason} for u in unreadable]
    return standard_dumps(doc, sort_keys=True)


def format_github(diags: Sequence[Diagnostic], unreadable: Sequence[Unreadable] = (), root: str = ".") -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic.

    Acknowledged findings are notices (the team has accepted them), never warnings or errors.
    """
    root = os.path.abspath(root)

    def esc(s: str) -> str:
        return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def esc_prop(s: str) -> str:
        return esc(s).replace(":", "%3A").replace(",", "%2C")
    kind = {"error": "error", "warning": "warning", "info": "notice"}
    lines = [f"::error file={esc_prop(display_path(u.file, root))},title=unreadable::{esc(str(u))}" for u in unreadable]
    for d in diags:
        props = (f"file={esc_prop(display_path(d.location.file, root))},line={d.location.line},"
                 f"col={d.location.col},title={esc_prop(d.id)}")
        text = _unrooted(d.message, root) + (f" Hint: {d.hint}" if d.hint else "")
        if d.acknowledged:
            text = f"(acknowledged: {d.acknowledged}) {text}"
        lines.append(f"::{'notice' if d.acknowledged else kind[d.severity.value]} {props}::{esc(text)}")
    return "\n".join(lines) + ("\n" if lines else "")


SRCROOT = "%SRCROOT%"


def _artifact(file: str, root: str) -> dict:
    """A SARIF artifactLocation: percent-encoded, relative to %SRCROOT% when the file is inside it."""
    shown = display_path(file, root)
    if os.path.isabs(shown):
        return {"uri": "file://" + quote(shown)}
    return {"uri": quote(shown), "uriBaseId": SRCROOT}


def format_sarif(diags: Sequence[Diagnostic], rules_meta: dict[str, dict], version: str, root: str = ".",
                 unreadable: Sequence[Unreadable] = (), information_uri: str = "", help_uri: str = "") -> str:
    """SARIF 2.1.0 for code scanning. Nothing in it depends on where the checkout lies: URIs are relative
    to %SRCROOT% (root, by default the working directory) and the fingerprints hash only relative data.
    help_uri is a template with {anchor} for the rule's row in docs/rules.md."""
    root = os.path.abspath(root)
    level = {"error": "error", "warning": "warning", "info": "note"}
    ids = sorted({d.id for d in diags})
    rules = []
    for rid in ids:
        meta = rules_meta.get(rid, {})
        summary = meta.get("summary", rid)
        rule = {
            "id": rid,
            "name": meta.get("name", rid),
            "shortDescription": {"text": summary},
            "fullDescription": {"text": meta.get("why") or summary},
            "help": {"text": f"{meta.get('hint', '')} See `lbc explain {rid}`.".strip()},
            "properties": {"source": meta.get("source", "")},
        }
        if help_uri:
            rule["helpUri"] = help_uri.format(anchor=rid.lower())
        rules.append(rule)
    results = []
    for d in diags:
        region = {"startLine": max(d.location.line, 1), "startColumn": max(d.location.col, 1)}
        if d.location.end_line:
            region.update(endLine=d.location.end_line, endColumn=max(d.location.end_col, 1))
        artifact = _artifact(d.location.file, root)
        message = _unrooted(d.message, root)
        # No line number: a finding keeps its identity when lines are added above it.
        fingerprint = hashlib.sha256(f"{d.id}|{artifact['uri']}|{message}".encode()).hexdigest()[:16]
        res = {
            "ruleId": d.id, "ruleIndex": ids.index(d.id), "level": level[d.severity.value],
            "message": {"text": message + (f" Hint: {d.hint}" if d.hint else "")},
            "locations": [{"physicalLocation": {"artifactLocation": artifact, "region": region}}],
            "partialFingerprints": {"lbc/v2": fingerprint},
        }
        if d.acknowledged:
            res["suppressions"] = [{"kind": "inSource", "justification": d.acknowledged}]
        if d.related:
            res["relatedLocations"] = [
                {"id": i, "message": {"text": r.note}, "physicalLocation": {
                    "artifactLocation": _artifact(r.location.file, root),
                    "region": {"startLine": max(r.location.line, 1), "startColumn": max(r.location.col, 1)}}}
                for i, r in enumerate(d.related)]
        results.append(res)
    driver = {"name": "lbc", "version": version, "semanticVersion": version, "rules": rules}
    if information_uri:
        driver["informationUri"] = information_uri
    invocation: dict[str, Any] = {"executionSuccessful": not unreadable}
    if unreadable:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": str(u)},
             "locations": [{"physicalLocation": {"artifactLocation": _artifact(u.file, root)}}]}
            for u in unreadable]
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "invocations": [invocation], "columnKind": "unicodeCodePoints",
                  "results": results}],
    }
    return standard_dumps(doc, sort_keys=True)
