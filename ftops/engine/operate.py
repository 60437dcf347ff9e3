"""Operating declared models by name: what a job is doing, its events and metrics, waiting, control.

Provider-neutral: everything goes through the `Provider` interface. Progress and losses are read
from the neutral keys a provider puts in `JobEvent.data` and `JobCheckpoint.metrics` (`step`,
`total_steps`, `train_loss`, `valid_loss`, also `full_valid_loss`); a provider whose events carry
none of them shows no progress, never a wrong one. An operation a provider lacks (its method raises
`NotImplementedError`) becomes the diagnostic `provider.unsupported_operation`.

Nothing here writes state: callers that are write commands (`cancel`, `refresh`, `apply`) record
what they learnt themselves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from ftops.diagnostics import FtopsError, error
from ftops.engine.model import DesiredModel
from ftops.engine.plan import record_state
from ftops.providers import (
    JobCheckpoint,
    JobEvent,
    JobState,
    Provider,
    ProviderError,
    RemoteFile,
    RemoteJob,
)
from ftops.state import JobRecord, ModelRecord, State

#: Events read per job for `status`: enough to find the latest metrics event on a busy job.
STATUS_EVENTS = 20


class JobView(BaseModel):
    """One model's job as `status` shows it (JSON first; text is derived from this)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    provider: str = "default"
    declared: bool = True
    status: str = "not created"
    state: str | None = None
    job_id: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    step: int | None = None
    total_steps: int | None = None
    elapsed_seconds: int | None = None
    remaining_seconds: int | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    error: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in (JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.CANCELLED.value)


def unsupported(provider: Provider, what: str, exc: NotImplementedError) -> FtopsError:
    title = provider.capabilities.title or provider.capabilities.name
    return FtopsError(error("provider.unsupported_operation", f"{title} cannot {what}",
                            str(exc) or f"the {title} provider has no `{what}` operation; nothing was sent.",
                            hint="do it in the provider's console, or pick a provider that offers it"))


def call(provider: Provider, what: str, fn: Callable[[], Any]) -> Any:
    """Run one provider operation; a missing operation or a provider error becomes a diagnostic."""
    try:
        return fn()
    except NotImplementedError as exc:
        raise unsupported(provider, what, exc) from None
    except ProviderError as exc:
        raise FtopsError(exc.to_diagnostic()) from None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _int(value: Any) -> int | None:
    v = _finite(value)
    return int(v) if v is not None else None


def metric_points(events: list[JobEvent]) -> list[dict[str, Any]]:
    """(step, train_loss, valid_loss) from metrics events, oldest first, one per step."""
    by_step: dict[int, dict[str, Any]] = {}
    for e in events:
        data = e.data or {}
        step = _int(data.get("step"))
        if step is None:
            continue
        point = {"step": step, "train_loss": _finite(data.get("train_loss")),
                 "valid_loss": _finite(data.get("valid_loss") if "valid_loss" in data else data.get("full_valid_loss"))}
        total = _int(data.get("total_steps"))
        if total is not None:
            point["total_steps"] = total
        by_step[step] = point
    return [by_step[s] for s in sorted(by_step)]


def checkpoint_json(c: JobCheckpoint) -> dict[str, Any]:
    metrics = {k: _finite(v) for k, v in (c.metrics or {}).items()}
    return {"id": c.id, "step": c.step_number, "created_at": c.created_at,
            "fine_tuned_model_checkpoint": c.fine_tuned_model_checkpoint,
            "metrics": {k: v for k, v in sorted(metrics.items()) if v is not None}}


def event_json(e: JobEvent) -> dict[str, Any]:
    data = None
    if e.data:
        data = {k: (_finite(v) if isinstance(v, float) else v) for k, v in e.data.items()}
    return {"id": e.id, "created_at": e.created_at, "level": e.level, "message": e.message, "type": e.type,
            "data": data}


def job_error_text(job: RemoteJob | JobRecord) -> str | None:
    err = job.error
    if err is None:
        return None
    d = err if isinstance(err, dict) else err.model_dump()
    text = " ".join(str(x) for x in (d.get("code"), d.get("message")) if x)
    return text or "the job failed"


def view_of(name: str, provider: str, job: RemoteJob, *, prov: Provider | None, declared: bool = True,
            now: float | None = None, events: bool = True) -> JobView:
    """The view of a remote job; `events`: read one page of events for progress and losses."""
    now = time.time() if now is None else now
    v = JobView(model=name, provider=provider, declared=declared, status=job.status, state=job.state.value,
                job_id=job.id, fine_tuned_model=job.fine_tuned_model, trained_tokens=job.trained_tokens,
                error=job_error_text(job) if job.state.dead else None)
    if job.created_at:
        end = job.finished_at if job.state.terminal and job.finished_at else now
        v.elapsed_seconds = max(0, int(end - job.created_at))
    if job.estimated_finish and not job.state.terminal:
        v.remaining_seconds = max(0, int(job.estimated_finish - now))
    if events and prov is not None:
        try:
            points = metric_points(prov.list_events(job.id, limit=STATUS_EVENTS))
        except (ProviderError, NotImplementedError):
            points = []
        if points:
            last = points[-1]
            v.step, v.total_steps = last["step"], last.get("total_steps")
            v.train_loss = last["train_loss"]
            v.valid_loss = next((p["valid_loss"] for p in reversed(points) if p["valid_loss"] is not None), None)
    return v


