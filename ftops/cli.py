"""The `ftops` command line: parse, call the engine, render. Nothing imports this module.

One error handler (`main`): an FtopsError prints its diagnostics and exits with its code (1, or
130 for an interrupted apply); click usage errors exit 1; anything else prints one line, with the
traceback only under --debug. `plan --detailed-exitcode` exits 2 when there are changes.
"""

from __future__ import annotations

import contextlib
import json
import errno
import logging
import math
import os
import signal
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ftops import __version__
from ftops.diagnostics import Diagnostic, FtopsError, error, format_diagnostic
from ftops.diagnostics import printable as P

if TYPE_CHECKING:
    from ftops.engine.desired import DesiredSet
    from ftops.render.progress import ProgressLine
    from ftops.workspace import Workspace

MAX_PER_CODE = 5
#: Seconds a step must last before the progress line appears (a warm plan shows nothing).
PROGRESS_DELAY = 0.3
PROGRESS_INTERVAL = 0.1  # at most ten redraws a second


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()
F = TypeVar("F", bound=Callable[..., Any])


class Ctx:
    def __init__(self, directory: Path, color: bool, verbose: int, debug: bool,
                 variables: dict[str, str] | None = None):
        self.directory = directory
        self.color = color
        self.verbose = verbose
        self.debug = debug
        self.variables = variables or {}
        self.tty = _stderr_is_tty()
        self._progress: ProgressLine | None = None

    @property
    def progress(self) -> ProgressLine:
        """The transient status line on stderr (draws nothing unless stderr is a terminal)."""
        if self._progress is None:
            from ftops.render.progress import ProgressLine

            self._progress = ProgressLine(sys.stderr, enabled=self.tty, delay=PROGRESS_DELAY,
                                          interval=PROGRESS_INTERVAL)
        return self._progress

    def style(self, text: str, **kw: Any) -> str:
        return click.style(text, **kw) if self.color else text

    def workspace(self) -> Workspace:
        from ftops.workspace import Workspace

        check_state_dir(self.directory)
        return Workspace(self.directory, variables=self.variables, hooks=_CliHooks(self))  # type: ignore[arg-type]


# What ftops keeps under .ftops/, and what each must be; anything else in its place is refused up
# front with its path and a fix, instead of an OSError from deep inside the run.
_STATE_DIR_LAYOUT: tuple[tuple[str, bool], ...] = (
    ("", True), ("state.json", False), ("state.json.backup", False), ("state.lock", False),
    ("sandbox.db", False), ("cache", True), ("cache/datasets", True), ("cache/crosscheck", True),
    ("cache/hashes.json", False),
)


def check_state_dir(directory: Path) -> None:
    """Refuse a misshapen `.ftops/` (a file where a directory belongs, or the reverse)."""
    base = Path(directory) / ".ftops"
    diags: list[Diagnostic] = []
    for rel, is_dir in _STATE_DIR_LAYOUT:
        p = base / rel if rel else base
        try:
            st = p.lstat() if not p.is_symlink() else p.stat()
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue  # a parent is a file: reported for the parent
        except OSError as exc:
            diags.append(_os_error_diagnostic(exc))
            continue
        ok = stat.S_ISDIR(st.st_mode) if is_dir else stat.S_ISREG(st.st_mode)
        if not ok:
            want = "a directory" if is_dir else "a regular file"
            diags.append(error(
                "workspace.misshapen", f"{p} is not {want}",
                f"ftops keeps its state, lock and caches in {base}; {p.name} must be {want}.",
                hint=f"move it out of the way (`mv {p} {p}.old`); ftops recreates what it needs"))
    if diags:
        raise FtopsError(diags)


_IO_ERRORS = {
    errno.EACCES: ("io.permission_denied", "make it readable and writable by this user, or run from a copy"),
    errno.EPERM: ("io.permission_denied", "make it readable and writable by this user, or run from a copy"),
    errno.EROFS: ("io.read_only", "the file system is read-only: run from a writable copy of the project"),
    errno.ENOSPC: ("io.disk_full", "free some disk space and run the command again"),
    errno.EDQUOT: ("io.disk_full", "free some disk space (quota exceeded) and run the command again"),
    errno.EISDIR: ("io.is_a_directory", "a directory is where ftops expects a file: move it away"),
    errno.ENOTDIR: ("io.not_a_directory", "a file is where ftops expects a directory: move it away"),
    errno.ELOOP: ("io.symlink_loop", "a symbolic link points back at itself: point it at the real file"),
}


def _os_error_diagnostic(exc: OSError) -> Diagnostic:
    """An I/O error that escaped every layer, as a diagnostic naming the file and a fix."""
    code, hint = _IO_ERRORS.get(exc.errno or 0, ("io.error", "check the file and the disk it is on"))
    where = exc.filename if exc.filename is not None else "a file"
    return error(code, f"{exc.strerror or type(exc).__name__}: {where}",
                 f"errno {exc.errno}" + (f"; while renaming to {exc.filename2}" if exc.filename2 else "") + ".",
                 hint=hint)


pass_ctx = click.make_pass_decorator(Ctx)


class _Run:
    """What the one error handler needs to know about the command that failed."""

    def __init__(self) -> None:
        self.json = False
        self.command = ""


_RUN = _Run()


def _note_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        _RUN.json = True
        _RUN.command = ctx.command_path.partition(" ")[2] or ctx.command_path
    return value


