"""Plans that know when models die (issue 12): dates from capabilities and the catalogue, one clock
(FTOPS_TODAY), refusals only for exact ends on real providers or when the sandbox rehearses them."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Project

TOGETHER_BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"


def _warnings(doc: dict, code: str) -> list[dict]:
    return [w for w in doc["warnings"] if w["code"] == code]


def test_plan_warns_with_days_left_and_json_carries_the_dates(project: Project,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_TODAY", "2026-12-01")
    text = project.ftops("plan")
    assert text.code == 0
    assert "base model gpt-4o-mini-2024-07-18 retires on 2027-01-14 (44 days)" in text.out
    assert "accepts new fine-tuning jobs until 2027-01-06 (36 days)" in text.out
    doc = project.ftops("plan", "--json").json()
    (bot,) = [m for m in doc["models"] if m["name"] == "support-bot"]
    kinds = {d["kind"]: d for d in bot["deadlines"]}
    assert kinds["base_model_retires"]["date"] == "2027-01-14" and kinds["base_model_retires"]["days"] == 44
    assert kinds["new_jobs_end"]["date"] == "2027-01-06" and kinds["new_jobs_end"]["exact"] is True
    assert all(d["source"] for d in bot["deadlines"])
    (w,) = [w for w in _warnings(doc, "plan.base_model_retires") if w["model"] == "support-bot"]
    assert w["date"] == "2027-01-14" and w["days"] == 44


def test_after_the_cutoff_the_sandbox_only_warns_so_the_readme_keeps_working(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer running the quickstart on 2027-02-01 succeeds; the plan says what the real provider would do."""
    monkeypatch.setenv("FTOPS_TODAY", "2027-02-01")
    plan = project.ftops("plan")
    assert plan.code == 0 and "warning[plan.cutoff_passed]" in plan.err and "rehearse_cutoffs" in plan.err
    assert project.ftops("apply", "--auto-approve").code == 0
    assert project.job_count() == 2


def test_rehearsed_cutoff_refuses_with_the_hint_and_moving_the_model_plans_a_replace(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.ftops("apply", "--auto-approve").code == 0  # trained before the cut-off
    monkeypatch.setenv("FTOPS_TODAY", "2027-01-10")
    project.edit("  time_scale: 600", "  time_scale: 600\n  rehearse_cutoffs: true")
    assert project.ftops("plan", "--detailed-exitcode").code == 0  # nothing to create: no refusal
    status = project.ftops("status", "--json").json()
    ends = {r["model"]: r for r in status["models"]}
    assert ends["support-bot"]["stops_working_on"] == "2027-01-14" and ends["support-bot"]["days_left"] == 4
    assert ends["support-bot"]["status"] and set(ends["support-bot"]) >= {"model", "status"}

    project.edit("n_epochs: 3,", "n_epochs: 4,")
    r = project.ftops("plan")
    assert r.code == 1 and "error[plan.cutoff_passed]" in r.err and "2027-01-06" in r.err
    assert "set `provider:` on models.support-bot" in r.err
    assert project.job_count() == 2

    # Move it: Together plans a replace (a new provider means a new fingerprint), and nothing is refused.
    text = project.config.read_text()
    text = text.replace("models:\n", "providers:\n  together: {type: together, sandbox: true}\nmodels:\n", 1)
    text = text.replace("    base_model: gpt-4o-mini-2024-07-18\n",
                        f"    provider: together\n    base_model: {TOGETHER_BASE}\n", 1)
    text = text.replace("n_epochs: 4, batch_size: auto, learning_rate_multiplier: 2", "n_epochs: 3", 1)
    text = text.replace("    metadata: {team: cx}\n\n", "\n", 1)
    project.config.write_text(text)
    doc = project.ftops("plan", "--json")
    assert doc.code == 0, doc.err
    (bot,) = [m for m in doc.json()["models"] if m["name"] == "support-bot"]
    assert bot["action"] == "replace" and bot["provider"] == "together"
    # the old fine-tuned model, still current in state, is shown with the day it stops working
    assert any(d["kind"] == "fine_tuned_model_stops" and d["date"] == "2027-01-14" for d in bot["deadlines"])


def test_a_base_model_typo_is_refused_at_plan_before_any_upload(project: Project) -> None:
    project.edit("base_model: gpt-4o-mini-2024-07-18", "base_model: gpt-4o-mni-2024-07-18")
    r = project.ftops("apply", "--auto-approve")
    assert r.code == 1 and "error[provider.unknown_base_model]" in r.err
    assert "did you mean `gpt-4o-mini-2024-07-18`?" in r.err and "ftops.yaml:14" in r.err
    assert project.file_count() == 0 and project.job_count() == 0
    # offline: against the capabilities' list, as a warning
    v = project.ftops("validate")
    assert "warning[provider.unknown_base_model]" in v.err and "did you mean" in v.err
    off = project.ftops("plan", "--offline")
    assert off.code == 0 and "warning[provider.unknown_base_model]" in off.err


def test_status_sorts_soonest_end_first(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.edit("base_model: gpt-4.1-mini-2025-04-14", "base_model: gpt-4.1-nano-2025-04-14")
    assert project.ftops("apply", "--auto-approve").code == 0
    monkeypatch.setenv("FTOPS_TODAY", "2026-10-01")
    text = project.ftops("status").out
    out = text.splitlines()
    assert out[0].split()[0] == "MODEL"
    # Soonest end first, in the table and in the dates below it.
    assert out[1].startswith("support-bot-large") and out[2].startswith("support-bot ")
    assert "support-bot-large: stops working on 2026-10-23 (in 22 days)" in text
    assert "support-bot: stops working on 2027-01-14 (in 105 days)" in text
    assert text.index("support-bot-large: stops") < text.index("support-bot: stops")
    doc = project.ftops("status", "--json").json()
    assert [r["model"] for r in doc["models"]] == ["support-bot", "support-bot-large"]  # JSON keeps its order
    assert doc["models"][1]["days_left"] == 22


def test_bad_ftops_today_is_a_diagnostic(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_TODAY", "tomorrow")
    r = project.ftops("plan")
    assert r.code == 1 and "error[config.bad_today]" in r.err


def test_only_the_providers_own_endpoint_is_bound_by_its_dates(project: Project) -> None:
    """A job after an exact cut-off is refused on OpenAI itself; a compatible server at another base_url
    (or the sandbox, unless rehearsing) only warns."""
    from ftops.workspace import Workspace

    project.edit("provider:\n  type: sandbox\n  time_scale: 600",
                 "provider:\n  type: openai\nproviders:\n  compat: {type: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
                 "  rehearsal: {type: openai, sandbox: true, rehearse_cutoffs: true}")
    ws = Workspace(project.root, environ={"OPENAI_API_KEY": "sk-x"})
    entries = ws.loaded.config.provider_entries()
    caps = ws.provider_capabilities(every=True)
    assert ws._lenient(entries["default"], caps["default"]) == ""
    assert ws._lenient(entries["rehearsal"], caps["rehearsal"]) == ""
    assert "127.0.0.1:9" in ws._lenient(entries["compat"], caps["compat"])
    assert "not the provider's own" in Workspace(project.root, environ={
        "OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://proxy/v1"})._lenient(entries["default"], caps["default"])
