"""Safe YAML loading with a position for every value.

The topology file is untrusted. Before any node tree is built, the event stream is scanned
for size, nesting depth and alias counts (PyYAML's C composer crashes the process on very
deep nesting, and an alias bomb of a few hundred bytes expands to gigabytes later). The
node tree is then turned into plain Python data by our own walker, which also rejects
duplicate keys, caps alias expansion, and records where every value and key came from.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from .diagnostics import Diagnostic, Location
from .report import Reporter
from .safeio import NotRegularFile, read_regular

try:  # the C loader is ~5x faster; fall back to pure Python where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore



class _Composer(_Loader):
    """PyYAML's loader, finding each distinct plain scalar's tag once per load (the safe resolver's
    answer depends on the text alone; a tenth of the compose time of a 10,000-service file). The
    safe loader has no path resolvers, so a quoted scalar is text and a collection its default tag."""

    def __init__(self, stream):
        super().__init__(stream)
        self._tags: dict[str, str] = {}

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return self.DEFAULT_SCALAR_TAG
            tag = self._tags.get(value)
            if tag is None:
                tag = self._tags[value] = super().resolve(kind, value, implicit)
            return tag
        return self.DEFAULT_MAPPING_TAG if kind is yaml.MappingNode else self.DEFAULT_SEQUENCE_TAG


MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 1000
# Aliases may repeat content, but the expanded document may not be much bigger than the file.
EXPANSION_FACTOR = 4
EXPANSION_SLACK = 10_000

# No string in a topology may hold a control character: a newline, CR or NUL is what turns a value
# into a new directive in every config language lbc writes, and U+2028/2029 and U+0085 end lines in
# JavaScript and YAML 1.1 readers. Bidirectional overrides make a value read differently from what
# it is. Checked here, on every key and value, so no field (present or future) can miss it; the
# schema's patterns then see only single-line text.
_FORBIDDEN_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# YAML 1.1 reads 010 as 8, 0x10 as 16, 1:30 as 90 and 1_000 as 1000: a reader sees something else.
# Only plain decimal integers are numbers; Python refuses int() of more than 4,300 digits anyway.
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]{0,17})")
_PLAIN_FLOAT = re.compile(r"[-+]?[0-9]{1,18}\.[0-9]{1,18}")


def forbidden_char(text: str) -> str | None:
    """A description of the first character a topology string may not hold, or None."""
    m = _FORBIDDEN_CHARS.search(text)
    if m is None:
        return None
    names = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL"}
    return names.get(m.group(), f"the control character U+{ord(m.group()):04X}") + f" (at character {m.start() + 1})"


class LoadError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


Span = tuple[int, int, int, int]   # first line, first column, last line, column after the end (1-based)


@dataclass
class Document:
    file: str
    data: object
    lines: list[str]
    # Where each value and key was written. A loaded file looks its positions up in its node tree
    # (`tree`) when a diagnostic needs one; a topology of several files (compiler/compose.py) is given
    # them here, path by path, with the file each path was written in when it is not `file`.
    value_spans: dict[tuple, Span] = field(default_factory=dict)
    key_spans: dict[tuple, Span] = field(default_factory=dict)
    tree: "NodeTree | None" = None
    aliases: int = 0  # counted by the prescan: a topology of several files shares one alias budget
    span_files: dict[tuple, str] = field(default_factory=dict)
    other_lines: dict[str, list[str]] = field(default_factory=dict)  # every file's lines, for quoting

    @property
    def sources(self) -> dict[str, list[str]]:
        return {self.file: self.lines, **self.other_lines}

    def value_span(self, path: tuple) -> Span | None:
        span = self.value_spans.get(path)
        return span if span is not None or self.tree is None else self.tree.span(path, key=False)

    def key_span(self, path: tuple) -> Span | None:
        span = self.key_spans.get(path)
        return span if span is not None or self.tree is None else self.tree.span(path, key=True)

    def release_positions(self) -> None:
        """Free the node tree (at 10,000 services ~90 MB) once every diagnostic is located: a render
        then reuses the memory. Later lookups find only the positions given explicitly."""
        self.tree = None

    def locate(self, path: tuple, key: bool = False) -> Location:
        """The location of the value at `path` (or of its key), else of the nearest ancestor."""
        p = tuple(path)
        while True:
            span = (self.key_span(p) if key else None) or self.value_span(p)
            if span:
                return Location(self.span_files.get(p, self.file), *span)
            if not p:
                return Location(self.file, 1, 1)
            p = p[:-1]


def _span(node) -> Span:
    s, e = node.start_mark, node.end_mark
    return (s.line + 1, s.column + 1, e.line + 1, e.column + 1)


class NodeTree:
    """A loaded file's YAML nodes, kept for positions: a path is followed from the root when a
    diagnostic asks for it (each mapping indexed by key on first use). Recording every position
    during the load instead cost a fifth of the load time of a 10,000-service file, and more memory
    than the nodes themselves. The tree belongs to its Document and goes with it."""

    def __init__(self, root, key_of):
        self.root = root
        self._key_of = key_of  # the walker's reading of a key node: the document's keys
        self._mappings: dict[int, dict] = {}  # id(mapping node) -> {key: (key node, value node)}

    def span(self, path: tuple, key: bool) -> Span | None:
        knode, node = None, self.root
        for step in path:
            if node.__class__ is yaml.MappingNode:
                index = self._mappings.get(id(node))
                if index is None:
                    index = self._mappings[id(node)] = {self._key_of(k): (k, v) for k, v in node.value}
                if step not in index:
                    return None
                knode, node = index[step]
            elif node.__class__ is yaml.SequenceNode and step.__class__ is int and 0 <= step < len(node.value):
                knode, node = None, node.value[step]
            else:
                return None
        if key:
            return _span(knode) if knode is not None and path else None
        return _span(node)


def _diag(rule: str, message: str, file: str, mark=None, hint: str = "", line: int = 1, related=()) -> Diagnostic:
    """A loader finding at a YAML mark (else at `line`, column 1 of the file: 0 for the file as a whole).
    There is no document yet to locate a path in, nor an `ignore:` to read."""
    loc = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file, line, line)
    return Reporter().at(rule, loc, message, hint=hint, related=related)



def _prescan(text: str, file: str, max_depth: int, max_aliases: int) -> tuple[int, int]:
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
    return events, aliases


# When the text alone proves that the pre-scan would find nothing, it is skipped (a quarter of the
# load time of a 10,000-service file). Both bounds below may overestimate, never underestimate:
# - an alias can only start where a node starts: after a space, a line start or a flow indicator
#   (a '*' inside a quoted string, as in "*.example.com", is not one);
# - a chain of nested block collections moves right by at least one column every two levels, and a
#   block collection starts at a line's indentation or after the compact indicators that begin the
#   line ("- - key:"), so block depth <= 2 * (longest such line prefix) + 2;
# - flow depth <= the '[' and '{' left after removing one-line collections that hold no quote,
#   comment, tag, newline or other bracket (their closing bracket is real), plus 1 for those.
_ALIAS_LIKE = re.compile(r"\*(?<=[\s\[\]{},:?\-]\*)")   # a '*' after a space or an indicator
_SIMPLE_FLOW = re.compile(r"[\[{][^\[\]{}\n\"'#!]*[\]}]")


def _prescan_needed(text: str, max_depth: int) -> bool:
    if text.startswith("*") or ("*" in text and _ALIAS_LIKE.search(text)):
        return True
    flow = 0
    if "[" in text or "{" in text:
        rest = _SIMPLE_FLOW.sub("", text)
        flow = rest.count("[") + rest.count("{") + (len(rest) != len(text))
    # block depth <= 2 * prefix + 2 <= max_depth - flow, for the longest line prefix of spaces and indicators
    longest = (max_depth - flow - 2) // 2
    if longest < 0:
        return True
    # a superset of the line prefixes that long (YAML 1.1 also breaks lines at CR, NEL, LS and PS)
    prefix = re.compile("(?:\\A|[\n\r\x85\u2028\u2029])[ \\-?:\t]{%d}" % (longest + 1))
    return prefix.search(text) is not None


_STR, _INT, _FLOAT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL, _NULL, _MERGE = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"
_BOOL_VALUES = yaml.constructor.SafeConstructor.bool_values
_NO_LIMIT = float("inf")


class _Walker:
    """Node tree -> plain data, with duplicate-key and expansion checks (positions stay in the nodes:
    NodeTree).

    The values equal PyYAML's SafeConstructor's; the common scalar tags are converted here
    directly (a third of the load time otherwise), the rest through a constructor made for this
    load: PyYAML's keeps every node it converted, so a shared one kept every node of every file a
    process loaded reachable."""

    def __init__(self, file: str, budget: float, byte_budget: float):
        self._constructor: yaml.constructor.SafeConstructor | None = None
        self.file = file
        self.budget = budget
        self.byte_budget = byte_budget  # characters of scalar text after alias expansion

    def walk(self, node):
        self.budget -= 1
        cls = node.__class__
        if cls is yaml.ScalarNode:
            self.byte_budget -= len(node.value)
        if self.budget < 0 or self.byte_budget < 0:
            raise LoadError(_diag("LBC003", "YAML aliases expand this document far beyond its size (alias bomb?)",
                                  self.file, node.start_mark, "write the values out instead of nesting aliases"))
        if cls is yaml.MappingNode:
            out: dict = {}
            for knode, vnode in node.value:
                key = knode.value  # most keys and values are printable text: taken as they are, here
                if knode.__class__ is not yaml.ScalarNode or knode.tag != _STR or not key.isprintable():
                    if knode.tag == _MERGE:
                        raise LoadError(_diag("LBC002", "YAML merge keys ('<<') are not supported", self.file,
                                              knode.start_mark, "write the keys out"))
                    if knode.__class__ is not yaml.ScalarNode:
                        raise LoadError(_diag("LBC002", "a mapping key must be a plain value", self.file,
                                              knode.start_mark))
                    key = self.key(knode)
                if key in out:
                    self._duplicate(key, knode, node)
                text = vnode.value
                if vnode.__class__ is yaml.ScalarNode and vnode.tag == _STR and text.isprintable() \
                        and self.budget > 0 and self.byte_budget >= len(text):
                    self.budget -= 1
                    self.byte_budget -= len(text)
                    out[key] = text
                else:
                    out[key] = self.walk(vnode)
            return out
        if cls is yaml.SequenceNode:
            return [self.walk(item) for item in node.value]
        return self._scalar_value(node)

    def key(self, knode):
        """A mapping key: text or an integer (anything else as written)."""
        key = self._scalar_value(knode)
        if key.__class__ is not str and (not isinstance(key, int) or isinstance(key, bool)):
            key = str(knode.value)
        return key

    def _duplicate(self, key, knode, mapping):
        first = next(k for k, _ in mapping.value if self.key(k) == key and k is not knode)
        s = first.start_mark
        related = [(Location(self.file, s.line + 1, s.column + 1), "first defined here")]
        raise LoadError(_diag("LBC004", f"duplicate key '{key}'", self.file, knode.start_mark,
                              "YAML keeps only the last value; remove one of them", related=related))

    def _scalar_value(self, node):
        text, tag = node.value, node.tag
        if not text.isprintable():  # every forbidden character is unprintable; most text is printable
            bad = forbidden_char(text)
            if bad:
                raise LoadError(_diag("LBC013", f"this value contains {bad}", self.file, node.start_mark,
                                      "topology values are single-line text without control characters"))
        if tag == _STR:
            return text
        if tag == _INT:
            if _PLAIN_INT.fullmatch(text):
                return int(text)
            if re.fullmatch(r"[-+]?[1-9][0-9]*", text):
                raise LoadError(_diag("LBC013", f"a number of {len(text)} digits is too large", self.file,
                                      node.start_mark, "no topology setting needs more than 18 digits"))
            raise LoadError(_diag("LBC013", f"'{text[:40]}' is not a plain decimal number", self.file,
                                  node.start_mark, "YAML 1.1 reads leading zeros as octal and 1:30 as 90: write the "
                                  "number in decimal without leading zeros, or quote it if it is text"))
        if tag == _FLOAT:
            if not _PLAIN_FLOAT.fullmatch(text):
                raise LoadError(_diag("LBC013", f"'{text[:40]}' is not a plain decimal number", self.file,
                                      node.start_mark, "write numbers as digits (1.2), not .inf, .nan, 1e3 or 1:30"))
            return float(text)
        if tag == _BOOL and text.lower() in _BOOL_VALUES:
            return _BOOL_VALUES[text.lower()]
        if tag == _NULL:
            return None
        if self._constructor is None:
            self._constructor = yaml.constructor.SafeConstructor()
        try:  # other tags: PyYAML's value, or its error
            value = self._constructor.construct_object(node)
        except (KeyError, ValueError, TypeError, AttributeError):  # e.g. `!!bool maybe`, `!!timestamp x`
            raise LoadError(_diag("LBC002", f"'{text[:40]}' cannot be read as {tag.rsplit(':', 1)[-1]}",
                                  self.file, node.start_mark, "remove the tag, or quote the value")) from None
        # Only JSON types reach the schema: YAML 1.1 timestamps and binaries stay text.
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        return str(node.value)


def load_text(text: str, file: str, *, max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES) -> Document:
    """Parse YAML text into a Document; raises LoadError with one diagnostic when it cannot."""
    if "\x00" in text:
        raise LoadError(_diag("LBC002", "the file contains a NUL byte", file))
    return _load_text(text, file, max_depth, max_aliases, _prescan_needed(text, max_depth))


def _load_text(text: str, file: str, max_depth: int, max_aliases: int, prescan: bool) -> Document:
    doc = Document(file=file, data=None, lines=text.splitlines())
    try:
        if prescan:
            events, doc.aliases = _prescan(text, file, max_depth, max_aliases)
            budget: float = EXPANSION_FACTOR * events + EXPANSION_SLACK
            byte_budget: float = EXPANSION_FACTOR * len(text) + EXPANSION_SLACK
        else:  # no alias: nothing can expand
            budget = byte_budget = _NO_LIMIT
        node = yaml.compose(text, Loader=_Composer)
        if node is None:
            raise LoadError(_diag("LBC002", "the file is empty", file,
                                  hint="start from an example: lbc validate examples/flynet.yaml"))
        walker = _Walker(file, budget, byte_budget)
        doc.data = walker.walk(node)
        doc.tree = NodeTree(node, walker.key)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        if e.context == "expected a single document in the stream":  # what the pre-scan says, where it says it
            raise LoadError(_diag("LBC002", "more than one YAML document in the file", file, e.problem_mark,
                                  "put one topology in each file")) from None
        if "nesting depth" in str(e.problem):  # libyaml's own limit (1,000) can come before ours
            raise LoadError(_diag("LBC003", f"nesting deeper than {max_depth} levels", file, mark)) from None
        raise LoadError(_diag("LBC002", f"YAML syntax: {e.problem or e.context}", file, mark)) from None
    except yaml.YAMLError as e:
        raise LoadError(_diag("LBC002", f"YAML syntax: {e}", file)) from None
    except RecursionError:
        raise LoadError(_diag("LBC003", "nesting too deep", file)) from None
    return doc


def load_file(path: str, *, max_bytes: int = MAX_BYTES, display_name: str | None = None,
              max_aliases: int = MAX_ALIASES) -> Document:
    """Read and parse a topology file. OSError propagates (the CLI reports it as an I/O error)."""
    name = display_name or path
    try:
        raw = read_regular(path, max_bytes)
    except NotRegularFile:
        raise LoadError(_diag("LBC001", "not a regular file (a FIFO, device or folder)", name, line=0,
                              hint="give a topology file, or - for standard input")) from None
    return load_bytes(raw, name, max_bytes=max_bytes, max_aliases=max_aliases)


def load_bytes(raw: bytes, name: str, *, max_bytes: int = MAX_BYTES, max_aliases: int = MAX_ALIASES) -> Document:
    """Parse a topology read elsewhere (standard input); `name` is what diagnostics call it."""
    if len(raw) > max_bytes:
        raise LoadError(_diag("LBC001", f"the file is larger than {max_bytes} bytes", name, line=0,
                              hint="raise the limit with --max-bytes if this is intended"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LoadError(_diag("LBC001", f"the file is not UTF-8 (byte {e.start})", name)) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return load_text(text, name, max_aliases=max_aliases)
