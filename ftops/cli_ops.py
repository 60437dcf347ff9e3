"""Commands that operate declared models by name (status, output, refresh, events, checkpoints,
cancel, pause, resume, import): a click layer over `ftops.engine.operate`, registered on the `ftops` group
by `cli.py` (nothing imports `cli.py`, so its helpers come in through `register`).

Read commands (`status`, `output`, `events`, `checkpoints`, `show`) never write the state;
`refresh` and the control commands do, under the lock.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import click

from ftops.diagnostics import FtopsError, did_you_mean, error
from ftops.diagnostics import printable as P

Helpers = SimpleNamespace  # json_option, echo_json


def _bar(step: int | None, total: int | None, width: int = 16) -> str:
    if not step or not total:
        return ""
    done = max(0, min(width, round(width * step / total)))
    return "[" + "#" * done + "." * (width - done) + f"] {step}/{total}"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _loss(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def status_table(views: list[Any], bars: bool) -> list[str]:
    head = ["MODEL", "PROVIDER", "STATUS", "PROGRESS", "ELAPSED", "REMAINING", "TRAIN", "VALID", "FINE-TUNED MODEL"]
    table = [head]
    for v in views:
        progress = (_bar(v.step, v.total_steps) if bars else
                    (f"{v.step}/{v.total_steps}" if v.step and v.total_steps else "")) or "-"
        table.append([P(str(c)) for c in (
            v.model + ("" if v.declared else " (orphan)"), v.provider, v.status, progress,
            _duration(v.elapsed_seconds), _duration(v.remaining_seconds), _loss(v.train_loss), _loss(v.valid_loss),
            v.fine_tuned_model or "-")])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    for v in views:
        if v.error:
            lines.append(P(f"  {v.model}: {v.error}"))
    return lines


def change_line(v: Any) -> str:
    """One line per change, for logs (no terminal)."""
    parts = [f"{v.model}: {v.status}"]
    if v.step and v.total_steps:
        parts.append(f"step {v.step}/{v.total_steps}")
    if v.train_loss is not None:
        parts.append(f"train loss {v.train_loss:.4f}")
    if v.valid_loss is not None:
        parts.append(f"valid loss {v.valid_loss:.4f}")
    if v.fine_tuned_model:
        parts.append(f"→ {v.fine_tuned_model}")
    if v.error:
        parts.append(f"error: {v.error}")
    return P(" · ".join(parts))


class Watcher:
    """Draws views as they change: in place on a terminal, one line per change otherwise."""

    def __init__(self, tty: bool, style: Callable[..., str]):
        self.tty = tty
        self.style = style
        self.drawn = 0
        self.last: dict[str, tuple[Any, ...]] = {}

    def __call__(self, views: list[Any]) -> None:
        if self.tty:
            lines = status_table(views, bars=True)
            if self.drawn:
                click.echo(f"\x1b[{self.drawn}F\x1b[J", nl=False)
            click.echo("\n".join([self.style(lines[0], bold=True), *lines[1:]]))
            self.drawn = len(lines)
            return
        for v in views:
            key = (v.status, v.step, v.fine_tuned_model, v.error)
            if self.last.get(v.model) != key:
                self.last[v.model] = key
                click.echo(change_line(v))


def _oldest_first(events: list[Any]) -> list[Any]:
    """Providers list events newest first; ties in time keep the provider's order."""
    return list(reversed(events))


def _names_of(ws: Any, state: Any) -> list[str]:
    return sorted(set(ws.loaded.config.models) | set(state.models))


def _check_names(ws: Any, state: Any, names: tuple[str, ...] | list[str]) -> None:
    known = _names_of(ws, state)
    for n in names:
        if n not in known:
            raise FtopsError(error("model.unknown", f"no model named {n}",
                                   "Known models: " + (", ".join(known) or "none") + ".",
                                   hint=did_you_mean(n, known) or "run `ftops status` to list them",
                                   address=f"models.{n}"))


def collect_views(ws: Any, names: list[str] | None, offline: bool) -> list[Any]:
    """One view per model (declared and orphans): the provider's word, unless `offline`."""
    from ftops.engine.operate import view_of, view_of_record

    state = ws.load_state()
    if names:
        _check_names(ws, state, names)
    wanted = names or _names_of(ws, state)
    declared = ws.loaded.config.models
    jobs: dict[str, Any] = {}
    if not offline and state.models:
        jobs = {j.id: j for j in ws.snapshot(state).jobs}
    views = []
    for name in wanted:
        rec = state.models.get(name)
        job = jobs.get(rec.job.job_id) if rec and rec.job else None
        if job is not None and rec is not None:
            prov = ws.providers().get(rec.provider)
            views.append(view_of(name, rec.provider, job, prov=prov, declared=name in declared))
        else:
            views.append(view_of_record(name, rec, declared=name in declared))
    return views


