"""Several files, environments and values (compiler/compose.py): every diagnostic points at the file,
line and column that holds the mistake, in every format; hostile inputs are refused; output is
deterministic; examples/estate compiles for every target in each environment."""
from __future__ import annotations

import json
import os
import shutil
import textwrap

import pytest

from lbc import targets
from lbc.compose import ENV_PREFIX, MAX_INCLUDE_DEPTH, Inputs
from lbc.pipeline import Options, check_every_environment, check_file, render

from helpers import ROOT, lbc
from validators import VALIDATORS

ESTATE = os.path.join(ROOT, "examples", "estate")

MAIN = """\
lbc: 1
name: split
include: [services.yaml]
vips:
  public: {address: 192.0.2.10}
listeners:
  - name: web
    vip: public
    port: 80
    routes:
      - {service: web}
"""

SERVICES = """\
lbc-fragment: 1
services:
  web:
    servers:
      - {name: w1, address: 10.0.0.11, port: 8080}
"""


def write(folder, files: dict[str, str]):
    for name, text in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(folder / next(iter(files)))


def check(path: str, **inputs) -> list:
    return check_file(path, Options(inputs=Inputs(**inputs))).diagnostics


def errors(diags) -> list[tuple[str, str, int, int]]:
    return [(d.id, os.path.basename(d.location.file), d.location.line, d.location.col) for d in diags if d.fails]


# ---------------------------------------------------------------- includes

def test_split_topology_is_one_topology(tmp_path):
    main = write(tmp_path, {"main.yaml": MAIN, "services.yaml": SERVICES})
    result = check_file(main, Options())
    assert not result.failed, result.diagnostics
    assert [s.name for s in result.model.services] == ["web"]
    # a value of the included file is located in it
    loc = result.doc.locate(("services", "web", "servers", 0, "port"))
    assert (os.path.basename(loc.file), loc.line, loc.col) == ("services.yaml", 5, 46)


BAD_PORT = SERVICES.replace("port: 8080", "port: 80800")  # services.yaml:5:46


@pytest.fixture
def split_error(tmp_path):
    write(tmp_path, {"main.yaml": MAIN, "services.yaml": BAD_PORT})
    return tmp_path


def test_error_in_included_file_text(split_error):
    r = lbc("validate", "main.yaml", cwd=split_error)
    assert r.returncode == 1
    assert "services.yaml:5:46: error[LBC105]" in r.stderr
    assert "5 |       - {name: w1, address: 10.0.0.11, port: 80800}" in r.stderr  # the included file's line


def test_error_in_included_file_json(split_error):
    r = lbc("validate", "main.yaml", "-f", "json", cwd=split_error)
    [d] = json.loads(r.stdout)["diagnostics"]
    assert (d["id"], d["file"], d["line"], d["col"]) == ("LBC105", "services.yaml", 5, 46)


def test_error_in_included_file_sarif(split_error):
    (split_error / "sub").mkdir()
    shutil.move(split_error / "services.yaml", split_error / "sub" / "services.yaml")
    (split_error / "main.yaml").write_text(MAIN.replace("[services.yaml]", "[sub/services.yaml]"))
    r = lbc("validate", "main.yaml", "-f", "sarif", cwd=split_error)
    [res] = json.loads(r.stdout)["runs"][0]["results"]
    where = res["locations"][0]["physicalLocation"]
    assert where["artifactLocation"] == {"uri": "sub/services.yaml", "uriBaseId": "%SRCROOT%"}
    assert (where["region"]["startLine"], where["region"]["startColumn"]) == (5, 46)


def test_error_in_included_file_github(split_error):
    r = lbc("validate", "main.yaml", "-f", "github", cwd=split_error)
    assert r.stdout.startswith("::error file=services.yaml,line=5,col=46,title=LBC105::")


def test_yaml_error_in_included_file_is_quoted_from_that_file(tmp_path):
    write(tmp_path, {"main.yaml": MAIN, "services.yaml": SERVICES.replace("port: 8080}", "port: 8080}}")})
    r = lbc("validate", "main.yaml", cwd=tmp_path)
    assert r.returncode == 1 and "services.yaml:" in r.stderr and "error[LBC002]" in r.stderr
    assert "5 |       - {name: w1, address: 10.0.0.11, port: 8080}}" in r.stderr


def test_missing_include(tmp_path):
    main = write(tmp_path, {"main.yaml": MAIN})
    diags = check(main)
    assert errors(diags) == [("LBC005", "main.yaml", 3, 11)]
    assert "does not exist" in diags[0].message


