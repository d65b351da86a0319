"""F5 AS3 target: every example's declaration passes F5's published AS3 schema and lbc's pointer
checks, both catch what they should, and the declaration configures what bigip.conf configures."""
from __future__ import annotations

import copy
import json
import os

import pytest

from lbc import targets
from lbc.pipeline import Options, check_file, render
from lbc.targets.f5_as3 import check_references, schema_problems
from lbc.targets.f5_tmsh import installed_files, parse

from helpers import EXAMPLES, ROOT, check_text, example_path

SCHEMA_PATH = os.path.normpath(os.path.join(ROOT, "..", "shared", "schemas", "as3-schema.json"))
AS3 = targets.get("f5-as3")
TMSH = targets.get("f5")


@pytest.fixture(scope="module")
def schema():
    if not os.path.exists(SCHEMA_PATH):
        pytest.skip(f"F5's AS3 schema is not at {SCHEMA_PATH}: schema validation not run "
                    "(copy schema/latest/as3-schema.json of F5Networks/f5-appsvcs-extension there)")
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def compiled(path: str, target=AS3) -> dict[str, str]:
    result = check_file(path, Options(), target)
    assert not result.failed, [str(d) for d in result.diagnostics]
    return render(result.model, target)


def decl_and_installed(path: str):
    files = compiled(path)
    return json.loads(files["as3.json"]), installed_files(files["README.md"])


