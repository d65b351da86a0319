"""Safe YAML loading with a position for every value.

The topology file is untrusted. Before any node tree is built, the event stream is scanned
for size, nesting depth and alias counts (PyYAML's C composer crashes the process on very
deep nesting, and an alias bomb of a few hundred bytes expands to gigabytes later). The
node tree is then turned into plain Python data by our own walker, which also rejects
duplicate keys, caps alias expansion, and records where every value and key came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from .diagnostics import Diagnostic, Location, Severity

try:  # the C loader is ~5x faster; fall back to pure Python where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 1000
# Aliases may repeat content, but the expanded document may not be much bigger than the file.
EXPANSION_FACTOR = 4
EXPANSION_SLACK = 10_000


class LoadError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class Document:
    file: str
    data: object
    lines: list[str]
    value_spans: dict[tuple, tuple[int, int, int, int]] = field(default_factory=dict)
    key_spans: dict[tuple, tuple[int, int, int, int]] = field(default_factory=dict)

    def locate(self, path: tuple, key: bool = False) -> Location:
        """The location of the value at `path` (or of its key), else of the nearest ancestor."""
        p = tuple(path)
        while True:
            span = (self.key_spans.get(p) if key else None) or self.value_spans.get(p)
            if span:
                return Location(self.file, *span)
            if not p:
                return Location(self.file, 1, 1)
            p = p[:-1]


def _diag(rule: str, message: str, file: str, mark=None, hint: str = "") -> Diagnostic:
    loc = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file, 1, 1)
    return Diagnostic(rule, Severity.ERROR, message, loc, hint=hint)


def _span(node) -> tuple[int, int, int, int]:
    s, e = node.start_mark, node.end_mark
    return (s.line + 1, s.column + 1, e.line + 1, e.column + 1)


def _prescan(text: str, file: str, max_depth: int, max_aliases: int) -> int:
    """Walk the event stream only: cheap, and safe against the composer's deep recursion."""
    depth = aliases = events = documents = 0
    for ev in yaml.parse(text, Loader=_Loader):
        events += 1
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > max_depth:
                raise LoadError(_diag("LBC003", f"nesting deeper than {max_depth} levels", file, ev.start_mark,
                                      "a topology is a few levels deep; this file is not one"))
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(ev, yaml.AliasEvent):
            aliases += 1
            if aliases > max_aliases:
                raise LoadError(_diag("LBC003", f"more than {max_aliases} YAML aliases", file, ev.start_mark,
                                      "write the values out, or use fewer anchors"))
        elif isinstance(ev, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise LoadError(_diag("LBC002", "more than one YAML document in the file", file, ev.start_mark,
                                      "put one topology in each file"))
    return events


class _Walker:
    """Node tree -> plain data, with positions, duplicate-key and expansion checks."""

    _scalar = yaml.constructor.SafeConstructor()

    def __init__(self, doc: Document, budget: int):
        self.doc = doc
        self.budget = budget

    def walk(self, node, path: tuple):
        self.budget -= 1
        if self.budget < 0:
            raise LoadError(_diag("LBC003", "YAML aliases expand this document far beyond its size (alias bomb?)",
                                  self.doc.file, node.start_mark, "write the values out instead of nesting aliases"))
        self.doc.value_spans.setdefault(path, _span(node))
        if isinstance(node, yaml.MappingNode):
            out: dict = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise LoadError(_diag("LBC002", "YAML merge keys ('<<') are not supported", self.doc.file,
                                          knode.start_mark, "write the keys out"))
                if not isinstance(knode, yaml.ScalarNode):
                    raise LoadError(_diag("LBC002", "a mapping key must be a plain value", self.doc.file, knode.start_mark))
                key = self._scalar_value(knode)
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    key = str(knode.value)
                if key in out:
                    first = self.doc.key_spans.get(path + (key,))
                    d = _diag("LBC004", f"duplicate key '{key}'", self.doc.file, knode.start_mark,
                              "YAML keeps only the last value; remove one of them")
                    if first:
                        from .diagnostics import Related
                        d = Diagnostic(d.id, d.severity, d.message, d.location, d.hint,
                                       related=(Related(Location(self.doc.file, first[0], first[1]), "first defined here"),))
                    raise LoadError(d)
                self.doc.key_spans[path + (key,)] = _span(knode)
                out[key] = self.walk(vnode, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar_value(node)

    def _scalar_value(self, node):
        value = self._scalar.construct_object(node)
        # Only JSON types reach the schema: YAML 1.1 timestamps and binaries stay text.
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        return str(node.value)


def load_text(text: str, file: str, *, max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES) -> Document:
    """Parse YAML text into a Document; raises LoadError with one diagnostic when it cannot."""
    if "\x00" in text:
        raise LoadError(Diagnostic("LBC002", Severity.ERROR, "the file contains a NUL byte", Location(file, 1, 1)))
    doc = Document(file=file, data=None, lines=text.splitlines())
    try:
        events = _prescan(text, file, max_depth, max_aliases)
        node = yaml.compose(text, Loader=_Loader)
        if node is None:
            raise LoadError(Diagnostic("LBC002", Severity.ERROR, "the file is empty", Location(file, 1, 1),
                                       hint="start from an example: lbc validate examples/flynet.yaml"))
        doc.data = _Walker(doc, EXPANSION_FACTOR * events + EXPANSION_SLACK).walk(node, ())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise LoadError(_diag("LBC002", f"YAML syntax: {e.problem or e.context}", file, mark)) from None
    except yaml.YAMLError as e:
        raise LoadError(Diagnostic("LBC002", Severity.ERROR, f"YAML syntax: {e}", Location(file, 1, 1))) from None
    except RecursionError:
        raise LoadError(Diagnostic("LBC003", Severity.ERROR, "nesting too deep", Location(file, 1, 1))) from None
    return doc


def load_file(path: str, *, max_bytes: int = MAX_BYTES, display_name: str | None = None) -> Document:
    """Read and parse a topology file. OSError propagates (the CLI reports it as an I/O error)."""
    with open(path, "rb") as f:
        raw = f.read(max_bytes + 1)
    return load_bytes(raw, display_name or path, max_bytes=max_bytes)


def load_bytes(raw: bytes, name: str, *, max_bytes: int = MAX_BYTES) -> Document:
    """Parse a topology read elsewhere (standard input); `name` is what diagnostics call it."""
    if len(raw) > max_bytes:
        raise LoadError(Diagnostic("LBC001", Severity.ERROR, f"the file is larger than {max_bytes} bytes",
                                   Location(name, 0, 0), hint="raise the limit with --max-bytes if this is intended"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LoadError(Diagnostic("LBC001", Severity.ERROR, f"the file is not UTF-8 (byte {e.start})",
                                   Location(name, 1, 1))) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return load_text(text, name)
