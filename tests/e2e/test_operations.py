"""Issue 13: operating declared models by name, end to end on the sandbox (time-scaled)."""

from __future__ import annotations

import json

from tests.e2e.conftest import Project


def _state(p: Project) -> dict:  # type: ignore[type-arg]
    return json.loads((p.root / ".ftops" / "state.json").read_text())


def test_apply_wait_streams_until_the_jobs_end_then_status_events_checkpoints(project: Project) -> None:
    r = project.ftops("apply", "--auto-approve", "--wait", "--interval", "0.05")
    assert r.code == 0, r.err
    assert "support-bot: succeeded" in r.out and "support-bot-large: succeeded" in r.out
    serial = _state(project)["serial"]
    doc = project.ftops("status", "--json").json()
    rows = {row["model"]: row for row in doc["models"]}
    bot = rows["support-bot"]
    assert bot["status"] == "succeeded" and bot["fine_tuned_model"].startswith("ft:")
    assert bot["step"] == bot["total_steps"] > 0 and bot["train_loss"] > 0 and bot["valid_loss"] > 0
    assert project.ftops("status", "support-bot").code == 0
    assert project.ftops("status", "suport-bot").code == 1
    assert _state(project)["serial"] == serial  # status never writes the state
    ev = project.ftops("events", "support-bot", "--limit", "3", "--json").json()
    assert len(ev["events"]) == 3 and ev["events"][-1]["message"]
    every = project.ftops("events", "support-bot", "--json").json()["events"]
    assert len(every) > 3 and [e["id"] for e in every[-3:]] == [e["id"] for e in ev["events"]]
    cp = project.ftops("checkpoints", "support-bot", "--json").json()
    assert [c["step"] for c in cp["checkpoints"]] == sorted(c["step"] for c in cp["checkpoints"])
    assert cp["checkpoints"] and all("train_loss" in c["metrics"] for c in cp["checkpoints"])
    assert cp["metrics"][-1]["step"] == bot["total_steps"]
    text = project.ftops("checkpoints", "support-bot").out
    assert "loss  (* train o valid)" in text


def test_status_watch_without_a_terminal_prints_one_line_per_change_and_ends(project: Project) -> None:
    assert project.ftops("apply", "--auto-approve").code == 0
    r = project.ftops("status", "--watch", "--interval", "0.05")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[-1].endswith(")") or "succeeded" in r.out
    assert len(lines) == len(set(lines))  # one line per change, never a repeat
    assert sum("succeeded" in line for line in lines) == 2


def _failing_dataset(p: Project) -> None:
    """A training file the sandbox refuses after the job is created: a deliberate fake key that
    ftops.yaml accepts (`allow_secrets`) and the provider's own check does not."""
    rows = [{"messages": [{"role": "user", "content": f"question {i}"},
                          {"role": "assistant", "content": "use sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"}]}
            for i in range(12)]
    bad = p.root / "data" / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = p.ftops("dataset", "check", str(bad), "--json").json()
    ids = sorted({e["message"].rsplit(", ", 1)[1].rstrip(")") for e in found[0]["errors"]
                  if e["code"] == "sensitive_api_key"})
    assert len(ids) == 1
    text = p.config.read_text().replace("training_file: data/train.jsonl\n    validation_file: data/val.jsonl\n"
                                        "    method: supervised", "training_file: data/bad.jsonl\n    method: supervised")
    p.config.write_text(text + f"allow_secrets: {json.dumps(ids)}\n")


def test_apply_wait_fails_with_the_providers_error(project: Project) -> None:
    _failing_dataset(project)
    r = project.ftops("apply", "--auto-approve", "--wait", "--interval", "0.05", "--target", "support-bot")
    assert r.code == 1 and "error[apply.job_failed]" in r.err, r.out + r.err
    assert "invalid training file" in r.err
    assert project.job_count() == 1


def test_cancel_then_plan_retries_and_replace_makes_one_new_job_with_the_same_seed(project: Project) -> None:
    project.edit("time_scale: 600", "time_scale: 1")
    assert project.ftops("apply", "--auto-approve").code == 0
    r = project.ftops("cancel", "support-bot")
    assert r.code == 0 and "cancelled" in r.out, r.err
    assert _state(project)["models"]["support-bot"]["job"]["cancelled_by_ftops"] is True
    plan = project.ftops("plan", "--json").json()
    bot = next(m for m in plan["models"] if m["name"] == "support-bot")
    assert bot["action"] == "retry" and bot["reason"] == "retry_because_job_cancelled"
    r = project.ftops("pause", "support-bot")  # a cancelled job cannot be paused: the provider says why
    assert r.code == 1 and "error[" in r.err
    before = project.job_count()
    r = project.ftops("apply", "--auto-approve", "--replace", "support-bot-large")
    assert r.code == 0, r.err
    # the retry of support-bot and the requested retrain of support-bot-large: one new job each
    assert project.job_count() == before + 2
    seeds = project.remote("select seed from jobs where metadata like '%support-bot-large\"%' order by created_at")
    assert len(seeds) == 2 and seeds[0] == seeds[1]
    large = _state(project)["models"]["support-bot-large"]
    assert len(large["history"]) == 1 and large["attempt"] == 2


