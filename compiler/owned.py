"""The files lbc wrote into a folder, and the manifest that lists them: one format and one set of
helpers for `lbc compile -o` (DIR/.lbc-output) and `lbc apply` (CONFIG_DIR/.lbc/manifest.json).

A manifest is JSON: {"lbc-output": 1, "about": ..., "files": {relative path: [SHA-256 of each
accepted content]}}, plus what the writer records besides (lbc apply: "target", "topology"). A file
counts as lbc's only while it is a regular file, not a link, whose content has one of the listed
hashes (`owned`). The manifests of lbc apply before this format ({"files": {path: SHA-256}}) are
still read.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Optional

from .safeio import NotRegularFile, read_regular

FORMAT_KEY = "lbc-output"
MAX_MANIFEST = 16 * 1024 * 1024
MAX_OWNED = 256 * 1024 * 1024     # far beyond any file lbc writes (its input is at most 10 MiB)


class ManifestError(Exception):
    """A manifest that exists but cannot be read as one (edited, truncated, or not lbc's)."""


@dataclass
class Manifest:
    files: dict[str, list[str]]                            # relative path -> accepted SHA-256s
    extra: dict[str, str] = field(default_factory=dict)   # the writer's notes (lbc apply: target, topology)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read(path: str) -> Optional[Manifest]:
    """The manifest at `path`, None when there is none; ManifestError when it cannot be read."""
    if not os.path.lexists(path):
        return None
    try:
        raw = read_regular(path, MAX_MANIFEST, follow_links=False)
        if len(raw) > MAX_MANIFEST:
            raise ValueError
        doc = json.loads(raw.decode("utf-8"))
        files = doc["files"]
        if not isinstance(files, dict):
            raise ValueError
        if doc.get(FORMAT_KEY) == 1:
            found = {str(k): [str(h) for h in v] for k, v in files.items() if isinstance(v, list)}
        elif FORMAT_KEY not in doc and all(isinstance(v, str) for v in files.values()):
            found = {str(k): [v] for k, v in files.items()}   # lbc apply's earlier format: one hash per file
        else:
            raise ValueError
        extra = {str(k): str(v) for k, v in doc.items() if k not in (FORMAT_KEY, "about", "files")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:   # NotRegularFile is an OSError
        raise ManifestError(path) from e
    return Manifest(found, extra)


def text(manifest: Manifest, about: str) -> str:
    """The manifest as lbc writes it (sorted, so the same files give the same bytes)."""
    return json.dumps({FORMAT_KEY: 1, "about": about, **dict(sorted(manifest.extra.items())),
                       "files": {k: sorted(set(v)) for k, v in sorted(manifest.files.items())}}, indent=1) + "\n"


def owned(folder: str, rel: str, files: dict[str, list[str]]) -> bool:
    """True when folder/rel is a regular file (not a link) whose content lbc wrote there."""
    try:
        return sha256(read_regular(os.path.join(folder, rel), MAX_OWNED, follow_links=False)) in files.get(rel, ())
    except (OSError, NotRegularFile):
        return False
