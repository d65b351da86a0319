"""Structural rules: found by the loader (LBC00x), the schema check (LBC01x) and the model
builder (LBC10x). Registered here so that each ID has its explain page."""
from ..diagnostics import Severity
from . import Rule, register

E = Severity.ERROR
LBC = "lbc topology language"

for _r in [
    Rule("LBC001", "file-unreadable", E, "The topology file is too large or not UTF-8 text.",
         "Keep topology files below the size limit (10 MiB by default, --max-bytes) and save them as UTF-8.", LBC),
    Rule("LBC002", "yaml-syntax", E, "The file is not valid YAML, is empty, or holds more than one document.",
         "Fix the YAML syntax at the position shown.", LBC),
    Rule("LBC003", "yaml-limits", E, "The YAML is nested too deeply or uses too many aliases (alias bomb).",
         "Write values out instead of nesting anchors and aliases.", LBC),
    Rule("LBC004", "duplicate-key", E, "A key appears twice in the same mapping.",
         "YAML keeps only the last value silently; remove one of the two keys.", LBC),
    Rule("LBC010", "unknown-key", E, "A key that the topology language does not know (often a typo).",
         "Use a key the language defines; `lbc schema` lists them.", LBC),
    Rule("LBC011", "wrong-type", E, "A value has the wrong type (e.g. text where a number is expected).",
         "Give a value of the type the schema expects.", LBC),
    Rule("LBC012", "missing-key", E, "A required key is missing.", "Add the key.", LBC),
    Rule("LBC013", "value-not-allowed", E, "A value is outside the allowed set, range or pattern.",
         "Use one of the allowed values.", LBC),
    Rule("LBC014", "bad-duration", E, "A duration is not a whole number with a unit (ms, s, m, h, d).",
         "Write durations like 500ms, 5s, 30m, 1h.", LBC),
    Rule("LBC015", "language-version", E, "The file does not declare `lbc: 1`.",
         "Start the file with `lbc: 1`.", LBC),
    Rule("LBC101", "unresolved-reference", E, "A reference names a VIP, certificate, service, server or port that does not exist.",
         "Name an object that is defined, or define it.", LBC),
    Rule("LBC102", "duplicate-name", E, "Two objects of the same kind share a name.",
         "Give each listener, and each server of a service, its own name.", LBC),
    Rule("LBC103", "listener-conflict", E, "Two listeners bind the same VIP address and port.",
         "Use another port or VIP, or merge the listeners' routes into one listener.", LBC),
    Rule("LBC104", "bad-host", E, "A host name is not a valid DNS name, or is routed twice on one listener.",
         "Use RFC 1123 names; a wildcard only as the whole leftmost label (*.example.com); route each host once per listener.", LBC),
    Rule("LBC105", "bad-server", E, "A service has no servers, or an address or port is invalid.",
         "Give each service at least one server with a valid address and port.", LBC),
]:
    register(_r)
