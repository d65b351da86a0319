"""The command line as users run it: exit codes, output formats, atomic and deterministic writes."""
from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys

import jsonschema
import pytest
import yaml

from lbc.pipeline import OUTPUT_MARKER, OutputDirError, write_outputs

from helpers import example_path, EXAMPLES, lbc


def test_examples_validate():
    r = lbc("validate", *[example_path(e) for e in EXAMPLES])
    assert r.returncode == 0, r.stdout + r.stderr


def test_examples_validate_with_jsonschema_alone():
    schema = json.loads(lbc("schema").stdout)
    for e in EXAMPLES:
        with open(example_path(e)) as f:
            jsonschema.validate(yaml.safe_load(f), schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("example", EXAMPLES)
def test_unknown_key_appended_to_an_example(tmp_path, example):
    with open(example_path(example)) as f:
        text = f.read()
    lines = text.splitlines()
    p = tmp_path / example
    p.write_text(text + "colour: blue\n")
    r = lbc("validate", str(p), "--format", "json")
    assert r.returncode == 1
    (d,) = json.loads(r.stdout)["diagnostics"]
    assert (d["id"], d["line"], d["col"]) == ("LBC010", len(lines) + 1, 1)


def test_text_format_has_caret_and_hint(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(open(example_path("flynet.yaml")).read().replace("balance: round-robin", "balance: round-robbin"))
    r = lbc("validate", str(p))
    assert r.returncode == 1
    err = r.stderr.splitlines()
    head = next(i for i, l in enumerate(err) if "error[LBC013]" in l)
    assert err[head].startswith(f"{p}:")
    assert "balance: round-robbin" in err[head + 2]
    caret_col = err[head + 3].index("^") - err[head + 3].index("|") - 2
    assert err[head + 2][err[head + 2].index("|") + 2 + caret_col:].startswith("round-robbin")
    assert any("did you mean round-robin?" in l for l in err)


def test_sarif_and_github_formats(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("lbc: 1\nvips: {}\nservices: {}\nlisteners: []\nextra: 1\n")
    sarif = json.loads(lbc("validate", str(p), "-f", "sarif").stdout)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"LBC010"}
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in results)
    gh = lbc("validate", str(p), "-f", "github").stdout.splitlines()
    assert any(l.startswith("::error file=") and "line=5" in l for l in gh)


def test_exit_codes_for_usage_and_io(tmp_path):
    assert lbc("validate", str(tmp_path / "missing.yaml")).returncode == 2
    assert lbc("compile", example_path("flynet.yaml"), "--target", "nope").returncode == 2
    assert lbc("explain", "LBC999").returncode == 2
    assert lbc("frobnicate").returncode == 2


def test_explain_lists_rules():
    r = lbc("explain")
    assert r.returncode == 0 and "LBC010" in r.stdout
    page = lbc("explain", "LBC004").stdout
    assert "duplicate" in page.lower() and "Source:" in page


def test_write_outputs_is_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    write_outputs(str(out), {"a.cfg": "one\n", "maps/hosts.map": "x b\n"})
    assert (out / "a.cfg").read_text() == "one\n" and (out / OUTPUT_MARKER).exists()
    # a later compile replaces the folder whole: stale files vanish
    write_outputs(str(out), {"a.cfg": "two\n"})
    assert (out / "a.cfg").read_text() == "two\n" and not (out / "maps").exists()
    # a write that fails midway leaves the previous output as it was
    with pytest.raises(AttributeError):
        write_outputs(str(out), {"a.cfg": "three\n", "b.cfg": None})
    assert (out / "a.cfg").read_text() == "two\n"
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_write_outputs_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(OutputDirError):
        write_outputs(str(tmp_path), {"a.cfg": "x"})
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_failed_compile_leaves_output_folder_untouched(tmp_path):
    from lbc import targets
    name = targets.available()[0] if targets.available() else None
    assert name, "no target registered"
    out = tmp_path / "out"
    assert lbc("compile", example_path("flynet.yaml"), "--target", name, "-o", str(out)).returncode == 0
    before = {f: (out / f).read_bytes() for f in os.listdir(out) if (out / f).is_file()}
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(example_path("flynet.yaml")).read().replace("service: fvterm", "service: nope"))
    r = lbc("compile", str(bad), "--target", name, "-o", str(out))
    assert r.returncode == 1 and "LBC101" in r.stderr
    assert {f: (out / f).read_bytes() for f in os.listdir(out) if (out / f).is_file()} == before


