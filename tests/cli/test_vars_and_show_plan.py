"""`--var KEY=VALUE`, typed `${env.X}` end to end, and `ftops show PLANFILE` (issue 9, item 15)."""

from __future__ import annotations

import json

from tests.e2e.conftest import Project


def _seed(p: Project, *args: str) -> int:
    r = p.ftops(*args, "plan", "--offline", "--json")
    assert r.code == 0, r.out + r.err
    return next(m for m in r.json()["models"] if m["name"] == "support-bot")["seed"]


def test_var_overrides_vars_for_every_command(project: Project) -> None:
    project.edit("    seed: 42", "    seed: ${vars.seed}")
    project.config.write_text(project.config.read_text() + "\nvars: {seed: 42}\n")
    assert _seed(project) == 42
    assert _seed(project, "--var", "seed=7") == 7
    r = project.ftops("--var", "sed=7", "validate")
    assert r.code == 1 and "error[config.unknown_variable]" in r.err and "did you mean `seed`?" in r.err
    r = project.ftops("--var", "seed", "validate")
    assert r.code == 1 and "KEY=VALUE" in r.err


def test_env_seed_is_typed(project: Project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project.edit("    seed: 42", "    seed: ${env.FTOPS_TEST_SEED}")
    monkeypatch.setenv("FTOPS_TEST_SEED", "1234")
    assert _seed(project) == 1234


def test_show_prints_a_saved_plan(project: Project) -> None:
    out = project.root / "plan.json"
    assert project.ftops("plan", "--out", str(out)).code == 0
    r = project.ftops("show", str(out))
    assert r.code == 0, r.err
    assert "models.support-bot will be created" in r.out and "state serial 0" in r.out
    assert "Plan: 2 to upload, 2 to create" in r.out
    doc = project.ftops("show", str(out), "--json").json()
    fresh = project.ftops("plan", "--json").json()
    assert doc["summary"] == fresh["summary"] and [m["address"] for m in doc["models"]] == \
        [m["address"] for m in fresh["models"]]


def test_show_refuses_a_file_that_is_not_a_plan(project: Project) -> None:
    bad = project.root / "not-a-plan.json"
    bad.write_text(json.dumps({"hello": 1}))
    r = project.ftops("show", str(bad), "--json")
    assert r.code == 1 and r.json()["diagnostics"][0]["code"] == "plan.invalid"
    r = project.ftops("show", str(project.root / "missing.json"))
    assert r.code == 1 and "error[plan.unreadable]" in r.err
