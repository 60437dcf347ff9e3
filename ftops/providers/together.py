"""TogetherProvider: Together AI's fine-tuning API (`/files`, `/fine-tunes`), per its official spec.

Together's jobs carry no metadata, so ftops's identity lives in the job's `suffix`: the user's
suffix (if any), a hyphen, and a 17-character tag `x<P4><G10>n<attempt>` where P4 is a hash of the
project and G10 a hash of (project, model, fingerprint). The tag is read back from `suffix` (or, when
a listing omits it, from `model_output_name`, which contains the suffix). 40 bits of G per project
bound the chance that two declarations collide at about n²/2⁴¹ (n models in one project).

Files: the spec's `POST /files/upload` (multipart, `purpose=fine-tune`, `file_type=jsonl`), named
with the sha256 of their bytes. Cost: `POST /fine-tunes/estimate-price` once the training file is
on Together, else the published price table below (exact model ids only).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftops.providers.base import (
    Capabilities,
    GB,
    Identity,
    JobCheckpoint,
    JobError,
    JobEvent,
    JobState,
    MB,
    ModelSpec,
    ParamSpec,
    Problem,
    ProgressCallback,
    RemoteFile,
    RemoteJob,
    RemoteModel,
    bind_files,
    hashed_group,
    project_key,
    remote_filename,
    sha_of_remote_name,
    short_hash,
    unix_seconds,
)
from ftops.providers.errors import APIStatusError, ProviderError
from ftops.providers.http import HttpProvider, _FileSlice

DEFAULT_BASE_URL = "https://api.together.xyz/v1"
TAG_CHARS = 17  # "x" + 4 + 10 + "n" + one attempt digit (attempts >= 10 take one more)
_TAG = re.compile(r"x([0-9a-f]{4})([0-9a-f]{10})n(\d{1,3})")

_BOTH = frozenset({"supervised", "dpo"})
_PRICES_SOURCE = ("Together AI pricing page, fine-tuning table (together.ai/pricing), USD per 1M tokens "
                  "(training tokens x epochs + evaluation tokens), LoRA tiers, as published 2025; exact model "
                  "ids only; override with `pricing:`")
_SMALL = {"supervised": 0.48, "dpo": 1.20}
_MEDIUM = {"supervised": 1.50, "dpo": 3.75}
_LARGE = {"supervised": 2.90, "dpo": 7.25}
_TIERS = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference": _SMALL,
    "meta-llama/Meta-Llama-3.1-8B-Reference": _SMALL,
    "meta-llama/Llama-3.2-3B-Instruct": _SMALL,
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference": _LARGE,
    "meta-llama/Llama-3.3-70B-Instruct-Reference": _LARGE,
    "Qwen/Qwen2.5-7B-Instruct": _SMALL,
    "Qwen/Qwen2.5-14B-Instruct": _SMALL,
    "Qwen/Qwen2.5-32B-Instruct": _MEDIUM,
    "Qwen/Qwen2.5-72B-Instruct": _LARGE,
    "mistralai/Mistral-7B-Instruct-v0.2": _SMALL,
    "google/gemma-2-27b-it": _MEDIUM,
}

TOGETHER_CAPABILITIES = Capabilities(
    name="together",
    title="Together AI",
    default_base_url=DEFAULT_BASE_URL,
    key_env="TOGETHER_API_KEY",
    methods=_BOTH,
    hyperparameters=(
        ParamSpec(name="n_epochs", kind="int", min=1, max=20, wire="n_epochs", methods=_BOTH),
        ParamSpec(name="batch_size", kind="int", min=1, max=256, wire="batch_size", methods=_BOTH,
                  description='"auto" sends "max"'),
        ParamSpec(name="beta", kind="float", min=0, max=2, min_exclusive=True, wire="training_method.dpo_beta",
                  methods=frozenset({"dpo"})),
    ),
    refused_hyperparameters={
        "learning_rate_multiplier": "Together takes an absolute learning rate: `options: {learning_rate: 1.0e-5}`",
    },
    options=(
        ParamSpec(name="learning_rate", kind="float", min=0, max=1, min_exclusive=True, auto=False,
                  wire="learning_rate", methods=_BOTH),
        ParamSpec(name="lora", kind="bool", auto=False, wire="training_type.type", methods=_BOTH,
                  description="true: LoRA (Together's default), false: full fine-tuning"),
        ParamSpec(name="lora_r", kind="int", min=1, max=512, auto=False, wire="training_type.lora_r", methods=_BOTH),
        ParamSpec(name="lora_alpha", kind="int", min=1, max=1024, auto=False, wire="training_type.lora_alpha",
                  methods=_BOTH),
        ParamSpec(name="lora_dropout", kind="float", min=0, max=1, auto=False, wire="training_type.lora_dropout",
                  methods=_BOTH),
        ParamSpec(name="lora_trainable_modules", kind="str", auto=False,
                  wire="training_type.lora_trainable_modules", methods=_BOTH),
        ParamSpec(name="warmup_ratio", kind="float", min=0, max=1, auto=False, wire="warmup_ratio", methods=_BOTH),
        ParamSpec(name="max_grad_norm", kind="float", min=0, auto=False, wire="max_grad_norm", methods=_BOTH),
        ParamSpec(name="weight_decay", kind="float", min=0, auto=False, wire="weight_decay", methods=_BOTH),
        ParamSpec(name="n_checkpoints", kind="int", min=1, max=100, auto=False, wire="n_checkpoints", methods=_BOTH),
        ParamSpec(name="n_evals", kind="int", min=0, max=100, auto=False, wire="n_evals", methods=_BOTH),
        ParamSpec(name="lr_scheduler", kind="choice", choices=("linear", "cosine"), auto=False,
                  wire="lr_scheduler.lr_scheduler_type", methods=_BOTH),
        ParamSpec(name="min_lr_ratio", kind="float", min=0, max=1, auto=False,
                  wire="lr_scheduler.lr_scheduler_args.min_lr_ratio", methods=_BOTH),
        ParamSpec(name="train_on_inputs", kind="bool", auto=True, wire="training_method.train_on_inputs",
                  methods=frozenset({"supervised"})),
        ParamSpec(name="from_checkpoint", kind="str", auto=False, wire="from_checkpoint", methods=_BOTH,
                  description="continue from another job: JOB_ID, OUTPUT_MODEL_NAME, optionally :STEP"),
        ParamSpec(name="wandb_project_name", kind="str", auto=False, wire="wandb_project_name", methods=_BOTH,
                  description="W&B logging; the W&B key is read from $WANDB_API_KEY at apply, never from YAML"),
        ParamSpec(name="wandb_name", kind="str", auto=False, wire="wandb_name", methods=_BOTH),
    ),
    seed=True,
    user_metadata=False,
    max_metadata_pairs=0,
    metadata_filter=False,
    max_suffix_chars=40,
    suffix_pattern=r"^[A-Za-z0-9_-]+$",
    identity_chars=TAG_CHARS,
    identity="a 17-character tag derived from project, model, fingerprint and attempt, at the end of the suffix",
    uploads_api=False,
    max_file_bytes=50 * GB,
    max_upload_bytes=50 * GB,
    data_formats=frozenset({"chat", "preference", "prompt_completion"}),
    job_creates_per_hour=100,
    file_uploads_per_hour=100,
    pause_resume=False,
    checkpoints=True,
    price_estimate_endpoint=True,
    prices={"supervised": {m: t["supervised"] for m, t in _TIERS.items()},
            "dpo": {m: t["dpo"] for m, t in _TIERS.items()}},
    prices_source=_PRICES_SOURCE,
    fine_tuned_model_pattern="{account}/{base}-{suffix}-{random}",
)

_STATES = {
    "pending": JobState.PENDING, "queued": JobState.PENDING, "running": JobState.RUNNING,
    "compressing": JobState.RUNNING, "uploading": JobState.RUNNING,
    # Will never produce a model; never cancelled twice.
    "cancel_requested": JobState.CANCELLING, "cancelled": JobState.CANCELLED, "error": JobState.FAILED,
    "completed": JobState.SUCCEEDED,
}


class TogetherProvider(HttpProvider):
    """Together AI over an `httpx.Client` whose base_url ends in `/v1`."""

    capabilities = TOGETHER_CAPABILITIES

    def __init__(self, http: Any, *, api_key: str | None, environ: Mapping[str, str] | None = None,
                 capabilities: Capabilities | None = None, **kwargs: Any) -> None:
        if capabilities is not None:
            self.capabilities = capabilities
        super().__init__(http, api_key=api_key, **kwargs)
        self._environ = dict(environ or {})

    @classmethod
    def from_settings(cls, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                      *, require_key: bool = True, **kwargs: Any) -> TogetherProvider:
        if require_key:
            cls.require_key(api_key, kwargs.get("api_key_env", ""))
        return cls(cls.make_client(base_url or DEFAULT_BASE_URL, timeout), api_key=api_key, **kwargs)

    def _secrets(self) -> tuple[str, ...]:
        wandb = self._environ.get("WANDB_API_KEY", "").strip()
        return super()._secrets() + ((wandb,) if wandb else ())

    # ----------------------------------------------------------------- pure

    def validate(self, spec: ModelSpec) -> list[Problem]:
        out = super().validate(spec)
        o = spec.options
        if o.get("lora") is False and any(k in o for k in ("lora_r", "lora_alpha", "lora_dropout",
                                                          "lora_trainable_modules")):
            out.append(Problem(path=("options", "lora"), code="provider.invalid_value",
                               message="`lora: false` (full fine-tuning) cannot take LoRA settings",
                               hint="remove lora_r/lora_alpha/lora_dropout, or set `lora: true`",
                               on_provider="lora" not in spec.options_from_model))
        if "lora_alpha" in o and "lora_r" not in o:
            out.append(Problem(path=("options", "lora_alpha"), code="provider.invalid_value",
                               message="`lora_alpha` needs `lora_r` (Together requires both for LoRA settings)",
                               hint="add e.g. `lora_r: 16`"))
        return out

    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        o = dict(spec.options)
        hp = {k: v for k, v in spec.hyperparameters.items() if v != "auto"}
        body: dict[str, Any] = {"model": spec.base_model, "training_file": training}
        if validation is not None:
            body["validation_file"] = validation
        if "n_epochs" in hp:
            body["n_epochs"] = hp["n_epochs"]
        if "batch_size" in hp:
            body["batch_size"] = hp["batch_size"]
        for key in ("learning_rate", "warmup_ratio", "max_grad_norm", "weight_decay"):
            if key in o:
                body[key] = float(o[key])
        for key in ("n_checkpoints", "n_evals", "from_checkpoint", "wandb_project_name", "wandb_name"):
            if key in o:
                body[key] = o[key]
        if spec.method == "dpo":
            tm: dict[str, Any] = {"method": "dpo"}
            if "beta" in hp:
                tm["dpo_beta"] = float(hp["beta"])
        else:
            tm = {"method": "sft", "train_on_inputs": o.get("train_on_inputs", "auto")}
        body["training_method"] = tm
        if o.get("lora") is False:
            body["training_type"] = {"type": "Full"}
        elif "lora_r" in o:
            tt: dict[str, Any] = {"type": "Lora", "lora_r": o["lora_r"], "lora_alpha": o.get("lora_alpha", 2 * o["lora_r"])}
            if "lora_dropout" in o:
                tt["lora_dropout"] = float(o["lora_dropout"])
            if "lora_trainable_modules" in o:
                tt["lora_trainable_modules"] = o["lora_trainable_modules"]
            body["training_type"] = tt
        if "lr_scheduler" in o:
            sched: dict[str, Any] = {"lr_scheduler_type": o["lr_scheduler"]}
            if "min_lr_ratio" in o:
                sched["lr_scheduler_args"] = {"min_lr_ratio": float(o["min_lr_ratio"])}
            body["lr_scheduler"] = sched
        if spec.seed is not None:
            body["random_seed"] = spec.seed
        if spec.suffix is not None:
            body["suffix"] = spec.suffix
        return body

    def group_key(self, project: str, model: str, fingerprint: str) -> str:
        return hashed_group(project, model, fingerprint)

    def tag(self, identity: Identity) -> str:
        return f"x{self.group_key(identity.project, identity.model, identity.fingerprint)}n{identity.attempt}"

    def job_state(self, status: str) -> JobState:
        return _STATES.get(status, JobState.UNKNOWN)

    # ----------------------------------------------------------------- parsing

    def _job(self, obj: Any, method: str, path: str) -> RemoteJob:
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise APIStatusError(f"{method} {path}: unexpected response shape for a fine-tune job",
                                 method=method, path=path)
        status = str(obj.get("status") or "")
        carrier = " ".join(str(obj.get(k) or "") for k in ("suffix", "model_output_name", "output_name"))
        group = attempt = None
        m = None
        for m in _TAG.finditer(carrier):
            pass
        if m is not None:
            group, attempt = m.group(1) + m.group(2), int(m.group(3))
        err = None
        if self.job_state(status) is JobState.FAILED:
            text = next((e.get("message") for e in reversed(obj.get("events") or [])
                         if isinstance(e, dict) and e.get("level") == "error"), None)
            err = JobError(code="error", message=text or obj.get("error") or "the job failed")
        seed = obj.get("random_seed")
        return RemoteJob(
            id=obj["id"], status=status, state=self.job_state(status), model=str(obj.get("model") or ""),
            fine_tuned_model=(obj.get("model_output_name") or obj.get("output_name")
                              if self.job_state(status) is JobState.SUCCEEDED else None),
            training_file=obj.get("training_file"), validation_file=obj.get("validation_file") or None,
            seed=seed if isinstance(seed, int) else None,
            trained_tokens=obj.get("token_count") if isinstance(obj.get("token_count"), int) else None,
            created_at=unix_seconds(obj.get("created_at")),
            finished_at=unix_seconds(obj.get("updated_at")) if self.job_state(status).terminal else None,
            error=err, group=group, attempt=attempt,
            hyperparameters={k: obj[k] for k in ("n_epochs", "batch_size", "learning_rate") if k in obj},
        )

    def _file(self, obj: Any, method: str, path: str) -> RemoteFile:
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise APIStatusError(f"{method} {path}: unexpected response shape for a file", method=method, path=path)
        name = str(obj.get("filename") or "")
        return RemoteFile(id=obj["id"], filename=name, bytes=obj.get("bytes"), purpose=str(obj.get("purpose") or ""),
                          status="processed" if obj.get("Processed") else "uploaded",
                          created_at=unix_seconds(obj.get("created_at")), sha256=sha_of_remote_name(name))

    def _data(self, body: Any, method: str, path: str) -> list[Any]:
        data = body.get("data") if isinstance(body, dict) else body
        if not isinstance(data, list):
            raise APIStatusError(f"{method} {path}: expected a list", method=method, path=path)
        return data

    # ----------------------------------------------------------------- files

    def list_files(self) -> list[RemoteFile]:
        return [f for f in (self._file(o, "GET", "/files") for o in
                            self._data(self._request_json("GET", "/files"), "GET", "/files"))
                if f.purpose in ("fine-tune", "")]

    def upload_file(self, path: Path, *, sha256: str, display_path: str,
                    on_progress: ProgressCallback | None = None) -> RemoteFile:
        """`POST /files/upload`, streamed from disk; the bytes sent are hashed and must match `sha256`."""
        path = Path(path)
        size = path.stat().st_size
        if size > self.capabilities.max_file_bytes:
            raise ProviderError(f"{path}: {size} bytes exceeds Together's limit of {self.capabilities.max_file_bytes}",
                                code="file_too_large")
        filename = remote_filename(display_path, sha256)
        slices: list[_FileSlice] = []
        with open(path, "rb") as f:
            def files() -> Any:
                cb = (lambda n: on_progress(n, size)) if on_progress else None
                slices.append(_FileSlice(f, 0, size, cb, hasher=hashlib.sha256()))
                return {"file": (filename, slices[-1], "application/jsonl")}
            body = self._request_json("POST", "/files/upload", files=files,
                                      data={"purpose": "fine-tune", "file_name": filename, "file_type": "jsonl"})
        remote = self._file(body, "POST", "/files/upload")
        got = slices[-1].hexdigest()
        if got is not None and got != sha256:
            try:
                self.delete_file(remote.id)
            finally:
                raise ProviderError(f"{path} changed while it was uploaded (sha256 {got[:12]}…, planned "
                                    f"{sha256[:12]}…); the upload was deleted", code="dataset_changed_during_upload")
        return remote.model_copy(update={"sha256": sha256})

    def delete_file(self, file_id: str) -> None:
        self._send("DELETE", f"/files/{file_id}")

    # ----------------------------------------------------------------- jobs

    def _all_jobs(self) -> list[RemoteJob]:
        return [self._job(o, "GET", "/fine-tunes") for o in
                self._data(self._request_json("GET", "/fine-tunes"), "GET", "/fine-tunes")]

    def list_jobs(self, project: str) -> list[RemoteJob]:
        """One list of every job, kept when its suffix tag names this project (no server-side filter)."""
        pk = project_key(project)
        return [j for j in self._all_jobs() if j.group is not None and j.group.startswith(pk)]

    def get_job(self, job_id: str) -> RemoteJob:
        path = f"/fine-tunes/{job_id}"
        return self._job(self._request_json("GET", path), "GET", path)

    def create_job(self, body: Mapping[str, Any], identity: Identity, files: Mapping[str, str]) -> RemoteJob:
        out = bind_files(body, files)
        user = out.pop("suffix", None)
        tag = self.tag(identity)
        out["suffix"] = f"{user}-{tag}" if user else tag
        wandb = self._environ.get("WANDB_API_KEY", "").strip()
        if wandb and out.get("wandb_project_name"):
            out["wandb_api_key"] = wandb
        path = "/fine-tunes"
        return self._job(self._request_json("POST", path, json=out, safe_to_repeat=False), "POST", path)

    def cancel_job(self, job_id: str) -> RemoteJob:
        path = f"/fine-tunes/{job_id}/cancel"
        return self._job(self._request_json("POST", path), "POST", path)

    def list_events(self, job_id: str, after: str | None = None, limit: int | None = None) -> list[JobEvent]:
        path = f"/fine-tunes/{job_id}/events"
        out: list[JobEvent] = []
        for i, e in enumerate(self._data(self._request_json("GET", path), "GET", path)):
            if isinstance(e, dict):
                out.append(JobEvent(id=str(e.get("id") or f"{job_id}-event-{i}"), created_at=unix_seconds(e.get("created_at")),
                                    level=str(e.get("level") or "info"), message=str(e.get("message") or ""),
                                    type=e.get("type") if isinstance(e.get("type"), str) else None))
        out.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return out[:limit] if limit is not None else out

    def list_checkpoints(self, job_id: str) -> list[JobCheckpoint]:
        path = f"/fine-tunes/{job_id}/checkpoints"
        out: list[JobCheckpoint] = []
        for i, c in enumerate(self._data(self._request_json("GET", path), "GET", path)):
            if isinstance(c, dict):
                step = c.get("step")
                out.append(JobCheckpoint(
                    id=str(c.get("name") or f"{job_id}:{step}"), created_at=unix_seconds(c.get("timestamp")),
                    fine_tuned_model_checkpoint=str(c.get("name") or c.get("path") or ""),
                    fine_tuning_job_id=job_id, step_number=int(step) if isinstance(step, int) else i + 1))
        return out

    # ----------------------------------------------------------------- models, cost, inference

    def list_models(self) -> list[RemoteModel]:
        out: list[RemoteModel] = []
        for o in self._data(self._request_json("GET", "/models"), "GET", "/models"):
            if isinstance(o, dict) and isinstance(o.get("id"), str):
                out.append(RemoteModel(id=o["id"], created=o.get("created") if isinstance(o.get("created"), int)
                                       else None, owned_by=o.get("organization") or o.get("owned_by")))
        return out

    def estimate_price(self, body: Mapping[str, Any], files: Mapping[str, str]) -> float | None:
        bound = bind_files(body, files)
        req = {k: copy.deepcopy(bound[k]) for k in ("training_file", "validation_file", "model", "n_epochs",
                                                   "n_evals", "training_method", "training_type", "from_checkpoint")
               if k in bound}
        answer = self._request_json("POST", "/fine-tunes/estimate-price", json=req, safe_to_repeat=True)
        price = answer.get("estimated_total_price") if isinstance(answer, dict) else None
        if isinstance(price, (int, float)) and not isinstance(price, bool) and price >= 0 and price == price \
                and price != float("inf"):
            return float(price)
        return None

    def chat(self, model: str, messages: list[dict[str, Any]]) -> str:
        return self._chat_completions("/chat/completions", model, messages)


__all__ = ["DEFAULT_BASE_URL", "TOGETHER_CAPABILITIES", "TogetherProvider", "MB"]