def test_target_limits_plan_and_apply(project: Project) -> None:
    plan = project.ftops("plan", "--json", "--target", "support-bot").json()
    assert [m["name"] for m in plan["models"]] == ["support-bot"]
    assert plan["summary"]["create"] == 1 and plan["summary"]["orphan"] == 0
    assert project.ftops("apply", "--auto-approve", "--target", "support-bot").code == 0
    assert project.job_count() == 1
    r = project.ftops("plan", "--target", "nope")
    assert r.code == 1 and "error[model.unknown]" in r.err


def test_read_commands_never_write_and_refresh_records(project: Project) -> None:
    assert project.ftops("apply", "--auto-approve").code == 0
    serial = _state(project)["serial"]
    for args in (("status",), ("output",), ("show",), ("output", "--json")):
        project.ftops(*args)
    assert _state(project)["serial"] == serial
    r = project.ftops("refresh", "--json")
    assert r.code == 0 and r.json()["changed"] is True
    assert _state(project)["serial"] == serial + 1


def test_output_keeps_the_last_succeeded_model_during_a_retrain(project: Project) -> None:
    assert project.ftops("apply", "--auto-approve", "--wait", "--interval", "0.05").code == 0
    old = project.ftops("output", "support-bot").out.strip()
    assert old.startswith("ft:")
    project.edit("time_scale: 600", "time_scale: 1")
    project.edit("n_epochs: 3,", "n_epochs: 4,")
    assert project.ftops("apply", "--auto-approve").code == 0
    r = project.ftops("output", "support-bot")
    assert r.code == 0 and r.out.strip() == old and "newer job" in r.err
    doc = project.ftops("output", "--json").json()
    assert doc["support-bot"]["fine_tuned_model"] == old and doc["support-bot"]["pending_job"]["job_id"]
    assert doc["support-bot-large"]["pending_job"] is None


TESTS_YAML = """    tests:
      - messages: [{role: user, content: "How do I reset my password?"}]
        expect: {contains: "Reset password"}
      - name: golden
        messages: [{role: user, content: "How do I download an invoice?"}]
        expect: {similar_to_golden: 0.8, not_contains: "password"}
"""


def _add_tests(p: Project, expect: str = "Reset password") -> None:
    text = p.config.read_text().replace('    metadata: {team: cx}\n\n  support-bot-large:',
                                        '    metadata: {team: cx}\n' + TESTS_YAML.replace("Reset password", expect)
                                        + '\n  support-bot-large:', 1)
    p.config.write_text(text)


def test_model_tests_pass_fail_record_and_compare_after_a_retrain_elsewhere(project: Project) -> None:
    _add_tests(project)
    r = project.ftops("test", "support-bot")
    assert r.code == 1 and "error[test.no_model]" in r.err
    assert project.ftops("apply", "--auto-approve", "--wait", "--interval", "0.05").code == 1  # no golden yet
    r = project.ftops("test", "support-bot", "--json")
    doc = r.json()
    assert r.code == 1 and (doc["passed"], doc["failed"]) == (1, 1)
    assert "no golden answer" in doc["results"][1]["failures"][0]
    assert project.ftops("test", "support-bot", "--record").code == 0
    golden = (project.root / "tests" / "golden" / "support-bot.jsonl").read_text().splitlines()
    assert len(golden) == 2 and "PDF" in json.loads(golden[1])["answer"]
    r = project.ftops("test", "support-bot")
    assert r.code == 0 and "Tests: 2 passed, 0 failed." in r.out, r.out + r.err
    # Retrain on another provider (Together's sandbox dialect) and compare with the golden answers.
    text = project.config.read_text().replace(
        "models:\n", "providers:\n  tog: {type: together, sandbox: true}\nmodels:\n", 1).replace(
        "    base_model: gpt-4o-mini-2024-07-18\n", "    provider: tog\n"
        "    base_model: meta-llama/Meta-Llama-3.1-8B-Instruct-Reference\n", 1).replace(
        "    hyperparameters: {n_epochs: 3, batch_size: auto, learning_rate_multiplier: 2}\n", "", 1).replace(
        "    metadata: {team: cx}\n    tests:", "    tests:", 1)
    project.config.write_text(text)
    r = project.ftops("apply", "--auto-approve", "--wait", "--interval", "0.05", "--target", "support-bot")
    assert r.code == 0, r.out + r.err
    assert "Tests: 2 passed, 0 failed." in r.out
    r = project.ftops("test", "--json")
    assert r.code == 0 and r.json()["results"][0]["fine_tuned_model"] != json.loads(golden[0])["fine_tuned_model"]


