"""The `lbc` command line. Exit codes: 0 clean, 1 errors found, 2 usage or I/O problem.

Streams: standard output carries only what was asked for (a compiled file, a json/sarif/github
document, a schema); text diagnostics always go to standard error.
"""
from __future__ import annotations

import difflib
import gc
import json
import os
import signal
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from enum import Enum
from typing import List, NoReturn, Optional, TextIO

import typer

from . import DOCS_URL, HOME_URL, __version__, jsonout
from .diagnostics import Diagnostic, Unreadable, format_github, format_json, format_sarif, format_text
from .compose import Inputs
from .loader import MAX_BYTES
from .pipeline import Options, OutputDirError, Result, check_every_environment, check_file, render, write_outputs
from .rules import REGISTRY, all_rules
from .targets import names_text as target_names   # the specs only: no back end is imported


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lbc {__version__}")
        raise typer.Exit()


app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="lbc: validate load-balancer topologies against the vendors' deployment guides "
                       "and compile them to HAProxy, Envoy, nginx and F5.")


@app.callback()
def _main(_: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print lbc's version and exit.")) -> None:
    pass


EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
STDIN = "-"


class Format(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


def _fail_usage(message: str) -> NoReturn:
    typer.echo(f"lbc: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


@dataclass
class Report:
    """How a command shows its findings: the same options and streams for every command."""
    fmt: Format = Format.text
    quiet: bool = False
    acknowledged: bool = True     # False: leave acknowledged findings out of every format
    max_per_rule: int = 20
    sarif_root: str = "."

    def emit(self, results: list[Result], unreadable: list[Unreadable], stdout_taken: bool = False) -> None:
        diags: list[Diagnostic] = [d for r in results for d in r.diagnostics
                                   if self.acknowledged or not d.acknowledged]
        # a document goes to standard output, unless that already carries a compiled file
        out = sys.stderr if stdout_taken else sys.stdout
        if self.fmt is Format.json:
            out.write(format_json(diags, unreadable))
        elif self.fmt is Format.sarif:
            meta = {r.id: {"name": r.name, "summary": r.summary, "hint": r.hint, "source": r.source, "why": r.why}
                    for r in all_rules()}
            out.write(format_sarif(diags, meta, __version__, self.sarif_root, unreadable,
                                   information_uri=HOME_URL, help_uri=DOCS_URL + "#{anchor}"))
        elif self.fmt is Format.github:
            out.write(format_github(diags, unreadable))
        else:
            for u in unreadable:
                typer.echo(f"lbc: {u}", err=True)
            sources = {f: lines for r in results if r.doc is not None for f, lines in r.doc.sources.items()}
            sys.stderr.write(format_text(diags, sources, color=_color(sys.stderr),
                                         max_per_rule=self.max_per_rule, quiet=self.quiet))


@contextmanager
def _kept_until_exit():
    """What is made inside lives until the process exits (the model, the output): the collector is
    off meanwhile, and it is frozen before the collector is on again, or each later collection would
    walk it again (0.5-0.7 s of a 10,000-service compile; the first one alone, 0.1-0.15 s).
    For the one-shot CLI only; the library does not."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _read(path: str, options: Options, target=None, stdin_name: str = "<stdin>",
          every_env: bool = False) -> Result | Unreadable:
    """Check one input; `-` is standard input. An input that cannot be read is returned, not raised,
    so that the other files are still checked."""
    try:
        with _kept_until_exit():
            if path == STDIN:
                result = check_file(stdin_name, options, target,
                                    data=sys.stdin.buffer.read(options.max_bytes + 1))   # load_bytes refuses the rest
            elif every_env:
                result = check_every_environment(path, options, target)
            else:
                result = check_file(path, options, target)
    except OSError as e:
        return Unreadable(path, e.strerror or str(e))
    return result


def _check(path: str, options: Options, target=None) -> Result:
    """One input that must be readable (diff, apply): an unreadable one is an I/O error (exit 2)."""
    result = _read(path, options, target)
    if isinstance(result, Unreadable):
        Report().emit([], [result])
        raise typer.Exit(EXIT_USAGE)
    return result


def _print(results: list[Result], fmt: Format) -> None:
    Report(fmt).emit(results, [])


def _progress(message: str, report: Report):
    """A spinner on standard error while a big topology is checked or rendered; only on a terminal."""
    if report.quiet or report.fmt is not Format.text or not sys.stderr.isatty():
        return nullcontext()
    from rich.console import Console
    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR"))).status(message)


def _target(name: str):
    """A target by name, case-insensitively, with a did-you-mean for a typo."""
    from .targets import available, get
    known = available()
    folded = {n.lower(): n for n in known}
    if name.lower() in folded:
        return get(folded[name.lower()])
    close = difflib.get_close_matches(name.lower(), list(folded), n=1)
    tip = f"; did you mean '{folded[close[0]]}'?" if close else ""
    _fail_usage(f"unknown target '{name}'{tip} (available: {', '.join(known)})")


StrictOpt = typer.Option(False, "--strict", help="Warnings fail too.")
CheckFilesOpt = typer.Option(False, "--check-files", help="A missing certificate file is an error, not a warning.")
FormatOpt = typer.Option(Format.text, "--format", "-f", help="Diagnostics as text (on standard error), json, "
                         "sarif or github annotations (on standard output).")
MaxBytesOpt = typer.Option(MAX_BYTES, "--max-bytes", help="Refuse topology files larger than this.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="Text: only unacknowledged errors and warnings, "
                        "and nothing at all for a clean file.")
NoAckOpt = typer.Option(False, "--no-acknowledged", help="Leave acknowledged findings out (every format).")
MaxPerRuleOpt = typer.Option(20, "--max-per-rule", min=0, help="Text: list each rule's first N findings, "
                             "then count the rest (0: list all).")
SarifRootOpt = typer.Option(".", "--sarif-root", help="SARIF: the folder file URIs are relative to "
                            "(%SRCROOT%; the repository root in code scanning). Default: the working directory.")
EnvOpt = typer.Option(None, "--env", "-e", help="Apply this environment's overlay (named under `environments:`).")
ValuesOpt = typer.Option([], "--values", help="A YAML file of name: value for ${name} placeholders "
                         "(repeatable; later files win).")
ValuesEnvOpt = typer.Option(False, "--values-env", help="Also take placeholder values from environment "
                            "variables LBC_VAR_<name> (they win over --values files); no other variable is read.")


def _inputs(env: Optional[str], values: List[str], values_env: bool) -> Inputs:
    return Inputs(env=env, values=tuple(values), values_env=values_env)


StdinNameOpt = typer.Option("<stdin>", "--stdin-filename", help="The name diagnostics give a topology read "
                            "from standard input (`-`); relative certificate paths are taken from its folder.")


@app.command()
def validate(
    files: List[str] = typer.Argument(..., help="Topology files; - reads one from standard input."),
    strict: bool = StrictOpt, check_files: bool = CheckFilesOpt, fmt: Format = FormatOpt,
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Also check what this target can express."),
    max_bytes: int = MaxBytesOpt, quiet: bool = QuietOpt, no_acknowledged: bool = NoAckOpt,
    max_per_rule: int = MaxPerRuleOpt, sarif_root: str = SarifRootOpt, stdin_filename: str = StdinNameOpt,
    env: Optional[str] = EnvOpt, values: List[str] = ValuesOpt, values_env: bool = ValuesEnvOpt,
    every_env: bool = typer.Option(False, "--every-env", help="Check a topology with `environments:` in each of "
                                   "them (with each one's values files); others as they are. For hooks and CI."),
) -> None:
    """Check topology files: structure, references and the deployment guides' rules."""
    options = Options(strict=strict, check_files=check_files, max_bytes=max_bytes,
                      inputs=_inputs(env, values, values_env))
    report = Report(fmt, quiet, not no_acknowledged, max_per_rule, sarif_root)
    tgt = _target(target) if target else None
    checked = []
    for f in files:
        with _progress(f"checking {f}", report):
            checked.append(_read(f, options, tgt, stdin_filename, every_env))
    results = [r for r in checked if isinstance(r, Result)]
    unreadable = [u for u in checked if isinstance(u, Unreadable)]
    report.emit(results, unreadable)
    if unreadable:
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(EXIT_ERRORS if any(r.failed for r in results) else EXIT_OK)


def _stdout_file(files: dict[str, str], tgt) -> str:
    """The one file `compile` prints without -o. A target whose main file needs others beside it
    (HAProxy host maps, nginx's modules.conf) cannot be printed: refuse rather than drop files."""
    from .targets import files_needed_beside
    main = tgt.main_file
    needed = files_needed_beside(tgt, files)
    if needed:
        _fail_usage(f"{tgt.name} output for this topology is {len(needed) + 1} files ({main}, {', '.join(needed)}); "
                    "write them with -o FOLDER")
    return files[main]


@app.command("compile")
def compile_(
    file: str = typer.Argument(..., help="Topology file; - reads it from standard input."),
    target: str = typer.Option(..., "--target", "-t", help=f"{target_names()} (see `lbc targets`)."),
    out: Optional[str] = typer.Option(None, "--output", "-o", help="Output folder (lbc replaces only files it "
                                      "wrote, each atomically). Default: print the main file to standard output, "
                                      "when it needs no other."),
    strict: bool = StrictOpt, check_files: bool = CheckFilesOpt, fmt: Format = FormatOpt,
    emit: Optional[str] = typer.Option(None, "--emit", help="Print an intermediate stage instead: model."),
    explain_defaults: bool = typer.Option(False, "--explain-defaults",
                                          help="List every value filled in by a profile or by lbc's defaults."),
    explain_origin: bool = typer.Option(False, "--explain-origin", help="List every value given and the file, "
                                        "line and column that set it (an include, the environment's overlay, "
                                        "a placeholder's values file)."),
    env: Optional[str] = EnvOpt, values: List[str] = ValuesOpt, values_env: bool = ValuesEnvOpt,
    max_bytes: int = MaxBytesOpt,
    docker: bool = typer.Option(False, "--docker", help="Also write a Dockerfile and compose.yaml that run "
                                "the output in the target's official image (needs --output)."),
    pretty: bool = typer.Option(False, "--pretty", help="Indent JSON output for reading (Envoy's envoy.json is "
                                "compact by default: a third of the size and of the time to write it)."),
    quiet: bool = QuietOpt, no_acknowledged: bool = NoAckOpt, max_per_rule: int = MaxPerRuleOpt,
    sarif_root: str = SarifRootOpt, stdin_filename: str = StdinNameOpt,
) -> None:
    """Compile a topology into a target's configuration files."""
    options = Options(strict=strict, check_files=check_files, max_bytes=max_bytes,
                      inputs=_inputs(env, values, values_env))
    report = Report(fmt, quiet, not no_acknowledged, max_per_rule, sarif_root)
    tgt = _target(target)
    if docker and out is None:
        _fail_usage("--docker needs --output")
    with _progress(f"checking {file}", report):
        result = _read(file, options, tgt, stdin_filename)
    if isinstance(result, Unreadable):
        report.emit([], [result])
        raise typer.Exit(EXIT_USAGE)
    if result.failed or result.model is None or result.doc is None:
        report.emit([result], [])
        raise typer.Exit(EXIT_ERRORS)
    model = result.model
    if explain_defaults:
        for d in model.defaults_applied:
            loc = result.doc.locate(d.path)
            typer.echo(f"{loc}: {'.'.join(str(p) for p in d.path)} = {json.dumps(d.value)}  ({d.origin})")
    if explain_origin:
        for line in _origins(result):
            typer.echo(line)
    if emit == "model":
        typer.echo(json.dumps(model.to_dict(), indent=2, sort_keys=True, default=str))
        raise typer.Exit(EXIT_OK)
    result.doc.release_positions()  # every diagnostic is located
    if emit is not None:
        _fail_usage(f"unknown --emit stage '{emit}' (known: model)")
    from .nodes import per_node
    if per_node(model, tgt) and (out is None or docker):
        _fail_usage("a topology with `balancers:` compiles to one folder per node: give --output (without --docker)")
    try:
        with _progress(f"rendering {tgt.name}", report), _kept_until_exit():
            files = render(model, tgt)
    except Exception as e:  # a target bug, not bad input: say so briefly, full traceback on request
        if os.environ.get("LBC_DEBUG"):
            raise
        _fail_usage(f"internal error: target {tgt.name} could not render this topology ({type(e).__name__}: {e}); "
                    "please report it with the topology (LBC_DEBUG=1 shows the traceback)")
    if docker:
        from .docker_files import docker_files
        try:
            files = {**files, **docker_files(model, tgt.name, files, out or "")}   # --docker needs --output
        except ValueError as e:
            _fail_usage(str(e))
    if pretty:
        files = {name: jsonout.pretty(text) if name.endswith(".json") else text for name, text in files.items()}
    if out is None:
        text = _stdout_file(files, tgt)
        report.emit([result], [], stdout_taken=True)
        sys.stdout.write(text)
    else:
        try:
            with _progress(f"writing {out}", report):
                write_outputs(out, files, inputs=[] if file == STDIN else _inputs_read(result, file))
        except (OutputDirError, OSError) as e:
            _fail_usage(str(e))
        report.emit([result], [])
    raise typer.Exit(EXIT_OK)


def _inputs_read(result: Result, file: str) -> list[str]:
    """Every file the compile read (an output folder may hold none of them)."""
    if result.composed is None or result.doc is None:
        return [file]
    return [file] + [f for f in result.composed.files if f != result.doc.file] + list(result.composed.values_files)


def _origins(result: Result) -> list[str]:
    """`--explain-origin`: each value given, where it was written; a placeholder's value is not shown."""
    doc, subs = result.doc, result.composed.substitutions if result.composed else {}
    lines: list[str] = []
    if doc is None:
        return lines

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))
        else:
            name = ".".join(str(p) for p in path)
            sub = subs.get(path)
            shown = f"{json.dumps(sub.placeholder)}  ({doc.locate(path)}; {sub.origin})" if sub else \
                f"{json.dumps(node)}  ({doc.locate(path)})"
            lines.append(f"{name} = {shown}")
    walk(doc.data, ())
    return lines


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
    if fmt not in (Format.text, Format.json):
        _fail_usage("lbc targets prints text or json")
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
        cells = [mark.get(s.level if (s := table[n].get(f)) else "unsupported") for n in names]
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
        for each in rules:
            typer.echo(f"{each.id}  {each.severity.value:<7}  {each.name:<32}  {each.summary}")
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
    env: Optional[str] = EnvOpt, values: List[str] = ValuesOpt, values_env: bool = ValuesEnvOpt,
) -> None:
    """Sizing of Host Access for the Cloud services and each server's share of new sessions."""
    from . import plan as planning
    if fmt not in (Format.text, Format.json):
        _fail_usage("lbc plan prints text or json")
    result = _read(file, Options(inputs=_inputs(env, values, values_env)))
    if isinstance(result, Unreadable):
        Report(fmt).emit([], [result])
        raise typer.Exit(EXIT_USAGE)
    if result.model is None:
        Report(fmt).emit([result], [])
        raise typer.Exit(EXIT_ERRORS)
    if service is not None and service not in {s.name for s in result.model.services}:
        _fail_usage(f"no service '{service}' in {file}")
    p = planning.plan(result.model, peak_sessions, peak_users, service)
    if fmt is Format.json:
        typer.echo(json.dumps(planning.plan_json(p), indent=2, sort_keys=True))
    else:
        typer.echo(planning.format_plan(p), nl=False)


