"""One topology from several files: includes, an environment's overlay, and values for placeholders.

    main.yaml          lbc: 1, include: [fragments...], environments: {lab: lab.yaml, ...}
    fragment.yaml      lbc-fragment: 1, more vips/services/listeners... (may include others)
    lab.yaml           lbc-fragment: 1, the lab's changes (an overlay; chosen with --env lab)
    values.yaml        name: value, for ${name} placeholders (--values; LBC_VAR_name with --values-env)

The result is one Document whose every path still knows the file, line and column it was written
at, so the schema, the rules and every output format point into the right file. Nothing here reads
the network or a file outside the main file's folder; the loader's byte and alias limits apply to
all the files together, and includes may neither loop nor nest deeper than MAX_INCLUDE_DEPTH.

Merging. Includes only add: a name (a VIP, a service...) defined in two files is an error, listeners
are appended. An overlay changes: mappings merge key by key, `key: null` removes the key (an
object by name), scalars and unnamed lists are replaced, and lists of named items (listeners,
servers) merge by `name`, where `{name: x, remove: true}` removes item x.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .diagnostics import Diagnostic, Location, Related
from .loader import MAX_ALIASES, MAX_BYTES, Document, LoadError, _PLAIN_INT, forbidden_char, load_file
from .report import Reporter
from .safeio import read_regular

MAX_INCLUDE_DEPTH = 8      # main -> fragment -> ... ; real estates split by owner need two or three
MAX_FILES = 256            # files in one topology, includes and overlay together
FRAGMENT_KEY = "lbc-fragment"  # `lbc-fragment: 1` marks a file that is only part of a topology
ENV_PREFIX = "LBC_VAR_"    # --values-env reads only these variables: never PATH, HOME or a token
_PLACEHOLDER = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]{0,63})\}|\$\{")
_VALUE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MIN_REDACTED = 4          # shorter values ("80", "on") would blank out ordinary words of messages


@dataclass
class Inputs:
    """What the command line adds to the main file."""
    env: Optional[str] = None
    values: tuple[str, ...] = ()          # values files, later ones win
    values_env: bool = False              # also read LBC_VAR_<name> (they win over files)
    environ: Optional[Mapping[str, str]] = None  # tests pass their own; None: os.environ


class ComposeError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__(diagnostics[0].message)
        self.diagnostics = diagnostics
        self.sources: dict[str, list[str]] = {}  # every file read so far, for quoting the error's line


def _err(message: str, loc: Location, hint: str = "", rule: str = "LBC005", related=()) -> Diagnostic:
    return Reporter().at(rule, loc, message, hint=hint, related=related)


@dataclass
class _Node:
    """A value of the merged tree and where it was written (document and path in that document)."""
    value: Any   # dict[key, _Node] | list[_Node] | scalar (checked where used)
    doc: Document
    path: tuple

    def loc(self, key: bool = False) -> Location:
        return self.doc.locate(self.path, key=key)


def _tree(doc: Document, data, path: tuple = ()) -> _Node:
    if isinstance(data, dict):
        return _Node({k: _tree(doc, v, path + (k,)) for k, v in data.items()}, doc, path)
    if isinstance(data, list):
        return _Node([_tree(doc, v, path + (i,)) for i, v in enumerate(data)], doc, path)
    return _Node(data, doc, path)


@dataclass
class _Loader:
    """Reads the files of one topology within shared budgets."""
    root: str                      # realpath of the main file's folder: nothing is read outside it
    limit: int                     # bytes of all the files together (--max-bytes)
    bytes_left: int = 0
    aliases_left: int = MAX_ALIASES
    docs: list[Document] = field(default_factory=list)
    failed_lines: dict[str, list[str]] = field(default_factory=dict)
    included: dict[str, str] = field(default_factory=dict)  # realpath -> the file that included it

    def sources(self) -> dict[str, list[str]]:
        return {**{d.file: d.lines for d in self.docs}, **self.failed_lines}

    def read(self, path: str, name: str, at: Location) -> Document:
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.root]) != self.root:
            raise ComposeError([_err(f"'{name}' is outside the topology's folder", at,
                                     "include files from the main file's folder or below it")])
        if len(self.docs) >= MAX_FILES:
            raise ComposeError([_err(f"a topology may have at most {MAX_FILES} files", at)])
        if not os.path.exists(real):
            raise ComposeError([_err(f"'{name}' does not exist", at, "give a path relative to the including file")])
        try:
            doc = load_file(path, max_bytes=self.bytes_left, display_name=name, max_aliases=self.aliases_left)
        except LoadError as e:
            d = e.diagnostic
            if d.id == "LBC001" and "larger than" in d.message:
                d = _err(f"the topology's files together are larger than {self.limit} bytes", at,
                         "raise the limit with --max-bytes if this is intended", rule="LBC001")
            self.quote(path, name)
            raise ComposeError([d]) from None
        except OSError as e:
            raise ComposeError([_err(f"cannot read '{name}': {e.strerror or e}", at)]) from None
        self.account(doc)
        return doc

    def quote(self, path: str, name: str) -> None:
        """Keep a file that failed to load for quoting its error's line (as a single file's error is)."""
        limit = max(self.bytes_left, 0)
        try:   # read_regular: a FIFO (refused by load_file) must not make this wait for a writer
            text = read_regular(path, limit)[:limit].decode("utf-8", "replace")
        except OSError:
            return
        self.failed_lines[name] = text.splitlines()

    def account(self, doc: Document) -> None:
        self.bytes_left -= sum(len(line.encode("utf-8")) + 1 for line in doc.lines)
        self.aliases_left -= doc.aliases
        self.docs.append(doc)


def _name_of(base: str, rel: str) -> str:
    """How diagnostics name an included file: joined to the including file's name, normalised."""
    return os.path.normpath(os.path.join(os.path.dirname(base), rel))


