"""Every example, compiled by every target that has a real validator, passes that validator
(haproxy -c, nginx -t, envoy --mode validate, the F5 checks). A target may refuse an example only
with LBC801 (a feature it declares it cannot express)."""
from __future__ import annotations

import pytest

from lbc import targets
from lbc.pipeline import Options, check_file, render

from helpers import EXAMPLES, example_path
from validators import VALIDATORS, node_folders

CASES = [(t, e) for t in sorted(VALIDATORS) if t in targets.available() for e in EXAMPLES]


@pytest.mark.parametrize("target_name,example", CASES, ids=[f"{t}-{e}" for t, e in CASES])
def test_example_passes_the_real_validator(target_name, example, tmp_path):
    tgt = targets.get(target_name)
    result = check_file(example_path(example), Options(), tgt)
    if result.failed:
        assert {d.id for d in result.diagnostics if d.fails} == {"LBC801"}, [str(d) for d in result.diagnostics]
        return
    for node, files in node_folders(render(result.model, tgt)).items():   # one folder per balancer node
        folder = tmp_path / (node or "out")
        folder.mkdir()
        ok, output = VALIDATORS[target_name](files, folder)
        assert ok, output