def model_job(ws: Any, state: Any, name: str) -> tuple[str, str]:
    """(provider entry, job id) of a model's current job, or a diagnostic saying why there is none."""
    _check_names(ws, state, [name])
    rec = state.models.get(name)
    if rec is None or rec.job is None:
        raise FtopsError(error("model.no_job", f"{name} has no job yet", "no job has been created for it.",
                               hint="run `ftops apply` to create it", address=f"models.{name}"))
    return rec.provider, rec.job.job_id


def register(cli: click.Group, h: Helpers) -> None:
    json_option: Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]] = h.json_option
    echo_json: Callable[[Any], None] = h.echo_json

    @cli.command()
    @click.argument("names", nargs=-1)
    @click.option("--watch", is_flag=True, help="Follow until every job is terminal (redrawn on a terminal; "
                                                "one line per change otherwise).")
    @click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between polls (--watch).")
    @json_option()
    @click.option("--offline", is_flag=True, help="From the state file only.")
    @click.pass_obj
    def status(c: Any, names: tuple[str, ...], watch: bool, interval: float, as_json: bool, offline: bool) -> None:
        """Per model: provider, status, progress, elapsed and remaining time, losses, fine-tuned model, error.

        Reads only: the state file is never written (`ftops refresh` records what the provider says)."""
        ws = c.workspace()
        try:
            views = collect_views(ws, list(names) or None, offline)
            if watch and not offline:
                w = Watcher(sys.stdout.isatty() and not as_json, c.style)
                while True:
                    if not as_json:
                        w(views)
                    if all(v.terminal or v.job_id is None for v in views):
                        break
                    time.sleep(max(0.05, interval))
                    views = collect_views(ws, list(names) or None, offline)
        finally:
            ws.close()
        state = ws.load_state()
        by_model: dict[str, list[str]] = {}
        for d in sorted(state.deployments.values(), key=lambda d: d.deployment_id):
            by_model.setdefault(d.model, []).append(f"{d.deployment_id} ({d.status})")
        ends = ws.model_ends(state)

        def end_of(model: str) -> dict[str, Any]:
            end = ends.get(model)
            return {"stops_working_on": end.date.isoformat() if end else None,
                    "days_left": (end.date - ws.today).days if end else None,
                    "stops_working_exact": end.exact if end else None,
                    "stops_working_source": end.source if end else None}

        if as_json:
            echo_json({"models": [{**v.model_dump(mode="json"), "deployments": by_model.get(v.model, []),
                                   **end_of(v.model)} for v in views]})
        elif not watch or offline:
            # Soonest end first: what must be retrained elsewhere is at the top.
            views = sorted(views, key=lambda v: (ends.get(v.model) is None,
                                                 ends[v.model].date if v.model in ends else None, v.model))
            lines = status_table(views, bars=False)
            click.echo("\n".join([c.style(lines[0], bold=True), *lines[1:]]))
            for model, deps in sorted(by_model.items()):
                for d in deps:
                    click.echo(P(f"{model}: deployment {d}"))
            for v in views:
                e = end_of(v.model)
                if e["stops_working_on"]:
                    days = e["days_left"]
                    when = f"in {days} days" if days >= 0 else f"{-days} days ago"
                    click.echo(P(f"{v.model}: stops working {'on' if e['stops_working_exact'] else 'no earlier than'} "
                                 f"{e['stops_working_on']} ({when})"))

    @cli.command()
    @click.argument("name", required=False)
    @json_option()
    @click.option("--offline", is_flag=True, help="From the state file only.")
    @click.pass_obj
    def output(c: Any, name: str | None, as_json: bool, offline: bool) -> None:
        """Fine-tuned model ids to call: the last succeeded model of each declared model.

        While a newer job trains (or after it failed), the previous model is still printed and stderr
        says a newer one is pending. Reads only."""
        from ftops.engine.operate import last_succeeded, refresh_history

        ws = c.workspace()
        try:
            state = ws.load_state()
            if not offline and state.models:
                refresh_history(state, {j.id: j for j in ws.snapshot(state).jobs})
        finally:
            ws.close()
        declared = ws.loaded.config.models
        doc: dict[str, dict[str, Any]] = {}
        for n in sorted(declared):
            rec = state.models.get(n)
            good = last_succeeded(rec) if rec else None
            job = rec.job if rec else None
            pending = (job if job is not None and (good is None or job.job_id != good.job_id) else None)
            doc[n] = {"fine_tuned_model": good.fine_tuned_model if good else None,
                      "job_id": good.job_id if good else (job.job_id if job else None),
                      "status": (good.status if good else job.status if job else None),
                      "pending_job": ({"job_id": pending.job_id, "status": pending.status} if pending else None),
                      **_deployment_view(state, n, good.fine_tuned_model if good else None)}
        if name is not None:
            _check_output_name(name, declared, state)
            v = doc[name]
            if v["fine_tuned_model"] is None:
                rec = state.models.get(name)
                if rec is None or rec.job is None:
                    why, hint = "no job has been created for it yet.", "run `ftops apply` to create it"
                else:
                    why, hint = f"its job {rec.job.job_id} is {rec.job.status}.", "run `ftops status` to follow it"
                raise FtopsError(error("output.not_ready", f"{name} has no fine-tuned model yet", why, hint=hint,
                                       range=ws.loaded.range_of("models", name), address=f"models.{name}"))
            if v["pending_job"]:
                p = v["pending_job"]
                click.echo(P(f"note: a newer job for {name} is {p['status']} ({p['job_id']}); this is the last "
                             "succeeded model"), err=True)
            if as_json:
                echo_json({"name": name, **v})
            else:
                click.echo(P(v["endpoint"] or v["fine_tuned_model"]))
            return
        if as_json:
            echo_json(doc)
        else:
            for n, v in doc.items():
                pending = f"  (newer job {v['pending_job']['status']})" if v["pending_job"] and v["fine_tuned_model"] \
                    else ""
                click.echo(P(f"{n} = {v['fine_tuned_model'] or '(' + str(v['status']) + ')'}{pending}"))

    @cli.command()
    @json_option()
    @click.option("--lock-timeout", type=float, default=0.0, help="Wait up to SECONDS for another run's lock.")
    @click.pass_obj
    def refresh(c: Any, as_json: bool, lock_timeout: float) -> None:
        """Record in the state what the provider says of every job (statuses, fine-tuned models)."""
        from ftops.engine.operate import refresh_history
        from ftops.state import locked

        ws = c.workspace()
        try:
            with locked(ws.root, "refresh", timeout=lock_timeout):
                state = ws.load_state()
                changed = bool(state.models) and refresh_history(state, {j.id: j for j in ws.snapshot(state).jobs})
                if changed:
                    state = ws.store.save(state)
        finally:
            ws.close()
        if as_json:
            echo_json({"changed": changed, "state_serial": state.serial})
        else:
            click.echo(f"Refresh complete: {'state updated' if changed else 'no changes'} "
                       f"(serial {state.serial}).")

    @cli.command()
    @click.argument("name")
    @click.option("--follow", is_flag=True, help="Keep printing new events until the job is terminal.")
    @click.option("--limit", type=click.IntRange(min=1), help="The N newest events (default: every event).")
    @click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between polls (--follow).")
    @json_option(help="JSON: one document; with --follow, one JSON object per line.")
    @click.pass_obj
    def events(c: Any, name: str, follow: bool, limit: int | None, interval: float, as_json: bool) -> None:
        """A model's current job's events, oldest first (the N newest with --limit)."""
        from ftops.engine.operate import call, event_json

        ws = c.workspace()
        try:
            state = ws.load_state()
            pname, job_id = model_job(ws, state, name)
            prov = ws.provider(pname)
            evs = call(prov, "list events", lambda: prov.list_events(job_id, limit=limit))
            items = [event_json(e) for e in _oldest_first(evs)]
            if as_json and not follow:
                echo_json({"model": name, "job_id": job_id, "events": items})
                return
            seen: set[str] = set()

            def emit(batch: list[dict[str, Any]]) -> None:
                for e in batch:
                    if e["id"] in seen:
                        continue
                    seen.add(e["id"])
                    if as_json:
                        click.echo(h.dumps_line({"model": name, "job_id": job_id, **e}))
                    else:
                        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["created_at"]))
                        click.echo(P(f"{stamp}  {e['level']:<5}  {e['message']}"))

            emit(items)
            while follow:
                job = call(prov, "read jobs", lambda: prov.get_job(job_id))
                if job.state.terminal:
                    evs = call(prov, "list events", lambda: prov.list_events(job_id))
                    emit([event_json(e) for e in _oldest_first(evs)])
                    break
                time.sleep(max(0.05, interval))
                evs = call(prov, "list events", lambda: prov.list_events(job_id, limit=100))
                emit([event_json(e) for e in _oldest_first(evs)])
        finally:
            ws.close()

    @cli.command()
    @click.argument("name")
    @json_option()
    @click.pass_obj
    def checkpoints(c: Any, name: str, as_json: bool) -> None:
        """A model's current job's checkpoints (step, metrics) and its loss curve (train and validation)."""
        from ftops.engine.operate import call, checkpoint_json, metric_points

        ws = c.workspace()
        try:
            state = ws.load_state()
            pname, job_id = model_job(ws, state, name)
            prov = ws.provider(pname)
            cps = call(prov, "list checkpoints", lambda: prov.list_checkpoints(job_id))
            try:
                points = metric_points(prov.list_events(job_id))
            except NotImplementedError:
                points = []
        finally:
            ws.close()
        items = sorted((checkpoint_json(cp) for cp in cps), key=lambda x: x["step"])
        if as_json:
            echo_json({"model": name, "job_id": job_id, "checkpoints": items, "metrics": points})
            return
        if not items:
            click.echo(f"{name}: job {job_id} has no checkpoints yet.")
        for cp in items:
            metrics = ", ".join(f"{k}={v:.4f}" for k, v in cp["metrics"].items() if k not in ("step",))
            click.echo(P(f"step {cp['step']:>6}  {cp['fine_tuned_model_checkpoint']}  {metrics}"))
        if points:
            click.echo("")
            click.echo("\n".join(loss_curve(points)))

    @cli.command("import")
    @click.argument("name")
    @click.argument("job_id")
    @json_option()
    @click.option("--lock-timeout", type=float, default=0.0, help="Wait up to SECONDS for another run's lock.")
    @click.pass_obj
    def import_cmd(c: Any, name: str, job_id: str, as_json: bool, lock_timeout: float) -> None:
        """Adopt a job created outside ftops as model NAME, after checking it matches the declaration.

        Each difference is named (exit 1, nothing recorded); on a match the job is recorded in the
        state and the next plan shows the model unchanged. Never creates anything."""
        from ftops.engine.operate import import_job
        from ftops.state import locked

        ws = c.workspace()
        try:
            declared = ws.loaded.config.models
            if name not in declared:
                raise FtopsError(error("model.unknown", f"no declared model named {name}",
                                       "`ftops import` adopts a job for a model declared in ftops.yaml.",
                                       hint=did_you_mean(name, list(declared)) or "declare it first",
                                       address=f"models.{name}"))
            with locked(ws.root, "import", timeout=lock_timeout):
                state = ws.load_state()
                d = next(m for m in ws.desired(state).models if m.name == name)  # a chain: upstream from state
                rec, notes = import_job(state, d, ws.provider(d.provider), job_id)
                state = ws.store.save(state)
        finally:
            ws.close()
        if as_json:
            echo_json({"model": name, "job_id": rec.job_id, "status": rec.status, "fingerprint": rec.fingerprint,
                       "notes": notes, "state_serial": state.serial})
        else:
            click.echo(P(f"Imported job {rec.job_id} ({rec.status}) as models.{name} (state serial {state.serial})."))
            for n in notes:
                click.echo(P(f"  note: {n}"))

    def control(verb: str, what: str, method: str) -> None:
        @cli.command(verb, help=f"{verb.capitalize()} a model's current job (where the provider supports it).")
        @click.argument("name")
        @json_option()
        @click.pass_obj
        def cmd(c: Any, name: str, as_json: bool) -> None:
            from ftops.engine.apply import _job_record
            from ftops.engine.operate import call
            from ftops.state import locked

            ws = c.workspace()
            try:
                with locked(ws.root, verb):
                    state = ws.load_state()
                    pname, job_id = model_job(ws, state, name)
                    prov = ws.provider(pname)
                    job = call(prov, what, lambda: getattr(prov, method)(job_id))
                    rec = state.models[name]
                    assert rec.job is not None
                    rec.job = _job_record(job, rec.job.fingerprint, rec.job.attempt).model_copy(
                        update={"cancelled_by_ftops": verb == "cancel" or rec.job.cancelled_by_ftops})
                    state = ws.store.save(state)
            finally:
                ws.close()
            if as_json:
                echo_json({"model": name, "job_id": job.id, "status": job.status, "state": job.state.value})
            else:
                click.echo(P(f"models.{name}: job {job.id} is {job.status}"))
                if verb == "cancel":
                    click.echo("The next `ftops plan` shows it as a retry; remove the model from ftops.yaml to stop "
                               "wanting it.")

    @cli.command("test")
    @click.argument("names", nargs=-1)
    @click.option("--record", is_flag=True, help="Save the current model's answers as the golden set "
                                                 "(tests/golden/NAME.jsonl) instead of checking them.")
    @json_option()
    @click.pass_obj
    def test_cmd(c: Any, names: tuple[str, ...], record: bool, as_json: bool) -> None:
        """Run each model's `tests:` against its last succeeded fine-tuned model; exit 1 on any failure."""
        ws = c.workspace()
        try:
            results = model_tests(ws, list(names) or None, record=record, explicit=bool(names))
        finally:
            ws.close()
        failed = [r for r in results if not r.passed]
        if as_json:
            echo_json({"ok": not failed, "record": record, "passed": len(results) - len(failed),
                       "failed": len(failed), "results": [r.model_dump(mode="json") for r in results]})
        else:
            print_test_results(c, results, record, ws)
        if failed:
            raise click.exceptions.Exit(1)

    existing = cli.commands.get("state")
    if isinstance(existing, click.Group):
        state_group = existing  # `state pull` and `state migrate` live there already
    else:
        @cli.group("state")
        def state_group() -> None:
            """Read the state and edit its model records (nothing remote is touched)."""

    @state_group.command("list")
    @json_option()
    @click.pass_obj
    def state_list(c: Any, as_json: bool) -> None:
        """Model records in the state, with their current job."""
        ws = c.workspace()
        state = ws.store.load()
        declared = ws.loaded.config.models
        rows = [{"model": n, "declared": n in declared, "provider": r.provider,
                 "job_id": r.job.job_id if r.job else None, "status": r.job.status if r.job else None}
                for n, r in sorted(state.models.items())]
        if as_json:
            echo_json({"models": rows})
            return
        for row in rows:
            click.echo(P(f"models.{row['model']}{'' if row['declared'] else ' (orphan)'}  "
                         f"{row['job_id'] or '-'}  {row['status'] or '-'}"))

    @state_group.command("show")
    @click.argument("name")
    @click.pass_obj
    def state_show(c: Any, name: str) -> None:
        """One model record as JSON."""
        ws = c.workspace()
        state = ws.store.load()
        rec = state.models.get(name)
        if rec is None:
            raise _no_record(name, state)
        echo_json(rec.model_dump(mode="json"))

    @state_group.command("mv")
    @click.argument("old")
    @click.argument("new")
    @click.pass_obj
    def state_mv(c: Any, old: str, new: str) -> None:
        """Rename a model's record (after renaming it in ftops.yaml): its jobs stay its own, nothing retrains."""
        from ftops.state import locked

        ws = c.workspace()
        with locked(ws.root, "state mv"):
            state = ws.store.load()
            if old not in state.models:
                raise _no_record(old, state)
            if new in state.models:
                raise FtopsError(error("state.exists", f"the state already has a record for {new}",
                                       "moving would overwrite it.", hint=f"`ftops state rm {new}` first if it is "
                                       "obsolete", address=f"models.{new}"))
            rec = state.models.pop(old)
            rec.name = new
            state.models[new] = rec
            state = ws.store.save(state)
        click.echo(f"Moved models.{old} to models.{new} (state serial {state.serial}).")

    @state_group.command("rm")
    @click.argument("name")
    @click.pass_obj
    def state_rm(c: Any, name: str) -> None:
        """Forget a model's record. Deletes nothing remote (a declared model's job is adopted again by
        the next plan; an undeclared one stays on the provider)."""
        from ftops.state import locked

        ws = c.workspace()
        with locked(ws.root, "state rm"):
            state = ws.store.load()
            if name not in state.models:
                raise _no_record(name, state)
            del state.models[name]
            state = ws.store.save(state)
        click.echo(f"Forgot models.{name} (nothing remote was deleted; state serial {state.serial}).")

    control("cancel", "cancel jobs", "cancel_job")
    control("pause", "pause jobs", "pause_job")
    control("resume", "resume jobs", "resume_job")