def json_option(help: str = "Machine-readable output: exactly one JSON document on stdout, errors included."
                ) -> Callable[[F], F]:
    """`--json` for any command: also tells the error handler to answer in JSON."""
    return click.option("--json", "as_json", is_flag=True, help=help, callback=_note_json)


def error_document(diags: list[Diagnostic], exit_code: int, command: str) -> dict[str, Any]:
    """What `--json` prints when a command fails: the same shape for every command.

    `ok` is false, `exit_code` is the process's exit code, and `diagnostics` holds every problem
    (code, severity, summary, detail, range {filename, line, column}, hint, address).
    """
    doc: dict[str, Any] = {"command": command, "ok": False, "exit_code": exit_code,
                           "diagnostics": [d.to_json() for d in dict.fromkeys(diags)]}
    if command == "validate":
        doc["valid"] = False  # the key a successful `validate --json` consumer reads
    return doc


def _echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False))


class FiniteFloat(click.ParamType):  # type: ignore[type-arg]
    """A float flag that refuses `nan` and `inf` (click's FLOAT takes both, and `--max-cost nan`
    compares false with everything, silently disabling the budget)."""

    name = "number"

    def __init__(self, minimum: float | None = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"{value!r} is below {self.minimum:g}", param, ctx)
        return number


NUMBER = FiniteFloat()