def view_of_record(name: str, rec: ModelRecord | None, *, declared: bool) -> JobView:
    """The view from the state alone (`--offline`, or a job the provider no longer lists)."""
    job = rec.job if rec else None
    if job is None:
        return JobView(model=name, provider=rec.provider if rec else "default", declared=declared)
    st = record_state(job)
    return JobView(model=name, provider=rec.provider if rec else "default", declared=declared, status=job.status,
                   state=st.value, job_id=job.job_id, fine_tuned_model=job.fine_tuned_model,
                   trained_tokens=job.trained_tokens, error=job_error_text(job) if st.dead else None)


def last_succeeded(rec: ModelRecord) -> JobRecord | None:
    """The newest job of the model that produced a fine-tuned model (the id to call during a retrain)."""
    jobs = ([rec.job] if rec.job else []) + list(reversed(rec.history))
    return next((j for j in jobs if j.fine_tuned_model and record_state(j) is JobState.SUCCEEDED), None)


def wait_for_jobs(providers: Mapping[str, Provider], jobs: Mapping[str, tuple[str, str]], *,
                  on_view: Callable[[list[JobView]], None], interval: float = 2.0,
                  sleep: Callable[[float], None] = time.sleep, timeout: float | None = None,
                  clock: Callable[[], float] = time.time) -> dict[str, RemoteJob]:
    """Poll `jobs` (model -> (provider, job id)) until every one is terminal; `on_view` gets the views
    after every poll. Returns the final jobs. Read errors are retried by the provider; one that
    escapes stops the wait with a diagnostic (nothing is lost: the jobs keep running)."""
    start = clock()
    final: dict[str, RemoteJob] = {}
    while True:
        views = []
        for name, (pname, job_id) in sorted(jobs.items()):
            prov = providers[pname]
            job = call(prov, "read jobs", lambda p=prov, j=job_id: p.get_job(j))  # type: ignore[misc]
            final[name] = job
            views.append(view_of(name, pname, job, prov=prov, now=clock()))
        on_view(views)
        if all(v.terminal for v in views):
            return final
        if timeout is not None and clock() - start > timeout:
            raise FtopsError(error("wait.timeout", "jobs still running after the wait limit",
                                   f"waited {timeout:.0f}s; the jobs keep running on the provider.",
                                   hint="follow them with `ftops status --watch`"))
        sleep(interval)


def refresh_history(state: State, jobs: Mapping[str, RemoteJob]) -> bool:
    """Copy fresh statuses of current and earlier jobs into the state (in memory); True if any changed."""
    changed = False
    for rec in state.models.values():
        for i, old in enumerate(([rec.job] if rec.job else []) + rec.history):
            fresh = jobs.get(old.job_id)
            if fresh is None:
                continue
            new = old.model_copy(update={
                "status": fresh.status, "state": fresh.state.value, "fine_tuned_model": fresh.fine_tuned_model,
                "trained_tokens": fresh.trained_tokens, "finished_at": fresh.finished_at,
                "error": fresh.error.model_dump() if fresh.error is not None else None})
            if new != old:
                changed = True
                if i == 0 and rec.job is not None:
                    rec.job = new
                else:
                    rec.history[i - (1 if rec.job else 0)] = new
    return changed


