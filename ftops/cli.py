"""The `ftops` command line: parse, call the engine, render. Nothing imports this module.

One error handler (`main`): an FtopsError prints its diagnostics and exits with its code (1, or
130 for an interrupted apply); click usage errors exit 1; anything else prints one line, with the
traceback only under --debug. `plan --detailed-exitcode` exits 2 when there are changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ftops import __version__
from ftops.diagnostics import Diagnostic, FtopsError, error, format_diagnostic

if TYPE_CHECKING:
    from ftops.workspace import Workspace

MAX_PER_CODE = 5


class Ctx:
    def __init__(self, directory: Path, color: bool, verbose: int, debug: bool):
        self.directory = directory
        self.color = color
        self.verbose = verbose
        self.debug = debug

    def style(self, text: str, **kw: Any) -> str:
        return click.style(text, **kw) if self.color else text

    def workspace(self) -> Workspace:
        from ftops.workspace import Workspace

        return Workspace(self.directory)


pass_ctx = click.make_pass_decorator(Ctx)


def _echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))


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
@click.version_option(__version__, prog_name="ftops")
@click.pass_context
def cli(ctx: click.Context, directory: Path, no_color: bool, verbose: int, debug: bool) -> None:
    """ftops: config-as-code for fine-tuned models."""
    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    if verbose:
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO, stream=sys.stderr,
                            format="%(name)s: %(message)s")
        logging.getLogger("ftops").setLevel(logging.DEBUG)
        # ftops.http already logs each request once; httpx's own lines only under -vv.
        logging.getLogger("httpx").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    ctx.obj = Ctx(directory, color, verbose, debug)


# ---------------------------------------------------------------------- init / validate


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@pass_ctx
def init(c: Ctx, directory: Path | None) -> None:
    """Create a working starter project on the sandbox in DIRECTORY (default: -C dir)."""
    from ftops.starter import write_starter

    target = directory or c.directory
    for path in write_starter(target):
        click.echo(f"created {path}")
    click.echo(f"\nNext: cd {target} && ftops plan && ftops apply")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
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
        *loaded.warnings, *desired.dataset_diagnostics(set(desired.diagnostics_by_sha)), *desired.warnings]))
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan.")
@click.option("--markdown", is_flag=True, help="Markdown, for a pull-request comment.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0: no changes, 1: error, 2: changes.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan to FILE; `ftops apply FILE` applies exactly it.")
@click.option("--offline", is_flag=True, help="Plan from the state file alone; no request is sent.")
@click.option("--state", "state_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Plan from this state snapshot (`ftops state pull` output) instead of the configured backend.")
@pass_ctx
def plan(c: Ctx, as_json: bool, markdown: bool, detailed_exitcode: bool, out: Path | None, offline: bool,
         state_file: Path | None) -> None:
    """Show what apply would upload, create or replace, and what it will cost."""
    from ftops.render import plan_json, plan_markdown, plan_text
    from ftops.state import LocalBackend, write_private_file

    ws = c.workspace()
    if state_file is not None:
        ws.__dict__["store"] = LocalBackend(state_file.resolve())  # read-only here: plan never saves
    try:
        res = ws.plan(offline=offline)
    finally:
        ws.close()
    relevant = _relevant_warnings(res)
    if as_json:
        doc = plan_json(res.plan)
        doc["diagnostics"] = [d.to_json() for d in relevant]
        _echo_json(doc)
    elif markdown:
        click.echo(plan_markdown(res.plan), nl=False)
    else:
        print_diagnostics(relevant, color=c.color, base=ws.root, source_lines=ws.loaded.source_lines)
        click.echo(plan_text(res.plan, c.style))
    if out is not None:
        write_private_file(out, res.plan.model_dump_json(indent=2).encode() + b"\n")
        if not as_json:
            click.echo(f"Saved the plan to {out}; apply it with `ftops apply {out}`.", err=as_json or markdown)
    if detailed_exitcode and res.plan.has_changes:
        raise click.exceptions.Exit(2)


def _relevant_warnings(res: Any) -> list[Diagnostic]:
    shas = {sha for m in res.plan.models if m.action.creates_job for sha in m.datasets}
    return [d for d in res.desired.dataset_diagnostics(shas) if not d.is_error] + list(res.desired.warnings)


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
            self.fail(f"{value!r} is not a duration: use seconds (90) or 30s, 5m, 1h", param, ctx)
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
            click.echo(text, err=True)

    def upload_started(self, f: Any) -> None:
        from ftops.render import human_bytes

        self._say(f"uploading {f.path} ({human_bytes(f.bytes)}) …")

    def upload_progress(self, f: Any, sent: int, total: int) -> None:
        if total < 64 * 2**20:
            return
        pct = int(100 * sent / max(total, 1)) // 10 * 10
        if pct != self._last_pct.get(f.sha256):
            self._last_pct[f.sha256] = pct
            self._say(f"  {f.path}: {pct}%")

    def upload_finished(self, f: Any, remote: Any, adopted: bool) -> None:
        how = "found already uploaded as" if adopted else "uploaded as"
        self._say(self.c.style(f"  {f.path} {how} {remote.id}", fg="green"))

    def job_started(self, m: Any) -> None:
        self._say(f"creating job for {m.address} …")

    def job_finished(self, m: Any, job: Any, adopted: bool) -> None:
        how = "adopted existing job" if adopted else "created job"
        self._say(self.c.style(f"  {m.address}: {how} {job.id} ({job.status})", fg="green"))

    def duplicate_cancelled(self, model: str, job_id: str, kept: str) -> None:
        self._say(self.c.style(f"  models.{model}: cancelled duplicate job {job_id} (kept {kept})", fg="yellow"))

    def waiting(self, seconds: float, why: str) -> None:
        self._say(f"  waiting {seconds:.1f}s: {why}")

    def retrying(self, what: str, why: str) -> None:
        self._say(self.c.style(f"  retrying {what}: {why}", fg="yellow"))

    def state_saved(self, serial: int) -> None:
        if self.c.verbose:
            self._say(f"  state saved (serial {serial})")


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (required without a TTY).")
@click.option("--max-cost", type=float, help="Refuse a plan whose estimated cost exceeds USD.")
@click.option("--max-wait", type=float, default=60.0, show_default=True,
              help="Longest rate-limit wait (s) before stopping cleanly.")
@click.option("--lock-timeout", type=_DURATION, default="0",
              help="Wait up to this long for another run's lock: seconds, or 30s, 5m, 1h.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def apply(c: Ctx, plan_file: Path | None, auto_approve: bool, max_cost: float | None, max_wait: float,
          lock_timeout: float, as_json: bool) -> None:
    """Upload changed datasets and create missing jobs, then save the state."""
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
            res = ws.plan()
            plan_ = res.plan
            if plan_file is not None:
                saved = Plan.model_validate_json(plan_file.read_text())
                _check_saved_plan(saved, plan_)
            if not as_json:
                print_diagnostics(_relevant_warnings(res), color=c.color, base=root,
                                  source_lines=ws.loaded.source_lines)
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
                        return
            stop = {"flag": False}

            def on_sigint(signum: int, frame: Any) -> None:
                if stop["flag"]:
                    raise KeyboardInterrupt
                stop["flag"] = True
                click.echo("\ninterrupt: stopping after the request in flight (Ctrl-C again to abort now)",
                           err=True)

            old = signal.signal(signal.SIGINT, on_sigint)
            try:
                ex = Executor(ws.provider(), ws.store, res.state, root=root, hooks=_CliHooks(c, as_json),  # type: ignore[arg-type]
                              hash_cache=ws.hash_cache, max_wait=max_wait, should_stop=lambda: stop["flag"],
                              locate=lambda name, keys: ws.loaded.range_of("models", name, *keys))
                ex.run(plan_, res.snapshot)
            finally:
                signal.signal(signal.SIGINT, old)
        finally:
            ws.close()
    store.close()
    s = plan_.summary
    result = {"uploaded": len(ex.uploaded), "created": len(ex.created), "adopted": s.adopt,
              "state_serial": ex.state.serial, "plan": plan_json(plan_)}
    if as_json:
        _echo_json(result)
    else:
        click.echo(c.style(f"Apply complete: {len(ex.uploaded)} uploaded, {len(ex.created)} created"
                           f"{f', {s.adopt} adopted' if s.adopt else ''}. State serial {ex.state.serial}.",
                           bold=True))


def _check_saved_plan(saved: Any, fresh: Any) -> None:
    def essence(p: Any) -> Any:
        return ([(f.sha256, f.action.value) for f in p.files],
                [(m.name, m.action.value, m.fingerprint) for m in p.models])

    # No state file yet means no lineage yet: two plans from nothing share serial 0.
    same_lineage = saved.state_lineage == fresh.state_lineage or saved.state_serial == fresh.state_serial == 0
    stale = not same_lineage or saved.state_serial != fresh.state_serial
    if stale or essence(saved) != essence(fresh):
        why = ("the state changed since the plan was saved" if stale
               else "the configuration, datasets or provider changed since the plan was saved")
        raise FtopsError(error("apply.stale_plan", "the saved plan is stale",
                               f"{why} (saved at state serial {saved.state_serial}, now {fresh.state_serial}); "
                               "nothing was sent.", hint="run `ftops plan --out FILE` again and review it"))


# ---------------------------------------------------------------------- state views


def _refreshed_state(ws: Any, offline: bool) -> Any:
    """State with job statuses refreshed from the provider (saved when the lock is free)."""
    from ftops.engine.apply import refresh_job_records

    state = ws.store.load()
    if offline or not state.models:
        return state
    snap = ws.snapshot(state)
    if refresh_job_records(state, snap):
        try:
            with ws.store.locked("status"):
                state = ws.store.save(state)
        except FtopsError:
            pass  # another run holds the lock; show fresh data without saving
    return state


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(c: Ctx, as_json: bool) -> None:
    """Print the state file (what ftops knows it created)."""
    ws = c.workspace()
    state = ws.store.load()
    if as_json:
        _echo_json(state.model_dump(mode="json"))
        return
    click.echo(f"state {ws.store.location} · serial {state.serial} · lineage {state.lineage}")
    click.echo(f"project {state.project or '-'} · endpoint {state.endpoint or '-'}")
    click.echo(f"\nfiles ({len(state.files)}):")
    for f in sorted(state.files.values(), key=lambda f: f.path):
        click.echo(f"  {f.file_id}  {f.path or f.filename}  {f.bytes} B  sha256 {f.sha256[:12]}…")
    click.echo(f"\nmodels ({len(state.models)}):")
    for m in sorted(state.models.values(), key=lambda m: m.name):
        job = m.job
        click.echo(f"  {m.name}  fingerprint {m.fingerprint[:12]}…  seed {m.seed}")
        if job:
            click.echo(f"    job {job.job_id} {job.status}" + (f" → {job.fine_tuned_model}" if job.fine_tuned_model else ""))
        for h in m.history:
            click.echo(f"    earlier: {h.job_id} {h.status}" + (f" → {h.fine_tuned_model}" if h.fine_tuned_model else ""))
    if state.intents:
        click.echo(f"\npending intents ({len(state.intents)}): resolved by the next plan or apply")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--offline", is_flag=True, help="From the state file only.")
@pass_ctx
def status(c: Ctx, as_json: bool, offline: bool) -> None:
    """A table of models: status, job id, fine-tuned model, trained tokens."""
    ws = c.workspace()
    try:
        state = _refreshed_state(ws, offline)
    finally:
        ws.close()
    rows: list[dict[str, Any]] = []
    for name in sorted(set(ws.loaded.config.models) | set(state.models)):
        rec = state.models.get(name)
        job = rec.job if rec else None
        rows.append({"model": name, "status": job.status if job else "not created",
                     "job_id": job.job_id if job else None,
                     "fine_tuned_model": job.fine_tuned_model if job else None,
                     "trained_tokens": job.trained_tokens if job else None,
                     "declared": name in ws.loaded.config.models})
    if as_json:
        _echo_json({"models": rows})
        return
    table = [["MODEL", "STATUS", "JOB", "FINE-TUNED MODEL", "TRAINED TOKENS"]]
    for r in rows:
        table.append([r["model"] + ("" if r["declared"] else " (orphan)"), r["status"], r["job_id"] or "-",
                      r["fine_tuned_model"] or "-", f"{r['trained_tokens']:,}" if r["trained_tokens"] else "-"])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
        click.echo(c.style(line, bold=True) if i == 0 else line)


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--offline", is_flag=True, help="From the state file only.")
@pass_ctx
def output(c: Ctx, name: str | None, as_json: bool, offline: bool) -> None:
    """Fine-tuned model ids, for deployment (one model by NAME, or all)."""
    ws = c.workspace()
    try:
        state = _refreshed_state(ws, offline)
    finally:
        ws.close()
    models = {n: r for n, r in state.models.items() if n in ws.loaded.config.models}
    if name is not None:
        rec = models.get(name)
        if rec is None or rec.job is None or not rec.job.fine_tuned_model:
            st = rec.job.status if rec and rec.job else "not created"
            raise FtopsError(error("output.not_ready", f"{name} has no fine-tuned model yet",
                                   f"its job is {st}.", hint="run `ftops status` to follow it", address=f"models.{name}"))
        if as_json:
            _echo_json({"name": name, "fine_tuned_model": rec.job.fine_tuned_model, "job_id": rec.job.job_id})
        else:
            click.echo(rec.job.fine_tuned_model)
        return
    doc = {n: {"fine_tuned_model": r.job.fine_tuned_model if r.job else None,
               "status": r.job.status if r.job else None, "job_id": r.job.job_id if r.job else None}
           for n, r in sorted(models.items())}
    if as_json:
        _echo_json(doc)
    else:
        for n, v in doc.items():
            click.echo(f"{n} = {v['fine_tuned_model'] or '(' + str(v['status']) + ')'}")


# ---------------------------------------------------------------------- dataset / sandbox


@cli.group()
def dataset() -> None:
    """Work with dataset files."""


@dataset.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--model", "base_model", help="Base model (picks the tokenizer and token limit).")
@click.option("--method", type=click.Choice(["supervised", "dpo", "reinforcement"]), default="supervised",
              show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def dataset_check(c: Ctx, files: tuple[Path, ...], base_model: str | None, method: str, as_json: bool) -> None:
    """Validate JSONL files and count their tokens. Sends nothing."""
    from ftops.datasets import check_dataset

    reports = []
    diags: list[Diagnostic] = []
    for f in files:
        r = check_dataset(f, method=method, base_model=base_model)
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
            click.echo(f"{r.path}: {verdict} · {r.format} · {st.examples} examples · {st.tokens_total:,} tokens"
                       f"{approx} (min {st.tokens_min}, mean {st.tokens_mean:.0f}, max {st.tokens_max}) · "
                       f"{st.examples_over_limit} over the limit · {len(r.errors)} errors, {len(r.warnings)} warnings")
    if not ok:
        raise click.exceptions.Exit(1)


@cli.group()
def sandbox() -> None:
    """The built-in emulator of the OpenAI fine-tuning API."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path(".ftops/sandbox.db"),
              show_default=True)