def print_diagnostics(diags: list[Diagnostic], *, color: bool = False, base: Path | None = None,
                      source_lines: list[str] | None = None) -> None:
    """Errors first, at most MAX_PER_CODE of one code per file, with the YAML source line.

    `source_lines` (from a config error: secrets already redacted) serves every config diagnostic,
    so an inline API key is never echoed back from the file.
    """
    counts: dict[tuple[str, str], int] = {}
    hidden: dict[tuple[str, str], int] = {}
    cache: dict[str, list[str] | None] = {}
    unique = list(dict.fromkeys(diags))  # one dataset checked for two models reports twice
    for d in sorted(unique, key=lambda d: (not d.is_error)):
        key = (d.code, d.range.filename if d.range else "")
        counts[key] = counts.get(key, 0) + 1
        if counts[key] > MAX_PER_CODE:
            hidden[key] = hidden.get(key, 0) + 1
            continue
        lines = None
        if d.range and d.code.startswith("config."):
            lines = source_lines
        elif d.range and not d.range.filename.endswith(".jsonl"):
            fn = d.range.filename
            if fn not in cache:
                p = Path(fn) if Path(fn).is_absolute() or base is None else base / fn
                try:
                    cache[fn] = p.read_text(errors="replace").splitlines() if p.stat().st_size < 2**20 else None
                except OSError:
                    cache[fn] = None
            lines = cache[fn]
        text = format_diagnostic(d, lines)
        if color:
            first, _, rest = text.partition("\n")
            first = click.style(first, fg="red" if d.is_error else "yellow", bold=d.is_error)
            text = first + ("\n" + rest if rest else "")
        click.echo(text, err=True)
    for (code, fn), n in sorted(hidden.items()):
        click.echo(f"  … and {n} more {code} in {fn or 'the config'}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              help="Run as if started in DIR (where ftops.yaml is).")
@click.option("--no-color", is_flag=True, help="Plain output (also when NO_COLOR is set or not a TTY).")
@click.option("-v", "--verbose", count=True, help="Log requests (method, path, status; never keys). -vv: debug.")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.option("--var", "var_args", multiple=True, metavar="KEY=VALUE", callback=lambda ctx, p, v: _parse_vars(v),
              help="Override `vars.KEY` in ftops.yaml (repeatable; `42`, `0.5`, `true` are typed).")
@click.version_option(__version__, prog_name="ftops")
@click.pass_context
def cli(ctx: click.Context, directory: Path, no_color: bool, verbose: int, debug: bool,
        var_args: dict[str, str]) -> None:
    """ftops: config-as-code for fine-tuned models."""
    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    c = Ctx(directory, color, verbose, debug, var_args)
    if verbose:
        handler = _ClearingHandler(c, sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO, handlers=[handler])
        logging.getLogger("ftops").setLevel(logging.DEBUG)
        # ftops.http already logs each request once; httpx's own lines only under -vv.
        logging.getLogger("httpx").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    ctx.obj = c
    if not verbose:
        _show_retries(ctx.obj)


class _ClearingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """`-v` log lines on stderr, each after erasing the progress line so the two never share a line."""

    def __init__(self, c: Ctx, stream: Any) -> None:
        super().__init__(stream)
        self.c = c

    def emit(self, record: logging.LogRecord) -> None:
        self.c.progress.clear()
        super().emit(record)


class _RetryLine(logging.Handler):
    """Provider retries on the progress line: a refused connection is retried for seconds, never silently.

    The provider logs each retry on `ftops.http` (`-v` prints those as lines); on a terminal without
    `-v` the latest one is shown in place.
    TODO(lead): a retry callback on the provider would be sturdier than reading its log records.
    """

    def __init__(self, c: Ctx) -> None:
        super().__init__(logging.DEBUG)
        self.c = c

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.msg if isinstance(record.msg, str) else ""
        if msg.startswith("retrying "):
            self.c.progress.update("retry", f"no answer yet: {record.getMessage()}", now=True)
        elif msg.startswith("giving up"):
            self.c.progress.clear()


def _show_retries(c: Ctx) -> None:
    log = logging.getLogger("ftops.http")
    for h in [h for h in log.handlers if isinstance(h, _RetryLine)]:
        log.removeHandler(h)  # in-process runs (tests) call the CLI more than once
    if c.tty:
        log.addHandler(_RetryLine(c))
        if log.level == logging.NOTSET or log.level > logging.DEBUG:
            log.setLevel(logging.DEBUG)


def _parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, eq, text = v.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {v!r}", param_hint="--var")
        out[key.strip()] = text
    return out


# ---------------------------------------------------------------------- init / validate


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace ftops.yaml and the starter datasets if they exist.")
@pass_ctx
def init(c: Ctx, directory: Path | None, force: bool) -> None:
    """Create a working starter project on the sandbox in DIRECTORY (default: -C dir).

    Never replaces a file without --force; the project name is unique to this project.
    """
    from ftops.starter import write_starter

    target = directory or c.directory
    for path in write_starter(target, force=force):
        click.echo(f"created {path}")
    click.echo(f"\nNext: cd {target} && ftops plan && ftops apply")


@cli.command()
@json_option(help="Machine-readable result.")
@pass_ctx
def validate(c: Ctx, as_json: bool) -> None:
    """Check ftops.yaml and every dataset it names. Sends nothing."""
    ws = c.workspace()
    loaded = ws.loaded
    desired = ws.desired()  # the same dataset stage as plan: hashes, checks, train/validation overlap
    paths = {ds.sha256: ds.path for m in desired.models for ds in m.datasets}
    reports = [(paths[sha], r) for (sha, *_), r in desired.reports.items()]
    # dict.fromkeys: a file checked for two base models reports the same problem twice
    diags: list[Diagnostic] = list(dict.fromkeys([
        *loaded.warnings, *desired.dataset_diagnostics(set(desired.diagnostics_by_sha)), *desired.warnings,
        *ws.base_model_warnings(desired)]))
    ok = not any(d.is_error for d in diags)
    if as_json:
        _echo_json({"valid": ok, "config": str(loaded.path),
                    "datasets": [dict(r.to_json(), path=rel) for rel, r in reports],
                    "diagnostics": [d.to_json() for d in diags]})
    else:
        print_diagnostics(diags, color=c.color, base=loaded.root, source_lines=loaded.source_lines)
        n_models = len(loaded.config.models)
        verdict = c.style("valid", fg="green") if ok else c.style("invalid", fg="red")
        click.echo(f"{loaded.path.name}: {verdict} — {n_models} model(s), {len(reports)} dataset check(s), "
                   f"{sum(d.is_error for d in diags)} error(s), {sum(not d.is_error for d in diags)} warning(s)")
    if not ok:
        raise click.exceptions.Exit(1)


# ---------------------------------------------------------------------- plan / apply


@cli.command()
@json_option(help="Machine-readable plan.")
@click.option("--markdown", is_flag=True, help="Markdown, for pull-request comments: one document, or its parts "
              "one after another when it is too long for one comment (each part starts with its marker).")
@click.option("--out-dir", "md_dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --markdown: write the parts (each under GitHub's comment limit) to DIR/plan-1.md, "
                   "plan-2.md, … instead of printing them; older plan-N.md files there are removed.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0: no changes, 1: error, 2: changes.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan to FILE; `ftops apply FILE` applies exactly it.")
@click.option("--offline", is_flag=True, help="Plan from the state file alone; no request is sent.")
@click.option("--state", "state_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Plan from this state snapshot (`ftops state pull` output) instead of the configured backend.")
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Plan only this model and what it depends on (repeatable).")
@click.option("--replace", "replaces", multiple=True, metavar="NAME",
              help="Plan a retrain of this model: same data and seed, a new job (repeatable).")
@click.option("--prune", is_flag=True, help="Also plan deleting orphans' jobs and models, older fine-tuned models, "
                                          "unused uploaded files and deployments no declaration wants.")
@pass_ctx
def plan(c: Ctx, as_json: bool, markdown: bool, md_dir: Path | None, detailed_exitcode: bool, out: Path | None,
         offline: bool, state_file: Path | None, targets: tuple[str, ...], replaces: tuple[str, ...],
         prune: bool) -> None:
    """Show what apply would upload, create or replace, and what it will cost."""
    from ftops.render import plan_json, plan_markdown_parts, plan_text
    from ftops.state import LocalBackend, write_private_file

    if md_dir is not None and not markdown:
        raise click.UsageError("--out-dir writes the Markdown parts: use it with --markdown")
    ws = c.workspace()
    if state_file is not None:
        ws.__dict__["store"] = LocalBackend(state_file.resolve())  # read-only here: plan never saves
    try:
        res = ws.plan(offline=offline, target=frozenset(targets), replace=frozenset(replaces), prune=prune)
    finally:
        ws.close()
    relevant = _relevant_warnings(res)
    if out is not None:
        write_private_file(out, res.plan.model_dump_json(indent=2).encode() + b"\n")
    if as_json:
        doc = plan_json(res.plan)
        doc["diagnostics"] = [d.to_json() for d in relevant]
        _echo_json(doc)
    elif markdown:
        parts = plan_markdown_parts(res.plan, relevant)
        if md_dir is None:
            click.echo("\n".join(parts), nl=False)
        else:
            _write_markdown_parts(md_dir, parts)
            click.echo(f"Wrote the plan as {len(parts)} Markdown part(s) to {md_dir}: "
                       + ", ".join(f"plan-{i}.md" for i in range(1, len(parts) + 1)) + ".", err=True)
    else:
        print_diagnostics(relevant, color=c.color, base=ws.root, source_lines=ws.loaded.source_lines)
        click.echo(plan_text(res.plan, c.style))
    if out is not None and not as_json:
        click.echo(f"Saved the plan to {out}; apply it with `ftops apply {out}`.", err=markdown)
    if detailed_exitcode and res.plan.has_changes:
        raise click.exceptions.Exit(2)


def _write_markdown_parts(directory: Path, parts: list[str]) -> None:
    """DIR/plan-1.md … plan-N.md, and no plan-K.md left from a longer plan (the workflow posts each file)."""
    import re

    try:
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("plan-*.md"):
            if re.fullmatch(r"plan-[0-9]+\.md", old.name):
                old.unlink()
        for i, part in enumerate(parts, 1):
            (directory / f"plan-{i}.md").write_text(part, encoding="utf-8")
    except OSError as e:
        raise FtopsError(error("plan.write_failed", "cannot write the Markdown plan",
                               f"{directory}: {e.strerror or e}.", hint="check the directory and free space"))


def _relevant_warnings(res: Any) -> list[Diagnostic]:
    shas = {sha for m in res.plan.models if m.action.creates_job for sha in m.datasets}
    # dict.fromkeys: a file checked for two base models reports the same problem twice
    return list(dict.fromkeys([d for d in res.desired.dataset_diagnostics(shas) if not d.is_error]
                              + list(res.desired.warnings)))


class _Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds (`90`, `2.5`) or a duration with a unit (`30s`, `5m`, `1h`)."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        import math
        import re

        if isinstance(value, (int, float)):
            return float(value)
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*", str(value))
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2) or "s"] if m else math.nan
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a duration (a finite one): use seconds (90) or 30s, 5m, 1h", param, ctx)
        return seconds


