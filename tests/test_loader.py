"""The loader: positions, duplicate keys, limits. Hostile YAML never produces a traceback."""
from __future__ import annotations

import time

import pytest

from lbc.loader import LoadError, load_text
from lbc.pipeline import Options

from helpers import check_text, ids

MINIMAL = """\
lbc: 1
vips:
  public: {address: 127.0.0.10}
services:
  web:
    servers:
      - {name: w1, address: 127.0.0.11, port: 8080}
listeners:
  - name: http
    vip: public
    port: 80
    routes:
      - {service: web}
"""


def test_minimal_topology_is_clean(tmp_path):
    r = check_text(tmp_path, MINIMAL)
    assert r.diagnostics == [] and r.model is not None
    assert r.model.listeners[0].routes[0].port_name == "default"


def test_positions_for_values_and_keys():
    doc = load_text(MINIMAL, "t.yaml")
    loc = doc.locate(("services", "web", "servers", 0, "port"))
    assert (loc.line, loc.col) == (7, 47)
    key = doc.locate(("listeners", 0, "vip"), key=True)
    assert (key.line, key.col) == (10, 5)
    # an unknown path falls back to the nearest ancestor
    assert doc.locate(("listeners", 0, "nope")).line == 9


def test_duplicate_key_names_both_places():
    with pytest.raises(LoadError) as e:
        load_text("lbc: 1\nvips: {}\nlbc: 2\n", "t.yaml")
    d = e.value.diagnostic
    assert (d.id, d.location.line, d.location.col) == ("LBC004", 3, 1)
    assert d.related[0].location.line == 1


