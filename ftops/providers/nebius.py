"""NebiusProvider: Nebius Token Factory's fine-tuning API, OpenAI-compatible, for open-weights models.

What was relied on (docs.tokenfactory.nebius.com: "How to fine-tune your custom model" and the API
reference "Create a fine-tuning job"): base `https://api.tokenfactory.nebius.com/v1`, a bearer key
(`NEBIUS_API_KEY`), OpenAI's `/files` and `/fine_tuning/jobs` routes, and a create body of `model`,
`training_file`, `validation_file`, `hyperparameters` {batch_size, learning_rate, n_epochs,
warmup_ratio, weight_decay, packing, max_grad_norm, context_length, lora, lora_r, lora_alpha,
lora_dropout}, `integrations`, `seed`, `suffix` and a free-text `tags` string.

Identity: the create body has **no `metadata`**, and `tags` is a single string that the job object
does not document returning, so ftops does not rely on either. The job object does return `suffix`,
so ftops's identity is a tag at the end of the suffix, as for Together: `x<P4><G10>n<attempt>`
(project hash, (project, model, fingerprint) hash, attempt), filtered client-side from one job list.
A declared `metadata:` is refused (it would be dropped).

Extra hyperparameters go through `options:` in ftops's snake_case (the wire names are the same);
the learning rate is absolute (`options.learning_rate`), so `learning_rate_multiplier` is refused.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from ftops.providers.base import (
    Capabilities,
    GB,
    Identity,
    JobState,
    ModelSpec,
    ParamSpec,
    RemoteJob,
    bind_files,
    hashed_group,
    project_key,
    short_hash,
)
from ftops.providers.openai import OpenAIProvider

DEFAULT_BASE_URL = "https://api.tokenfactory.nebius.com/v1"
_TAG = re.compile(r"x([0-9a-f]{4})([0-9a-f]{10})n(\d{1,3})")
_SFT = frozenset({"supervised"})

NEBIUS_OPTIONS = (
    ParamSpec(name="learning_rate", kind="float", min=0, min_exclusive=True, wire="hyperparameters.learning_rate",
              description="absolute learning rate"),
    ParamSpec(name="lora", kind="bool", wire="hyperparameters.lora", auto=False,
              description="LoRA adapter (true) or full fine-tuning (false)"),
    ParamSpec(name="lora_r", kind="int", min=1, max=128, wire="hyperparameters.lora_r"),
    ParamSpec(name="lora_alpha", kind="int", min=1, max=256, wire="hyperparameters.lora_alpha"),
    ParamSpec(name="lora_dropout", kind="float", min=0, max=1, wire="hyperparameters.lora_dropout"),
    ParamSpec(name="warmup_ratio", kind="float", min=0, max=1, wire="hyperparameters.warmup_ratio"),
    ParamSpec(name="weight_decay", kind="float", min=0, wire="hyperparameters.weight_decay"),
    ParamSpec(name="packing", kind="bool", wire="hyperparameters.packing", auto=False),
    ParamSpec(name="max_grad_norm", kind="float", min=0, wire="hyperparameters.max_grad_norm"),
    ParamSpec(name="context_length", kind="int", min=1, wire="hyperparameters.context_length"),
)

NEBIUS_CAPABILITIES = Capabilities(
    name="nebius",
    title="Nebius Token Factory",
    default_base_url=DEFAULT_BASE_URL,
    key_env="NEBIUS_API_KEY",
    methods=_SFT,
    hyperparameters=(
        ParamSpec(name="n_epochs", kind="int", min=1, max=20, wire="hyperparameters.n_epochs"),
        ParamSpec(name="batch_size", kind="int", min=1, max=256, wire="hyperparameters.batch_size"),
    ),
    refused_hyperparameters={
        "learning_rate_multiplier": "Nebius takes an absolute learning rate: `options: {learning_rate: 1.0e-5}`",
    },
    options=NEBIUS_OPTIONS,
    seed=True,
    user_metadata=False,
    metadata_filter=False,
    max_suffix_chars=64,
    identity_chars=17,
    identity="a 17-character tag derived from project, model, fingerprint and attempt, at the end of the suffix "
             "(jobs carry no metadata)",
    uploads_api=False,
    max_file_bytes=5 * GB,
    max_upload_bytes=5 * GB,
    data_formats=frozenset({"chat", "prompt_completion"}),
    base_models=frozenset({"meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama/Llama-3.3-70B-Instruct",
                           "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
                           "Qwen/Qwen3-14B", "Qwen/Qwen3-32B"}),
    model_catalogue=False,  # GET /models lists inference models, not every fine-tunable base
    pause_resume=False,
    fine_tuned_model_pattern="{base}-{suffix}-{random}",
)




class NebiusProvider(OpenAIProvider):
    """OpenAI's wire format with Nebius's hyperparameters and a suffix identity tag."""

    capabilities = NEBIUS_CAPABILITIES

    def __init__(self, http: Any, *, api_key: str | None, capabilities: Capabilities | None = None,
                 **kwargs: Any) -> None:
        super().__init__(http, api_key=api_key, capabilities=capabilities or NEBIUS_CAPABILITIES, **kwargs)

    # ----------------------------------------------------------------- pure

    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        hp: dict[str, Any] = {k: v for k, v in spec.hyperparameters.items() if v not in (None, "auto")}
        for key, value in spec.options.items():
            if value == "auto":
                continue
            p = self.capabilities.param(key, option=True)
            hp[key] = float(value) if p is not None and p.kind == "float" and not isinstance(value, bool) else value
        body: dict[str, Any] = {"model": spec.base_model, "training_file": training}
        if validation is not None:
            body["validation_file"] = validation
        if hp:
            body["hyperparameters"] = dict(sorted(hp.items()))
        if spec.suffix is not None:
            body["suffix"] = spec.suffix
        if spec.seed is not None:
            body["seed"] = spec.seed
        if spec.integrations:
            body["integrations"] = copy.deepcopy(list(spec.integrations))
        return body


    def group_key(self, project: str, model: str, fingerprint: str) -> str:
        return hashed_group(project, model, fingerprint)

    def tag(self, identity: Identity) -> str:
        return f"x{self.group_key(identity.project, identity.model, identity.fingerprint)}n{identity.attempt}"

    def job_state(self, status: str) -> JobState:
        return super().job_state(status)

    # ----------------------------------------------------------------- jobs

    def _job(self, obj: Any, method: str, path: str) -> RemoteJob:
        job = super()._job(obj, method, path)
        carrier = " ".join(str(obj.get(k) or "") for k in ("suffix", "user_provided_suffix", "fine_tuned_model")
                           ) if isinstance(obj, dict) else ""
        m = None
        for m in _TAG.finditer(carrier):
            pass
        if m is None:
            return job.model_copy(update={"group": None, "attempt": None})
        return job.model_copy(update={"group": m.group(1) + m.group(2), "attempt": int(m.group(3))})

    def list_jobs(self, project: str) -> list[RemoteJob]:
        """One list of every job (no metadata), kept when its suffix tag names this project."""
        pk = project_key(project)
        jobs = [self._job(o, "GET", "/fine_tuning/jobs")
                for o in self._paginate("/fine_tuning/jobs", {"limit": max(self.page_size, 1)})]
        return [j for j in jobs if j.group is not None and j.group.startswith(pk)]

    def find_jobs(self, identity: Identity) -> list[RemoteJob]:
        key = self.group_key(identity.project, identity.model, identity.fingerprint)
        return [j for j in self.list_jobs(identity.project) if j.group == key]

    def create_job(self, body: Mapping[str, Any], identity: Identity, files: Mapping[str, str]) -> RemoteJob:
        """POST the job with the identity tag at the end of its suffix; never repeated when ambiguous."""
        out = bind_files(body, files)
        user = out.pop("suffix", None)
        tag = self.tag(identity)
        out["suffix"] = f"{user}-{tag}" if user else tag
        path = "/fine_tuning/jobs"
        return self._job(self._request_json("POST", path, json=out, safe_to_repeat=False), "POST", path)


__all__ = ["DEFAULT_BASE_URL", "NEBIUS_CAPABILITIES", "NebiusProvider"]