def _load_set(loader: _Loader, doc: Document, stack: tuple[str, ...], fragment: bool) -> _Node:
    """A file and everything it includes, combined (includes only add)."""
    tree = _tree(doc, doc.data)
    if not isinstance(tree.value, dict):
        return tree  # the schema reports it
    top = tree.value
    marker = top.pop(FRAGMENT_KEY, None)
    if fragment and (marker is None or marker.value != 1):
        raise ComposeError([_err(f"'{doc.file}' is not marked as a fragment", Location(doc.file, 1, 1),
                                 f"start an included or environment file with `{FRAGMENT_KEY}: 1` (and no `lbc:`)")])
    if not fragment and marker is not None:
        raise ComposeError([_err(f"'{FRAGMENT_KEY}' is only for files that other files include",
                                 marker.loc(key=True), "a main topology starts with `lbc: 1`")])
    if fragment and "lbc" in top:
        raise ComposeError([_err("a fragment does not declare `lbc:`; the main file does", top["lbc"].loc(key=True),
                                 f"remove `lbc:`; `{FRAGMENT_KEY}: 1` marks this file")])
    includes = top.pop("include", None)
    if includes is None:
        return tree
    if not isinstance(includes.value, list) or not all(isinstance(i.value, str) for i in includes.value):
        raise ComposeError([_err("include: expected a list of relative file paths", includes.loc(), rule="LBC011")])
    if len(stack) > MAX_INCLUDE_DEPTH:
        raise ComposeError([_err(f"includes nest deeper than {MAX_INCLUDE_DEPTH} files", includes.loc(),
                                 "include the fragments from the main file instead of from each other")])
    for item in includes.value:
        rel = item.value
        if not rel or os.path.isabs(rel) or "\\" in rel or "://" in rel:
            raise ComposeError([_err(f"include '{rel}': give a relative path with '/'", item.loc(),
                                     "includes are files beside the topology, never absolute paths or URLs")])
        name = _name_of(doc.file, rel)
        path = os.path.join(os.path.dirname(doc.file), rel)
        real = os.path.realpath(path)
        if real in loader.included and real not in stack:
            raise ComposeError([_err(f"'{rel}' is already included by {loader.included[real]}", item.loc(),
                                     "include each fragment once")])
        if real in stack:
            chain = " -> ".join([os.path.basename(s) for s in stack[stack.index(real):]] + [os.path.basename(real)])
            raise ComposeError([_err(f"include cycle: {chain}", item.loc(), "a file may not include itself")])
        loader.included[real] = doc.file
        child = _load_set(loader, loader.read(path, name, item.loc()), stack + (real,), fragment=True)
        _add(tree, child)
    return tree