@pytest.mark.parametrize("text,rule", [
    ("a: [1, 2\n", "LBC002"),                       # syntax
    ("", "LBC002"),                                  # empty
    ("a: 1\n---\nb: 2\n", "LBC002"),                 # two documents
    ("a: &x {b: 1}\nc: {<<: *x}\n", "LBC002"),       # merge keys
    ("a: \x00\n", "LBC002"),                          # NUL byte
    ("[" * 100 + "]" * 100, "LBC003"),               # nesting
])
def test_bad_yaml_is_a_diagnostic(text, rule):
    with pytest.raises(LoadError) as e:
        load_text(text, "t.yaml")
    assert e.value.diagnostic.id == rule


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        refs = ",".join([f"*a{i-1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_refused_quickly():
    text = billion_laughs()
    assert len(text) < 1000
    start = time.perf_counter()
    with pytest.raises(LoadError) as e:
        load_text(text, "bomb.yaml")
    elapsed = time.perf_counter() - start
    assert e.value.diagnostic.id == "LBC003"
    assert elapsed < 1.0  # generous: the refusal is a bounded walk, measured at a few ms


def test_deep_nesting_never_reaches_the_c_composer():
    # PyYAML's C composer crashes the process around 30,000 levels; the event pre-scan stops at 64.
    with pytest.raises(LoadError) as e:
        load_text("[" * 50_000 + "]" * 50_000, "deep.yaml")
    assert e.value.diagnostic.id == "LBC003"


def test_modest_aliases_are_fine(tmp_path):
    text = MINIMAL.replace("      - {name: w1, address: 127.0.0.11, port: 8080}",
                           "      - &srv {name: w1, address: 127.0.0.11, port: 8080}")
    assert check_text(tmp_path, text).diagnostics == []


def test_file_size_limit(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text(MINIMAL + "#" * 2000)
    from lbc.pipeline import check_file
    r = check_file(str(p), Options(max_bytes=1000))
    assert ids(r) == ["LBC001"]


def test_not_utf8(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"lbc: 1\nname: caf\xe9\n")
    from lbc.pipeline import check_file
    assert ids(check_file(str(p))) == ["LBC001"]


@pytest.mark.parametrize("edit,rule,line,col", [
    (("      - {name: w1, address: 127.0.0.11, port: 8080}", "      - {name: w1, address: 127.0.0.11, port: 8080, wieght: 2}"), "LBC010", 7, 53),
    (("    port: 80\n", "    port: eighty\n"), "LBC011", 11, 11),
    (("    vip: public\n", ""), "LBC012", 9, 5),
    (("{service: web}", "{service: web, port: 1}"), "LBC011", 13, 30),
    (("lbc: 1", "lbc: 2"), "LBC015", 1, 6),
    (("port: 8080}", "port: 70000}"), "LBC105", 7, 47),
    (("{address: 127.0.0.10}", "{address: 300.0.0.1}"), "LBC105", 3, 21),
])
def test_schema_errors_point_at_the_value(tmp_path, edit, rule, line, col):
    r = check_text(tmp_path, MINIMAL.replace(*edit))
    assert [(d.id, d.location.line, d.location.col) for d in r.diagnostics] == [(rule, line, col)]


def test_unknown_key_suggests_the_nearest(tmp_path):
    r = check_text(tmp_path, MINIMAL.replace("    vip: public", "    vip: public\n    websockets: true"))
    (d,) = r.diagnostics
    assert d.id == "LBC010" and "did you mean 'websocket'" in d.hint


def test_bad_duration(tmp_path):
    text = MINIMAL.replace("      - {name: w1, address: 127.0.0.11, port: 8080}",
                           "      - {name: w1, address: 127.0.0.11, port: 8080}\n    health: {tcp: true, interval: 5 seconds}")
    (d,) = check_text(tmp_path, text).diagnostics
    assert (d.id, d.location.line) == ("LBC014", 8)


def test_yaml_11_surprises_do_not_crash(tmp_path):
    # `on`, dates and binary-looking scalars arrive as JSON types or text, then the schema judges them
    r = check_text(tmp_path, MINIMAL.replace("name: http", "name: 2024-01-01"))
    assert ids(r) == ["LBC013"]


@pytest.mark.parametrize("text,words", [
    ('name: "ok\\n"\n', "a newline"), ('name: "a\\rb"\n', "a carriage return"), ('name: "a\\tb"\n', "a tab"),
    ('name: "a\\u2028b"\n', "U+2028"), ('name: "a\\u202eb"\n', "U+202E"), ('name: "a\\x85b"\n', "U+0085"),
    ('"k\\ny": 1\n', "a newline"), ("name: |\n  two\n  lines\n", "a newline"),
])
def test_no_string_may_hold_a_control_character(text, words):
    with pytest.raises(LoadError) as e:
        load_text("lbc: 1\n" + text, "t.yaml")
    d = e.value.diagnostic
    assert d.id == "LBC013" and words in d.message and d.location.line >= 2


@pytest.mark.parametrize("value,number", [("8080", 8080), ("-1", -1), ("0", 0), ("1.2", 1.2)])
def test_plain_numbers_load(value, number):
    assert load_text(f"x: {value}\n", "t.yaml").data == {"x": number}


@pytest.mark.parametrize("value", ["010", "0x10", "0b10", "1_000", "1:30", "1:30.5", ".inf", ".nan", "6.0e+3",
                                   "9" * 30])
def test_numbers_a_reader_would_misread_are_refused(value):
    with pytest.raises(LoadError) as e:
        load_text(f"x: {value}\n", "t.yaml")
    assert e.value.diagnostic.location.line == 1


def test_quoted_numbers_stay_text():
    assert load_text('x: "010"\n', "t.yaml").data == {"x": "010"}


def test_a_fifo_is_refused_without_waiting(tmp_path):
    import os
    from lbc.loader import load_file
    fifo = tmp_path / "t.yaml"
    os.mkfifo(fifo)
    with pytest.raises(LoadError) as e:
        load_file(str(fifo))
    assert "not a regular file" in e.value.diagnostic.message


def test_a_load_keeps_no_yaml_node_alive_beyond_its_document():
    # A long-running process (the test suite, a watch mode) must not keep every file's node tree:
    # PyYAML's constructor caches each node it converts, and a shared one kept them all. A document
    # keeps its own nodes (its positions are looked up there) and they go with it.
    import gc

    import yaml as _yaml
    text = "".join(f"k{i}: [a, {i}, 1.5, true, null, {{x: y}}]\n" for i in range(200))

    def live_nodes() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, _yaml.Node))

    before = live_nodes()
    docs = [load_text(text, f"f{i}.yaml") for i in range(5)]
    assert docs[4].data["k199"] == ["a", 199, 1.5, True, None, {"x": "y"}]
    assert docs[4].locate(("k199", 5, "x")).line == 200
    one_tree = (live_nodes() - before) // 5
    assert one_tree >= 200 * 9
    del docs[:4]
    assert live_nodes() - before == one_tree
    del docs
    assert live_nodes() - before == 0


def _positions(doc) -> list:
    """Every value's and key's position, path by path (and nothing below a scalar)."""
    out = []

    def visit(data, path):
        out.append((path, doc.value_span(path), doc.key_span(path)))
        if isinstance(data, dict):
            for k, v in data.items():
                visit(v, path + (k,))
        elif isinstance(data, list):
            for i, v in enumerate(data):
                visit(v, path + (i,))
        else:
            assert doc.value_span(path + ("x",)) is None
    visit(doc.data, ())
    return out


# The pre-scan (depth, aliases, documents) is skipped when the text alone proves it would find
# nothing (compiler/loader.py, _prescan_needed). Both ways must give the same document or the same
# diagnostic, and the text bound must never let a deeper file through.
def _both_ways(text: str, max_depth: int = 64):
    from lbc.loader import _load_text

    def one(prescan: bool):
        try:   # always the pre-scan, or load_text's choice
            d = _load_text(text, "t.yaml", max_depth, 1000, True) if prescan else load_text(text, "t.yaml",
                                                                                             max_depth=max_depth)
            return repr((d.data, _positions(d), d.aliases))
        except LoadError as e:
            return repr(e.diagnostic)
    return one(True), one(False)


def _corpus() -> list[str]:
    import pathlib
    root = pathlib.Path(__file__).resolve().parent.parent
    files = sorted([*root.glob("examples/**/*.yaml"), *root.glob("tests/rules/cases/*.yaml"),
                    *root.glob("tests/golden/cases/*.yaml")])
    return [f.read_text(encoding="utf-8") for f in files]


def test_skipping_the_prescan_changes_no_document_and_no_diagnostic():
    import random
    rnd = random.Random(18)
    texts = _corpus()
    pieces = list("[]{}-:?*&!#'\" \n\t,|>") + ["  ", "- ", ": ", "*a", "&a ", "\n  ", "---\n", "...\n", "\r",
                                                 "\x01", "\u2028", "\n" + " " * 40 + "- - a"]
    for _ in range(1500):   # ~6 s: mutants of the corpus (inserted indicators, cut and repeated text)
        t = rnd.choice(texts)
        for _ in range(rnd.randint(1, 4)):
            p = rnd.randrange(len(t))
            op = rnd.random()
            if op < 0.4:
                t = t[:p] + rnd.choice(pieces) + t[p:]
            elif op < 0.7:
                t = t[:p] + t[p + rnd.randint(1, 5):]
            else:
                q = rnd.randrange(len(t))
                t = t[:p] + t[q:q + rnd.randint(1, 40)] + t[p:]
        texts.append(t)
    texts += ["a: 1\n---\nb: [\n", "a: 1\n...\n---\nb: 2\n", 'x: ["]", ["]", [1]]\n', "a: *x\n"]
    for t in texts:
        for depth in (64, 6):
            with_scan, without = _both_ways(t, depth)
            assert with_scan == without, t


def test_the_text_bound_on_nesting_is_never_too_low():
    import random

    import yaml as _yaml
    from lbc.loader import _prescan_needed
    rnd = random.Random(64)

    def data(d):
        r = rnd.random()
        if d > 12 or r < 0.3:
            return rnd.choice(["x", "a]b", "q'", 1, "[", "}", "#]"])
        if r < 0.65:
            return [data(d + 1) for _ in range(rnd.randint(0, 3))]
        return {f"k{rnd.randint(0, 9)}": data(d + 1) for _ in range(rnd.randint(0, 3))}

    def depth(text):
        now = most = 0
        for ev in _yaml.parse(text, Loader=_yaml.SafeLoader):
            if isinstance(ev, (_yaml.MappingStartEvent, _yaml.SequenceStartEvent)):
                now += 1
                most = max(most, now)
            elif isinstance(ev, (_yaml.MappingEndEvent, _yaml.SequenceEndEvent)):
                now -= 1
        return most

    skipped = 0
    for _ in range(1500):  # ~3 s
        t = _yaml.safe_dump(data(0), default_flow_style=rnd.choice([None, True, False]),
                            indent=rnd.choice([1, 2, 4]), width=rnd.choice([10, 80, 1000]))
        t = t.replace("-\n", "- ", rnd.randint(0, 3))   # compact nested sequences
        if rnd.random() < 0.2:
            t = t.replace("\n", rnd.choice(["\r", "\r\n", "\u2028"]))
        try:
            real = depth(t)
        except _yaml.YAMLError:
            continue
        for limit in (3, 5, 8, 14):
            if not _prescan_needed(t, limit):
                skipped += 1
                assert real <= limit, t
    assert skipped > 1000   # the bound is not so loose that it never skips


@pytest.mark.parametrize("value", ["!!bool maybe", "!!timestamp soon"])
def test_a_tag_that_cannot_read_its_value_is_a_diagnostic(value):
    with pytest.raises(LoadError) as e:
        load_text(f"lbc: 1\nname: {value}\n", "t.yaml")
    d = e.value.diagnostic
    assert (d.id, d.location.line, d.location.col) == ("LBC002", 2, 7) and "cannot be read as" in d.message