def test_include_cycle(tmp_path):
    main = write(tmp_path, {"main.yaml": MAIN.replace("[services.yaml]", "[a.yaml]"),
                            "a.yaml": "lbc-fragment: 1\ninclude: [b.yaml]\n",
                            "b.yaml": "lbc-fragment: 1\ninclude: [a.yaml]\n"})
    [d] = check(main)
    assert (d.id, os.path.basename(d.location.file), d.location.line) == ("LBC005", "b.yaml", 2)
    assert "cycle: a.yaml -> b.yaml -> a.yaml" in d.message


def test_main_file_including_itself(tmp_path):
    main = write(tmp_path, {"main.yaml": MAIN.replace("[services.yaml]", "[./main.yaml]")})
    [d] = check(main)
    assert d.id == "LBC005" and "cycle" in d.message


def test_include_depth_limit(tmp_path):
    files = {"main.yaml": MAIN.replace("[services.yaml]", "[f0.yaml]")}
    for i in range(MAX_INCLUDE_DEPTH + 2):
        files[f"f{i}.yaml"] = f"lbc-fragment: 1\ninclude: [f{i + 1}.yaml]\n"
    files[f"f{MAX_INCLUDE_DEPTH + 2}.yaml"] = SERVICES
    [d] = check(write(tmp_path, files))
    assert d.id == "LBC005" and f"deeper than {MAX_INCLUDE_DEPTH}" in d.message
    # one level less is fine
    files = {"main.yaml": MAIN.replace("[services.yaml]", "[f0.yaml]")}
    for i in range(MAX_INCLUDE_DEPTH - 1):
        files[f"f{i}.yaml"] = f"lbc-fragment: 1\ninclude: [f{i + 1}.yaml]\n"
    files[f"f{MAX_INCLUDE_DEPTH - 1}.yaml"] = SERVICES
    folder = tmp_path / "ok"
    folder.mkdir()
    assert errors(check(write(folder, files))) == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.yaml", "link.yaml", "https://example.com/x.yaml",
                                  "sub\\\\x.yaml"])
def test_include_stays_inside_the_folder(tmp_path, path):
    (tmp_path / "outside.yaml").write_text(SERVICES)
    top = tmp_path / "top"
    top.mkdir()
    os.symlink(tmp_path / "outside.yaml", top / "link.yaml")
    main = write(top, {"main.yaml": MAIN.replace("[services.yaml]", f'["{path}"]')})
    [d] = check(main)
    assert d.id == "LBC005" and d.location.line == 3, d


def test_file_included_twice(tmp_path):
    main = write(tmp_path, {"main.yaml": MAIN.replace("[services.yaml]", "[services.yaml, ./services.yaml]"),
                            "services.yaml": SERVICES})
    [d] = check(main)
    assert (d.id, d.location.line) == ("LBC005", 3) and "already included" in d.message


def test_included_file_must_be_a_fragment(tmp_path):
    main = write(tmp_path, {"main.yaml": MAIN, "services.yaml": SERVICES.replace("lbc-fragment: 1", "lbc: 1")})
    [d] = check(main)
    assert d.id == "LBC005" and "fragment" in d.message and os.path.basename(d.location.file) == "services.yaml"


def test_same_name_in_two_files(tmp_path):
    main = write(tmp_path, {"main.yaml": MAIN.replace("[services.yaml]", "[services.yaml, more.yaml]"),
                            "services.yaml": SERVICES, "more.yaml": SERVICES})
    [d] = check(main)
    assert (d.id, os.path.basename(d.location.file), d.location.line) == ("LBC005", "more.yaml", 3)
    assert os.path.basename(d.related[0].location.file) == "services.yaml"


def test_byte_limit_covers_all_files(tmp_path):
    pad = "# " + "x" * 600 + "\n"
    main = write(tmp_path, {"main.yaml": MAIN + pad, "services.yaml": SERVICES + pad})
    size = os.path.getsize(main)
    total = size + os.path.getsize(tmp_path / "services.yaml")
    assert not check_file(main, Options(max_bytes=total)).failed  # each file, and both together, fit
    diags = check_file(main, Options(max_bytes=total - 100)).diagnostics  # each fits, together they do not
    assert [d.id for d in diags] == ["LBC001"] and "together" in diags[0].message


def test_alias_limit_covers_all_files(tmp_path):
    aliases = "description: &d x\nx: [" + ", ".join(["*d"] * 600) + "]\n"
    files = {"main.yaml": MAIN.replace("[services.yaml]", "[a.yaml, b.yaml]"),
             "a.yaml": "lbc-fragment: 1\n" + aliases.replace("description", "y1"),
             "b.yaml": "lbc-fragment: 1\n" + aliases.replace("description", "y2")}
    diags = check(write(tmp_path, files))
    assert [(d.id, os.path.basename(d.location.file)) for d in diags] == [("LBC003", "b.yaml")]


