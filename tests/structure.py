"""The shape of a compiled output, to compare a hostile value's output with a benign one's.

Each parser reads a target's file the way its proxy does (statements and words, JSON, Tcl words
and substitutions) and keeps the shape only: how many statements, blocks and words, and in Tcl
which words substitute a variable or a command. Text inside a word is left out, so a value that
stays one quoted word gives the same shape as any other value; a value that adds a directive,
a word, a block or a substitution does not.
"""
from __future__ import annotations

import json

from lbc.targets import f5_tmsh


# ---------------------------------------------------------------- HAProxy (one statement per line)

def _haproxy_words(line: str) -> int:
    """Words of one haproxy.cfg line as HAProxy's parser splits them (quotes, escapes, # comments)."""
    words, i, n, in_word = 0, 0, len(line), False
    while i < n:
        c = line[i]
        if c in " \t":
            in_word = False
            i += 1
            continue
        if c == "#" and not in_word:
            break
        if not in_word:
            words += 1
            in_word = True
        if c == "\\":
            i += 2
        elif c == "'":
            j = line.find("'", i + 1)
            i = (j if j >= 0 else n) + 1
        elif c == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
        else:
            i += 1
    return words


def haproxy_shape(text: str) -> list[int]:
    return [w for w in (_haproxy_words(line) for line in text.split("\n")) if w]


# ---------------------------------------------------------------- nginx (; { } outside quotes)

def nginx_shape(text: str) -> list:
    """Statements as word counts, blocks as nested lists."""
    stack: list[list] = [[]]
    words, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == ";":
            stack[-1].append(words)
            words, i = 0, i + 1
        elif c == "{":
            stack[-1].append(words)
            stack.append([])
            words, i = 0, i + 1
        elif c == "}":
            block = stack.pop() if len(stack) > 1 else ["unbalanced }"]
            stack[-1].append(block)
            words, i = 0, i + 1
        else:
            words += 1
            if c in "\"'":
                i += 1
                while i < n and text[i] != c:
                    i += 2 if text[i] == "\\" else 1
                i += 1
            else:
                while i < n and text[i] not in " \t\r\n;{}\"'":
                    i += 2 if text[i] == "\\" else 1
    return stack[0] + (["unclosed"] * (len(stack) - 1))


# ---------------------------------------------------------------- Tcl (iRules)

def tcl_shape(script: str) -> list:
    """Commands as lists of word shapes: 'w' a plain word, ('{}', shape of the braced text parsed
    as a script), ('"'/'bare', substitutions), where a substitution is '$' or ('[', shape)."""
    shape, _ = _tcl_script(script, 0, None)
    return shape


def _tcl_script(s: str, i: int, close: str | None) -> tuple[list, int]:
    cmds: list = []
    words: list = []
    n = len(s)
    while i < n:
        c = s[i]
        if close and c == close:
            if words:
                cmds.append(words)
            return cmds, i + 1
        if c in " \t":
            i += 1
        elif c == "\\" and i + 1 < n and s[i + 1] == "\n":
            i += 2
        elif c in "\n;":
            if words:
                cmds.append(words)
            words, i = [], i + 1
        elif c == "#" and not words:
            while i < n and s[i] != "\n":
                i += 2 if s[i] == "\\" else 1
        elif c == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                if s[j] == "\\":
                    j += 1
                elif s[j] == "{":
                    depth += 1
                elif s[j] == "}":
                    depth -= 1
                j += 1
            words.append(("{}", tcl_shape(s[i + 1:j - 1]) if not depth else "unbalanced"))
            i = j
        elif c == '"':
            subs, i = _tcl_word(s, i + 1, '"')
            words.append(('"', subs))
        else:
            subs, i = _tcl_word(s, i, None)
            words.append(("bare", subs) if subs else "w")
    if words:
        cmds.append(words)
    return cmds, i


def _tcl_word(s: str, i: int, end: str | None) -> tuple[list, int]:
    subs: list = []
    n = len(s)
    while i < n:
        c = s[i]
        if end and c == end:
            return subs, i + 1
        if not end and c in " \t\n;" or (not end and c == "]"):
            return subs, i
        if c == "\\":
            i += 2
        elif c == "$":
            subs.append("$")
            i += 1
        elif c == "[":
            inner, i = _tcl_script(s, i + 1, "]")
            subs.append(("[", inner))
        else:
            i += 1
    return subs, i


# ---------------------------------------------------------------- F5

def _tmsh_block(block) -> list:
    return [(k if not isinstance(v, str) else "k", "S" if isinstance(v, str) else
             None if v is None else _tmsh_block(v)) for k, v in block]


def bigip_shape(text: str) -> list:
    objs, header = f5_tmsh.parse(text)
    return [len(header)] + [(o.kind, tcl_shape(o.raw) if o.raw is not None else _tmsh_block(o.body)) for o in objs]


def json_shape(node):
    """JSON with every string replaced by its kind (iRule text by its Tcl shape)."""
    if isinstance(node, dict):
        return {k: (tcl_shape(v) if k == "iRule" and isinstance(v, str) else json_shape(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [json_shape(v) for v in node]
    return type(node).__name__


def file_shape(target: str, rel: str, text: str):
    """The shape of one output file."""
    if rel.endswith(".md"):
        # no proxy reads it; a value must still not add lines (table rows list distinct files)
        return len([line for line in text.split("\n") if not line.startswith("|")])
    if rel.endswith(".json"):
        return json_shape(json.loads(text))
    if target == "haproxy":
        return haproxy_shape(text)
    if target == "nginx":
        return nginx_shape(text)
    if rel.endswith(".tcl"):
        return tcl_shape(text)
    if rel.endswith(".conf") and target == "f5":
        return bigip_shape(text)
    return len(text.split("\n"))


def shape(target: str, files: dict[str, str]) -> list:
    """Every file's shape, by kind of file (names of files may come from names in the topology)."""
    return sorted(((rel.rsplit(".", 1)[-1], file_shape(target, rel, text)) for rel, text in files.items()), key=repr)
