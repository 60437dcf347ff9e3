"""The value-based secret guard: no API key may sit in any value of the loaded configuration.

Config values end up in job metadata, suffixes, state, plans and logs, so after interpolation
every string (keys of mappings too) is checked against
- the values of the key variables the configuration names (`provider.api_key_env`, each
  `providers.*.api_key_env`, and the well-known defaults), however the value got there
  (`${env.KEY}`, a second variable holding the same value, `vars`, or pasted literally), and
- anything that looks like an API key (`ftops.diagnostics.find_api_key`).

Checking names alone (`${env.OPENAI_API_KEY}`) could be bypassed; checking values cannot.
Messages show a redacted prefix or the variable's name, never the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ftops.diagnostics import Diagnostic, SourceRange, error, find_api_key, redacted

from .source import NodePosition, Path_

#: Key variables read by some provider whatever the configuration says.
DEFAULT_KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "TOGETHER_API_KEY", "FIREWORKS_API_KEY",
                         "NEBIUS_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN",
                         "AZURE_MANAGEMENT_TOKEN", "WANDB_API_KEY")
#: A shorter "key" would match inside ordinary words; no real key is this short.
MIN_SECRET_LENGTH = 8


def key_variable_names(data: Any) -> list[str]:
    """Names of the environment variables `data` (a parsed ftops.yaml) reads API keys from."""
    names: list[str] = list(DEFAULT_KEY_VARIABLES)
    blocks: list[Any] = []
    if isinstance(data, dict):
        blocks.append(data.get("provider"))
        providers = data.get("providers")
        if isinstance(providers, dict):
            blocks.extend(providers.values())
        elif isinstance(providers, list):
            blocks.extend(providers)
    for block in blocks:
        name = block.get("api_key_env") if isinstance(block, dict) else None
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return names


def secret_values(environ: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """{value: variable name} for each named variable that is set (surrounding whitespace stripped)."""
    out: dict[str, str] = {}
    for name in names:
        value = (environ.get(name) or "").strip()
        if len(value) >= MIN_SECRET_LENGTH:
            out.setdefault(value, name)
    return out


def _strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str, bool]]:
    """(path, text, is_key) for every string in `value`, mapping keys included."""
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield path + (k,), k, True
            yield from _strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, path + (i,))


def _is_key_variable_field(path: Path_) -> bool:
    """`provider.api_key_env` / `providers.X.api_key_env`: checked by the model (a name, not a key)."""
    return bool(path) and path[-1] == "api_key_env" and path[0] in ("provider", "providers")


def find_secret_values(data: Any, secrets: Mapping[str, str], positions: Mapping[Path_, NodePosition],
                       filename: str) -> tuple[list[Diagnostic], list[Path_]]:
    """One `config.secret_value` error per string of `data` holding a secret; and their paths."""
    diags: list[Diagnostic] = []
    paths: list[Path_] = []
    ordered = sorted(secrets.items(), key=lambda kv: len(kv[0]), reverse=True)
    for path, text, is_key in _strings(data, ()):
        if _is_key_variable_field(path) and not is_key:
            continue
        var = next((name for value, name in ordered if value in text), None)
        if var is not None:
            what = f"the value of ${var} (an API key variable)"
        else:
            key = find_api_key(text)
            if key is None:
                continue
            what = f"what looks like an API key (`{redacted(key)}`)"
        dotted = ".".join(str(p) for p in path)
        pos = positions.get(path)
        rng = (pos.key if is_key else pos.value) if pos else None
        address = f"models.{path[1]}" if len(path) >= 2 and path[0] == "models" else ""
        diags.append(error(
            "config.secret_value", f"`{dotted}` {'key' if is_key else 'value'} contains {what}",
            "Values in ftops.yaml end up in job metadata, the state file, plans and logs; an API key must "
            "only ever be read from its variable by the provider client.",
            range=rng or SourceRange(filename, 1), address=address,
            hint="remove the key from this value; if it came from ${env...}, reference another variable"))
        paths.append(path)
    return diags, paths