@app.command("diff")
def diff_(
    files: List[str] = typer.Argument(..., help="OLD NEW topology files, or one with --target and --against."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="With --against: compile for this target."),
    against: Optional[str] = typer.Option(None, "--against", help="A deployed output or config folder to compare "
                                          "the compiled files with."),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
    env: List[str] = typer.Option([], "--env", "-e", help="An environment for every file; give it twice with one "
                                  "file to compare two environments of one topology (OLD first)."),
    values: List[str] = ValuesOpt, values_env: bool = ValuesEnvOpt,
) -> None:
    """What changes between two topologies, and what each change does to clients.
    Exit 0 no change, 3 changes, 1 a topology has errors, 2 usage or I/O."""
    from .diff import run
    if fmt not in (Format.text, Format.json):
        _fail_usage("lbc diff prints text or json")
    envs: list[Optional[str]]
    if len(env) == 2 and len(files) == 1 and against is None:
        files, envs = [files[0], files[0]], list(env)  # lbc diff topology.yaml --env lab --env prod
    elif len(env) <= 1:
        envs = [env[0] if env else None] * len(files)
    else:
        _fail_usage("give --env once (for every file), or twice with one topology file (OLD NEW)")
    options = [Options(inputs=_inputs(e, values, values_env)) for e in envs]
    labels = [f"{f} --env {e}" if e else f for f, e in zip(files, envs)]
    code = run(files, target, against, fmt is Format.json, _check, lambda rs: _print(rs, Format.text),
               _target, _fail_usage, sys.stdout.write, options, labels)
    raise typer.Exit(code)