_DURATION = _Duration()


@contextlib.contextmanager
def _naming_actions(executor: Callable[[], Any]) -> Iterator[None]:
    """A failed state save (disk full, I/O error) names the remote actions this run already took."""
    from ftops.state import StateWriteError

    try:
        yield
    except StateWriteError as e:
        ex = executor()
        raise (e.with_actions(ex.uploaded, ex.created) if ex is not None else e) from None


def _say_waiting(store: Any) -> Any:
    def on_wait(holder: Any) -> None:
        click.echo(f"waiting for the state lock on {store.location}: held by {holder.describe()} …", err=True)
    return on_wait


class _CliHooks:
    """Prints one line per step; plain text so CI logs stay readable."""

    def __init__(self, c: Ctx, quiet: bool = False):
        self.c = c
        self.quiet = quiet
        self._last_pct: dict[str, int] = {}

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.c.progress.clear()
            click.echo(text, err=True)

    def dataset_progress(self, path: str, stage: str, done: int, total: int) -> None:
        if done >= total:
            self.c.progress.clear()
        else:
            self.c.progress.update(f"{stage} {path}", f"{stage} {path}", done, total)

    def upload_started(self, f: Any) -> None:
        from ftops.render import human_bytes

        self._say(f"uploading {P(f.path)} ({human_bytes(f.bytes)}) …")

    def upload_progress(self, f: Any, sent: int, total: int) -> None:
        if self.c.tty:
            self.c.progress.update(f"upload {f.sha256}", f"uploading {f.path}", sent, total)
            return
        if total < 64 * 2**20:  # without a terminal: a line per 10% of large files only
            return
        pct = int(100 * sent / max(total, 1)) // 10 * 10
        if pct != self._last_pct.get(f.sha256):
            self._last_pct[f.sha256] = pct
            self._say(f"  {P(f.path)}: {pct}%")

    def upload_finished(self, f: Any, remote: Any, adopted: bool) -> None:
        how = "found already uploaded as" if adopted else "uploaded as"
        self._say(self.c.style(f"  {P(f.path)} {how} {P(remote.id)}", fg="green"))

    def job_started(self, m: Any) -> None:
        self._say(f"creating job for {m.address} …")

    def job_finished(self, m: Any, job: Any, adopted: bool) -> None:
        how = "adopted existing job" if adopted else "created job"
        self._say(self.c.style(f"  {m.address}: {how} {P(job.id)} ({P(job.status)})", fg="green"))

    def duplicate_cancelled(self, model: str, job_id: str, kept: str) -> None:
        self._say(self.c.style(f"  models.{model}: cancelled duplicate job {P(job_id)} (kept {P(kept)})", fg="yellow"))

    def waiting(self, seconds: float, why: str) -> None:
        self._say(f"  waiting {seconds:.1f}s: {P(why)}")

    def retrying(self, what: str, why: str) -> None:
        self._say(self.c.style(f"  retrying {P(what)}: {P(why)}", fg="yellow"))

    def deployment_done(self, address: str, what: str) -> None:
        self._say(f"  {P(address)}: {P(what)}")

    def state_saved(self, serial: int) -> None:
        if self.c.verbose:
            self._say(f"  state saved (serial {serial})")


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (required without a TTY).")
@click.option("--max-cost", type=NUMBER, help="Refuse a plan whose estimated cost exceeds USD.")
@click.option("--max-wait", type=NUMBER, default=60.0, show_default=True,
              help="Longest rate-limit wait (s) before stopping cleanly.")
@click.option("--lock-timeout", type=_DURATION, default="0",
              help="Wait up to this long for another run's lock: seconds, or 30s, 5m, 1h.")
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Apply only this model and what it depends on (repeatable).")
@click.option("--replace", "replaces", multiple=True, metavar="NAME",
              help="Retrain this model with the same data and seed: a new job, history kept (repeatable).")
