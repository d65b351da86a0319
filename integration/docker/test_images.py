"""The image recipe without an engine: which apt sources it takes, and when the cache hash moves."""
from __future__ import annotations

import dataclasses

import images


def test_apt_sources_are_the_hosts_own_for_its_release(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (tmp_path / "sources.list").write_text("# deb http://mirror.invalid/debian bookworm main\n")   # only a comment
    (d / "debian.sources").write_text("Types: deb\nURIs: http://mirror.invalid/debian\n"
                                      "Suites: bookworm bookworm-updates\nComponents: main\n")
    (d / "security.list").write_text("deb http://mirror.invalid/debian-security bookworm-security main\n"
                                     "deb http://mirror.invalid/debian bookworm main\n")
    (d / "vendor.list").write_text("deb http://vendor.invalid/repo nodistro main\n")          # third party
    (d / "old.list.disabled").write_text("deb http://mirror.invalid/debian bookworm main\n")  # not read by apt
    assert images.apt_sources("bookworm", str(tmp_path)) == [str(d / "debian.sources"), str(d / "security.list")]


def test_inputs_hash_moves_with_every_input_and_only_then(tmp_path):
    spec = images.specs()["lbc/haproxy"]
    src = tmp_path / "a.sources"
    src.write_text("Suites: bookworm\n")
    base = images.inputs_hash(spec, "bookworm", [str(src)])
    assert images.inputs_hash(spec, "bookworm", [str(src)]) == base
    assert images.inputs_hash(dataclasses.replace(spec, packages=spec.packages + ("curl",)), "bookworm",
                              [str(src)]) != base
    assert images.inputs_hash(spec, "trixie", [str(src)]) != base
    src.write_text("Suites: bookworm bookworm-updates\n")
    assert images.inputs_hash(spec, "bookworm", [str(src)]) != base


def test_envoy_comes_from_the_wheel_binary_not_a_shim():
    with open(images.envoy_binary(), "rb") as f:
        assert f.read(4) == b"\x7fELF"
    spec = images.specs()["lbc/envoy"]
    assert spec.files[0][0] == images.envoy_binary()