@app.command("apply")
def apply_(
    file: str = typer.Argument(..., help="Topology file."),
    target: str = typer.Option(..., "--target", "-t", help="haproxy, nginx or envoy."),
    config_dir: str = typer.Option(..., "--config-dir", help="The folder the proxy reads its configuration from."),
    pid_file: Optional[str] = typer.Option(None, "--pid-file", help="The master process's PID file "
                                           "(nginx default: nginx.pid in the folder)."),
    master_socket: Optional[str] = typer.Option(None, "--master-socket", help="HAProxy's master CLI socket "
                                                "(haproxy -W -S PATH): reloads, and runtime-API changes that need none."),
    reload_command: Optional[str] = typer.Option(None, "--reload-command", help="Reload with this command instead "
                                                 "(e.g. 'systemctl reload haproxy'); run without a shell."),
    admin: List[str] = typer.Option([], "--admin", help="Envoy admin URL (repeat for a fleet); "
                                    "default http://127.0.0.1:9901."),
    probe: List[str] = typer.Option([], "--probe", help="A URL that must answer (status < 500) afterwards; repeatable."),
    runtime: bool = typer.Option(True, "--runtime/--no-runtime", help="Use HAProxy's runtime API when it is enough."),
    activate: bool = typer.Option(True, "--activate/--no-activate", help="--no-activate: check and install the "
                                  "files only (first install, before the proxy is started)."),
    timeout: float = typer.Option(20.0, "--timeout", min=1, help="Seconds to wait for the new version to run."),
    binary: Optional[str] = typer.Option(None, "--binary", help="The proxy binary (default: found on PATH)."),
    strict: bool = StrictOpt, check_files: bool = CheckFilesOpt,
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
    env: Optional[str] = EnvOpt, values: List[str] = ValuesOpt, values_env: bool = ValuesEnvOpt,
) -> None:
    """Compile, check with the real proxy, swap, reload without dropping connections, verify; roll back on
    any failure. Exit 0 applied, 1 refused or rolled back, 2 usage/I/O/locked, 4 rollback failed."""
    from . import apply as deploy
    if fmt not in (Format.text, Format.json):
        _fail_usage("lbc apply prints text or json")
    tgt = _target(target)
    result = _check(file, Options(strict=strict, check_files=check_files,
                                  inputs=_inputs(env, values, values_env)), tgt)
    if result.failed or result.model is None:
        _print([result], Format.text)
        raise typer.Exit(EXIT_ERRORS)
    host = deploy.Host(pid_file=pid_file, master_socket=master_socket, reload_command=reload_command,
                       admin=admin or (["http://127.0.0.1:9901"] if target == "envoy" else []), probes=probe,
                       runtime=runtime, activate=activate, timeout=timeout, binary=binary)
    try:
        outcome = deploy.apply(result.model, tgt, config_dir, host, source=file)
    except deploy.UsageError as e:
        _fail_usage(str(e))
    except OSError as e:
        _fail_usage(f"{config_dir}: {e.strerror or e}")
    if fmt is Format.json:
        sys.stdout.write(outcome.to_json())
    else:
        (sys.stdout if outcome.code == 0 else sys.stderr).write(f"lbc apply {file} -> {target} {config_dir}\n"
                                                                + outcome.text())
    raise typer.Exit(outcome.code)


def main() -> None:
    # The reader may leave early (`lbc compile ... | head`): end quietly like other Unix tools
    # (killed by SIGPIPE, status 141) instead of a traceback or the "findings" status 1.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        app(prog_name="lbc")
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
    except SystemExit as e:
        _exit_now(e)
        raise


def _exit_now(e: SystemExit) -> None:
    """Exit without tearing the heap down object by object (0.8 s after a 10,000-service file):
    lbc has flushed and closed what it wrote, so there is nothing left to finish. Anything unusual
    (a message as the status, a stream that cannot be flushed) takes the normal exit."""
    code = 0 if e.code is None else e.code
    if not isinstance(code, int):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)