def loss_curve(points: list[dict[str, Any]], width: int = 60, height: int = 12) -> list[str]:
    """Train (`*`) and validation (`o`) loss against step, drawn in text."""
    series = [(k, mark) for k, mark in (("train_loss", "*"), ("valid_loss", "o"))
              if any(p.get(k) is not None for p in points)]
    values = [p[k] for p in points for k, _ in series if p.get(k) is not None]
    if not values:
        return []
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    steps = [p["step"] for p in points]
    s0, s1 = min(steps), max(steps)
    grid = [[" "] * width for _ in range(height)]
    for p in points:
        x = 0 if s1 == s0 else round((p["step"] - s0) / (s1 - s0) * (width - 1))
        for k, mark in series:
            if p.get(k) is None:
                continue
            y = round((hi - p[k]) / span * (height - 1))
            if grid[y][x] == " " or mark == "o":
                grid[y][x] = mark
    legend = " ".join(m + " " + k.split("_")[0] for k, m in series)
    out = [f"loss  ({legend})"]
    for i, row in enumerate(grid):
        label = f"{hi - span * i / (height - 1):7.3f} |"
        out.append(label + "".join(row).rstrip())
    out.append(" " * 8 + "+" + "-" * width)
    out.append(" " * 9 + f"step {s0}".ljust(width - len(f"step {s1}")) + f"step {s1}")
    return out


