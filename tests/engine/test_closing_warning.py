"""The plan warns about OpenAI's end of self-serve fine-tuning only when it matters."""

from __future__ import annotations

import datetime

from ftops.engine.model import ModelAction, ModelChange, Plan, PlanSummary, ProviderInfo
from ftops.workspace import openai_closing_warning


def _plan(endpoint: str, creates: int) -> Plan:
    models = [ModelChange(name=f"m{i}", action=ModelAction.CREATE, reason="create_new_model") for i in range(creates)]
    return Plan(project="p", provider="openai", endpoint=endpoint, state_lineage="l", state_serial=0,
                providers={"default": ProviderInfo(type="openai", endpoint=endpoint)}, models=models,
                summary=PlanSummary(create=creates))


def test_warns_before_and_after_the_closing_date_when_jobs_would_be_created() -> None:
    before = openai_closing_warning(_plan("https://api.openai.com/v1", 1), datetime.date(2026, 11, 25))
    assert before and before["code"] == "plan.provider_closing" and "in 42 day(s)" in before["summary"]
    after = openai_closing_warning(_plan("https://api.openai.com/v1", 1), datetime.date(2027, 2, 1))
    assert after and "refused" in after["summary"]


def test_silent_without_creations_or_for_other_endpoints() -> None:
    today = datetime.date(2026, 11, 25)
    assert openai_closing_warning(_plan("https://api.openai.com/v1", 0), today) is None
    assert openai_closing_warning(_plan("https://x.openai.azure.com/openai/v1", 3), today) is None
    assert openai_closing_warning(_plan("http://sandbox.local/v1", 3), today) is None
