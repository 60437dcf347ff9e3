"""The provider registry: `type` in ftops.yaml -> the provider class that speaks it.

Adding a provider is one module plus one line here; config validation, the README's provider
table and the layering tests read this mapping.
"""

from __future__ import annotations

from ftops.providers.azure import AzureOpenAIProvider
from ftops.providers.base import Capabilities, Provider
from ftops.providers.nebius import NebiusProvider
from ftops.providers.openai import OpenAIProvider
from ftops.providers.together import TogetherProvider

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "azure": AzureOpenAIProvider,
    "together": TogetherProvider,
    "nebius": NebiusProvider,
}

# The URL prefix each provider's dialect has in the sandbox (`ftops sandbox serve` and `sandbox: true`).
SANDBOX_PREFIX: dict[str, str] = {
    "openai": "/v1",
    "azure": "/azure/openai/v1",
    "together": "/together/v1",
    "nebius": "/nebius/v1",
}


def provider_class(type_: str) -> type[Provider]:
    return PROVIDERS[type_]


def capabilities(type_: str) -> Capabilities:
    return PROVIDERS[type_].capabilities


def provider_types() -> list[str]:
    return sorted(PROVIDERS)