def _check_output_name(name: str, declared: Any, state: Any) -> None:
    """`output NAME` for a name ftops.yaml does not declare: say whether it is an orphan or unknown."""
    if name in declared:
        return
    rec = state.models.get(name)
    if rec is not None:
        job = rec.job
        had = (f" Its last job {job.job_id} is {job.status}" + (f" and trained {job.fine_tuned_model}" if
               job.fine_tuned_model else "") + "." if job else "")
        raise FtopsError(error(
            "output.not_declared", f"{name} is no longer declared in ftops.yaml",
            f"It is an orphan: ftops keeps what it created but hands out ids only for declared models.{had}",
            hint=f"declare `{name}` again to use it, or read `ftops show`", address=f"models.{name}"))
    raise FtopsError(error(
        "output.unknown_model", f"no model named {name}",
        "Declared models: " + (", ".join(sorted(declared)) or "none") + ".",
        hint=did_you_mean(name, declared) or "run `ftops output` to list them", address=f"models.{name}"))


def wait_after_apply(c: Any, ws: Any, started: set[str], result: dict[str, Any], *, as_json: bool,
                     interval: float, lock_timeout: float) -> None:
    """`apply --wait`: follow the jobs apply started until they end, record their final word, and fail
    (exit 1, with the provider's error) when one did not succeed."""
    from ftops.engine.operate import refresh_history, view_of, wait_for_jobs
    from ftops.state import locked

    state = ws.load_state()
    jobs = {n: (state.models[n].provider, state.models[n].job.job_id) for n in sorted(started)
            if n in state.models and state.models[n].job is not None}
    result["jobs"] = []
    if not jobs:
        return
    draw: Callable[[list[Any]], None] = (lambda views: None) if as_json else Watcher(sys.stdout.isatty(), c.style)
    if not as_json:
        click.echo(f"\nWaiting for {len(jobs)} job(s) to end (Ctrl-C stops waiting; the jobs keep running) …")
    try:
        final = wait_for_jobs(ws.providers(), jobs, on_view=draw, interval=max(0.05, interval))
        with locked(ws.root, "apply", timeout=lock_timeout):
            state = ws.load_state()
            if refresh_history(state, {j.id: j for j in final.values()}):
                state = ws.store.save(state)
                result["state_serial"] = state.serial
    finally:
        ws.close()
    views = [view_of(n, jobs[n][0], j, prov=None) for n, j in sorted(final.items())]
    result["jobs"] = [v.model_dump(mode="json") for v in views]
    failed = [v for v in views if v.state != "succeeded"]
    if not failed:
        tested = [n for n in sorted(final) if ws.loaded.config.models[n].tests]
        if tested:
            results = model_tests(ws, tested)
            ws.close()
            result["tests"] = [r.model_dump(mode="json") for r in results]
            if not as_json:
                print_test_results(c, results, False, ws)
            bad = [r for r in results if not r.passed]
            if bad:
                raise FtopsError([error("apply.tests_failed", f"a test of {r.model} failed",
                                        f"case {r.case}: the answer " + "; ".join(r.failures) + ".",
                                        hint=f"see `ftops test {r.model}`", address=f"models.{r.model}")
                                  for r in bad])
    if failed:
        raise FtopsError([error("apply.job_failed", f"the job of {v.model} is {v.status}",
                                f"job {v.job_id}: {v.error or 'no reason given by the provider'}",
                                hint="fix the cause, then `ftops apply` retries it as a new attempt",
                                address=f"models.{v.model}") for v in failed])


