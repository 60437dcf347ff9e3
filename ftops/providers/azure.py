"""AzureOpenAIProvider: Azure OpenAI's v1 fine-tuning API, an OpenAI dialect.

Differences from OpenAI that matter to ftops, declared in `AZURE_CAPABILITIES`:
- endpoint `https://{resource}.openai.azure.com/openai/v1`; the key goes in the `api-key` header;
  older deployments also need an `api-version` query parameter;
- the suffix is limited to 40 characters (Microsoft Learn; the v1 spec says 64: the stricter wins);
- jobs take a training type (`options.training_type` or the provider entry's `training_type`);
- no server-side `metadata[k]=v` filter (ftops filters client-side within one paginated list) and
  no Uploads API (direct multipart only, 512 MB per file).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftops.providers.base import MB, Capabilities, ModelSpec, ParamSpec
from ftops.providers.openai import OPENAI_CAPABILITIES, OpenAIProvider

_TRAINING_TYPES = {"global_standard": "globalstandard", "standard": "standard", "developer": "developer"}

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
    "options": (ParamSpec(name="training_type", kind="choice", choices=tuple(_TRAINING_TYPES), auto=False,
                          wire="trainingType"),),
    "new_jobs_until": None,
    "model_shutdowns": {},
    "fine_tuned_model_pattern": "{base}.ft-{id}-{suffix}",
})


def azure_base_url(resource: str) -> str:
    """The v1 endpoint of an Azure OpenAI resource name (or a full https URL, returned as is)."""
    if resource.startswith(("http://", "https://")):
        return resource.rstrip("/")
    return f"https://{resource}.openai.azure.com/openai/v1"


class AzureOpenAIProvider(OpenAIProvider):
    """OpenAIProvider with Azure's authentication, optional api-version and training type."""

    capabilities = AZURE_CAPABILITIES

    def __init__(self, http: Any, *, api_key: str | None, api_version: str | None = None,
                 capabilities: Capabilities | None = None, **kwargs: Any) -> None:
        super().__init__(http, api_key=api_key, capabilities=capabilities or AZURE_CAPABILITIES, **kwargs)
        self.api_version = api_version

    @classmethod
    def from_settings(cls, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                      **kwargs: Any) -> AzureOpenAIProvider:
        """Build with its own client; `base_url` may be a resource name or the full v1 URL."""
        if kwargs.pop("require_key", True):
            cls.require_key(api_key, kwargs.get("api_key_env", ""))
        return cls(cls.make_client(azure_base_url(base_url or ""), timeout), api_key=api_key, **kwargs)

    def _auth_headers(self) -> dict[str, str]:
        return {"api-key": self._api_key} if self._api_key else {}

    def _prepare_params(self, params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if not self.api_version:
            return params
        out = dict(params or {})
        out["api-version"] = self.api_version
        return out

    def fingerprint_material(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"provider": "azure", **{k: v for k, v in body.items() if k != "metadata"}}

    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        body = super().translate(spec, training=training, validation=validation)
        tt = spec.options.get("training_type")
        if tt:
            body["trainingType"] = _TRAINING_TYPES[tt]
        return body
