"""OpenAIProvider: the OpenAI fine-tuning REST API (and compatible servers) over httpx.

Identity: every job carries `metadata` {ftops_project, ftops_model, ftops_fp}; the job list is
filtered server-side by `metadata[ftops_project]`. `ftops_fp` is the fingerprint for attempt 1 and
`<fingerprint>+<attempt>` after, so a deliberate new job never looks like a duplicate of a dead one
while the 13 metadata pairs left to users stay free. Files carry the sha256 of their bytes in their name.
The fingerprint hashes the body without `metadata`, exactly as before the provider boundary existed,
so upgrading ftops never retrains an OpenAI model.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ftops.providers.base import (
    GB,
    MB,
    Capabilities,
    Cutoff,
    Identity,
    JobCheckpoint,
    JobEvent,
    JobState,
    ModelSpec,
    ParamSpec,
    ProgressCallback,
    RemoteFile,
    RemoteJob,
    RemoteModel,
    bind_files,
    remote_filename,
    sha_of_remote_name,
)
from ftops.providers.errors import APIStatusError, FileProcessingError, PaginationError, ProviderError
from ftops.providers.http import HttpProvider, _FileSlice, parse_retry_after

DEFAULT_BASE_URL = "https://api.openai.com/v1"
UPLOAD_PART_BYTES = 64 * MB

META_PROJECT = "ftops_project"
META_MODEL = "ftops_model"
META_FP = "ftops_fp"

_SOURCE_SHUTDOWN = ("OpenAI, Deprecations page (platform.openai.com/docs/deprecations), 'Update to OpenAI's "
                    "self-serve fine-tuning', announced 2026-05-07: new jobs until 2027-01-06; base models "
                    "gpt-4o, gpt-4o-mini, gpt-4.1, gpt-4.1-mini and their fine-tunes shut down 2027-01-14")
_SHUTDOWN = Cutoff(date=datetime.date(2027, 1, 14), source=_SOURCE_SHUTDOWN)
_GONE = Cutoff(date=datetime.date(2026, 10, 23), source="OpenAI, Deprecations page, 'Legacy GPT model snapshots' "
                                                        "(announced 2026-04-22): shut down 2026-10-23")
_OLD = Cutoff(date=datetime.date(2024, 9, 13), source="OpenAI, Deprecations page: gpt-3.5-turbo-0613 shut down "
                                                      "2024-09-13")
# Snapshot -> its alias; fine-tunes die with their base model, whichever name the job used.
_FINE_TUNABLE = {
    "gpt-4o-mini-2024-07-18": ("gpt-4o-mini", _SHUTDOWN), "gpt-4o-2024-08-06": ("gpt-4o", _SHUTDOWN),
    "gpt-4.1-2025-04-14": ("gpt-4.1", _SHUTDOWN), "gpt-4.1-mini-2025-04-14": ("gpt-4.1-mini", _SHUTDOWN),
    "gpt-4.1-nano-2025-04-14": ("gpt-4.1-nano", _GONE), "o4-mini-2025-04-16": ("o4-mini", _GONE),
    "gpt-3.5-turbo-0125": ("gpt-3.5-turbo", _GONE), "gpt-3.5-turbo-1106": ("", _GONE),
    "gpt-3.5-turbo-0613": ("", _OLD),
}
_MODEL_SHUTDOWNS = {snap: c for snap, (_alias, c) in _FINE_TUNABLE.items()}
_ALIASES = {alias: snap for snap, (alias, _c) in _FINE_TUNABLE.items() if alias}

_SFT = frozenset({"supervised", "dpo", "reinforcement"})
OPENAI_HYPERPARAMETERS = (
    ParamSpec(name="n_epochs", kind="int", min=1, max=50, wire="n_epochs"),
    ParamSpec(name="batch_size", kind="int", min=1, max=256, wire="batch_size"),
    ParamSpec(name="learning_rate_multiplier", kind="float", min=0, min_exclusive=True,
              wire="learning_rate_multiplier"),
    ParamSpec(name="beta", kind="float", min=0, max=2, min_exclusive=True, wire="beta", methods=frozenset({"dpo"})),
    ParamSpec(name="reasoning_effort", kind="choice", choices=("default", "low", "medium", "high"),
              methods=frozenset({"reinforcement"})),
    ParamSpec(name="compute_multiplier", kind="float", min=0, min_exclusive=True,
              methods=frozenset({"reinforcement"})),
    ParamSpec(name="eval_interval", kind="int", min=1, methods=frozenset({"reinforcement"})),
    ParamSpec(name="eval_samples", kind="int", min=1, methods=frozenset({"reinforcement"})),
)

OPENAI_CAPABILITIES = Capabilities(
    name="openai",
    title="OpenAI",
    default_base_url=DEFAULT_BASE_URL,
    key_env="OPENAI_API_KEY",
    methods=_SFT,
    hyperparameters=OPENAI_HYPERPARAMETERS,
    seed=True,
    user_metadata=True,
    max_metadata_pairs=16,
    metadata_filter=True,
    max_suffix_chars=64,
    identity="job metadata (ftops_project, ftops_model, ftops_fp), filtered server-side",
    uploads_api=True,
    max_file_bytes=512 * MB,
    max_upload_bytes=8 * GB,
    job_creates_per_hour=10,
    file_uploads_per_hour=100,
    new_jobs_until=Cutoff(date=datetime.date(2027, 1, 6), source=_SOURCE_SHUTDOWN),
    model_shutdowns=_MODEL_SHUTDOWNS,
    model_aliases=_ALIASES,
    model_catalogue=True,
    fine_tuned_model_pattern="ft:{base}:{org}:{suffix}:{id}",
    tiktoken_counts=True,
    price_table="shipped",
    lists_fine_tuned_models=True,
)

_STATES = {
    "validating_files": JobState.PENDING, "queued": JobState.PENDING, "running": JobState.RUNNING,
    "paused": JobState.RUNNING, "succeeded": JobState.SUCCEEDED, "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED, "expired": JobState.FAILED, "pending": JobState.PENDING,
}


def split_fp(value: str) -> tuple[str, int]:
    """`ftops_fp` metadata -> (fingerprint, attempt)."""
    fp, sep, n = value.partition("+")
    if sep and n.isdigit() and int(n) >= 1:
        return fp, int(n)
    return value, 1


class OpenAIProvider(HttpProvider):
    """The OpenAI fine-tuning API over an `httpx.Client` whose base_url ends in `/v1`."""

    capabilities = OPENAI_CAPABILITIES

    def __init__(self, http: Any, *, api_key: str | None, organization: str | None = None,
                 project: str | None = None, upload_threshold: int = 512 * MB,
                 upload_part_bytes: int = UPLOAD_PART_BYTES, capabilities: Capabilities | None = None,
                 **kwargs: Any) -> None:
        if capabilities is not None:
            self.capabilities = capabilities
        super().__init__(http, api_key=api_key, **kwargs)
        self._organization = organization
        self._project = project
        self.upload_threshold = upload_threshold
        self.upload_part_bytes = upload_part_bytes

    @classmethod
    def from_settings(cls, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                      *, require_key: bool = True, **kwargs: Any) -> OpenAIProvider:
        """Build a provider with its own `httpx.Client` (connect timeout 10 s, read `timeout`)."""
        if require_key:
            cls.require_key(api_key, kwargs.get("api_key_env", ""))
        http = cls.make_client(base_url or cls.capabilities.default_base_url, timeout)
        return cls(http, api_key=api_key, **kwargs)

    def _auth_headers(self) -> dict[str, str]:
        h = super()._auth_headers()
        if self._organization:
            h["OpenAI-Organization"] = self._organization
        if self._project:
            h["OpenAI-Project"] = self._project
        return h

    # ----------------------------------------------------------------- pure

    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        """The method-style body (`method: {type, <type>: {hyperparameters, grader}}`).

        Hyperparameters set to "auto" are omitted (omitting one means auto to the API), so `auto`
        and absent give the same body and the same fingerprint.
        """
        hp = {k: copy.deepcopy(v) for k, v in spec.hyperparameters.items() if v is not None and v != "auto"}
        if spec.method == "reinforcement":
            hp.setdefault("reasoning_effort", "default")
        for p in self.capabilities.hyperparameters:
            if p.kind == "float" and isinstance(hp.get(p.name), int) and not isinstance(hp.get(p.name), bool):
                hp[p.name] = float(hp[p.name])  # `2` and `2.0` fingerprint the same
        inner: dict[str, Any] = {}
        if hp:
            inner["hyperparameters"] = dict(sorted(hp.items()))
        if spec.grader is not None:
            inner["grader"] = copy.deepcopy(spec.grader)
        if spec.response_format is not None:
            inner["response_format"] = copy.deepcopy(spec.response_format)
        method_obj: dict[str, Any] = {"type": spec.method}
        if inner:
            method_obj[spec.method] = inner
        body: dict[str, Any] = {"model": spec.base_model, "training_file": training}
        if validation is not None:
            body["validation_file"] = validation
        body["method"] = method_obj
        if spec.suffix is not None:
            body["suffix"] = spec.suffix
        if spec.seed is not None:
            body["seed"] = spec.seed
        if spec.metadata:
            body["metadata"] = {str(k): str(v) for k, v in spec.metadata.items()}
        if spec.integrations:
            body["integrations"] = copy.deepcopy(list(spec.integrations))
        return body

    def fingerprint_material(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k != "metadata"}

    def group_key(self, project: str, model: str, fingerprint: str) -> str:
        return f"{project}/{model}/{fingerprint}"

    def config_keys_for_param(self, param: str) -> tuple[str, ...]:
        """`method.supervised.hyperparameters.n_epochs` -> (hyperparameters, n_epochs), `model` -> base_model."""
        parts = param.replace("[", ".").replace("]", "").split(".")
        if parts[0] == "model":
            return ("base_model",)
        if "hyperparameters" in parts:
            return ("hyperparameters", *parts[parts.index("hyperparameters") + 1:])
        if parts[0] == "method" and "grader" in parts:
            return ("grader",)
        if parts[0] in ("training_file", "validation_file", "suffix", "seed", "metadata", "integrations"):
            return tuple(parts)
        return ()

    def job_state(self, status: str) -> JobState:
        return _STATES.get(status, JobState.UNKNOWN)

    def _job(self, obj: Any, method: str, path: str) -> RemoteJob:
        job: RemoteJob = self._parse(RemoteJob, obj, method, path)
        md = job.metadata or {}
        update: dict[str, Any] = {"state": self.job_state(job.status)}
        if META_PROJECT in md and META_MODEL in md and META_FP in md:
            fp, attempt = split_fp(md[META_FP])
            update.update(group=self.group_key(md[META_PROJECT], md[META_MODEL], fp), attempt=attempt,
                          declared_model=md[META_MODEL], declared_fingerprint=fp)
        return job.model_copy(update=update)

    def _file(self, obj: Any, method: str, path: str) -> RemoteFile:
        f: RemoteFile = self._parse(RemoteFile, obj, method, path)
        return f.model_copy(update={"sha256": sha_of_remote_name(f.filename),
                                    "usable": f.status in ("uploaded", "processed", None)})

    # ----------------------------------------------------------------- pagination

    def _paginate(self, path: str, params: Mapping[str, Any], *, limit_pages: int | None = None
                  ) -> Iterator[dict[str, Any]]:
        """Follow `after` cursors until `has_more` is false; bounded by max_pages and cursor repeats."""
        seen: set[str] = set()
        after: str | None = params.get("after")
        bound = self.max_pages if limit_pages is None else limit_pages
        for _page in range(bound):
            p = dict(params)
            if after is not None:
                p["after"] = after
            body = self._request_json("GET", path, params=p)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise APIStatusError(f"GET {path}: expected a list object", method="GET", path=path)
            items: list[dict[str, Any]] = body["data"]
            yield from items
            if not body.get("has_more") or not items:
                return
            nxt = body.get("last_id") or items[-1].get("id")
            if not isinstance(nxt, str):
                raise PaginationError(f"GET {path}: has_more without a cursor", method="GET", path=path)
            if nxt in seen or nxt == after:
                raise PaginationError(f"GET {path}: the cursor {nxt!r} repeated; stopping",
                                      method="GET", path=path)
            seen.add(nxt)
            after = nxt
        if limit_pages is None:
            raise PaginationError(
                f"GET {path}: more than {self.max_pages} pages; stopping (raise max_pages if expected)",
                method="GET", path=path)


    # ----------------------------------------------------------------- files

    def list_files(self, purpose: str = "fine-tune") -> list[RemoteFile]:
        """All files with this purpose, newest first, every page."""
        params = {"purpose": purpose, "limit": max(self.page_size, 1), "order": "desc"}
        return [self._file(o, "GET", "/files") for o in self._paginate("/files", params)]

    def get_file(self, file_id: str) -> RemoteFile:
        path = f"/files/{file_id}"
        return self._file(self._request_json("GET", path), "GET", path)

    def delete_file(self, file_id: str) -> None:
        self._send("DELETE", f"/files/{file_id}")

    #: How long `wait_until_usable` polls a file that stays `uploaded` (seconds, and polls).
    file_processing_timeout = 900.0
    file_processing_max_polls = 400

    def wait_until_usable(self, file: RemoteFile) -> RemoteFile:
        """Poll the file until OpenAI says `processed` (a job created before would be refused); raise
        `FileProcessingError` with OpenAI's `status_details` if it ends in `error`. The first look is
        immediate, then waits start at 50 ms and double up to 5 s, so a sandbox at a high time scale
        answers quickly."""
        started = time.monotonic()
        delay = 0.05
        for _poll in range(self.file_processing_max_polls + 1):
            if file.status == "error" or not file.usable:
                reason = file.status_details or "no reason given"
                raise FileProcessingError(
                    f"{file.filename} ({file.id}) could not be processed by the provider: {reason}",
                    code="file_error", method="GET", path=f"/files/{file.id}")
            if file.status in ("processed", None):
                return file
            if time.monotonic() - started > self.file_processing_timeout:
                break
            if _poll:  # look once at once: the upload's answer may already be stale
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
            sha = file.sha256
            file = self.get_file(file.id)
            file = file.model_copy(update={"sha256": file.sha256 or sha})
        raise FileProcessingError(
            f"{file.filename} ({file.id}) is still '{file.status}' after "
            f"{time.monotonic() - started:.0f} s; the provider has not finished processing it",
            code="file_not_ready", retryable=True, method="GET", path=f"/files/{file.id}")

    def upload_file(self, path: Path, *, sha256: str, display_path: str,
                    on_progress: ProgressCallback | None = None) -> RemoteFile:
        """Upload from disk in constant memory: direct multipart up to `upload_threshold`,
        the Uploads API (64 MB parts, md5-checked completion) above.

        A direct upload is not repeated after an ambiguous failure (it would duplicate the file):
        it raises with `maybe_committed=True` and the caller looks for the file by name.
        """
        path = Path(path)
        size = path.stat().st_size
        filename = remote_filename(display_path, sha256)
        purpose = "fine-tune"
        if size > self.upload_threshold and self.capabilities.uploads_api:
            if size > self.capabilities.max_upload_bytes:
                raise ProviderError(
                    f"{path}: {size} bytes exceeds the provider's limit of {self.capabilities.max_upload_bytes}",
                    code="file_too_large")
            return self._with_sha(self._upload_multipart_parts(path, filename, purpose, size, on_progress,
                                                               sha256), sha256)
        if size > self.capabilities.max_file_bytes:
            raise ProviderError(
                f"{path}: {size} bytes exceeds the provider's direct upload limit of "
                f"{self.capabilities.max_file_bytes}", code="file_too_large")
        return self._with_sha(self._upload_direct(path, filename, purpose, size, on_progress, sha256), sha256)

    def _with_sha(self, f: RemoteFile, sha256: str) -> RemoteFile:
        return f.model_copy(update={"sha256": sha256, "usable": f.status not in ("error", "deleted")})

    def _upload_direct(self, path: Path, filename: str, purpose: str, size: int,
                       on_progress: ProgressCallback | None, sha256: str) -> RemoteFile:
        slices: list[_FileSlice] = []
        with open(path, "rb") as f:
            def files() -> Any:
                cb = (lambda n: on_progress(n, size)) if on_progress else None
                slices.append(_FileSlice(f, 0, size, cb, hasher=hashlib.sha256()))
                return {"file": (filename, slices[-1], "application/jsonl")}
            body = self._request_json("POST", "/files", data={"purpose": purpose}, files=files)
        remote: RemoteFile = self._parse(RemoteFile, body, "POST", "/files")
        self._verify_sent(slices[-1], sha256, remote.id, path)
        return remote

    def _verify_sent(self, sent: _FileSlice, sha256: str, file_id: str, path: Path) -> None:
        """The bytes that went out must be the bytes that were planned (a file rewritten during the
        upload would otherwise be stored under the planned hash): else delete the upload and stop."""
        got = sent.hexdigest()
        if got is not None and got != sha256:
            try:
                self.delete_file(file_id)
            except ProviderError as exc:
                self.log.debug("could not delete mismatched upload %s: %s", file_id, exc)
            raise ProviderError(
                f"{path} changed while it was uploaded: the bytes sent hash to {got[:12]}…, the plan "
                f"recorded {sha256[:12]}…; the upload was deleted and nothing was trained on it",
                code="dataset_changed_during_upload")

    def _upload_multipart_parts(self, path: Path, filename: str, purpose: str, size: int,
                                on_progress: ProgressCallback | None, sha256: str) -> RemoteFile:
        # Creating an Upload or adding a Part twice is harmless (the Upload expires; parts are
        # named explicitly at completion), so those are safe to repeat. Completion is not.
        created = self._request_json(
            "POST", "/uploads",
            json={"filename": filename, "purpose": purpose, "bytes": size, "mime_type": "text/jsonl"},
            safe_to_repeat=True)
        upload_id = created.get("id") if isinstance(created, dict) else None
        if not isinstance(upload_id, str):
            raise APIStatusError("POST /uploads: no upload id in the answer", method="POST", path="/uploads")
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha256()
        part_ids: list[str] = []
        try:
            with open(path, "rb") as f:
                offset = 0
                while offset < size or (size == 0 and not part_ids):
                    length = min(self.upload_part_bytes, size - offset)
                    base = offset

                    def files(base: int = base, length: int = length) -> Any:
                        cb = (lambda n: on_progress(base + n, size)) if on_progress else None
                        return {"data": ("part", _FileSlice(f, base, length, cb), "application/octet-stream")}

                    ppath = f"/uploads/{upload_id}/parts"
                    part = self._request_json("POST", ppath, files=files, safe_to_repeat=True)
                    if not isinstance(part, dict) or not isinstance(part.get("id"), str):
                        raise APIStatusError(f"POST {ppath}: no part id in the answer", method="POST", path=ppath)
                    part_ids.append(part["id"])
                    f.seek(base)
                    remaining = length
                    while remaining:
                        chunk = f.read(min(remaining, MB))
                        if not chunk:
                            break
                        md5.update(chunk)
                        sha.update(chunk)
                        remaining -= len(chunk)
                    offset += length
                    if size == 0:
                        break
        except BaseException:
            self._cancel_upload_quietly(upload_id)
            raise
        if sha.hexdigest() != sha256:
            self._cancel_upload_quietly(upload_id)
            raise ProviderError(f"{path} changed while it was uploaded (sha256 {sha.hexdigest()[:12]}…, planned "
                                f"{sha256[:12]}…); the upload was cancelled", code="dataset_changed_during_upload")
        cpath = f"/uploads/{upload_id}/complete"
        done = self._request_json("POST", cpath, json={"part_ids": part_ids, "md5": md5.hexdigest()})
        file_obj = done.get("file") if isinstance(done, dict) else None
        if not isinstance(file_obj, dict):
            raise APIStatusError(f"POST {cpath}: completed upload has no file object", method="POST", path=cpath)
        return self._parse(RemoteFile, file_obj, "POST", cpath)  # type: ignore[no-any-return]

    def _cancel_upload_quietly(self, upload_id: str) -> None:
        try:
            self._send("POST", f"/uploads/{upload_id}/cancel", safe_to_repeat=True)
        except ProviderError as exc:
            self.log.debug("could not cancel upload %s: %s", upload_id, exc)

    # ----------------------------------------------------------------- jobs

    def _list(self, metadata: Mapping[str, str]) -> list[RemoteJob]:
        params: dict[str, Any] = {"limit": max(self.page_size, 1)}
        if self.capabilities.metadata_filter:
            for k, v in metadata.items():
                params[f"metadata[{k}]"] = v
        jobs = [self._job(o, "GET", "/fine_tuning/jobs") for o in self._paginate("/fine_tuning/jobs", params)]
        # Also filter client-side: cheap, and correct against servers that ignore the filter.
        return [j for j in jobs if all((j.metadata or {}).get(k) == v for k, v in metadata.items())]

    def list_jobs(self, project: str) -> list[RemoteJob]:
        """This project's jobs, newest first, every page (server-side metadata filter when supported)."""
        return self._list({META_PROJECT: project})

    def find_jobs(self, identity: Identity) -> list[RemoteJob]:
        key = self.group_key(identity.project, identity.model, identity.fingerprint)
        return [j for j in self._list({META_PROJECT: identity.project, META_MODEL: identity.model})
                if j.group == key]

    def get_job(self, job_id: str) -> RemoteJob:
        path = f"/fine_tuning/jobs/{job_id}"
        return self._job(self._request_json("GET", path), "GET", path)

    def _job_action(self, job_id: str, action: str) -> RemoteJob:
        path = f"/fine_tuning/jobs/{job_id}/{action}"
        return self._job(self._request_json("POST", path), "POST", path)

    def cancel_job(self, job_id: str) -> RemoteJob:
        return self._job_action(job_id, "cancel")

    def pause_job(self, job_id: str) -> RemoteJob:
        return self._job_action(job_id, "pause")

    def resume_job(self, job_id: str) -> RemoteJob:
        return self._job_action(job_id, "resume")

    def list_events(self, job_id: str, after: str | None = None, limit: int | None = None) -> list[JobEvent]:
        """Events newest first. With `limit`: one page of at most `limit`; without: every page."""
        path = f"/fine_tuning/jobs/{job_id}/events"
        params: dict[str, Any] = {"limit": limit if limit is not None else max(self.page_size, 1)}
        if after is not None:
            params["after"] = after
        it = self._paginate(path, params, limit_pages=1 if limit is not None else None)
        return [self._parse(JobEvent, o, "GET", path) for o in it]

    def list_checkpoints(self, job_id: str) -> list[JobCheckpoint]:
        path = f"/fine_tuning/jobs/{job_id}/checkpoints"
        params = {"limit": max(self.page_size, 1)}
        return [self._parse(JobCheckpoint, o, "GET", path) for o in self._paginate(path, params)]

    def identity_metadata(self, identity: Identity) -> dict[str, str]:
        fp = identity.fingerprint if identity.attempt == 1 else f"{identity.fingerprint}+{identity.attempt}"
        return {META_PROJECT: identity.project, META_MODEL: identity.model, META_FP: fp}

    def create_job(self, body: Mapping[str, Any], identity: Identity, files: Mapping[str, str]) -> RemoteJob:
        """POST the job with its identity in `metadata`. Not repeated after an ambiguous failure:
        that raises with `maybe_committed=True`; retried only on 429/connect errors within the budget."""
        out = bind_files(body, files)
        out["metadata"] = {**dict(body.get("metadata") or {}), **self.identity_metadata(identity)}
        path = "/fine_tuning/jobs"
        resp = self._request_json("POST", path, json=out, safe_to_repeat=False)
        return self._job(resp, "POST", path)

    # ----------------------------------------------------------------- models, inference

    def list_models(self) -> list[RemoteModel]:
        path = "/models"
        body = self._request_json("GET", path)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise APIStatusError("GET /models: expected a list object", method="GET", path=path)
        return [self._parse(RemoteModel, o, "GET", path) for o in data]

    def get_model(self, model_id: str) -> RemoteModel:
        path = f"/models/{model_id}"
        return self._parse(RemoteModel, self._request_json("GET", path), "GET", path)  # type: ignore[no-any-return]

    def delete_model(self, model_id: str) -> None:
        self._send("DELETE", f"/models/{model_id}")

    def chat(self, model: str, messages: list[dict[str, Any]]) -> str:
        return self._chat_completions("/chat/completions", model, messages)


__all__ = ["DEFAULT_BASE_URL", "GB", "OPENAI_CAPABILITIES", "OpenAIProvider", "parse_retry_after"]