@click.option("--wait", is_flag=True, help="Follow the jobs this apply started until they end; exit 1 if one "
                                          "failed; then run their `tests:`.")
@click.option("--interval", type=NUMBER, default=2.0, show_default=True, help="Seconds between polls (--wait).")
@click.option("--prune", is_flag=True, help="Also delete what `plan --prune` shows.")
@json_option(help="Print the result as JSON.")
@pass_ctx
def apply(c: Ctx, plan_file: Path | None, auto_approve: bool, max_cost: float | None, max_wait: float,
          lock_timeout: float, targets: tuple[str, ...], replaces: tuple[str, ...], wait: bool, interval: float,
          prune: bool, as_json: bool, destroy: frozenset[str] | None = None) -> None:
    """Upload changed datasets and create missing jobs, then save the state."""
    rounds: list[dict[str, Any]] = []
    # Chains under --wait: once the upstream jobs succeeded, plan and apply again for the models that
    # waited for them (never replacing anything twice); a chain of n models takes at most n rounds.
    for _ in range(len(c.workspace().loaded.config.models) + 1):
        result = _apply_once(c, plan_file, auto_approve, max_cost, max_wait, lock_timeout, targets, replaces, wait,
                             interval, prune, as_json, destroy)
        if result is None:
            return
        rounds.append(result)
        if not (wait and result.get("waiting")):
            break
        plan_file, replaces = None, ()
        if not as_json:
            click.echo("\nThe upstream jobs succeeded: planning the models that waited for them.")
    if as_json:
        _echo_json(rounds[0] if len(rounds) == 1 else {**rounds[-1], "rounds": rounds})


def _apply_once(c: Ctx, plan_file: Path | None, auto_approve: bool, max_cost: float | None, max_wait: float,
                lock_timeout: float, targets: tuple[str, ...], replaces: tuple[str, ...], wait: bool,
                interval: float, prune: bool, as_json: bool, destroy: frozenset[str] | None
                ) -> dict[str, Any] | None:
    from ftops.engine.apply import Executor
    from ftops.engine.model import Plan
    from ftops.render import money, plan_json, plan_text
    ws = c.workspace()
    root = ws.root
    store = ws.store
    print_diagnostics(store.warnings, color=c.color)
    ex: Any = None
    with _naming_actions(lambda: ex), store.locked("apply", timeout=lock_timeout, on_wait=_say_waiting(store)):
        try:
            res = ws.plan(target=frozenset(targets), replace=frozenset(replaces), prune=prune or bool(
                plan_file and load_saved_plan(plan_file).deletes), destroy=destroy)
            plan_ = res.plan
            if plan_file is not None:
                saved = load_saved_plan(plan_file)
                from ftops.workspace import check_saved_plan

                check_saved_plan(saved, plan_)
            relevant = _relevant_warnings(res)
            if not as_json:
                print_diagnostics(relevant, color=c.color, base=root, source_lines=ws.loaded.source_lines)
                click.echo(plan_text(plan_, c.style))
            if plan_.has_changes:
                if max_cost is not None and (plan_.cost_usd is None or plan_.cost_usd > max_cost):
                    raise FtopsError(error(
                        "apply.over_budget", "the plan costs more than --max-cost",
                        f"estimated {money(plan_.cost_usd, plan_.cost_approximate)}, budget ${max_cost:,.2f}; "
                        "nothing was sent.", hint="raise --max-cost or change the plan"))
                if not auto_approve and plan_file is None:
                    if not sys.stdin.isatty():
                        raise FtopsError(error(
                            "apply.needs_approval", "apply needs approval",
                            "standard input is not a terminal, so ftops cannot ask; nothing was sent.",
                            hint="review `ftops plan`, then run `ftops apply --auto-approve`"))
                    if not click.confirm("\nApply this plan?", default=False):
                        click.echo("Apply cancelled; nothing was sent.")
                        return None
            stop = {"flag": False}

            def on_sigint(signum: int, frame: Any) -> None:
                if stop["flag"]:
                    raise KeyboardInterrupt
                stop["flag"] = True
                click.echo("\ninterrupt: stopping after the request in flight (Ctrl-C again to abort now)",
                           err=True)

            old = signal.signal(signal.SIGINT, on_sigint)
            try:
                ex = Executor(ws.providers(), ws.store, res.state, root=root, hooks=_CliHooks(c, as_json),  # type: ignore[arg-type]
                              settle_seconds=0.2 if all(p.sandbox for p in ws.providers().values()) else 3.0,
                              hash_cache=ws.hash_cache, max_wait=max_wait, should_stop=lambda: stop["flag"],
                              locate=lambda name, keys: ws.loaded.range_of("models", name, *keys),
                              cache_dir=ws.ftops_dir / "cache")
                ex.run(plan_, res.snapshot)
            finally:
                signal.signal(signal.SIGINT, old)
        finally:
            ws.close()
    store.close()
    s = plan_.summary
    result: dict[str, Any] = {"uploaded": len(ex.uploaded), "created": len(ex.created), "adopted": s.adopt,
                              "uploaded_files": list(ex.uploaded), "created_jobs": list(ex.created),
                              "cancelled_jobs": list(ex.cancelled),
                              "state_serial": ex.state.serial, "plan": plan_json(plan_),
                              "diagnostics": [d.to_json() for d in relevant]}
    if not as_json:
        click.echo(c.style(f"Apply complete: {len(ex.uploaded)} uploaded, {len(ex.created)} created"
                           f"{f', {s.adopt} adopted' if s.adopt else ''}. State serial {ex.state.serial}.",
                           bold=True))
    waiting = {m.name: m.waits_for or "" for m in plan_.models if m.name in ex.waiting}
    result["waiting"] = waiting
    if not as_json:
        for n, up in sorted(waiting.items()):
            click.echo(f"models.{n} waits for models.{up}: its job is created once models.{up}'s job succeeded"
                       + ("." if wait else " (run `ftops apply` again then, or use `--wait`)."))
    if wait:
        from ftops.cli_ops import wait_after_apply

        started = {m.name for m in plan_.models if m.action.creates_job and m.name not in waiting}
        wait_after_apply(c, ws, started | set(waiting.values()), result, as_json=as_json, interval=interval,
                         lock_timeout=lock_timeout)
    return result


