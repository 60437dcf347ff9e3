"""Chains (issue 13): `base_model: ${models.NAME.fine_tuned_model}` trains in order on the sandbox."""

from __future__ import annotations

import json

from tests.e2e.conftest import Project

STAGE2 = """
  stage2:
    base_model: ${models.support-bot.fine_tuned_model}
    training_file: data/val.jsonl
    hyperparameters: {n_epochs: 1}
"""


def _state(p: Project) -> dict:  # type: ignore[type-arg]
    return json.loads((p.root / ".ftops" / "state.json").read_text())


def _stage2_row(plan: dict) -> dict:  # type: ignore[type-arg]
    return next(m for m in plan["models"] if m["name"] == "stage2")


def test_a_two_stage_chain_waits_then_trains_in_order(project: Project) -> None:
    project.config.write_text(project.config.read_text() + STAGE2)
    plan = project.ftops("plan", "--json", "--target", "support-bot", "--target", "stage2").json()
    names = [m["name"] for m in plan["models"]]
    assert names.index("support-bot") < names.index("stage2")
    row = _stage2_row(plan)
    assert (row["action"], row["waits_for"], row["after_unknown"]) == ("create", "support-bot", {"base_model": True})
    text = project.ftops("plan", "--target", "support-bot", "--target", "stage2").out
    assert "base_model = (known after apply)" in text

    r = project.ftops("apply", "--auto-approve", "--target", "support-bot", "--target", "stage2")
    assert r.code == 0, r.err
    assert "models.stage2 waits for models.support-bot" in r.out
    assert "stage2" not in _state(project)["models"] and project.job_count() == 1  # nothing created for it

    r = project.ftops("apply", "--auto-approve", "--wait", "--interval", "0.05", "--target", "support-bot",
                      "--target", "stage2")
    assert r.code == 0, r.out + r.err
    st = _state(project)["models"]
    up, down = st["support-bot"]["job"], st["stage2"]["job"]
    assert up["state"] == down["state"] == "succeeded"
    (model, created), = project.remote(f"select model, created_at from jobs "
                                       f"where id = '{down['job_id']}'") or [(None, None)]
    assert model == up["fine_tuned_model"]  # trained from the upstream's fine-tuned model
    assert created >= up["finished_at"]
    assert project.ftops("plan", "--detailed-exitcode", "--target", "support-bot", "--target", "stage2").code == 0
    targeted = project.ftops("plan", "--json", "--target", "stage2").json()  # and what it depends on
    assert sorted(m["name"] for m in targeted["models"]) == ["stage2", "support-bot"]

    # A replaced upstream replaces its dependent, which waits for the new upstream job.
    project.edit("n_epochs: 3,", "n_epochs: 2,")
    plan = project.ftops("plan", "--json", "--target", "support-bot", "--target", "stage2").json()
    acts = {m["name"]: m["action"] for m in plan["models"]}
    assert acts == {"support-bot": "replace", "stage2": "replace"}
    assert _stage2_row(plan)["waits_for"] == "support-bot"
