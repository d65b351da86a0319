"""Every rule's explain page is runnable: its failing example raises exactly that rule, its fixed
example is clean. So the documentation cannot drift from the checks."""
from __future__ import annotations

import re

import pytest

from lbc.diagnostics import Severity
from lbc.rules.common import TITLES
from lbc.pipeline import Options, check_file
from lbc.rules import REGISTRY, all_rules

from rules.pki import write_standard_set

from helpers import lbc

# The IDs listed in the project's RULES.md (the floor of what lbc must check).
RULES_MD = """
LBC101 LBC102 LBC103 LBC104 LBC105 LBC106
LBC201 LBC202 LBC203 LBC204 LBC205 LBC206 LBC207 LBC208
LBC301 LBC302 LBC303 LBC304 LBC305 LBC306 LBC307
LBC401 LBC402 LBC403 LBC404 LBC405 LBC406 LBC407 LBC408
LBC501 LBC502 LBC503 LBC504 LBC505 LBC506
LBC601 LBC602 LBC603 LBC604 LBC605
""".split()

# LBC8xx depend on a target's capability table: their examples live with the targets' tests.
PAGED = [r.id for r in all_rules() if not r.id.startswith("LBC8")]


def run(folder, text: str, encoding: str = "utf-8"):
    p = folder / "topology.yaml"
    p.write_bytes(text.encode(encoding))
    return check_file(str(p), Options())


def unacknowledged(result):
    return [d for d in result.diagnostics if not d.acknowledged]


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pages")
    write_standard_set(d)
    return d


@pytest.mark.parametrize("rid", PAGED)
def test_failing_example_raises_exactly_its_rule(pki_dir, rid):
    r = REGISTRY[rid]
    result = run(pki_dir, r.bad, "latin-1" if rid == "LBC001" else "utf-8")
    found = unacknowledged(result)
    assert {d.id for d in found} == {rid}, [(d.id, d.message) for d in found]
    assert {d.severity for d in found} <= {r.severity, Severity.ERROR if rid == "LBC106" else r.severity}


@pytest.mark.parametrize("rid", PAGED)
def test_fixed_example_is_clean(pki_dir, rid):
    found = unacknowledged(run(pki_dir, REGISTRY[rid].good))
    assert found == [], [(d.id, d.message) for d in found]


NON_GUIDE = ("lbc", "HAProxy 2.6 Configuration Manual", "Envoy 1.40 documentation",
             "nginx documentation", "RFC ", "Mozilla ")


@pytest.mark.parametrize("rid", PAGED)
def test_page_is_complete(rid):
    r = REGISTRY[rid]
    assert r.summary and r.hint and r.why and r.bad and r.good and r.source
    assert r.bad != r.good
    if "LBC200" <= rid < "LBC800":  # rules from the deployment guides cite them, by title (users lack the files)
        # ...unless the fact is a generic proxy one (the proxy's manual by name), the language's own (the edge
        # features of issue 15, which no guide covers) or rests on an RFC or Mozilla's TLS guidelines
        assert any(title in r.source for title in set(TITLES.values())) or r.source.startswith(NON_GUIDE), r.source
        assert not re.search(r"seeds/00[0-4]_", r.source), "a seed file name alone is no citation for users"


def test_every_rule_of_rules_md_exists():
    assert sorted(set(RULES_MD) - set(REGISTRY)) == []


def test_explain_lists_every_rule():
    out = lbc("explain")
    assert out.returncode == 0
    listed = re.findall(r"^(LBC[0-9]{3}) ", out.stdout, re.M)
    assert listed == sorted(REGISTRY)
    assert set(RULES_MD) <= set(listed)


@pytest.mark.parametrize("rid", ["LBC201", "LBC502", "LBC604"])
def test_explain_page_prints_why_citation_and_both_examples(rid):
    out = lbc("explain", rid.lower())
    assert out.returncode == 0
    r = REGISTRY[rid]
    assert r.source in out.stdout and any(title in out.stdout for title in TITLES.values())
    assert r.bad.strip() in out.stdout and r.good.strip() in out.stdout
    assert r.why in out.stdout


def test_explain_unknown_rule_is_a_usage_error():
    assert lbc("explain", "LBC999").returncode == 2
