"""The engine knows no provider: no status word, field name, limit or provider name of any provider.

Every provider's own words are collected from its capabilities and status mapping, so a provider added
later is checked without editing this test; a short list of identity carriers and endpoints is added.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import httpx

from ftops.config.models import PROVIDER_TYPES
from ftops.providers import PROVIDERS, JobState

ENGINE = Path(__file__).resolve().parents[2] / "ftops" / "engine"
# Words only a provider may use: identity carriers, endpoints, wire field names, status words.
EXTRA = {"ftops_fp", "ftops_model", "ftops_project", "api.openai.com", "fine-tune", "fine_tuning", "suffix_tag",
         "validating_files", "queued", "succeeded", "cancel_requested", "compressing", "JOB_STATE_", "InProgress",
         "model_output_name", "random_seed", "learning_rate_multiplier", "n_epochs", "batch_size",
         "trainingType", "datasetId", "clientRequestToken"}


def provider_words() -> set[str]:
    words = set(EXTRA) | set(PROVIDERS)
    for cls in PROVIDERS.values():
        caps = cls.capabilities
        words |= {p.wire.split(".")[-1] for p in caps.hyperparameters + caps.options if p.wire}
        words |= {caps.title} - {""}
        prov = cls(httpx.Client(base_url="http://x/v1"), api_key=None)  # type: ignore[abstract,call-arg]
        for word in ("pending", "queued", "running", "succeeded", "failed", "cancelled", "completed", "error",
                     "cancel_requested", "compressing", "uploading", "validating_files", "paused", "expired"):
            if prov.job_state(word) is not JobState.UNKNOWN and word not in {s.value for s in JobState}:
                words.add(word)
    # ftops's own vocabulary (config keys) is allowed even where a provider happens to use the same name.
    # Generic English that a provider happens to use as a status or field word is not evidence.
    return words - {"n_epochs", "batch_size", "learning_rate_multiplier", "error", "type", "uploading"}


def engine_strings() -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                out.append((path.name, node.lineno, node.value))
            elif isinstance(node, ast.Name):
                out.append((path.name, node.lineno, node.id))
            elif isinstance(node, ast.Attribute):
                out.append((path.name, node.lineno, node.attr))
    return out


def test_engine_code_contains_no_provider_word() -> None:
    words = provider_words()
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    hits = [f"{name}:{line}: {text[:60]!r} ({m.group(0)})" for name, line, text in engine_strings()
            if (m := pattern.search(text))]
    assert hits == []


def test_the_guard_can_fail() -> None:
    """The word list is not empty and would catch a status word or a provider name in engine code."""
    words = provider_words()
    assert {"validating_files", "cancel_requested", "together", "openai", "ftops_fp"} <= words


def test_config_provider_types_are_the_registry() -> None:
    assert set(PROVIDER_TYPES) == set(PROVIDERS)