def test_fragment_alone_is_noted_not_failed(tmp_path):
    write(tmp_path, {"main.yaml": MAIN, "services.yaml": SERVICES})
    r = lbc("validate", "main.yaml", "services.yaml", "-f", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    assert [(d["id"], d["severity"], d["file"]) for d in json.loads(r.stdout)["diagnostics"]] == \
        [("LBC007", "info", "services.yaml")]


# ---------------------------------------------------------------- environments

ENV_MAIN = MAIN.replace("include: [services.yaml]\n", "include: [services.yaml]\nenvironments:\n"
                        "  lab: env/lab.yaml\n  prod: {overlay: env/prod.yaml, values: [values/prod.yaml]}\n")
TWO = SERVICES + "      - {name: w2, address: 10.0.0.12, port: 8080}\n    health: {tcp: true}\n"


def env_files(lab: str, prod: str = "lbc-fragment: 1\n") -> dict[str, str]:
    return {"main.yaml": ENV_MAIN, "services.yaml": TWO, "env/lab.yaml": lab, "env/prod.yaml": prod,
            "values/prod.yaml": "prod_vip: 198.51.100.10\n"}


def test_overlay_changes_adds_and_removes_by_name(tmp_path):
    lab = """\
    lbc-fragment: 1
    vips:
      public: {address: 192.0.2.99}
    services:
      web:
        health: null
        servers:
          - {name: w1, port: 9090}
          - {name: w2, remove: true}
          - {name: w3, address: 10.0.0.13, port: 8080}
    """
    main = write(tmp_path, env_files(lab))
    result = check_file(main, Options(inputs=Inputs(env="lab")))
    assert not result.failed, result.diagnostics
    web = result.model.services[0]
    assert [(s.name, s.address, dict(s.ports)["default"]) for s in web.servers] == [("w1", "10.0.0.11", 9090), ("w3", "10.0.0.13", 8080)]
    assert result.model.vips[0].address == "192.0.2.99"
    loc = result.doc.locate(("services", "web", "servers", 1, "address"))  # w3: index 1 after the removal
    assert (os.path.relpath(loc.file, tmp_path), loc.line) == ("env/lab.yaml", 10)
    base = check_file(main, Options())
    assert [s.name for s in base.model.services[0].servers] == ["w1", "w2"]


def test_typo_in_overlay_is_reported_at_the_overlay_line(tmp_path):
    main = write(tmp_path, env_files("lbc-fragment: 1\nservices:\n  web:\n    balence: least-connections\n"))
    diags = check(main, env="lab")
    assert errors(diags) == [("LBC010", "lab.yaml", 4, 5)]
    assert diags[0].hint == "did you mean 'balance'?"


def test_unknown_environment(tmp_path):
    main = write(tmp_path, env_files("lbc-fragment: 1\n"))
    [d] = check(main, env="prd")
    assert d.id == "LBC005" and "no such environment" in d.message and "prod" in d.hint


def test_removing_what_is_not_there(tmp_path):
    main = write(tmp_path, env_files("lbc-fragment: 1\nservices:\n  web:\n    servers:\n      - {name: w9, remove: true}\n"))
    assert errors(check(main, env="lab")) == [("LBC005", "lab.yaml", 5, 9)]


def test_environment_values_and_every_env(tmp_path):
    files = env_files("lbc-fragment: 1\n", "lbc-fragment: 1\nvips:\n  public: {address: '${prod_vip}'}\n")
    main = write(tmp_path, files)
    result = check_file(main, Options(inputs=Inputs(env="prod")))
    assert result.model.vips[0].address == "198.51.100.10"
    # lab has no value for a placeholder only prod uses; a finding of some environments names them
    files["env/lab.yaml"] = "lbc-fragment: 1\nvips:\n  public: {address: '${lab_vip}'}\n"
    write(tmp_path, files)
    merged = check_every_environment(main, Options())
    [d] = merged.diagnostics
    assert d.id == "LBC006" and d.message.endswith("(environment lab)") and d.location.line == 3


def test_explain_origin_names_the_file_that_set_each_value(tmp_path):
    files = env_files("lbc-fragment: 1\n", "lbc-fragment: 1\nvips:\n  public: {address: '${prod_vip}'}\n"
                      "services:\n  web:\n    balance: least-connections\n")
    write(tmp_path, files)
    r = lbc("compile", "main.yaml", "--env", "prod", "-t", "haproxy", "--explain-origin", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert 'services.web.balance = "least-connections"  (env/prod.yaml:6:14)' in lines
    assert 'services.web.servers.0.port = 8080  (services.yaml:5:46)' in lines
    assert 'vips.public.address = "${prod_vip}"  (env/prod.yaml:3:21; ${prod_vip} from values/prod.yaml:1:11)' in lines
    assert not any("198.51.100.10" in line for line in lines if line.startswith("vips."))


def test_plan_takes_an_environment(tmp_path):
    write(tmp_path, env_files("lbc-fragment: 1\nservices:\n  web:\n    servers:\n      - {name: w2, remove: true}\n"))
    lab = lbc("plan", "main.yaml", "--env", "lab", "-f", "json", cwd=tmp_path)
    base = lbc("plan", "main.yaml", "-f", "json", cwd=tmp_path)
    assert lab.returncode == 0 and base.returncode == 0, lab.stderr + base.stderr
    assert "w2" in base.stdout and "w2" not in lab.stdout


def test_diff_of_two_environments(tmp_path):
    write(tmp_path, env_files("lbc-fragment: 1\nservices:\n  web:\n    servers:\n      - {name: w2, remove: true}\n"))
    r = lbc("diff", "main.yaml", "--env", "lab", "--env", "prod", cwd=tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "+ services.web.servers.w2" in r.stdout and "main.yaml --env lab to main.yaml --env prod" in r.stdout


# ---------------------------------------------------------------- values and placeholders

VALUED = MAIN.replace("include: [services.yaml]\n", "").replace("port: 80\n", "port: ${web_port}\n") \
    .replace("listeners:", "services:\n  web:\n    servers:\n      - {name: w1, address: '${net}.11', port: 8080}\n"
             "listeners:")


def test_placeholders_take_values_with_their_type(tmp_path):
    main = write(tmp_path, {"main.yaml": VALUED, "v.yaml": "web_port: 8081\nnet: 10.1.0\n"})
    result = check_file(main, Options(inputs=Inputs(values=(str(tmp_path / "v.yaml"),))))
    assert not result.failed, result.diagnostics
    assert result.model.listeners[0].port == 8081 and result.model.services[0].servers[0].address == "10.1.0.11"


def test_unresolved_placeholder_points_at_it(tmp_path):
    main = write(tmp_path, {"main.yaml": VALUED})
    diags = check(main)
    assert errors(diags) == [("LBC006", "main.yaml", 8, 29), ("LBC006", "main.yaml", 12, 11)]


def test_dollar_escape_and_broken_placeholder(tmp_path):
    text = MAIN.replace("name: split\n", "name: split\ndescription: costs $$5 and $${x}\n")
    main = write(tmp_path, {"main.yaml": text, "services.yaml": SERVICES})
    result = check_file(main, Options())
    assert not result.failed and result.doc.data["description"] == "costs $5 and ${x}"
    main = write(tmp_path, {"main.yaml": text.replace("$${x}", "${x y}"), "services.yaml": SERVICES})
    assert errors(check(main)) == [("LBC006", "main.yaml", 3, 14)]


def test_environment_variables_only_with_the_flag_and_prefix(tmp_path):
    main = write(tmp_path, {"main.yaml": VALUED.replace("${net}", "${HOME}")})
    environ = {ENV_PREFIX + "web_port": "8081", "HOME": "10.1.0", ENV_PREFIX + "HOME": "10.2.0"}
    assert [d.id for d in check(main, environ=environ) if d.fails] == ["LBC006", "LBC006"]
    result = check_file(main, Options(inputs=Inputs(values_env=True, environ=environ)))
    assert not result.failed, result.diagnostics
    assert result.model.services[0].servers[0].address == "10.2.0.11"  # LBC_VAR_HOME, never HOME
    assert result.model.listeners[0].port == 8081


@pytest.mark.parametrize("value", ["10.1.0\n", "10.1.0\x00", "10\u20281", "a\x1b[31m"])
def test_hostile_environment_values_are_refused_at_the_placeholder(tmp_path, value):
    main = write(tmp_path, {"main.yaml": VALUED})
    environ = {ENV_PREFIX + "web_port": "80", ENV_PREFIX + "net": value}
    diags = check(main, values_env=True, environ=environ)
    assert errors(diags) == [("LBC013", "main.yaml", 8, 29)]
    assert value not in diags[0].message


def test_hostile_values_file_is_refused_by_the_loader(tmp_path):
    main = write(tmp_path, {"main.yaml": VALUED, "v.yaml": 'web_port: 80\nnet: "10.1.0\\nlisten 0.0.0.0"\n'})
    assert errors(check(main, values=(str(tmp_path / "v.yaml"),))) == [("LBC013", "v.yaml", 2, 6)]


@pytest.mark.parametrize("values", ["- a\n", "net: [1, 2]\n", "bad-name: 1\n"])
def test_malformed_values_file(tmp_path, values):
    main = write(tmp_path, {"main.yaml": VALUED, "v.yaml": values})
    assert [d.id for d in check(main, values=(str(tmp_path / "v.yaml"),))] == ["LBC006"]


def test_value_that_breaks_a_pattern_is_reported_at_the_placeholder(tmp_path):
    text = VALUED.replace("name: w1", "name: '${server}'")
    main = write(tmp_path, {"main.yaml": text, "v.yaml": "web_port: 80\nnet: 10.1.0\nserver: 'w1 evil'\n"})
    diags = check(main, values=(str(tmp_path / "v.yaml"),))
    assert errors(diags) == [("LBC013", "main.yaml", 8, 16)]


SECRET = "/srv/secret-store/tls/web-9f2c.key"


def test_secret_values_never_appear_in_diagnostics(tmp_path):
    text = MAIN.replace("vips:", "certificates:\n  c:\n    cert: c.pem\n    key: '${tls_key}'\n"
                        "    names: [web.example.com]\nvips:")
    text = text.replace("port: 80\n", "port: 443\n    tls: {mode: terminate, certificates: [c]}\n")
    write(tmp_path, {"main.yaml": text, "services.yaml": SERVICES, "v.yaml": f"tls_key: {SECRET}\n"})
    for fmt in ("text", "json", "sarif", "github"):
        r = lbc("validate", "main.yaml", "--values", "v.yaml", "-f", fmt, cwd=tmp_path)
        assert "LBC106" in r.stdout + r.stderr, r.stdout + r.stderr  # the key file is missing: reported...
        assert SECRET not in r.stdout + r.stderr and "web-9f2c" not in r.stdout + r.stderr  # ...without its path
    r = lbc("validate", "main.yaml", "--values", "v.yaml", "-f", "json", cwd=tmp_path)
    assert any("${tls_key}" in d["message"] for d in json.loads(r.stdout)["diagnostics"])


# ---------------------------------------------------------------- the example, deterministic

ENVS = ("lab", "prod")
CASES = [(t, e) for t in targets.available() for e in ENVS]


def compile_estate(folder: str, target: str, env: str) -> dict[str, str]:
    tgt = targets.get(target)
    result = check_file(os.path.join(folder, "estate.yaml"), Options(inputs=Inputs(env=env)), tgt)
    assert not result.failed, [(d.id, str(d.location), d.message) for d in result.diagnostics if d.fails]
    return render(result.model, tgt)


@pytest.mark.parametrize("target,env", CASES)
def test_estate_compiles_deterministically(tmp_path, target, env):
    here = compile_estate(ESTATE, target, env)
    copy = tmp_path / "elsewhere" / "estate"
    shutil.copytree(ESTATE, copy)
    assert compile_estate(str(copy), target, env) == here  # same files and values: same bytes, wherever


@pytest.mark.parametrize("target,env", [(t, e) for t in sorted(VALIDATORS) for e in ENVS])
def test_estate_passes_the_real_validator(tmp_path, target, env):
    ok, output = VALIDATORS[target](compile_estate(ESTATE, target, env), tmp_path)
    assert ok, output[-2000:]


def test_estate_environments_differ_as_written():
    lab, prod = (check_file(os.path.join(ESTATE, "estate.yaml"), Options(inputs=Inputs(env=e))).model for e in ENVS)
    assert [s.name for s in lab.services[0].servers] == ["shop1"]
    assert [s.name for s in prod.services[0].servers] == ["shop1", "shop2", "shop3"]
    assert (lab.vips[0].address, prod.vips[0].address) == ("192.0.2.80", "198.51.100.10")


def test_estate_validates_in_every_environment_and_fragments_are_noted():
    files = sorted(os.path.join(ESTATE, f) for f in os.listdir(ESTATE) if f.endswith(".yaml"))
    r = lbc("validate", "--every-env", "-q", *files)
    assert r.returncode == 0, r.stderr


def test_an_included_fifo_is_refused_without_waiting(tmp_path):
    # The refusal quotes the failed file's lines: reading them must not wait for a FIFO's writer either.
    main = write(tmp_path, {"main.yaml": MAIN})
    os.mkfifo(tmp_path / "services.yaml")
    r = lbc("validate", main)   # a wait would end in TimeoutExpired
    assert r.returncode == 1 and "not a regular file" in r.stderr