def _same(a: Any, b: Any) -> bool:
    """Equal, with `2` and `2.0` the same (providers report numbers in their own types)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return float(a) == float(b)
    return bool(a == b)


def import_differences(d: DesiredModel, job: RemoteJob, files: list[RemoteFile]) -> tuple[list[str], list[str]]:
    """How a job made outside ftops differs from a declared model, through the provider-neutral job
    fields (base model, files by content hash or size, method, the hyperparameters and seed the
    provider reports, suffix in the fine-tuned model id). Returns (differences, notes); a field the
    provider does not report is not compared (a note says so where it matters)."""
    diffs: list[str] = []
    notes: list[str] = []
    a = d.attributes
    if job.model and job.model != a.get("base_model"):
        diffs.append(f"base_model: the job trains {job.model!r}, the declaration says {a.get('base_model')!r}")
    by_id = {f.id: f for f in files}
    for which, ref, fid in (("training_file", d.training, job.training_file),
                            ("validation_file", d.validation, job.validation_file)):
        if ref is None and fid:
            diffs.append(f"{which}: the job has {fid}, the declaration has none")
            continue
        if ref is None:
            continue
        if not fid:
            diffs.append(f"{which}: the declaration has {ref.path}, the job has none")
            continue
        f = by_id.get(fid)
        if f is None:
            notes.append(f"{which}: {fid} is no longer listed by the provider; its content was not compared")
        elif f.sha256 is not None and f.sha256 != ref.sha256:
            diffs.append(f"{which}: {fid} has sha256 {f.sha256[:12]}…, {ref.path} has {ref.sha256[:12]}…")
        elif f.bytes is not None and f.bytes != ref.bytes:
            diffs.append(f"{which}: {fid} has {f.bytes} bytes, {ref.path} has {ref.bytes}")
        elif f.sha256 is None:
            notes.append(f"{which}: {fid} matches {ref.path} by size ({f.bytes} bytes); the provider reports no "
                         "content hash")
    method = job.method or {}
    mtype = method.get("type")
    if mtype and mtype != a.get("method"):
        diffs.append(f"method: the job is {mtype!r}, the declaration says {a.get('method')!r}")
    reported: dict[str, Any] = dict(job.hyperparameters or {})
    inner = method.get(mtype) if isinstance(mtype, str) else None
    if isinstance(inner, dict) and isinstance(inner.get("hyperparameters"), dict):
        reported.update(inner["hyperparameters"])
    for k, v in sorted((a.get("hyperparameters") or {}).items()):
        if v is None or v == "auto" or k not in reported:
            continue
        if not _same(reported[k], v):
            diffs.append(f"hyperparameters.{k}: the job used {reported[k]!r}, the declaration says {v!r}")
    if job.seed is not None and d.seed is not None and job.seed != d.seed:
        hint = "" if d.seed_declared else f" (derived; declare `seed: {job.seed}` to adopt this job)"
        diffs.append(f"seed: the job used {job.seed}, the declaration gives {d.seed}{hint}")
    suffix = a.get("suffix")
    if suffix and job.fine_tuned_model and str(suffix) not in job.fine_tuned_model:
        diffs.append(f"suffix: {job.fine_tuned_model!r} does not carry the declared suffix {suffix!r}")
    return diffs, notes


def import_job(state: State, d: DesiredModel, provider: Provider, job_id: str) -> tuple[JobRecord, list[str]]:
    """Adopt job `job_id` (made outside ftops) as declared model `d`: checked, then recorded in `state`
    (in memory; the caller saves under the lock). Never creates anything. Refused with a diagnostic
    naming every difference. Returns the job record and notes on what could not be compared."""
    rec = state.models.get(d.name)
    addr = f"models.{d.name}"
    if rec is not None and rec.job is not None and rec.job.job_id == job_id:
        return rec.job, ["already recorded: nothing to do"]
    if rec is not None and rec.job is not None and not record_state(rec.job).dead:
        raise FtopsError(error("import.model_has_job", f"{d.name} already has job {rec.job.job_id}",
                               "importing would forget a job ftops manages; nothing was recorded.",
                               hint=f"`ftops cancel {d.name}` or `ftops state rm {d.name}` first", address=addr))
    job = call(provider, "read jobs", lambda: provider.get_job(job_id))
    if job.group is not None and job.group != d.group:
        raise FtopsError(error("import.foreign_identity", f"job {job_id} already carries an ftops identity",
                               "it belongs to another model, fingerprint or project; nothing was recorded.",
                               hint="`ftops plan` adopts ftops's own jobs by itself", address=addr))
    if job.state.dead:
        raise FtopsError(error("import.job_dead", f"job {job_id} is {job.status}",
                               "a failed or cancelled job has nothing to adopt; nothing was recorded.",
                               hint="`ftops apply` trains the model", address=addr))
    files = call(provider, "list files", provider.list_files) if (job.training_file or job.validation_file) else []
    diffs, notes = import_differences(d, job, files)
    if diffs:
        raise FtopsError(error("import.mismatch", f"job {job_id} does not match {addr}",
                               "; ".join(diffs) + ". Nothing was recorded.",
                               hint="edit the declaration to match the job, or let `ftops apply` train it",
                               address=addr))
    attempt = (rec.attempt + 1) if rec is not None and rec.job is not None else 1
    new = JobRecord(job_id=job.id, fingerprint=d.fingerprint, status=job.status, state=job.state.value,
                    attempt=attempt, fine_tuned_model=job.fine_tuned_model, trained_tokens=job.trained_tokens,
                    created_at=job.created_at, finished_at=job.finished_at)
    history = ([rec.job] + rec.history) if rec is not None and rec.job is not None else (rec.history if rec else [])
    state.models[d.name] = ModelRecord(name=d.name, provider=d.provider, fingerprint=d.fingerprint, group=d.group,
                                       attempt=attempt, seed=d.seed, spec=dict(d.attributes), job=new,
                                       history=history, prevent_destroy=d.prevent_destroy)
    return new, notes
