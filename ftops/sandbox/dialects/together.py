"""Together AI's dialect: files, fine-tunes, models and chat completions under /together/v1.

Read from Together's OpenAPI description (togethercomputer/openapi) and from what the official
`together` SDK (3.x) sends. The SDK's base URL is the host root (its paths carry `/v1`), so an SDK
client uses `base_url="http://HOST:PORT/together"`; plain HTTP clients use
`http://HOST:PORT/together/v1` like `https://api.together.ai/v1`.

Uploads, two ways:
- the spec's `POST /files/upload` (multipart: file, file_name, purpose, file_type) stores and
  processes the file at once;
- the SDK's flow: `POST /files` (multipart form without the file: purpose, file_name, file_type,
  checksum) answers 302 with `Location` (a signed URL, here `/files/{id}/signed-upload?token=…`)
  and `X-Together-File-Id`; the SDK PUTs the bytes there without an API key, then
  `POST /files/{id}/preprocess` processes the file and answers the FileResponse.

Statuses (core -> Together): validating_files -> pending; queued -> queued; running -> running,
then compressing and uploading over the last 8% of the run; succeeded -> completed; failed ->
error; cancelled -> cancel_requested for CANCEL_SETTLE_S (scaled), then cancelled.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import secrets
import sqlite3
import uuid
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.app import count_words, text_of
from ftops.sandbox.dialects import Dialect
from ftops.sandbox.dialects.together_catalog import (
    ACCOUNT,
    TOGETHER_MODELS,
    TogetherModel,
    resolve_together_model,
)
from ftops.sandbox.errors import ApiError, bad_request, not_found
from ftops.sandbox.lifecycle import VALIDATE_BASE_S, VALIDATE_PER_MB_S, timestamp

__all__ = ["TogetherDialect"]

MB = 1024 * 1024
FILE_MAX_BYTES = 5 * 1024 * MB  # the SDK's single-request limit; beyond it the SDK goes multipart
FILE_PURPOSES = ("fine-tune", "eval", "eval-sample", "eval-output", "eval-summary", "batch-generated", "batch-api")
FILE_TYPES = ("jsonl", "csv", "parquet")
SUFFIX_MAX = 40
DEFAULT_SEED = 42
CANCEL_SETTLE_S = 10.0
COMPRESSING_AT = 0.92  # fraction of the core's run shown as compressing, then uploading
UPLOADING_AT = 0.96
USER_LIMIT = 1000.0
LIMITS = {"max_num_epochs": 20, "max_num_checkpoints": 20, "max_num_evals": 100,
          "min_learning_rate": 1e-7, "max_learning_rate": 1e-2}
_JOB_FIELDS = frozenset({
    "training_file", "validation_file", "packing", "max_seq_length", "model", "n_epochs", "n_checkpoints",
    "n_evals", "batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler", "warmup_ratio",
    "max_grad_norm", "weight_decay", "random_seed", "suffix", "wandb_api_key", "wandb_key", "wandb_base_url",
    "wandb_project_name", "wandb_name", "wandb_entity", "train_on_inputs", "training_method", "training_type",
    "multimodal_params", "from_checkpoint", "from_hf_model", "hf_model_revision", "hf_api_token",
    "hf_output_repo_name", "early_stopping_enabled", "early_stopping_patience", "early_stopping_min_delta",
    "early_stopping_warmup_evals",
})
_EVENT_TYPES = {"created": "job_pending", "validating": "training_data_downloading",
                "validated": "training_data_download_complete", "started": "job_start", "resumed": "job_restarted",
                "checkpoint": "checkpoint_save", "model_created": "model_upload_complete",
                "completed": "job_complete", "failed": "job_error", "cancelled": "cancel_requested",
                "paused": "job_stopped"}


def iso(t: float | None) -> str | None:
    """Together's timestamps: RFC 3339 in UTC with milliseconds."""
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _invalid(message: str, param: str | None = None) -> ApiError:
    return bad_request(message, param=param, code="invalid_request")


