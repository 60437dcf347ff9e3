"""Base models the Together dialect offers for fine-tuning, with limits and a price table.

Sandbox data, not a mirror of Together's live catalogue: enough to exercise model resolution,
LoRA/full limits, batch sizes and price estimates. Prices are dollars per million trained tokens,
by model size tier, after Together's published fine-tuning price list (LoRA / full, SFT / DPO).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACCOUNT", "TOGETHER_MODELS", "TogetherModel", "resolve_together_model"]

ACCOUNT = "sandbox-user"  # the account name fine-tuned models are created under


@dataclass(frozen=True)
class TogetherModel:
    """A fine-tunable base model; prices are $ per 1M tokens for (LoRA SFT, LoRA DPO, full SFT, full DPO)."""

    id: str
    display_name: str
    created: int
    context_length: int
    params_b: float
    prices: tuple[float, float, float, float]
    full_training: bool = True
    default_rank: int = 64
    max_rank: int = 64
    max_batch_size: int = 32
    max_batch_size_dpo: int = 16
    min_batch_size: int = 8
    tokens_per_second: float = 600.0  # simulated training throughput at time_scale 1

    @property
    def organization(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def short_name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    def price_per_token(self, *, full: bool, dpo: bool) -> float:
        index = (2 if full else 0) + (1 if dpo else 0)
        return self.prices[index] / 1_000_000


_SMALL = (0.48, 1.20, 0.54, 1.35)   # up to 16B
_MEDIUM = (1.50, 3.75, 1.65, 4.12)  # 17B - 69B
_LARGE = (2.90, 7.25, 3.20, 8.00)   # 70B - 100B

TOGETHER_MODELS: tuple[TogetherModel, ...] = (
    TogetherModel("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", "Meta Llama 3.1 8B Instruct Reference",
                  1721692800, 131072, 8, _SMALL),
    TogetherModel("meta-llama/Meta-Llama-3.1-70B-Instruct-Reference", "Meta Llama 3.1 70B Instruct Reference",
                  1721692800, 131072, 70, _LARGE, max_batch_size=16, max_batch_size_dpo=8,
                  tokens_per_second=150.0),
    TogetherModel("meta-llama/Llama-3.2-3B-Instruct", "Meta Llama 3.2 3B Instruct", 1727222400, 131072, 3,
                  _SMALL, tokens_per_second=1200.0),
    TogetherModel("Qwen/Qwen2.5-7B-Instruct", "Qwen 2.5 7B Instruct", 1726531200, 32768, 7, _SMALL),
    TogetherModel("Qwen/Qwen2.5-14B-Instruct", "Qwen 2.5 14B Instruct", 1726531200, 32768, 14, _SMALL,
                  tokens_per_second=400.0),
    TogetherModel("Qwen/Qwen2.5-72B-Instruct", "Qwen 2.5 72B Instruct", 1726531200, 32768, 72, _LARGE,
                  full_training=False, max_batch_size=16, max_batch_size_dpo=8, tokens_per_second=140.0),
    TogetherModel("google/gemma-2-27b-it", "Gemma 2 27B Instruct", 1719446400, 8192, 27, _MEDIUM,
                  max_batch_size=16, max_batch_size_dpo=8, tokens_per_second=300.0),
)

_BY_ID = {m.id: m for m in TOGETHER_MODELS}


def resolve_together_model(name: str) -> TogetherModel | None:
    return _BY_ID.get(name)
