"""ftops.providers: the provider boundary (base), the registry, shared HTTP plumbing, the error tree,
and one module per provider.

Imports only ftops.diagnostics and ftops.datasets (STYLE.md module map).
"""

from __future__ import annotations

from ftops.providers.azure import (
    AZURE_CAPABILITIES,
    AzureOpenAIProvider,
    azure_base_url,
)
from ftops.providers.base import (
    Capabilities,
    Cutoff,
    Identity,
    JobState,
    ModelSpec,
    ParamSpec,
    Problem,
    JobCheckpoint,
    JobError,
    JobEvent,
    ProgressCallback,
    Provider,
    RemoteDeployment,
    RemoteFile,
    RemoteJob,
    RemoteModel,
)
from ftops.providers.errors import (
    APIStatusError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    ConflictError,
    MissingAPIKeyError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    TransportError,
)
from ftops.providers.http import HttpProvider, parse_retry_after
from ftops.providers.openai import (
    DEFAULT_BASE_URL,
    OPENAI_CAPABILITIES,
    OpenAIProvider,
)
from ftops.providers.registry import PROVIDERS, SANDBOX_PREFIX, provider_types
from ftops.providers.fireworks import FIREWORKS_CAPABILITIES, FireworksProvider
from ftops.providers.together import TOGETHER_CAPABILITIES, TogetherProvider

__all__ = [
    "AZURE_CAPABILITIES",
    "DEFAULT_BASE_URL",
    "OPENAI_CAPABILITIES",
    "APIStatusError",
    "AuthError",
    "AuthenticationError",
    "AzureOpenAIProvider",
    "BadRequestError",
    "Capabilities",
    "Cutoff",
    "HttpProvider",
    "Identity",
    "JobState",
    "ModelSpec",
    "PROVIDERS",
    "ParamSpec",
    "Problem",
    "SANDBOX_PREFIX",
    "TOGETHER_CAPABILITIES",
    "FIREWORKS_CAPABILITIES",
    "FireworksProvider",
    "RemoteDeployment",
    "TogetherProvider",
    "provider_types",
    "ConflictError",
    "JobCheckpoint",
    "JobError",
    "JobEvent",
    "MissingAPIKeyError",
    "NotFoundError",
    "OpenAIProvider",
    "PaginationError",
    "PermissionDeniedError",
    "ProgressCallback",
    "Provider",
    "ProviderError",
    "RateLimitError",
    "RemoteFile",
    "RemoteJob",
    "RemoteModel",
    "ServerError",
    "TransportError",
    "azure_base_url",
    "parse_retry_after",
]