class TogetherDialect(Dialect):
    """Together AI's fine-tuning API under /together/v1."""

    name = "together"
    prefix = "/together/v1"

    def rules(self) -> list[Rule]:
        return [
            Rule("/files", endpoint="files", methods=["GET", "POST"]),
            Rule("/files/upload", endpoint="files_upload", methods=["POST"]),
            Rule("/files/<file_id>", endpoint="file", methods=["GET", "DELETE"]),
            Rule("/files/<file_id>/content", endpoint="file_content", methods=["GET"]),
            Rule("/files/<file_id>/signed-upload", endpoint="signed_upload", methods=["PUT"]),
            Rule("/files/<file_id>/preprocess", endpoint="preprocess", methods=["POST"]),
            Rule("/fine-tunes", endpoint="jobs", methods=["GET", "POST"]),
            Rule("/fine-tunes/estimate-price", endpoint="estimate_price", methods=["POST"]),
            Rule("/fine-tunes/models/supported", endpoint="supported_models", methods=["GET"]),
            Rule("/fine-tunes/models/limits", endpoint="model_limits", methods=["GET"]),
            Rule("/fine-tunes/<job_id>", endpoint="job", methods=["GET", "DELETE"]),
            Rule("/fine-tunes/<job_id>/cancel", endpoint="job_cancel", methods=["POST"]),
            Rule("/fine-tunes/<job_id>/events", endpoint="job_events", methods=["GET"]),
            Rule("/fine-tunes/<job_id>/checkpoints", endpoint="job_checkpoints", methods=["GET"]),
            Rule("/models", endpoint="models", methods=["GET"]),
            Rule("/chat/completions", endpoint="chat_completions", methods=["POST"]),
        ]

    # -- edges ---------------------------------------------------------------------------------
    def authenticate(self, request: Request, endpoint: str) -> None:
        if endpoint == "signed_upload":
            return  # a signed URL: the SDK sends no key there; the token in the URL is checked instead
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key or (
                self.app.settings.api_keys is not None and key not in self.app.settings.api_keys):
            raise ApiError(401, "Invalid API key provided. You can find your API key at "
                                "https://api.together.xyz/settings/api-keys.", code="invalid_api_key")

    def decorate(self, response: Response, started: float) -> None:
        super().decorate(response, started)
        response.headers["x-together-sandbox"] = "1"

    # -- files ---------------------------------------------------------------------------------
    def _file_object(self, row: sqlite3.Row) -> dict[str, Any]:
        extra = json.loads(row["extra"]) if row["extra"] else {}
        processed = row["status"] == "processed"
        obj: dict[str, Any] = {
            "id": row["id"], "object": "file", "created_at": timestamp(row["created_at"]),
            "filename": row["filename"], "bytes": row["bytes"], "purpose": row["purpose"],
            "FileType": extra.get("file_type", "jsonl"), "Processed": processed,
            "LineCount": extra.get("line_count", 0),
            "processing_status": {"processed": "COMPLETED", "invalid": "INVALID_FORMAT"}.get(row["status"],
                                                                                          "PENDING"),
        }
        if "report" in extra:
            obj["validation_report"] = extra["report"]
        return obj

    def _file_row(self, conn: sqlite3.Connection, file_id: str, now: float) -> sqlite3.Row:
        row = self.app.file_row(conn, self.name, file_id, now)
        if row is None:
            raise not_found(f"File {file_id} not found.", param="id", code="file_not_found")
        return row

    @staticmethod
    def _check_upload_fields(purpose: Any, file_name: Any, file_type: Any) -> tuple[str, str, str]:
        if not purpose:
            raise _invalid("purpose is required.", "purpose")
        if purpose not in FILE_PURPOSES:
            raise _invalid(f"Invalid purpose '{purpose}'. Must be one of: {', '.join(FILE_PURPOSES)}.", "purpose")
        if not file_name:
            raise _invalid("file_name is required.", "file_name")
        file_type = file_type or "jsonl"
        if file_type not in FILE_TYPES:
            raise _invalid(f"Invalid file_type '{file_type}'. Must be one of: {', '.join(FILE_TYPES)}.",
                           "file_type")
        return str(purpose), os.path.basename(str(file_name)) or "upload", str(file_type)

    def _process(self, file_id: str, file_type: str) -> tuple[str, dict[str, Any]]:
        """Check the stored bytes: JSON Lines of objects (any of Together's formats). Returns the
        file status and the extra fields (line count, validation report)."""
        path = self.app.store.file_path(file_id)
        lines, error = 0, None
        if file_type == "jsonl":
            with open(path, "rb") as fh:
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
                            error = f"Line {number}: not a JSON object."
        report: dict[str, Any] = {"valid": error is None, "file_id": file_id, "nlines": lines}
        if error is not None:
            report.update(error=error, error_type="INVALID_FORMAT")
        return ("processed" if error is None else "invalid"), {"file_type": file_type, "line_count": lines,
                                                                  "report": report}

    def _store_upload(self, conn: sqlite3.Connection, tmp: Any, *, file_id: str, now: float, size: int,
                      sha: str, filename: str, purpose: str, file_type: str) -> sqlite3.Row:
        self.app.commit_file(conn, tmp, dialect=self.name, file_id=file_id, now=now, size=size, filename=filename,
                             purpose=purpose, sha256=sha, expires_at=None, extra={"file_type": file_type})
        status, extra = self._process(file_id, file_type)
        conn.execute("UPDATE files SET status = ?, extra = ? WHERE id = ?", (status, json.dumps(extra), file_id))
        row: sqlite3.Row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return row

    def h_files_upload(self, request: Request) -> Response:
        """The spec's one-request upload."""
        request.max_content_length = FILE_MAX_BYTES + MB
        upload = request.files.get("file")
        if upload is None:
            raise _invalid("file is required.", "file")
        purpose, filename, file_type = self._check_upload_fields(
            request.form.get("purpose"), request.form.get("file_name") or upload.filename,
            request.form.get("file_type"))
        file_id = f"file-{uuid.uuid4()}"
        tmp = self.app.tmp_path(file_id)
        size, sha, _ = self.app.copy_hashed([upload.stream], tmp, FILE_MAX_BYTES)
        try:
            with self.app.tx() as (conn, now, _sim):
                row = self._store_upload(conn, tmp, file_id=file_id, now=now, size=size, sha=sha,
                                         filename=filename, purpose=purpose, file_type=file_type)
        finally:
            tmp.unlink(missing_ok=True)
        return self.app.json(self._file_object(row))

    def h_files(self, request: Request) -> Response:
        if request.method == "POST":
            return self._start_signed_upload(request)
        with self.app.tx() as (conn, now, _sim):
            self.app.expire_files(conn, now)
            rows = conn.execute("SELECT * FROM files WHERE deleted = 0 AND dialect = ? AND status != 'pending'"
                                " ORDER BY seq DESC", (self.name,)).fetchall()
        # The core also writes a metrics file per job (OpenAI's result file): not a Together object.
        return self.app.json({"data": [self._file_object(r) for r in rows if r["purpose"] in FILE_PURPOSES]})

    def _start_signed_upload(self, request: Request) -> Response:
        """The SDK's first step: a file id and a signed URL to PUT the bytes to (302)."""
        purpose, filename, file_type = self._check_upload_fields(
            request.form.get("purpose"), request.form.get("file_name"), request.form.get("file_type"))
        file_id = f"file-{uuid.uuid4()}"
        token = secrets.token_urlsafe(24)
        with self.app.tx() as (conn, now, _sim):
            kind = f"{self.name}:file_upload"
            self.app.rate_limit(conn, now, kind, self.app.settings.file_uploads_per_hour, "file uploads")
            conn.execute(
                "INSERT INTO files(id, created_at, bytes, filename, purpose, status, sha256, dialect, extra)"
                " VALUES (?, ?, 0, ?, ?, 'pending', '', ?, ?)",
                (file_id, now, filename, purpose, self.name,
                 json.dumps({"file_type": file_type, "token": token,
                             "checksum": request.form.get("checksum")})))
            self.app.record_rate_event(conn, now, kind)
        location = f"{request.host_url.rstrip('/')}{self.prefix}/files/{file_id}/signed-upload?token={token}"
        response = Response(b"", status=302)
        response.headers["Location"] = location
        response.headers["X-Together-File-Id"] = file_id
        return response

    def _pending_file(self, conn: sqlite3.Connection, file_id: str) -> tuple[sqlite3.Row, dict[str, Any]]:
        row = conn.execute("SELECT * FROM files WHERE id = ? AND dialect = ? AND deleted = 0",
                           (file_id, self.name)).fetchone()
        if row is None:
            raise not_found(f"File {file_id} not found.", param="id", code="file_not_found")
        return row, (json.loads(row["extra"]) if row["extra"] else {})

    def h_signed_upload(self, request: Request, file_id: str) -> Response:
        request.max_content_length = FILE_MAX_BYTES + MB
        tmp = self.app.tmp_path(f"{file_id}.put")
        size, sha, md5 = self.app.copy_hashed([request.stream], tmp, FILE_MAX_BYTES)
        try:
            with self.app.tx() as (conn, _now, _sim):
                row, extra = self._pending_file(conn, file_id)
                if not secrets.compare_digest(str(extra.get("token", "")), request.args.get("token", "")):
                    raise ApiError(403, "The request signature we calculated does not match the signature you "
                                        "provided.", type="access_denied", code="SignatureDoesNotMatch")
                if row["status"] != "pending":
                    raise _invalid(f"File {file_id} has already been uploaded.", "id")
                conn.execute("UPDATE files SET status = 'uploaded', bytes = ?, sha256 = ? WHERE id = ?",
                             (size, sha, file_id))
                self.app.place_file(tmp, file_id)
        finally:
            tmp.unlink(missing_ok=True)
        response = Response(b"", status=200)
        response.headers["ETag"] = f'"{md5}"'
        return response

    def h_preprocess(self, request: Request, file_id: str) -> Response:
        with self.app.tx() as (conn, _now, _sim):
            row, extra = self._pending_file(conn, file_id)
            if row["status"] == "pending":
                raise _invalid(f"File {file_id} has no content yet: upload it to the signed URL first.", "id")
            if row["status"] == "uploaded":
                checksum = extra.get("checksum")
                if checksum and str(checksum).lower() != row["sha256"]:
                    raise _invalid(f"The checksum given for file {file_id} does not match its bytes.", "checksum")
                status, processed = self._process(file_id, str(extra.get("file_type", "jsonl")))
                conn.execute("UPDATE files SET status = ?, extra = ? WHERE id = ?",
                             (status, json.dumps(processed), file_id))
                row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return self.app.json(self._file_object(row))

    def h_file(self, request: Request, file_id: str) -> Response:
        with self.app.tx() as (conn, now, _sim):
            row = self._file_row(conn, file_id, now)
            if request.method == "DELETE":
                self.app.delete_file(conn, file_id)
                return self.app.json({"id": file_id, "deleted": True})
        return self.app.json(self._file_object(row))

    def h_file_content(self, request: Request, file_id: str) -> Response:
        with self.app.tx() as (conn, now, _sim):
            row = self._file_row(conn, file_id, now)
            if row["status"] == "pending":
                raise not_found(f"File {file_id} has no content yet.", param="id", code="file_not_found")
            data = self.app.store.file_path(file_id).read_bytes()
        return Response(data, mimetype="application/octet-stream")

    # -- fine-tunes: validation ------------------------------------------------------------------
    def _training_file(self, conn: sqlite3.Connection, file_id: Any, param: str, now: float) -> sqlite3.Row:
        if not isinstance(file_id, str) or not file_id:
            raise _invalid(f"{param} must be a file id.", param)
        row = self.app.file_row(conn, self.name, file_id, now)
        if row is None:
            raise _invalid(f"File {file_id} not found. Upload it with purpose 'fine-tune' first.", param)
        if row["purpose"] != "fine-tune":
            raise _invalid(f"File {file_id} has purpose '{row['purpose']}'; fine-tuning needs 'fine-tune'.", param)
        if row["status"] != "processed":
            raise _invalid(f"File {file_id} is not ready for fine-tuning (its status is '{row['status']}').", param)
        return row

    def _model_of(self, conn: sqlite3.Connection, body: dict[str, Any]) -> tuple[TogetherModel, str | None]:
        """The base model, and the job a `from_checkpoint` continues (or None)."""
        parent: str | None = None
        model_name = body.get("model")
        checkpoint = body.get("from_checkpoint")
        if checkpoint is not None:
            if not isinstance(checkpoint, str) or not checkpoint:
                raise _invalid("from_checkpoint must be a job id or an output model name.", "from_checkpoint")
            ref, _, step = checkpoint.partition(":")
            if step and not step.isdigit():
                raise _invalid(f"Invalid checkpoint step in '{checkpoint}'.", "from_checkpoint")
            row = conn.execute("SELECT * FROM jobs WHERE dialect = ? AND (id = ? OR output_name = ?)",
                               (self.name, ref, ref)).fetchone()
            if row is None or row["status"] != "succeeded":
                raise _invalid(f"Checkpoint {checkpoint} not found: it must name a completed fine-tuning job.",
                               "from_checkpoint")
            parent = str(row["id"])
            if model_name in (None, ""):
                model_name = row["model"]
        if model_name in (None, ""):
            raise _invalid("model is required (or from_checkpoint).", "model")
        base = resolve_together_model(str(model_name))
        if base is None:
            raise bad_request(f"Model {model_name} is not supported for fine-tuning. See "
                              "GET /fine-tunes/models/supported for the available models.", param="model",
                              code="model_not_supported")
        return base, parent

    def _validate_job(self, conn: sqlite3.Connection, body: dict[str, Any], now: float) -> dict[str, Any]:
        for key in body:
            if key not in _JOB_FIELDS:
                raise _invalid(f"Unrecognized request argument supplied: {key}", key)
        if body.get("training_file") in (None, ""):
            raise _invalid("training_file is required.", "training_file")
        base, parent = self._model_of(conn, body)
        training = self._training_file(conn, body["training_file"], "training_file", now)
        validation = None
        if body.get("validation_file") not in (None, ""):  # the SDK sends "" when there is none
            validation = self._training_file(conn, body["validation_file"], "validation_file", now)

        def number(key: str, default: Any, ok: Any, expected: str) -> Any:
            value = body.get(key)
            if value is None:
                return default
            if not ok(value):
                raise _invalid(f"Invalid value for {key}: expected {expected}, got {value!r}.", key)
            return value

        n_epochs = number("n_epochs", 1, lambda v: _is_int(v) and 1 <= v <= LIMITS["max_num_epochs"],
                          f"an integer between 1 and {LIMITS['max_num_epochs']}")
        n_checkpoints = number("n_checkpoints", 1,
                               lambda v: _is_int(v) and 1 <= v <= LIMITS["max_num_checkpoints"],
                               f"an integer between 1 and {LIMITS['max_num_checkpoints']}")
        n_evals = number("n_evals", 0, lambda v: _is_int(v) and 0 <= v <= LIMITS["max_num_evals"],
                         f"an integer between 0 and {LIMITS['max_num_evals']}")
        if n_evals and validation is None:
            raise _invalid("n_evals > 0 needs a validation_file.", "n_evals")
        learning_rate = number(
            "learning_rate", 1e-5,
            lambda v: _is_number(v) and LIMITS["min_learning_rate"] <= v <= LIMITS["max_learning_rate"],
            f"a number between {LIMITS['min_learning_rate']} and {LIMITS['max_learning_rate']}")
        warmup_ratio = number("warmup_ratio", 0.0, lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")
        max_grad_norm = number("max_grad_norm", 1.0, lambda v: _is_number(v) and v >= 0, "a number >= 0")
        weight_decay = number("weight_decay", 0.0, lambda v: _is_number(v) and v >= 0, "a number >= 0")
        seed = number("random_seed", None, lambda v: _is_int(v) and 0 <= v <= 2**31 - 1,
                      "an integer between 0 and 2147483647")
        suffix = body.get("suffix")
        if suffix is not None:
            if not isinstance(suffix, str) or not suffix:
                raise _invalid("suffix must be a non-empty string.", "suffix")
            if len(suffix) > SUFFIX_MAX:
                raise _invalid(f"Suffix must be at most {SUFFIX_MAX} characters long, got {len(suffix)}.",
                               "suffix")

        method = body.get("training_method") or {"method": "sft"}
        if not isinstance(method, dict) or method.get("method") not in ("sft", "dpo"):
            raise _invalid("training_method.method must be 'sft' or 'dpo'.", "training_method")
        if method["method"] == "sft":
            train_on_inputs = method.get("train_on_inputs", body.get("train_on_inputs", "auto"))
            if train_on_inputs != "auto" and not isinstance(train_on_inputs, bool):
                raise _invalid("train_on_inputs must be true, false or 'auto'.", "training_method.train_on_inputs")
            method_out: dict[str, Any] = {"method": "sft", "train_on_inputs": train_on_inputs}
        else:
            beta = method.get("dpo_beta")
            if beta is None or beta == 0:
                beta = 0.1
            if not _is_number(beta) or beta <= 0:
                raise _invalid("dpo_beta must be a positive number.", "training_method.dpo_beta")
            method_out = {"method": "dpo", "dpo_beta": beta,
                          "dpo_normalize_logratios_by_length": bool(method.get("dpo_normalize_logratios_by_length")),
                          "dpo_reference_free": bool(method.get("dpo_reference_free")),
                          "rpo_alpha": method.get("rpo_alpha") or 0.0, "simpo_gamma": method.get("simpo_gamma") or 0.0}
        dpo = method_out["method"] == "dpo"

        ttype = body.get("training_type") or {"type": "Lora"}
        if not isinstance(ttype, dict) or ttype.get("type") not in ("Lora", "Full"):
            raise _invalid("training_type.type must be 'Lora' or 'Full'.", "training_type")
        if ttype["type"] == "Full":
            if not base.full_training:
                raise _invalid(f"Full training is not supported for {base.id}; use LoRA.", "training_type")
            type_out: dict[str, Any] = {"type": "Full"}
        else:
            rank = ttype.get("lora_r", base.default_rank)
            if not _is_int(rank) or not 1 <= rank <= base.max_rank:
                raise _invalid(f"lora_r must be an integer between 1 and {base.max_rank}.", "training_type.lora_r")
            alpha = ttype.get("lora_alpha", rank * 2)
            dropout = ttype.get("lora_dropout", 0.0)
            if not _is_number(alpha) or alpha <= 0:
                raise _invalid("lora_alpha must be a positive number.", "training_type.lora_alpha")
            if not _is_number(dropout) or not 0 <= dropout < 1:
                raise _invalid("lora_dropout must be in [0, 1).", "training_type.lora_dropout")
            type_out = {"type": "Lora", "lora_r": rank, "lora_alpha": int(alpha), "lora_dropout": float(dropout),
                        "lora_trainable_modules": ttype.get("lora_trainable_modules") or "all-linear"}

        max_batch = base.max_batch_size_dpo if dpo else base.max_batch_size
        batch_size = body.get("batch_size", "max")
        if batch_size in (None, "max"):
            batch_size = max_batch
        elif not _is_int(batch_size) or not base.min_batch_size <= batch_size <= max_batch:
            raise _invalid(f"batch_size must be 'max' or an integer between {base.min_batch_size} and {max_batch} "
                           f"for {base.id}.", "batch_size")
        wandb_project = body.get("wandb_project_name")
        return {
            "base": base, "parent": parent, "training": training, "validation": validation,
            "request": {
                "model": base.id, "training_file": training["id"],
                **({"validation_file": validation["id"]} if validation is not None else {}),
                "n_epochs": n_epochs, "n_checkpoints": n_checkpoints, "n_evals": n_evals,
                "batch_size": batch_size, "learning_rate": learning_rate, "warmup_ratio": warmup_ratio,
                "max_grad_norm": max_grad_norm, "weight_decay": weight_decay, "random_seed": seed,
                "training_method": method_out, "training_type": type_out,
                "lr_scheduler": body.get("lr_scheduler") or {"lr_scheduler_type": "linear",
                                                             "lr_scheduler_args": {"min_lr_ratio": 0.0}},
                "packing": body.get("packing", True),
                **({"suffix": suffix} if suffix is not None else {}),
                **({"max_seq_length": body["max_seq_length"]} if body.get("max_seq_length") else {}),
                **({"from_checkpoint": body["from_checkpoint"]} if body.get("from_checkpoint") else {}),
                **({"wandb_project_name": wandb_project} if wandb_project else {}),
                **({"wandb_name": body["wandb_name"]} if body.get("wandb_name") else {}),
            },
        }

    def _output_name(self, base: TogetherModel, suffix: str | None) -> str:
        tag = secrets.token_hex(3)
        return f"{ACCOUNT}/{base.short_name}-{suffix}-{tag}" if suffix else f"{ACCOUNT}/{base.short_name}-{tag}"

    # -- fine-tunes: rendering -------------------------------------------------------------------
    def status_word(self, job: sqlite3.Row, now: float) -> str:
        """The core's neutral state in Together's words (see the module docstring)."""
        status = job["status"]
        if status == "running":
            elapsed = job["elapsed_before"] + (now - job["segment_start"])
            fraction = elapsed / job["run_seconds"] if job["run_seconds"] else 0.0
            return "uploading" if fraction >= UPLOADING_AT else "compressing" if fraction >= COMPRESSING_AT \
                else "running"
        if status == "cancelled":
            settled = job["finished_at"] + CANCEL_SETTLE_S / self.app.settings.time_scale
            return "cancel_requested" if now < settled else "cancelled"
        return {"validating_files": "pending", "queued": "queued", "paused": "queued", "succeeded": "completed",
                "failed": "error"}.get(status, str(status))

    def _events(self, conn: sqlite3.Connection, job: sqlite3.Row) -> list[dict[str, Any]]:
        extra = json.loads(job["extra"]) if job["extra"] else {}
        out = []
        rows = conn.execute("SELECT * FROM events WHERE job_id = ? ORDER BY seq", (job["id"],)).fetchall()
        spe = job["steps_per_epoch"] or 0
        for r in rows:
            kind = r["kind"]
            data = json.loads(r["data"]) if r["data"] else {}
            step = int(data.get("step", 0))
            if kind == "metrics":
                if not spe or step % spe:
                    continue  # Together reports epochs, not every logged step
                etype, message = "epoch_complete", f"Epoch completed, at step {step}"
            elif kind in _EVENT_TYPES:
                etype = _EVENT_TYPES[kind]
                message = {
                    "created": "Fine tune request created",
                    "validating": "Training data downloading",
                    "validated": "Training data downloaded, job queued",
                    "started": "Job started",
                    "completed": "Job finished",
                    "cancelled": "Job cancellation requested",
                    "model_created": f"Model uploaded: {job['output_name']}",
                    "checkpoint": f"Checkpoint saved at step {step}",
                }.get(kind, r["message"])
            else:
                continue
            out.append({
                "object": "fine-tune-event", "created_at": iso(r["created_at"]), "level": r["level"],
                "message": message, "type": etype, "param_count": int(extra.get("param_count", 0)),
                "token_count": int(job["trained_tokens"] or 0), "total_steps": int(job["total_steps"] or 0),
                "wandb_url": "", "step": step,
                "checkpoint_path": f"{job['id']}:{step}" if kind == "checkpoint" else "",
                "model_path": str(job["output_name"]) if kind == "model_created" else "",
                "training_offset": 0, "hash": r["id"],
            })
        return out

    def _render(self, conn: sqlite3.Connection, job: sqlite3.Row, now: float, *, full: bool) -> dict[str, Any]:
        extra = json.loads(job["extra"]) if job["extra"] else {}
        request = extra.get("request", {})
        base = resolve_together_model(job["model"])
        status = self.status_word(job, now)
        times = [t for t in (job["created_at"], job["queued_at"], job["segment_start"], job["finished_at"])
                 if t is not None and t <= now]
        last_event = conn.execute("SELECT MAX(created_at) FROM events WHERE job_id = ?", (job["id"],)).fetchone()[0]
        if last_event is not None:
            times.append(last_event)
        trained = int(job["trained_tokens"] or 0)
        price = 0.0
        if base is not None and trained:
            price = trained * base.price_per_token(full=request.get("training_type", {}).get("type") == "Full",
                                                   dpo=request.get("training_method", {}).get("method") == "dpo")
        obj: dict[str, Any] = {
            "id": job["id"], "status": status, "created_at": iso(job["created_at"]), "updated_at": iso(max(times)),
            "user_id": ACCOUNT, "owner_address": f"{ACCOUNT}@sandbox.local",
            "model_output_name": job["output_name"], "total_price": int(round(price * 1e9)),  # nanodollars
            "token_count": trained, "epochs_completed": (int(job["last_step"]) // int(job["steps_per_epoch"])
                                                         if job["steps_per_epoch"] else 0),
            **request,
        }
        if obj.get("random_seed") is None:
            obj["random_seed"] = None
        if job["segment_start"] is not None and job["segment_start"] <= now:
            obj["started_at"] = iso(job["segment_start"])
        if job["status"] in ("validating_files", "queued", "running"):
            remaining = self._seconds_remaining(job, now)
            obj["progress"] = {"estimate_available": remaining is not None, "seconds_remaining": remaining or 0}
        if full:
            obj["job_id"] = job["id"]
            obj["events"] = self._events(conn, job)
            obj["trainingfile_numlines"] = extra.get("training_lines", 0)
            obj["trainingfile_size"] = extra.get("training_bytes", 0)
            obj["param_count"] = int(extra.get("param_count", 0))
            obj["queue_depth"] = 0
            obj["train_on_inputs"] = request.get("training_method", {}).get("train_on_inputs", "auto")
        return obj

    @staticmethod
    def _seconds_remaining(job: sqlite3.Row, now: float) -> int | None:
        if job["status"] != "running" or not job["run_seconds"]:
            return None
        left = job["segment_start"] + job["run_seconds"] - job["elapsed_before"] - now
        return max(0, int(math.ceil(left)))

    def _job_row(self, conn: sqlite3.Connection, job_id: str) -> sqlite3.Row:
        row = self.app.job_row(conn, self.name, job_id)
        if row is None:
            raise not_found(f"Fine-tune job {job_id} not found.", param="id", code="fine_tune_not_found")
        return row

    # -- fine-tunes: handlers --------------------------------------------------------------------
    def h_jobs(self, request: Request) -> Response:
        if request.method == "POST":
            return self._create_job(request)
        with self.app.tx() as (conn, now, _sim):
            rows = conn.execute("SELECT * FROM jobs WHERE dialect = ? ORDER BY seq DESC", (self.name,)).fetchall()
            data = [self._render(conn, r, now, full=False) for r in rows]
        return self.app.json({"data": data})

    def _create_job(self, request: Request) -> Response:
        body = self.app.json_body(request)
        job_id = f"ft-{uuid.uuid4()}"
        with self.app.tx() as (conn, now, sim):
            kind = f"{self.name}:job_create"
            self.app.rate_limit(conn, now, kind, self.app.settings.job_creates_per_hour, "fine-tuning job creations")
            spec = self._validate_job(conn, body, now)
            base: TogetherModel = spec["base"]
            req = spec["request"]
            tm = req["training_method"]
            method_type = "dpo" if tm["method"] == "dpo" else "supervised"
            hp: dict[str, Any] = {"n_epochs": req["n_epochs"], "batch_size": req["batch_size"],
                                  "learning_rate_multiplier": req["learning_rate"]}
            if method_type == "dpo":
                hp["beta"] = tm["dpo_beta"]
            method = {"type": method_type, method_type: {"hyperparameters": hp}}
            training, validation = spec["training"], spec["validation"]
            sizes = training["bytes"] + (validation["bytes"] if validation is not None else 0)
            validate_s = (VALIDATE_BASE_S + VALIDATE_PER_MB_S * sizes / MB) / self.app.settings.time_scale
            t_extra = json.loads(training["extra"]) if training["extra"] else {}
            extra = {"request": req, "parent": spec["parent"], "training_lines": t_extra.get("line_count", 0),
                     "training_bytes": training["bytes"], "param_count": int(base.params_b * 1e9)}
            conn.execute(
                "INSERT INTO jobs(id, short_id, created_at, status, model, training_file, validation_file, method,"
                " legacy_hp, suffix, seed, metadata, integrations, validate_until, dialect, output_name,"
                " tokens_per_second, extra)"
                " VALUES (?, ?, ?, 'validating_files', ?, ?, ?, ?, 0, ?, ?, NULL, NULL, ?, ?, ?, ?, ?)",
                (job_id, secrets.token_hex(3), now, base.id, training["id"],
                 validation["id"] if validation is not None else None, json.dumps(method), req.get("suffix"),
                 req["random_seed"] if req["random_seed"] is not None else DEFAULT_SEED, now + validate_s,
                 self.name, self._output_name(base, req.get("suffix")), base.tokens_per_second, json.dumps(extra)))
            self.app.record_rate_event(conn, now, kind)
            sim.event(job_id, now, f"Created fine-tuning job: {job_id}", kind="created")
            sim.event(job_id, now, f"Validating training file: {training['id']}", kind="validating")
            row = self._job_row(conn, job_id)
            return self.app.json(self._render(conn, row, now, full=False))

    def h_job(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, now, _sim):
            row = self._job_row(conn, job_id)
            if request.method == "DELETE":
                if row["status"] in ("validating_files", "queued", "running", "paused"):
                    raise _invalid(f"Fine-tune job {job_id} is {self.status_word(row, now)}; cancel it before "
                                   "deleting it.", "id")
                conn.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM checkpoints WHERE job_id = ?", (job_id,))
                conn.execute("UPDATE models SET deleted = 1 WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
                return self.app.json({"message": f"Fine-tune job {job_id} deleted"})
            return self.app.json(self._render(conn, row, now, full=True))

    def h_job_cancel(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, now, sim):
            row = self._job_row(conn, job_id)
            if row["status"] not in ("validating_files", "queued", "running", "paused"):
                raise _invalid(f"Fine-tune job {job_id} is {self.status_word(row, now)} and cannot be cancelled.",
                               "id")
            sim.cancel(row, now)
            row = self._job_row(conn, job_id)
            return self.app.json(self._render(conn, row, now, full=False))

    def h_job_events(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, _now, _sim):
            row = self._job_row(conn, job_id)
            return self.app.json({"data": self._events(conn, row)})

    def h_job_checkpoints(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, _now, _sim):
            job = self._job_row(conn, job_id)
            rows = conn.execute("SELECT * FROM checkpoints WHERE job_id = ? ORDER BY seq DESC", (job_id,)).fetchall()
        data = []
        if job["status"] == "succeeded":
            data.append({"step": int(job["total_steps"]), "created_at": iso(job["finished_at"]),
                         "path": str(job["output_name"]), "checkpoint_type": "Final",
                         "checkpoint": "adapter", "object_name": str(job["output_name"])})
        data += [{"step": r["step_number"], "created_at": iso(r["created_at"]), "path": f"{job_id}:{r['step_number']}",
                  "checkpoint_type": f"Intermediate (step {r['step_number']})"} for r in rows
                 if not (job["status"] == "succeeded" and r["step_number"] == job["total_steps"])]
        return self.app.json({"data": data})

    def h_estimate_price(self, request: Request) -> Response:
        from ftops.datasets import check_dataset

        body = self.app.json_body(request)
        with self.app.tx() as (conn, now, _sim):
            training = self._training_file(conn, body.get("training_file"), "training_file", now)
            validation = None
            if body.get("validation_file") not in (None, ""):
                validation = self._training_file(conn, body["validation_file"], "validation_file", now)
            model = body.get("model")
            base = resolve_together_model(str(model)) if model else TOGETHER_MODELS[0]
            if base is None:
                raise bad_request(f"Model {model} is not supported for fine-tuning.", param="model",
                                  code="model_not_supported")
        n_epochs = body.get("n_epochs") or 1
        n_evals = body.get("n_evals") or 0
        if not _is_int(n_epochs) or not _is_int(n_evals) or n_epochs < 1 or n_evals < 0:
            raise _invalid("n_epochs must be a positive integer and n_evals a non-negative one.", "n_epochs")
        dpo = (body.get("training_method") or {}).get("method") == "dpo"
        full = (body.get("training_type") or {}).get("type") == "Full"
        self.app.store.cache_dir.mkdir(parents=True, exist_ok=True)

        def tokens(row: sqlite3.Row) -> int | None:
            report = check_dataset(self.app.store.file_path(row["id"]), method="dpo" if dpo else "supervised",
                                   cache_dir=self.app.store.cache_dir, sha256=row["sha256"], uploads_api=True,
                                   workers=1)
            if report.errors:
                return None
            return int(report.stats.trained_tokens_per_epoch)

        train_tokens = tokens(training)
        if train_tokens is None:
            return self.app.json({"estimation_available": False, "unavailable_reason": "train_file_invalid"})
        eval_tokens = 0
        if validation is not None:
            counted = tokens(validation)
            if counted is None:
                return self.app.json({"estimation_available": False, "unavailable_reason": "eval_file_invalid"})
            eval_tokens = counted * n_evals
        train_total = train_tokens * n_epochs
        price = round((train_total + eval_tokens) * base.price_per_token(full=full, dpo=dpo), 10)
        return self.app.json({"estimation_available": True, "estimated_total_price": price,
                              "allowed_to_proceed": price <= USER_LIMIT, "user_limit": USER_LIMIT,
                              "estimated_train_token_count": train_total, "estimated_eval_token_count": eval_tokens})

    def h_supported_models(self, request: Request) -> Response:
        return self.app.json({"models": [m.id for m in TOGETHER_MODELS]})

    def h_model_limits(self, request: Request) -> Response:
        name = request.args.get("model_name", "")
        base = resolve_together_model(name)
        if base is None:
            return self.app.json({"message": f"Model {name} is not available for fine-tuning."}, 404)
        full = {"max_batch_size": base.max_batch_size, "max_batch_size_dpo": base.max_batch_size_dpo,
                "min_batch_size": base.min_batch_size} if base.full_training else \
            {"max_batch_size": 0, "max_batch_size_dpo": 0, "min_batch_size": 0}
        return self.app.json({
            "model_name": base.id, "full_training": full,
            "lora_training": {"max_batch_size": base.max_batch_size, "max_batch_size_dpo": base.max_batch_size_dpo,
                              "min_batch_size": base.min_batch_size, "max_rank": base.max_rank,
                              "default_rank": base.default_rank,
                              "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                 "down_proj"]},
            "max_num_epochs": LIMITS["max_num_epochs"], "max_num_evals": LIMITS["max_num_evals"],
            "max_num_checkpoints": LIMITS["max_num_checkpoints"],
            "max_learning_rate": LIMITS["max_learning_rate"], "min_learning_rate": LIMITS["min_learning_rate"],
            "supports_vision": False, "supports_tools": True, "supports_reasoning": False,
            "merge_output_lora": True, "supports_full_training": base.full_training,
            "default_gradient_accumulation_steps": 1, "min_max_seq_length": 512,
            "max_seq_length_sft": base.context_length, "max_seq_length_dpo": base.context_length,
        })

    # -- models and chat -------------------------------------------------------------------------
    def h_models(self, request: Request) -> Response:
        with self.app.tx() as (conn, _now, _sim):
            tuned = conn.execute("SELECT * FROM models WHERE deleted = 0 AND dialect = ? ORDER BY created",
                                 (self.name,)).fetchall()
        pricing = {"hourly": 0, "base": 0, "finetune": 0}
        data: list[dict[str, Any]] = [
            {"id": m.id, "object": "model", "created": m.created, "type": "chat", "display_name": m.display_name,
             "organization": m.organization, "link": f"https://huggingface.co/{m.id}", "license": "other",
             "context_length": m.context_length,
             "pricing": {**pricing, "input": m.prices[0] / 2, "output": m.prices[0] / 2}} for m in TOGETHER_MODELS]
        data += [{"id": r["id"], "object": "model", "created": timestamp(r["created"]), "type": "chat",
                  "display_name": r["id"].split("/", 1)[-1], "organization": ACCOUNT,
                  "pricing": {**pricing, "input": 0, "output": 0}} for r in tuned]
        return self.app.json(data)

    def h_chat_completions(self, request: Request) -> Response:
        body = self.app.json_body(request)
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise _invalid("model is required.", "model")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise _invalid("messages must be a non-empty list of message objects.", "messages")
        if body.get("stream"):
            raise _invalid("The sandbox does not stream chat completions.", "stream")
        with self.app.tx() as (conn, now, _sim):
            job_id = self.app.tuned_job_of(conn, self.name, model)
            if job_id is None:
                if resolve_together_model(model) is not None:
                    raise _invalid(f"The sandbox only answers fine-tuned models, not the base model {model}.",
                                   "model")
                raise not_found(f"Unable to access model {model}. Please visit https://api.together.ai/models to "
                                "view the list of supported models.", param="model", code="model_not_available")
            answer = self.app.answer_chat(conn, job_id, messages)
        prompt_tokens = sum(count_words(text_of(m.get("content"))) + 4 for m in messages)
        completion_tokens = count_words(answer)
        return self.app.json({
            "id": secrets.token_hex(8), "object": "chat.completion", "created": int(now), "model": model,
            "prompt": [],
            "choices": [{"index": 0, "finish_reason": "stop", "seed": DEFAULT_SEED,
                         "message": {"role": "assistant", "content": answer, "tool_calls": []}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })
