"""Generated reference pages stay in step with their sources (`make docs` regenerates them)."""
import os

import pytest

from lbc.docgen import PAGES

from helpers import ROOT


@pytest.mark.parametrize("page", sorted(PAGES))
def test_generated_page_is_current(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        assert f.read() == PAGES[page](), f"{page} is stale: run `make docs`"


def test_every_schema_property_has_a_description():
    from lbc.schema import topology_schema
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                if "description" not in sub and "$ref" not in sub:
                    missing.append(f"{where}.{key}")
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")
    walk(topology_schema(), "$")
    assert not missing
