"""AzureOpenAIProvider: Azure OpenAI's v1 fine-tuning API, an OpenAI dialect, plus ARM deployments.

Differences from OpenAI, each handled here (sources: the v1 data-plane description in
`provider-specs/azure/openapi.yaml`, Microsoft Learn's fine-tuning how-to and samples):
- endpoint `https://{resource}.openai.azure.com/openai/v1` (no api-version needed; an explicit
  `api_version` is still sent when configured); the key goes in the `api-key` header, or, with no
  key, a Microsoft Entra token for `https://cognitiveservices.azure.com/.default` from the optional
  `azure-identity` package (`pip install 'ftops[azure]'`);
- a **training type** is required (without it Azure answers a misleading "base model does not
  support fine-tuning"): `training_type` on the provider entry or in a model's `options:`, in
  ftops's snake_case, sent as `trainingType` (`globalstandard`, `standard`, `developer`: the values
  Microsoft's own samples send; it is not in the v1 description). A missing one is refused at plan;
- statuses the v1 description does not list (`pending`) map to pending; unknown words stay unknown;
- the suffix is limited to 40 characters (Microsoft Learn; the v1 description says 64: the stricter
  wins); no Uploads API: files up to 512 MB, refused at plan from a stat;
- no server-side metadata filter: the job list is filtered client-side (one paginated list);
- training files are sent UTF-8 with a byte-order mark (Microsoft Learn: "encoded in UTF-8 with a
  byte-order mark"); the BOM is prepended on the wire when the file has none, and the bytes after it
  are hashed as they are sent and must equal the planned sha256;
- dates announced by Azure ("no earlier than") come from its model list (`deprecation.fine_tune`,
  `deprecation.inference`) and only ever warn;
- deployments go through Azure Resource Manager (`create_deployment`, `delete_deployment`,
  `list_deployments`), with subscription, resource group and account from the provider entry and a
  token from `$AZURE_MANAGEMENT_TOKEN` or `azure-identity` (scope `https://management.azure.com/.default`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from ftops.providers.base import (
    Provider,
    RemoteDeployment,
    MB,
    Capabilities,
    Identity,
    JobState,
    ModelSpec,
    ParamSpec,
    Problem,
    ProgressCallback,
    RemoteFile,
    RemoteModel,
    short_hash,
)
from ftops.providers.errors import APIStatusError, NotFoundError, ProviderError
from ftops.providers.http import _FileSlice
from ftops.providers.openai import OPENAI_CAPABILITIES, OpenAIProvider

TRAINING_TYPES = {"global_standard": "globalstandard", "standard": "standard", "developer": "developer"}
COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"
ARM_BASE_URL = "https://management.azure.com"
ARM_API_VERSION = "2024-10-21"
BOM = b"\xef\xbb\xbf"

AZURE_CAPABILITIES = OPENAI_CAPABILITIES.model_copy(update={
    "name": "azure",
    "title": "Azure OpenAI",
    "default_base_url": "",
    "key_env": "AZURE_OPENAI_API_KEY",
    "metadata_filter": False,
    "uploads_api": False,
    "max_file_bytes": 512 * MB,
    "max_upload_bytes": 512 * MB,
    "max_suffix_chars": 40,
    "identity": "job metadata (ftops_project, ftops_model, ftops_fp), filtered client-side",
    "options": (ParamSpec(name="training_type", kind="choice", choices=tuple(TRAINING_TYPES), auto=False,
                          wire="trainingType",
                          description="Azure's training tier: global_standard, standard or developer"),),
    # Azure announces its own dates ("no earlier than") in its model list; none are declared here.
    "new_jobs_until": None,
    "model_shutdowns": {},
    "base_models": frozenset({"gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-2025-04-14",
                              "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14", "o4-mini-2025-04-16"}),
    "model_catalogue": True,
    "fine_tuned_model_pattern": "{base}.ft-{id}-{suffix}",
})

_STATES_EXTRA = {"pending": "pending", "notRunning": "pending", "canceled": "cancelled"}


def azure_base_url(resource: str) -> str:
    """The v1 endpoint of an Azure OpenAI resource name (or a full https URL, given with or without
    its `/openai/v1`)."""
    if resource.startswith(("http://", "https://")):
        url = resource.rstrip("/")
        if url.endswith("/openai"):
            url += "/v1"
        return url
    return f"https://{resource}.openai.azure.com/openai/v1"


def entra_token_provider(scope: str) -> Callable[[], str] | None:
    """A bearer-token source from `azure-identity` (DefaultAzureCredential), or None when it is not installed."""
    try:
        from azure.identity import DefaultAzureCredential  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    cred = DefaultAzureCredential()
    return lambda: str(cred.get_token(scope).token)


class _Prefixed:
    """A byte prefix (the BOM) followed by a `_FileSlice`: what is sent; the slice hashes the file part."""

    def __init__(self, prefix: bytes, rest: _FileSlice) -> None:
        self._prefix, self._rest, self._pos = prefix, rest, 0

    def read(self, n: int = -1) -> bytes:
        if self._pos < len(self._prefix):
            take = len(self._prefix) - self._pos if n < 0 else min(n, len(self._prefix) - self._pos)
            out = self._prefix[self._pos:self._pos + take]
            self._pos += take
            return out + (self._rest.read(-1 if n < 0 else n - take) if n < 0 or n > take else b"")
        return self._rest.read(n)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            offset = len(self._prefix) + self._rest.seek(0, os.SEEK_END) + offset
        elif whence == os.SEEK_CUR:
            offset = self.tell() + offset
        self._pos = min(max(offset, 0), len(self._prefix))
        self._rest.seek(max(offset - len(self._prefix), 0))
        return self.tell()

    def tell(self) -> int:
        return self._pos + self._rest.tell() if self._pos >= len(self._prefix) else self._pos


class AzureOpenAIProvider(OpenAIProvider):
    """OpenAIProvider with Azure's authentication, training type, BOM, model list and ARM deployments."""

    capabilities = AZURE_CAPABILITIES

    def __init__(self, http: Any, *, api_key: str | None, api_version: str | None = None,
                 capabilities: Capabilities | None = None, training_type: str | None = None,
                 token_provider: Callable[[], str] | None = None, arm: httpx.Client | None = None,
                 subscription_id: str | None = None, resource_group: str | None = None,
                 account: str | None = None, arm_token: Callable[[], str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(http, api_key=api_key, capabilities=capabilities or AZURE_CAPABILITIES, **kwargs)
        self.api_version = api_version
        self.training_type = training_type
        self._token_provider = token_provider
        self._arm = arm
        self._arm_token = arm_token
        self.subscription_id, self.resource_group, self.account = subscription_id, resource_group, account

    @classmethod
    def from_settings(cls, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                      **kwargs: Any) -> AzureOpenAIProvider:
        """Build with its own client; `base_url` may be a resource name or the endpoint URL. With no key,
        a Microsoft Entra token from azure-identity (refused when it is not installed)."""
        require = kwargs.pop("require_key", True)
        if not (api_key or "").strip() and kwargs.get("token_provider") is None:
            kwargs["token_provider"] = entra_token_provider(COGNITIVE_SCOPE)
            if require and kwargs["token_provider"] is None:
                cls.require_key(api_key, kwargs.get("api_key_env", ""))
        if kwargs.get("subscription_id") and kwargs.get("arm") is None:
            kwargs["arm"] = cls.make_client(ARM_BASE_URL, timeout)
        return cls(cls.make_client(azure_base_url(base_url or ""), timeout), api_key=api_key, **kwargs)

    def _auth_headers(self) -> dict[str, str]:
        if self._api_key:
            return {"api-key": self._api_key}
        if self._token_provider is not None:
            return {"Authorization": f"Bearer {self._token_provider()}"}
        return {}

    def _prepare_params(self, params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if not self.api_version:
            return params
        out = dict(params or {})
        out["api-version"] = self.api_version
        return out

    # ----------------------------------------------------------------- pure

    def _training_type(self, spec: ModelSpec) -> str | None:
        tt = spec.options.get("training_type") or self.training_type
        return str(tt) if tt else None

    def validate(self, spec: ModelSpec) -> list[Problem]:
        out = super().validate(spec)
        if self._training_type(spec) is None:
            out.append(Problem(
                path=("options", "training_type"), code="provider.missing_field",
                message="Azure OpenAI needs a training type for every job (without one it answers that the "
                        "base model does not support fine-tuning)",
                hint="add `training_type: global_standard` (or standard, developer) to the provider entry, "
                     "or `options: {training_type: ...}` to the model"))
        return out

    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        body = super().translate(spec.model_copy(update={"options": {}}), training=training, validation=validation)
        tt = self._training_type(spec)
        if tt in TRAINING_TYPES:
            body["trainingType"] = TRAINING_TYPES[tt]
        return body

    def fingerprint_material(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return Provider.fingerprint_material(self, body)  # the provider-tagged default, not OpenAI's legacy one

    def job_state(self, status: str) -> JobState:
        return super().job_state(_STATES_EXTRA.get(status, status))

    # ----------------------------------------------------------------- files

    def _upload_direct(self, path: Path, filename: str, purpose: str, size: int,
                       on_progress: ProgressCallback | None, sha256: str) -> RemoteFile:
        """Multipart upload, UTF-8 with a BOM on the wire: prepended when the file has none. The file's
        bytes are hashed as they are sent and must be the planned ones."""
        with open(path, "rb") as f:
            has_bom = f.read(len(BOM)) == BOM
        if has_bom:
            return super()._upload_direct(path, filename, purpose, size, on_progress, sha256)
        slices: list[_FileSlice] = []
        with open(path, "rb") as f:
            def files() -> Any:
                cb = (lambda n: on_progress(n, size)) if on_progress else None
                slices.append(_FileSlice(f, 0, size, cb, hasher=hashlib.sha256()))
                return {"file": (filename, _Prefixed(BOM, slices[-1]), "application/jsonl")}
            body = self._request_json("POST", "/files", data={"purpose": purpose}, files=files)
        remote: RemoteFile = self._parse(RemoteFile, body, "POST", "/files")
        self._verify_sent(slices[-1], sha256, remote.id, path)
        return remote

    # ----------------------------------------------------------------- models

    def list_models(self) -> list[RemoteModel]:
        """The resource's models; Azure's `deprecation` dates are "no earlier than" (warned, never refused)."""
        path = "/models"
        body = self._request_json("GET", path)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise APIStatusError("GET /models: expected a list object", method="GET", path=path)
        out = []
        for o in data:
            if not isinstance(o, dict) or not isinstance(o.get("id"), str):
                continue
            dep: dict[str, Any] = o["deprecation"] if isinstance(o.get("deprecation"), dict) else {}
            out.append(RemoteModel(id=o["id"], created=o.get("created") if isinstance(o.get("created"), int) else None,
                                   owned_by=o.get("owned_by"), shutdown_date=dep.get("inference"),
                                   new_jobs_until=dep.get("fine_tune"), dates_exact=False))
        return out

    # ----------------------------------------------------------------- deployments (ARM)
    # The generic `deployment:` resource (Provider.list/create/update/delete_deployment, RemoteDeployment),
    # through Azure Resource Manager; fields in AZURE_DEPLOYMENT_FIELDS (sku, capacity).

    def _arm_path(self, name: str = "") -> str:
        if not (self._arm is not None and self.subscription_id and self.resource_group and self.account):
            raise ProviderError("deployments need `subscription_id`, `resource_group` and `account` on the azure "
                                "provider entry", code="missing_setting")
        base = (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.CognitiveServices/accounts/{self.account}/deployments")
        return f"{base}/{name}" if name else base

    def _arm_request(self, method: str, path: str, json: Any = None) -> Any:
        """One ARM request (api-version 2024-10-21, bearer token); errors through the one tree."""
        assert self._arm is not None
        token = self._arm_token() if self._arm_token is not None else ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.requests_sent += 1
        try:
            r = self._arm.request(method, path, params={"api-version": ARM_API_VERSION}, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderError(f"{method} {path}: {exc}", code="transport_error", maybe_committed=method != "GET",
                                retryable=True) from exc
        if r.status_code == 404 and method == "GET":
            raise NotFoundError(f"{method} {path}: not found", status_code=404, method=method, path=path)
        if r.status_code >= 400:
            try:
                err = r.json().get("error") or {}
            except ValueError:
                err = {}
            raise APIStatusError(f"{method} {path}: {err.get('message') or r.text[:200]}", method=method, path=path,
                                 status_code=r.status_code, code=err.get("code"))
        return r.json() if r.content else None

    def deployment_key(self, group: str) -> str:
        """The identity tag a deployment of one identity group carries (ARM `tags.ftops`)."""
        project = group.split("/", 1)[0]
        return f"ftops-{short_hash('ftops-project', project, chars=4)}-{short_hash('ftops-deployment', group)}"

    @staticmethod
    def _deployment(obj: Mapping[str, Any]) -> RemoteDeployment:
        props = obj.get("properties") or {}
        sku = obj.get("sku") or {}
        state = str(props.get("provisioningState") or "")
        return RemoteDeployment(
            id=str(obj.get("name") or ""), model=str((props.get("model") or {}).get("name") or ""),
            status=state, ready=state == "Succeeded", gone=state in ("Deleting", "Deleted"),
            settings={"sku": _SKU_BACK.get(str(sku.get("name")), sku.get("name")), "capacity": sku.get("capacity")},
            endpoint=str(obj.get("name") or ""),  # Azure's inference calls name the deployment
            key=str((obj.get("tags") or {}).get("ftops") or ""))

    @property
    def arm_configured(self) -> bool:
        return bool(self._arm is not None and self.subscription_id and self.resource_group and self.account)

    def validate_deployment(self, settings: Mapping[str, Any]) -> list[Problem]:
        out = super().validate_deployment(settings)
        if not self.sandbox and not (self.subscription_id and self.resource_group and self.account):
            out.append(Problem(path=(), code="provider.missing_setting",
                               message="Azure deployments go through Azure Resource Manager, which needs "
                                       "`subscription_id`, `resource_group` and `account` on the provider entry",
                               hint="add them to the azure provider entry (and export AZURE_MANAGEMENT_TOKEN or "
                                    "install ftops[azure])"))
        return out

    def list_deployments(self, project: str) -> list[RemoteDeployment]:
        """This project's deployments (by their `tags.ftops`), one ARM list; none without ARM settings."""
        if not self.arm_configured:
            return []
        prefix = f"ftops-{short_hash('ftops-project', project, chars=4)}-"
        body = self._arm_request("GET", self._arm_path())
        deps = [self._deployment(d) for d in (body or {}).get("value", []) if isinstance(d, dict)]
        return [d for d in deps if d.key.startswith(prefix) and not d.gone]

    def create_deployment(self, name: str, model_id: str, settings: Mapping[str, Any],
                          identity: Identity) -> RemoteDeployment:
        """PUT the deployment `name` of a fine-tuned model: idempotent (the same PUT again changes nothing),
        so safe to repeat after an ambiguous failure; tagged with the identity for adoption."""
        sku = str(settings.get("sku") or "standard")
        body = {"sku": {"name": _SKU.get(sku, sku), "capacity": int(settings.get("capacity") or 1)},
                "tags": {"ftops": self.deployment_key(self.group_key(identity.project, identity.model,
                                                                      identity.fingerprint))},
                "properties": {"model": {"format": "OpenAI", "name": model_id, "version": "1"}}}
        return self._deployment(self._arm_request("PUT", self._arm_path(name), json=body))

    def update_deployment(self, deployment_id: str, model_id: str, settings: Mapping[str, Any]) -> RemoteDeployment:
        """The same PUT (ARM's create-or-update), keeping the deployment's identity tag."""
        current = self._arm_request("GET", self._arm_path(deployment_id))
        sku = str(settings.get("sku") or "standard")
        body = {"sku": {"name": _SKU.get(sku, sku), "capacity": int(settings.get("capacity") or 1)},
                "tags": (current or {}).get("tags") or {},
                "properties": {"model": {"format": "OpenAI", "name": model_id, "version": "1"}}}
        return self._deployment(self._arm_request("PUT", self._arm_path(deployment_id), json=body))

    def delete_deployment(self, deployment_id: str) -> None:
        self._arm_request("DELETE", self._arm_path(deployment_id))


# `deployment:` fields for the generic resource (capabilities.deployment_fields once it lands).
AZURE_DEPLOYMENT_FIELDS = (
    ParamSpec(name="sku", kind="choice", choices=("standard", "global_standard", "developer"), auto=False,
              wire="sku.name", description="Azure's deployment type; Developer deployments expire after 24 h"),
    ParamSpec(name="capacity", kind="int", min=1, auto=False, wire="sku.capacity"),
)
_SKU = {"standard": "Standard", "global_standard": "GlobalStandard", "developer": "Developer"}
_SKU_BACK = {v: k for k, v in _SKU.items()}
AZURE_CAPABILITIES = AZURE_CAPABILITIES.model_copy(update={"deployment_fields": AZURE_DEPLOYMENT_FIELDS})
AzureOpenAIProvider.capabilities = AZURE_CAPABILITIES


__all__ = ["AZURE_CAPABILITIES", "AZURE_DEPLOYMENT_FIELDS", "AzureOpenAIProvider", "azure_base_url",
           "entra_token_provider"]
