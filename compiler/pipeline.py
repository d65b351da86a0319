"""The stages in order: load -> schema -> model -> rules -> (target capabilities -> render -> write)."""
from __future__ import annotations

import gc
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Optional

from .build import build_model
from .capabilities import check_capabilities
from .diagnostics import Diagnostic, has_errors, promote_warnings, sort_diagnostics
from .loader import MAX_BYTES, Document, LoadError, load_bytes, load_file
from .model import Topology
from .nodes import per_node, render_nodes
from .rules import REGISTRY, Reporter, all_rules, run_model_rules
from .schema import check_schema

OUTPUT_MARKER = ".lbc-output"


@dataclass
class Options:
    strict: bool = False          # warnings fail
    check_files: bool = False     # missing certificate files are errors, not warnings
    max_bytes: int = MAX_BYTES


@dataclass
class Result:
    file: str
    doc: Optional[Document] = None
    model: Optional[Topology] = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return has_errors(self.diagnostics)

    def finish(self, options: Options) -> "Result":
        # The loader and the schema check create diagnostics before a Reporter exists: add the citation here.
        diags = [replace(d, source=REGISTRY[d.id].source) if not d.source and d.id in REGISTRY else d
                 for d in self.diagnostics]
        diags = promote_warnings(diags) if options.strict else diags
        self.diagnostics = sort_diagnostics(diags)
        return self


@contextmanager
def _gc_paused():
    """The front end builds many small objects and no cycles worth collecting: pausing the
    cyclic collector makes large topologies load ~2x faster."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_file(path: str, options: Options = Options(), target=None, data: Optional[bytes] = None) -> Result:
    """Load, check and model one topology file (or `data` read elsewhere, named `path` in diagnostics).
    OSError propagates (an I/O problem, exit 2)."""
    with _gc_paused():
        return _check_file(path, options, target, data)


def _check_file(path: str, options: Options, target, data: Optional[bytes]) -> Result:
    all_rules()  # make sure every rule module is registered
    result = Result(path)
    try:
        doc = (load_file(path, max_bytes=options.max_bytes) if data is None
               else load_bytes(data, path, max_bytes=options.max_bytes))
    except LoadError as e:
        result.diagnostics.append(e.diagnostic)
        return result.finish(options)
    result.doc = doc
    reporter = Reporter(doc)
    schema_diags = check_schema(doc)
    if schema_diags:
        result.diagnostics.extend(schema_diags)
        return result.finish(options)
    model = build_model(doc, reporter)
    if model is not None:
        run_model_rules(model, reporter, options)
        if target is not None:
            check_capabilities(model, target, reporter)
    result.model = model
    result.diagnostics.extend(reporter.diagnostics)
    return result.finish(options)


def render(model: Topology, target) -> dict[str, str]:
    """The target's files; with balancer nodes (and a target run beside keepalived), one folder per node."""
    files = render_nodes(model, target) if per_node(model, target) else target.render(model)
    for rel in files:
        norm = os.path.normpath(rel)
        if norm.startswith("..") or os.path.isabs(norm) or norm == OUTPUT_MARKER:
            raise ValueError(f"target {target.name} produced a bad output path {rel!r}")
    return files


class OutputDirError(Exception):
    pass


def write_outputs(out_dir: str, files: dict[str, str]) -> None:
    """Write all files or none: build a sibling folder, then swap it in place of out_dir.

    out_dir belongs to lbc: it is replaced whole, so stale files of an earlier compile vanish.
    A folder that lbc did not write is never replaced.
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise OutputDirError(f"{out_dir} exists and is not a folder")
        if os.listdir(out_dir) and not os.path.exists(os.path.join(out_dir, OUTPUT_MARKER)):
            raise OutputDirError(f"{out_dir} is not empty and was not written by lbc; choose an empty or new folder")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".lbc-tmp-", dir=parent)
    try:
        for rel, text in sorted(files.items()):
            dest = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        with open(os.path.join(tmp, OUTPUT_MARKER), "w") as f:
            f.write("This folder is written by lbc compile and replaced whole on every compile.\n")
        os.chmod(tmp, 0o755)
        old = None
        if os.path.exists(out_dir):
            old = tempfile.mkdtemp(prefix=".lbc-old-", dir=parent)
            os.rename(out_dir, os.path.join(old, "out"))
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if old:
                os.rename(os.path.join(old, "out"), out_dir)
            raise
        tmp = None
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp and os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