def model_tests(ws: Any, names: list[str] | None, *, record: bool = False, explicit: bool = True) -> list[Any]:
    """Run (or record) the `tests:` of the named declared models (all with tests when None)."""
    from ftops.engine.evaluate import run_tests
    from ftops.engine.operate import call, last_succeeded, refresh_history

    declared = ws.loaded.config.models
    state = ws.load_state()
    if names:
        ws.check_model_names(frozenset(names))
    wanted = names or sorted(n for n, m in declared.items() if m.tests)
    if explicit:
        empty = [n for n in wanted if not declared[n].tests]
        if empty:
            raise FtopsError([error("test.none_declared", f"{n} declares no tests",
                                    "add `tests:` to the model: chat `messages` and an `expect` block.",
                                    hint="e.g. tests: [{messages: [{role: user, content: hi}], "
                                         "expect: {contains: hello}}]",
                                    range=ws.loaded.range_of("models", n), address=f"models.{n}") for n in empty])
    if state.models:
        refresh_history(state, {j.id: j for j in ws.snapshot(state).jobs})
    results: list[Any] = []
    for n in wanted:
        rec = state.models.get(n)
        good = last_succeeded(rec) if rec else None
        if good is None or rec is None or good.fine_tuned_model is None:
            raise FtopsError(error("test.no_model", f"{n} has no fine-tuned model to test yet",
                                   "no job of it has succeeded.", hint="run `ftops apply --wait`",
                                   address=f"models.{n}"))
        prov = ws.provider(rec.provider)
        ft = good.fine_tuned_model

        def one(p: Any = prov, m: str = n, f: str = ft) -> list[Any]:
            return run_tests(p, m, f, declared[m].tests, root=ws.root, record=record)

        results += call(prov, "answer chat messages (inference)", one)
    return results


