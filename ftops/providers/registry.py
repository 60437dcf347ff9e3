"""The provider registry: `type` in ftops.yaml -> the provider class that speaks it.

Adding a provider is one module plus one line here; config validation, the README's provider
table and the layering tests read this mapping.
"""

from __future__ import annotations

from ftops.providers.azure import AzureOpenAIProvider
from ftops.providers.base import Capabilities, Provider
from ftops.providers.fireworks import FireworksProvider
from ftops.providers.bedrock import BedrockProvider
from ftops.providers.nebius import NebiusProvider
from ftops.providers.openai import OpenAIProvider
from ftops.providers.together import TogetherProvider
from ftops.providers.vertex import VertexProvider

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "azure": AzureOpenAIProvider,
    "together": TogetherProvider,
    "fireworks": FireworksProvider,
    "bedrock": BedrockProvider,
    "vertex": VertexProvider,
    "nebius": NebiusProvider,
}

# The URL prefix each provider's dialect has in the sandbox (`ftops sandbox serve` and `sandbox: true`).
SANDBOX_PREFIX: dict[str, str] = {
    "openai": "/v1",
    "azure": "/azure/openai/v1",
    "together": "/together/v1",
    "fireworks": "/fireworks/v1",
    "bedrock": "/bedrock",
    "vertex": "/vertex",
    "nebius": "/nebius/v1",
}


def provider_class(type_: str) -> type[Provider]:
    return PROVIDERS[type_]


def capabilities(type_: str) -> Capabilities:
    return PROVIDERS[type_].capabilities


def provider_types() -> list[str]:
    return sorted(PROVIDERS)


def provider_table() -> str:
    """The README's provider table, generated from the capabilities (so it cannot drift from them)."""
    rows = ["| type | provider | methods | seed | user metadata | suffix | how ftops recognises its jobs | key "
            "| new jobs until | models that stop working |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for type_ in provider_types():
        c = PROVIDERS[type_].capabilities
        until = (f"{c.new_jobs_until.date}" + ("" if c.new_jobs_until.exact else " (no earlier than)")
                 if c.new_jobs_until else "—")
        dying = sorted(c.model_shutdowns.items(), key=lambda kv: (kv[1].date, kv[0]))
        deaths = "; ".join(f"`{m}` {d.date}" for m, d in dying) or "—"
        suffix = f"{c.max_user_suffix} chars" if c.max_suffix_chars else "—"
        rows.append(f"| `{type_}` | {c.title} | {', '.join(sorted(c.methods))} | {'yes' if c.seed else 'no'} "
                    f"| {'yes' if c.user_metadata else 'no'} | {suffix} | {c.identity} | `{c.key_env or '—'}` "
                    f"| {until} | {deaths} |")
    return "\n".join(rows) + "\n"