def test_a_failing_expectation_fails_the_test_command(project: Project) -> None:
    _add_tests(project, expect="no such words")
    assert project.ftops("apply", "--auto-approve", "--wait", "--interval", "0.05", "--target", "support-bot").code == 1
    r = project.ftops("test", "support-bot")
    assert r.code == 1 and "does not contain 'no such words'" in r.out


def _rename(p: Project, old: str, new: str, moved_from: bool) -> None:
    text = p.config.read_text().replace(f"  {old}:\n", f"  {new}:\n" + (f"    moved_from: {old}\n" if moved_from else ""), 1)
    p.config.write_text(text)


def test_a_renamed_model_is_moved_not_retrained(project: Project) -> None:
    assert project.ftops("apply", "--auto-approve").code == 0
    # support-bot-large has no seed: the seed derived from its old name stays with it
    _rename(project, "support-bot-large", "large-bot", moved_from=True)
    plan = project.ftops("plan", "--json").json()
    assert plan["summary"]["create"] == plan["summary"]["replace"] == plan["summary"]["orphan"] == 0
    assert [(m["from_name"], m["to_name"]) for m in plan["moves"]] == [("support-bot-large", "large-bot")]
    assert "models.support-bot-large moves to models.large-bot" in project.ftops("plan").out
    assert project.ftops("apply", "--auto-approve").code == 0
    assert project.job_count() == 2
    assert set(_state(project)["models"]) == {"support-bot", "large-bot"}
    r = project.ftops("plan", "--detailed-exitcode")
    assert r.code == 0 and "No changes." in r.out, r.out
    # without moved_from: the fingerprint matches the orphan's, and the plan proposes the move
    _rename(project, "support-bot", "helpdesk-bot", moved_from=False)
    plan = project.ftops("plan", "--json").json()
    assert [m["reason"] for m in plan["moves"]] == ["move_because_fingerprint_matches_orphan"]
    assert plan["summary"]["create"] == 0
    assert project.ftops("apply", "--auto-approve").code == 0 and project.job_count() == 2


def test_state_list_show_mv_rm(project: Project) -> None:
    assert project.ftops("apply", "--auto-approve").code == 0
    rows = project.ftops("state", "list", "--json").json()["models"]
    assert [r["model"] for r in rows] == ["support-bot", "support-bot-large"]
    assert project.ftops("state", "show", "support-bot").json()["name"] == "support-bot"
    _rename(project, "support-bot", "helpdesk-bot", moved_from=False)
    assert project.ftops("state", "mv", "support-bot", "helpdesk-bot").code == 0
    assert project.ftops("plan", "--detailed-exitcode").code == 0
    assert project.ftops("state", "rm", "helpdesk-bot").code == 0
    plan = project.ftops("plan", "--json").json()  # forgotten, then adopted again: nothing was deleted
    assert [m["action"] for m in plan["models"] if m["name"] == "helpdesk-bot"] == ["adopt"]
    assert plan["summary"]["create"] == plan["summary"]["orphan"] == 0
    assert project.ftops("state", "rm", "nope").code == 1


def test_prune_deletes_exactly_what_it_showed_and_prevent_destroy_blocks(project: Project) -> None:
    assert project.ftops("apply", "--auto-approve", "--wait", "--interval", "0.05").code == 0
    text = project.config.read_text()
    project.config.write_text(text[: text.index("  support-bot-large:")])
    assert project.ftops("plan", "--json").json()["summary"]["orphan"] == 1  # kept; nothing deleted
    plan = project.ftops("plan", "--prune", "--json").json()
    shown = {(k["kind"], k["id"]) for k in plan["deletes"]}
    assert all(k["actions"] == ["delete"] for k in plan["deletes"])
    assert {kind for kind, _ in shown} == {"model"}  # the orphan's model; both files are still used
    assert "support-bot-large" in {k["name"] for k in plan["deletes"]}
    models_before = project.remote("select count(*) from models where deleted = 0")[0][0]
    r = project.ftops("apply", "--auto-approve", "--prune")
    assert r.code == 0, r.err
    assert project.remote("select count(*) from models where deleted = 0")[0][0] == models_before - 1
    assert "support-bot-large" not in _state(project)["models"]
    assert project.ftops("plan", "--prune", "--json").json()["deletes"] == []
    # prevent_destroy: any plan that would delete the model fails, naming it
    project.edit("    seed: 42\n", "    seed: 42\n    lifecycle: {prevent_destroy: true}\n")
    assert project.ftops("apply", "--auto-approve").code == 0
    r = project.ftops("destroy", "--auto-approve")
    assert r.code == 1 and "error[plan.prevent_destroy]" in r.err and "models.support-bot" in r.err
    project.edit("prevent_destroy: true", "prevent_destroy: false")
    r = project.ftops("destroy", "--auto-approve")
    assert r.code == 0, r.err
    assert project.remote("select count(*) from models where deleted = 0 and id like 'ft:%'")[0][0] == 0
    assert project.file_count() == 0 and _state(project)["models"] == {}
