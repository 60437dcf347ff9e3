"""examples/azure on the embedded sandbox (Azure's dialect): plan, apply, no changes, the training type
refused when missing, the BOM on the wire, deployments through ARM, and Azure's "no earlier than" dates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ftops.providers import Identity
from ftops.workspace import Workspace
from tests.e2e.conftest import REPO, Project


@pytest.fixture
def azure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "azure"
    shutil.copytree(REPO / "examples" / "azure", root, ignore=shutil.ignore_patterns(".ftops"))
    return Project(root, capsys)


def test_example_applies_and_replans_to_no_changes(azure: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_TODAY", "2027-02-01")  # after OpenAI's cut-off: Azure still trains
    plan = azure.ftops("plan", "--json")
    assert plan.code == 0, plan.err
    doc = plan.json()
    assert {m["action"] for m in doc["models"]} == {"create"}
    bodies = {m["name"]: m["body"] for m in doc["models"]}
    assert bodies["support-bot"]["trainingType"] == "globalstandard"
    assert bodies["support-bot-dev"]["trainingType"] == "developer"
    (bot,) = [m for m in doc["models"] if m["name"] == "support-bot"]
    ends = {d["kind"]: d for d in bot["deadlines"]}
    assert ends["new_jobs_end"]["date"] == "2027-04-01" and ends["new_jobs_end"]["exact"] is False
    assert azure.ftops("apply", "--auto-approve").code == 0
    assert azure.file_count() == 2 and azure.job_count() == 2
    # the BOM went out on the wire (the dialect records it; the local file has none)
    extras = [json.loads(e) for (e,) in azure.remote("select extra from files where dialect = 'azure'")]
    assert all(e == {"bom": True} for e in extras)
    assert azure.ftops("plan", "--detailed-exitcode").code == 0


def test_missing_training_type_is_refused_at_plan_with_the_fix(azure: Project) -> None:
    azure.edit("  training_type: global_standard", "")
    azure.edit("    options: {training_type: developer}", "")
    r = azure.ftops("plan")
    assert r.code == 1 and "error[provider.missing_field]" in r.err and "training_type: global_standard" in r.err
    assert not (azure.root / ".ftops" / "sandbox.db").exists() or azure.job_count() == 0


def test_deployment_through_arm(azure: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_SANDBOX_TIME_SCALE", "100000")
    assert azure.ftops("apply", "--auto-approve").code == 0
    out = azure.ftops("output", "--json")
    ws = Workspace(azure.root)
    try:
        state = ws.load_state()
        ws.snapshot(state)
        prov = ws.provider()
        job = prov.get_job(state.models["support-bot"].job.job_id)  # type: ignore[union-attr]
        assert job.fine_tuned_model, out.out
        rec = state.models["support-bot"]
        identity = Identity(project=ws.project, model="support-bot", fingerprint=rec.fingerprint)
        settings = {"sku": "standard", "capacity": 1}
        made = prov.create_deployment("support-bot", job.fine_tuned_model, settings, identity)  # type: ignore[attr-defined]
        assert made.model == job.fine_tuned_model and made.ready and made.settings == settings
        again = prov.create_deployment("support-bot", job.fine_tuned_model, settings, identity)  # type: ignore[attr-defined]
        assert again == made  # a repeated PUT changes nothing
        (listed,) = prov.list_deployments(ws.project)  # type: ignore[attr-defined]
        assert listed.id == "support-bot" and listed.key == made.key != ""
        moved = prov.update_deployment("support-bot", job.fine_tuned_model, {"sku": "developer", "capacity": 2})  # type: ignore[attr-defined]
        assert moved.settings == {"sku": "developer", "capacity": 2} and moved.key == made.key
        prov.delete_deployment("support-bot")  # type: ignore[attr-defined]
        assert prov.list_deployments(ws.project) == []  # type: ignore[attr-defined]
    finally:
        ws.close()
