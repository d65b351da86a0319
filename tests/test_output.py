"""The output folder: lbc never deletes or overwrites a file it did not write (compiler/output.py)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from lbc.output import MANIFEST, OutputDirError, write_outputs

from helpers import example_path


def test_files_of_others_in_an_lbc_folder_are_kept(tmp_path):
    out = tmp_path / "out"
    write_outputs(str(out), {"a.cfg": "one\n", "maps/m.map": "x\n"})
    (out / "notes.txt").write_text("mine")
    (out / "maps" / "extra.map").write_text("mine too")
    write_outputs(str(out), {"a.cfg": "two\n"})
    assert (out / "a.cfg").read_text() == "two\n"
    assert (out / "notes.txt").read_text() == "mine" and (out / "maps" / "extra.map").read_text() == "mine too"
    assert not (out / "maps" / "m.map").exists()


def test_a_forged_manifest_cannot_make_lbc_delete_or_overwrite(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work")
    (victim / "a.cfg").write_text("someone's config")
    forged = {"lbc-output": 1, "files": {"thesis.tex": ["0" * 64], "a.cfg": ["1" * 64]}}
    (victim / MANIFEST).write_text(json.dumps(forged))
    with pytest.raises(OutputDirError, match="not written by lbc"):
        write_outputs(str(victim), {"a.cfg": "x\n"})
    write_outputs(str(victim), {"b.cfg": "x\n"})   # thesis.tex is listed, but its hash is not its content
    assert (victim / "thesis.tex").read_text() == "years of work"
    assert (victim / "a.cfg").read_text() == "someone's config"


def test_an_edited_output_file_is_the_users(tmp_path):
    out = tmp_path / "out"
    write_outputs(str(out), {"a.cfg": "one\n", "b.cfg": "b\n"})
    (out / "b.cfg").write_text("edited by hand\n")
    write_outputs(str(out), {"a.cfg": "two\n"})     # b.cfg is no longer produced, but it was edited: kept
    assert (out / "b.cfg").read_text() == "edited by hand\n"
    (out / "a.cfg").write_text("edited\n")
    with pytest.raises(OutputDirError):
        write_outputs(str(out), {"a.cfg": "three\n"})
    assert (out / "a.cfg").read_text() == "edited\n"


def test_an_old_marker_is_not_trusted(tmp_path):
    (tmp_path / MANIFEST).write_text("This folder is written by lbc compile and replaced whole on every compile.\n")
    (tmp_path / "keep.txt").write_text("k")
    with pytest.raises(OutputDirError, match="cannot read"):
        write_outputs(str(tmp_path), {"a.cfg": "x\n"})
    assert (tmp_path / "keep.txt").read_text() == "k"


def test_output_folder_holding_the_input_is_refused(tmp_path):
    topo = tmp_path / "t.yaml"
    topo.write_text("x")
    write_outputs(str(tmp_path / "sub"), {"a.cfg": "x\n"}, inputs=[str(topo)])
    with pytest.raises(OutputDirError, match="holds the input"):
        write_outputs(str(tmp_path), {"a.cfg": "x\n"}, inputs=[str(topo)])
    assert topo.read_text() == "x"


def test_compile_into_the_folder_of_the_topology_keeps_it(tmp_path):
    """The reported loss: `lbc compile t.yaml -o .` inside a folder an earlier compile wrote."""
    out = tmp_path / "out"
    code = "from lbc.cli import main; main()"
    topo_text = open(example_path("flynet.yaml")).read()
    assert subprocess.run([sys.executable, "-c", code, "compile", example_path("flynet.yaml"), "-t", "haproxy",
                           "-o", str(out)], capture_output=True).returncode == 0
    (out / "t.yaml").write_text(topo_text)
    r = subprocess.run([sys.executable, "-c", code, "compile", "t.yaml", "-t", "haproxy", "-o", "."],
                       capture_output=True, text=True, cwd=out)
    assert r.returncode == 2 and "holds the input" in r.stderr
    assert (out / "t.yaml").read_text() == topo_text


def test_output_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real"
    link = tmp_path / "link"
    os.symlink(real, link)
    write_outputs(str(link), {"a.cfg": "one\n"})
    write_outputs(str(link), {"a.cfg": "two\n"})
    assert os.path.islink(link) and (real / "a.cfg").read_text() == "two\n"


def test_a_link_in_the_way_is_not_followed_or_replaced(tmp_path):
    out = tmp_path / "out"
    write_outputs(str(out), {"a.cfg": "one\n"})
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    os.unlink(out / "a.cfg")
    os.symlink(outside, out / "a.cfg")
    with pytest.raises(OutputDirError):
        write_outputs(str(out), {"a.cfg": "two\n"})
    os.unlink(out / "a.cfg")
    os.symlink(tmp_path, out / "maps")
    with pytest.raises(OutputDirError, match="in the way"):
        write_outputs(str(out), {"maps/m.map": "x\n"})
    assert outside.read_text() == "outside" and not (tmp_path / "m.map").exists()


def test_manifest_records_what_was_written(tmp_path):
    out = tmp_path / "out"
    write_outputs(str(out), {"a.cfg": "one\n"})
    doc = json.loads((out / MANIFEST).read_text())
    assert doc["files"] == {"a.cfg": [hashlib.sha256(b"one\n").hexdigest()]}
    assert sorted(os.listdir(tmp_path)) == ["out"] and sorted(os.listdir(out)) == [MANIFEST, "a.cfg"]