@pytest.mark.parametrize("example", EXAMPLES)
def test_compile_is_byte_identical_across_processes(tmp_path, example):
    from lbc import targets
    for name in targets.available():
        a, b = tmp_path / f"{name}-a", tmp_path / f"{name}-b"
        ra = lbc("compile", example_path(example), "-t", name, "-o", str(a))
        rb = lbc("compile", example_path(example), "-t", name, "-o", str(b))
        assert ra.returncode == rb.returncode
        if ra.returncode == 0:
            files = lambda d: {os.path.relpath(os.path.join(p, f), d): open(os.path.join(p, f), "rb").read()
                               for p, _, fs in os.walk(d) for f in fs}
            assert files(a) == files(b)


# ---------------------------------------------------------------- streams, stdin, several files

SARIF_SCHEMA = os.path.join(os.path.dirname(__file__), "data", "sarif", "sarif-schema-2.1.0.json")


def bad_copy(tmp_path, name="bad.yaml", example="flynet.yaml") -> str:
    """An example with one value error (LBC013) at a known place."""
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(open(example_path(example)).read().replace("balance: round-robin", "balance: round-robbin"))
    return str(p)


def many_services(tmp_path, n: int) -> str:
    """A topology of n services without health checks: n LBC401 warnings, and a big compiled file."""
    lines = ["lbc: 1", "name: many", "vips: {v: {address: 127.0.0.10}}", "services:"]
    lines += [f"  s{i}: {{servers: [{{name: a, address: 127.0.0.11, port: {8000 + i}}}, "
              f"{{name: b, address: 127.0.0.12, port: {8000 + i}}}]}}" for i in range(n)]
    lines += ["listeners:", "  - name: web", "    vip: v", "    port: 8080", "    routes:"]
    lines += [f"      - {{hosts: [h{i}.example.com], service: s{i}}}" for i in range(n)]
    p = tmp_path / "many.yaml"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def test_compile_without_output_prints_only_the_config(tmp_path):
    r = lbc("compile", example_path("hacloud.yaml"), "-t", "envoy")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["admin"]                     # nothing but the config on stdout
    assert r.stderr.endswith("0 error(s), 0 warning(s), 4 acknowledged\n")
    if not shutil.which("haproxy"):
        pytest.skip("haproxy is not installed")
    r = lbc("compile", example_path("verastream.yaml"), "-t", "haproxy")   # one file: no host maps
    assert r.returncode == 0 and "LBC802" in r.stderr
    (tmp_path / "haproxy.cfg").write_text(r.stdout)
    check = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_pretty_indents_envoy_json_and_changes_nothing_else(tmp_path):
    # envoy.json is compact by default (README: Envoy output); --pretty gives the same value indented
    compact = lbc("compile", example_path("flynet.yaml"), "-t", "envoy", "-o", str(tmp_path / "c"))
    pretty = lbc("compile", example_path("flynet.yaml"), "-t", "envoy", "-o", str(tmp_path / "p"), "--pretty")
    assert compact.returncode == pretty.returncode == 0, compact.stderr + pretty.stderr
    c, p = ((tmp_path / d / "envoy.json").read_text() for d in "cp")
    assert c.count("\n") == 1 and p.count("\n") > 100 and p.startswith('{\n  "node": {')
    assert json.loads(c) == json.loads(p)
    assert (tmp_path / "c" / "README.md").read_text() == (tmp_path / "p" / "README.md").read_text()


def test_compile_refuses_stdout_when_the_config_needs_other_files():
    r = lbc("compile", example_path("flynet.yaml"), "-t", "haproxy")
    assert r.returncode == 2 and r.stdout == ""
    assert "haproxy.cfg, maps/fvterm-https.hosts" in r.stderr and "-o FOLDER" in r.stderr
    # F5's iRule files are copies of what bigip.conf holds: bigip.conf alone is complete
    r = lbc("compile", example_path("flynet.yaml"), "-t", "f5")
    assert r.returncode == 0 and r.stdout.count("ltm rule ") >= 1


def test_a_closed_pipe_ends_quietly(tmp_path):
    topo = many_services(tmp_path, 400)
    proc = subprocess.Popen([sys.executable, "-c", "from lbc.cli import main; main()", "compile", topo, "-t", "envoy",
                             "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(proc.stdout.read(100)) == 100     # like `| head -c 100`: read a little, then go away
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGPIPE, (proc.returncode, err[-500:])   # 141 in a shell
    assert b"Traceback" not in err and b"Broken pipe" not in err and err.endswith(b"400 warning(s)\n")


def test_text_diagnostics_go_to_stderr_on_success_too():
    r = lbc("validate", example_path("flynet.yaml"))
    assert r.returncode == 0 and r.stdout == "" and "2 acknowledged" in r.stderr


def test_stdin_is_read_for_dash_and_named_as_asked(tmp_path):
    text = open(bad_copy(tmp_path)).read()
    run = lambda *a: subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", *a], input=text,
                                    capture_output=True, text=True, timeout=60)
    r = run("validate", "-")
    assert r.returncode == 1 and "<stdin>:21:14: error[LBC013]" in r.stderr
    r = run("validate", "-", "--stdin-filename", "infra/edge.lbc.yaml", "-f", "github")
    assert r.returncode == 1 and "::error file=infra/edge.lbc.yaml,line=21,col=14,title=LBC013::" in r.stdout
    good = run("compile", "-", "-t", "envoy", "-q")
    assert good.returncode == 1   # the bad copy does not compile; a good one does:
    r = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "compile", "-", "-t", "envoy", "-q"],
                       input=open(example_path("hacloud-x509.yaml")).read(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout) and r.stderr == ""