@cli.command()
@click.option("--target", "targets", multiple=True, metavar="NAME", help="Destroy only this model (repeatable).")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (required without a TTY).")
@json_option(help="Print the result as JSON.")
@click.pass_context
def destroy(ctx: click.Context, targets: tuple[str, ...], auto_approve: bool, as_json: bool) -> None:
    """Delete what ftops manages in this project (cancel jobs, delete fine-tuned models and uploaded
    files), after showing it and asking; `lifecycle.prevent_destroy` blocks it."""
    ctx.invoke(apply, auto_approve=auto_approve, as_json=as_json, destroy=frozenset(targets),
               plan_file=None, max_cost=None, max_wait=60.0, lock_timeout=0.0, targets=(), replaces=(),
               wait=False, interval=2.0, prune=False)


# ---------------------------------------------------------------------- state views


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@json_option()
@click.option("--offline", is_flag=True, help="The state file as written (no job status is refreshed).")
@pass_ctx
def show(c: Ctx, plan_file: Path | None, as_json: bool, offline: bool) -> None:
    """Print the state (what ftops knows it created, job statuses refreshed for display; nothing is
    written), or a plan saved with `plan --out PLAN_FILE`."""
    if plan_file is not None:
        _show_plan(c, plan_file, as_json)
        return
    from ftops.engine.operate import refresh_history

    ws = c.workspace()
    state = ws.load_state()
    if not offline and state.models:
        try:
            refresh_history(state, {j.id: j for j in ws.snapshot(state).jobs})
        finally:
            ws.close()
    if as_json:
        _echo_json(state.model_dump(mode="json"))
        return
    click.echo(P(f"state {ws.store.location} · serial {state.serial} · lineage {state.lineage}"))
    click.echo(P(f"project {state.project or '-'} · endpoint {state.endpoint or '-'}"))
    click.echo(f"\nfiles ({len(state.files)}):")
    for f in sorted(state.files.values(), key=lambda f: f.path):
        click.echo(P(f"  {f.file_id}  {f.path or f.filename}  {f.bytes} B  sha256 {f.sha256[:12]}…"))
    click.echo(f"\nmodels ({len(state.models)}):")
    for m in sorted(state.models.values(), key=lambda m: m.name):
        job = m.job
        click.echo(P(f"  {m.name}  fingerprint {m.fingerprint[:12]}…  seed {m.seed}"))
        if job:
            click.echo(P(f"    job {job.job_id} {job.status}" + (f" → {job.fine_tuned_model}" if job.fine_tuned_model else "")))
        for h in m.history:
            click.echo(P(f"    earlier: {h.job_id} {h.status}" + (f" → {h.fine_tuned_model}" if h.fine_tuned_model else "")))
    if state.intents:
        click.echo(f"\npending intents ({len(state.intents)}): resolved by the next plan or apply")


def load_saved_plan(path: Path) -> Any:
    """A plan saved by `plan --out`, or an FtopsError saying why it cannot be read."""
    from pydantic import ValidationError

    from ftops.engine.model import Plan

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FtopsError(error("plan.unreadable", f"cannot read the saved plan {path}",
                               str(getattr(exc, "strerror", None) or exc),
                               hint="pass the file written by `ftops plan --out FILE`")) from None
    try:
        return Plan.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise FtopsError(error("plan.invalid", f"{path} is not an ftops saved plan",
                               f"{where}: {first['msg']} ({exc.error_count()} problem(s)).",
                               hint="pass the file written by `ftops plan --out FILE`")) from None


def _show_plan(c: Ctx, path: Path, as_json: bool) -> None:
    from ftops.render import plan_json, plan_text

    saved = load_saved_plan(path)
    if as_json:
        _echo_json(plan_json(saved))
        return
    click.echo(f"saved plan {path} · built from state serial {saved.state_serial} · lineage "
               f"{saved.state_lineage or '-'} · apply it with `ftops apply {path}`\n")
    click.echo(plan_text(saved, c.style))


# ---------------------------------------------------------------------- dataset / sandbox


@cli.group()
def dataset() -> None:
    """Work with dataset files."""


@dataset.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--model", "base_model", help="Base model (picks the tokenizer and token limit).")
@click.option("--method", type=click.Choice(["supervised", "dpo", "reinforcement"]), default="supervised",
              show_default=True)
@click.option("--allow-secret", "allow_secrets", multiple=True, metavar="ID",
              help="Accept a secret finding by its id (sha256:…), as `allow_secrets:` in ftops.yaml does.")
