"""Amazon Bedrock's model customization (and `Converse` for the custom models) under /bedrock.

Read from the Bedrock API reference (CreateModelCustomizationJob, GetModelCustomizationJob,
ListModelCustomizationJobs, StopModelCustomizationJob, ListTagsForResource; bedrock-runtime's
Converse) and from what boto3 sends: rest-json, SigV4 `Authorization` (signature not checked),
errors as `{"message": …}` with `x-amzn-ErrorType`. boto3 clients for `bedrock` and
`bedrock-runtime` both use `endpoint_url="http://HOST:PORT/bedrock"`.

- `clientRequestToken` is honoured like AWS: a create repeating a token already used returns the
  job created with it and creates nothing. A second job with an existing `jobName` is a
  ConflictException.
- Training data is read from the sandbox's S3 (`/s3`) at create: `bedrock-conversation-2024` for
  Nova models, `{"prompt", "completion"}` for the others, each line checked here (a bad line is a
  ValidationException naming it). The job trains on a chat copy, so the shared lifecycle (and
  `Converse`'s nearest-example answer) work as for every dialect.
- Statuses (core -> Bedrock): validating_files, queued, running -> InProgress; succeeded ->
  Completed; failed -> Failed; cancelled -> Stopping for STOP_SETTLE_S (scaled), then Stopped.
- Custom model deployments (CreateCustomModelDeployment, Get, List, Update, Delete under
  /model-customization/custom-model-deployments, as botocore's service model routes them): a
  deployment of a completed custom model whose base AWS serves on demand (Nova Micro, Lite, Pro),
  `Creating` for DEPLOY_S (scaled) then `Active`; an update shows `updateDetails` (`Updating`, then
  `UpdateCompleted`, when `modelArn` becomes the new model); a delete is immediate. Nothing fails by
  itself: a test marks a deployment `Failed` by setting `failure` (its failureMessage) on its document. A repeated
  `clientRequestToken` returns the deployment created with it (even since deleted) and creates nothing;
  a second live deployment with the same name is a ConflictException (AWS does not document which error
  it gives). Converse on an Active deployment's ARN answers as its model and counts an invocation.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import secrets
import sqlite3
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.app import MB
from ftops.sandbox.dialects import Dialect
from ftops.sandbox.dialects.s3 import s3_uri_row
from ftops.sandbox.errors import ApiError
from ftops.sandbox.lifecycle import VALIDATE_BASE_S, VALIDATE_PER_MB_S
from ftops.sandbox.store import insert_file, write_bytes_atomic

__all__ = ["BedrockDialect"]

REGION = "us-east-1"
ACCOUNT = "123456789012"
STOP_SETTLE_S = 10.0
# Base models that can be fine-tuned: id -> (data format, epochCount max, tokens per second).
MODELS: dict[str, tuple[str, int, float]] = {
    "amazon.nova-micro-v1:0:128k": ("bedrock-conversation-2024", 5, 2000.0),
    "amazon.nova-lite-v1:0:300k": ("bedrock-conversation-2024", 5, 1200.0),
    "amazon.nova-pro-v1:0:300k": ("bedrock-conversation-2024", 5, 500.0),
    "amazon.titan-text-express-v1:0:8k": ("prompt-completion", 10, 800.0),
    "amazon.titan-text-lite-v1:0:4k": ("prompt-completion", 10, 1500.0),
    "meta.llama3-1-8b-instruct-v1:0:128k": ("prompt-completion", 5, 1000.0),
}
HYPERPARAMETERS = {"epochCount", "batchSize", "learningRate", "learningRateWarmupSteps"}
# Base models whose custom models deploy for on-demand inference (Bedrock user guide, "Supported base models").
ON_DEMAND = ("amazon.nova-micro-v1", "amazon.nova-lite-v1", "amazon.nova-pro-v1")
DEPLOY_S = 300.0
DEPLOYMENT = "custom-model-deployment"  # the core's resource kind
_DEP_NAME = re.compile(r"^([0-9a-zA-Z][_-]?){1,63}$")
_ERRORS = {400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
           404: "ResourceNotFoundException", 409: "ConflictException", 413: "ValidationException",
           429: "ThrottlingException", 500: "InternalServerException", 503: "ServiceUnavailableException"}


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, code="ValidationException")


def _text(content: Any, where: str) -> str:
    if not isinstance(content, list) or not content:
        raise ValueError(f"{where}.content must be a non-empty list")
    out = []
    for block in content:
        if not isinstance(block, dict) or not isinstance(block.get("text"), str) or set(block) != {"text"}:
            raise ValueError(f"{where}.content blocks must be {{\"text\": string}} (no images or tools)")
        out.append(block["text"])
    return "".join(out)


def chat_of_line(line: dict[str, Any], fmt: str) -> dict[str, Any]:
    """One training line of `fmt`, read per Bedrock's documentation, as a chat example."""
    if fmt == "prompt-completion":
        if set(line) != {"prompt", "completion"} or not all(isinstance(line[k], str) for k in line):
            raise ValueError('each line must be {"prompt": string, "completion": string}')
        return {"messages": [{"role": "user", "content": line["prompt"]},
                             {"role": "assistant", "content": line["completion"]}]}
    if line.get("schemaVersion") != "bedrock-conversation-2024":
        raise ValueError('schemaVersion must be "bedrock-conversation-2024"')
    unknown = set(line) - {"schemaVersion", "system", "messages"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    messages: list[dict[str, Any]] = []
    if "system" in line:
        system = line["system"]
        if not isinstance(system, list) or not all(isinstance(s, dict) and isinstance(s.get("text"), str)
                                                   for s in system):
            raise ValueError('system must be a list of {"text": string}')
        messages.append({"role": "system", "content": "".join(s["text"] for s in system)})
    turns = line.get("messages")
    if not isinstance(turns, list) or len(turns) < 2:
        raise ValueError("messages must hold at least one user and one assistant turn")
    for i, m in enumerate(turns):
        want = "user" if i % 2 == 0 else "assistant"
        if not isinstance(m, dict) or m.get("role") != want:
            raise ValueError(f"messages[{i}].role must be {want!r} (turns alternate, starting with user)")
        messages.append({"role": want, "content": _text(m.get("content"), f"messages[{i}]")})
    if turns[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's")
    return {"messages": messages}


class BedrockDialect(Dialect):
    """Bedrock model customization jobs under /bedrock (and bedrock-runtime's Converse)."""

    name = "bedrock"
    prefix = "/bedrock"

    def rules(self) -> list[Rule]:
        return [
            Rule("/model-customization-jobs", endpoint="jobs", methods=["GET", "POST"]),
            Rule("/model-customization-jobs/<path:job_id>/stop", endpoint="job_stop", methods=["POST"]),
            Rule("/model-customization-jobs/<path:job_id>", endpoint="job", methods=["GET"]),
            Rule("/listTagsForResource", endpoint="list_tags", methods=["POST"]),
            Rule("/model/<path:model_id>/converse", endpoint="converse", methods=["POST"]),
            Rule("/model-customization/custom-model-deployments", endpoint="deployments", methods=["GET", "POST"]),
            Rule("/model-customization/custom-model-deployments/<path:ident>", endpoint="deployment",
                 methods=["GET", "PATCH", "DELETE"]),
            Rule("/custom-models/<path:ident>", endpoint="custom_model", methods=["GET", "DELETE"]),
        ]

    def authenticate(self, request: Request, endpoint: str) -> None:
        if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            raise ApiError(403, "Missing Authentication Token", code="AccessDeniedException")

    def error_response(self, exc: ApiError) -> Response:
        code = exc.code if exc.code and exc.code.endswith("Exception") else _ERRORS.get(exc.status,
                                                                                        "InternalServerException")
        response = self.app.json({"message": exc.message}, exc.status)
        response.headers["x-amzn-ErrorType"] = f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response

    def decorate(self, response: Response, started: float) -> None:
        response.headers["x-amzn-RequestId"] = secrets.token_hex(4) + "-" + secrets.token_hex(2) + "-" + \
            secrets.token_hex(2) + "-" + secrets.token_hex(6)

    # -- rendering ------------------------------------------------------------------------------
    def status_word(self, job: sqlite3.Row, now: float) -> str:
        status = job["status"]
        if status == "cancelled":
            settled = job["finished_at"] + STOP_SETTLE_S / self.app.settings.time_scale
            return "Stopping" if now < settled else "Stopped"
        return {"succeeded": "Completed", "failed": "Failed"}.get(status, "InProgress")

    def _render(self, job: sqlite3.Row, now: float, *, full: bool) -> dict[str, Any]:
        extra = json.loads(job["extra"]) if job["extra"] else {}
        req = extra.get("request", {})
        status = self.status_word(job, now)
        base_arn = f"arn:aws:bedrock:{REGION}::foundation-model/{job['model']}"
        if not full:
            obj: dict[str, Any] = {
                "jobArn": job["id"], "baseModelArn": base_arn, "jobName": req["jobName"], "status": status,
                "creationTime": iso(job["created_at"]), "customizationType": req.get("customizationType",
                                                                                    "FINE_TUNING")}
            if job["finished_at"] is not None:
                obj["endTime"] = iso(job["finished_at"])
                obj["lastModifiedTime"] = iso(job["finished_at"])
            if status == "Completed":
                obj["customModelArn"] = job["fine_tuned_model"]
                obj["customModelName"] = req["customModelName"]
            return obj
        obj = {
            "jobArn": job["id"], "jobName": req["jobName"], "outputModelName": req["customModelName"],
            "clientRequestToken": req.get("clientRequestToken"), "roleArn": req["roleArn"], "status": status,
            "creationTime": iso(job["created_at"]), "baseModelArn": base_arn,
            "hyperParameters": req.get("hyperParameters", {}), "trainingDataConfig": req["trainingDataConfig"],
            "validationDataConfig": req.get("validationDataConfig", {"validators": []}),
            "outputDataConfig": req["outputDataConfig"], "customizationType": req.get("customizationType",
                                                                                     "FINE_TUNING"),
        }
        if job["finished_at"] is not None:
            obj["endTime"] = iso(job["finished_at"])
            obj["lastModifiedTime"] = iso(job["finished_at"])
        if status == "Completed":
            obj["outputModelArn"] = job["fine_tuned_model"]
            obj["trainingMetrics"] = {"trainingLoss": 0.25}
        if status == "Failed":
            err = json.loads(job["error"]) if job["error"] else {}
            obj["failureMessage"] = err.get("message", "Internal error")
        return obj

    def _find(self, conn: sqlite3.Connection, ident: str) -> sqlite3.Row:
        row = self.app.job_row(conn, self.name, ident)
        if row is None:  # a job name works as an identifier too
            row = conn.execute("SELECT * FROM jobs WHERE dialect = ? AND json_extract(extra, '$.request.jobName') = ?",
                               (self.name, ident)).fetchone()
        if row is None:
            raise ApiError(404, f"Could not find model customization job {ident}", code="ResourceNotFoundException")
        return row

    # -- handlers ---------------------------------------------------------------------------------
    def h_jobs(self, request: Request) -> Response:
        if request.method == "POST":
            return self._create(request)
        name = request.args.get("nameContains")
        status = request.args.get("statusEquals")
        try:
            limit = int(request.args.get("maxResults", "100"))
        except ValueError:
            raise _invalid("maxResults must be an integer") from None
        if not 1 <= limit <= 100:
            raise _invalid("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: "
                           "Member must have value less than or equal to 100")
        ascending = request.args.get("sortOrder") == "Ascending"
        token = request.args.get("nextToken")
        with self.app.tx() as (conn, now, _sim):
            rows = conn.execute(f"SELECT * FROM jobs WHERE dialect = ? ORDER BY seq {'ASC' if ascending else 'DESC'}",
                                (self.name,)).fetchall()
            items = [self._render(r, now, full=False) for r in rows]
        if name:
            items = [i for i in items if name in i["jobName"]]
        if status:
            items = [i for i in items if i["status"] == status]
        start = 0
        if token:
            try:
                start = int(token)
            except ValueError:
                raise _invalid("Invalid pagination token") from None
        page = items[start:start + limit]
        out: dict[str, Any] = {"modelCustomizationJobSummaries": page}
        if start + limit < len(items):
            out["nextToken"] = str(start + limit)
        return self.app.json(out)

    def _create(self, request: Request) -> Response:
        body = self.app.json_body(request)
        for key in ("jobName", "customModelName", "roleArn", "baseModelIdentifier", "trainingDataConfig",
                    "outputDataConfig"):
            if key not in body:
                raise _invalid(f"1 validation error detected: Value null at '{key}' failed to satisfy constraint: "
                               "Member must not be null")
        base = str(body["baseModelIdentifier"]).rsplit("/", 1)[-1]
        if base not in MODELS:
            raise _invalid(f"The base model {body['baseModelIdentifier']} does not support fine-tuning or does not "
                           "exist.")
        fmt, max_epochs, tps = MODELS[base]
        if body.get("customizationType", "FINE_TUNING") != "FINE_TUNING":
            raise _invalid(f"Customization type {body['customizationType']} is not supported for {base}")
        hp = body.get("hyperParameters") or {}
        if not isinstance(hp, dict) or not all(isinstance(v, str) for v in hp.values()):
            raise _invalid("hyperParameters must map names to strings")
        unknown = set(hp) - HYPERPARAMETERS
        if unknown:
            raise _invalid(f"Unknown hyperparameter(s) for {base}: {', '.join(sorted(unknown))}")
        try:
            epochs = int(hp.get("epochCount", "2"))
            batch = int(hp.get("batchSize", "1"))
            float(hp.get("learningRate", "0.00001"))
        except ValueError:
            raise _invalid("hyperParameters values must be numbers") from None
        if not 1 <= epochs <= max_epochs:
            raise _invalid(f"epochCount must be between 1 and {max_epochs} for {base}")
        token = body.get("clientRequestToken")
        with self.app.tx() as (conn, now, sim):
            if token:
                same = conn.execute("SELECT * FROM jobs WHERE dialect = ? AND "
                                    "json_extract(extra, '$.request.clientRequestToken') = ?",
                                    (self.name, token)).fetchone()
                if same is not None:  # AWS: a repeated token is ignored, nothing new is created
                    return self.app.json({"jobArn": same["id"]}, 201)
            clash = conn.execute("SELECT id FROM jobs WHERE dialect = ? AND json_extract(extra, '$.request.jobName') = ?",
                                 (self.name, body["jobName"])).fetchone()
            if clash is not None:
                raise ApiError(409, f"A model customization job named {body['jobName']} already exists.",
                               code="ConflictException")
            kind = f"{self.name}:job_create"
            self.app.rate_limit(conn, now, kind, self.app.settings.job_creates_per_hour, "CreateModelCustomizationJob")
            training = self._data(conn, now, body["trainingDataConfig"].get("s3Uri"), fmt, "trainingDataConfig")
            validators = (body.get("validationDataConfig") or {}).get("validators") or []
            validation = self._data(conn, now, validators[0].get("s3Uri"), fmt, "validationDataConfig") \
                if validators else None
            job_id = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/{base}/{secrets.token_hex(6)}"
            model_arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/{base}/{secrets.token_hex(6)}"
            method = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": epochs,
                                                                                "batch_size": batch}}}
            sizes = training["bytes"] + (validation["bytes"] if validation is not None else 0)
            validate_s = (VALIDATE_BASE_S + VALIDATE_PER_MB_S * sizes / MB) / self.app.settings.time_scale
            tags = {t["key"]: t["value"] for t in body.get("jobTags") or [] if isinstance(t, dict)}
            conn.execute(
                "INSERT INTO jobs(id, short_id, created_at, status, model, training_file, validation_file, method,"
                " legacy_hp, suffix, seed, metadata, integrations, validate_until, dialect, output_name,"
                " tokens_per_second, extra)"
                " VALUES (?, ?, ?, 'validating_files', ?, ?, ?, ?, 0, NULL, 42, ?, NULL, ?, ?, ?, ?, ?)",
                (job_id, secrets.token_hex(3), now, base, training["id"],
                 validation["id"] if validation is not None else None, json.dumps(method), json.dumps(tags),
                 now + validate_s, self.name, model_arn, tps,
                 json.dumps({"request": body, "model_tags": body.get("customModelTags") or []})))
            self.app.record_rate_event(conn, now, kind)
            sim.event(job_id, now, f"Created model customization job {body['jobName']}", kind="created")
            return self.app.json({"jobArn": job_id}, 201)

    def _data(self, conn: sqlite3.Connection, now: float, uri: Any, fmt: str, where: str) -> sqlite3.Row:
        """The S3 object at `uri`, read as `fmt`, stored as a chat copy the core lifecycle trains on."""
        obj = s3_uri_row(conn, str(uri or ""))
        if obj is None:
            raise _invalid(f"{where}: no object at {uri} (or the role cannot read it)")
        lines: list[str] = []
        with open(self.app.store.file_path(obj["id"]), encoding="utf-8", errors="strict") as fh:
            for n, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                    if not isinstance(line, dict):
                        raise ValueError("each line must be a JSON object")
                    lines.append(json.dumps(chat_of_line(line, fmt)))
                except ValueError as exc:
                    raise _invalid(f"{where}: {uri} line {n} is not valid {fmt}: {exc}") from None
        data = ("\n".join(lines) + "\n").encode()
        file_id = "bedrock-data-" + secrets.token_hex(8)
        write_bytes_atomic(self.app.store.file_path(file_id), data)
        insert_file(conn, file_id=file_id, created_at=now, size=len(data), filename=f"{obj['filename']}.chat.jsonl",
                    purpose="bedrock-training-copy", sha256=hashlib.sha256(data).hexdigest(), dialect=self.name)
        row: sqlite3.Row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return row

    def h_job(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, now, _sim):
            return self.app.json(self._render(self._find(conn, job_id), now, full=True))

    def h_job_stop(self, request: Request, job_id: str) -> Response:
        with self.app.tx() as (conn, now, sim):
            row = self._find(conn, job_id)
            if row["status"] not in ("validating_files", "queued", "running", "paused"):
                raise _invalid(f"Job {row['id']} is {self.status_word(row, now)} and cannot be stopped.")
            sim.cancel(row, now)
        return self.app.json({})

    def h_custom_model(self, request: Request, ident: str) -> Response:
        """GetCustomModel / DeleteCustomModel by ARN. A model a live deployment serves (or is moving to)
        cannot be deleted: delete or update the deployment first."""
        with self.app.tx() as (conn, now, _sim):
            row = conn.execute("SELECT * FROM models WHERE id = ? AND deleted = 0 AND dialect = ?",
                               (ident, self.name)).fetchone()
            if row is None:
                raise ApiError(404, f"Could not find custom model {ident}", code="ResourceNotFoundException")
            if request.method == "DELETE":
                for dep in self._deployments_all(conn):
                    update = dep.get("update") or {}
                    if dep.get("deleted_at") is None and ident in (self._serving(dep, now), update.get("modelArn")):
                        raise ApiError(409, f"The custom model {ident} is used by deployment {dep['arn']}. Delete "
                                            "the deployment or point it at another model first.",
                                       code="ConflictException")
                conn.execute("UPDATE models SET deleted = 1 WHERE id = ?", (ident,))
                return self.app.json({})
            job = self.app.job_row(conn, self.name, row["job_id"])
            return self.app.json({"modelArn": ident, "modelName": ident.rsplit("/", 1)[-1],
                                  "jobArn": row["job_id"], "baseModelArn": str(job["model"]) if job is not None else "",
                                  "creationTime": iso(row["created"]), "modelStatus": "Active"})

    def h_list_tags(self, request: Request) -> Response:
        arn = str(self.app.json_body(request).get("resourceARN") or "")
        with self.app.tx() as (conn, _now, _sim):
            row = self.app.job_row(conn, self.name, arn)
            if row is not None:
                return self.app.json({"tags": json.loads(row["extra"])["request"].get("jobTags") or []})
            row = conn.execute("SELECT * FROM jobs WHERE dialect = ? AND fine_tuned_model = ?",
                               (self.name, arn)).fetchone()
            if row is None:
                raise ApiError(404, f"Resource {arn} not found", code="ResourceNotFoundException")
            return self.app.json({"tags": json.loads(row["extra"]).get("model_tags") or []})

    def h_converse(self, request: Request, model_id: str) -> Response:
        body = self.app.json_body(request)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _invalid("messages must be a non-empty list")
        chat = [{"role": m.get("role"), "content": "".join(b.get("text", "") for b in m.get("content") or []
                                                           if isinstance(b, dict))}
                for m in messages if isinstance(m, dict)]
        with self.app.tx() as (conn, now, _sim):
            if ":custom-model-deployment/" in model_id:
                dep = self._live_deployment(conn, model_id)
                if dep is None:
                    raise ApiError(404, f"Could not find deployment {model_id}", code="ResourceNotFoundException")
                if now < dep["active_at"] or dep.get("failure"):
                    raise _invalid(f"The deployment {model_id} is not Active.")
                model_id = self._serving(dep, now)
                dep["invocations"] = int(dep.get("invocations") or 0) + 1  # what CloudWatch would count
                self.app.put_resource(conn, self.name, DEPLOYMENT, dep["arn"], dep)
            job_id = self.app.tuned_job_of(conn, self.name, model_id)
            if job_id is None:
                raise ApiError(404, f"Model {model_id} not found or not deployed", code="ResourceNotFoundException")
            answer = self.app.answer_chat(conn, job_id, chat)
        n_in = sum(len(str(m["content"]).split()) for m in chat)
        return self.app.json({
            "output": {"message": {"role": "assistant", "content": [{"text": answer}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": n_in, "outputTokens": len(answer.split()),
                      "totalTokens": n_in + len(answer.split())},
            "metrics": {"latencyMs": 42}})

    # -- custom model deployments (documents in the core's `resources`, kind DEPLOYMENT, named by ARN) -----
    def _deployments_all(self, conn: sqlite3.Connection) -> list[dict[str, Any]]:
        return self.app.resources(conn, self.name, DEPLOYMENT)

    def _live_deployment(self, conn: sqlite3.Connection, ident: str) -> dict[str, Any] | None:
        """The live deployment whose ARN or name is `ident`."""
        for dep in self._deployments_all(conn):
            if dep.get("deleted_at") is None and ident in (dep["arn"], dep["name"]):
                return dep
        return None

    @staticmethod
    def _serving(dep: dict[str, Any], now: float) -> str:
        update = dep.get("update")
        return str(update["modelArn"]) if update and now >= update["done_at"] else str(dep["modelArn"])

    def _dep_object(self, dep: dict[str, Any], now: float, *, full: bool) -> dict[str, Any]:
        status = "Failed" if dep.get("failure") else "Creating" if now < dep["active_at"] else "Active"
        update = dep.get("update")
        last = max(dep["active_at"], update["done_at"] if update and now >= update["done_at"] else 0)
        obj: dict[str, Any] = {"customModelDeploymentArn": dep["arn"], "modelArn": self._serving(dep, now),
                               "createdAt": iso(dep["created_at"]), "status": status}
        if now >= dep["active_at"]:
            obj["lastUpdatedAt"] = iso(last)
        if not full:
            obj["customModelDeploymentName"] = dep["name"]
            return obj
        obj["modelDeploymentName"] = dep["name"]
        if dep.get("failure"):
            obj["failureMessage"] = dep["failure"]
        if dep.get("description"):
            obj["description"] = dep["description"]
        if update:
            obj["updateDetails"] = {"modelArn": update["modelArn"],
                                    "updateStatus": "Updating" if now < update["done_at"] else "UpdateCompleted"}
        return obj

    def _deployable(self, conn: sqlite3.Connection, model_arn: Any) -> str:
        """`model_arn` if it names a completed custom model of this account that deploys on demand."""
        if not isinstance(model_arn, str) or ":custom-model/" not in model_arn:
            raise _invalid("1 validation error detected: Value at 'modelArn' failed to satisfy constraint: "
                           "Member must be a custom model ARN")
        job_id = self.app.tuned_job_of(conn, self.name, model_arn)
        if job_id is None:
            raise ApiError(404, f"Could not find custom model {model_arn}", code="ResourceNotFoundException")
        job = self.app.job_row(conn, self.name, job_id)
        base = str(job["model"]) if job is not None else ""
        if not base.startswith(ON_DEMAND):
            raise _invalid(f"The custom model {model_arn} (base model {base}) does not support on-demand "
                           "deployment.")
        return model_arn

    def h_deployments(self, request: Request) -> Response:
        if request.method == "POST":
            return self._create_deployment(request)
        try:
            limit = int(request.args.get("maxResults", "100"))
            start = int(request.args.get("nextToken") or "0")
        except ValueError:
            raise _invalid("maxResults and nextToken must be what a previous page gave") from None
        if not 1 <= limit <= 1000:
            raise _invalid("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: "
                           "Member must have value between 1 and 1000")
        name, model = request.args.get("nameContains"), request.args.get("modelArnEquals")
        status = request.args.get("statusEquals")
        with self.app.tx() as (conn, now, _sim):
            items = [self._dep_object(d, now, full=False) for d in self._deployments_all(conn)
                     if d.get("deleted_at") is None]
        if request.args.get("sortOrder") != "Ascending":
            items.reverse()
        items = [i for i in items if (not name or name in i["customModelDeploymentName"])
                 and (not model or i["modelArn"] == model) and (not status or i["status"] == status)]
        out: dict[str, Any] = {"modelDeploymentSummaries": items[start:start + limit]}
        if start + limit < len(items):
            out["nextToken"] = str(start + limit)
        return self.app.json(out)

    def _create_deployment(self, request: Request) -> Response:
        body = self.app.json_body(request)
        for key in ("modelDeploymentName", "modelArn"):
            if key not in body:
                raise _invalid(f"1 validation error detected: Value null at '{key}' failed to satisfy constraint: "
                               "Member must not be null")
        name = body["modelDeploymentName"]
        if not isinstance(name, str) or not _DEP_NAME.match(name):
            raise _invalid("1 validation error detected: Value at 'modelDeploymentName' failed to satisfy "
                           "constraint: Member must satisfy regular expression pattern: ([0-9a-zA-Z][_-]?){1,63}")
        token = body.get("clientRequestToken")
        with self.app.tx() as (conn, now, _sim):
            if token:
                same = next((d for d in self._deployments_all(conn) if d.get("token") == token), None)
                if same is not None:  # AWS: a repeated token is ignored, nothing new is created
                    return self.app.json({"customModelDeploymentArn": same["arn"]}, 202)
            if self._live_deployment(conn, name) is not None:
                raise ApiError(409, f"A custom model deployment named {name} already exists.",
                               code="ConflictException")
            model_arn = self._deployable(conn, body["modelArn"])
            arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/{secrets.token_hex(6)}"
            dep = {"arn": arn, "name": name, "modelArn": model_arn, "description": body.get("description"),
                   "tags": body.get("tags") or [], "token": token, "created_at": now,
                   "active_at": now + DEPLOY_S / self.app.settings.time_scale, "update": None, "deleted_at": None}
            self.app.put_resource(conn, self.name, DEPLOYMENT, arn, dep)
        return self.app.json({"customModelDeploymentArn": arn}, 202)

    def h_deployment(self, request: Request, ident: str) -> Response:
        with self.app.tx() as (conn, now, _sim):
            dep = self._live_deployment(conn, ident)
            if dep is None:
                raise ApiError(404, f"Could not find custom model deployment {ident}",
                               code="ResourceNotFoundException")
            if request.method == "GET":
                return self.app.json(self._dep_object(dep, now, full=True))
            if request.method == "DELETE":
                dep["deleted_at"] = now
                self.app.put_resource(conn, self.name, DEPLOYMENT, dep["arn"], dep)
                return self.app.json({})
            body = self.app.json_body(request)
            if dep.get("failure"):
                raise _invalid(f"The custom model deployment {dep['name']} is Failed; delete it.")
            if now < dep["active_at"] or (dep.get("update") and now < dep["update"]["done_at"]):
                raise _invalid(f"The custom model deployment {dep['name']} is being created or updated; update it "
                               "once it is Active.")
            model_arn = self._deployable(conn, body.get("modelArn"))
            dep["modelArn"] = self._serving(dep, now)
            dep["update"] = {"modelArn": model_arn, "done_at": now + DEPLOY_S / self.app.settings.time_scale}
            self.app.put_resource(conn, self.name, DEPLOYMENT, dep["arn"], dep)
            return self.app.json({"customModelDeploymentArn": dep["arn"]}, 202)