@click.option("--time-scale", type=float, help="Speed-up factor (default $FTOPS_SANDBOX_TIME_SCALE or 1).")
@click.option("--faults", help="e.g. error_rate=0.2,lost_response_rate=0.1,seed=7 (default $FTOPS_SANDBOX_FAULTS).")
@click.option("--api-key", "api_keys", multiple=True, help="Accepted key (repeatable; default: any).")
def sandbox_serve(host: str, port: int, db: Path, time_scale: float | None, faults: str | None,
                  api_keys: tuple[str, ...]) -> None:
    """Serve the sandbox under /v1 (point OPENAI_BASE_URL or the openai SDK at it)."""
    from ftops.sandbox import serve

    db.parent.mkdir(parents=True, exist_ok=True)
    serve(host=host, port=port, db_path=db, time_scale=time_scale,
          faults=faults if faults is not None else os.environ.get("FTOPS_SANDBOX_FAULTS"),
          api_keys=list(api_keys) or None, echo=lambda s: click.echo(s, err=True))


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


# ---------------------------------------------------------------------- entry point


def _interrupted() -> NoReturn:
    """Ctrl-C outside apply's own handler (lock, refresh, plan) or a second Ctrl-C ("abort now"): the
    state on disk is consistent and its intents cover the write in flight, so re-running is safe."""
    click.echo("Interrupted. Re-running resumes safely: pending actions are looked up on the provider "
               "first, so nothing is created twice.", err=True)
    sys.exit(130)


def main(argv: list[str] | None = None) -> NoReturn:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    color = "--no-color" not in (argv or sys.argv) and "NO_COLOR" not in os.environ and sys.stderr.isatty()
    try:
        rv = cli.main(args=argv, prog_name="ftops", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except FtopsError as e:
        print_diagnostics(e.diagnostics, color=color, base=Path.cwd(),
                          source_lines=getattr(e, "source_lines", None))
        sys.exit(e.exit_code)
    except click.exceptions.Abort as e:
        # click turns a KeyboardInterrupt raised inside a command into Abort: treat it as Ctrl-C.
        if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):
            _interrupted()
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(1)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as e:
        if debug:
            raise
        click.echo(f"ftops: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                   err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()

