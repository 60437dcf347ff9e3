"""Base models the sandbox offers for fine-tuning, with their aliases, methods and shutdown dates.

This is sandbox data, not a mirror of OpenAI's live catalogue: it is enough to exercise
snapshot resolution, method support and the rejection of retired models. It carries the real
announced shutdown dates (OpenAI's Deprecations page: gpt-4o, gpt-4o-mini, gpt-4.1, gpt-4.1-mini
and their fine-tunes on 2027-01-14; gpt-4.1-nano, o4-mini and gpt-3.5-turbo on 2026-10-23) and its
end of self-serve fine-tuning (`NEW_JOBS_UNTIL`), but enforces those announced dates only when
`SandboxSettings.enforce_cutoffs` rehearses them, so the sandbox stays usable after them. Dates
already past when ftops was written (`rehearsal=False`) are always enforced.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

__all__ = ["BASE_MODELS", "NEW_JOBS_UNTIL", "BaseModel", "resolve_base_model"]

_CLOSING = "2027-01-14"  # OpenAI Deprecations page, self-serve fine-tuning update (2026-05-07)
_LEGACY = "2026-10-23"  # OpenAI Deprecations page, legacy GPT model snapshots (2026-04-22)
NEW_JOBS_UNTIL = "2027-01-06"  # OpenAI accepts no new fine-tuning jobs after this day
SOURCE = "OpenAI Deprecations page (platform.openai.com/docs/deprecations)"


@dataclass(frozen=True)
class BaseModel:
    """A fine-tunable snapshot: `aliases` resolve to it, `methods` lists the supported method types."""

    id: str
    created: int
    owned_by: str
    shutdown_date: str | None
    methods: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    tokens_per_second: float = 400.0  # simulated training throughput at time_scale 1
    rehearsal: bool = True  # an announced date: enforced only when the settings rehearse cut-offs

    def is_retired(self, today: _dt.date, enforce_cutoffs: bool = True) -> bool:
        if self.shutdown_date is None or (self.rehearsal and not enforce_cutoffs):
            return False
        return _dt.date.fromisoformat(self.shutdown_date) <= today


_SFT_DPO = ("supervised", "dpo")

BASE_MODELS: tuple[BaseModel, ...] = (
    BaseModel("gpt-4.1-2025-04-14", 1744316542, "system", _CLOSING, _SFT_DPO, ("gpt-4.1",), 250.0),
    BaseModel("gpt-4.1-mini-2025-04-14", 1744317547, "system", _CLOSING, _SFT_DPO, ("gpt-4.1-mini",), 500.0),
    BaseModel("gpt-4.1-nano-2025-04-14", 1744321025, "system", _LEGACY, _SFT_DPO, ("gpt-4.1-nano",), 800.0),
    BaseModel("gpt-4o-2024-08-06", 1722814719, "system", _CLOSING, _SFT_DPO, ("gpt-4o",), 250.0),
    BaseModel("gpt-4o-mini-2024-07-18", 1721172717, "system", _CLOSING, _SFT_DPO, ("gpt-4o-mini",), 500.0),
    BaseModel("gpt-3.5-turbo-0125", 1706048358, "system", _LEGACY, ("supervised",), ("gpt-3.5-turbo",), 600.0),
    BaseModel("gpt-3.5-turbo-1106", 1698959748, "system", _LEGACY, ("supervised",), (), 600.0),
    BaseModel("o4-mini-2025-04-16", 1744133506, "system", _LEGACY, ("reinforcement",), ("o4-mini",), 150.0),
    BaseModel("gpt-3.5-turbo-0613", 1686587434, "openai", "2024-09-13", ("supervised",), (), 600.0, False),
    BaseModel("babbage-002", 1692634615, "system", "2024-10-28", ("supervised",), (), 1000.0, False),
    BaseModel("davinci-002", 1692634301, "system", "2024-10-28", ("supervised",), (), 800.0, False),
)

_BY_NAME: dict[str, BaseModel] = {}
for _m in BASE_MODELS:
    _BY_NAME[_m.id] = _m
    for _alias in _m.aliases:
        _BY_NAME[_alias] = _m


def resolve_base_model(name: str) -> BaseModel | None:
    """The snapshot a model name or alias refers to, or None when the sandbox does not know it."""
    return _BY_NAME.get(name)
