"""Base model -> tiktoken encoding and training token limit, and a token counter.

The counter uses tiktoken offline (TIKTOKEN_CACHE_DIR); when an encoding cannot be loaded it
falls back to bytes/4 and says so (`approximate`), so a plan never blocks on the network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

DEFAULT_ENCODING = "o200k_base"
DEFAULT_TOKEN_LIMIT = 65_536

# Longest prefix wins. Mirrors tiktoken's model table for the models OpenAI fine-tunes.
_ENCODING_PREFIXES: dict[str, str] = {
    "gpt-4o": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-oss": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35": "cl100k_base",
    "babbage-002": "cl100k_base",
    "davinci-002": "cl100k_base",
}

# Training context per example (OpenAI fine-tuning guide, "Token limits").
_TOKEN_LIMIT_PREFIXES: dict[str, int] = {
    "gpt-4o-mini": 65_536,
    "gpt-4o": 65_536,
    "gpt-4.1": 65_536,
    "o4-mini": 65_536,
    "gpt-3.5-turbo-0125": 16_385,
    "gpt-3.5-turbo-1106": 16_385,
    "gpt-3.5-turbo-0613": 4_096,
    "gpt-3.5-turbo": 16_385,
    "gpt-4-0613": 8_192,
    "gpt-4": 8_192,
    "babbage-002": 16_384,
    "davinci-002": 16_384,
}

LEGACY_COMPLETION_MODELS = ("babbage-002", "davinci-002")


def base_model_name(model: str) -> str:
    """`ft:gpt-4o-mini-2024-07-18:org::id` -> `gpt-4o-mini-2024-07-18`; other names unchanged."""
    if model.startswith("ft:"):
        parts = model.split(":")
        if len(parts) > 1 and parts[1]:
            return parts[1]
    return model


def _longest_prefix(model: str, table: dict[str, Any]) -> Any:
    best: str | None = None
    for prefix in table:
        if model.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return table[best] if best is not None else None


def encoding_name_for(base_model: str | None) -> str:
    """tiktoken encoding name for a base model; o200k_base when unknown or None."""
    if not base_model:
        return DEFAULT_ENCODING
    found = _longest_prefix(base_model_name(base_model), _ENCODING_PREFIXES)
    return str(found) if found else DEFAULT_ENCODING


def token_limit_for(base_model: str) -> int:
    """Maximum tokens per training example; longer examples are truncated by the provider."""
    if not base_model:
        return DEFAULT_TOKEN_LIMIT
    found = _longest_prefix(base_model_name(base_model), _TOKEN_LIMIT_PREFIXES)
    return int(found) if found else DEFAULT_TOKEN_LIMIT


def is_legacy_completion_model(base_model: str | None) -> bool:
    return bool(base_model) and base_model_name(base_model or "").startswith(LEGACY_COMPLETION_MODELS)


_lock = threading.Lock()
_loaded: dict[str, Any] = {}
_failures: dict[str, str] = {}  # encoding name -> why it could not be loaded


def load_encoding(name: str) -> Any | None:
    """The tiktoken Encoding, or None when it cannot be loaded (offline, missing cache)."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        enc: Any | None
        try:
            import tiktoken

            enc = tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - any failure means "estimate instead"
            enc = None
            first = str(exc).splitlines()[0] if str(exc) else ""
            _failures[name] = f"{type(exc).__name__}: {first[:80]}{'…' if len(first) > 80 else ''}"
        _loaded[name] = enc
        return enc


def encoding_failure(name: str) -> str | None:
    """Why `name` could not be loaded in this process (None: it loads, or was never tried)."""
    if load_encoding(name) is not None:
        return None
    return _failures.get(name, "unknown reason")


#: Why the estimate is high: bytes/4 over-counts the o200k/cl100k encodings of typical chat data.
APPROXIMATE_HINT = ("let ftops reach the network once (tiktoken downloads the encoding to its cache), or set "
                    "TIKTOKEN_CACHE_DIR to a directory that holds tiktoken's encoding files")


def approximate_tokens_message(encoding: str) -> str:
    """The warning text for counts estimated because `encoding` could not be loaded."""
    why = encoding_failure(encoding) or "it could not be loaded"
    return (f"token counts and costs are estimates (bytes/4, typically ~18% too high): tiktoken's `{encoding}` "
            f"encoding is not available ({why})")


def _estimate(text: str) -> int:
    n = len(text.encode("utf-8"))
    return (n + 3) // 4


class TokenCounter:
    """Counts tokens of strings; caches the counts of strings that repeat (roles, system prompts).

    The cache is bounded: it is emptied when it grows past `max_entries`, so memory stays flat.
    """

    def __init__(self, encoding_name: str, max_entries: int = 8192) -> None:
        self.encoding_name = encoding_name
        enc = load_encoding(encoding_name)
        self.approximate = enc is None
        self._encode: Callable[[str], list[int]] | None = (
            enc._core_bpe.encode_ordinary if enc is not None else None
        )
        self._cache: dict[str, int] = {}
        self._max = max_entries

    def count(self, text: str) -> int:
        """Tokens of `text` encoded as ordinary text (special-token strings are plain text)."""
        enc = self._encode
        if enc is None:
            return _estimate(text)
        try:
            return len(enc(text))
        except UnicodeEncodeError:  # lone surrogates from JSON escapes: as tiktoken.Encoding does
            return len(enc(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")))

    def count_cached(self, text: str) -> int:
        """Like `count`, for strings likely to repeat across examples."""
        n = self._cache.get(text)
        if n is None:
            n = self.count(text)
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[text] = n
        return n
