"""Nebius Token Factory's dialect under /nebius/v1: OpenAI's routes with Nebius's create body.

An independent reading of docs.tokenfactory.nebius.com ("Create a fine-tuning job"): the body is
`model`, `training_file`, `validation_file`, `hyperparameters` {batch_size, learning_rate, n_epochs,
warmup_ratio, weight_decay, packing, max_grad_norm, context_length, lora, lora_r, lora_alpha,
lora_dropout}, `integrations`, `seed`, `suffix`, `tags`; there is no `metadata` (a sent one is
ignored, not stored) and the job list has no filter. Jobs show their `suffix` and hyperparameters.
Base models are open-weights ids from a small sandbox list (`NEBIUS_MODELS`).
"""

from __future__ import annotations

import json
import random
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.app import int_arg
from ftops.sandbox.dialects.openai import OpenAIDialect, render_job
from ftops.sandbox.errors import bad_request
from ftops.sandbox.lifecycle import VALIDATE_BASE_S, VALIDATE_PER_MB_S
from ftops.sandbox.store import new_id
from ftops.sandbox.validation import _check_file

__all__ = ["NEBIUS_MODELS", "NebiusDialect"]

MB = 1024 * 1024
NEBIUS_MODELS = ("meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama/Llama-3.3-70B-Instruct",
                 "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct", "Qwen/Qwen3-14B",
                 "Qwen/Qwen3-32B")
_FIELDS = {"model", "training_file", "validation_file", "hyperparameters", "method", "integrations", "seed",
           "suffix", "tags", "metadata"}
_HP: dict[str, type | tuple[type, ...]] = {
    "batch_size": int, "learning_rate": (int, float), "n_epochs": int, "warmup_ratio": (int, float),
    "weight_decay": (int, float), "packing": bool, "max_grad_norm": (int, float), "context_length": int,
    "lora": bool, "lora_r": int, "lora_alpha": int, "lora_dropout": (int, float),
}