@json_option()
@pass_ctx
def dataset_check(c: Ctx, files: tuple[Path, ...], base_model: str | None, method: str,
                  allow_secrets: tuple[str, ...], as_json: bool) -> None:
    """Validate JSONL files and count their tokens. Sends nothing."""
    from ftops.datasets import check_dataset

    reports = []
    diags: list[Diagnostic] = []
    for f in files:
        r = check_dataset(f, method=method, base_model=base_model).accepting(allow_secrets)
        reports.append(r)
        diags.extend(r.diagnostics(str(f)))
    ok = all(r.valid for r in reports)
    if as_json:
        _echo_json([r.to_json() for r in reports])
    else:
        print_diagnostics(diags, color=c.color)
        for r in reports:
            st = r.stats
            verdict = c.style("valid", fg="green") if r.valid else c.style("invalid", fg="red")
            approx = " (approximate)" if st.approximate else ""
            click.echo(f"{P(r.path)}: {verdict} · {r.format} · {st.examples} examples · {st.tokens_total:,} tokens"
                       f"{approx} (min {st.tokens_min}, mean {st.tokens_mean:.0f}, max {st.tokens_max}) · "
                       f"{st.examples_over_limit} over the limit · {len(r.errors)} errors, {len(r.warnings)} warnings")
    if not ok:
        raise click.exceptions.Exit(1)


