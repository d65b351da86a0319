"""Structural check of a loaded topology against schemas/topology.schema.json.

The JSON Schema is the one source of structural truth. Each schema keyword maps to one
diagnostic ID; a subschema can name a more specific rule with `x-lbc-rule` (e.g. host names
report LBC104). Unknown keys get a "did you mean" suggestion.

Two validators check the same schema: jsonschema-rs, ~50x faster, only answers "valid or not";
for a file it refuses, the complete jsonschema path below finds every error and its location, so
diagnostics are identical whichever path runs (tests/test_schema_paths.py compares both).
"""
from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from importlib import resources

try:
    import jsonschema_rs
except ImportError:  # pragma: no cover - a platform without its wheel: the complete path alone
    jsonschema_rs = None  # type: ignore[assignment]

from .diagnostics import MAX_DIAGNOSTICS, Diagnostic, Severity
from .report import Reporter
from .loader import Document

KEYWORD_RULES = {
    "additionalProperties": "LBC010",
    "propertyNames": "LBC010",
    "type": "LBC011",
    "required": "LBC012",
}
VALUE_RULE = "LBC013"  # enum, const, pattern, ranges, lengths, oneOf


@lru_cache(maxsize=1)
def topology_schema() -> dict:
    return json.loads(resources.files("lbc.schemas").joinpath("topology.schema.json").read_text("utf-8"))


def _inline_refs(node, defs: dict):
    """Replace each local $ref by its definition (merged with sibling keys such as description).

    The topology schema is not recursive, and resolving references dominates validation time
    (~40% on a 10,000-service file), so validation runs on an inlined copy.
    """
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[1]]
            merged = {**_inline_refs(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
            return {k: _inline_refs(v, defs) for k, v in merged.items()}
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def ecma_pattern(pattern: str) -> str:
    """The pattern with each `$` outside a character class made `\\Z`: in Python's `re`, `$` also
    matches before a final newline, so "ok\\n" would pass `^[a-z]+$`; ECMA-262 (which JSON Schema
    means) and every editor's checker do not. The loader refuses control characters too."""
    out, in_class, escaped = [], False, False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "[" and not in_class:
            in_class = True
            out.append(ch)
        elif ch == "]" and in_class:
            in_class = False
            out.append(ch)
        elif ch == "$" and not in_class:
            out.append("\\Z")
        else:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(ecma_pattern(pattern))


def _pattern(validator, pattern, instance, schema):
    import jsonschema
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance[:60]!r} does not match {pattern!r}")


def _max_ms(validator, limit, instance, schema):
    """`x-lbc-max-ms` on durations: a bound no pattern can state across units."""
    from .build import duration_ms  # the one parser of durations
    if validator.is_type(instance, "string"):
        try:
            ms = duration_ms(instance)
        except ValueError:
            return  # the pattern reports it
        if ms > limit:
            import jsonschema
            yield jsonschema.ValidationError(f"{instance} is longer than {limit // 86_400_000} days, "
                                             "the longest duration every target accepts")


def _is_integer(checker, instance) -> bool:
    """Only whole numbers written as such: YAML `2.0` is a float, which nginx and tmsh refuse
    where they want an integer (JSON Schema would count it as an integer)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@lru_cache(maxsize=1)
def _validator():
    """The complete validator (imported only when a file needs it: jsonschema costs ~45 ms to import)."""
    import jsonschema
    extended = jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        validators={"pattern": _pattern, "x-lbc-max-ms": _max_ms},
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    )
    schema = topology_schema()
    return extended(_inline_refs(schema, schema["$defs"]))


class _WholeNumber:
    """jsonschema-rs counts 2.0 as an integer (as the JSON Schema spec does); lbc does not (`_is_integer`)."""

    def __init__(self, parent_schema, value, schema_path):
        pass

    def validate(self, instance):
        if isinstance(instance, float):
            raise ValueError(f"{instance} is not a whole number")


class _MaxMs:
    """`x-lbc-max-ms` for the fast path; the same test as `_max_ms`."""

    def __init__(self, parent_schema, value, schema_path):
        self.limit = value

    def validate(self, instance):
        from .build import duration_ms
        if isinstance(instance, str):
            try:
                ms = duration_ms(instance)
            except ValueError:
                return  # the pattern refuses it
            if ms > self.limit:
                raise ValueError(f"{instance} is too long")


def _mark_integers(node):
    """The schema with `x-lbc-whole` beside every `"type": "integer"` (see _WholeNumber)."""
    if isinstance(node, dict):
        out = {k: _mark_integers(v) for k, v in node.items()}
        if node.get("type") == "integer" or (isinstance(node.get("type"), list) and "integer" in node["type"]):
            out["x-lbc-whole"] = True
        return out
    if isinstance(node, list):
        return [_mark_integers(v) for v in node]
    return node


@lru_cache(maxsize=1)
def _fast_validator():
    if jsonschema_rs is None:
        return None
    schema = topology_schema()
    return jsonschema_rs.Draft202012Validator(_mark_integers(_inline_refs(schema, schema["$defs"])),
                                              keywords={"x-lbc-whole": _WholeNumber, "x-lbc-max-ms": _MaxMs})


def fast_valid(data) -> bool:
    """True when the fast validator accepts `data` (False also when it is not installed)."""
    fast = _fast_validator()
    return fast is not None and fast.is_valid(data)


def _describe(value) -> str:
    if isinstance(value, dict):
        return f"a mapping of {len(value)} key(s)"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, str):
        value = value[:80]
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf_errors(error):
    """oneOf/anyOf errors are vague; report the branch that came closest."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        # prefer errors that are not about which alternative's `required` key is missing
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "required"))
        if deepest.validator != "required" or len(deepest.absolute_path) > len(error.absolute_path):
            yield from _leaf_errors(deepest)
            return
    yield error