def _add(base: _Node, frag: _Node) -> None:
    """An included fragment's sections added to the topology: names must be new."""
    if not isinstance(frag.value, dict):
        raise ComposeError([_err("a fragment must be a mapping of topology sections", frag.loc(), rule="LBC011")])
    for key, node in frag.value.items():
        mine = base.value.get(key)
        if mine is None or mine.value is None:  # `services:` left empty in one file
            base.value[key] = node
        elif isinstance(mine.value, dict) and isinstance(node.value, dict):
            for name, obj in node.value.items():
                if name in mine.value:
                    raise ComposeError([_err(f"'{key}/{name}' is defined in two files", obj.loc(key=True),
                                             "each object is written once; change it per environment with an overlay",
                                             related=[(mine.value[name].loc(key=True), "first defined here")])])
                mine.value[name] = obj
        elif isinstance(mine.value, list) and isinstance(node.value, list):
            mine.value.extend(node.value)
        elif mine.value != node.value:
            raise ComposeError([_err(f"'{key}' is set in two files", node.loc(key=True),
                                     "set it once, in the main file",
                                     related=[(mine.loc(key=True), "first set here")])])


def _named(items: list[_Node]) -> bool:
    return all(isinstance(i.value, dict) and isinstance(i.value.get("name"), _Node)
               and isinstance(i.value["name"].value, str) for i in items)


def _overlay(base: _Node, over: _Node) -> _Node:
    """The overlay's values over the base's (see the module docstring)."""
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        for key, node in over.value.items():
            if node.value is None:
                base.value.pop(key, None)
            elif key in base.value:
                base.value[key] = _overlay(base.value[key], node)
            else:
                base.value[key] = node
        return base
    if isinstance(base.value, list) and isinstance(over.value, list) and _named(base.value) and _named(over.value):
        index = {i.value["name"].value: n for n, i in enumerate(base.value)}
        removed = set()
        for item in over.value:
            name = item.value["name"].value
            if set(item.value) == {"name", "remove"} and item.value["remove"].value is True:
                if name not in index:
                    raise ComposeError([_err(f"no item named '{name}' to remove", item.loc(),
                                             "remove only what the base topology defines")])
                removed.add(index[name])
            elif name in index:
                base.value[index[name]] = _overlay(base.value[index[name]], item)
            else:
                index[name] = len(base.value)
                base.value.append(item)
        base.value = [i for n, i in enumerate(base.value) if n not in removed]
        return base
    return over


# ------------------------------------------------------------------ values and placeholders

@dataclass
class _Value:
    value: object
    origin: str      # "values.yaml:3:7" or "environment variable LBC_VAR_x"


@dataclass
class Substitution:
    placeholder: str  # the text written, e.g. ${db_port}
    origin: str


def _values_path(loader: _Loader, main: Document, node: _Node) -> str:
    """A values file named by an environment: relative to the main file, inside its folder."""
    path = os.path.join(os.path.dirname(main.file), node.value)
    real = os.path.realpath(path)
    if os.path.commonpath([real, loader.root]) != loader.root:
        raise ComposeError([_err(f"'{node.value}' is outside the topology's folder", node.loc())])
    if not os.path.exists(real):
        raise ComposeError([_err(f"'{node.value}' does not exist", node.loc(), "give a path relative to the main file")])
    return _name_of(main.file, node.value)