def app_of(decl: dict) -> dict:
    adc = decl["declaration"]
    tenant = next(v for v in adc.values() if isinstance(v, dict) and v.get("class") == "Tenant")
    return tenant["lbc"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_passes_the_as3_schema(schema, example):
    decl, _ = decl_and_installed(example_path(example))
    assert schema_problems(decl, schema) == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_resolves_its_pointers(example):
    decl, installed = decl_and_installed(example_path(example))
    assert check_references(decl, installed) == []


FLYNET, FLYNET_FILES = decl_and_installed(example_path("flynet.yaml"))


@pytest.mark.parametrize("edit,finding", [
    (lambda a: a["fvterm.default.pool"].update(minimumMembersActiv=1), "minimumMembersActiv"),
    (lambda a: a["fvterm.cookie"].update(ttl=-5), "less than the minimum"),
    (lambda a: a["fvterm.default.pool"]["members"][0].update(priorityGroup="ten"), "is not of type 'integer'"),
    (lambda a: a["fvterm-https"].update(virtualAddresses=["300.1.2.3"]), "is not a 'f5ip'"),
    (lambda a: a["fvterm.default.pool"].update(loadBalancingMode="random"), "is not one of"),
])
def test_the_schema_catches(schema, edit, finding):
    decl = copy.deepcopy(FLYNET)
    edit(app_of(decl))
    problems = schema_problems(decl, schema)
    assert any(finding in p for p in problems), problems


@pytest.mark.parametrize("edit,finding", [
    (lambda a: a["fvterm-https"].update(pool="no_such_pool"), "'no_such_pool' names no object"),
    (lambda a: a["fvterm-https"].update(pool="fvterm.cookie"), "is a Persist, expected Pool"),
    (lambda a: a["fvterm.default.pool"].update(monitors=[{"use": "fvterm.monitr"}]), "'fvterm.monitr' names no object"),
    (lambda a: a["fvterm-https.irule"].update(iRule=a["fvterm-https.irule"]["iRule"].replace(
        "fvterm.default.pool\n", "fvterm.defualt.pool\n")), "names no pool"),
    (lambda a: a["fvterm.certificate"].update(certificate={"bigip": "/Common/not-installed.crt"}),
     "neither built in nor installed"),
])
def test_the_reference_check_catches(edit, finding):
    decl = copy.deepcopy(FLYNET)
    edit(app_of(decl))
    problems = check_references(decl, FLYNET_FILES)
    assert any(finding in p for p in problems), problems


def test_the_schema_alone_misses_dangling_pointers(schema):
    """Why lbc has its own reference check: F5's schema accepts a pool that does not exist."""
    decl = copy.deepcopy(FLYNET)
    app_of(decl)["fvterm-https"]["pool"] = "no_such_pool"
    assert schema_problems(decl, schema) == []
    assert check_references(decl, FLYNET_FILES) != []


def test_pinned_member_reference_is_checked():
    decl, installed = decl_and_installed(example_path("lightstreamer-control-link.yaml"))
    rule = app_of(decl)["push-http.irule"]
    rule["iRule"] = rule["iRule"].replace("member 10.0.6.12 8080", "member 10.0.6.13 8080")
    assert any("no such member" in p for p in check_references(decl, installed))


# ---------------------------------------------------------------- the same configuration as bigip.conf

def _tmsh_pools(path):
    objs, _ = parse(compiled(path, TMSH)["bigip.conf"])
    out = {}
    for o in objs:
        if o.kind == "ltm pool":
            body = dict(o.body)
            members = {}
            for name, mb in body["members"]:
                mb = dict(mb)
                state = "offline" if mb.get("state") == "user-down" else \
                    "disable" if mb.get("session") == "user-disabled" else "enable"
                members[name.rsplit("/", 1)[1]] = (mb.get("priority-group"), mb.get("connection-limit"), state)
            out[o.name.split(".", 1)[1]] = (body["load-balancing-mode"], int(body.get("min-active-members", 0)),
                                            members)
    return out


def _as3_pools(path):
    app = app_of(json.loads(compiled(path)["as3.json"]))
    out = {}
    for name, obj in app.items():
        if isinstance(obj, dict) and obj.get("class") == "Pool":
            members = {}
            for m in obj["members"]:
                addr = (m.get("serverAddresses") or [m.get("hostname")])[0]
                key = f"{addr}{'.' if addr.count(':') > 1 else ':'}{m['servicePort']}"
                pg, cl = m.get("priorityGroup"), m.get("connectionLimit")
                members[key] = (None if pg is None else str(pg), None if cl is None else str(cl), m["adminState"])
            out[name] = (obj["loadBalancingMode"], obj["minimumMembersActive"], members)
    return out


@pytest.mark.parametrize("example", EXAMPLES)
def test_as3_and_tmsh_configure_the_same_pools(example):
    assert _as3_pools(example_path(example)) == _tmsh_pools(example_path(example))


@pytest.mark.parametrize("example", EXAMPLES)
def test_as3_and_tmsh_carry_the_same_irules(example):
    tmsh_files = compiled(example_path(example), TMSH)
    objs, _ = parse(tmsh_files["bigip.conf"])
    topo = objs[0].name.split("/")[2].split(".")[0] if objs else ""
    tmsh_rules = {o.name.split(".", 1)[1]: o.raw.replace(f"/Common/{topo}.", "@") for o in objs if o.kind == "ltm rule"}
    app = app_of(json.loads(compiled(example_path(example))["as3.json"]))
    as3_rules = {n: o["iRule"].replace(f"/{topo}/lbc/", "@") for n, o in app.items()
                 if isinstance(o, dict) and o.get("class") == "iRule"}
    assert as3_rules == tmsh_rules


def test_weights_above_100_are_scaled_for_as3(tmp_path):
    result = check_text(tmp_path, """
        lbc: 1
        vips: {v: {address: 127.0.0.10}}
        services:
          app:
            balance: weighted-random
            servers:
              - {name: a, address: 127.0.0.21, port: 8080, weight: 200}
              - {name: b, address: 127.0.0.22, port: 8080, weight: 50}
        listeners:
          - {name: web, vip: v, port: 80, routes: [{service: app}]}
        """, target=AS3)
    app = app_of(json.loads(render(result.model, AS3)["as3.json"]))
    assert [m["ratio"] for m in app["app.default.pool"]["members"]] == [100, 25]
    assert app["web"]["persistenceMethods"] == []   # AS3's default would add cookie persistence
