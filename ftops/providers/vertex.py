"""VertexProvider: Google Vertex AI supervised and preference tuning of Gemini models, over its REST API (httpx).

- **Jobs**: `POST /v1/projects/{project}/locations/{region}/tuningJobs` (`baseModel`,
  `supervisedTuningSpec {trainingDatasetUri, validationDatasetUri, hyperParameters {epochCount,
  learningRateMultiplier, adapterSize}}` -- or, for `method: dpo`, `preferenceOptimizationSpec` with
  the same fields and `hyperParameters.beta` --, `tunedModelDisplayName`, `labels`), get, list
  (`filter` on labels, paginated), `:cancel`. States `JOB_STATE_*`. Preference tuning is offered for
  Gemini 2.5 Flash and Flash-Lite only (`DPO_MODELS`); other bases are refused at validate.
- **Identity**: `labels` (lowercase, at most 63 characters): `ftops_pk` (project hash, the list
  filter), `ftops_group` (hash of project, model, fingerprint), `ftops_attempt`, and readable
  `ftops_project` / `ftops_model` slugs.
- **Data**: converted to Gemini `contents` (DPO: `contents` + scored `completions`) and uploaded with
  the GCS JSON API (`uploadType=media`) to `gs://BUCKET/PREFIX/<sha256>.jsonl`: the hash in the name
  makes the upload idempotent.
- **Output**: the tuned model's endpoint (`tunedModel.endpoint`), which `generateContent` serves.
- **Auth**: `$GOOGLE_OAUTH_ACCESS_TOKEN`, else Application Default Credentials through `google-auth`
  (optional dependency, `pip install 'ftops[gcp]'`); with neither, `provider.missing_api_key` names both.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ftops.datasets.convert import GEMINI, GEMINI_PREFERENCE
from ftops.providers.base import (
    Capabilities,
    GB,
    Identity,
    JobError,
    JobState,
    ModelSpec,
    ParamSpec,
    Problem,
    ProgressCallback,
    RemoteFile,
    RemoteJob,
    bind_files,
    hashed_group,
    project_key,
    short_hash,
    unix_seconds,
)
from ftops.providers.errors import APIStatusError, MissingAPIKeyError, ProviderError
from ftops.providers.http import HttpProvider

_SUP = frozenset({"supervised"})
_DPO = frozenset({"dpo"})
_BOTH = _SUP | _DPO
DPO_MODELS = frozenset({"gemini-2.5-flash", "gemini-2.5-flash-lite"})
"""Base models Vertex AI offers preference tuning for (cloud.google.com/vertex-ai/generative-ai/docs/
models/gemini-preference-tuning, "Supported models")."""
SANDBOX_BUCKET = "ftops-sandbox"
SANDBOX_PROJECT = "ftops-sandbox"
_SHA_NAME = re.compile(r"([0-9a-f]{64})\.jsonl$")
_ADAPTERS = {"1": "ADAPTER_SIZE_ONE", "2": "ADAPTER_SIZE_TWO", "4": "ADAPTER_SIZE_FOUR", "8": "ADAPTER_SIZE_EIGHT",
             "16": "ADAPTER_SIZE_SIXTEEN"}
_SFT_ADAPTERS = ("1", "4", "8", "16")
_DPO_ADAPTERS = ("1", "2", "4", "8", "16")
_SPEC = {"supervised": "supervisedTuningSpec", "dpo": "preferenceOptimizationSpec"}

VERTEX_CAPABILITIES = Capabilities(
    name="vertex",
    title="Google Vertex AI",
    default_base_url="https://{region}-aiplatform.googleapis.com",
    key_env="GOOGLE_OAUTH_ACCESS_TOKEN",
    credential_chain="$GOOGLE_OAUTH_ACCESS_TOKEN, else Google Application Default Credentials (google-auth)",
    methods=_BOTH,
    hyperparameters=(
        ParamSpec(name="n_epochs", kind="int", min=1, max=100, wire="hyperParameters.epochCount", methods=_BOTH),
        ParamSpec(name="learning_rate_multiplier", kind="float", min=0, max=100, min_exclusive=True,
                  wire="hyperParameters.learningRateMultiplier", methods=_BOTH),
        ParamSpec(name="beta", kind="float", min=0, min_exclusive=True, wire="hyperParameters.beta", methods=_DPO,
                  description="weight of the KL-divergence regularisation"),
    ),
    refused_hyperparameters={"batch_size": "Vertex AI chooses the batch size: remove `batch_size`"},
    options=(ParamSpec(name="adapter_size", kind="choice", choices=_SFT_ADAPTERS, auto=False,
                       wire="hyperParameters.adapterSize", methods=_SUP,
                       description="LoRA adapter size (1, 4, 8 or 16)"),
             ParamSpec(name="adapter_size", kind="choice", choices=_DPO_ADAPTERS, auto=False,
                       wire="hyperParameters.adapterSize", methods=_DPO,
                       description="LoRA adapter size for preference tuning (1, 2, 4, 8 or 16)")),
    seed=False,
    user_metadata=True,
    max_metadata_pairs=50,
    metadata_filter=True,
    max_suffix_chars=100,
    suffix_pattern=r"^[A-Za-z0-9 _.-]+$",
    identity="labels ftops_pk, ftops_group (project, model, fingerprint) and ftops_attempt; listed by label filter",
    uploads_api=False,
    max_file_bytes=1 * GB,
    max_upload_bytes=1 * GB,
    data_formats=frozenset({"chat", "prompt_completion", "preference"}),
    job_creates_per_hour=100,
    file_uploads_per_hour=3600,
    pause_resume=False,
    checkpoints=False,
    fine_tuned_model_pattern="projects/{project}/locations/{region}/endpoints/{id}",
    upload_format=GEMINI,
)

_STATES = {"JOB_STATE_QUEUED": JobState.PENDING, "JOB_STATE_PENDING": JobState.PENDING,
           "JOB_STATE_RUNNING": JobState.RUNNING, "JOB_STATE_UPDATING": JobState.RUNNING,
           "JOB_STATE_CANCELLING": JobState.RUNNING, "JOB_STATE_PAUSED": JobState.RUNNING,
           "JOB_STATE_SUCCEEDED": JobState.SUCCEEDED, "JOB_STATE_FAILED": JobState.FAILED,
           "JOB_STATE_EXPIRED": JobState.FAILED, "JOB_STATE_CANCELLED": JobState.CANCELLED}


def model_id(base_model: str) -> str:
    """`gemini-2.5-flash` of `publishers/google/models/gemini-2.5-flash` (Vertex accepts both)."""
    return base_model.rsplit("/", 1)[-1]


def _method(wire: Any, kind: str) -> dict[str, Any]:
    """The job's method in ftops's vocabulary ({"type", <type>: {"hyperparameters"}}), read from the
    spec's `hyperParameters` (int64 `epochCount` may come as a JSON string)."""
    hp: dict[str, Any] = {}
    if isinstance(wire, dict):
        for key, name, cast in (("epochCount", "n_epochs", int), ("learningRateMultiplier",
                                                                  "learning_rate_multiplier", float),
                                ("beta", "beta", float)):
            try:
                if wire.get(key) is not None:
                    hp[name] = cast(wire[key])
            except (TypeError, ValueError):
                pass
    return {"type": kind, kind: {"hyperparameters": hp}}