def _values(inputs: Inputs, loader: _Loader, env_values: list[str]) -> dict[str, _Value]:
    """The environment's values files, then --values files, then LBC_VAR_ variables: later ones win."""
    out: dict[str, _Value] = {}
    for path in [*env_values, *inputs.values]:
        try:
            doc = load_file(path, max_bytes=loader.bytes_left, max_aliases=loader.aliases_left)
        except LoadError as e:
            raise ComposeError([e.diagnostic]) from None
        loader.account(doc)
        if not isinstance(doc.data, dict):
            raise ComposeError([_err("a values file is a mapping of name: value", doc.locate(()), rule="LBC006")])
        for name, item in doc.data.items():
            if not isinstance(name, str) or not _VALUE_NAME.fullmatch(name):
                raise ComposeError([_err(f"'{name}' is not a value name", doc.locate((name,), key=True),
                                         "names are letters, digits and '_' (at most 64)", rule="LBC006")])
            if not isinstance(item, (str, int, float, bool)):
                raise ComposeError([_err(f"value '{name}' must be text, a number or true/false",
                                         doc.locate((name,)), rule="LBC006")])
            out[name] = _Value(item, f"{doc.locate((name,))}")
    if inputs.values_env:
        environ = os.environ if inputs.environ is None else inputs.environ
        for var in sorted(environ):
            if var.startswith(ENV_PREFIX) and _VALUE_NAME.fullmatch(var[len(ENV_PREFIX):]):
                text = environ[var]
                # environment text is typed like YAML's plain scalars, but only decimal integers and booleans
                v: object = int(text) if _PLAIN_INT.fullmatch(text) else {"true": True, "false": False}.get(text, text)
                out[var[len(ENV_PREFIX):]] = _Value(v, f"environment variable {var}")
    return out


def _render(v: object) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


class _Resolver:
    def __init__(self, values: dict[str, _Value]):
        self.values = values
        self.errors: list[Diagnostic] = []
        self.used: dict[tuple, Substitution] = {}
        self.secrets: dict[str, str] = {}   # resolved text -> the placeholder shown instead

    def scalar(self, node: _Node, path: tuple):
        text = node.value
        if not isinstance(text, str) or "$" not in text:
            return text
        loc = node.loc()
        names: list[str] = []
        parts: list[str] = []
        pos, whole = 0, None
        for m in _PLACEHOLDER.finditer(text):
            parts.append(text[pos:m.start()])
            pos = m.end()
            if m.group() == "$$":
                parts.append("$")
                continue
            if m.group(1) is None:
                self.errors.append(_err("'${' starts a placeholder but no name follows", loc,
                                        "write ${name} (letters, digits, '_'), or $${ for a literal '${'",
                                        rule="LBC006"))
                return text
            name = m.group(1)
            v = self.values.get(name)
            if v is None:
                self.errors.append(_err(f"no value for the placeholder ${{{name}}}", loc,
                                        f"give it in a --values file, or as {ENV_PREFIX}{name} with --values-env",
                                        rule="LBC006"))
                return text
            bad = forbidden_char(_render(v.value))
            if bad:  # the loader checked values files; environment variables arrive here unchecked
                self.errors.append(_err(f"the value of ${{{name}}} ({v.origin}) contains {bad}", loc,
                                        "topology values are single-line text without control characters",
                                        rule="LBC013"))
                return text
            names.append(name)
            if m.start() == 0 and m.end() == len(text):
                whole = v.value  # "${port}" alone keeps the value's type (a number stays a number)
            parts.append(_render(v.value))
            if len(_render(v.value)) >= _MIN_REDACTED:
                self.secrets[_render(v.value)] = "${" + name + "}"
        parts.append(text[pos:])
        if names:
            self.used[path] = Substitution(text, ", ".join(f"${{{n}}} from {self.values[n].origin}" for n in names))
        return whole if whole is not None else "".join(parts)


