"""Azure OpenAI's dialect: the v1 data plane under /azure/openai/v1 and ARM deployments under /azure/management.

An independent reading of Azure's documents (the v1 data-plane description, Microsoft Learn), over
the OpenAI dialect's routes, with Azure's differences:
- `api-key` header (or a bearer token); no Uploads API (direct multipart, 512 MB);
- a job needs `trainingType` (`globalstandard`, `standard`, `developer`, any case); without it the
  answer is Azure's misleading "base model does not support fine-tuning";
- the suffix is at most 40 characters; jobs start `pending`; the job list has no metadata filter;
- files are expected UTF-8 with a byte-order mark: the BOM is stripped before storing (the core's
  checks read plain JSONL) and remembered in the file's `extra` ({"bom": true});
- fine-tuned models are named `{base}.ft-{job hex}-{suffix}`;
- `/models` carries Azure-style lifecycle dates (`deprecation.fine_tune`, `deprecation.inference`),
  announced as "no earlier than": sandbox data, not a mirror of Azure's live list.

`/azure/management/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/
accounts/{a}/deployments[/{name}]` answers PUT, GET and DELETE (api-version required): a
deployment of a fine-tuned model this dialect trained; a model cannot be deleted while deployed.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.catalog import BASE_MODELS
from ftops.sandbox.dialects import Dialect
from ftops.sandbox.dialects.openai import FILE_MAX_BYTES, OpenAIDialect, _file_object, render_job
from ftops.sandbox.errors import ApiError, bad_request, not_found
from ftops.sandbox.store import new_id
from ftops.sandbox.validation import base_model_of

__all__ = ["AzureArmDialect", "AzureDialect"]

MB = 1024 * 1024
BOM = b"\xef\xbb\xbf"
TRAINING_TYPES = ("globalstandard", "standard", "developer")
MAX_SUFFIX = 40
# Sandbox data in Azure's shape: "training until about April 2027, serving until about October 2027",
# announced as "no earlier than" dates.
AZURE_FINE_TUNE_UNTIL = "2027-04-01"
AZURE_INFERENCE_UNTIL = "2027-10-01"
_AZURE_BASES = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14",
                "gpt-4.1-nano-2025-04-14", "o4-mini-2025-04-16")


class AzureDialect(OpenAIDialect):
    """Azure OpenAI's v1 fine-tuning data plane."""

    name = "azure"
    prefix = "/azure/openai/v1"

    def rules(self) -> list[Rule]:
        return [r for r in super().rules() if not str(r.endpoint).startswith("upload")]

    def authenticate(self, request: Request, endpoint: str) -> None:
        key = request.headers.get("api-key", "").strip()
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not key and not (scheme.lower() == "bearer" and token.strip()):
            raise ApiError(401, "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                                "provide a valid key for an active subscription and use a correct regional API "
                                "endpoint for your resource.", code="401")
        if key and self.app.settings.api_keys is not None and key not in self.app.settings.api_keys:
            raise ApiError(401, "Access denied due to invalid subscription key.", code="401")

    def decorate(self, response: Response, started: float) -> None:
        super().decorate(response, started)
        response.headers["apim-request-id"] = response.headers["x-request-id"]

    def _output_name(self, model: str, suffix: str | None, short_id: str) -> str:
        base = base_model_of(model)
        return f"{base.id if base else model}.ft-{short_id}" + (f"-{suffix}" if suffix else "")

    # -- files: UTF-8 with a BOM ---------------------------------------------------------------
    def _create_file(self, request: Request) -> Response:
        request.max_content_length = FILE_MAX_BYTES + MB
        upload = request.files.get("file")
        purpose = request.form.get("purpose")
        if upload is None:
            raise bad_request("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
        filename = os.path.basename(upload.filename or "") or "upload"
        self._check_purpose(purpose, filename, ("fine-tune", "assistants", "batch", "evals"), "file")
        head = upload.stream.read(len(BOM))
        bom = head == BOM
        file_id = new_id("file-")
        tmp = self.app.tmp_path(file_id)
        size, sha, _ = self.app.copy_hashed([io.BytesIO(b"" if bom else head), upload.stream], tmp, FILE_MAX_BYTES)
        try:
            with self.app.tx() as (conn, now, _):
                row = self.app.commit_file(conn, tmp, dialect=self.name, file_id=file_id, now=now, size=size,
                                           filename=filename, purpose=str(purpose), sha256=sha, expires_at=None,
                                           extra={"bom": bom})
        finally:
            tmp.unlink(missing_ok=True)
        return self.app.json(_file_object(row))

    # -- jobs ------------------------------------------------------------------------------------
    def h_jobs(self, request: Request) -> Response:
        if request.method == "POST":
            return self._create_job(request)
        from ftops.sandbox.app import int_arg

        limit = int_arg(request, "limit", 20, 1, 100)
        after = request.args.get("after")
        with self.app.tx() as (conn, _, _sim):  # no metadata filter on Azure: every job, newest first
            if after:
                self._job_row(conn, after)
            rows = conn.execute(
                "SELECT * FROM jobs WHERE dialect = ? AND (? IS NULL OR seq < (SELECT seq FROM jobs WHERE id = ?))"
                " ORDER BY seq DESC", (self.name, after, after)).fetchall()
        page = rows[:limit]
        return self.app.json({"object": "list", "data": [self._render(r) for r in page],
                              "has_more": len(rows) > limit})

    def _render(self, row: sqlite3.Row) -> dict[str, Any]:
        obj = render_job(row, self.app.settings.org)
        if obj["status"] in ("validating_files", "queued"):
            obj["status"] = "pending"  # Azure's word before a job runs (not in the v1 description)
        obj["organization_id"] = None  # null where OpenAI has a value
        return obj

    def _create_job(self, request: Request) -> Response:
        body = self.app.json_body(request)
        tt = body.pop("trainingType", None)
        if not isinstance(tt, str) or tt.lower() not in TRAINING_TYPES:
            model = body.get("model")
            if tt is None:
                raise bad_request(f"The specified base model {model} does not support fine-tuning.", param="model",
                                  code="invalidPayload")
            raise bad_request(f"Invalid trainingType {tt!r}: expected one of {', '.join(TRAINING_TYPES)}.",
                              param="trainingType", code="invalidPayload")
        suffix = body.get("suffix")
        if isinstance(suffix, str) and len(suffix) > MAX_SUFFIX:
            raise bad_request(f"The suffix may have at most {MAX_SUFFIX} characters.", param="suffix",
                              code="invalidPayload")
        request._cached_data = json.dumps(body).encode()
        response = super()._create_job(request)
        obj = json.loads(response.get_data())
        with self.app.tx() as (conn, _, _sim):
            return self.app.json(self._render(self._job_row(conn, obj["id"])))

    def h_job(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, _, _sim):
            return self.app.json(self._render(self._job_row(conn, job_id)))

    def _job_action(self, job_id: str, action: str) -> Response:
        super()._job_action(job_id, action)
        with self.app.tx() as (conn, _, _sim):
            return self.app.json(self._render(self._job_row(conn, job_id)))

    # -- models ------------------------------------------------------------------------------------
    def h_models(self, request: Request) -> Response:
        with self.app.tx() as (conn, _, _sim):
            tuned = conn.execute("SELECT * FROM models WHERE deleted = 0 AND dialect = ? ORDER BY created",
                                 (self.name,)).fetchall()
        data = [{"id": m.id, "object": "model", "created": m.created, "owned_by": "system",
                 "lifecycle_status": "generally-available",
                 "capabilities": {"fine_tune": True, "inference": True, "chat_completion": True},
                 "deprecation": {"fine_tune": AZURE_FINE_TUNE_UNTIL, "inference": AZURE_INFERENCE_UNTIL}}
                for m in BASE_MODELS if m.id in _AZURE_BASES]
        data += [{"id": r["id"], "object": "model", "created": int(r["created"]), "owned_by": "organization-owner",
                  "capabilities": {"fine_tune": True, "inference": True}} for r in tuned]
        return self.app.json({"object": "list", "data": data})

    def h_model(self, request: Request, model: str) -> Response:
        if request.method == "DELETE":
            with self.app.tx() as (conn, _, _sim):
                if _ensure_table(conn).execute("SELECT 1 FROM azure_deployments WHERE model = ?",
                                               (model,)).fetchone():
                    raise ApiError(409, f"The model {model} cannot be deleted while it is deployed; delete its "
                                        "deployments first.", code="Conflict")
        return super().h_model(request, model)


def _ensure_table(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute("CREATE TABLE IF NOT EXISTS azure_deployments (path TEXT PRIMARY KEY, name TEXT, model TEXT,"
                 " body TEXT, created REAL)")
    return conn


_ARM = r"/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.CognitiveServices/accounts/<account>/deployments"


class AzureArmDialect(Dialect):
    """A minimal Azure Resource Manager: deployments of fine-tuned models, under /azure/management."""

    name = "azure_arm"
    prefix = "/azure/management"

    def rules(self) -> list[Rule]:
        return [Rule(_ARM, endpoint="deployments", methods=["GET"]),
                Rule(_ARM + "/<name>", endpoint="deployment", methods=["GET", "PUT", "DELETE"])]

    def authenticate(self, request: Request, endpoint: str) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "The request did not have a subscription or a valid tenant level resource provider.",
                           code="AuthenticationFailed")
        if not request.args.get("api-version"):
            raise ApiError(400, "The api-version query parameter (?api-version=) is required for all requests.",
                           code="MissingApiVersionParameter")

    def error_response(self, exc: ApiError) -> Response:
        return self.app.json({"error": {"code": exc.code or str(exc.status), "message": exc.message}}, exc.status)

    @staticmethod
    def _object(path: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"id": path, "name": name, "type": "Microsoft.CognitiveServices/accounts/deployments",
                "sku": body.get("sku"), "tags": body.get("tags") or {},
                "properties": {**body.get("properties", {}), "provisioningState": "Succeeded"}}

    def h_deployments(self, request: Request, sub: str, rg: str, account: str) -> Response:
        with self.app.tx() as (conn, _, _sim):
            rows = _ensure_table(conn).execute("SELECT * FROM azure_deployments WHERE path LIKE ? ORDER BY created",
                                               (request.path.split("/azure/management", 1)[1] + "/%",)).fetchall()
        return self.app.json({"value": [self._object(r["path"], r["name"], json.loads(r["body"])) for r in rows]})

    def h_deployment(self, request: Request, sub: str, rg: str, account: str, name: str) -> Response:
        path = request.path.split("/azure/management", 1)[1]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,63}", name):
            raise ApiError(400, f"Invalid deployment name {name!r}.", code="InvalidResourceName")
        with self.app.tx() as (conn, now, _sim):
            row = _ensure_table(conn).execute("SELECT * FROM azure_deployments WHERE path = ?", (path,)).fetchone()
            if request.method == "GET":
                if row is None:
                    raise not_found(f"Deployment {name} not found.", code="DeploymentNotFound")
                return self.app.json(self._object(path, name, json.loads(row["body"])))
            if request.method == "DELETE":
                conn.execute("DELETE FROM azure_deployments WHERE path = ?", (path,))
                return Response(status=200 if row is not None else 204)
            body = self.app.json_body(request)
            model = ((body.get("properties") or {}).get("model") or {})
            sku = body.get("sku") or {}
            if model.get("format") != "OpenAI" or not isinstance(model.get("name"), str):
                raise ApiError(400, "properties.model must be {format: OpenAI, name, version}.", code="InvalidPayload")
            if not isinstance(sku.get("name"), str) or not isinstance(sku.get("capacity"), int):
                raise ApiError(400, "sku must be {name, capacity}.", code="InvalidPayload")
            known = conn.execute("SELECT 1 FROM models WHERE id = ? AND deleted = 0 AND dialect = 'azure'",
                                 (model["name"],)).fetchone()
            if known is None:
                raise ApiError(400, f"The model {model['name']} is not a fine-tuned model of this resource.",
                               code="InvalidResourceProperties")
            conn.execute("INSERT OR REPLACE INTO azure_deployments(path, name, model, body, created) "
                         "VALUES (?, ?, ?, ?, ?)", (path, name, model["name"], json.dumps(body),
                                                    row["created"] if row is not None else now))
            return self.app.json(self._object(path, name, body), 200 if row is not None else 201)