class NoGoogleCredentialsError(MissingAPIKeyError):
    """Neither `$GOOGLE_OAUTH_ACCESS_TOKEN` nor Application Default Credentials; nothing was sent."""

    def summary(self) -> str:
        return "no Google credentials"

    def hint(self) -> str:
        return ("export GOOGLE_OAUTH_ACCESS_TOKEN=\"$(gcloud auth print-access-token)\", or pip install "
                "'ftops[gcp]' (google-auth) and run `gcloud auth application-default login`")


def label_value(text: str) -> str:
    """A label value: lowercase letters, digits, `_` and `-`, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


class VertexProvider(HttpProvider):
    """Vertex AI over an `httpx.Client` whose base_url is the regional endpoint (no version)."""

    capabilities = VERTEX_CAPABILITIES

    def __init__(self, http: Any, *, api_key: str | None, capabilities: Capabilities | None = None,
                 gcp_project: str | None = None, region: str | None = None, bucket: str | None = None,
                 prefix: str | None = None, storage_url: str | None = None, **kwargs: Any) -> None:
        if capabilities is not None:
            self.capabilities = capabilities
        kwargs.pop("environ", None)
        super().__init__(http, api_key=api_key, **kwargs)
        self.gcp_project = gcp_project
        self.region = region or "us-central1"
        self.bucket = bucket
        self.prefix = (prefix or "ftops").strip("/")
        self._storage_url = storage_url
        self._adc: Any = None

    @classmethod
    def from_settings(cls, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                      **kwargs: Any) -> VertexProvider:
        region = kwargs.get("region") or "us-central1"
        url = (base_url or VERTEX_CAPABILITIES.default_base_url).replace("{region}", region)
        return cls(cls.make_client(url, timeout), api_key=api_key, **kwargs)

    # ----------------------------------------------------------------- settings and auth

    @property
    def _parent(self) -> str:
        project = self.gcp_project or (SANDBOX_PROJECT if self.sandbox else None)
        if not project:
            raise ProviderError("provider type vertex needs `gcp_project:`", code="missing_setting")
        return f"projects/{project}/locations/{self.region}"

    @property
    def _bucket(self) -> str:
        if self.bucket or self.sandbox:
            return self.bucket or SANDBOX_BUCKET
        raise ProviderError("provider type vertex needs `bucket:` (the GCS bucket for training data)",
                            code="missing_setting")

    @property
    def storage_url(self) -> str:
        if self._storage_url:
            return self._storage_url
        base = str(self.http.base_url).rstrip("/")
        if base.endswith("/vertex"):  # the sandbox serves GCS beside Vertex
            return base[:-len("/vertex")] + "/gcs"
        return "https://storage.googleapis.com"

    def _auth_headers(self) -> dict[str, str]:
        """`Bearer $GOOGLE_OAUTH_ACCESS_TOKEN`, else a token from Application Default Credentials
        (google-auth, refreshed when expired); with neither, `NoGoogleCredentialsError` before any request."""
        if self._api_key:
            return {"Authorization": f"Bearer {self._api_key}"}
        try:
            import google.auth
            import google.auth.exceptions
            import google.auth.transport.requests
        except ImportError as exc:
            raise NoGoogleCredentialsError(
                f"$GOOGLE_OAUTH_ACCESS_TOKEN is not set and google-auth cannot be imported ({exc}), "
                "so Application Default Credentials cannot be read", code="missing_credentials") from exc
        try:
            if self._adc is None:
                self._adc, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            if not self._adc.valid:
                self._adc.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            self._adc = None
            raise NoGoogleCredentialsError(
                "$GOOGLE_OAUTH_ACCESS_TOKEN is not set and Application Default Credentials gave no token: "
                + (str(exc).splitlines() or [type(exc).__name__])[0][:300], code="missing_credentials") from exc
        return {"Authorization": f"Bearer {self._adc.token}"}

    # ----------------------------------------------------------------- pure

    def validate(self, spec: ModelSpec) -> list[Problem]:
        out = super().validate(spec)
        if spec.method == "dpo" and model_id(spec.base_model) not in DPO_MODELS:
            out.append(Problem(
                path=("base_model",), code="provider.unsupported_method",
                message=f"Vertex AI offers preference tuning (method dpo) only for {', '.join(sorted(DPO_MODELS))}, "
                        f"not {spec.base_model}",
                hint="use `base_model: gemini-2.5-flash` (or gemini-2.5-flash-lite), or `method: supervised`"))
        return out

    def upload_format(self, base_model: str, method: str) -> str | None:
        return GEMINI_PREFERENCE if method == "dpo" else GEMINI

    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        hp = {k: v for k, v in spec.hyperparameters.items() if v != "auto"}
        wire: dict[str, Any] = {}
        if "n_epochs" in hp:
            wire["epochCount"] = hp["n_epochs"]
        if "learning_rate_multiplier" in hp:
            wire["learningRateMultiplier"] = float(hp["learning_rate_multiplier"])
        if "beta" in hp and spec.method == "dpo":
            wire["beta"] = float(hp["beta"])
        if "adapter_size" in spec.options:
            wire["adapterSize"] = _ADAPTERS[str(spec.options["adapter_size"])]
        body: dict[str, Any] = {"baseModel": spec.base_model, "hyperParameters": wire, "training_file": training}
        if spec.method != "supervised":  # absent for supervised: fingerprints made before DPO stay the same
            body["tuningSpec"] = _SPEC[spec.method]
        if validation is not None:
            body["validation_file"] = validation
        if spec.suffix is not None:
            body["tunedModelDisplayName"] = spec.suffix
        if spec.metadata:
            body["metadata"] = dict(spec.metadata)
        return body


    def group_key(self, project: str, model: str, fingerprint: str) -> str:
        return hashed_group(project, model, fingerprint)

    def job_state(self, status: str) -> JobState:
        return _STATES.get(status, JobState.UNKNOWN)

    # ----------------------------------------------------------------- files (GCS)

    def list_files(self) -> list[RemoteFile]:
        out: list[RemoteFile] = []
        params: dict[str, Any] = {"prefix": f"{self.prefix}/"}
        url = f"{self.storage_url}/storage/v1/b/{self._bucket}/o"
        for _ in range(self.max_pages):
            page = self._request_json("GET", url, params=params)
            for o in page.get("items") or []:
                name = str(o.get("name") or "")
                m = _SHA_NAME.search(name)
                size = o.get("size")
                out.append(RemoteFile(id=f"gs://{self._bucket}/{name}", filename=name,
                                      bytes=int(size) if isinstance(size, (str, int)) else None, purpose="fine-tune",
                                      status="processed", created_at=unix_seconds(o.get("timeCreated")),
                                      sha256=m.group(1) if m else None))
            if not page.get("nextPageToken"):
                return out
            params["pageToken"] = page["nextPageToken"]
        raise ProviderError("GCS object list did not end", code="pagination")

    def upload_file(self, path: Path, *, sha256: str, display_path: str,
                    on_progress: ProgressCallback | None = None) -> RemoteFile:
        data = Path(path).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ProviderError(f"{path} changed before it was uploaded", code="dataset_changed_during_upload")
        name = f"{self.prefix}/{sha256}.jsonl"
        url = f"{self.storage_url}/upload/storage/v1/b/{self._bucket}/o"
        resp = self._send("POST", url, params={"uploadType": "media", "name": name}, content=data)
        if on_progress:
            on_progress(len(data), len(data))
        obj = self._json(resp, "POST", url)
        return RemoteFile(id=f"gs://{self._bucket}/{name}", filename=name, bytes=len(data), purpose="fine-tune",
                          status="processed", created_at=unix_seconds(obj.get("timeCreated")), sha256=sha256)

    def delete_file(self, file_id: str) -> None:
        bucket, _, name = file_id.removeprefix("gs://").partition("/")
        self._send("DELETE", f"{self.storage_url}/storage/v1/b/{bucket}/o/{quote(name, safe='')}")

    # ----------------------------------------------------------------- jobs

    def _job(self, obj: Any) -> RemoteJob:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise APIStatusError("unexpected response shape for a tuning job", method="GET", path="tuningJobs")
        state_word = str(obj.get("state") or "")
        state = self.job_state(state_word)
        labels = obj.get("labels") or {}
        dpo = isinstance(obj.get("preferenceOptimizationSpec"), dict)
        spec = (obj.get("preferenceOptimizationSpec") if dpo else obj.get("supervisedTuningSpec")) or {}
        group = labels.get("ftops_group")
        attempt = labels.get("ftops_attempt")
        err = obj.get("error") or {}
        return RemoteJob(
            id=obj["name"], status=state_word, state=state, model=str(obj.get("baseModel") or ""),
            fine_tuned_model=(obj.get("tunedModel") or {}).get("endpoint") if state is JobState.SUCCEEDED else None,
            training_file=spec.get("trainingDatasetUri"), validation_file=spec.get("validationDatasetUri"),
            created_at=unix_seconds(obj.get("createTime")),
            finished_at=unix_seconds(obj.get("endTime")) if state.terminal and obj.get("endTime") else None,
            error=JobError(code=str(err.get("code") or "failed"), message=err.get("message") or "the job failed")
            if state is JobState.FAILED else None,
            hyperparameters=spec.get("hyperParameters") or None, metadata=dict(labels) or None,
            method=_method(spec.get("hyperParameters"), "dpo" if dpo else "supervised"),
            group=group if isinstance(group, str) else None,
            attempt=int(attempt) if isinstance(attempt, str) and attempt.isdigit() else None)

    def list_jobs(self, project: str) -> list[RemoteJob]:
        pk = project_key(project)
        return [j for j in self._list(f'labels.ftops_pk="{pk}"') if j.group is not None and j.group.startswith(pk)]

    def find_jobs(self, identity: Identity) -> list[RemoteJob]:
        """The look before a create, filtered by the group label on the server: one short page whatever
        the number of jobs in the project."""
        key = self.group_key(identity.project, identity.model, identity.fingerprint)
        return [j for j in self._list(f'labels.ftops_group="{key}"') if j.group == key]

    def _list(self, label_filter: str) -> list[RemoteJob]:
        path = f"/v1/{self._parent}/tuningJobs"
        params: dict[str, Any] = {"filter": label_filter, "pageSize": 100}
        out: list[RemoteJob] = []
        for _ in range(self.max_pages):
            page = self._request_json("GET", path, params=params)
            out += [self._job(o) for o in page.get("tuningJobs") or []]
            if not page.get("nextPageToken"):
                return out
            params["pageToken"] = page["nextPageToken"]
        raise ProviderError("tuningJobs list did not end", code="pagination")

    def get_job(self, job_id: str) -> RemoteJob:
        return self._job(self._request_json("GET", f"/v1/{job_id}"))

    def create_job(self, body: Mapping[str, Any], identity: Identity, files: Mapping[str, str]) -> RemoteJob:
        out = bind_files(body, files)
        spec: dict[str, Any] = {"trainingDatasetUri": out["training_file"]}
        if out.get("validation_file"):
            spec["validationDatasetUri"] = out["validation_file"]
        if out.get("hyperParameters"):
            spec["hyperParameters"] = out["hyperParameters"]
        labels = {label_value(k): label_value(v) for k, v in (out.get("metadata") or {}).items()}
        labels.update({"ftops_pk": project_key(identity.project),
                       "ftops_group": self.group_key(identity.project, identity.model, identity.fingerprint),
                       "ftops_attempt": str(identity.attempt), "ftops_project": label_value(identity.project),
                       "ftops_model": label_value(identity.model), "ftops_fp": label_value(identity.fingerprint)})
        req: dict[str, Any] = {"baseModel": out["baseModel"], out.get("tuningSpec") or "supervisedTuningSpec": spec,
                               "labels": labels}
        if out.get("tunedModelDisplayName"):
            req["tunedModelDisplayName"] = out["tunedModelDisplayName"]
        path = f"/v1/{self._parent}/tuningJobs"
        return self._job(self._request_json("POST", path, json=req, safe_to_repeat=False))

    def cancel_job(self, job_id: str) -> RemoteJob:
        self._request_json("POST", f"/v1/{job_id}:cancel")
        return self.get_job(job_id)

    def chat(self, model: str, messages: list[dict[str, Any]]) -> str:
        contents = [{"role": "model" if m.get("role") == "assistant" else "user",
                     "parts": [{"text": str(m.get("content") or "")}]}
                    for m in messages if m.get("role") in ("user", "assistant")]
        req: dict[str, Any] = {"contents": contents}
        system = [str(m.get("content") or "") for m in messages if m.get("role") in ("system", "developer")]
        if system:
            req["systemInstruction"] = {"parts": [{"text": "\n".join(system)}]}
        answer = self._request_json("POST", f"/v1/{model}:generateContent", json=req, safe_to_repeat=True)
        try:
            return "".join(p.get("text", "") for p in answer["candidates"][0]["content"]["parts"])
        except (KeyError, IndexError, TypeError) as exc:
            raise APIStatusError("generateContent: no candidate in the answer", method="POST",
                                 path="generateContent") from exc


__all__ = ["DPO_MODELS", "VERTEX_CAPABILITIES", "NoGoogleCredentialsError", "VertexProvider"]
