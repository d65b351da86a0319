"""Writing the output folder: lbc never deletes or overwrites a file it did not write.

The folder's manifest (`.lbc-output`, JSON, the format of lbc.owned that lbc apply also writes)
lists every file lbc wrote there with the SHA-256 of what it wrote. A file counts as lbc's only if it is a regular file whose content still has that
hash, so a forged or copied manifest cannot make lbc delete anything it does not already hold a
byte-identical copy of, and a file the user edited is theirs again. Other files in the folder
are left alone; a file of someone else's in the way of an output stops the compile before
anything is written.

How a compile replaces the files of the previous one:
- a new folder is built beside the destination and renamed into place: all files or none;
- an existing folder is kept (its inode too, so a bind mount or a running proxy still sees it):
  every new file is first written in full under a temporary name beside its destination, then
  the manifest is widened to accept old and new content, then each file is renamed over the old
  one (atomic per file), then the manifest is narrowed to the new files and the previous
  compile's files that are no longer produced are removed. A failure while writing leaves the
  previous output untouched; a crash during the renames leaves a mix of old and new files that
  the manifest still recognises, so the next compile completes it. There is never an instant
  without an output folder.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Iterable, Optional

from . import owned
from .owned import sha256 as _sha256

MANIFEST = ".lbc-output"
_ABOUT = "files written by lbc compile, with the SHA-256 of their content; lbc replaces or removes only these, and only while unchanged"
_TMP_PREFIX = ".lbc-tmp-"


class OutputDirError(Exception):
    pass


def _read_manifest(folder: str) -> Optional[dict[str, list[str]]]:
    """{relative path: accepted hashes}, None when the folder has no manifest."""
    try:
        found = owned.read(os.path.join(folder, MANIFEST))
    except owned.ManifestError:
        raise OutputDirError(f"{folder} has a {MANIFEST} that this lbc cannot read (an older lbc wrote it, or "
                             "it was edited): empty the folder or choose a new one") from None
    return None if found is None else found.files


def _owned(folder: str, rel: str, manifest: dict[str, list[str]]) -> bool:
    return owned.owned(folder, rel, manifest)


def _check_parents(folder: str, rel: str) -> None:
    """Every folder between the output folder and the file is a real folder (never a link out)."""
    parts = rel.split("/")[:-1]
    here = folder
    for p in parts:
        here = os.path.join(here, p)
        if os.path.lexists(here) and (os.path.islink(here) or not os.path.isdir(here)):
            raise OutputDirError(f"{here} is in the way of lbc's output (not a plain folder); move it away")


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask decides, as for any file
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _stage(folder: str, rel: str, data: bytes) -> str:
    dest = os.path.join(folder, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=os.path.dirname(dest))
    os.close(fd)
    os.unlink(tmp)
    _write_new(tmp, data)
    return tmp


def _replace_manifest(folder: str, files: dict[str, list[str]]) -> None:
    tmp = _stage(folder, MANIFEST, owned.text(owned.Manifest(files), _ABOUT).encode())
    os.replace(tmp, os.path.join(folder, MANIFEST))


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def write_outputs(out_dir: str, files: dict[str, str], inputs: Iterable[str] = ()) -> None:
    """Write `files` ({relative path: text}) into out_dir as described in the module docstring.
    `inputs` are the files the compile read: an output folder holding one of them is refused."""
    out_dir = os.path.realpath(out_dir)  # `-o link`: write where the link points, keep the link
    for src in inputs:
        if _inside(os.path.realpath(src), out_dir):
            raise OutputDirError(f"{out_dir} holds the input {src}; choose an output folder of its own")
    data = {rel: text.encode("utf-8") for rel, text in sorted(files.items())}
    if not os.path.lexists(out_dir):
        _write_fresh(out_dir, data)
        return
    if not os.path.isdir(out_dir):
        raise OutputDirError(f"{out_dir} exists and is not a folder")
    manifest = _read_manifest(out_dir)
    if manifest is None:
        if os.listdir(out_dir):
            raise OutputDirError(f"{out_dir} is not empty and was not written by lbc; choose an empty or new folder")
        manifest = {}
    for rel in data:
        _check_parents(out_dir, rel)
        if os.path.lexists(os.path.join(out_dir, rel)) and not _owned(out_dir, rel, manifest):
            raise OutputDirError(f"{os.path.join(out_dir, rel)} was not written by lbc (or was changed since); "
                                 "move it away and compile again")
    stale = [rel for rel in manifest if rel not in data and _owned(out_dir, rel, manifest)]
    new = {rel: [_sha256(b)] for rel, b in data.items()}
    staged: dict[str, str] = {}
    try:
        for rel, b in data.items():
            staged[rel] = _stage(out_dir, rel, b)
        _replace_manifest(out_dir, {rel: manifest.get(rel, []) + new.get(rel, []) for rel in {*manifest, *new}})
        for rel, tmp in staged.items():
            os.replace(tmp, os.path.join(out_dir, rel))
        staged = {}
        _replace_manifest(out_dir, {**{rel: manifest[rel] for rel in manifest if rel not in new and rel not in stale},
                                    **new})
    finally:
        for tmp in staged.values():
            if os.path.lexists(tmp):
                os.unlink(tmp)
    for rel in stale:
        os.unlink(os.path.join(out_dir, rel))
        _remove_empty_parents(out_dir, rel)


def _remove_empty_parents(folder: str, rel: str) -> None:
    parts = rel.split("/")[:-1]
    while parts:
        try:
            os.rmdir(os.path.join(folder, *parts))  # only ever succeeds on an empty folder
        except OSError:
            return
        parts.pop()


def _write_fresh(out_dir: str, data: dict[str, bytes]) -> None:
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=parent)
    renamed = False
    try:
        for rel, b in data.items():
            dest = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            _write_new(dest, b)
        _replace_manifest(tmp, {rel: [_sha256(b)] for rel, b in data.items()})
        os.chmod(tmp, 0o755)
        os.rename(tmp, out_dir)  # fails if out_dir appeared meanwhile (a non-empty folder): nothing is lost
        renamed = True
    finally:
        if not renamed:
            shutil.rmtree(tmp, ignore_errors=True)
