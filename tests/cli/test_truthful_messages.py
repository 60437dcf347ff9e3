"""Messages that say what really happened (issue 9, item 12: the CLI/render part)."""

from __future__ import annotations

from tests.e2e.conftest import Project


def test_after_a_rejected_create_the_next_plan_does_not_claim_an_interruption(project: Project) -> None:
    # retired in 2024: the catalogue lists it, the plan warns (sandbox), the sandbox answers 400
    project.edit("base_model: gpt-4o-mini-2024-07-18", "base_model: gpt-3.5-turbo-0613")
    r = project.ftops("apply", "--auto-approve")
    assert r.code == 1 and "error[provider.bad_request]" in r.err  # an HTTP 400, not an interruption
    for args in (("plan",), ("plan", "--markdown")):
        out = project.ftops(*args).out
        assert "interrupted" not in out, out
        assert "never confirmed" not in out  # a refused write leaves no intent (main cd19cc0)


def test_output_for_an_orphan_says_it_is_no_longer_declared(project: Project) -> None:
    assert project.ftops("apply", "--auto-approve").code == 0
    text = project.config.read_text()
    project.config.write_text(text[: text.index("  support-bot-large:")])
    r = project.ftops("output", "support-bot-large")
    assert r.code == 1 and "not created" not in r.err
    assert "error[output.not_declared]" in r.err and "no longer declared" in r.err
    doc = project.ftops("output", "support-bot-large", "--json").json()
    (d,) = doc["diagnostics"]
    assert d["code"] == "output.not_declared" and "ftjob-" in d["detail"]


def test_output_for_an_unknown_or_uncreated_model(project: Project) -> None:
    r = project.ftops("output", "suport-bot")
    assert r.code == 1 and "error[output.unknown_model]" in r.err and "did you mean `support-bot`?" in r.err
    r = project.ftops("output", "support-bot")
    assert r.code == 1 and "error[output.not_ready]" in r.err and "no job has been created" in r.err
