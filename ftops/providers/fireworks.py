"""FireworksProvider: Fireworks AI's control plane (`/v1/accounts/{account_id}/…`), per the official
`fireworks-ai` SDK (resources `datasets`, `supervised_fine_tuning_jobs`, `dpo_jobs`, `models`,
`deployments`).

Identity through **client-chosen ids**, the strongest a provider offers:
- a dataset's id is `ds-` + the first 60 hex characters of the sha256 of its bytes (its display name
  carries the whole hash), so the same bytes are one dataset however many runs upload them;
- a job's id is `ft-<P4>-<G10>-a<attempt>` (P4: hash of the project; G10: hash of project, model and
  fingerprint; both lowercase hex), its output model's id the same, after the user's suffix if any.
  Fireworks ids are lowercase letters, digits and hyphens, at most 63 characters: the job id takes
  20-23. The identity group is `<P4>-<G10>`; 40 bits of G per project bound the chance that two
  declarations of one project collide at about n²/2⁴¹ (n declarations).
- so a create that meets 409 ALREADY_EXISTS is an adoption (the job with that id is read and
  returned), never an error and never a second job; a deliberate retry is the next attempt's id.

The look before a create is one GET of the identity's id (no list lag). Refresh is four requests
(one page each): datasets, supervised jobs, DPO jobs, deployments.

Jobs carry no seed (a declared `seed` is refused) and no user metadata. Cost: the published price
per 1M training tokens (exact ids); deployments by accelerator-hour where published, else unknown.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftops.providers.base import (
    Capabilities,
    GB,
    Identity,
    JobError,
    JobState,
    MB,
    ModelSpec,
    ParamSpec,
    Problem,
    ProgressCallback,
    RemoteDeployment,
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
from ftops.providers.errors import BadRequestError, APIStatusError, ConflictError, NotFoundError, ProviderError
from ftops.providers.http import HttpProvider, _FileSlice

DEFAULT_BASE_URL = "https://api.fireworks.ai/v1"
ID_MAX = 63
_JOB_ID = re.compile(r"^ft-([0-9a-f]{4})-([0-9a-f]{10})-a(\d{1,3})$")
_BOTH = frozenset({"supervised", "dpo"})
_SFT = frozenset({"supervised"})
_PRICES_SOURCE = ("fireworks.ai/pricing, fine-tuning table: USD per 1M training tokens (dataset tokens x epochs), "
                  "models up to 16B $0.50, 16.1B-80B $3.00; DPO assumed 2x; exact model ids only; override with "
                  "`pricing:`")
_SMALL, _LARGE = 0.50, 3.00
_SIZES = {
    "accounts/fireworks/models/llama-v3p1-8b-instruct": _SMALL,
    "accounts/fireworks/models/llama-v3p2-3b-instruct": _SMALL,
    "accounts/fireworks/models/qwen2p5-7b-instruct": _SMALL,
    "accounts/fireworks/models/mistral-7b-instruct-v3": _SMALL,
    "accounts/fireworks/models/llama-v3p1-70b-instruct": _LARGE,
    "accounts/fireworks/models/llama-v3p3-70b-instruct": _LARGE,
    "accounts/fireworks/models/qwen2p5-72b-instruct": _LARGE,
}
# USD per accelerator-hour of an on-demand deployment (fireworks.ai/pricing, "dedicated deployments").
DEPLOYMENT_PRICES = {"NVIDIA_A100_80GB": 3.89}

FIREWORKS_CAPABILITIES = Capabilities(
    name="fireworks",
    title="Fireworks AI",
    default_base_url=DEFAULT_BASE_URL,
    key_env="FIREWORKS_API_KEY",
    methods=_BOTH,
    hyperparameters=(
        ParamSpec(name="n_epochs", kind="int", min=1, max=100, wire="epochs", methods=_BOTH),
        ParamSpec(name="batch_size", kind="int", min=1, max=1048576, wire="batchSize", methods=_BOTH,
                  description="tokens per batch on Fireworks"),
        ParamSpec(name="beta", kind="float", min=0, max=2, min_exclusive=True, wire="lossConfig.dpo.beta",
                  methods=frozenset({"dpo"})),
    ),
    refused_hyperparameters={
        "learning_rate_multiplier": "Fireworks takes an absolute learning rate: `options: {learning_rate: 1.0e-4}`",
    },
    options=(
        ParamSpec(name="learning_rate", kind="float", min=0, max=1, min_exclusive=True, auto=False,
                  wire="learningRate", methods=_BOTH),
        ParamSpec(name="lora_rank", kind="int", min=1, max=256, auto=False, wire="loraRank", methods=_BOTH),
        ParamSpec(name="max_context_length", kind="int", min=1, max=1048576, auto=False, wire="maxContextLength",
                  methods=_BOTH),
        ParamSpec(name="warmup_steps", kind="int", min=0, auto=False, wire="learningRateWarmupSteps",
                  methods=_BOTH),
        ParamSpec(name="warm_start_from", kind="str", auto=False, wire="warmStartFrom", methods=_BOTH,
                  description="continue from a fine-tuned (PEFT) model instead of base_model"),
        ParamSpec(name="wandb_project", kind="str", auto=False, wire="wandbConfig.project", methods=_BOTH,
                  description="W&B logging; the W&B key is read from $WANDB_API_KEY at apply, never from YAML"),
        ParamSpec(name="wandb_entity", kind="str", auto=False, wire="wandbConfig.entity", methods=_BOTH),
    ),
    seed=False,
    user_metadata=False,
    max_metadata_pairs=0,
    metadata_filter=False,
    max_suffix_chars=ID_MAX,
    suffix_pattern=r"^[a-z0-9][a-z0-9-]*$",
    identity_chars=20,
    identity="client-chosen ids: dataset id from the content hash; job and output model ids from project, model, "
             "fingerprint and attempt (409 on a second create is an adoption)",
    uploads_api=False,
    max_file_bytes=150 * MB,
    max_upload_bytes=1 * GB,
    data_formats=frozenset({"chat", "preference"}),
    job_creates_per_hour=100,
    file_uploads_per_hour=100,
    pause_resume=False,
    checkpoints=False,
    prices={"supervised": dict(_SIZES), "dpo": {k: 2 * v for k, v in _SIZES.items()}},
    prices_source=_PRICES_SOURCE,
    fine_tuned_model_pattern="accounts/{account}/models/{suffix}-{identity}",
    deployment_fields=(
        ParamSpec(name="type", kind="choice", choices=("on-demand", "addon"), auto=False,
                  description="on-demand: a dedicated deployment of the model; addon: load the LoRA onto "
                              "`base_deployment`"),
        ParamSpec(name="shape", kind="str", auto=False, wire="deploymentShape"),
        ParamSpec(name="accelerator_type", kind="choice", auto=False, wire="acceleratorType",
                  choices=("NVIDIA_A100_80GB", "NVIDIA_H100_80GB", "NVIDIA_H200_141GB", "AMD_MI300X_192GB",
                           "NVIDIA_B200_180GB")),
        ParamSpec(name="accelerator_count", kind="int", min=1, max=8, auto=False, wire="acceleratorCount"),
        ParamSpec(name="min_replicas", kind="int", min=0, max=100, auto=False, wire="minReplicaCount"),
        ParamSpec(name="max_replicas", kind="int", min=0, max=100, auto=False, wire="maxReplicaCount"),
        ParamSpec(name="base_deployment", kind="str", auto=False, wire="deployedModels.deployment",
                  description="addon only: the deployment (accounts/A/deployments/D) to load the LoRA onto"),
    ),
    deployment_prices=dict(DEPLOYMENT_PRICES),
)

_STATES = {
    "JOB_STATE_CREATING": JobState.PENDING, "JOB_STATE_PENDING": JobState.PENDING,
    "JOB_STATE_VALIDATING": JobState.PENDING, "JOB_STATE_CREATING_INPUT_DATASET": JobState.PENDING,
    "JOB_STATE_RE_QUEUEING": JobState.PENDING, "JOB_STATE_IDLE": JobState.PENDING,
    "JOB_STATE_PAUSED": JobState.PENDING,
    "JOB_STATE_RUNNING": JobState.RUNNING, "JOB_STATE_WRITING_RESULTS": JobState.RUNNING,
    # Still billing until Fireworks confirms: live, so nothing is created beside it.
    "JOB_STATE_CANCELLING": JobState.RUNNING,
    "JOB_STATE_COMPLETED": JobState.SUCCEEDED, "JOB_STATE_EARLY_STOPPED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED, "JOB_STATE_EXPIRED": JobState.FAILED,
    "JOB_STATE_CANCELLED": JobState.CANCELLED, "JOB_STATE_DELETING": JobState.CANCELLED,
    "JOB_STATE_DELETING_CLEANING_UP": JobState.CANCELLED,
}
_GRPC_CODES = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
               6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
               10: "ABORTED", 13: "INTERNAL", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED"}
_COLLECTIONS = {"supervised": ("supervisedFineTuningJobs", "supervisedFineTuningJobId"),
                "dpo": ("dpoJobs", "dpoJobId")}




def dataset_id(sha256: str) -> str:
    return "ds-" + sha256[:60]


class FireworksProvider(HttpProvider):
    """Fireworks AI over an `httpx.Client` whose base_url ends in `/v1`."""

    capabilities = FIREWORKS_CAPABILITIES

    def __init__(self, http: Any, *, api_key: str | None, account_id: str | None = None,
                 environ: Mapping[str, str] | None = None, capabilities: Capabilities | None = None,
                 **kwargs: Any) -> None:
        if capabilities is not None:
            self.capabilities = capabilities
        super().__init__(http, api_key=api_key, **kwargs)
        self.account_id = account_id or "sandbox"
        self._environ = dict(environ or {})

    @classmethod
    def from_settings(cls, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                      *, require_key: bool = True, **kwargs: Any) -> FireworksProvider:
        if require_key:
            cls.require_key(api_key, kwargs.get("api_key_env", ""))
        return cls(cls.make_client(base_url or DEFAULT_BASE_URL, timeout), api_key=api_key, **kwargs)

    def _secrets(self) -> tuple[str, ...]:
        wandb = self._environ.get("WANDB_API_KEY", "").strip()
        return super()._secrets() + ((wandb,) if wandb else ())

    def _error_fields(self, body: Any) -> tuple[str | None, str | None, str | None]:
        """Fireworks answers errors as google.rpc.Status: {"code": 6, "message": "...", "details": []}."""
        if isinstance(body, dict) and isinstance(body.get("code"), int) and isinstance(body.get("message"), str):
            return body["message"], _GRPC_CODES.get(body["code"], str(body["code"])), None
        return super()._error_fields(body)

    @property
    def _acct(self) -> str:
        return f"/accounts/{self.account_id}"

    # ----------------------------------------------------------------- pure

    def validate(self, spec: ModelSpec) -> list[Problem]:
        out = super().validate(spec)
        if spec.method == "dpo" and spec.has_validation_file:
            out.append(Problem(path=("validation_file",), code="provider.unsupported_field",
                               message="Fireworks DPO jobs take no evaluation dataset",
                               hint="remove `validation_file:` (supervised jobs take one)"))
        if spec.integrations:
            out.append(Problem(path=("integrations",), code="provider.unsupported_field",
                               message="Fireworks takes W&B settings as options",
                               hint="use `options: {wandb_project: ..., wandb_entity: ...}`"))
        return out

    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        o = dict(spec.options)
        hp = {k: v for k, v in spec.hyperparameters.items() if v != "auto"}
        cfg: dict[str, Any] = {}
        if "warm_start_from" in o:
            cfg["warmStartFrom"] = o["warm_start_from"]
        else:
            cfg["baseModel"] = spec.base_model
        if "n_epochs" in hp:
            cfg["epochs"] = hp["n_epochs"]
        if "batch_size" in hp:
            cfg["batchSize"] = hp["batch_size"]
        if "learning_rate" in o:
            cfg["learningRate"] = float(o["learning_rate"])
        for key, wire in (("lora_rank", "loraRank"), ("max_context_length", "maxContextLength"),
                          ("warmup_steps", "learningRateWarmupSteps")):
            if key in o:
                cfg[wire] = o[key]
        body: dict[str, Any] = {"dataset": training}
        if spec.method == "dpo":
            body["trainingConfig"] = cfg
            loss: dict[str, Any] = {"method": "DPO"}
            if "beta" in hp:
                loss["dpo"] = {"beta": float(hp["beta"])}
            body["lossConfig"] = loss
        else:
            body.update(cfg)
            if validation is not None:
                body["evaluationDataset"] = validation
        if "wandb_project" in o:
            body["wandbConfig"] = {"enabled": True, "project": o["wandb_project"],
                                   **({"entity": o["wandb_entity"]} if "wandb_entity" in o else {})}
        if spec.suffix is not None:
            body["displayName"] = spec.suffix
        return body

    def group_key(self, project: str, model: str, fingerprint: str) -> str:
        return hashed_group(project, model, fingerprint, sep="-")

    def job_id(self, identity: Identity) -> str:
        return f"ft-{self.group_key(identity.project, identity.model, identity.fingerprint)}-a{identity.attempt}"

    def job_state(self, status: str) -> JobState:
        return _STATES.get(status, JobState.UNKNOWN)

    # ----------------------------------------------------------------- parsing

    def _items(self, body: Any, key: str, method: str, path: str) -> list[Any]:
        items = body.get(key, []) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise APIStatusError(f"{method} {path}: expected a list of {key}", method=method, path=path)
        return items

    def _pages(self, path: str, key: str) -> list[Any]:
        """Every page of a list (`pageToken` / `nextPageToken`)."""
        out: list[Any] = []
        token: str | None = None
        seen: set[str] = set()
        for _ in range(self.max_pages):
            params: dict[str, Any] = {"pageSize": min(self.page_size, 200)}
            if token:
                params["pageToken"] = token
            body = self._request_json("GET", path, params=params)
            out.extend(self._items(body, key, "GET", path))
            token = body.get("nextPageToken") if isinstance(body, dict) else None
            if not token or token in seen:
                break
            seen.add(token)
        return out

    def _job(self, obj: Any, method: str, path: str) -> RemoteJob:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise APIStatusError(f"{method} {path}: unexpected response shape for a fine-tuning job",
                                 method=method, path=path)
        name = obj["name"]
        short = name.rsplit("/", 1)[-1]
        status = str(obj.get("state") or "JOB_STATE_UNSPECIFIED")
        state = self.job_state(status)
        m = _JOB_ID.match(short)
        group, attempt = (m.group(1) + "-" + m.group(2), int(m.group(3))) if m else (None, None)
        tc = obj.get("trainingConfig")
        cfg: dict[str, Any] = tc if isinstance(tc, dict) else obj
        err = None
        if state is JobState.FAILED:
            raw = obj.get("status")
            st: dict[str, Any] = raw if isinstance(raw, dict) else {}
            err = JobError(code=str(st.get("code") or "failed"), message=str(st.get("message") or "the job failed"))
        out_model = cfg.get("outputModel") or obj.get("outputModel")
        kind = "dpo" if "/dpoJobs/" in name else "supervised"
        return RemoteJob(
            id=name, status=status, state=state, model=str(cfg.get("baseModel") or cfg.get("warmStartFrom") or ""),
            fine_tuned_model=out_model if state is JobState.SUCCEEDED and out_model else None,
            training_file=obj.get("dataset"), validation_file=obj.get("evaluationDataset") or None,
            created_at=unix_seconds(obj.get("createTime")),
            finished_at=unix_seconds(obj.get("completedTime") or obj.get("updateTime")) if state.terminal else None,
            error=err, group=group, attempt=attempt, method={"type": kind},
            hyperparameters={k: cfg[k] for k in ("epochs", "batchSize", "learningRate", "loraRank") if k in cfg},
        )

    def _dataset(self, obj: Any, method: str, path: str) -> RemoteFile:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise APIStatusError(f"{method} {path}: unexpected response shape for a dataset", method=method, path=path)
        display = str(obj.get("displayName") or "")
        state = str(obj.get("state") or "STATE_UNSPECIFIED")
        count = obj.get("exampleCount")
        return RemoteFile(id=obj["name"], filename=display, bytes=None, purpose="fine-tune", status=state,
                          created_at=unix_seconds(obj.get("createTime")), sha256=sha_of_remote_name(display),
                          usable=state == "READY" and str(count or "1") != "0")

    # ----------------------------------------------------------------- files (datasets)

    def list_files(self) -> list[RemoteFile]:
        path = f"{self._acct}/datasets"
        return [self._dataset(o, "GET", path) for o in self._pages(path, "datasets")]

    def upload_file(self, path: Path, *, sha256: str, display_path: str,
                    on_progress: ProgressCallback | None = None) -> RemoteFile:
        """Create the dataset under its content id (409: it exists, adopt it), then `:upload` the bytes
        unless it is READY already. The bytes sent are hashed and must match `sha256`."""
        path = Path(path)
        size = path.stat().st_size
        if size > self.capabilities.max_file_bytes:
            raise ProviderError(f"{path}: {size} bytes exceeds the {self.capabilities.max_file_bytes // MB} MB "
                                "Fireworks accepts in one upload", code="file_too_large")
        ds_id = dataset_id(sha256)
        filename = remote_filename(display_path, sha256)
        coll = f"{self._acct}/datasets"
        try:
            obj = self._request_json("POST", coll, json={
                "datasetId": ds_id, "dataset": {"displayName": filename, "userUploaded": {}}},
                safe_to_repeat=True)  # the id makes a repeat harmless: it meets 409
        except ConflictError:
            obj = self._request_json("GET", f"{coll}/{ds_id}")
        remote = self._dataset(obj, "POST", coll)
        if remote.status == "READY":
            return remote.model_copy(update={"sha256": sha256})
        slices: list[_FileSlice] = []
        with open(path, "rb") as f:
            def files() -> Any:
                cb = (lambda n: on_progress(n, size)) if on_progress else None
                slices.append(_FileSlice(f, 0, size, cb, hasher=hashlib.sha256()))
                return {"file": (filename, slices[-1], "application/jsonl")}
            try:
                self._send("POST", f"{coll}/{ds_id}:upload", files=files, safe_to_repeat=True)
            except BadRequestError:
                # A concurrent run uploaded the same content-addressed dataset first: READY is adoption.
                now = self._dataset(self._request_json("GET", f"{coll}/{ds_id}"), "GET", f"{coll}/{ds_id}")
                if now.status != "READY":
                    raise
                return now.model_copy(update={"sha256": sha256})
        got = slices[-1].hexdigest() if slices else None
        if got is not None and got != sha256:
            raise ProviderError(f"{path} changed while it was uploaded (sha256 {got[:12]}…, planned {sha256[:12]}…)",
                                code="dataset_changed_during_upload")
        final = self._dataset(self._request_json("GET", f"{coll}/{ds_id}"), "GET", f"{coll}/{ds_id}")
        return final.model_copy(update={"sha256": sha256})

    def delete_file(self, file_id: str) -> None:
        self._send("DELETE", "/" + file_id.lstrip("/"))

    # ----------------------------------------------------------------- jobs

    def list_jobs(self, project: str) -> list[RemoteJob]:
        """Both job collections, kept when the id names this project (`ft-<P4>-`)."""
        prefix = f"ft-{project_key(project)}-"
        out: list[RemoteJob] = []
        for coll, _param in _COLLECTIONS.values():
            path = f"{self._acct}/{coll}"
            for o in self._pages(path, coll):
                job = self._job(o, "GET", path)
                if job.id.rsplit("/", 1)[-1].startswith(prefix):
                    out.append(job)
        return out

    def find_jobs(self, identity: Identity) -> list[RemoteJob]:
        """The identity's job, by its id: one GET per collection, no list lag."""
        out = []
        for coll, _param in _COLLECTIONS.values():
            try:
                out.append(self.get_job(f"accounts/{self.account_id}/{coll}/{self.job_id(identity)}"))
            except NotFoundError:
                continue
        return out

    def get_job(self, job_id: str) -> RemoteJob:
        path = "/" + job_id.lstrip("/")
        return self._job(self._request_json("GET", path), "GET", path)

    def create_job(self, body: Mapping[str, Any], identity: Identity, files: Mapping[str, str]) -> RemoteJob:
        out = bind_files(body, files)
        kind = "dpo" if "trainingConfig" in out else "supervised"
        coll, param = _COLLECTIONS[kind]
        jid = self.job_id(identity)
        user = out.get("displayName")
        model_id = f"{user}-{jid.removeprefix('ft-')}" if user else jid
        output_model = f"accounts/{self.account_id}/models/{model_id}"
        if kind == "dpo":
            out["trainingConfig"] = {**out["trainingConfig"], "outputModel": output_model}
        else:
            out["outputModel"] = output_model
        out.setdefault("displayName", jid)
        wandb = self._environ.get("WANDB_API_KEY", "").strip()
        if wandb and isinstance(out.get("wandbConfig"), dict):
            out["wandbConfig"] = {**out["wandbConfig"], "apiKey": wandb}
        path = f"{self._acct}/{coll}"
        try:
            # The id makes a repeat harmless (it meets 409), so even a create is safe to resend.
            obj = self._request_json("POST", path, params={param: jid}, json=out, safe_to_repeat=True)
        except ConflictError:
            existing = self.get_job(f"{path.lstrip('/')}/{jid}")
            return existing.model_copy(update={"existed": True})
        return self._job(obj, "POST", path)

    def cancel_job(self, job_id: str) -> RemoteJob:
        path = "/" + job_id.lstrip("/")
        self._request_json("POST", f"{path}:cancel", json={})
        return self.get_job(job_id)

    # ----------------------------------------------------------------- models, deployments, inference

    def list_models(self) -> list[RemoteModel]:
        path = f"{self._acct}/models"
        return [RemoteModel(id=o["name"], created=unix_seconds(o.get("createTime")) or None, owned_by=self.account_id)
                for o in self._pages(path, "models") if isinstance(o, dict) and isinstance(o.get("name"), str)]

    def delete_model(self, model_id: str) -> None:
        self._send("DELETE", "/" + model_id.lstrip("/"))

    def deployment_key(self, group: str) -> str:
        """One deployment per identity group (`dep-<P4>-<G10>`): its settings update in place; a replaced
        model's new fingerprint gets a new one and the old one is kept until pruned."""
        return f"dep-{group}"

    def validate_deployment(self, settings: Mapping[str, Any]) -> list[Problem]:
        out = super().validate_deployment(settings)
        if settings.get("type") == "addon":
            out.append(Problem(path=("type",), code="provider.unsupported_field",
                               message="multi-LoRA addons (`type: addon`) are not managed by ftops yet",
                               hint="use `type: on-demand`, or load the LoRA onto your deployment by hand"))
        if "base_deployment" in settings and settings.get("type") != "addon":
            out.append(Problem(path=("base_deployment",), code="provider.invalid_value",
                               message="`base_deployment` only applies to `type: addon`", hint="remove it"))
        return out

    def _deployment(self, obj: Any) -> RemoteDeployment:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise APIStatusError("unexpected response shape for a deployment")
        name = obj["name"]
        model = str(obj.get("baseModel") or "")
        settings: dict[str, Any] = {"type": "on-demand"}
        for key, wire in (("shape", "deploymentShape"), ("accelerator_type", "acceleratorType"),
                          ("accelerator_count", "acceleratorCount"), ("min_replicas", "minReplicaCount"),
                          ("max_replicas", "maxReplicaCount")):
            if obj.get(wire) is not None:
                settings[key] = obj[wire]
        state = str(obj.get("state") or "STATE_UNSPECIFIED")
        return RemoteDeployment(id=name, model=model, status=state, ready=state == "READY",
                                gone=state in ("DELETING", "DELETED"), settings=settings,
                                endpoint=f"{model}#{name}", key=name.rsplit("/", 1)[-1])

    def list_deployments(self, project: str) -> list[RemoteDeployment]:
        prefix = f"dep-{project_key(project)}-"
        path = f"{self._acct}/deployments"
        return [d for d in (self._deployment(o) for o in self._pages(path, "deployments"))
                if d.key.startswith(prefix) and not d.gone]

    def _deployment_body(self, model_id: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"baseModel": model_id}
        for key, wire in (("shape", "deploymentShape"), ("accelerator_type", "acceleratorType"),
                          ("accelerator_count", "acceleratorCount"), ("min_replicas", "minReplicaCount"),
                          ("max_replicas", "maxReplicaCount")):
            if key in settings:
                body[wire] = settings[key]
        return body

    def create_deployment(self, name: str, model_id: str, settings: Mapping[str, Any],
                          identity: Identity) -> RemoteDeployment:
        if settings.get("type") == "addon":
            path = f"{self._acct}/deployedModels"
            obj = self._request_json("POST", path, json={"model": model_id, "deployment": settings.get("base_deployment"),
                                                         "displayName": name}, safe_to_repeat=False)
            dep = str(obj.get("deployment") or settings.get("base_deployment") or "")
            return RemoteDeployment(id=str(obj.get("name") or ""), model=model_id, status=str(obj.get("state") or ""),
                                    ready=obj.get("state") == "DEPLOYED", settings=dict(settings),
                                    endpoint=f"{model_id}#{dep}", key=str(obj.get("name") or ""))
        did = self.deployment_key(self.group_key(identity.project, identity.model, identity.fingerprint))
        path = f"{self._acct}/deployments"
        try:
            obj = self._request_json("POST", path, params={"deploymentId": did},
                                     json={**self._deployment_body(model_id, settings), "displayName": name},
                                     safe_to_repeat=True)
        except ConflictError:
            obj = self._request_json("GET", f"{path}/{did}")
            current = self._deployment(obj)
            if current.model != model_id or any(current.settings.get(k) != v for k, v in settings.items()):
                return self.update_deployment(current.id, model_id, settings)
        return self._deployment(obj)

    def update_deployment(self, deployment_id: str, model_id: str, settings: Mapping[str, Any]) -> RemoteDeployment:
        path = "/" + deployment_id.lstrip("/")
        return self._deployment(self._request_json("PATCH", path, json=self._deployment_body(model_id, settings),
                                                   safe_to_repeat=True))

    def delete_deployment(self, deployment_id: str) -> None:
        try:
            self._send("DELETE", "/" + deployment_id.lstrip("/"), safe_to_repeat=True)
        except NotFoundError:
            return

    def deployment_cost_per_hour(self, settings: Mapping[str, Any]) -> float | None:
        if settings.get("type") == "addon":
            return 0.0  # served by its base deployment, billed there
        """USD per hour per running replica (a scaled-to-zero deployment costs nothing while idle)."""
        price = self.capabilities.deployment_prices.get(str(settings.get("accelerator_type") or ""))
        if price is None:
            return None
        return round(price * int(settings.get("accelerator_count") or 1), 4)

    def chat(self, model: str, messages: list[dict[str, Any]]) -> str:
        url = str(self.http.base_url).rstrip("/").removesuffix("/v1") + "/inference/v1/chat/completions"
        body = self._request_json("POST", url, json={"model": model, "messages": messages}, safe_to_repeat=True)
        try:
            return str(body["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise APIStatusError("POST /inference/v1/chat/completions: no message in the answer") from exc


__all__ = ["DEFAULT_BASE_URL", "FIREWORKS_CAPABILITIES", "FireworksProvider", "dataset_id", "project_key"]
