"""Property test over every registered validator: a random topology (tests/strategies.py) is
either refused with located diagnostics, or compiles to files the target's real tool accepts."""
from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from lbc import targets

from helpers import check_text
from strategies import topologies
from validators import VALIDATORS

NAMES = sorted(n for n in VALIDATORS if n in targets.available())
EXAMPLES = {"envoy": 15}          # envoy --mode validate takes seconds per run; the others milliseconds


@pytest.mark.parametrize("target_name", NAMES)
def test_random_topology_is_refused_or_accepted_by_the_real_tool(target_name, tmp_path_factory):
    tgt = targets.get(target_name)

    @settings(max_examples=EXAMPLES.get(target_name, 50), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(doc=topologies())
    def check(doc):
        tmp = tmp_path_factory.mktemp(f"prop-{target_name}")
        result = check_text(tmp, yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), target=tgt)
        if result.failed or result.model is None:
            failing = [d for d in result.diagnostics if d.fails]
            assert failing and all(re.match(r"^LBC[0-9]{3}$", d.id) for d in failing)
            return
        files = tgt.render(result.model)
        assert files == tgt.render(result.model), "output is not deterministic"
        ok, output = VALIDATORS[target_name](files, tmp)
        assert ok, (f"{target_name} refused lbc's output:\n{output}\n"
                    + "\n".join(f"--- {k}\n{v}" for k, v in files.items()))
    check()