def _flatten(node: _Node, path: tuple, out: Document, resolver: _Resolver):
    """Plain data at `path` of the merged document, copying each value's position from where it was written."""
    span = node.doc.value_span(node.path)
    if span:
        out.value_spans[path] = span
    kspan = node.doc.key_span(node.path)
    if kspan and path:
        out.key_spans[path] = kspan
    if node.doc.file != out.file:
        out.span_files[path] = node.doc.file
    if isinstance(node.value, dict):
        return {k: _flatten(v, path + (k,), out, resolver) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_flatten(v, path + (i,), out, resolver) for i, v in enumerate(node.value)]
    return resolver.scalar(node, path)


@dataclass
class Composed:
    doc: Document
    substitutions: dict[tuple, Substitution]
    secrets: dict[str, str]
    files: list[str]                    # the topology's files, main first
    values_files: tuple[str, ...] = ()


def compose(main: Document, inputs: Inputs, max_bytes: int = MAX_BYTES) -> Composed:
    """The main document with its includes, the chosen environment and the values; raises ComposeError."""
    if _single(main, inputs):
        return Composed(main, {}, {}, [main.file])
    root = os.path.realpath(os.path.dirname(os.path.abspath(main.file)))
    loader = _Loader(root, max_bytes, max_bytes)
    loader.account(main)
    try:
        return _compose(loader, main, inputs)
    except ComposeError as e:
        e.sources = loader.sources()
        raise


def _single(main: Document, inputs: Inputs) -> bool:
    """Most topologies are one file without placeholders: skip the copy (it costs ~2x on 50k services)."""
    return (not inputs.env and not inputs.values and not inputs.values_env and isinstance(main.data, dict)
            and not {"include", "environments", FRAGMENT_KEY} & set(main.data)
            and not any("$" in line for line in main.lines))


def _compose(loader: _Loader, main: Document, inputs: Inputs) -> Composed:
    real_main = os.path.realpath(main.file)
    tree = _load_set(loader, main, (real_main,), fragment=False)
    env_values: list[str] = []
    envs_defined = environment_names(main)
    if isinstance(tree.value, dict):
        envs = tree.value.pop("environments", None)
        if inputs.env is not None:
            overlay, value_nodes = _environment(loader, main, envs, inputs.env, real_main)
            if overlay is not None:
                tree = _overlay(tree, overlay)
            env_values = [_values_path(loader, main, n) for n in value_nodes]
    elif inputs.env is not None:
        raise ComposeError([_err("--env needs a topology with `environments:`", Location(main.file, 1, 1))])
    values = _values(inputs, loader, env_values)
    out = Document(file=main.file, data=None, lines=main.lines, aliases=main.aliases)
    resolver = _Resolver(values)
    out.data = _flatten(tree, (), out, resolver)
    if resolver.errors:
        if inputs.env is None and envs_defined:  # the values are most likely an environment's
            from dataclasses import replace
            tip = f"; or choose an environment: --env {'|'.join(envs_defined)} (--every-env checks each)"
            raise ComposeError([replace(d, hint=d.hint + tip) if d.id == "LBC006" else d for d in resolver.errors])
        raise ComposeError(resolver.errors)
    out.other_lines = {f: lines for f, lines in loader.sources().items() if f != main.file}
    read_values = (*env_values, *inputs.values)
    topology_files = [d.file for d in loader.docs if d.file not in read_values]
    return Composed(out, resolver.used, resolver.secrets, topology_files, read_values)


def _relative(node: _Node, what: str) -> str:
    rel = node.value
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or "\\" in rel or "://" in rel:
        raise ComposeError([_err(f"{what}: give a relative path with '/'", node.loc())])
    return rel