def _one_of_message(error) -> tuple[str, str]:
    keys = sorted({k for sub in error.schema.get("oneOf", []) for k in sub.get("required", [])})
    present = [k for k in keys if isinstance(error.instance, dict) and k in error.instance]
    if present:
        return (f"give only one of {', '.join(repr(k) for k in keys)} (found {', '.join(repr(k) for k in present)})",
                "these settings are alternatives")
    return (f"one of {', '.join(repr(k) for k in keys)} is required", "add one of them")


def check_schema(doc: Document) -> list[Diagnostic]:
    if fast_valid(doc.data):
        return []
    return complete_check(doc)


def complete_check(doc: Document) -> list[Diagnostic]:
    """Every schema error of `doc`, located (the path a refused file takes)."""
    reporter = Reporter(doc)
    for top in _validator().iter_errors(doc.data):
        for err in _leaf_errors(top):
            _report(reporter, err)
        if len(reporter.diagnostics) > MAX_DIAGNOSTICS:  # the rest would be cut when printed; stop paying for them
            break
    return reporter.diagnostics


def _report(reporter: Reporter, err) -> None:
    """One schema error, reported as one or more findings. Each is an error whatever the rule's
    severity, and no `ignore:` acknowledges it: nothing can be built from a document the schema refuses."""
    def report(rule: str, message: str, path: tuple, hint: str, key: bool = False) -> None:
        reporter.report(rule, path, message, hint=hint, key=key, severity=Severity.ERROR, acknowledge=False)

    path = tuple(err.absolute_path)
    where = "/".join(str(p) for p in path) or "(top level)"
    rule = KEYWORD_RULES.get(err.validator, VALUE_RULE)
    if isinstance(err.schema, dict) and err.schema.get("x-lbc-rule") and err.validator not in KEYWORD_RULES:
        rule = err.schema["x-lbc-rule"]
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in err.schema.get("properties", {}))
        for key in extra[:MAX_DIAGNOSTICS + 1]:  # more are cut when printed: no "did you mean" for them
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(allowed)}"
            report(rule, f"unknown key '{key}' in {where}", path + (key,), hint, key=True)
        return
    if err.validator == "propertyNames":
        bad = err.instance
        return report(rule, f"invalid name {_describe(bad)} in {where}", path + (bad,),
                      "names start with a letter and use only letters, digits, '_' and '-'", key=True)
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return report(rule, f"missing required key '{missing}' in {where}", path, f"add '{missing}:'")
    if err.validator == "type":
        expected = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
        return report(rule, f"{where}: expected {expected}, got {_describe(err.instance)}", path,
                      err.schema.get("description", ""))
    if err.validator == "oneOf":
        msg, hint = _one_of_message(err)
        return report(rule, f"{where}: {msg}", path, hint)
    if err.validator in ("enum", "const"):
        allowed = err.validator_value if err.validator == "enum" else [err.validator_value]
        shown = ", ".join(json.dumps(a) for a in allowed if not isinstance(a, float))
        close = difflib.get_close_matches(str(err.instance), [str(a) for a in allowed], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"allowed: {shown}"
        return report(rule, f"{where}: {_describe(err.instance)} is not allowed", path, hint)
    if err.validator == "pattern":
        # the same words an editor shows (yaml-language-server reads patternErrorMessage)
        hint = err.schema.get("patternErrorMessage") or err.schema.get("description", "")
        return report(rule, f"{where}: {_describe(err.instance)} is not valid here", path, hint)
    report(rule, f"{where}: {err.message if len(err.message) < 200 else err.message[:200]}", path,
           err.schema.get("description", "") if isinstance(err.schema, dict) else "")
