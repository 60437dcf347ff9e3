"""Google Vertex AI tuning jobs (Gemini supervised and preference tuning) and a minimal GCS JSON API.

Vertex under /vertex: `{v1|v1beta1}/projects/{p}/locations/{l}/tuningJobs` (create, list with a
`filter` on labels, get, `:cancel`) and `…/endpoints/{e}:generateContent` for tuned models. A job
carries exactly one of `supervisedTuningSpec` (data: `contents`, optional `systemInstruction`) and
`preferenceOptimizationSpec` (Gemini 2.5 Flash and Flash-Lite only; data: `contents` ending with a
user turn, optional `system_instruction`, and `completions`: one with `score` 1 and one with 0;
`hyperParameters.beta` > 0). The paths and field names are those google-genai sends and parses. States
(core -> Vertex): validating_files -> JOB_STATE_PENDING, queued -> JOB_STATE_QUEUED, running ->
JOB_STATE_RUNNING, succeeded -> JOB_STATE_SUCCEEDED, failed -> JOB_STATE_FAILED, cancelled ->
JOB_STATE_CANCELLED. Errors are Google's `{"error": {"code", "message", "status"}}`.

GCS under /gcs: `POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name=…`, `GET
/storage/v1/b/{bucket}/o` (prefix, pageToken) and `GET|DELETE /storage/v1/b/{bucket}/o/{name}`.
Requests need `Authorization: Bearer …`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import secrets
import sqlite3
from typing import Any
from urllib.parse import unquote

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.app import MB
from ftops.sandbox.dialects import Dialect
from ftops.sandbox.errors import ApiError
from ftops.sandbox.lifecycle import VALIDATE_BASE_S, VALIDATE_PER_MB_S
from ftops.sandbox.store import insert_file, write_bytes_atomic

__all__ = ["GcsDialect", "VertexDialect"]

MODELS = {"gemini-2.0-flash-001": 1500.0, "gemini-2.0-flash-lite-001": 2500.0, "gemini-2.5-flash": 1200.0,
          "gemini-2.5-pro": 400.0, "gemini-2.5-flash-lite": 2500.0}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
DPO_MODELS = frozenset({"gemini-2.5-flash", "gemini-2.5-flash-lite"})
_ADAPTERS = {"supervisedTuningSpec": ("ADAPTER_SIZE_ONE", "ADAPTER_SIZE_FOUR", "ADAPTER_SIZE_EIGHT",
                                      "ADAPTER_SIZE_SIXTEEN"),
             "preferenceOptimizationSpec": ("ADAPTER_SIZE_ONE", "ADAPTER_SIZE_TWO", "ADAPTER_SIZE_FOUR",
                                            "ADAPTER_SIZE_EIGHT", "ADAPTER_SIZE_SIXTEEN")}
_SPECS = tuple(_ADAPTERS)


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _bad(message: str) -> ApiError:
    return ApiError(400, message, code="INVALID_ARGUMENT")


class _Google(Dialect):
    def authenticate(self, request: Request, endpoint: str) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Request is missing required authentication credential.", code="UNAUTHENTICATED")

    def error_response(self, exc: ApiError) -> Response:
        status = exc.code if exc.code and exc.code.isupper() else _STATUS.get(exc.status, "UNKNOWN")
        response = self.app.json({"error": {"code": exc.status, "message": exc.message, "status": status}},
                                 exc.status)
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response


def gcs_row(conn: sqlite3.Connection, uri: str) -> sqlite3.Row | None:
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        return None
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM files WHERE dialect = 'gcs' AND deleted = 0 AND filename = ? ORDER BY seq DESC LIMIT 1",
        (uri[5:],)).fetchone()
    return row


class GcsDialect(_Google):
    name = "gcs"
    prefix = "/gcs"

    def rules(self) -> list[Rule]:
        return [Rule("/upload/storage/v1/b/<bucket>/o", endpoint="upload", methods=["POST"]),
                Rule("/storage/v1/b/<bucket>/o", endpoint="objects", methods=["GET"]),
                Rule("/storage/v1/b/<bucket>/o/<path:name>", endpoint="object", methods=["GET", "DELETE"])]

    def _resource(self, row: sqlite3.Row) -> dict[str, Any]:
        bucket, name = row["filename"].split("/", 1)
        return {"kind": "storage#object", "id": f"{row['filename']}/{int(row['created_at'] * 1e6)}", "name": name,
                "bucket": bucket, "size": str(row["bytes"]), "contentType": "application/jsonl",
                "timeCreated": _iso(row["created_at"]), "updated": _iso(row["created_at"]),
                "generation": str(int(row["created_at"] * 1e6)), "metadata": {"sha256": row["sha256"]},
                "selfLink": f"/storage/v1/b/{bucket}/o/{name}"}

    def h_upload(self, request: Request, bucket: str) -> Response:
        name = request.args.get("name")
        if request.args.get("uploadType", "media") != "media" or not name:
            raise _bad("Only uploadType=media with a `name` is supported by the sandbox.")
        object_id = "gcsobj-" + secrets.token_hex(12)
        tmp = self.app.tmp_path(object_id)
        size, sha, _md5 = self.app.copy_hashed([request.stream], tmp, 5 * 1024 * MB)
        try:
            with self.app.tx() as (conn, now, _sim):
                old = gcs_row(conn, f"gs://{bucket}/{name}")
                row = self.app.commit_file(conn, tmp, dialect=self.name, file_id=object_id, now=now, size=size,
                                           filename=f"{bucket}/{name}", purpose="gcs-object", sha256=sha,
                                           expires_at=None)
                if old is not None:
                    self.app.delete_file(conn, old["id"])
                return self.app.json(self._resource(row))
        finally:
            tmp.unlink(missing_ok=True)

    def h_objects(self, request: Request, bucket: str) -> Response:
        prefix = request.args.get("prefix", "")
        after = request.args.get("pageToken", "")
        limit = max(1, min(1000, int(request.args.get("maxResults", "1000") or 1000)))
        with self.app.tx() as (conn, _now, _sim):
            rows = [r for r in conn.execute("SELECT * FROM files WHERE dialect = 'gcs' AND deleted = 0 AND "
                                            "filename > ? ORDER BY filename", (f"{bucket}/{after}",)).fetchall()
                    if r["filename"].startswith(f"{bucket}/{prefix}")][:limit + 1]
        out: dict[str, Any] = {"kind": "storage#objects", "items": [self._resource(r) for r in rows[:limit]]}
        if len(rows) > limit:
            out["nextPageToken"] = rows[limit - 1]["filename"].split("/", 1)[1]
        return self.app.json(out)

    def h_object(self, request: Request, bucket: str, name: str) -> Response:
        with self.app.tx() as (conn, _now, _sim):
            row = gcs_row(conn, f"gs://{bucket}/{unquote(name)}")
            if row is None:
                raise ApiError(404, f"No such object: {bucket}/{name}", code="NOT_FOUND")
            if request.method == "DELETE":
                self.app.delete_file(conn, row["id"])
                return Response(status=204)
            return self.app.json(self._resource(row))


def _text(obj: Any, where: str) -> str:
    parts = obj.get("parts") if isinstance(obj, dict) else None
    if not isinstance(parts, list) or not parts or not all(
            isinstance(p, dict) and set(p) == {"text"} and isinstance(p["text"], str) for p in parts):
        raise ValueError(f"{where}.parts must be a list of {{\"text\": string}}")
    return "".join(p["text"] for p in parts)


def _turns(line: dict[str, Any], last: str) -> list[dict[str, Any]]:
    """The chat messages of `systemInstruction` (or `system_instruction`, as protobuf JSON accepts
    both spellings) and alternating `contents` that start with the user and end with `last`."""
    messages: list[dict[str, Any]] = []
    system = [k for k in ("systemInstruction", "system_instruction") if k in line]
    if len(system) > 1:
        raise ValueError("systemInstruction is given twice (camelCase and snake_case)")
    if system:
        messages.append({"role": "system", "content": _text(line[system[0]], system[0])})
    for i, c in enumerate(line["contents"]):
        want = "user" if i % 2 == 0 else "model"
        if not isinstance(c, dict) or c.get("role") != want:
            raise ValueError(f"contents[{i}].role must be {want!r}")
        messages.append({"role": "user" if want == "user" else "assistant", "content": _text(c, f"contents[{i}]")})
    if line["contents"][-1].get("role") != last:
        raise ValueError(f"the last turn of `contents` must be the {last}'s")
    return messages


def chat_of_gemini(line: Any) -> dict[str, Any]:
    """One Gemini supervised-tuning line (`contents`, optional `systemInstruction`) as a chat example."""
    if not isinstance(line, dict) or not isinstance(line.get("contents"), list) or len(line["contents"]) < 2:
        raise ValueError("each line needs `contents` with at least a user and a model turn")
    unknown = set(line) - {"contents", "systemInstruction", "system_instruction"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    return {"messages": _turns(line, "model")}


def preference_of_gemini(line: Any) -> dict[str, Any]:
    """One Gemini preference-tuning line (`contents` ending with the user, optional system
    instruction, `completions` scored 1 and 0) as an OpenAI-style preference example."""
    if not isinstance(line, dict) or not isinstance(line.get("contents"), list) or not line["contents"]:
        raise ValueError("each line needs `contents` ending with a user turn")
    unknown = set(line) - {"contents", "systemInstruction", "system_instruction", "completions"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    messages = _turns(line, "user")
    completions = line.get("completions")
    if not isinstance(completions, list) or len(completions) != 2:
        raise ValueError("`completions` must hold exactly two completions (one preferred, one dispreferred)")
    by_score: dict[Any, str] = {}
    for i, c in enumerate(completions):
        if not isinstance(c, dict) or set(c) != {"score", "completion"}:
            raise ValueError(f"completions[{i}] must be {{\"score\", \"completion\"}}")
        if c["score"] not in (0, 1) or isinstance(c["score"], bool):
            raise ValueError(f"completions[{i}].score must be 0 or 1")
        if not isinstance(c["completion"], dict) or c["completion"].get("role") != "model":
            raise ValueError(f"completions[{i}].completion.role must be 'model'")
        by_score[c["score"]] = _text(c["completion"], f"completions[{i}].completion")
    if set(by_score) != {0, 1}:
        raise ValueError("`completions` needs one completion with score 1 and one with score 0")
    return {"input": {"messages": messages}, "preferred_output": [{"role": "assistant", "content": by_score[1]}],
            "non_preferred_output": [{"role": "assistant", "content": by_score[0]}]}


class VertexDialect(_Google):
    name = "vertex"
    prefix = "/vertex"

    def rules(self) -> list[Rule]:
        base = "/<version>/projects/<project>/locations/<location>"
        return [Rule(f"{base}/tuningJobs", endpoint="jobs", methods=["GET", "POST"]),
                Rule(f"{base}/tuningJobs/<job>", endpoint="job", methods=["GET", "POST"]),
                Rule(f"{base}/endpoints/<endpoint>", endpoint="endpoint", methods=["POST"])]

    def _state(self, job: sqlite3.Row) -> str:
        return "JOB_STATE_" + {"validating_files": "PENDING", "queued": "QUEUED", "running": "RUNNING",
                               "paused": "PAUSED", "succeeded": "SUCCEEDED", "failed": "FAILED",
                               "cancelled": "CANCELLED"}.get(job["status"], "STATE_UNSPECIFIED")

    def _render(self, job: sqlite3.Row) -> dict[str, Any]:
        req = json.loads(job["extra"])["request"]
        spec_key = next(k for k in _SPECS if k in req)
        obj: dict[str, Any] = {"name": job["id"], "baseModel": job["model"], "state": self._state(job),
                               "createTime": _iso(job["created_at"]), "updateTime": _iso(job["finished_at"]
                                                                                           or job["created_at"]),
                               spec_key: req[spec_key], "labels": req.get("labels") or {}}
        if req.get("tunedModelDisplayName"):
            obj["tunedModelDisplayName"] = req["tunedModelDisplayName"]
        if job["segment_start"] is not None:
            obj["startTime"] = _iso(job["segment_start"])
        if job["finished_at"] is not None:
            obj["endTime"] = _iso(job["finished_at"])
        if job["status"] == "succeeded":
            endpoint = str(job["fine_tuned_model"])
            obj["tunedModel"] = {"model": endpoint.replace("/endpoints/", "/models/") + "@1", "endpoint": endpoint}
        if job["status"] == "failed":
            err = json.loads(job["error"]) if job["error"] else {}
            obj["error"] = {"code": 3, "message": err.get("message", "The tuning job failed.")}
        return obj

    def h_jobs(self, request: Request, version: str, project: str, location: str) -> Response:
        parent = f"projects/{project}/locations/{location}"
        if request.method == "POST":
            return self._create(request, parent)
        flt = request.args.get("filter", "")
        wanted = dict(re.findall(r'labels\.([a-z0-9_-]+)\s*=\s*"?([a-z0-9_-]*)"?', flt))
        size = max(1, min(100, int(request.args.get("pageSize", "100") or 100)))
        start = int(request.args.get("pageToken") or 0)
        with self.app.tx() as (conn, _now, _sim):
            rows = conn.execute("SELECT * FROM jobs WHERE dialect = ? AND id LIKE ? ORDER BY seq DESC",
                                (self.name, parent + "/%")).fetchall()
            items = [self._render(r) for r in rows]
        items = [i for i in items if all(i["labels"].get(k) == v for k, v in wanted.items())]
        out: dict[str, Any] = {"tuningJobs": items[start:start + size]}
        if start + size < len(items):
            out["nextPageToken"] = str(start + size)
        return self.app.json(out)

    def _create(self, request: Request, parent: str) -> Response:
        body = self.app.json_body(request)
        base = str(body.get("baseModel") or "").rsplit("/", 1)[-1]
        if base not in MODELS:
            raise _bad(f"Base model {body.get('baseModel')!r} is not supported for tuning.")
        given = [k for k in _SPECS if body.get(k) is not None]
        if len(given) != 1:
            raise _bad("Exactly one of supervisedTuningSpec and preferenceOptimizationSpec must be set.")
        spec_key = given[0]
        dpo = spec_key == "preferenceOptimizationSpec"
        if dpo and base not in DPO_MODELS:
            raise _bad(f"Base model {body.get('baseModel')!r} does not support preference tuning "
                       f"(supported: {', '.join(sorted(DPO_MODELS))}).")
        spec = body[spec_key]
        if not isinstance(spec, dict) or not spec.get("trainingDatasetUri"):
            raise _bad(f"{spec_key}.trainingDatasetUri is required.")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or len(labels) > 64 or not all(
                isinstance(k, str) and isinstance(v, str) and _LABEL.match(k) and _LABEL.match(v) and k
                for k, v in labels.items()):
            raise _bad("labels: keys and values must be lowercase letters, digits, '_' or '-', at most 63 characters.")
        hp = spec.get("hyperParameters") or {}
        if not isinstance(hp, dict):
            raise _bad(f"{spec_key}.hyperParameters must be an object.")
        epochs = hp.get("epochCount", 3)
        # int64 travels as a JSON string or number in protobuf JSON.
        if isinstance(epochs, bool) or not isinstance(epochs, (int, str)) or not str(epochs).isdigit() \
                or not 1 <= int(epochs) <= 100:
            raise _bad("hyperParameters.epochCount must be between 1 and 100.")
        lrm = hp.get("learningRateMultiplier", 1.0)
        if isinstance(lrm, bool) or not isinstance(lrm, (int, float)) or not 0 < lrm <= 100:
            raise _bad("hyperParameters.learningRateMultiplier must be a number in (0, 100].")
        if "adapterSize" in hp and hp["adapterSize"] not in _ADAPTERS[spec_key]:
            raise _bad(f"hyperParameters.adapterSize must be one of {', '.join(_ADAPTERS[spec_key])}.")
        beta = hp.get("beta", 0.1)
        if "beta" in hp and not dpo:
            raise _bad("hyperParameters.beta is only accepted in preferenceOptimizationSpec.")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise _bad("hyperParameters.beta must be a positive number.")
        with self.app.tx() as (conn, now, sim):
            kind = f"{self.name}:job_create"
            self.app.rate_limit(conn, now, kind, self.app.settings.job_creates_per_hour, "tuning job creations")
            training = self._data(conn, now, spec["trainingDatasetUri"], "trainingDatasetUri", dpo)
            validation = self._data(conn, now, spec["validationDatasetUri"], "validationDatasetUri", dpo) \
                if spec.get("validationDatasetUri") else None
            number = str(secrets.randbelow(10 ** 18))
            job_id = f"{parent}/tuningJobs/{number}"
            endpoint = f"{parent}/endpoints/{secrets.randbelow(10 ** 18)}"
            method: dict[str, Any] = {"type": "supervised", "supervised": {"hyperparameters": {
                "n_epochs": int(epochs), "learning_rate_multiplier": float(lrm)}}}
            if dpo:
                method = {"type": "dpo", "dpo": {"hyperparameters": {
                    "n_epochs": int(epochs), "learning_rate_multiplier": float(lrm), "beta": float(beta)}}}
            sizes = training["bytes"] + (validation["bytes"] if validation is not None else 0)
            validate_s = (VALIDATE_BASE_S + VALIDATE_PER_MB_S * sizes / MB) / self.app.settings.time_scale
            conn.execute(
                "INSERT INTO jobs(id, short_id, created_at, status, model, training_file, validation_file, method,"
                " legacy_hp, suffix, seed, metadata, integrations, validate_until, dialect, output_name,"
                " tokens_per_second, extra)"
                " VALUES (?, ?, ?, 'validating_files', ?, ?, ?, ?, 0, NULL, 42, ?, NULL, ?, ?, ?, ?, ?)",
                (job_id, number[-6:], now, base, training["id"], validation["id"] if validation is not None else None,
                 json.dumps(method), json.dumps(labels), now + validate_s, self.name, endpoint, MODELS[base],
                 json.dumps({"request": body})))
            self.app.record_rate_event(conn, now, kind)
            sim.event(job_id, now, "Tuning job created", kind="created")
            row = self.app.job_row(conn, self.name, job_id)
            assert row is not None
            return self.app.json(self._render(row))

    def _data(self, conn: sqlite3.Connection, now: float, uri: Any, where: str, dpo: bool) -> sqlite3.Row:
        obj = gcs_row(conn, str(uri or ""))
        if obj is None:
            raise _bad(f"{where}: {uri} does not exist or is not readable.")
        lines = []
        with open(self.app.store.file_path(obj["id"]), encoding="utf-8") as fh:
            for n, raw in enumerate(fh, start=1):
                if raw.strip():
                    try:
                        line = json.loads(raw)
                        lines.append(json.dumps(preference_of_gemini(line) if dpo else chat_of_gemini(line)))
                    except ValueError as exc:
                        raise _bad(f"{where}: {uri} line {n}: {exc}") from None
        data = ("\n".join(lines) + "\n").encode()
        file_id = "vertex-data-" + secrets.token_hex(8)
        write_bytes_atomic(self.app.store.file_path(file_id), data)
        insert_file(conn, file_id=file_id, created_at=now, size=len(data), filename=f"{obj['filename']}.chat.jsonl",
                    purpose="vertex-training-copy", sha256=hashlib.sha256(data).hexdigest(), dialect=self.name)
        row: sqlite3.Row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return row

    def h_job(self, request: Request, version: str, project: str, location: str, job: str) -> Response:
        number, _, verb = job.partition(":")
        job_id = f"projects/{project}/locations/{location}/tuningJobs/{number}"
        with self.app.tx() as (conn, now, sim):
            row = self.app.job_row(conn, self.name, job_id)
            if row is None:
                raise ApiError(404, f"TuningJob {job_id} not found.", code="NOT_FOUND")
            if request.method == "POST":
                if verb != "cancel":
                    raise ApiError(404, f"Unknown method {verb!r}.", code="NOT_FOUND")
                if row["status"] in ("validating_files", "queued", "running", "paused"):
                    sim.cancel(row, now)
                elif row["status"] != "cancelled":
                    raise ApiError(400, f"TuningJob {job_id} is already {self._state(row)}.",
                                   code="FAILED_PRECONDITION")
                return self.app.json({})
            return self.app.json(self._render(row))

    def h_endpoint(self, request: Request, version: str, project: str, location: str, endpoint: str) -> Response:
        number, _, verb = endpoint.partition(":")
        if verb != "generateContent":
            raise ApiError(404, f"Unknown method {verb!r}.", code="NOT_FOUND")
        body = self.app.json_body(request)
        chat = [{"role": "assistant" if c.get("role") == "model" else "user",
                 "content": "".join(p.get("text", "") for p in c.get("parts") or [] if isinstance(p, dict))}
                for c in body.get("contents") or [] if isinstance(c, dict)]
        if not chat:
            raise _bad("contents must not be empty.")
        name = f"projects/{project}/locations/{location}/endpoints/{number}"
        with self.app.tx() as (conn, _now, _sim):
            job_id = self.app.tuned_job_of(conn, self.name, name)
            if job_id is None:
                raise ApiError(404, f"Endpoint {name} not found.", code="NOT_FOUND")
            answer = self.app.answer_chat(conn, job_id, chat)
        return self.app.json({"candidates": [{"content": {"role": "model", "parts": [{"text": answer}]},
                                              "finishReason": "STOP"}],
                              "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": len(answer.split())}})