def test_an_endless_stdin_is_refused_at_the_size_limit():
    # --max-bytes bounds standard input as it bounds a file: lbc stops reading past the limit
    with open("/dev/zero", "rb") as endless:
        r = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()", "validate", "-",
                            "--max-bytes", "1000"], stdin=endless, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "larger than 1000 bytes" in r.stderr


def test_an_unreadable_file_does_not_hide_the_others(tmp_path):
    bad, missing = bad_copy(tmp_path), str(tmp_path / "missing.yaml")
    r = lbc("validate", missing, bad, str(tmp_path))
    assert r.returncode == 2
    assert f"lbc: cannot read {missing}: No such file or directory" in r.stderr
    assert f"{tmp_path}: error[LBC001]: not a regular file" in r.stderr   # a folder is refused, with its name
    assert "error[LBC013]" in r.stderr                      # the readable file was still checked
    doc = json.loads(lbc("validate", missing, bad, "-f", "json").stdout)
    assert doc["unreadable"] == [{"file": missing, "reason": "No such file or directory"}]
    assert [d["id"] for d in doc["diagnostics"]] == ["LBC013"]
    sarif = json.loads(lbc("validate", missing, bad, "-f", "sarif", cwd=str(tmp_path)).stdout)
    inv = sarif["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert inv["toolExecutionNotifications"][0]["message"]["text"].startswith("cannot read")
    assert [x["ruleId"] for x in sarif["runs"][0]["results"]] == ["LBC013"]
    gh = lbc("validate", missing, bad, "-f", "github", cwd=str(tmp_path)).stdout.splitlines()
    assert gh[0] == "::error file=missing.yaml,title=unreadable::cannot read " + missing + ": No such file or directory"


# ---------------------------------------------------------------- GitHub annotations and SARIF

def test_github_acknowledged_findings_are_notices():
    lines = lbc("validate", example_path("flynet.yaml"), "-f", "github").stdout.splitlines()
    assert len(lines) == 2 and all(l.startswith("::notice ") for l in lines), lines
    assert all("title=LBC106::(acknowledged: the PEM files are installed" in l for l in lines)
    r = lbc("validate", example_path("flynet.yaml"), "-f", "github", "--no-acknowledged")
    assert r.returncode == 0 and r.stdout == ""


def sarif_of(cwd, *files, root=None) -> tuple[dict, str]:
    args = ["validate", *files, "-f", "sarif"] + (["--sarif-root", root] if root else [])
    r = lbc(*args, cwd=str(cwd))
    return json.loads(r.stdout), r.stdout


def test_sarif_is_valid_for_the_oasis_schema_and_github(tmp_path):
    bad_copy(tmp_path, "infra/a b#c.lbc.yaml")
    doc, _ = sarif_of(tmp_path, "infra/a b#c.lbc.yaml", example_path("flynet.yaml"))
    with open(SARIF_SCHEMA) as f:
        schema = json.load(f)
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    assert list(validator.iter_errors(doc)) == []
    run = doc["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    driver = run["tool"]["driver"]
    assert driver["name"] == "lbc" and driver["informationUri"].startswith("https://")
    for rule in driver["rules"]:   # GitHub requires fullDescription; helpUri is the rule's row in docs/rules.md
        assert rule["fullDescription"]["text"] and rule["shortDescription"]["text"]
        assert rule["helpUri"].endswith(f"docs/rules.md#{rule['id'].lower()}")
        with open(os.path.join(os.path.dirname(__file__), "..", "docs", "rules.md")) as f:
            assert f'<a id="{rule["id"].lower()}"></a>' in f.read()
    by_rule = {r["ruleId"]: r for r in run["results"]}
    loc = by_rule["LBC013"]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "infra/a%20b%23c.lbc.yaml", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == 21 and loc["region"]["startColumn"] == 14
    ack = by_rule["LBC106"]
    assert ack["suppressions"][0]["kind"] == "inSource"
    # outside the root: an absolute file URI
    assert ack["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("file:///")
    for r in run["results"]:       # GitHub's required result fields
        assert r["message"]["text"] and r["ruleId"] and r["partialFingerprints"]


def test_sarif_does_not_depend_on_where_the_checkout_lies(tmp_path):
    for checkout in ("one", "deep/two"):
        bad_copy(tmp_path / checkout, "infra/edge.yaml")
        shutil.copy(example_path("flynet.yaml"), tmp_path / checkout / "infra" / "flynet.yaml")
    _, one = sarif_of(tmp_path / "one", "infra/edge.yaml", "infra/flynet.yaml")
    _, two = sarif_of(tmp_path / "deep" / "two", "infra/edge.yaml", "infra/flynet.yaml")
    assert one == two and str(tmp_path) not in one
    # --sarif-root: the repository root when lbc runs from a subfolder
    _, sub = sarif_of(tmp_path / "one" / "infra", "edge.yaml", "flynet.yaml", root="..")
    assert sub == one


# ---------------------------------------------------------------- conventions

def test_help_version_and_completion():
    assert lbc("-h").returncode == 0 and "validate" in lbc("-h").stdout
    assert lbc("validate", "-h").returncode == 0
    from lbc import __version__
    assert lbc("--version").stdout == f"lbc {__version__}\n"
    assert "--install-completion" in lbc("-h").stdout
    # what the installed bash completion asks lbc: complete `lbc val`
    env = {**os.environ, "_LBC_COMPLETE": "complete_bash", "COMP_WORDS": "lbc val", "COMP_CWORD": "1"}
    r = subprocess.run([sys.executable, "-c", "from lbc.cli import main; main()"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout.split() == ["validate"], (r.stdout, r.stderr)


def test_target_names_fold_case_and_suggest():
    assert lbc("compile", example_path("hacloud-x509.yaml"), "-t", "Envoy", "-q").returncode == 0
    r = lbc("compile", example_path("flynet.yaml"), "-t", "haprxy")
    assert r.returncode == 2 and "did you mean 'haproxy'?" in r.stderr


def test_quiet_prints_nothing_for_clean_files():
    r = lbc("validate", "-q", *[example_path(e) for e in EXAMPLES])
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_repeated_findings_are_counted_after_the_first_few(tmp_path):
    topo = many_services(tmp_path, 30)
    err = lbc("validate", topo).stderr
    assert err.count("warning[LBC401]") == 21   # 20 listed, and the count line
    assert "... and 10 more warning[LBC401] (--max-per-rule 0 lists every one)" in err
    assert err.rstrip().endswith("0 error(s), 30 warning(s)")
    assert lbc("validate", topo, "--max-per-rule", "0").stderr.count("warning[LBC401]") == 30


def tty_stderr(*args: str, env: dict) -> str:
    """lbc with a terminal on stderr (as in an interactive shell); what the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", "from lbc.cli import main; main()", *args],
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:        # the other side closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(60)
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_colour_and_progress_only_on_a_terminal_and_never_with_no_color():
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    shown = tty_stderr("validate", example_path("flynet.yaml"), env=base)
    assert "\x1b[1m" in shown and "checking " in shown          # bold locations, a progress line
    plain = tty_stderr("validate", example_path("flynet.yaml"), env={**base, "NO_COLOR": "1"})
    assert "\x1b[1m" not in plain and "\x1b[3" not in plain
    piped = lbc("validate", example_path("flynet.yaml")).stderr
    assert "\x1b" not in piped and "checking" not in piped


def test_every_output_folder_has_a_readme_naming_the_files_it_needs(tmp_path):
    from lbc import targets
    from lbc.pipeline import check_file
    from lbc.targets.readme import deployed_files
    for name in targets.available():
        for e in EXAMPLES:
            result = check_file(example_path(e), target=targets.get(name))
            if result.failed:
                continue
            files = targets.get(name).render(result.model)
            assert "README.md" in files, (name, e)
            for path, _ in deployed_files(result.model):
                assert path in files["README.md"], (name, e, path)


def test_the_exit_without_teardown_loses_no_output(tmp_path):
    # lbc ends with os._exit after flushing (no heap teardown): every byte of a large config still
    # arrives through a pipe, diagnostics too, and the status is the command's.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
    import gen
    from lbc import targets
    from lbc.pipeline import Options, check_file, render
    topo = tmp_path / "big.yaml"
    topo.write_text(yaml.safe_dump(gen.topology(500, 500), sort_keys=False))
    r = lbc("compile", str(topo), "-t", "envoy")
    assert r.returncode == 0, r.stderr
    expected = render(check_file(str(topo), Options(), targets.get("envoy")).model, targets.get("envoy"))["envoy.json"]
    assert r.stdout == expected
    assert r.stderr.rstrip().splitlines()[-1].startswith("0 error(s), ")  # the summary, last
    topo.write_text(topo.read_text().replace("lbc: 1", "lbc: 1\ncolour: red", 1))
    r = lbc("validate", str(topo))
    assert r.returncode == 1 and "unknown key 'colour'" in r.stderr
