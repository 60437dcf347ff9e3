"""OpenAI's dialect: files, uploads, fine-tuning jobs, models and chat completions under /v1.

Shapes follow OpenAI's OpenAPI description (tests/sandbox validates them against it). The core's
neutral job states are OpenAI's own words, so `render_job` shows them as stored.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import re
import secrets
import sqlite3
from contextlib import ExitStack
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.app import count_words, int_arg, text_of
from ftops.sandbox.catalog import BASE_MODELS, resolve_base_model
from ftops.sandbox.dialects import Dialect
from ftops.sandbox.errors import ApiError, bad_request, not_found
from ftops.sandbox.lifecycle import VALIDATE_BASE_S, VALIDATE_PER_MB_S, method_hyperparameters, timestamp
from ftops.sandbox.store import new_id
from ftops.sandbox.validation import base_model_of

__all__ = ["OpenAIDialect", "render_job"]

MB = 1024 * 1024
FILE_MAX_BYTES = 512 * MB
PART_MAX_BYTES = 64 * MB
UPLOAD_MAX_BYTES = 8 * 1024 * MB
UPLOAD_TTL_S = 3600.0
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
UPLOAD_PURPOSES = FILE_PURPOSES
# MIME types an Uploads API `mime_type` may name for a .jsonl file of purpose fine-tune (or batch).
JSONL_MIME_TYPES = ("application/jsonl", "application/json", "application/x-ndjson", "application/jsonlines",
                    "application/x-jsonlines", "text/jsonl", "text/plain", "application/octet-stream")
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
# Result files are served base64-encoded, as the real API does (public scripts b64decode them).
RESULTS_PURPOSE = "fine-tune-results"
PROCESS_PER_MB_S = 1.0
_AUTH_MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)


def _file_object(row: sqlite3.Row) -> dict[str, Any]:
    size = row["bytes"]
    if row["purpose"] == RESULTS_PURPOSE:  # the bytes served are base64
        size = 4 * math.ceil(size / 3)
    obj: dict[str, Any] = {
        "object": "file",
        "id": row["id"],
        "bytes": size,
        "created_at": timestamp(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": row["status"],
    }
    if row["status_details"]:  # the spec types it string (no null): present only on an `error` file
        obj["status_details"] = row["status_details"]
    if row["expires_at"] is not None:
        obj["expires_at"] = timestamp(row["expires_at"])
    return obj


def _mask_key(key: str) -> str:
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "*" * len(key)


def render_job(row: sqlite3.Row, org: str) -> dict[str, Any]:
    """The FineTuningJob object of one job row."""
    method = json.loads(row["method"])
    hp = method_hyperparameters(method)
    legacy = {k: hp.get(k, "auto") for k in ("batch_size", "learning_rate_multiplier", "n_epochs")}
    estimated: int | None = None
    if row["status"] == "running":
        estimated = timestamp(row["segment_start"] + row["run_seconds"] - row["elapsed_before"])
    # The real API sends `"error": {}` on a job that has not failed (the spec says null) and
    # `finished_at: null` on a failed job: see docs/sandbox-differences.md.
    error: dict[str, Any] = json.loads(row["error"]) if row["error"] else {}
    finished = None if row["status"] == "failed" else timestamp(row["finished_at"])
    return {
        "object": "fine_tuning.job",
        "id": row["id"],
        "model": row["model"],
        "created_at": timestamp(row["created_at"]),
        "finished_at": finished,
        "fine_tuned_model": row["fine_tuned_model"],
        "organization_id": f"org-{org}",
        "result_files": [row["result_file"]] if row["result_file"] else [],
        "status": row["status"],
        "validation_file": row["validation_file"],
        "training_file": row["training_file"],
        "hyperparameters": legacy,
        "trained_tokens": row["trained_tokens"] if row["status"] == "succeeded" else None,
        "error": error,
        "user_provided_suffix": row["suffix"],
        "seed": row["seed"],
        "estimated_finish": estimated,
        "integrations": json.loads(row["integrations"]) if row["integrations"] else [],
        "metadata": json.loads(row["metadata"]) if row["metadata"] else None,
        "method": method,
    }



class OpenAIDialect(Dialect):
    """OpenAI's fine-tuning API (files, uploads, jobs, models, chat) under /v1."""

    name = "openai"
    prefix = "/v1"

    def rules(self) -> list[Rule]:
        return [
            Rule("/files", endpoint="files", methods=["GET", "POST"]),
            Rule("/files/<file_id>", endpoint="file", methods=["GET", "DELETE"]),
            Rule("/files/<file_id>/content", endpoint="file_content", methods=["GET"]),
            Rule("/uploads", endpoint="uploads", methods=["POST"]),
            Rule("/uploads/<upload_id>/parts", endpoint="upload_parts", methods=["POST"]),
            Rule("/uploads/<upload_id>/complete", endpoint="upload_complete", methods=["POST"]),
            Rule("/uploads/<upload_id>/cancel", endpoint="upload_cancel", methods=["POST"]),
            Rule("/fine_tuning/jobs", endpoint="jobs", methods=["GET", "POST"]),
            Rule("/fine_tuning/jobs/<job_id>", endpoint="job", methods=["GET"]),
            Rule("/fine_tuning/jobs/<job_id>/cancel", endpoint="job_cancel", methods=["POST"]),
            Rule("/fine_tuning/jobs/<job_id>/pause", endpoint="job_pause", methods=["POST"]),
            Rule("/fine_tuning/jobs/<job_id>/resume", endpoint="job_resume", methods=["POST"]),
            Rule("/fine_tuning/jobs/<job_id>/events", endpoint="job_events", methods=["GET"]),
            Rule("/fine_tuning/jobs/<job_id>/checkpoints", endpoint="job_checkpoints", methods=["GET"]),
            Rule("/models", endpoint="models", methods=["GET"]),
            Rule("/models/<path:model>", endpoint="model", methods=["GET", "DELETE"]),
            Rule("/chat/completions", endpoint="chat_completions", methods=["POST"]),
        ]

    def authenticate(self, request: Request, endpoint: str) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(401, _AUTH_MISSING)
        if self.app.settings.api_keys is not None and key not in self.app.settings.api_keys:
            raise ApiError(401, f"Incorrect API key provided: {_mask_key(key)}. You can find your API key at "
                                "https://platform.openai.com/account/api-keys.", code="invalid_api_key")

    def decorate(self, response: Response, started: float) -> None:
        import time

        response.headers["x-request-id"] = "req_" + secrets.token_hex(16)
        response.headers["openai-organization"] = f"org-{self.app.settings.org}"
        response.headers["openai-version"] = "2020-10-01"
        response.headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))

    def _output_name(self, model: str, suffix: str | None, short_id: str) -> str:
        base = base_model_of(model)
        base_id = base.id if base else model
        return f"ft:{base_id}:{self.app.settings.org}:{suffix or ''}:{short_id}"

    # -- files ---------------------------------------------------------------------------------
    @staticmethod
    def _check_purpose(purpose: str | None, filename: str, allowed: tuple[str, ...], filename_param: str) -> str:
        if not purpose:
            raise bad_request("Missing required parameter: 'purpose'.", param="purpose",
                              code="missing_required_parameter")
        if purpose not in allowed:
            raise bad_request(f"'{purpose}' is not one of {list(allowed)} - 'purpose'", param="purpose",
                              code="invalid_value")
        if purpose == "fine-tune" and not filename.lower().endswith(".jsonl"):
            raise bad_request("Invalid file format for Fine-Tuning API. Must be .jsonl", param=filename_param,
                              code="invalid_file_format")
        return purpose

    @staticmethod
    def _expires_after(value: Any, param: str) -> float | None:
        """Seconds from `expires_after` ({"anchor": "created_at", "seconds": N}) or None."""
        if value is None:
            return None
        try:
            anchor, raw = value["anchor"], value["seconds"]
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            seconds = int(raw)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise bad_request("'expires_after' needs 'anchor' and integer 'seconds'.", param=param,
                              code="invalid_value") from None
        if anchor != "created_at" or not 3600 <= seconds <= 2592000:
            raise bad_request("'expires_after' must have anchor 'created_at' and seconds in [3600, 2592000].",
                              param=param, code="invalid_value")
        return float(seconds)

    def h_files(self, request: Request) -> Response:
        if request.method == "POST":
            return self._create_file(request)
        purpose = request.args.get("purpose")
        limit = int_arg(request, "limit", 10000, 1, 10000)
        order = request.args.get("order", "desc")
        if order not in ("asc", "desc"):
            raise bad_request("Invalid 'order': expected 'asc' or 'desc'.", param="order", code="invalid_value")
        after = request.args.get("after")
        with self.app.tx() as (conn, now, _):
            self.app.expire_files(conn, now)
            rows = conn.execute(
                "SELECT * FROM files WHERE deleted = 0 AND dialect = ? AND (? IS NULL OR purpose = ?) ORDER BY seq "
                + ("ASC" if order == "asc" else "DESC"), (self.name, purpose, purpose)).fetchall()
        if after:
            ids = [r["id"] for r in rows]
            rows = rows[ids.index(after) + 1:] if after in ids else []
        page = rows[:limit]
        data = [_file_object(r) for r in page]
        return self.app.json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                           "last_id": data[-1]["id"] if data else None, "has_more": len(rows) > limit})

    def _create_file(self, request: Request) -> Response:
        request.max_content_length = FILE_MAX_BYTES + MB
        upload = request.files.get("file")
        purpose = request.form.get("purpose")
        if upload is None:
            raise bad_request("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
        filename = os.path.basename(upload.filename or "") or "upload"
        self._check_purpose(purpose, filename, FILE_PURPOSES, "file")
        expires = None
        if "expires_after[anchor]" in request.form or "expires_after[seconds]" in request.form:
            expires = self._expires_after({"anchor": request.form.get("expires_after[anchor]"),
                                           "seconds": request.form.get("expires_after[seconds]")}, "expires_after")
        elif "expires_after" in request.form:
            # A JSON object in one part (how some multipart encoders send nested fields): honoured,
            # never silently ignored.
            try:
                value = json.loads(request.form["expires_after"], parse_constant=lambda c: None)
            except ValueError:
                value = None
            expires = self._expires_after(value if isinstance(value, dict) else {}, "expires_after")
        file_id = new_id("file-")
        tmp = self.app.tmp_path(file_id)
        size, sha, _ = self.app.copy_hashed([upload.stream], tmp, FILE_MAX_BYTES)
        try:
            with self.app.tx() as (conn, now, _):
                row = self.app.commit_file(conn, tmp, dialect=self.name, file_id=file_id, now=now, size=size,
                                           filename=filename, purpose=str(purpose), sha256=sha,
                                           expires_at=now + expires if expires else None,
                                           processing_s=self._processing_s(size))
        finally:
            tmp.unlink(missing_ok=True)
        return self.app.json(_file_object(row))

    def _processing_s(self, size: int) -> float:
        base = self.app.settings.file_processing_s  # 0: processed by the next request
        return base + PROCESS_PER_MB_S * size / MB if base > 0 else 0.0

    def process_file(self, row: sqlite3.Row) -> tuple[str, str | None]:
        """A fine-tune (or batch) file must be UTF-8 text and not empty: otherwise `error`, with the
        reason in `status_details`. Its JSONL content (objects, roles, example count) is checked when a
        job validates it, where the real service reports those problems (`invalid_training_file`)."""
        if row["purpose"] not in ("fine-tune", "batch"):
            return "processed", None
        try:
            with open(self.app.store.file_path(row["id"]), "rb") as fh:
                empty = True
                for number, raw in enumerate(fh, start=1):
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError:
                        return "error", f"Invalid file format. Line {number}: the file is not UTF-8 text."
                    empty = empty and not raw.strip()
        except OSError:
            return "error", "The file's bytes could not be read."
        if empty:
            return "error", "Invalid file format. The file is empty."
        return "processed", None

    def _file_row(self, conn: sqlite3.Connection, file_id: str, now: float) -> sqlite3.Row:
        row = self.app.file_row(conn, self.name, file_id, now)
        if row is None:
            raise not_found(f"No such File object: {file_id}", param="id")
        return row

    def h_file(self, request: Request, file_id: str) -> Response:
        with self.app.tx() as (conn, now, _):
            row = self._file_row(conn, file_id, now)
            if request.method == "DELETE":
                self.app.delete_file(conn, file_id)
                return self.app.json({"id": file_id, "object": "file", "deleted": True})
        return self.app.json(_file_object(row))

    def h_file_content(self, request: Request, file_id: str) -> Response:
        with self.app.tx() as (conn, now, _):
            row = self._file_row(conn, file_id, now)
            data = self.app.store.file_path(file_id).read_bytes()
        if row["purpose"] == RESULTS_PURPOSE:
            data = base64.b64encode(data)
        # The spec documents application/json for this operation (the bytes are the file's own).
        return Response(data, mimetype="application/json")

    # -- uploads -------------------------------------------------------------------------------
    def _upload_row(self, conn: sqlite3.Connection, upload_id: str, now: float) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute("SELECT * FROM uploads WHERE id = ? AND dialect = ?",
                                               (upload_id, self.name)).fetchone()
        if row is None:
            raise not_found(f"Upload {upload_id} not found.", param="upload_id")
        if row["status"] == "pending" and row["expires_at"] <= now:
            conn.execute("UPDATE uploads SET status = 'expired' WHERE id = ?", (upload_id,))
            self._drop_parts(conn, upload_id)
            row = conn.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return row

    def _drop_parts(self, conn: sqlite3.Connection, upload_id: str) -> None:
        for part in conn.execute("SELECT id FROM upload_parts WHERE upload_id = ?", (upload_id,)).fetchall():
            self.app.store.part_path(part["id"]).unlink(missing_ok=True)

    def _upload_object(self, conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        file_obj = None
        if row["file_id"]:
            file_row = conn.execute("SELECT * FROM files WHERE id = ?", (row["file_id"],)).fetchone()
            file_obj = _file_object(file_row) if file_row is not None else None
        return {"object": "upload", "id": row["id"], "created_at": timestamp(row["created_at"]),
                "filename": row["filename"], "bytes": row["bytes"], "purpose": row["purpose"],
                "status": row["status"], "expires_at": timestamp(row["expires_at"]), "file": file_obj}

    @staticmethod
    def _require_pending(row: sqlite3.Row) -> None:
        if row["status"] != "pending":
            raise bad_request(f"Upload {row['id']} is {row['status']}; only a pending upload accepts this.",
                              param="upload_id", code="invalid_upload_status")

    def h_uploads(self, request: Request) -> Response:
        body = self.app.json_body(request)
        for key in body:
            if key not in ("filename", "purpose", "bytes", "mime_type", "expires_after"):
                raise bad_request(f"Unrecognized request argument supplied: {key}", param=key,
                                  code="unknown_parameter")
        for key in ("filename", "purpose", "bytes", "mime_type"):
            if body.get(key) in (None, ""):
                raise bad_request(f"Missing required parameter: '{key}'.", param=key,
                                  code="missing_required_parameter")
        size = body["bytes"]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= UPLOAD_MAX_BYTES:
            raise bad_request("'bytes' must be a positive integer of at most 8 GB.", param="bytes",
                              code="invalid_value")
        for key in ("filename", "purpose", "mime_type"):
            if not isinstance(body[key], str):
                raise bad_request(f"Invalid type for '{key}': expected a string.", param=key, code="invalid_type")
        filename = os.path.basename(str(body["filename"]))
        purpose = self._check_purpose(str(body["purpose"]), filename, UPLOAD_PURPOSES, "filename")
        mime = str(body["mime_type"]).strip().lower()
        if not _MIME.fullmatch(mime):
            raise bad_request(f"Invalid 'mime_type': {body['mime_type']!r} is not a MIME type.", param="mime_type",
                              code="invalid_value")
        if purpose in ("fine-tune", "batch") and mime not in JSONL_MIME_TYPES:
            raise bad_request(f"The mime_type {mime!r} is not supported for purpose '{purpose}': a .jsonl file "
                              "needs one of " + ", ".join(JSONL_MIME_TYPES[:3]) + ".", param="mime_type",
                              code="invalid_value")
        file_expires = self._expires_after(body.get("expires_after"), "expires_after")  # applies to the File
        upload_id = new_id("upload_")
        with self.app.tx() as (conn, now, _):
            conn.execute(
                "INSERT INTO uploads(id, created_at, filename, bytes, purpose, mime_type, status, expires_at,"
                " file_expires_s, dialect) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (upload_id, now, filename, size, purpose, str(body["mime_type"]), now + UPLOAD_TTL_S, file_expires,
                 self.name))
            row = conn.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
            return self.app.json(self._upload_object(conn, row))

    def h_upload_parts(self, request: Request, upload_id: str) -> Response:
        request.max_content_length = PART_MAX_BYTES + MB
        data = request.files.get("data")
        if data is None:
            raise bad_request("Missing required parameter: 'data'.", param="data", code="missing_required_parameter")
        part_id = new_id("part_")
        tmp = self.app.tmp_path(part_id)
        size, _, _ = self.app.copy_hashed([data.stream], tmp, PART_MAX_BYTES)
        try:
            with self.app.tx() as (conn, now, _):
                row = self._upload_row(conn, upload_id, now)
                self._require_pending(row)
                used = conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM upload_parts WHERE upload_id = ?",
                                    (upload_id,)).fetchone()[0]
                if used + size > UPLOAD_MAX_BYTES:
                    raise bad_request("An upload may hold at most 8 GB of parts.", param="data",
                                      code="upload_too_large")
                conn.execute("INSERT INTO upload_parts(id, upload_id, created_at, bytes) VALUES (?, ?, ?, ?)",
                             (part_id, upload_id, now, size))
                os.replace(tmp, self.app.store.part_path(part_id))
        finally:
            tmp.unlink(missing_ok=True)
        return self.app.json({"object": "upload.part", "id": part_id, "created_at": timestamp(now), "upload_id": upload_id})

    def h_upload_complete(self, request: Request, upload_id: str) -> Response:
        body = self.app.json_body(request)
        part_ids = body.get("part_ids")
        md5_expected = body.get("md5")
        if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
            raise bad_request("Missing required parameter: 'part_ids' (a list of part ids).", param="part_ids",
                              code="missing_required_parameter")
        if len(set(part_ids)) != len(part_ids):
            raise bad_request("'part_ids' lists a part more than once.", param="part_ids", code="invalid_value")
        file_id = new_id("file-")
        with self.app.tx() as (conn, now, _):
            row = self._upload_row(conn, upload_id, now)
            self._require_pending(row)
            parts = {p["id"]: p for p in conn.execute("SELECT * FROM upload_parts WHERE upload_id = ?",
                                                      (upload_id,)).fetchall()}
            for pid in part_ids:
                if pid not in parts:
                    raise bad_request(f"Part {pid} does not belong to upload {upload_id}.", param="part_ids",
                                      code="invalid_value")
            total = sum(parts[p]["bytes"] for p in part_ids)
            if total != row["bytes"]:
                raise bad_request(f"The upload was created for {row['bytes']} bytes but the parts given hold "
                                  f"{total} bytes.", param="part_ids", code="upload_size_mismatch")
            tmp = self.app.tmp_path(file_id)
            try:
                with ExitStack() as stack:
                    sources = [stack.enter_context(open(self.app.store.part_path(pid), "rb")) for pid in part_ids]
                    _, sha, md5 = self.app.copy_hashed(sources, tmp, UPLOAD_MAX_BYTES)
                if md5_expected is not None and str(md5_expected).lower() != md5:
                    raise bad_request("The md5 checksum given does not match the uploaded bytes.", param="md5",
                                      code="checksum_mismatch")
                self.app.commit_file(conn, tmp, dialect=self.name, file_id=file_id, now=now, size=total,
                                     filename=row["filename"], purpose=row["purpose"], sha256=sha,
                                     expires_at=now + row["file_expires_s"] if row["file_expires_s"] else None,
                                     processing_s=self._processing_s(total))
            finally:
                tmp.unlink(missing_ok=True)
            conn.execute("UPDATE uploads SET status = 'completed', file_id = ? WHERE id = ?", (file_id, upload_id))
            self._drop_parts(conn, upload_id)
            row = conn.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
            return self.app.json(self._upload_object(conn, row))

    def h_upload_cancel(self, request: Request, upload_id: str) -> Response:
        with self.app.tx() as (conn, now, _):
            row = self._upload_row(conn, upload_id, now)
            self._require_pending(row)
            conn.execute("UPDATE uploads SET status = 'cancelled' WHERE id = ?", (upload_id,))
            self._drop_parts(conn, upload_id)
            row = conn.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
            return self.app.json(self._upload_object(conn, row))

    # -- fine-tuning jobs ------------------------------------------------------------------------
    def _job_row(self, conn: sqlite3.Connection, job_id: str) -> sqlite3.Row:
        row = self.app.job_row(conn, self.name, job_id)
        if row is None:
            raise not_found(f"Could not find fine-tuning job: {job_id}", param="fine_tuning_job_id",
                            code="fine_tuning_job_not_found")
        return row

    def h_jobs(self, request: Request) -> Response:
        if request.method == "POST":
            return self._create_job(request)
        limit = int_arg(request, "limit", 20, 1, 100)
        after = request.args.get("after")
        wanted: dict[str, str] = {}
        no_metadata = False
        for key, value in request.args.items(multi=True):
            match = re.fullmatch(r"metadata\[(.+)\]", key)
            if match:
                wanted[match.group(1)] = value
            elif key == "metadata":
                if value != "null":
                    raise bad_request("Invalid 'metadata': filter with metadata[key]=value, or metadata=null for "
                                      "jobs without metadata.", param="metadata", code="invalid_value")
                no_metadata = True
        if no_metadata and wanted:
            raise bad_request("'metadata=null' cannot be combined with metadata[key] filters.", param="metadata",
                              code="invalid_value")
        # Metadata filters run in SQL with a LIMIT, so a filtered page costs the same at 10 or 10,000 jobs.
        sql = "SELECT * FROM jobs WHERE dialect = ? AND (? IS NULL OR seq < (SELECT seq FROM jobs WHERE id = ?))"
        params: list[Any] = [self.name, after, after]
        in_python = {k: v for k, v in wanted.items() if '"' in k or "\\" in k}  # not quotable in a JSON path
        for k, v in sorted(wanted.items()):
            if k not in in_python:
                sql += " AND json_extract(metadata, ?) = ?"
                params += [f'$."{k}"', v]
        sql += " ORDER BY seq DESC"
        if not no_metadata and not in_python:
            sql += " LIMIT ?"
            params.append(limit + 1)
        with self.app.tx() as (conn, _, _sim):
            if after:
                self._job_row(conn, after)
            rows = conn.execute(sql, params).fetchall()
        if no_metadata:
            rows = [r for r in rows if not (json.loads(r["metadata"]) if r["metadata"] else None)]
        if in_python:
            rows = [r for r in rows if all((json.loads(r["metadata"]) if r["metadata"] else {}).get(k) == v
                                           for k, v in in_python.items())]
        page = rows[:limit]
        return self.app.json({"object": "list", "data": [render_job(r, self.app.settings.org) for r in page],
                           "has_more": len(rows) > limit})

    def _create_job(self, request: Request) -> Response:
        from ftops.sandbox.validation import validate_create_job

        body = self.app.json_body(request)
        job_id = new_id("ftjob-")
        with self.app.tx() as (conn, now, sim):
            settings = self.app.settings
            self.app.rate_limit(conn, now, "job_create", settings.job_creates_per_hour, "fine-tuning job creations")
            self.app.rate_limit(conn, now, "job_create", settings.job_creates_per_day, "fine-tuning job creations",
                                window_s=86400.0)
            spec = validate_create_job(conn, body, now, settings.closes_on, dialect=self.name,
                                       enforce_cutoffs=settings.enforce_cutoffs, today=settings.today)
            self._check_active_jobs(conn, now, spec["model"])
            seed = spec["seed"] if spec["seed"] is not None else random.Random(job_id).randrange(2**31 - 1)
            short_id = new_id("", 8)
            base = base_model_of(spec["model"])
            sizes = conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM files WHERE id IN (?, ?)",
                                 (spec["training_file"], spec["validation_file"])).fetchone()[0]
            validate_s = (VALIDATE_BASE_S + VALIDATE_PER_MB_S * sizes / MB) / self.app.settings.time_scale
            conn.execute(
                "INSERT INTO jobs(id, short_id, created_at, status, model, training_file, validation_file, method,"
                " legacy_hp, suffix, seed, metadata, integrations, validate_until, dialect, output_name,"
                " tokens_per_second)"
                " VALUES (?, ?, ?, 'validating_files', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, short_id, now, spec["model"], spec["training_file"], spec["validation_file"],
                 json.dumps(spec["method"]), int(spec["legacy_hp"]), spec["suffix"], seed,
                 json.dumps(spec["metadata"]) if spec["metadata"] is not None else None,
                 json.dumps(spec["integrations"]) if spec["integrations"] else None, now + validate_s, self.name,
                 self._output_name(spec["model"], spec["suffix"], short_id),
                 base.tokens_per_second if base else None))
            self.app.record_rate_event(conn, now, "job_create")
            sim.event(job_id, now, f"Created fine-tuning job: {job_id}", kind="created")
            files = spec["training_file"] + (f" and validation file: {spec['validation_file']}"
                                             if spec["validation_file"] else "")
            sim.event(job_id, now, f"Validating training file: {files}", kind="validating")
            row = self._job_row(conn, job_id)
        return self.app.json(render_job(row, self.app.settings.org))

    def _check_active_jobs(self, conn: sqlite3.Connection, now: float, model: str) -> None:
        """OpenAI's "active / queued jobs" limit: at most `max_active_jobs_per_model` jobs of one base
        model validating, queued or running (a paused job holds no slot)."""
        limit = self.app.settings.max_active_jobs_per_model
        if limit is None:
            return
        base = base_model_of(model)
        names = {model} | ({base.id} if base else set())
        rows = conn.execute("SELECT * FROM jobs WHERE dialect = ? AND status IN ('validating_files', 'queued', "
                            "'running')", (self.name,)).fetchall()
        active = [r for r in rows if r["model"] in names or (base and base_model_of(r["model"]) == base)]
        if len(active) < limit:
            return
        running = sum(1 for r in active if r["status"] == "running")
        ends = [r["segment_start"] + r["run_seconds"] - r["elapsed_before"] for r in active if r["status"] == "running"]
        wait = max(1.0 / self.app.settings.time_scale, min(ends) - now if ends else 60.0 / self.app.settings.time_scale)
        raise ApiError(
            429, f"This fine-tune request has been rate-limited. Your organization has reached the maximum of "
                 f"{limit} active requests ({running} running, {len(active) - running} queued) for the model "
                 f"'{base.id if base else model}'.", type="invalid_request_error", code="rate_limit_exceeded",
            headers={"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))})

    def h_job(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, _, _sim):
            row = self._job_row(conn, job_id)
        return self.app.json(render_job(row, self.app.settings.org))

    def _job_action(self, job_id: str, action: str) -> Response:
        allowed = {"cancel": ("validating_files", "queued", "running", "paused"), "pause": ("running",),
                   "resume": ("paused",)}[action]
        with self.app.tx() as (conn, now, sim):
            row = self._job_row(conn, job_id)
            if row["status"] not in allowed:
                done = {"cancel": "cancelled", "pause": "paused", "resume": "resumed"}[action]
                raise bad_request(f"Job {job_id} is {row['status']} and cannot be {done}.",
                                  param="fine_tuning_job_id", code="invalid_job_status")
            getattr(sim, action)(row, now)
            row = self._job_row(conn, job_id)
        return self.app.json(render_job(row, self.app.settings.org))

    def h_job_cancel(self, request: Request, job_id: str) -> Response:
        return self._job_action(job_id, "cancel")

    def h_job_pause(self, request: Request, job_id: str) -> Response:
        return self._job_action(job_id, "pause")

    def h_job_resume(self, request: Request, job_id: str) -> Response:
        return self._job_action(job_id, "resume")

    def _job_page(self, request: Request, job_id: str, table: str, default_limit: int) -> tuple[list[sqlite3.Row], bool]:
        """One page of a job's events or checkpoints, newest first, after the `after` cursor."""
        limit = int_arg(request, "limit", default_limit, 1, 1000)
        after = request.args.get("after")
        with self.app.tx() as (conn, _, _sim):
            self._job_row(conn, job_id)
            rows = conn.execute(
                f"SELECT * FROM {table} WHERE job_id = ? AND (? IS NULL OR seq < (SELECT seq FROM {table} WHERE id = ?))"
                " ORDER BY seq DESC LIMIT ?", (job_id, after, after, limit + 1)).fetchall()
        return rows[:limit], len(rows) > limit

    def h_job_events(self, request: Request, job_id: str) -> Response:
        rows, has_more = self._job_page(request, job_id, "events", 20)
        data = []
        for r in rows:
            event: dict[str, Any] = {"object": "fine_tuning.job.event", "id": r["id"],
                                     "created_at": timestamp(r["created_at"]), "level": r["level"],
                                     "message": r["message"], "type": r["type"]}
            event["data"] = json.loads(r["data"]) if r["data"] else {}
            data.append(event)
        return self.app.json({"object": "list", "data": data, "has_more": has_more})

    def h_job_checkpoints(self, request: Request, job_id: str) -> Response:
        rows, has_more = self._job_page(request, job_id, "checkpoints", 10)
        data = [{"object": "fine_tuning.job.checkpoint", "id": r["id"], "created_at": timestamp(r["created_at"]),
                 "fine_tuned_model_checkpoint": r["model"], "fine_tuning_job_id": job_id,
                 "metrics": json.loads(r["metrics"]), "step_number": r["step_number"]} for r in rows]
        return self.app.json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                           "last_id": data[-1]["id"] if data else None, "has_more": has_more})

    # -- models ----------------------------------------------------------------------------------
    def h_models(self, request: Request) -> Response:
        with self.app.tx() as (conn, _, _sim):
            tuned = conn.execute("SELECT * FROM models WHERE deleted = 0 AND dialect = ? ORDER BY created",
                                 (self.name,)).fetchall()
        data = [{"id": name, "object": "model", "created": m.created, "owned_by": m.owned_by,
                 "shutdown_date": m.shutdown_date} for m in BASE_MODELS for name in (m.id, *m.aliases)]
        data += [{"id": r["id"], "object": "model", "created": timestamp(r["created"]), "owned_by": r["owned_by"],
                  "shutdown_date": None} for r in tuned]
        return self.app.json({"object": "list", "data": data})

    def _model_missing(self, model: str) -> ApiError:
        return not_found(f"The model '{model}' does not exist or you do not have access to it.", param="model",
                         code="model_not_found")

    def h_model(self, request: Request, model: str) -> Response:
        with self.app.tx() as (conn, _, _sim):
            row = conn.execute("SELECT * FROM models WHERE id = ? AND deleted = 0 AND dialect = ?",
                               (model, self.name)).fetchone()
            base = resolve_base_model(model)
            if request.method == "DELETE":
                if row is None:
                    if base is not None:
                        raise ApiError(403, f"You do not have permission to delete the base model {model}.",
                                       param="model", code="model_not_deletable")
                    raise self._model_missing(model)
                conn.execute("UPDATE models SET deleted = 1 WHERE id = ?", (model,))
                return self.app.json({"id": model, "object": "model", "deleted": True})
        if row is not None:
            return self.app.json({"id": row["id"], "object": "model", "created": timestamp(row["created"]),
                               "owned_by": row["owned_by"], "shutdown_date": None})
        if base is not None:
            return self.app.json({"id": model, "object": "model", "created": base.created, "owned_by": base.owned_by,
                               "shutdown_date": base.shutdown_date})
        raise self._model_missing(model)

    # -- chat completions ----------------------------------------------------------------------------
    def h_chat_completions(self, request: Request) -> Response:
        body = self.app.json_body(request)
        model = body.get("model")
        messages = body.get("messages")
        if not isinstance(model, str) or not model:
            raise bad_request("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise bad_request("'messages' must be a non-empty list of message objects.", param="messages",
                              code="invalid_value")
        if body.get("stream"):
            raise bad_request("The sandbox does not stream chat completions.", param="stream", code="invalid_value")
        with self.app.tx() as (conn, now, _sim):
            job_id = self.app.tuned_job_of(conn, self.name, model)
            if job_id is None:
                if resolve_base_model(model) is not None:
                    raise bad_request(f"The sandbox only answers fine-tuned models, not the base model {model}.",
                                      param="model", code="model_not_supported")
                raise self._model_missing(model)
            answer = self.app.answer_chat(conn, job_id, messages)
        prompt_tokens = sum(count_words(text_of(m.get("content"))) + 4 for m in messages)
        completion_tokens = count_words(answer)
        return self.app.json({
            "id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion", "created": int(now),
            "model": model, "system_fingerprint": "fp_sandbox",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": answer, "refusal": None, "annotations": []}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

