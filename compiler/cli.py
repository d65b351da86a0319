"""The `lbc` command line. Exit codes: 0 clean, 1 errors found, 2 usage or I/O problem."""
from __future__ import annotations

import json
import os
import sys
from enum import Enum
from typing import List, Optional

import typer

from . import __version__
from .diagnostics import Diagnostic, format_github, format_json, format_sarif, format_text
from .loader import MAX_BYTES
from .pipeline import Options, OutputDirError, Result, check_file, render, write_outputs
from .rules import REGISTRY, all_rules

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="lbc: validate load-balancer topologies against the vendors' deployment guides "
                       "and compile them to HAProxy, Envoy, nginx and F5.")

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class Format(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


def _fail_usage(message: str) -> None:
    typer.echo(f"lbc: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _print(results: list[Result], fmt: Format, quiet_ok: bool = False) -> None:
    diags: list[Diagnostic] = [d for r in results for d in r.diagnostics]
    if fmt is Format.json:
        sys.stdout.write(format_json(diags))
    elif fmt is Format.sarif:
        meta = {r.id: {"name": r.name, "summary": r.summary, "hint": r.hint, "source": r.source} for r in all_rules()}
        sys.stdout.write(format_sarif(diags, meta, __version__))
    elif fmt is Format.github:
        sys.stdout.write(format_github(diags))
    elif diags or not quiet_ok:
        sources = {r.file: r.doc.lines for r in results if r.doc is not None}
        stream = sys.stderr if any(d.fails for d in diags) else sys.stdout
        stream.write(format_text(diags, sources, color=stream.isatty() and not os.environ.get("NO_COLOR")))


def _check(path: str, options: Options, target=None) -> Result:
    try:
        return check_file(path, options, target)
    except OSError as e:
        _fail_usage(f"cannot read {path}: {e.strerror or e}")
        raise  # unreachable


def _target(name: str):
    from .targets import available, get
    try:
        return get(name)
    except KeyError:
        _fail_usage(f"unknown target '{name}'; available: {', '.join(available())}")


StrictOpt = typer.Option(False, "--strict", help="Warnings fail too.")
CheckFilesOpt = typer.Option(False, "--check-files", help="A missing certificate file is an error, not a warning.")
FormatOpt = typer.Option(Format.text, "--format", "-f", help="Diagnostics as text, json, sarif or github annotations.")
MaxBytesOpt = typer.Option(MAX_BYTES, "--max-bytes", help="Refuse topology files larger than this.")


@app.command()
def validate(
    files: List[str] = typer.Argument(..., help="Topology files."),
    strict: bool = StrictOpt, check_files: bool = CheckFilesOpt, fmt: Format = FormatOpt,
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Also check what this target can express."),
    max_bytes: int = MaxBytesOpt,
) -> None:
    """Check topology files: structure, references and the deployment guides' rules."""
    options = Options(strict=strict, check_files=check_files, max_bytes=max_bytes)
    tgt = _target(target) if target else None
    results = [_check(f, options, tgt) for f in files]
    _print(results, fmt)
    raise typer.Exit(EXIT_ERRORS if any(r.failed for r in results) else EXIT_OK)


@app.command("compile")
def compile_(
    file: str = typer.Argument(..., help="Topology file."),
    target: str = typer.Option(..., "--target", "-t", help="haproxy, envoy, nginx, f5 or f5-as3 (see `lbc targets`)."),
    out: Optional[str] = typer.Option(None, "--output", "-o", help="Output folder (lbc replaces only files it wrote; each atomically). "
                                      "Default: print the main file to standard output."),
    strict: bool = StrictOpt, check_files: bool = CheckFilesOpt, fmt: Format = FormatOpt,
    emit: Optional[str] = typer.Option(None, "--emit", help="Print an intermediate stage instead: model."),
    explain_defaults: bool = typer.Option(False, "--explain-defaults",
                                          help="List every value filled in by a profile or by lbc's defaults."),
    max_bytes: int = MaxBytesOpt,
    docker: bool = typer.Option(False, "--docker", help="Also write a Dockerfile and compose.yaml that run "
                                "the output in the target's official image (needs --output)."),
) -> None:
    """Compile a topology into a target's configuration files."""
    options = Options(strict=strict, check_files=check_files, max_bytes=max_bytes)
    tgt = _target(target)
    result = _check(file, options, tgt)
    if result.failed or result.model is None:
        _print([result], fmt)
        raise typer.Exit(EXIT_ERRORS)
    model = result.model
    if explain_defaults:
        for d in model.defaults_applied:
            loc = result.doc.locate(d.path)
            typer.echo(f"{loc}: {'.'.join(str(p) for p in d.path)} = {json.dumps(d.value)}  ({d.origin})")
    if emit == "model":
        typer.echo(json.dumps(model.to_dict(), indent=2, sort_keys=True, default=str))
        raise typer.Exit(EXIT_OK)
    if emit is not None:
        _fail_usage(f"unknown --emit stage '{emit}' (known: model)")
    try:
        files = render(model, tgt)
    except Exception as e:  # a target bug, not bad input: say so briefly, full traceback on request
        if os.environ.get("LBC_DEBUG"):
            raise
        _fail_usage(f"internal error: target {tgt.name} could not render this topology ({type(e).__name__}: {e}); "
                    "please report it with the topology (LBC_DEBUG=1 shows the traceback)")
    if docker:
        from .docker_files import docker_files
        if out is None:
            _fail_usage("--docker needs --output")
        try:
            files = {**files, **docker_files(model, tgt.name, files)}
        except ValueError as e:
            _fail_usage(str(e))
    if out is None:
        main = sorted(files)[0] if len(files) == 1 else next(iter(files))
        sys.stdout.write(files[main])
    else:
        try:
            write_outputs(out, files, inputs=[file])
        except (OutputDirError, OSError) as e:
            _fail_usage(str(e))
    _print([result], fmt, quiet_ok=True)
    raise typer.Exit(EXIT_OK)


@app.command()
def schema() -> None:
    """Print the topology language's JSON Schema (for editors)."""
    from .schema import topology_schema
    typer.echo(json.dumps(topology_schema(), indent=2))


@app.command()
def version() -> None:
    """Print lbc's version."""
    typer.echo(f"lbc {__version__}")


@app.command()
def targets(fmt: Format = typer.Option(Format.text, "--format", "-f", help="text or json.")) -> None:
    """The support matrix: what each target expresses natively, by emulation, or not at all."""
    from .capabilities import FEATURES
    from .targets import available, get
    names = available()
    table = {n: get(n).capabilities for n in names}
    if fmt is Format.json:
        typer.echo(json.dumps({n: {f: {"level": s.level, "note": s.note} for f, s in sorted(c.items())}
                               for n, c in table.items()}, indent=2, sort_keys=True))
        return
    mark = {"native": "yes", "emulated": "emulated", "unsupported": "no"}
    width = max(len(f) for f in FEATURES)
    typer.echo(f"{'feature':<{width}}  " + "  ".join(f"{n:<9}" for n in names))
    for f in FEATURES:
        cells = [mark.get(table[n].get(f).level if table[n].get(f) else "unsupported") for n in names]
        typer.echo(f"{f:<{width}}  " + "  ".join(f"{c:<9}" for c in cells))
    for n in names:
        notes = [(f, s.note) for f, s in sorted(table[n].items()) if s.note]
        if notes:
            typer.echo(f"\n{n}:")
            for f, note in notes:
                typer.echo(f"  {f}: {note}")


@app.command()
def explain(rule_id: Optional[str] = typer.Argument(None, help="A rule ID such as LBC201; none lists every rule.")) -> None:
    """Explain a rule: what it checks, why, the guide it comes from, a failing and a fixed example."""
    rules = all_rules()
    if rule_id is None:
        for r in rules:
            typer.echo(f"{r.id}  {r.severity.value:<7}  {r.name:<32}  {r.summary}")
        return
    r = REGISTRY.get(rule_id.upper())
    if r is None:
        _fail_usage(f"no rule {rule_id}; `lbc explain` lists them")
    lines = [f"{r.id} {r.name} ({r.severity.value})", "", r.summary, "", f"Fix: {r.hint}", f"Source: {r.source}"]
    if r.why:
        lines += ["", "Why:", r.why]
    if r.bad:
        lines += ["", "Fails:", r.bad.rstrip()]
    if r.good:
        lines += ["", "Fixed:", r.good.rstrip()]
    typer.echo("\n".join(lines))


@app.command()
def plan(
    file: str = typer.Argument(..., help="Topology file."),
    peak_sessions: Optional[int] = typer.Option(None, "--peak-sessions", min=0,
                                                help="What if: peak concurrent host sessions (hacloud-session)."),
    peak_users: Optional[int] = typer.Option(None, "--peak-users", min=0,
                                             help="What if: peak concurrent users (hacloud-mss)."),
    service: Optional[str] = typer.Option(None, "--service", help="Plan this service only."),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
) -> None:
    """Sizing of Host Access for the Cloud services and each server's share of new sessions."""
    from . import plan as planning
    if fmt not in (Format.text, Format.json):
        _fail_usage("lbc plan prints text or json")
    result = _check(file, Options())
    if result.model is None:
        _print([result], fmt)
        raise typer.Exit(EXIT_ERRORS)
    if service is not None and service not in {s.name for s in result.model.services}:
        _fail_usage(f"no service '{service}' in {file}")
    p = planning.plan(result.model, peak_sessions, peak_users, service)
    if fmt is Format.json:
        typer.echo(json.dumps(planning.plan_json(p), indent=2, sort_keys=True))
    else:
        typer.echo(planning.format_plan(p), nl=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