class NebiusDialect(OpenAIDialect):
    """Nebius Token Factory's OpenAI-compatible fine-tuning API."""

    name = "nebius"
    prefix = "/nebius/v1"

    def rules(self) -> list[Rule]:
        return [r for r in super().rules() if not str(r.endpoint).startswith("upload")
                and r.endpoint not in ("job_pause", "job_resume")]

    def _render(self, row: Any) -> dict[str, Any]:
        obj = render_job(row, self.app.settings.org)
        extra = json.loads(row["extra"]) if row["extra"] else {}
        hp = dict(extra.get("hyperparameters") or {})
        for k in ("n_epochs", "batch_size"):
            hp[k] = obj["hyperparameters"].get(k, hp.get(k, "auto"))
        obj.update(hyperparameters=hp, suffix=row["suffix"], metadata=None, organization_id="")
        obj.pop("user_provided_suffix", None)
        return obj

    def h_jobs(self, request: Request) -> Response:
        if request.method == "POST":
            return self._create_job(request)
        limit = int_arg(request, "limit", 20, 1, 100)
        after = request.args.get("after")
        with self.app.tx() as (conn, _, _sim):
            if after:
                self._job_row(conn, after)
            rows = conn.execute(
                "SELECT * FROM jobs WHERE dialect = ? AND (? IS NULL OR seq < (SELECT seq FROM jobs WHERE id = ?))"
                " ORDER BY seq DESC", (self.name, after, after)).fetchall()
        return self.app.json({"object": "list", "data": [self._render(r) for r in rows[:limit]],
                              "has_more": len(rows) > limit})

    def h_job(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, _, _sim):
            return self.app.json(self._render(self._job_row(conn, job_id)))

    def _job_action(self, job_id: str, action: str) -> Response:
        super()._job_action(job_id, action)
        with self.app.tx() as (conn, _, _sim):
            return self.app.json(self._render(self._job_row(conn, job_id)))

    def _output_name(self, model: str, suffix: str | None, short_id: str) -> str:
        return f"{model}-{suffix}-{short_id}" if suffix else f"{model}-{short_id}"

    def _create_job(self, request: Request) -> Response:
        body = self.app.json_body(request)
        for key in body:
            if key not in _FIELDS:
                raise bad_request(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
        model = body.get("model")
        if model not in NEBIUS_MODELS:
            raise bad_request(f"Model {model} is not available for fine-tuning.", param="model",
                              code="model_not_available")
        hp = body.get("hyperparameters") or {}
        if not isinstance(hp, dict):
            raise bad_request("'hyperparameters' must be an object.", param="hyperparameters", code="invalid_type")
        for key, value in hp.items():
            want = _HP.get(key)
            if want is None:
                raise bad_request(f"Unrecognized hyperparameter: '{key}'.", param=f"hyperparameters.{key}",
                                  code="invalid_value")
            if isinstance(value, bool) != (want is bool) or not isinstance(value, want):
                raise bad_request(f"Invalid value for '{key}': {value!r}.", param=f"hyperparameters.{key}",
                                  code="invalid_value")
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or not 1 <= len(suffix) <= 64):
            raise bad_request("'suffix' must be a string of 1 to 64 characters.", param="suffix", code="invalid_value")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise bad_request("'seed' must be a non-negative integer.", param="seed", code="invalid_value")
        job_id = new_id("ftjob-")
        neutral = {k: hp.get(k, "auto") for k in ("batch_size", "n_epochs")}
        neutral["learning_rate_multiplier"] = "auto"  # Nebius's learning rate is absolute: kept in `extra`
        method: dict[str, Any] = {"type": "supervised", "supervised": {"hyperparameters": neutral}}
        with self.app.tx() as (conn, now, sim):
            self.app.rate_limit(conn, now, f"{self.name}:job_create", self.app.settings.job_creates_per_hour,
                                "fine-tuning job creations")
            training = _check_file(conn, body.get("training_file"), "training_file", self.name)
            validation = body.get("validation_file")
            if validation is not None:
                validation = _check_file(conn, validation, "validation_file", self.name)
            if seed is None:
                seed = random.Random(job_id).randrange(2**31 - 1)
            short_id = new_id("", 8)
            sizes = conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM files WHERE id IN (?, ?)",
                                 (training, validation)).fetchone()[0]
            validate_s = (VALIDATE_BASE_S + VALIDATE_PER_MB_S * sizes / MB) / self.app.settings.time_scale
            conn.execute(
                "INSERT INTO jobs(id, short_id, created_at, status, model, training_file, validation_file, method,"
                " legacy_hp, suffix, seed, metadata, integrations, validate_until, dialect, output_name,"
                " tokens_per_second, extra)"
                " VALUES (?, ?, ?, 'validating_files', ?, ?, ?, ?, 0, ?, ?, NULL, ?, ?, ?, ?, NULL, ?)",
                (job_id, short_id, now, model, training, validation, json.dumps(method), suffix, seed,
                 json.dumps(body["integrations"]) if body.get("integrations") else None, now + validate_s,
                 self.name, self._output_name(str(model), suffix, short_id),
                 json.dumps({"hyperparameters": hp, "tags": body.get("tags")})))
            self.app.record_rate_event(conn, now, f"{self.name}:job_create")
            sim.event(job_id, now, f"Created fine-tuning job: {job_id}", kind="created")
            sim.event(job_id, now, f"Validating training file: {training}", kind="validating")
            row = self._job_row(conn, job_id)
        return self.app.json(self._render(row))

    def h_models(self, request: Request) -> Response:
        with self.app.tx() as (conn, _, _sim):
            tuned = conn.execute("SELECT * FROM models WHERE deleted = 0 AND dialect = ? ORDER BY created",
                                 (self.name,)).fetchall()
        data = [{"id": m, "object": "model", "created": 1721172717, "owned_by": "system"} for m in NEBIUS_MODELS]
        data += [{"id": r["id"], "object": "model", "created": int(r["created"]), "owned_by": "organization"}
                 for r in tuned]
        return self.app.json({"object": "list", "data": data})
