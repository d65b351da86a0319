"""Each output README lists the settings the applications need (the server half of each guide option)."""
from __future__ import annotations

import os

import pytest

from lbc import targets
from lbc.pipeline import Options, check_file, render

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def readme(example: str, target: str) -> str:
    result = check_file(os.path.join(EXAMPLES, example), Options())
    return render(result.model, targets.get(target))["README.md"]


@pytest.mark.parametrize("target", ["haproxy", "f5", "f5-as3"])
def test_lightstreamer_control_link_and_port_types(target):
    text = readme("lightstreamer-control-link.yaml", target)
    assert "`<control_link_address>push1.example.com</control_link_address>`" in text
    assert "`<control_link_address>push2.example.com</control_link_address>`" in text
    assert "port 8081 `<port_type>CREATE_ONLY</port_type>`, port 8080 `<port_type>CONTROL_ONLY</port_type>`" in text
    assert 'Lightstreamer, "Clustering for Load Balancing and Fail Over"' in text


@pytest.mark.parametrize("target", ["haproxy", "f5"])
def test_verastream_clients_connect_to_the_vip(target):
    text = readme("verastream.yaml", target)
    assert 'connect to 192.0.2.30:9681 directly, not "via domain"' in text


def test_no_section_without_application_settings():
    assert "Settings the applications need" not in readme("hacloud.yaml", "haproxy")
