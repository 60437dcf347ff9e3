"""Issue 2's workflows, end to end against the embedded sandbox (real HTTP through the transport)."""

from __future__ import annotations

import pytest

import json

from tests.e2e.conftest import Project, add_examples


def _summary(p: Project) -> dict[str, int]:
    r = p.ftops("plan", "--json")
    assert r.code == 0, r.err
    return r.json()["summary"]


def _apply(p: Project) -> None:
    r = p.ftops("apply", "--auto-approve")
    assert r.code == 0, r.err


def test_apply_then_plan_has_no_changes(project: Project) -> None:
    r = project.ftops("plan", "--detailed-exitcode")
    assert r.code == 2 and "Plan: 2 to upload, 2 to create, 0 to replace, 0 unchanged." in r.out
    _apply(project)
    assert (project.job_count(), project.file_count()) == (2, 2)
    r = project.ftops("plan", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err
    assert "No changes." in r.out
    _apply(project)  # re-running changes nothing
    assert (project.job_count(), project.file_count()) == (2, 2)


def test_hyperparameter_change_is_one_replace_and_no_upload(project: Project) -> None:
    _apply(project)
    project.edit("n_epochs: 3,", "n_epochs: 4,")
    s = _summary(project)
    assert (s["upload"], s["create"], s["replace"], s["unchanged"]) == (0, 0, 1, 1)
    plan = project.ftops("plan", "--json").json()
    bot = next(m for m in plan["models"] if m["name"] == "support-bot")
    # A replace deletes nothing (the old model stays in history): Terraform-style actions say so.
    assert bot["actions"] == ["create"] and bot["address"] == "models.support-bot"
    assert bot["action_reason"].startswith("replace_because_") and bot["replaces"]["fingerprint"]
    assert bot["replace_paths"] == ["hyperparameters"]
    assert bot["reason"] == "replace_because_hyperparameters_changed"
    assert [(c["path"], c["before"], c["after"]) for c in bot["changes"]] == [("hyperparameters.n_epochs", 3, 4)]
    _apply(project)
    assert project.job_count() == 3 and project.file_count() == 2
    state = json.loads((project.root / ".ftops" / "state.json").read_text())
    assert len(state["models"]["support-bot"]["history"]) == 1  # the old job (and its model) is remembered


def test_dataset_bytes_change_uploads_once_and_replaces_every_user(project: Project) -> None:
    _apply(project)
    add_examples(project.root / "data" / "train.jsonl", 5, offset=0)
    s = _summary(project)
    assert (s["upload"], s["create"], s["replace"]) == (1, 0, 2)
    _apply(project)
    assert project.file_count() == 3 and project.job_count() == 4


def test_new_model_reusing_a_dataset_uploads_nothing(project: Project) -> None:
    _apply(project)
    with project.config.open("a") as f:
        f.write("\n  faq-bot:\n    base_model: gpt-4o-mini-2024-07-18\n    training_file: data/train.jsonl\n"
                "    suffix: faq\n    seed: 7\n")
    s = _summary(project)
    assert (s["upload"], s["create"], s["replace"], s["unchanged"]) == (0, 1, 0, 2)
    _apply(project)
    assert project.file_count() == 2 and project.job_count() == 3


def test_renaming_a_dataset_file_changes_nothing(project: Project) -> None:
    _apply(project)
    (project.root / "data" / "train.jsonl").rename(project.root / "data" / "support-train.jsonl")
    text = project.config.read_text().replace("data/train.jsonl", "data/support-train.jsonl")
    project.config.write_text(text)
    s = _summary(project)
    assert (s["upload"], s["create"], s["replace"]) == (0, 0, 0)


def test_deleting_the_state_file_adopts_every_job_and_creates_none(project: Project) -> None:
    _apply(project)
    for p in (project.root / ".ftops").glob("state.json*"):
        p.unlink()
    r = project.ftops("plan", "--detailed-exitcode")
    assert r.code == 0 and "2 to adopt" in r.out
    _apply(project)
    assert project.job_count() == 2 and project.file_count() == 2
    assert _summary(project)["unchanged"] == 2


def test_apply_without_a_tty_needs_auto_approve_and_sends_nothing(project: Project) -> None:
    r = project.ftops("apply")
    assert r.code == 1 and "apply.needs_approval" in r.err
    assert project.job_count() == 0 and project.file_count() == 0


def test_max_cost_refuses_an_expensive_plan(project: Project) -> None:
    r = project.ftops("apply", "--auto-approve", "--max-cost", "0.01")
    assert r.code == 1 and "apply.over_budget" in r.err
    assert project.job_count() == 0


def test_saved_plan_applies_and_a_stale_one_is_refused(project: Project) -> None:
    saved = project.root / "plan.json"
    assert project.ftops("plan", "--out", str(saved)).code == 0
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    r = project.ftops("apply", str(saved))
    assert r.code == 0, r.err
    assert project.job_count() == 2
    r = project.ftops("apply", str(saved))  # the state moved on: stale
    assert r.code == 1 and "apply.stale_plan" in r.err
    assert project.job_count() == 2


def test_status_output_and_show(project: Project) -> None:
    _apply(project)
    r = project.ftops("status", "--json")
    rows = {row["model"]: row for row in r.json()["models"]}
    assert set(rows) == {"support-bot", "support-bot-large"}
    assert all(row["job_id"].startswith("ftjob-") for row in rows.values())
    r = project.ftops("output", "--json")
    assert set(r.json()) == {"support-bot", "support-bot-large"}
    assert project.ftops("show").code == 0


def test_markdown_plan_for_pull_requests(project: Project) -> None:
    r = project.ftops("plan", "--markdown")
    assert r.code == 0
    assert r.out.startswith("<!-- ftops-plan:quickstart -->\n### ftops plan")
    assert "| `support-bot` | default | create | `create_new_model` |" in r.out


def test_init_creates_a_project_that_plans_and_applies(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    p = Project(tmp_path / "new", capsys)
    r = p.ftops("init", str(p.root))
    assert r.code == 0 and (p.root / ".gitignore").read_text().count(".ftops/") == 1
    assert p.ftops("validate").code == 0
    assert p.ftops("apply", "--auto-approve").code == 0
    assert p.job_count() == 1
    assert p.ftops("init", str(p.root)).code == 1  # never overwrites


def test_subprocess_plan_apply_and_detailed_exitcode(project: Project) -> None:
    r = project.subprocess("plan", "--detailed-exitcode")
    assert r.code == 2, r.err
    r = project.subprocess("apply", "--auto-approve")
    assert r.code == 0, r.err
    r = project.subprocess("plan", "--detailed-exitcode")
    assert r.code == 0 and "No changes" in r.out


def test_plan_json_and_saved_plans_match_the_committed_schema(project: Project) -> None:
    import jsonschema

    from tests.e2e.conftest import REPO

    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    doc = project.ftops("plan", "--json").json()
    jsonschema.validate(doc, schema)
    assert doc["format_version"] == "2.0" and doc["has_changes"] is True
    saved = project.root / "p.json"
    project.ftops("plan", "--out", str(saved))
    jsonschema.validate(json.loads(saved.read_text()), schema)
    bad = dict(doc, models=[dict(doc["models"][0], action="destroy")])
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("the schema accepted an unknown action")


def test_plan_refuses_an_invalid_dataset_before_any_request(project: Project) -> None:
    with (project.root / "data" / "train.jsonl").open("a") as f:
        f.write("\n{not json\n")
    r = project.ftops("plan")
    assert r.code == 1
    assert "data/train.jsonl:61:1: error[dataset.blank_line]" in r.err
    assert "data/train.jsonl:62" in r.err and "Traceback" not in r.err
    assert not (project.root / ".ftops" / "sandbox.db").exists()  # nothing was sent, not even a read


def test_metadata_change_is_recorded_but_never_retrains(project: Project) -> None:
    _apply(project)
    project.edit("metadata: {team: cx}", "metadata: {team: support}")
    plan = project.ftops("plan", "--json").json()
    bot = next(m for m in plan["models"] if m["name"] == "support-bot")
    assert bot["action"] == "no-op" and bot["reason"] == "metadata_changed_not_retrained"
    assert [(c["path"], c["before"], c["after"]) for c in bot["changes"]] == [("metadata.team", "cx", "support")]
    assert plan["has_changes"] is False
    _apply(project)
    assert project.job_count() == 2
    state = json.loads((project.root / ".ftops" / "state.json").read_text())
    assert state["models"]["support-bot"]["spec"]["metadata"] == {"team": "support"}


_COUNT_DATASET_OPENS = """
import sys
opened = []
sys.addaudithook(lambda event, args: opened.append(args[0]) if event == "open" and
                 str(args[0]).endswith(".jsonl") else None)
from ftops.cli import main
try:
    main(["-C", sys.argv[1], "--no-color", "plan"])
except SystemExit:
    pass
print("OPENED", len(opened), file=sys.stderr)
"""


@pytest.mark.needs_tiktoken
def test_warm_plan_reads_no_dataset_bytes(project: Project) -> None:
    import subprocess
    import sys

    def opens() -> int:
        p = subprocess.run([sys.executable, "-c", _COUNT_DATASET_OPENS, str(project.root)],
                           capture_output=True, text=True, timeout=60)
        return int(p.stderr.rsplit("OPENED", 1)[1].split()[0])

    assert opens() > 0  # cold: hashes and validates (training and validation files)
    assert opens() == 0  # warm: stat cache + report cache + cross-check cache
    (project.root / "data" / "val.jsonl").touch()  # new mtime: re-hashed, but bytes unchanged
    assert opens() > 0
    assert opens() == 0


def test_dataset_check_json_reports_line_code_and_stats(project: Project) -> None:
    bad = project.root / "bad.jsonl"
    good = project.root / "data" / "train.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n\n[1, 2]\n')
    r = project.ftops("dataset", "check", str(good), str(bad), "--model", "gpt-4o-mini-2024-07-18", "--json")
    assert r.code == 1
    good_doc, bad_doc = r.json()
    assert good_doc["valid"] is True and good_doc["format"] == "chat" and good_doc["stats"]["examples"] == 60
    assert bad_doc["valid"] is False
    codes = {(e["line"], e["code"]) for e in bad_doc["errors"]}
    assert (2, "blank_line") in codes and (3, "not_an_object") in codes
    r = project.ftops("dataset", "check", str(good))
    assert r.code == 0 and "60 examples" in r.out