def print_test_results(c: Any, results: list[Any], record: bool, ws: Any) -> None:
    for r in results:
        label = f"{r.model}[{r.case}]" + (f" {r.name}" if r.name else "")
        if record:
            click.echo(P(f"recorded {label}: {r.answer[:80]}"))
            continue
        verdict = c.style("pass", fg="green") if r.passed else c.style("FAIL", fg="red", bold=True)
        sim = f" (ROUGE-L {r.similarity:.2f})" if r.similarity is not None else ""
        click.echo(P(f"{verdict}  {label}{sim}"))
        for f in r.failures:
            click.echo(P(f"      answer {f}: {r.answer[:120]!r}"))
    failed = sum(not r.passed for r in results)
    if record:
        models = sorted({r.model for r in results})
        click.echo(f"Recorded {len(results)} golden answer(s) in "
                   + ", ".join(f"tests/golden/{m}.jsonl" for m in models) + "; review them in git.")
    else:
        click.echo(f"Tests: {len(results) - failed} passed, {failed} failed.")


def _no_record(name: str, state: Any) -> FtopsError:
    return FtopsError(error("state.no_record", f"the state has no record for {name}",
                            "Records: " + (", ".join(sorted(state.models)) or "none") + ".",
                            hint=did_you_mean(name, state.models) or "run `ftops state list`",
                            address=f"models.{name}"))


def _deployment_view(state: Any, name: str, model_id: str | None) -> dict[str, Any]:
    """The id to call (the deployment serving the model's last good fine-tuned model, else that model),
    and the deployments kept for superseded models (until `--prune`)."""
    deps = [d for d in state.deployments.values() if d.model == name]
    current = next((d for d in deps if model_id and d.model_id == model_id), None)
    return {"endpoint": (current.endpoint or model_id) if current else model_id,
            "deployment": current.deployment_id if current else None,
            "kept_deployments": sorted(d.deployment_id for d in deps if d is not current)}