def _environment_entry(env: str, entry: _Node) -> tuple[Optional[_Node], list[_Node]]:
    """`lab: lab.yaml`, or `lab: {overlay: lab.yaml, values: [values/lab.yaml]}` (both keys optional)."""
    if isinstance(entry.value, str):
        _relative(entry, f"environment '{env}'")
        return entry, []
    if not isinstance(entry.value, dict) or set(entry.value) - {"overlay", "values"}:
        raise ComposeError([_err(f"environment '{env}': give an overlay file, or {{overlay: FILE, values: [FILES]}}",
                                 entry.loc(), rule="LBC011")])
    overlay = entry.value.get("overlay")
    if overlay is not None:
        _relative(overlay, f"environment '{env}' overlay")
    values = entry.value.get("values")
    items = [] if values is None else values.value if isinstance(values.value, list) else [values]
    for item in items:
        _relative(item, f"environment '{env}' values")
    return overlay, items


def _environment(loader: _Loader, main: Document, envs: Optional[_Node], env: str,
                 real_main: str) -> tuple[Optional[_Node], list[_Node]]:
    if envs is None or not isinstance(envs.value, dict):
        raise ComposeError([_err(f"--env {env}: this topology defines no `environments:`", Location(main.file, 1, 1),
                                 "add `environments: {NAME: overlay.yaml}` to the main file")])
    entry = envs.value.get(env)
    if entry is None:
        import difflib
        close = difflib.get_close_matches(env, [str(k) for k in envs.value], n=1)
        raise ComposeError([_err(f"--env {env}: no such environment", envs.loc(key=True),
                                 f"did you mean '{close[0]}'?" if close
                                 else f"defined: {', '.join(sorted(str(k) for k in envs.value))}")])
    overlay, values = _environment_entry(env, entry)
    if overlay is None:
        return None, values
    rel = overlay.value
    path = os.path.join(os.path.dirname(main.file), rel)
    doc = loader.read(path, _name_of(main.file, rel), entry.loc())
    tree = _load_set(loader, doc, (real_main, os.path.realpath(path)), fragment=True)
    if isinstance(tree.value, dict) and "environments" in tree.value:
        raise ComposeError([_err("an environment's overlay cannot define environments",
                                 tree.value["environments"].loc(key=True), "define them in the main file")])
    return tree, values


def redact(diags: list[Diagnostic], secrets: dict[str, str]) -> list[Diagnostic]:
    """Diagnostics show ${name}, never a value that came from outside the files (a key path, a token)."""
    if not secrets:
        return diags
    import json
    from dataclasses import replace
    pairs = sorted(((json.dumps(v, ensure_ascii=True)[1:-1], p) for v, p in secrets.items()), reverse=True)
    pairs += sorted(secrets.items(), reverse=True)

    def scrub(text: str) -> str:
        for value, placeholder in pairs:
            text = text.replace(value, placeholder)
        return text
    return [replace(d, message=scrub(d.message), hint=scrub(d.hint),
                    related=tuple(Related(r.location, scrub(r.note)) for r in d.related)) for d in diags]


def environment_names(doc: Document) -> list[str]:
    """The environments a main file defines (for checking every one of them)."""
    envs = doc.data.get("environments") if isinstance(doc.data, dict) else None
    return sorted(str(k) for k in envs) if isinstance(envs, dict) else []


def fragment_alone(doc: Document) -> Optional[Diagnostic]:
    """A file marked `lbc-fragment: 1` checked on its own: say so instead of failing on what it lacks."""
    if isinstance(doc.data, dict) and FRAGMENT_KEY in doc.data and "lbc" not in doc.data:
        return Reporter(doc).report("LBC007", (FRAGMENT_KEY,), "this file is a fragment of a topology: it is "
                                    "checked when the topology that includes it is", key=True,
                                    hint="validate the main file (the one with `lbc: 1` that includes this one)")
    return None
