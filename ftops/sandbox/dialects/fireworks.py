"""Fireworks AI's dialect: datasets, supervised and DPO jobs, models, deployments and chat under /fireworks.

Read from the official `fireworks-ai` SDK (resources `datasets`, `supervised_fine_tuning_jobs`,
`dpo_jobs`, `models`, `deployments`, `lora`): its base URL is the host root and its paths carry
`/v1/accounts/{account_id}/…`, so an SDK client uses `base_url="http://HOST:PORT/fireworks"` and
plain HTTP clients `http://HOST:PORT/fireworks/v1` like `https://api.fireworks.ai/v1`. Chat is at
`/inference/v1/chat/completions`, as on Fireworks.

Ids are the client's: `POST …/datasets` with `datasetId`, `POST …/supervisedFineTuningJobs?
supervisedFineTuningJobId=ID`, `POST …/dpoJobs?dpoJobId=ID`, `POST …/deployments?deploymentId=ID`;
a second create of one id answers 409 ALREADY_EXISTS. Errors are google.rpc.Status bodies
(`{"code": 6, "message": …, "details": []}`). Custom verbs follow a colon (`…/datasets/ID:upload`,
`…/jobs/ID:cancel`).

Uploads: `:upload` (multipart `file`) for small files; the signed-URL flow (`:getUploadEndpoint`
→ PUT the bytes → `:validateUpload`) for large ones. A dataset is UPLOADING until its bytes are in
and valid JSON Lines, then READY.

Statuses (core -> Fireworks): validating_files -> JOB_STATE_VALIDATING; queued -> JOB_STATE_PENDING;
running -> JOB_STATE_RUNNING, then JOB_STATE_WRITING_RESULTS over the last 5%; paused ->
JOB_STATE_PAUSED; succeeded -> JOB_STATE_COMPLETED; failed -> JOB_STATE_FAILED; cancelled ->
JOB_STATE_CANCELLING for CANCEL_SETTLE_S (scaled), then JOB_STATE_CANCELLED.
Deployments: CREATING for DEPLOY_S (scaled), then READY; a PATCH is UPDATING for DEPLOY_S; DELETE is
DELETING for DEPLOY_S, then gone.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import uuid
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.app import count_words, text_of
from ftops.sandbox.dialects import Dialect
from ftops.sandbox.dialects.together import iso
from ftops.sandbox.errors import ApiError
from ftops.sandbox.lifecycle import VALIDATE_BASE_S, VALIDATE_PER_MB_S

__all__ = ["FireworksDialect"]

MB = 1024 * 1024
UPLOAD_MAX_BYTES = 150 * MB  # `:upload` limit; the signed-URL flow takes up to SIGNED_MAX_BYTES
SIGNED_MAX_BYTES = 1024 * MB
ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
CANCEL_SETTLE_S = 10.0
DEPLOY_S = 60.0
WRITING_AT = 0.95
TOKENS_PER_SECOND = 800.0
FINE_TUNABLE = ("accounts/fireworks/models/llama-v3p1-8b-instruct", "accounts/fireworks/models/llama-v3p2-3b-instruct",
                "accounts/fireworks/models/qwen2p5-7b-instruct", "accounts/fireworks/models/mistral-7b-instruct-v3",
                "accounts/fireworks/models/llama-v3p1-70b-instruct", "accounts/fireworks/models/llama-v3p3-70b-instruct",
                "accounts/fireworks/models/qwen2p5-72b-instruct")
_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 413: 3, 429: 8, 500: 13, 502: 14, 503: 14}
_JOBS = {"supervisedFineTuningJobs": ("supervisedFineTuningJobId", "supervised"), "dpoJobs": ("dpoJobId", "dpo")}
_SFT_FIELDS = frozenset({
    "dataset", "evaluationDataset", "baseModel", "warmStartFrom", "outputModel", "epochs", "learningRate",
    "loraRank", "maxContextLength", "batchSize", "batchSizeSamples", "learningRateWarmupSteps", "displayName",
    "wandbConfig", "evalAutoCarveout", "earlyStop", "isTurbo", "jinjaTemplate", "nodes", "region",
    "gradientAccumulationSteps", "optimizerWeightDecay", "mtpEnabled", "mtpFreezeBaseModel", "mtpNumDraftTokens",
    "awsS3Config", "azureBlobStorageConfig", "usePurpose", "reservationTarget", "useReservation",
    "rendererHuggingFaceRepoId", "samplerCheckpointSaveIntervalSteps", "metricsFileSignedUrl",
})
_DPO_FIELDS = frozenset({"dataset", "displayName", "lossConfig", "trainingConfig", "wandbConfig", "awsS3Config",
                         "azureBlobStorageConfig", "rendererHuggingFaceRepoId", "reservationTarget",
                         "useReservation"})
_DEP_FIELDS = frozenset({"baseModel", "deploymentShape", "acceleratorType", "acceleratorCount", "minReplicaCount",
                         "maxReplicaCount", "displayName", "description", "precision", "autoscalingPolicy",
                         "enableAddons", "maxContextLength", "draftModel", "draftTokenCount", "expireTime"})


def _err(status: int, message: str) -> ApiError:
    return ApiError(status, message)


def _invalid(message: str) -> ApiError:
    return _err(400, message)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class FireworksDialect(Dialect):
    """Fireworks AI's control plane and inference under /fireworks."""

    name = "fireworks"
    prefix = "/fireworks"

    def rules(self) -> list[Rule]:
        return [
            Rule("/v1/accounts/<account>/<collection>", endpoint="collection", methods=["GET", "POST"]),
            Rule("/v1/accounts/<account>/<collection>/<item>", endpoint="item",
                 methods=["GET", "POST", "PATCH", "DELETE"]),
            Rule("/v1/accounts/<account>/datasets/<item>/signed-upload", endpoint="signed_upload", methods=["PUT"]),
            Rule("/inference/v1/chat/completions", endpoint="chat", methods=["POST"]),
        ]

    # -- edges ---------------------------------------------------------------------------------
    def authenticate(self, request: Request, endpoint: str) -> None:
        if endpoint == "signed_upload":
            return  # a signed URL: its token is checked instead of a key
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key or (
                self.app.settings.api_keys is not None and key not in self.app.settings.api_keys):
            raise ApiError(401, "unauthorized: invalid API key")

    def error_response(self, exc: ApiError) -> Response:
        response = self.app.json({"code": _GRPC.get(exc.status, 2), "message": exc.message, "details": []},
                                 exc.status)
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response

    def decorate(self, response: Response, started: float) -> None:
        super().decorate(response, started)
        response.headers["x-fireworks-sandbox"] = "1"

    # -- dispatch ------------------------------------------------------------------------------
    def h_collection(self, request: Request, account: str, collection: str) -> Response:
        if collection == "datasets":
            return self._datasets(request, account)
        if collection in _JOBS:
            return self._jobs(request, account, collection)
        if collection == "models" and request.method == "GET":
            return self._models(account)
        if collection == "deployments":
            return self._deployments(request, account)
        raise _err(404, f"unknown collection {collection}")

    def h_item(self, request: Request, account: str, collection: str, item: str) -> Response:
        ident, _, verb = item.partition(":")
        name = f"accounts/{account}/{collection}/{ident}"
        if collection == "datasets":
            return self._dataset_item(request, account, ident, verb)
        if collection in _JOBS:
            return self._job_item(request, name, verb)
        if collection == "models" and request.method in ("GET", "DELETE") and not verb:
            return self._model_item(request, name)
        if collection == "deployments" and not verb:
            return self._deployment_item(request, name)
        raise _err(404, f"unknown resource {name}{':' + verb if verb else ''}")

    # -- datasets --------------------------------------------------------------------------------
    @staticmethod
    def _row_id(account: str, ds: str) -> str:
        return f"fwds~{account}~{ds}"  # a file name in the store: no slashes

    def _dataset_object(self, row: sqlite3.Row) -> dict[str, Any]:
        extra = json.loads(row["extra"]) if row["extra"] else {}
        _, account, ds = row["id"].split("~", 2)
        ready = row["status"] == "processed"
        obj: dict[str, Any] = {
            "name": f"accounts/{account}/datasets/{ds}", "displayName": row["filename"],
            "createTime": iso(row["created_at"]), "updateTime": iso(extra.get("updated_at", row["created_at"])),
            "state": "READY" if ready else "UPLOADING", "format": extra.get("format", "CHAT"),
            "exampleCount": str(extra.get("line_count", 0)), "userUploaded": {},
            "createdBy": "sandbox@fireworks.local",
        }
        if row["status"] == "invalid":
            obj["status"] = {"code": "INVALID_ARGUMENT", "message": extra.get("error", "invalid JSON Lines")}
        return obj

    def _dataset_row(self, conn: sqlite3.Connection, account: str, ds: str, now: float) -> sqlite3.Row:
        row = self.app.file_row(conn, self.name, self._row_id(account, ds), now)
        if row is None:
            raise _err(404, f"dataset accounts/{account}/datasets/{ds} not found")
        return row

    def _datasets(self, request: Request, account: str) -> Response:
        if request.method == "GET":
            with self.app.tx() as (conn, _now, _sim):
                rows = conn.execute("SELECT * FROM files WHERE deleted = 0 AND dialect = ? AND id LIKE ? "
                                    "ORDER BY seq", (self.name, f"fwds~{account}~%")).fetchall()
            return self._page(request, "datasets", [self._dataset_object(r) for r in rows])
        body = self.app.json_body(request)
        ds = body.get("datasetId")
        if not isinstance(ds, str) or not ID.match(ds):
            raise _invalid("datasetId must be 1-63 lowercase letters, digits or hyphens, starting and ending "
                           "with a letter or digit")
        raw = body.get("dataset")
        spec: dict[str, Any] = raw if isinstance(raw, dict) else {}
        with self.app.tx() as (conn, now, _sim):
            row_id = self._row_id(account, ds)
            if conn.execute("SELECT 1 FROM files WHERE id = ?", (row_id,)).fetchone() is not None:
                raise _err(409, f"dataset accounts/{account}/datasets/{ds} already exists")
            conn.execute("INSERT INTO files(id, created_at, bytes, filename, purpose, status, sha256, dialect, extra)"
                         " VALUES (?, ?, 0, ?, 'fine-tune', 'pending', '', ?, ?)",
                         (row_id, now, str(spec.get("displayName") or ds), self.name,
                          json.dumps({"format": spec.get("format") or "CHAT"})))
            row = conn.execute("SELECT * FROM files WHERE id = ?", (row_id,)).fetchone()
            return self.app.json(self._dataset_object(row))

    def _process(self, file_id: str) -> tuple[str, dict[str, Any]]:
        lines, error = 0, None
        with open(self.app.store.file_path(file_id), "rb") as fh:
            for number, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                lines += 1
                if error is None:
                    try:
                        ok = isinstance(json.loads(raw), dict)
                    except ValueError:
                        ok = False
                    if not ok:
                        error = f"line {number}: not a JSON object"
        return ("processed" if error is None and lines else "invalid"), (
            {"line_count": lines} | ({"error": error or "no examples"} if error or not lines else {}))

    def _store_bytes(self, account: str, ds: str, sources: list[Any], limit: int) -> Response:
        row_id = self._row_id(account, ds)
        tmp = self.app.tmp_path(row_id + ".up")
        size, sha, _ = self.app.copy_hashed(sources, tmp, limit)
        try:
            with self.app.tx() as (conn, now, _sim):
                row = self._dataset_row(conn, account, ds, now)
                if row["status"] == "processed":
                    raise _invalid(f"dataset accounts/{account}/datasets/{ds} is READY: its content cannot change")
                kind = f"{self.name}:file_upload"
                self.app.rate_limit(conn, now, kind, self.app.settings.file_uploads_per_hour, "dataset uploads")
                self.app.place_file(tmp, row_id)
                status, extra = self._process(row_id)
                old = json.loads(row["extra"]) if row["extra"] else {}
                conn.execute("UPDATE files SET status = ?, bytes = ?, sha256 = ?, extra = ? WHERE id = ?",
                             (status, size, sha, json.dumps({**old, **extra, "updated_at": now}), row_id))
                self.app.record_rate_event(conn, now, kind)
                row = conn.execute("SELECT * FROM files WHERE id = ?", (row_id,)).fetchone()
        finally:
            tmp.unlink(missing_ok=True)
        if row["status"] == "invalid":
            raise _invalid(f"dataset accounts/{account}/datasets/{ds}: {json.loads(row['extra']).get('error')}")
        return self.app.json(self._dataset_object(row))

    def _dataset_item(self, request: Request, account: str, ds: str, verb: str) -> Response:
        if verb == "upload" and request.method == "POST":
            request.max_content_length = UPLOAD_MAX_BYTES + MB
            upload = request.files.get("file")
            if upload is None:
                raise _invalid("file is required (multipart field `file`)")
            self._store_bytes(account, ds, [upload.stream], UPLOAD_MAX_BYTES)
            with self.app.tx() as (conn, now, _sim):
                row = self._dataset_row(conn, account, ds, now)
            return self.app.json({"id": f"accounts/{account}/datasets/{ds}", "object": "file",
                                  "bytes": row["bytes"], "created_at": int(row["created_at"]),
                                  "filename": upload.filename or row["filename"], "purpose": "fine-tune"})
        if verb == "getUploadEndpoint" and request.method == "POST":
            body = self.app.json_body(request)
            sizes = body.get("filenameToSize")
            if not isinstance(sizes, dict) or len(sizes) != 1:
                raise _invalid("filenameToSize must map one file name to its size")
            (fname, size), = sizes.items()
            if not str(size).isdigit() or int(size) > SIGNED_MAX_BYTES:
                raise _invalid(f"file size must be an integer of at most {SIGNED_MAX_BYTES} bytes")
            token = secrets.token_urlsafe(24)
            with self.app.tx() as (conn, now, _sim):
                row = self._dataset_row(conn, account, ds, now)
                extra = json.loads(row["extra"]) if row["extra"] else {}
                conn.execute("UPDATE files SET extra = ? WHERE id = ?",
                             (json.dumps({**extra, "token": token}), row["id"]))
            url = (f"{request.host_url.rstrip('/')}{self.prefix}/v1/accounts/{account}/datasets/{ds}/signed-upload"
                   f"?token={token}")
            return self.app.json({"filenameToSignedUrls": {fname: url}})
        if verb == "validateUpload" and request.method == "POST":
            with self.app.tx() as (conn, now, _sim):
                row = self._dataset_row(conn, account, ds, now)
                if row["status"] != "processed":
                    raise _invalid(f"dataset accounts/{account}/datasets/{ds} has no valid content yet")
            return self.app.json({})
        if verb:
            raise _err(404, f"unknown method :{verb}")
        with self.app.tx() as (conn, now, _sim):
            row = self._dataset_row(conn, account, ds, now)
            if request.method == "DELETE":
                self.app.delete_file(conn, row["id"])
                return self.app.json({})
            if request.method != "GET":
                raise _err(405, "method not allowed")
            return self.app.json(self._dataset_object(row))

    def h_signed_upload(self, request: Request, account: str, item: str) -> Response:
        with self.app.tx() as (conn, now, _sim):
            row = self._dataset_row(conn, account, item, now)
            token = (json.loads(row["extra"]) if row["extra"] else {}).get("token", "")
        if not token or not secrets.compare_digest(str(token), request.args.get("token", "")):
            raise ApiError(403, "The request signature we calculated does not match the signature you provided.")
        request.max_content_length = SIGNED_MAX_BYTES + MB
        self._store_bytes(account, item, [request.stream], SIGNED_MAX_BYTES)
        return Response(b"", status=200)

    # -- jobs --------------------------------------------------------------------------------------
    def status_word(self, job: sqlite3.Row, now: float) -> str:
        status = job["status"]
        if status == "running":
            elapsed = job["elapsed_before"] + (now - job["segment_start"])
            fraction = elapsed / job["run_seconds"] if job["run_seconds"] else 0.0
            return "JOB_STATE_WRITING_RESULTS" if fraction >= WRITING_AT else "JOB_STATE_RUNNING"
        if status == "cancelled":
            settled = job["finished_at"] + CANCEL_SETTLE_S / self.app.settings.time_scale
            return "JOB_STATE_CANCELLING" if now < settled else "JOB_STATE_CANCELLED"
        return {"validating_files": "JOB_STATE_VALIDATING", "queued": "JOB_STATE_PENDING",
                "paused": "JOB_STATE_PAUSED", "succeeded": "JOB_STATE_COMPLETED",
                "failed": "JOB_STATE_FAILED"}.get(status, "JOB_STATE_UNSPECIFIED")

    def _render_job(self, conn: sqlite3.Connection, job: sqlite3.Row, now: float) -> dict[str, Any]:
        extra = json.loads(job["extra"]) if job["extra"] else {}
        obj: dict[str, Any] = {**extra.get("request", {}), "name": job["id"], "state": self.status_word(job, now),
                               "createTime": iso(job["created_at"]), "createdBy": "sandbox@fireworks.local"}
        updates = [t for t in (job["created_at"], job["queued_at"], job["segment_start"], job["finished_at"])
                   if t is not None and t <= now]
        obj["updateTime"] = iso(max(updates))
        if job["finished_at"] is not None and job["status"] == "succeeded":
            obj["completedTime"] = iso(job["finished_at"])
        if job["status"] == "failed":
            err = json.loads(job["error"]) if job["error"] else {}
            obj["status"] = {"code": "INVALID_ARGUMENT", "message": err.get("message", "the job failed")}
        else:
            obj["status"] = {"code": "OK", "message": ""}
        if job["total_steps"]:
            obj["jobProgress"] = {"percent": int(100 * int(job["last_step"]) / int(job["total_steps"])),
                                  "epoch": int(job["last_step"]) // int(job["steps_per_epoch"] or 1)}
        if isinstance(obj.get("wandbConfig"), dict):
            obj["wandbConfig"] = {k: v for k, v in obj["wandbConfig"].items() if k != "apiKey"}
        return obj

    def _jobs(self, request: Request, account: str, collection: str) -> Response:
        prefix = f"accounts/{account}/{collection}/"
        if request.method == "GET":
            with self.app.tx() as (conn, now, _sim):
                rows = conn.execute("SELECT * FROM jobs WHERE dialect = ? AND id LIKE ? ORDER BY seq",
                                    (self.name, prefix + "%")).fetchall()
                data = [self._render_job(conn, r, now) for r in rows]
            return self._page(request, collection, data)
        param, method_type = _JOBS[collection]
        body = self.app.json_body(request)
        job_id = request.args.get(param) or f"{uuid.uuid4()}"
        if not ID.match(job_id):
            raise _invalid(f"{param} must be 1-63 lowercase letters, digits or hyphens")
        name = prefix + job_id
        allowed = _DPO_FIELDS if method_type == "dpo" else _SFT_FIELDS
        for key in body:
            if key not in allowed:
                raise _invalid(f"unknown field {key!r} in {collection} create request")
        cfg = body.get("trainingConfig") if method_type == "dpo" else body
        if not isinstance(cfg, dict):
            raise _invalid("trainingConfig is required")
        with self.app.tx() as (conn, now, sim):
            if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (name,)).fetchone() is not None:
                raise _err(409, f"{name} already exists")
            kind = f"{self.name}:job_create"
            self.app.rate_limit(conn, now, kind, self.app.settings.job_creates_per_hour, "fine-tuning job creations")
            base = self._base_of(conn, cfg, account)
            training = self._ready_dataset(conn, account, body.get("dataset"), "dataset", now)
            validation = None
            if method_type == "supervised" and body.get("evaluationDataset"):
                validation = self._ready_dataset(conn, account, body["evaluationDataset"], "evaluationDataset", now)
            hp = self._hyperparameters(cfg, body, method_type)
            output = cfg.get("outputModel") or f"accounts/{account}/models/{job_id}"
            if not isinstance(output, str) or not output.startswith(f"accounts/{account}/models/") or \
                    not ID.match(output.rsplit("/", 1)[-1]):
                raise _invalid("outputModel must be accounts/{account}/models/{id} with a valid id")
            if conn.execute("SELECT 1 FROM models WHERE id = ?", (output,)).fetchone() is not None or \
                    conn.execute("SELECT 1 FROM jobs WHERE output_name = ? AND dialect = ? AND status NOT IN "
                                 "('failed', 'cancelled')", (output, self.name)).fetchone() is not None:
                raise _err(409, f"model {output} already exists")
            request_obj = dict(body)
            if method_type == "dpo":
                request_obj["trainingConfig"] = {**cfg, "outputModel": output}
            else:
                request_obj["outputModel"] = output
            sizes = training["bytes"] + (validation["bytes"] if validation is not None else 0)
            validate_s = (VALIDATE_BASE_S + VALIDATE_PER_MB_S * sizes / MB) / self.app.settings.time_scale
            seed = int.from_bytes(name.encode()[-4:], "big") & 0x7FFFFFFF
            method = {"type": method_type, method_type: {"hyperparameters": hp}}
            conn.execute(
                "INSERT INTO jobs(id, short_id, created_at, status, model, training_file, validation_file, method,"
                " legacy_hp, suffix, seed, metadata, integrations, validate_until, dialect, output_name,"
                " tokens_per_second, extra)"
                " VALUES (?, ?, ?, 'validating_files', ?, ?, ?, ?, 0, NULL, ?, NULL, NULL, ?, ?, ?, ?, ?)",
                (name, secrets.token_hex(3), now, base, training["id"],
                 validation["id"] if validation is not None else None, json.dumps(method), seed, now + validate_s,
                 self.name, output, TOKENS_PER_SECOND, json.dumps({"request": request_obj})))
            self.app.record_rate_event(conn, now, kind)
            sim.event(name, now, f"Created fine-tuning job: {name}", kind="created")
            row = self.app.job_row(conn, self.name, name)
            assert row is not None
            return self.app.json(self._render_job(conn, row, now))

    def _base_of(self, conn: sqlite3.Connection, cfg: dict[str, Any], account: str) -> str:
        base, warm = cfg.get("baseModel"), cfg.get("warmStartFrom")
        if bool(base) == bool(warm):
            raise _invalid("exactly one of baseModel and warmStartFrom must be given")
        if warm:
            row = conn.execute("SELECT j.model FROM models m JOIN jobs j ON j.id = m.job_id WHERE m.id = ? "
                               "AND m.deleted = 0 AND m.dialect = ?", (warm, self.name)).fetchone()
            if row is None:
                raise _invalid(f"warmStartFrom model {warm} not found")
            return str(row["model"])
        if base not in FINE_TUNABLE:
            raise _invalid(f"base model {base} is not available for fine-tuning; supported: " + ", ".join(FINE_TUNABLE))
        return str(base)

    def _ready_dataset(self, conn: sqlite3.Connection, account: str, name: Any, field: str,
                       now: float) -> sqlite3.Row:
        prefix = f"accounts/{account}/datasets/"
        if not isinstance(name, str) or not name.startswith(prefix):
            raise _invalid(f"{field} must be a dataset name, {prefix}ID")
        row = self.app.file_row(conn, self.name, self._row_id(account, name[len(prefix):]), now)
        if row is None:
            raise _invalid(f"{field} {name} not found")
        if row["status"] != "processed":
            raise _invalid(f"{field} {name} is not READY")
        return row

    @staticmethod
    def _hyperparameters(cfg: dict[str, Any], body: dict[str, Any], method_type: str) -> dict[str, Any]:
        def check(key: str, ok: Any, expected: str) -> Any:
            value = cfg.get(key)
            if value is not None and not ok(value):
                raise _invalid(f"{key} must be {expected}, got {value!r}")
            return value

        epochs = check("epochs", lambda v: _int(v) and 1 <= v <= 100, "an integer in [1, 100]")
        check("batchSize", lambda v: _int(v) and v >= 1, "a positive integer")
        lr = check("learningRate", lambda v: _num(v) and 0 < v <= 1, "a number in (0, 1]")
        check("loraRank", lambda v: _int(v) and 1 <= v <= 256, "an integer in [1, 256]")
        check("maxContextLength", lambda v: _int(v) and v >= 1, "a positive integer")
        check("learningRateWarmupSteps", lambda v: _int(v) and v >= 0, "an integer >= 0")
        hp: dict[str, Any] = {"n_epochs": epochs or 1, "batch_size": 8, "learning_rate_multiplier": lr or 1e-4}
        if method_type == "dpo":
            loss = body.get("lossConfig") or {}
            beta = (loss.get("dpo") or {}).get("beta", 0.1) if isinstance(loss, dict) else 0.1
            if not _num(beta) or beta <= 0:
                raise _invalid("lossConfig.dpo.beta must be a positive number")
            hp["beta"] = beta
        return hp

    def _job_item(self, request: Request, name: str, verb: str) -> Response:
        with self.app.tx() as (conn, now, sim):
            row = self.app.job_row(conn, self.name, name)
            if row is None:
                raise _err(404, f"{name} not found")
            if verb == "cancel" and request.method == "POST":
                if row["status"] not in ("validating_files", "queued", "running", "paused"):
                    raise _err(400, f"{name} is {self.status_word(row, now)} and cannot be cancelled")
                sim.cancel(row, now)
                return self.app.json({})
            if verb == "resume" and request.method == "POST":
                if row["status"] != "paused":
                    raise _err(400, f"{name} is {self.status_word(row, now)}, not paused")
                sim.resume(row, now)
                row = self.app.job_row(conn, self.name, name)
                assert row is not None
                return self.app.json(self._render_job(conn, row, now))
            if verb:
                raise _err(404, f"unknown method :{verb}")
            if request.method == "DELETE":
                if row["status"] in ("validating_files", "queued", "running", "paused"):
                    raise _err(400, f"{name} is {self.status_word(row, now)}; cancel it first")
                conn.execute("DELETE FROM events WHERE job_id = ?", (name,))
                conn.execute("DELETE FROM jobs WHERE id = ?", (name,))
                return self.app.json({})
            if request.method != "GET":
                raise _err(405, "method not allowed")
            return self.app.json(self._render_job(conn, row, now))

    # -- models ------------------------------------------------------------------------------------
    def _model_object(self, r: sqlite3.Row) -> dict[str, Any]:
        return {"name": r["id"], "displayName": r["id"].rsplit("/", 1)[-1], "createTime": iso(r["created"]),
                "state": "READY", "kind": "HF_PEFT_ADDON", "baseModelDetails": {}, "tunable": True,
                "deployedModelRefs": []}

    def _models(self, account: str) -> Response:
        with self.app.tx() as (conn, _now, _sim):
            rows = conn.execute("SELECT * FROM models WHERE deleted = 0 AND dialect = ? AND id LIKE ? ORDER BY "
                                "created", (self.name, f"accounts/{account}/models/%")).fetchall()
        return self.app.json({"models": [self._model_object(r) for r in rows], "nextPageToken": "",
                              "totalSize": len(rows)})

    def _model_item(self, request: Request, name: str) -> Response:
        with self.app.tx() as (conn, _now, _sim):
            row = conn.execute("SELECT * FROM models WHERE id = ? AND deleted = 0 AND dialect = ?",
                               (name, self.name)).fetchone()
            if row is None:
                raise _err(404, f"model {name} not found")
            if request.method == "DELETE":
                conn.execute("UPDATE models SET deleted = 1 WHERE id = ?", (name,))
                return self.app.json({})
        return self.app.json(self._model_object(row))

    # -- deployments (a simulated state machine over `resources`) -----------------------------------
    def _dep_state(self, data: dict[str, Any], now: float) -> str:
        if data.get("deleted_at") is not None:
            return "DELETING" if now < data["deleted_at"] + DEPLOY_S / self.app.settings.time_scale else "DELETED"
        if now < data["ready_at"]:
            return "UPDATING" if data.get("updated") else "CREATING"
        return "READY"

    def _dep_object(self, data: dict[str, Any], now: float) -> dict[str, Any]:
        out = {k: v for k, v in data.items() if k not in ("ready_at", "deleted_at", "updated", "created_at")}
        out.update(state=self._dep_state(data, now), createTime=iso(data["created_at"]))
        return out

    def _deployments(self, request: Request, account: str) -> Response:
        prefix = f"accounts/{account}/deployments/"
        if request.method == "GET":
            with self.app.tx() as (conn, now, _sim):
                rows = self.app.resources(conn, self.name, "deployment", prefix)
            shown = [self._dep_object(d, now) for d in rows]
            return self._page(request, "deployments", [d for d in shown if d["state"] != "DELETED"])
        body = self.app.json_body(request)
        dep_id = request.args.get("deploymentId") or secrets.token_hex(4)
        if not ID.match(dep_id):
            raise _invalid("deploymentId must be 1-63 lowercase letters, digits or hyphens")
        for key in body:
            if key not in _DEP_FIELDS:
                raise _invalid(f"unknown field {key!r} in deployment create request")
        name = prefix + dep_id
        with self.app.tx() as (conn, now, _sim):
            existing = self.app.resource(conn, self.name, "deployment", name)
            if existing is not None and self._dep_state(existing, now) != "DELETED":
                raise _err(409, f"deployment {name} already exists")
            self._check_servable(conn, body.get("baseModel"))
            data = {**body, "name": name, "created_at": now,
                    "ready_at": now + DEPLOY_S / self.app.settings.time_scale}
            self.app.put_resource(conn, self.name, "deployment", name, data)
        return self.app.json(self._dep_object(data, now))

    def _check_servable(self, conn: sqlite3.Connection, model: Any) -> None:
        if not isinstance(model, str) or not model:
            raise _invalid("baseModel is required")
        if model in FINE_TUNABLE:
            return
        if self.app.tuned_job_of(conn, self.name, model) is None:
            raise _invalid(f"model {model} not found")

    def _deployment_item(self, request: Request, name: str) -> Response:
        with self.app.tx() as (conn, now, _sim):
            data = self.app.resource(conn, self.name, "deployment", name)
            if data is None or self._dep_state(data, now) == "DELETED":
                raise _err(404, f"deployment {name} not found")
            if request.method == "GET":
                return self.app.json(self._dep_object(data, now))
            if request.method == "DELETE":
                data.setdefault("deleted_at", now)
            elif request.method == "PATCH":
                body = self.app.json_body(request)
                for key in body:
                    if key not in _DEP_FIELDS:
                        raise _invalid(f"unknown field {key!r} in deployment update")
                if "baseModel" in body:
                    self._check_servable(conn, body["baseModel"])
                data.update(body)
                data.update(updated=True, ready_at=now + DEPLOY_S / self.app.settings.time_scale)
            else:
                raise _err(405, "method not allowed")
            self.app.put_resource(conn, self.name, "deployment", name, data)
            return self.app.json(self._dep_object(data, now))

    # -- chat ------------------------------------------------------------------------------------
    def h_chat(self, request: Request) -> Response:
        body = self.app.json_body(request)
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise _invalid("model is required")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise _invalid("messages must be a non-empty list of message objects")
        tuned, _, deployment = model.partition("#")
        with self.app.tx() as (conn, now, _sim):
            if deployment:
                data = self.app.resource(conn, self.name, "deployment", deployment)
                if data is None or self._dep_state(data, now) != "READY":
                    raise _err(404, f"deployment {deployment} is not ready")
            job_id = self.app.tuned_job_of(conn, self.name, tuned)
            if job_id is None:
                raise _err(404, f"Model not found, inaccessible, and/or not deployed: {model}")
            answer = self.app.answer_chat(conn, job_id, messages)
        prompt = sum(count_words(text_of(m.get("content"))) + 4 for m in messages)
        completion = count_words(answer)
        return self.app.json({
            "id": secrets.token_hex(8), "object": "chat.completion", "created": int(now), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}})

    # -- paging ----------------------------------------------------------------------------------
    def _page(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        """`pageSize` (default 50, at most 200) and an opaque `pageToken` (the offset)."""
        raw = request.args.get("pageSize") or "50"
        token = request.args.get("pageToken") or "0"
        if not raw.isdigit() or not token.isdigit():
            raise _invalid("pageSize and pageToken must be what a previous page gave")
        size = max(1, min(200, int(raw)))
        start = int(token)
        page = items[start:start + size]
        nxt = str(start + size) if start + size < len(items) else ""
        return self.app.json({key: page, "nextPageToken": nxt, "totalSize": len(items)})
