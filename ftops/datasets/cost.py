"""Training cost: OpenAI's `n_epochs: auto` rule and prices per 1M training tokens.

Prices ship in ftops/data/pricing.json (source and date inside) and can be overridden from
ftops.yaml `pricing:` by exact model name or by prefix; the longest matching key wins.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

from ftops.datasets.models import CostEstimate
from ftops.datasets.tokens import base_model_name

# OpenAI cookbook "Chat fine-tuning data prep": the rule behind n_epochs="auto".
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def resolve_n_epochs(n_examples: int, requested: int | str | None) -> int:
    """Epochs a job will run: an explicit integer as given, else OpenAI's documented auto rule.

    auto: 3 epochs, raised so that examples x epochs reaches 100 (at most 25 epochs) or lowered
    so that it stays under 25,000 (at least 1 epoch).
    """
    if requested is not None and requested != "auto":
        if isinstance(requested, bool):
            raise ValueError(f"n_epochs must be an integer or 'auto', got {requested!r}")
        try:
            n = int(requested)
        except (TypeError, ValueError):
            raise ValueError(f"n_epochs must be an integer or 'auto', got {requested!r}") from None
        if n < 1:
            raise ValueError(f"n_epochs must be >= 1, got {n}")
        return n
    n_epochs = TARGET_EPOCHS
    if n_examples <= 0:
        return n_epochs
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        n_epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    elif n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        n_epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return n_epochs


@lru_cache(maxsize=1)
def load_pricing() -> dict[str, Any]:
    """The shipped price table (ftops/data/pricing.json)."""
    text = resources.files("ftops").joinpath("data/pricing.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _lookup(model: str, table: dict[str, Any]) -> tuple[str, float] | None:
    best: str | None = None
    for key, value in table.items():
        if key.startswith("_") or not isinstance(value, (int, float)):
            continue
        if model.startswith(key) and (best is None or len(key) > len(best)):
            best = key
    return (best, float(table[best])) if best is not None else None


def estimate_cost(base_model: str, trained_tokens: int, *, method: str = "supervised",
                  overrides: dict[str, float] | None = None) -> CostEstimate:
    """See `_estimate_cost`; a non-finite price or product is "unknown", never inf or nan."""
    est = _estimate_cost(base_model, trained_tokens, method=method, overrides=overrides)
    if (est.usd is not None and not math.isfinite(est.usd)) or (
            est.price_per_1m is not None and not math.isfinite(est.price_per_1m)):
        return CostEstimate(usd=None, price_per_1m=None, approximate=True,
                            note=f"the price for {base_model!r} is not a finite number; set one in `pricing:`")
    return est


def _estimate_cost(base_model: str, trained_tokens: int, *, method: str = "supervised",
                   overrides: dict[str, float] | None = None) -> CostEstimate:
    """Estimated training cost of `trained_tokens` billable tokens (tokens per epoch x epochs).

    Overrides (ftops.yaml `pricing:`) win over the shipped table. `usd` is None when no price is
    known, e.g. reinforcement fine-tuning, which OpenAI bills per hour.
    """
    model = base_model_name(base_model)
    if overrides:
        # Exact name (also the un-prefixed ft: name) first, then the longest prefix.
        for name in (base_model, model):
            if name in overrides:
                price = float(overrides[name])
                return CostEstimate(usd=trained_tokens / 1_000_000 * price, price_per_1m=price,
                                    approximate=False, note=f"price override for {name!r}")
        hit = _lookup(model, {k: v for k, v in overrides.items()})
        if hit is not None:
            return CostEstimate(usd=trained_tokens / 1_000_000 * hit[1], price_per_1m=hit[1],
                                approximate=False, note=f"price override for prefix {hit[0]!r}")
    pricing = load_pricing()
    table = pricing.get(method)
    if not isinstance(table, dict):
        return CostEstimate(usd=None, price_per_1m=None, approximate=True,
                            note=f"no prices for method {method!r}")
    hit = _lookup(model, table)
    if hit is None:
        note = str(table.get("_note") or f"no published price for {model!r} ({method}); "
                   "set one in ftops.yaml `pricing:`")
        return CostEstimate(usd=None, price_per_1m=None, approximate=True, note=note)
    return CostEstimate(usd=trained_tokens / 1_000_000 * hit[1], price_per_1m=hit[1],
                        approximate=False, note=f"published price for {hit[0]!r} ({method})")
