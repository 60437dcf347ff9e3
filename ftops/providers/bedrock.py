"""BedrockProvider: Amazon Bedrock model customization (fine-tuning), through boto3.

- **Jobs**: `CreateModelCustomizationJob` (customizationType FINE_TUNING), `GetModelCustomizationJob`,
  `ListModelCustomizationJobs` (`nameContains`, paginated), `StopModelCustomizationJob`.
- **Identity**: the `jobName` ends with a tag `x<P4><G10>n<attempt>` (P4: hash of the project, G10: of
  project, model and fingerprint), and `clientRequestToken` is derived from the whole identity, so a
  create repeated after a lost answer is ignored by AWS (no error, no second job); ftops then finds the
  job by name. A deliberate retry has the next attempt, hence a new token and name. `jobTags` and
  `customModelTags` carry ftops_project, ftops_model, ftops_fp, ftops_attempt (and the user's
  `metadata`). The project's jobs are listed with `nameContains=-x<P4>`.
- **Data**: converted (`bedrock-conversation-2024` for Amazon Nova, prompt/completion for the other
  models) and put to `s3://BUCKET/PREFIX/<sha256>.jsonl`: the hash in the key makes the upload
  idempotent and findable without state.
- **Deployments** (`deployment: {type: on-demand}`): `CreateCustomModelDeployment` once the job succeeded,
  for the base models AWS serves on demand (Amazon Nova Micro, Lite, Pro; others are refused at plan). One
  deployment per declared model, named `ftops-<model>-d<P4><M8>` (M8: hash of project and model) and tagged
  ftops_project/ftops_model: after a replace it keeps serving the old model until the new job succeeds,
  then `UpdateCustomModelDeployment` points it at the new one; a Failed one is deleted and made again.
  The create's `clientRequestToken` derives from the name and the model ARN, so a create repeated after a
  lost answer makes nothing new. `chat` (`ftops test`) calls an Active deployment of the model when there
  is one (Converse on its ARN).
- **Credentials**: boto3's normal chain (environment, profile, SSO, instance role); none in YAML.
- **Errors**: botocore's exceptions are translated once, here, into ftops's tree; boto3's own
  retries are off so that one layer (this one for reads, the executor for writes) decides.

boto3 is an optional dependency (`pip install 'ftops[aws]'`), imported when the first client is made.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ftops.datasets.convert import BEDROCK_CONVERSATION, PROMPT_COMPLETION
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
    Provider,
    RemoteDeployment,
    RemoteFile,
    RemoteJob,
    bind_files,
    hashed_group,
    project_key,
    short_hash,
    unix_seconds,
)
from ftops.providers.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    TransportError,
)

_SUP = frozenset({"supervised"})
SANDBOX_BUCKET = "ftops-sandbox"
SANDBOX_ROLE = "arn:aws:iam::123456789012:role/ftops-sandbox"
_TAG = re.compile(r"-x([0-9a-f]{4})([0-9a-f]{10})n(\d{1,3})$")
_DEP_TAG = re.compile(r"-d([0-9a-f]{4})([0-9a-f]{8})$")
# Base models whose custom models AWS deploys for on-demand inference (Bedrock user guide, "Deploy a custom
# model for on-demand inference", Supported base models: Amazon Nova Micro, Lite, Pro; us-east-1, us-west-2;
# models customized on or after 2025-07-16). Matched by prefix: every context-length variant of them.
ON_DEMAND_BASE_MODELS = ("amazon.nova-micro-v1", "amazon.nova-lite-v1", "amazon.nova-pro-v1")
ON_DEMAND_REGIONS = frozenset({"us-east-1", "us-west-2"})
_SHA_KEY = re.compile(r"([0-9a-f]{64})\.jsonl$")
_PRICES_SOURCE = ("Amazon Bedrock pricing page, model customization (aws.amazon.com/bedrock/pricing), USD per 1M "
                  "tokens trained (per 1,000 tokens x 1000), as published 2025 and NOT re-checked since (the page "
                  "renders its prices client-side): confirm there before relying on them; storage and inference extra")

BEDROCK_CAPABILITIES = Capabilities(
    name="bedrock",
    title="Amazon Bedrock",
    default_base_url="",
    key_env="",
    credential_chain="AWS default credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID…, SSO, instance role)",
    methods=_SUP,
    hyperparameters=(
        ParamSpec(name="n_epochs", kind="int", min=1, max=10, wire="hyperParameters.epochCount", methods=_SUP,
                  description="Amazon Nova: at most 5"),
        ParamSpec(name="batch_size", kind="int", min=1, max=256, wire="hyperParameters.batchSize", methods=_SUP),
    ),
    refused_hyperparameters={
        "learning_rate_multiplier": "Bedrock takes an absolute learning rate: `options: {learning_rate: 1.0e-5}`",
    },
    options=(
        ParamSpec(name="learning_rate", kind="float", min=0, max=1, min_exclusive=True, auto=False,
                  wire="hyperParameters.learningRate", methods=_SUP),
        ParamSpec(name="learning_rate_warmup_steps", kind="int", min=0, max=250, auto=False,
                  wire="hyperParameters.learningRateWarmupSteps", methods=_SUP),
    ),
    seed=False,
    user_metadata=True,
    max_metadata_pairs=40,
    metadata_filter=False,
    max_suffix_chars=24,
    suffix_pattern=r"^[A-Za-z0-9-]+$",
    identity="jobName tag and clientRequestToken derived from project, model, fingerprint and attempt; jobTags",
    uploads_api=False,
    max_file_bytes=5 * GB,
    max_upload_bytes=5 * GB,
    data_formats=frozenset({"chat", "prompt_completion"}),
    job_creates_per_hour=100,
    file_uploads_per_hour=3600,
    pause_resume=False,
    checkpoints=False,
    prices={"supervised": {"amazon.nova-micro-v1:0:128k": 1.0, "amazon.nova-lite-v1:0:300k": 2.0,
                           "amazon.nova-pro-v1:0:300k": 8.0}},
    prices_source=_PRICES_SOURCE,
    prices_checked=False,
    fine_tuned_model_pattern="arn:aws:bedrock:{region}:{account}:custom-model/{base}/{id}",
    upload_format=BEDROCK_CONVERSATION,
    deployment_fields=(
        ParamSpec(name="type", kind="choice", choices=("on-demand", "provisioned"), auto=False,
                  description="on-demand: a custom model deployment (CreateCustomModelDeployment), billed per "
                              "token; provisioned (Provisioned Throughput) is not managed by ftops"),
    ),
)

_STATES = {"InProgress": JobState.RUNNING, "Completed": JobState.SUCCEEDED, "Failed": JobState.FAILED,
           # Stopping still bills until AWS confirms: live, so nothing is created beside it.
           "Stopping": JobState.RUNNING, "Stopped": JobState.CANCELLED}

_RATE = {"ThrottlingException", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded"}
_AUTH = {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
         "InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId"}
_NOT_FOUND = {"ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "NotFound", "404"}


def _slug(text: str, limit: int) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9]", "-", text)).strip("-")[:limit].strip("-") or "m"


class _Raw(io.BytesIO):
    """A botocore raw response body (what urllib3 would give), for answers from the in-process sandbox."""

    def stream(self, **_: Any) -> Any:
        yield self.getvalue()


class BedrockProvider(Provider):
    """Bedrock through boto3 clients (`bedrock`, `bedrock-runtime`, `s3`), made on first use."""

    capabilities = BEDROCK_CAPABILITIES

    def __init__(self, http: Any = None, *, api_key: str | None = None, name: str = "default",
                 capabilities: Capabilities | None = None, max_retries: int = 5, max_retry_wait: float = 60.0,
                 region: str | None = None, role_arn: str | None = None, bucket: str | None = None,
                 prefix: str | None = None, output_uri: str | None = None, endpoint_url: str | None = None,
                 timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, **_: Any) -> None:
        if capabilities is not None:
            self.capabilities = capabilities
        self.http = http  # the sandbox transport (in process), or None
        self.name = name
        self.region = region
        self.role_arn = role_arn
        self.bucket = bucket
        self.prefix = (prefix or "ftops").strip("/")
        self.output_uri = output_uri
        self.endpoint_url = endpoint_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clients: dict[str, Any] = {}
        self._serving: dict[str, str] = {}
        self.requests_sent = 0
        self.endpoint = endpoint_url or (str(http.base_url).rstrip("/") if http is not None else "aws")

    @classmethod
    def from_settings(cls, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                      **kwargs: Any) -> BedrockProvider:
        kwargs.pop("api_key_env", None)
        return cls(None, endpoint_url=base_url or None, timeout=timeout, **kwargs)

    # ----------------------------------------------------------------- settings

    @property
    def _bucket(self) -> str:
        if self.bucket:
            return self.bucket
        if self.sandbox:
            return SANDBOX_BUCKET
        raise ProviderError("provider type bedrock needs `bucket:` (the S3 bucket for training data)",
                            code="missing_setting")

    @property
    def _role(self) -> str:
        if self.role_arn:
            return self.role_arn
        if self.sandbox:
            return SANDBOX_ROLE
        raise ProviderError("provider type bedrock needs `role_arn:` (the role Bedrock assumes to read S3)",
                            code="missing_setting")

    # ----------------------------------------------------------------- boto3

    def _endpoint_for(self, service: str) -> str | None:
        base = str(self.http.base_url).rstrip("/") if self.sandbox and self.http is not None else self.endpoint_url
        if not base:
            return None
        if service == "s3":
            return base[:-len("/bedrock")] + "/s3" if base.endswith("/bedrock") else base
        return base

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                import boto3  # type: ignore[import-untyped]
                from botocore.config import Config  # type: ignore[import-untyped]
            except ImportError as exc:
                raise MissingAPIKeyError("provider type bedrock needs boto3: pip install 'ftops[aws]'",
                                         code="missing_dependency") from exc
            config = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=self.timeout,
                            s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                            response_checksum_validation="when_required")
            kw: dict[str, Any] = {"region_name": self.region or ("us-east-1" if self.sandbox else None),
                                  "endpoint_url": self._endpoint_for(service), "config": config}
            if self.sandbox:
                kw.update(aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
            c = boto3.session.Session().client(service, **{k: v for k, v in kw.items() if v is not None})
            if self.sandbox and self.http is not None:
                c.meta.events.register("before-send", self._send_in_process)
            self._clients[service] = c
        return self._clients[service]

    def _send_in_process(self, request: Any, **_: Any) -> Any:
        """botocore's request, answered by the in-process sandbox through the httpx transport."""
        import httpx
        from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped]
        from botocore.exceptions import ConnectionClosedError  # type: ignore[import-untyped]

        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        try:
            resp = self.http.request(request.method, request.url, headers=headers, content=body or b"")
        except httpx.TransportError as exc:
            raise ConnectionClosedError(endpoint_url=request.url) from exc
        return AWSResponse(request.url, resp.status_code, dict(resp.headers), _Raw(resp.content))

    def _call(self, service: str, op: str, *, write: bool = False, **params: Any) -> Any:
        """One boto3 call with the retry policy: reads (and 429s) retried with full jitter within
        `max_retry_wait`; a write that may have been applied is raised with `maybe_committed`."""
        waited, attempt = 0.0, 0
        while True:
            self.requests_sent += 1
            try:
                return getattr(self.client(service), op)(**params)
            except Exception as exc:  # noqa: BLE001 -- translated below, once
                err = self._translate(exc, op, write)
            if not err.retryable or attempt >= self.max_retries:
                raise err
            wait = self._backoff(attempt)
            if waited + wait > self.max_retry_wait:
                raise err
            self._sleep(wait)
            waited += wait
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(20, 0.5 * 2**attempt))."""
        return self._rng.uniform(0.0, min(20.0, 0.5 * (2 ** attempt)))

    def _translate(self, exc: Exception, op: str, write: bool) -> ProviderError:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
        )

        what = f"{op}"
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code") or "")
            message = str(err.get("Message") or code or "error")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
            kw: dict[str, Any] = {"status_code": status, "code": code, "request_id": request_id, "method": op,
                                  "path": self.endpoint}
            text = f"{what}: HTTP {status} {code}: {message}"
            out: ProviderError
            if code in _RATE or status == 429:
                out = RateLimitError(text, retryable=True, **kw)
            elif code in _NOT_FOUND or status == 404:
                out = NotFoundError(text, **kw)
            elif code in _AUTH or status == 401:
                out = AuthenticationError(text + " (check the AWS credentials boto3 finds)", **kw)
            elif status == 403 or code.startswith("AccessDenied"):
                out = PermissionDeniedError(text + " (check the IAM permissions of the AWS credentials)", **kw)
            elif code == "ConflictException" or status == 409:
                out = ConflictError(text, **kw)
            elif status >= 500:
                out = ServerError(text + ("; the request may have been applied" if write else ""),
                                  retryable=not write, maybe_committed=write, **kw)
            elif status in (400, 422):
                out = BadRequestError(text, **kw)
            else:
                out = APIStatusError(text, **kw)
            out.__cause__ = exc
            return out
        if isinstance(exc, (NoCredentialsError, NoRegionError)):
            return MissingAPIKeyError(f"{what}: {exc} (boto3's credential chain found nothing usable: set "
                                      "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and a region)",
                                      code="missing_credentials")
        not_sent = isinstance(exc, (EndpointConnectionError, ConnectTimeoutError))
        t = TransportError(f"{what}: no answer from {self.endpoint} ({type(exc).__name__})"
                           + ("; the request may have been applied" if write and not not_sent else ""),
                           retryable=not_sent or not write, maybe_committed=write and not not_sent,
                           method=op, path=self.endpoint)
        t.__cause__ = exc
        return t

    # ----------------------------------------------------------------- pure

    def validate(self, spec: ModelSpec) -> list[Problem]:
        out = super().validate(spec)
        n = spec.hyperparameters.get("n_epochs")
        if spec.base_model.startswith("amazon.nova") and isinstance(n, int) and n > 5:
            out.append(Problem(path=("hyperparameters", "n_epochs"), code="provider.invalid_value",
                               message=f"Amazon Nova models train for at most 5 epochs, got {n}"))
        return out

    def upload_format(self, base_model: str, method: str) -> str | None:
        return BEDROCK_CONVERSATION if base_model.startswith("amazon.nova") else PROMPT_COMPLETION

    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        hp = {k: v for k, v in spec.hyperparameters.items() if v != "auto"}
        wire: dict[str, str] = {}
        if "n_epochs" in hp:
            wire["epochCount"] = str(hp["n_epochs"])
        if "batch_size" in hp:
            wire["batchSize"] = str(hp["batch_size"])
        if "learning_rate" in spec.options:
            wire["learningRate"] = repr(float(spec.options["learning_rate"]))
        if "learning_rate_warmup_steps" in spec.options:
            wire["learningRateWarmupSteps"] = str(spec.options["learning_rate_warmup_steps"])
        body: dict[str, Any] = {"baseModelIdentifier": spec.base_model, "customizationType": "FINE_TUNING",
                                "hyperParameters": dict(sorted(wire.items())), "training_file": training}
        if validation is not None:
            body["validation_file"] = validation
        if spec.suffix is not None:
            body["suffix"] = spec.suffix
        if spec.metadata:
            body["metadata"] = dict(spec.metadata)
        return body


    def group_key(self, project: str, model: str, fingerprint: str) -> str:
        return hashed_group(project, model, fingerprint)

    def job_name(self, identity: Identity) -> str:
        tag = f"x{self.group_key(identity.project, identity.model, identity.fingerprint)}n{identity.attempt}"
        return f"ftops-{_slug(identity.model, 30)}-{tag}"

    def request_token(self, identity: Identity) -> str:
        return short_hash("ftops-bedrock-token", identity.project, identity.model, identity.fingerprint,
                          str(identity.attempt), chars=40)

    def job_state(self, status: str) -> JobState:
        return _STATES.get(status, JobState.UNKNOWN)

    # ----------------------------------------------------------------- files

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}/{sha256}.jsonl" if self.prefix else f"{sha256}.jsonl"

    def list_files(self) -> list[RemoteFile]:
        out: list[RemoteFile] = []
        params: dict[str, Any] = {"Bucket": self._bucket, "Prefix": f"{self.prefix}/" if self.prefix else ""}
        for _ in range(1000):
            page = self._call("s3", "list_objects_v2", **params)
            for o in page.get("Contents") or []:
                key = str(o.get("Key") or "")
                m = _SHA_KEY.search(key)
                out.append(RemoteFile(id=f"s3://{self._bucket}/{key}", filename=key, bytes=o.get("Size"),
                                      purpose="fine-tune", status="processed", created_at=unix_seconds(o.get("LastModified")),
                                      sha256=m.group(1) if m else None))
            if not page.get("IsTruncated"):
                return out
            params["ContinuationToken"] = page["NextContinuationToken"]
        raise ProviderError("ListObjectsV2 did not end within 1000 pages", code="pagination")

    def upload_file(self, path: Path, *, sha256: str, display_path: str,
                    on_progress: ProgressCallback | None = None) -> RemoteFile:
        """PUT to s3://BUCKET/PREFIX/<sha256>.jsonl (the bytes are checked against `sha256` first)."""
        path = Path(path)
        size = path.stat().st_size
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != sha256:
            raise ProviderError(f"{path} changed before it was uploaded", code="dataset_changed_during_upload")
        key = self._key(sha256)
        with open(path, "rb") as f:
            # Not repeated here after a lost answer: the executor looks (ListObjectsV2) first.
            self._call("s3", "put_object", write=True, Bucket=self._bucket, Key=key, Body=f.read(),
                       ContentType="application/jsonl")
        if on_progress:
            on_progress(size, size)
        return RemoteFile(id=f"s3://{self._bucket}/{key}", filename=key, bytes=size, purpose="fine-tune",
                          status="processed", created_at=int(time.time()), sha256=sha256)

    def delete_file(self, file_id: str) -> None:
        bucket, _, key = file_id.removeprefix("s3://").partition("/")
        self._call("s3", "delete_object", Bucket=bucket, Key=key)

    # ----------------------------------------------------------------- jobs

    def _job(self, obj: Mapping[str, Any]) -> RemoteJob:
        if not isinstance(obj.get("jobArn"), str):
            raise APIStatusError("unexpected response shape for a model customization job", method="Get",
                                 path=self.endpoint)
        status = str(obj.get("status") or "")
        state = self.job_state(status)
        name = str(obj.get("jobName") or "")
        m = _TAG.search(name)
        tdc = obj.get("trainingDataConfig") or {}
        vals = (obj.get("validationDataConfig") or {}).get("validators") or []
        model = obj.get("outputModelArn") or obj.get("customModelArn")
        return RemoteJob(
            id=obj["jobArn"], status=status, state=state,
            model=str(obj.get("baseModelArn") or "").rsplit("/", 1)[-1],
            fine_tuned_model=model if state is JobState.SUCCEEDED else None,
            training_file=tdc.get("s3Uri"), validation_file=vals[0].get("s3Uri") if vals else None,
            created_at=unix_seconds(obj.get("creationTime")),
            finished_at=unix_seconds(obj.get("endTime")) if state.terminal and obj.get("endTime") else None,
            error=JobError(code="failed", message=str(obj.get("failureMessage") or "the job failed"))
            if state is JobState.FAILED else None,
            hyperparameters=dict(obj.get("hyperParameters") or {}) or None,
            group=(m.group(1) + m.group(2)) if m else None, attempt=int(m.group(3)) if m else None)

    def list_jobs(self, project: str) -> list[RemoteJob]:
        pk = project_key(project)
        return [j for j in self._list(f"-x{pk}") if j.group is not None and j.group.startswith(pk)]

    def find_jobs(self, identity: Identity) -> list[RemoteJob]:
        """The look before a create, by the group's tag in the job name (`nameContains`): one short page
        whatever the number of jobs in the project."""
        key = self.group_key(identity.project, identity.model, identity.fingerprint)
        return [j for j in self._list(f"-x{key}n") if j.group == key]

    def _list(self, name_contains: str) -> list[RemoteJob]:
        return [self._job(o) for o in self._pages("list_model_customization_jobs", "modelCustomizationJobSummaries",
                                                  nameContains=name_contains, maxResults=100)]

    def _pages(self, op: str, items: str, **params: Any) -> list[Any]:
        """Every item of a paginated Bedrock list (`nextToken`), at most 1000 pages."""
        out: list[Any] = []
        for _ in range(1000):
            page = self._call("bedrock", op, **params)
            out += page.get(items) or []
            token = page.get("nextToken")
            if not token:
                return out
            params["nextToken"] = token
        raise ProviderError(f"{op} did not end within 1000 pages", code="pagination")

    def get_job(self, job_id: str) -> RemoteJob:
        return self._job(self._call("bedrock", "get_model_customization_job", jobIdentifier=job_id))

    def delete_model(self, model_id: str) -> None:
        """DeleteCustomModel (`--prune`/`destroy`); a 404 is raised as NotFoundError (already gone)."""
        self._call("bedrock", "delete_custom_model", write=True, modelIdentifier=model_id)

    def create_job(self, body: Mapping[str, Any], identity: Identity, files: Mapping[str, str]) -> RemoteJob:
        out = bind_files(body, files)
        name = self.job_name(identity)
        suffix = out.pop("suffix", None)
        metadata = out.pop("metadata", None) or {}
        tags = [{"key": "ftops_project", "value": identity.project}, {"key": "ftops_model", "value": identity.model},
                {"key": "ftops_fp", "value": identity.fingerprint},
                {"key": "ftops_attempt", "value": str(identity.attempt)}]
        tags += [{"key": k, "value": v} for k, v in sorted(metadata.items())]
        model_name = "-".join(p for p in (_slug(identity.model, 20), _slug(suffix, 24) if suffix else "",
                                          name.rsplit("-", 1)[-1]) if p)
        req: dict[str, Any] = {
            "jobName": name, "customModelName": model_name[:63], "roleArn": self._role,
            "clientRequestToken": self.request_token(identity),
            "baseModelIdentifier": out["baseModelIdentifier"], "customizationType": out["customizationType"],
            "trainingDataConfig": {"s3Uri": out["training_file"]},
            "outputDataConfig": {"s3Uri": self.output_uri or f"s3://{self._bucket}/{self.prefix}/output/"},
            "hyperParameters": out.get("hyperParameters") or {}, "jobTags": tags, "customModelTags": tags,
        }
        if out.get("validation_file"):
            req["validationDataConfig"] = {"validators": [{"s3Uri": out["validation_file"]}]}
        try:
            self._call("bedrock", "create_model_customization_job", write=True, **req)
        except ConflictError:
            pass  # the name exists: this identity's job was made by an earlier call; adopt it below
        # A repeated token is ignored without error, so the answer's ARN is not trusted: look up by name.
        return self.get_job(name)

    def cancel_job(self, job_id: str) -> RemoteJob:
        self._call("bedrock", "stop_model_customization_job", jobIdentifier=job_id)
        return self.get_job(job_id)

    # ----------------------------------------------------------------- inference

    def chat(self, model: str, messages: list[dict[str, Any]]) -> str:
        system = [{"text": str(m.get("content") or "")} for m in messages if m.get("role") in ("system", "developer")]
        turns = [{"role": m["role"], "content": [{"text": str(m.get("content") or "")}]}
                 for m in messages if m.get("role") in ("user", "assistant")]
        params: dict[str, Any] = {"modelId": self._serving_deployment(model), "messages": turns}
        if system:
            params["system"] = system
        answer = self._call("bedrock-runtime", "converse", **params)
        try:
            return "".join(b.get("text", "") for b in answer["output"]["message"]["content"])
        except (KeyError, TypeError) as exc:
            raise APIStatusError("Converse: no message in the answer", method="Converse", path=self.endpoint) from exc

    # ----------------------------------------------------------------- deployments (on-demand)

    def validate_deployment(self, settings: Mapping[str, Any]) -> list[Problem]:
        out = super().validate_deployment(settings)
        if settings.get("type") == "provisioned":
            out.append(Problem(path=("type",), code="provider.unsupported_field",
                               message="Provisioned Throughput (`type: provisioned`) is bought by commitment and "
                                       "is not managed by ftops",
                               hint="use `type: on-demand` (billed per token), or buy Provisioned Throughput "
                                    "for the model outside ftops"))
        return out

    def validate_model_deployment(self, spec: ModelSpec, settings: Mapping[str, Any]) -> list[Problem]:
        out = self.validate_deployment(settings)
        if settings.get("type", "on-demand") == "on-demand" and not spec.base_model.startswith(ON_DEMAND_BASE_MODELS):
            out.append(Problem(path=("type",) if "type" in settings else (), code="provider.unsupported_field",
                               message=f"Amazon Bedrock deploys custom models for on-demand inference only for "
                                       f"Amazon Nova Micro, Lite and Pro base models, not {spec.base_model}",
                               hint="train from amazon.nova-micro-v1:0:128k, amazon.nova-lite-v1:0:300k or "
                                    "amazon.nova-pro-v1:0:300k, or remove `deployment:` (and buy Provisioned "
                                    "Throughput outside ftops)"))
        if self.region and self.region not in ON_DEMAND_REGIONS and not self.sandbox:
            out.append(Problem(path=(), code="provider.unsupported_region", severity="warning",
                               message=f"on-demand deployments of custom models are documented for "
                                       f"{', '.join(sorted(ON_DEMAND_REGIONS))}, not {self.region}",
                               hint="AWS may refuse the deployment in this region"))
        return out

    def model_deployment_key(self, project: str, model: str, group: str) -> str:
        """`ftops-<model>-d<P4><M8>` (the `modelDeploymentName`): one per declared model, kept across replaces
        (UpdateCustomModelDeployment swaps the model it serves)."""
        tag = f"d{project_key(project)}{short_hash('ftops-bedrock-deployment', project, model, chars=8)}"
        return f"ftops-{_slug(model, 63 - 7 - len(tag))}-{tag}"

    def _deployment(self, obj: Mapping[str, Any]) -> RemoteDeployment:
        arn = obj.get("customModelDeploymentArn")
        if not isinstance(arn, str):
            raise APIStatusError("unexpected response shape for a custom model deployment", method="Get",
                                 path=self.endpoint)
        name = str(obj.get("modelDeploymentName") or obj.get("customModelDeploymentName") or "")
        status = str(obj.get("status") or "")
        model = str(obj.get("modelArn") or "")
        update = obj.get("updateDetails") or {}
        if update.get("updateStatus") in ("Updating", "UpdateCompleted") and update.get("modelArn"):
            model = str(update["modelArn"])  # the model it is being switched to: not updated twice
        return RemoteDeployment(id=arn, model=model, status=status, ready=status == "Active"
                                and update.get("updateStatus") != "Updating",
                                settings={"type": "on-demand"}, endpoint=arn, key=name)

    def list_deployments(self, project: str) -> list[RemoteDeployment]:
        """This project's deployments: `nameContains=-d<P4>`, then the name's tag checked."""
        pk = project_key(project)
        out = [self._deployment(o) for o in self._pages("list_custom_model_deployments", "modelDeploymentSummaries",
                                                        nameContains=f"-d{pk}", maxResults=100)]
        # A Failed deployment never served: left out, so the plan creates it again (see create_deployment).
        return [d for d in out if (m := _DEP_TAG.search(d.key)) is not None and m.group(1) == pk
                and d.status != "Failed"]

    def get_deployment(self, deployment_id: str) -> RemoteDeployment:
        return self._deployment(self._call("bedrock", "get_custom_model_deployment",
                                           customModelDeploymentIdentifier=deployment_id))

    def create_deployment(self, name: str, model_id: str, settings: Mapping[str, Any],
                          identity: Identity) -> RemoteDeployment:
        """CreateCustomModelDeployment named by `model_deployment_key`, then read back by name.

        Safe to repeat: the `clientRequestToken` derives from the name and model ARN, so a create sent again
        after a lost answer (retried here like a read) is ignored by AWS. A name that already exists (made
        before the state was lost) is adopted, and pointed at `model_id` if it serves another model."""
        dep_name = self.model_deployment_key(identity.project, identity.model, "")
        # No fingerprint tag: the deployment outlives the model it first served (an update keeps its tags).
        tags = [{"key": "ftops_project", "value": identity.project}, {"key": "ftops_model", "value": identity.model}]
        for salt in ("", "again-1", "again-2"):
            token = short_hash("ftops-bedrock-deployment-token", dep_name, model_id, salt, chars=40)
            try:
                self._call("bedrock", "create_custom_model_deployment", modelDeploymentName=dep_name,
                           modelArn=model_id, description=f"ftops: {identity.project}/{identity.model}"[:2048],
                           tags=tags, clientRequestToken=token)
            except ConflictError:
                pass  # the name is taken: adopted below
            try:
                current = self.get_deployment(dep_name)
            except NotFoundError:
                # The token was spent on a deployment since deleted (AWS ignored the create): a fresh token.
                continue
            if current.status == "Failed":
                # Never served: deleted, and made again under a fresh token (this one may name it).
                self.delete_deployment(current.id)
                continue
            return current if current.model == model_id else self.update_deployment(current.id, model_id, settings)
        raise ProviderError(f"CreateCustomModelDeployment {dep_name}: created nothing three times",
                            code="deployment_not_created")

    def update_deployment(self, deployment_id: str, model_id: str, settings: Mapping[str, Any]) -> RemoteDeployment:
        """UpdateCustomModelDeployment: the deployment serves `model_id` (the old model until the switch ends).
        Repeating it with the same model is harmless, so it is retried like a read; one already switching to
        `model_id` (or serving it) is left alone."""
        current = self.get_deployment(deployment_id)
        if current.model == model_id:
            return current
        self._call("bedrock", "update_custom_model_deployment", customModelDeploymentIdentifier=deployment_id,
                   modelArn=model_id)
        return self.get_deployment(deployment_id)

    def delete_deployment(self, deployment_id: str) -> None:
        try:
            self._call("bedrock", "delete_custom_model_deployment", customModelDeploymentIdentifier=deployment_id)
        except NotFoundError:
            return

    def deployment_cost_per_hour(self, settings: Mapping[str, Any]) -> float | None:
        """On-demand deployments bill per token of inference, nothing per hour."""
        return 0.0

    def _serving_deployment(self, model: str) -> str:
        """The ARN of an Active deployment serving the custom model `model`, else `model` itself (one list per
        model and provider instance)."""
        if ":custom-model/" not in model:
            return model
        if model not in self._serving:
            try:
                page = self._call("bedrock", "list_custom_model_deployments", modelArnEquals=model,
                                  statusEquals="Active", maxResults=100)
            except PermissionDeniedError:
                page = {}  # credentials that may only invoke: the model as given
            arns = [str(o["customModelDeploymentArn"]) for o in page.get("modelDeploymentSummaries") or []
                    if isinstance(o, dict) and o.get("customModelDeploymentArn")]
            self._serving[model] = sorted(arns)[0] if arns else model
        return self._serving[model]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients = {}


__all__ = ["BEDROCK_CAPABILITIES", "BedrockProvider"]