@cli.group()
def sandbox() -> None:
    """The built-in emulator of providers' fine-tuning APIs (OpenAI, Together AI)."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path(".ftops/sandbox.db"),
              show_default=True)
@click.option("--time-scale", type=FiniteFloat(minimum=None), help="Speed-up factor (default $FTOPS_SANDBOX_TIME_SCALE or 1).")
@click.option("--faults", help="e.g. error_rate=0.2,lost_response_rate=0.1,seed=7 (default $FTOPS_SANDBOX_FAULTS).")
@click.option("--api-key", "api_keys", multiple=True, help="Accepted key (repeatable; default: any).")
@click.option("--limit", "limits", multiple=True, metavar="NAME=N",
              help="Override a limit (repeatable; N=none removes it): max_active_jobs_per_model (3), "
                   "job_creates_per_day (48), job_creates_per_hour (none), file_uploads_per_hour (none), "
                   "max_running_jobs (3), max_json_body_bytes, max_json_depth, read_timeout_s, file_processing_s. "
                   "Rate-limit windows shrink with --time-scale.")
def sandbox_serve(host: str, port: int, db: Path, time_scale: float | None, faults: str | None,
                  api_keys: tuple[str, ...], limits: tuple[str, ...]) -> None:
    """Serve every sandbox dialect on one port: OpenAI at /v1 (point OPENAI_BASE_URL or the openai SDK
    at it), Together AI at /together/v1 (the together SDK takes base_url http://HOST:PORT/together), Azure OpenAI's
    v1 API at /azure/openai/v1 (ARM deployments at /azure/management) and Nebius at /nebius/v1."""
    from ftops.sandbox import serve
    from ftops.sandbox.settings import parse_limits

    parsed = parse_limits(limits)
    db.parent.mkdir(parents=True, exist_ok=True)
    serve(host=host, port=port, db_path=db, time_scale=time_scale,
          faults=faults if faults is not None else os.environ.get("FTOPS_SANDBOX_FAULTS"),
          api_keys=list(api_keys) or None, echo=lambda s: click.echo(s, err=True), limits=parsed)


# ---------------------------------------------------------------------- state backends and locks


@cli.command("force-unlock")
@click.argument("lock_id")
@pass_ctx
def force_unlock(c: Ctx, lock_id: str) -> None:
    """Break the state lock LOCK_ID that a crashed run left behind (the id is in the lock error)."""
    store = c.workspace().store
    store.force_unlock(lock_id)
    click.echo(f"Released lock {lock_id} on {store.location}.")


@cli.group("state")
def state_group() -> None:
    """Read the state, or move it between backends."""


@state_group.command("pull")
@pass_ctx
def state_pull(c: Ctx) -> None:
    """Print the current state as JSON (from whichever backend ftops.yaml names)."""
    _echo_json(c.workspace().store.load().model_dump(mode="json"))


@state_group.command("migrate")
@click.option("--to", "to", type=click.Choice(["local", "postgres", "s3"]), required=True,
              help="The backend to copy the state into.")
@click.option("--url-env", default="FTOPS_STATE_PG_URL", show_default=True,
              help="postgres: variable holding the postgresql:// URL.")
@click.option("--key", help="postgres: the state's name in the database (default: the project).")
@click.option("--bucket", help="s3: bucket.")
@click.option("--s3-key", default="ftops/state.json", show_default=True, help="s3: object key.")
@click.option("--region", help="s3: region.")
@click.option("--endpoint-url-env", help="s3: variable holding an S3-compatible endpoint URL.")
@click.option("--force", is_flag=True, help="Overwrite a different state already at the destination.")
@pass_ctx
def state_migrate(c: Ctx, to: str, url_env: str, key: str | None, bucket: str | None, s3_key: str,
                  region: str | None, endpoint_url_env: str | None, force: bool) -> None:
    """Copy the state (serial, lineage, records, history, intents) to another backend, under both locks."""
    from types import SimpleNamespace

    from ftops.state import open_backend

    ws = c.workspace()
    if to == "s3" and not bucket:
        raise click.UsageError("--to s3 needs --bucket")
    s3 = SimpleNamespace(bucket=bucket, key=s3_key, region=region, endpoint_url_env=endpoint_url_env)
    target = open_backend(SimpleNamespace(backend=to, url_env=url_env, key=key, s3=s3 if to == "s3" else None),
                          root=ws.root, project=ws.project, environ=ws.environ)
    source = ws.store
    if target.location == source.location:
        raise FtopsError(error("state.migrate_same", "the destination is the current backend",
                               f"{source.location} is where the state already is; nothing was copied."))
    print_diagnostics(target.warnings, color=c.color)
    with source.locked("migrate"), target.locked("migrate"):
        state = source.load()
        there = target.load()
        if there.serial and there.lineage != state.lineage and not force:
            raise FtopsError(error(
                "state.migrate_exists", "the destination already holds another state",
                f"{target.location} has lineage {there.lineage} at serial {there.serial}; the source has "
                f"{state.lineage} at serial {state.serial}. Nothing was copied.",
                hint="pick another key, or pass --force to overwrite it"))
        target.replace(state)
        back = target.load()
        if back.model_dump(mode="json") != state.model_dump(mode="json"):
            raise FtopsError(error("state.migrate_mismatch", "the copy differs from the source",
                                   f"reading {target.location} back did not give the state written; "
                                   f"{source.location} is unchanged.", hint="report this; keep using the source"))
    target.close()
    source.close()
    click.echo(f"Copied state serial {state.serial} (lineage {state.lineage}, {len(state.models)} model(s), "
               f"{len(state.files)} file(s)) from {source.location} to {target.location}.\n"
               f"Now set `state: backend: {to}` in ftops.yaml; the source was left as it was.")


def _register_operations() -> None:
    from types import SimpleNamespace

    from ftops.cli_ops import register

    register(cli, SimpleNamespace(json_option=json_option, echo_json=_echo_json,
                                  dumps_line=lambda doc: json.dumps(doc, sort_keys=True, ensure_ascii=False,
                                                                     allow_nan=False)))


_register_operations()


# ---------------------------------------------------------------------- entry point


_INTERRUPTED = error("cli.interrupted", "interrupted",
                     "Re-running resumes safely: pending actions are looked up on the provider first, so nothing "
                     "is created twice.")


def _interrupted() -> NoReturn:
    """Ctrl-C outside apply's own handler (lock, refresh, plan) or a second Ctrl-C ("abort now"): the
    state on disk is consistent and its intents cover the write in flight, so re-running is safe."""
    click.echo("Interrupted. Re-running resumes safely: pending actions are looked up on the provider "
               "first, so nothing is created twice.", err=True)
    sys.exit(130)


def _json_requested(args: list[str]) -> bool:
    """`--json` among the arguments: for errors raised before click processed the option."""
    head = args[: args.index("--")] if "--" in args else args
    return "--json" in head


def _command_name(args: list[str]) -> str:
    words = [a for a in args if not a.startswith("-")]
    names = set(cli.commands)
    for i, w in enumerate(words):
        if w in names:
            sub = cli.commands[w]
            if isinstance(sub, click.Group) and i + 1 < len(words) and words[i + 1] in sub.commands:
                return f"{w} {words[i + 1]}"
            return w
    return ""


def _fail(diags: list[Diagnostic], exit_code: int, *, color: bool, as_json: bool, command: str,
          source_lines: list[str] | None = None) -> NoReturn:
    if as_json:
        _echo_json(error_document(diags, exit_code, command))
    else:
        print_diagnostics(diags, color=color, base=Path.cwd(), source_lines=source_lines)
    sys.exit(exit_code)


def main(argv: list[str] | None = None) -> NoReturn:
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    color = "--no-color" not in args and "NO_COLOR" not in os.environ and sys.stderr.isatty()
    _RUN.json, _RUN.command = False, ""

    def as_json() -> bool:
        return _RUN.json or _json_requested(args)

    def command() -> str:
        return _RUN.command or _command_name(args)

    try:
        rv = cli.main(args=args, prog_name="ftops", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except FtopsError as e:
        _fail(e.diagnostics, e.exit_code, color=color, as_json=as_json(), command=command(),
              source_lines=getattr(e, "source_lines", None))
    except click.exceptions.Abort as e:
        # click turns a KeyboardInterrupt raised inside a command into Abort: treat it as Ctrl-C.
        if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):
            if as_json():
                _fail([_INTERRUPTED], 130, color=color, as_json=True, command=command())
            _interrupted()
        if as_json():
            _fail([error("cli.aborted", "aborted")], 1, color=color, as_json=True, command=command())
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as e:
        if as_json():
            _fail([error("cli.usage_error", e.format_message(),
                         hint="run `ftops --help` or `ftops COMMAND --help`")],
                  1, color=color, as_json=True, command=command())
        e.show()
        sys.exit(1)
    except KeyboardInterrupt:
        if as_json():
            _fail([_INTERRUPTED], 130, color=color, as_json=True, command=command())
        _interrupted()
    except OSError as e:
        print_diagnostics([_os_error_diagnostic(e)], color=color)
        sys.exit(1)
    except sqlite3.Error as e:
        print_diagnostics([error("sandbox.database", f"the sandbox database cannot be used: {e}",
                                 "The embedded sandbox keeps its jobs and files in .ftops/sandbox.db "
                                 "(or `provider.db`).", hint="check that the path is a writable file, or move "
                                 "it away to start a fresh sandbox")], color=color)
        sys.exit(1)
    except Exception as e:
        if debug:
            raise
        if as_json():
            _fail([error("internal.error", f"internal error: {type(e).__name__}: {e}",
                         hint="run with --debug for the traceback")], 1, color=color, as_json=True,
                  command=command())
        click.echo(f"ftops: internal error: {type(e).__name__}: {P(str(e))} (run with --debug for the traceback)",
                   err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()

