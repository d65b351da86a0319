"""lbc's access-log format is one list (lbc.accesslog.FIELDS): every target writes those fields in that
order, and docs/logs.md documents exactly that list."""
from __future__ import annotations

import json
import os
import re

import pytest

from lbc import accesslog
from lbc.pipeline import Options, check_file, render
from lbc import targets

HERE = os.path.dirname(os.path.abspath(__file__))
CASE = os.path.join(HERE, "golden", "cases", "logs-metrics.yaml")


def test_docs_list_the_fields_in_order():
    with open(os.path.join(HERE, "..", "docs", "logs.md"), encoding="utf-8") as f:
        rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", f.read(), re.M)
    assert rows[:len(accesslog.FIELDS)] == list(accesslog.FIELDS)


def _formats(target: str) -> list[str]:
    tgt = targets.get(target)
    result = check_file(CASE, Options(), tgt)
    assert not result.failed, [str(d) for d in result.diagnostics]
    files = render(result.model, tgt)
    if target == "haproxy":
        return re.findall(r"log-format '(.*)'", files["haproxy.cfg"])
    if target == "nginx":
        return re.findall(r"log_format \S+ escape=\w+ '(.*)';", files["nginx.conf"])
    doc = json.loads(files["envoy.json"])
    out = []
    for l in doc["static_resources"]["listeners"]:
        for f in l["filter_chains"][0]["filters"]:
            for log in f["typed_config"].get("access_log", []):
                fmt = log["typed_config"]["log_format"]
                out.append(fmt.get("text_format_source", {}).get("inline_string") or json.dumps(fmt["json_format"]))
    return out


@pytest.mark.parametrize("target", ["haproxy", "nginx", "envoy"])
def test_every_target_writes_the_fields_in_order(target):
    formats = _formats(target)
    assert len(formats) == 2            # the text listener (L7) and the json one (L4)
    for fmt in formats:
        keys = re.findall(r'(?:^|[ {,])"?(\w+)"?[=:]', fmt)
        assert keys == list(accesslog.NAMES), fmt


def test_l4_lines_write_a_dash_for_the_l7_fields():
    line = accesslog.text_line({n: f"<{n}>" for n in accesslog.NAMES}, False, lambda v: f'"{v}"')
    assert "host=- method=- path=- status=-" in line and "response_ms=-" in line
    assert 'host="<host>"' in accesslog.text_line({n: f"<{n}>" for n in accesslog.NAMES}, True, lambda v: f'"{v}"')
