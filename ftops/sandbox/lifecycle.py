"""Job lifecycle derived from time, shared by every dialect: no daemon, every request first
advances the world to `now`.

`Simulation.advance(now)` replays, in time order, every transition that should have happened
since the last request (validation done, queue slot free, training finished), writing the
events, checkpoints, result files and models those transitions produce. It only reads the
database and the clock, so the same clock gives the same history; losses are drawn from a
generator seeded by the job's seed.

Timeline of a job (durations divided by `SandboxSettings.time_scale`):
validating_files (VALIDATE_BASE_S + size) -> queued (at least QUEUE_MIN_S, and until one of
`max_running_jobs` slots is free) -> running (RUN_BASE_S + trained tokens / model throughput)
-> succeeded. Pause stops the running clock and frees the slot; resume re-queues.

These are the core's neutral states (stored in `jobs.status`): validating_files, queued,
running, paused, succeeded, failed, cancelled. Each dialect maps them to its own words when it
renders a job (Together: pending, queued, running, compressing, uploading, completed, …). Events
carry a neutral `kind` (created, validating, validated, started, resumed, metrics, checkpoint,
model_created, completed, failed, cancelled, paused) that dialects word as they please; the
stored `message` is OpenAI's wording. The output model name is chosen by the dialect when the job
is created (`jobs.output_name`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sqlite3
from typing import Any

from ftops.sandbox.settings import SandboxSettings
from ftops.sandbox.store import Store, insert_file, new_id, write_bytes_atomic
from ftops.sandbox.validation import base_model_of

__all__ = ["Simulation", "method_hyperparameters", "metrics_at", "resolve_hyperparameters", "timestamp"]

MIN_EXAMPLES = 10  # OpenAI's minimum for a training file
VALIDATE_BASE_S = 20.0
VALIDATE_PER_MB_S = 1.0
QUEUE_MIN_S = 30.0
RUN_BASE_S = 120.0
MAX_METRIC_EVENTS = 200
CHECKPOINT_EPOCHS = 3
ACTIVE = ("validating_files", "queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")


def resolve_hyperparameters(method_type: str, requested: dict[str, Any], n_examples: int) -> dict[str, Any]:
    """Replace every "auto" the way OpenAI documents it.

    n_epochs: `ftops.datasets.resolve_n_epochs`. batch_size: ~0.2% of the examples, between 1 and
    256. learning_rate_multiplier: what real jobs report for "auto" (OpenAI documents no formula):
    2.0 at batch size 1-4 (small files, the common case), 1.8 from 5 on.
    DPO beta: 0.1. Reinforcement: compute_multiplier 1.0, eval_interval 1, eval_samples 1.
    """
    from ftops.datasets import resolve_n_epochs

    hp = dict(requested)
    n_epochs = hp.get("n_epochs", "auto")
    hp["n_epochs"] = resolve_n_epochs(n_examples, n_epochs if n_epochs != "auto" else "auto")
    batch = hp.get("batch_size", "auto")
    if batch == "auto" or batch is None:
        batch = max(1, min(256, round(n_examples * 0.002)))
    hp["batch_size"] = int(batch)
    lr = hp.get("learning_rate_multiplier", "auto")
    if lr == "auto" or lr is None:
        lr = 2.0 if hp["batch_size"] <= 4 else 1.8
    hp["learning_rate_multiplier"] = lr
    if method_type == "dpo" and hp.get("beta", "auto") == "auto":
        hp["beta"] = 0.1
    if method_type == "reinforcement":
        for key, default in (("compute_multiplier", 1.0), ("eval_interval", 1), ("eval_samples", 1)):
            if hp.get(key, "auto") == "auto":
                hp[key] = default
        hp.setdefault("reasoning_effort", "default")
    return hp


def metrics_at(seed: int, step: int, total_steps: int, with_validation: bool) -> dict[str, float]:
    """Deterministic metrics of one step: a decaying loss with seeded noise."""
    rng = random.Random(f"{seed}:{step}")
    progress = step / max(1, total_steps)
    base = 0.25 + 1.75 * math.exp(-4.0 * progress)
    train_loss = base * (1.0 + 0.2 * (rng.random() - 0.5))
    accuracy = min(1.0, max(0.0, 1.0 - base / 2.4 + 0.04 * (rng.random() - 0.5)))
    out: dict[str, float] = {
        "step": float(step),
        "train_loss": round(train_loss, 5),
        "train_mean_token_accuracy": round(accuracy, 5),
    }
    if with_validation:
        valid = base * 1.08 * (1.0 + 0.1 * (rng.random() - 0.5))
        out["valid_loss"] = round(valid, 5)
        out["valid_mean_token_accuracy"] = round(min(1.0, max(0.0, accuracy - 0.02)), 5)
    return out


def timestamp(value: float | None) -> int | None:
    """API timestamps are whole seconds; the simulation keeps fractions."""
    return None if value is None else int(value)


def method_hyperparameters(method: dict[str, Any]) -> dict[str, Any]:
    section = method.get(method["type"]) or {}
    hp: dict[str, Any] = section.get("hyperparameters") or {}
    return hp


class Simulation:
    """Advances the jobs of one database to a point in time, inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection, store: Store, settings: SandboxSettings) -> None:
        self.conn = conn
        self.store = store
        self.settings = settings

    # -- helpers -----------------------------------------------------------------------------
    def _scaled(self, seconds: float) -> float:
        return seconds / self.settings.time_scale

    def _update(self, job_id: str, **cols: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in cols)
        self.conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*cols.values(), job_id))

    def _job(self, job_id: str) -> sqlite3.Row:
        row: sqlite3.Row = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row

    def event(self, job_id: str, at: float, message: str, *, level: str = "info", type: str = "message",
              data: dict[str, Any] | None = None, kind: str | None = None) -> None:
        """Record an event; `kind` is the neutral name dialects render (see the module docstring)."""
        self.conn.execute(
            "INSERT INTO events(id, job_id, created_at, level, message, type, data, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (new_id("ftevent-"), job_id, at, level, message, type, json.dumps(data) if data is not None else None,
             kind),
        )

    def _sim_time(self) -> float:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'sim_time'").fetchone()
        return float(row[0]) if row else 0.0

    def _set_sim_time(self, t: float) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('sim_time', ?)", (repr(t),))

    # -- the step ------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Apply, in time order, every transition due at or before `now`."""
        cursor = self._sim_time()
        while True:
            # The next transition due: per status, the earliest (time, seq) found by SQLite (an indexed
            # status scan in C, not every active row through Python on each request).
            running = self.conn.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()[0]
            queries = [(0, "validating_files", "validate_until"),
                       (1, "running", "segment_start + run_seconds - elapsed_before")]
            if running < self.settings.max_running_jobs:
                queries.append((2, "queued", "eligible_at"))
            best: tuple[float, int, int, sqlite3.Row] | None = None
            for kind, status, due in queries:
                j = self.conn.execute(
                    f"SELECT *, max({due}, ?) AS due_at FROM jobs WHERE status = ? ORDER BY due_at, seq LIMIT 1",
                    (cursor, status)).fetchone()
                if j is not None:
                    cand = (float(j["due_at"]), kind, j["seq"], j)
                    if best is None or cand[:3] < best[:3]:
                        best = cand
            if best is None or best[0] > now:
                break
            t, kind, _, job = best
            cursor = t
            if kind == 0:
                self._finish_validation(job, t)
            elif kind == 1:
                self._succeed(job, t)
            else:
                self._start(job, t)
        for j in self.conn.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall():
            self.progress(j, now)
        self._set_sim_time(max(cursor, now))

    # -- transitions ---------------------------------------------------------------------------
    def _finish_validation(self, job: sqlite3.Row, t: float) -> None:
        method = json.loads(job["method"])
        method_type = method["type"]
        report = None
        for param in ("training_file", "validation_file"):
            file_id = job[param]
            if file_id is None:
                continue
            failure, this_report = self._check_file(file_id, param, method_type, job["model"])
            if failure is not None:
                self._update(job["id"], status="failed", error=json.dumps(failure), finished_at=t)
                self.event(job["id"], t, failure["message"], level="error", kind="failed")
                return
            if param == "training_file":
                report = this_report
        assert report is not None
        n_examples = int(report.stats.examples)
        hp = resolve_hyperparameters(method_type, method_hyperparameters(method), n_examples)
        method.setdefault(method_type, {})["hyperparameters"] = hp
        steps_per_epoch = max(1, math.ceil(n_examples / hp["batch_size"]))
        trained_tokens = int(report.stats.trained_tokens_per_epoch) * hp["n_epochs"]
        base = base_model_of(job["model"])
        throughput = job["tokens_per_second"] or (base.tokens_per_second if base else 400.0)
        self._update(
            job["id"], status="queued", method=json.dumps(method), n_examples=n_examples,
            steps_per_epoch=steps_per_epoch, n_epochs=hp["n_epochs"], total_steps=steps_per_epoch * hp["n_epochs"],
            trained_tokens=trained_tokens, run_seconds=self._scaled(RUN_BASE_S + trained_tokens / throughput),
            queued_at=t, eligible_at=t + self._scaled(QUEUE_MIN_S),
        )
        self.event(job["id"], t, "Files validated, moving job to queued state", kind="validated")

    def _check_file(self, file_id: str, param: str, method_type: str,
                    model: str) -> tuple[dict[str, Any] | None, Any]:
        kind = "training" if param == "training_file" else "validation"
        row = self.conn.execute("SELECT * FROM files WHERE id = ? AND deleted = 0", (file_id,)).fetchone()
        if row is None:
            return {"code": f"invalid_{param}", "param": param,
                    "message": f"The job failed due to an invalid {kind} file. File {file_id} was not found."}, None
        from ftops.datasets import check_dataset

        self.store.cache_dir.mkdir(parents=True, exist_ok=True)
        base = base_model_of(model)
        report = check_dataset(self.store.file_path(file_id), method=method_type, base_model=base.id if base else None,
                               cache_dir=self.store.cache_dir, sha256=row["sha256"],
                               uploads_api=True, workers=1)  # bytes are in already; no worker processes
        # The 10-example minimum applies to training files only, as on OpenAI.
        errors = [e for e in report.errors if param == "training_file" or e.code != "too_few_examples"]
        if not errors and report.stats.examples > 0:
            return None, report
        format_errors = [e for e in errors if e.code != "too_few_examples"]
        if errors and not format_errors:
            # OpenAI's own code and wording for a file that is well-formed but too small.
            n = int(report.stats.examples)
            return {"code": "invalid_n_examples", "param": param,
                    "message": f"Training file has {n} example(s), but must have at least {MIN_EXAMPLES} "
                               "examples"}, report
        if format_errors:
            # OpenAI cites the example (1-based, blank lines skipped), not the line or an internal code;
            # ftops's own `dataset check` keeps its line-precise messages.
            first = format_errors[0]
            where = f" Example {self._example_number(file_id, first.line)}:" if first.line else ""
            detail = f"Invalid file format.{where} {first.message[:1].upper()}{first.message[1:]}"
        else:
            detail = "Invalid file format. The file contains no examples."
        return {"code": f"invalid_{param}", "param": param,
                "message": f"The job failed due to an invalid {kind} file. {detail}"}, report

    def _example_number(self, file_id: str, line: int) -> int:
        """The 1-based example a 1-based line of a JSONL file holds (blank lines are not examples)."""
        n = 0
        with open(self.store.file_path(file_id), "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if raw.strip():
                    n += 1
                if number >= line:
                    break
        return max(n, 1)

    def _start(self, job: sqlite3.Row, t: float) -> None:
        message = "Fine-tuning job started" if job["elapsed_before"] == 0 else "Fine-tuning job resumed training"
        self._update(job["id"], status="running", segment_start=t)
        self.event(job["id"], t, message, kind="started" if job["elapsed_before"] == 0 else "resumed")

    def progress(self, job: sqlite3.Row, t: float, *, final: bool = False) -> None:
        """Write the metric events and checkpoints of the steps done by `t` (job must be running);
        `final` forces the last step, which float rounding could otherwise leave undone."""
        total = int(job["total_steps"])
        elapsed = job["elapsed_before"] + (t - job["segment_start"])
        step_now = total if final else min(total, math.floor(elapsed / job["run_seconds"] * total + 1e-6))
        last = int(job["last_step"])
        if step_now <= last:
            return
        stride = max(1, total // MAX_METRIC_EVENTS)
        spe = int(job["steps_per_epoch"])
        n_epochs = int(job["n_epochs"])
        with_valid = job["validation_file"] is not None
        for step in range(last + 1, step_now + 1):
            at = job["segment_start"] + step * job["run_seconds"] / total - job["elapsed_before"]
            is_epoch_end = step % spe == 0
            if step == 1 or step == total or step % stride == 0 or is_epoch_end:
                m = metrics_at(job["seed"], step, total, with_valid)
                message = f"Step {step}/{total}: training loss={m['train_loss']:.4f}"
                if with_valid:
                    message += f", validation loss={m['valid_loss']:.4f}"
                data: dict[str, Any] = {"step": step, "total_steps": total,
                                        **{k: v for k, v in m.items() if k != "step"}}
                self.event(job["id"], at, message, type="metrics", data=data, kind="metrics")
            if is_epoch_end and step // spe > n_epochs - CHECKPOINT_EPOCHS:
                self._checkpoint(job, step, at, with_valid)
        self._update(job["id"], last_step=step_now)

    def _checkpoint(self, job: sqlite3.Row, step: int, at: float, with_valid: bool) -> None:
        m = metrics_at(job["seed"], step, int(job["total_steps"]), with_valid)
        if with_valid:
            m["full_valid_loss"] = m["valid_loss"]
            m["full_valid_mean_token_accuracy"] = m["valid_mean_token_accuracy"]
        name = f"{self.model_name(job)}:ckpt-step-{step}"
        self.conn.execute(
            "INSERT INTO checkpoints(id, job_id, created_at, step_number, metrics, model) VALUES (?, ?, ?, ?, ?, ?)",
            (new_id("ftckpt-"), job["id"], at, step, json.dumps(m), name),
        )
        self.event(job["id"], at, f"Checkpoint created at step {step}", kind="checkpoint", data={"step": step})

    def model_name(self, job: sqlite3.Row) -> str:
        """The fine-tuned model's name: chosen by the dialect at creation; rows made before
        dialects existed (all OpenAI's) get OpenAI's `ft:{base}:{org}:{suffix}:{id}`."""
        if job["output_name"]:
            return str(job["output_name"])
        base = base_model_of(job["model"])
        base_id = base.id if base else job["model"]
        return f"ft:{base_id}:{self.settings.org}:{job['suffix'] or ''}:{job['short_id']}"

    def _succeed(self, job: sqlite3.Row, t: float) -> None:
        self.progress(job, t, final=True)
        job = self._job(job["id"])
        total = int(job["total_steps"])
        with_valid = job["validation_file"] is not None
        lines = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
        for step in range(1, total + 1):
            m = metrics_at(job["seed"], step, total, with_valid)
            lines.append(f"{step},{m['train_loss']},{m['train_mean_token_accuracy']},"
                         f"{m.get('valid_loss', '')},{m.get('valid_mean_token_accuracy', '')}")
        data = ("\n".join(lines) + "\n").encode()
        file_id = new_id("file-")
        write_bytes_atomic(self.store.file_path(file_id), data)
        insert_file(self.conn, file_id=file_id, created_at=t, size=len(data), filename="step_metrics.csv",
                    purpose="fine-tune-results", sha256=hashlib.sha256(data).hexdigest(), dialect=job["dialect"])
        name = self.model_name(job)
        self.conn.execute("INSERT OR REPLACE INTO models(id, created, owned_by, job_id, dialect) VALUES (?, ?, ?, ?, ?)",
                          (name, t, f"org-{self.settings.org}", job["id"], job["dialect"]))
        self._update(job["id"], status="succeeded", finished_at=t, fine_tuned_model=name, result_file=file_id)
        self.event(job["id"], t, f"New fine-tuned model created: {name}", kind="model_created")
        self.event(job["id"], t, "The job has successfully completed", kind="completed")

    # -- actions requested by clients (caller has advanced to `now`) -----------------------------
    def cancel(self, job: sqlite3.Row, now: float) -> None:
        if job["status"] == "running":
            self.progress(job, now)
        self._update(job["id"], status="cancelled", finished_at=now)
        self.event(job["id"], now, "Fine-tuning job cancelled", kind="cancelled")
        self.advance(now)

    def pause(self, job: sqlite3.Row, now: float) -> None:
        self.progress(job, now)
        elapsed = job["elapsed_before"] + (now - job["segment_start"])
        self._update(job["id"], status="paused", elapsed_before=elapsed, segment_start=None)
        self.event(job["id"], now, "Fine-tuning job paused", kind="paused")
        self.advance(now)

    def resume(self, job: sqlite3.Row, now: float) -> None:
        self._update(job["id"], status="queued", queued_at=now, eligible_at=now)
        self.event(job["id"], now, "Fine-tuning job resumed", kind="resumed")
        self.advance(now)
