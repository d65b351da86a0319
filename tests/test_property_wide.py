"""Property test over schema-wide random topologies (tests/strategies.py: wide_topologies) with
every target's real validator (haproxy -c, nginx -t, envoy --mode validate, the F5 checks with
tclsh and F5's AS3 schema): each topology is refused with located diagnostics, or every target
that accepts it writes files its validator accepts. Never an internal error.

LBC_PROPERTY_EXAMPLES (default 1000) sets the number of topologies per target. The compile runs
under hypothesis; the validators run afterwards, two at a time (they are separate processes).
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from lbc import targets
from lbc.pipeline import render

from helpers import check_text
from strategies import wide_topologies
from validators import VALIDATORS

EXAMPLES = int(os.environ.get("LBC_PROPERTY_EXAMPLES", "1000"))
NAMES = sorted(n for n in VALIDATORS if n in targets.available())


@pytest.mark.parametrize("target_name", NAMES)
def test_wide_random_topologies_are_refused_or_accepted_by_the_real_tool(target_name, tmp_path_factory):
    tgt = targets.get(target_name)
    outputs: list[tuple[str, dict]] = []
    counts = {"examples": 0, "refused": 0, "accepted": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(doc=wide_topologies())
    def compile_one(doc):
        tmp = tmp_path_factory.mktemp(f"wide-{target_name}")
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
        result = check_text(tmp, text, target=tgt)
        counts["examples"] += 1
        if result.failed or result.model is None:
            failing = [d for d in result.diagnostics if d.fails]
            assert failing and all(re.match(r"^LBC[0-9]{3}$", d.id) and d.location.line >= 1 for d in failing), \
                failing
            counts["refused"] += 1
            return
        files = render(result.model, tgt)  # an exception here is an internal error: the test fails
        counts["accepted"] += 1
        outputs.append((text, files))
    compile_one()

    def validate(item):
        text, files = item
        ok, output = VALIDATORS[target_name](files, tmp_path_factory.mktemp(f"wide-v-{target_name}"))
        return None if ok else f"{target_name} refused lbc's output:\n{output[-1500:]}\n--- topology\n{text}"
    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for p in pool.map(validate, outputs) if p]
    print(f"\n{target_name}: {counts} validator-rejected={len(problems)}")
    assert not problems, f"{len(problems)} of {len(outputs)} rejected; first:\n{problems[0]}"
    # about a third is accepted; a short run (LBC_PROPERTY_EXAMPLES=50) varies too much for a quarter
    floor = counts["examples"] // 4 if counts["examples"] >= 400 else counts["examples"] // 10
    assert counts["accepted"] >= floor, f"too few accepted topologies to mean much: {counts}"
