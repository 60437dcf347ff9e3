"""Fireworks AI end to end on the sandbox (`examples/fireworks`, `sandbox: true`): the CLI in process
and as subprocesses; the state of the world is read from the sandbox's own database."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftops.sandbox.dialects.fireworks import FireworksDialect
from ftops.sandbox.faults import LostResponse
from tests.e2e.conftest import REPO, Project

pytestmark = pytest.mark.needs_tiktoken
EXAMPLE = REPO / "examples" / "fireworks"


@pytest.fixture
def fw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Project]:
    root = tmp_path / "fw"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".ftops"))
    yield Project(root, capsys)


def _jobs(p: Project) -> list[tuple[Any, ...]]:
    return p.remote("select id, status from jobs where dialect = 'fireworks' order by seq")


def _datasets(p: Project) -> int:
    return int(p.remote("select count(*) from files where dialect = 'fireworks' and deleted = 0")[0][0])


def test_example_applies_then_plans_no_changes(fw: Project) -> None:
    r = fw.ftops("apply", "--auto-approve")
    assert r.code == 0, r.err
    assert len(_jobs(fw)) == 2 and _datasets(fw) == 2
    assert fw.ftops("plan", "--detailed-exitcode").code == 0


def test_hyperparameter_edit_is_one_replace_and_no_upload(fw: Project) -> None:
    assert fw.ftops("apply", "--auto-approve").code == 0
    fw.edit("hyperparameters: {n_epochs: 2}", "hyperparameters: {n_epochs: 3}")
    plan = fw.ftops("plan", "--json").json()
    assert (plan["summary"]["replace"], plan["summary"]["upload"], plan["summary"]["create"]) == (1, 0, 0)
    assert fw.ftops("apply", "--auto-approve").code == 0
    assert len(_jobs(fw)) == 3 and _datasets(fw) == 2


def test_dataset_edit_is_one_upload(fw: Project) -> None:
    assert fw.ftops("apply", "--auto-approve").code == 0
    data = fw.root / "data" / "support.jsonl"
    data.write_text(data.read_text() + data.read_text().splitlines()[0].replace("refund", "refunds") + "\n")
    plan = fw.ftops("plan", "--json").json()
    assert (plan["summary"]["upload"], plan["summary"]["replace"]) == (1, 1)
    assert fw.ftops("apply", "--auto-approve").code == 0
    assert _datasets(fw) == 3


def test_lost_state_adopts_by_id_and_creates_nothing(fw: Project) -> None:
    assert fw.ftops("apply", "--auto-approve").code == 0
    for f in (fw.root / ".ftops").glob("state.json*"):
        f.unlink()
    plan = fw.ftops("plan", "--json").json()
    assert plan["summary"]["adopt"] == 2 and plan["summary"]["create"] == 0 and plan["summary"]["upload"] == 0
    assert fw.ftops("apply", "--auto-approve").code == 0
    assert len(_jobs(fw)) == 2 and _datasets(fw) == 2
    assert fw.ftops("plan", "--detailed-exitcode").code == 0


def test_lost_response_on_job_create_meets_409_and_adopts(fw: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    original = FireworksDialect._jobs
    lost: list[str] = []

    def losing(self: FireworksDialect, request: Any, account: str, collection: str) -> Any:
        response = original(self, request, account, collection)
        if request.method == "POST" and not lost:
            lost.append(collection)  # the job was created and committed; its answer never arrives
            raise LostResponse("dropped")
        return response

    monkeypatch.setattr(FireworksDialect, "_jobs", losing)
    text = fw.config.read_text()
    fw.config.write_text(text[:text.index("  polite-bot:")])  # one model only: support-bot
    r = fw.ftops("apply", "--auto-approve")
    assert r.code == 0, r.err
    assert lost == ["supervisedFineTuningJobs"]
    assert len(_jobs(fw)) == 1  # the retry met 409 ALREADY_EXISTS and adopted: exactly one job
    assert "1 uploaded, 0 created" in r.out  # an adoption, not a creation
    assert fw.ftops("plan", "--detailed-exitcode").code == 0


def test_two_concurrent_applies_with_separate_state_make_one_of_each(tmp_path: Path) -> None:
    db = tmp_path / "shared-sandbox.db"
    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".ftops"))
        cfg = root / "ftops.yaml"
        cfg.write_text(cfg.read_text().replace("  sandbox: true\n", f"  sandbox: true\n  db: {db}\n")
                       .replace("version: 1\n", "version: 1\nallow_external_paths: true\n"))
        roots.append(root)
    procs = [subprocess.Popen([sys.executable, "-m", "ftops.cli", "-C", str(r), "--no-color", "apply",
                               "--auto-approve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for r in roots]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    import sqlite3

    with sqlite3.connect(db) as conn:
        jobs = conn.execute("select id from jobs where dialect = 'fireworks'").fetchall()
        datasets = conn.execute("select id from files where dialect = 'fireworks' and deleted = 0").fetchall()
    assert len(jobs) == 2 and len(datasets) == 2


def _deployments(p: Project) -> list[tuple[Any, ...]]:
    return p.remote("select name, data from resources where kind = 'deployment'")


def test_deployment_after_success_survives_replan_kept_on_replace_deleted_only_by_prune(
        fw: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_SANDBOX_TIME_SCALE", "1000000")  # jobs and deployments finish between two runs
    first = fw.ftops("plan", "--json").json()
    (dep,) = first["deployments"]
    assert (dep["address"], dep["action"], dep["reason"]) == ("models.support-bot.deployment", "wait",
                                                              "waits_for_job")
    assert fw.ftops("apply", "--auto-approve").code == 0
    assert _deployments(fw) == []  # the job had not succeeded when apply got there
    plan = fw.ftops("plan", "--json").json()
    (dep,) = plan["deployments"]
    assert dep["action"] == "create" and dep["cost_per_hour"] == 3.89 and plan["has_changes"]
    assert fw.ftops("apply", "--auto-approve").code == 0
    assert len(_deployments(fw)) == 1
    assert fw.ftops("plan", "--detailed-exitcode").code == 0
    out = fw.ftops("output", "support-bot").out.strip()
    assert out.startswith("accounts/sandbox/models/support-") and "#accounts/sandbox/deployments/dep-" in out
    doc = fw.ftops("output", "--json").json()
    assert doc["support-bot"]["endpoint"] == out and doc["support-bot"]["pending_job"] is None
    assert doc["polite-bot"]["endpoint"] == doc["polite-bot"]["fine_tuned_model"]
    assert "deployment accounts/sandbox/deployments/dep-" in fw.ftops("status").out

    fw.edit("max_replicas: 1}", "max_replicas: 2}")  # a settings change updates it in place
    plan = fw.ftops("plan", "--json").json()
    assert [d["action"] for d in plan["deployments"]] == ["update"]
    assert fw.ftops("apply", "--auto-approve").code == 0
    assert len(_deployments(fw)) == 1 and '"maxReplicaCount": 2' in _deployments(fw)[0][1]

    fw.edit("hyperparameters: {n_epochs: 2}", "hyperparameters: {n_epochs: 3}")  # replace: the old one is kept
    assert fw.ftops("apply", "--auto-approve").code == 0
    assert fw.ftops("apply", "--auto-approve").code == 0  # the new job succeeded: its deployment is created
    plan = fw.ftops("plan", "--json").json()
    assert sorted(d["action"] for d in plan["deployments"]) == ["keep", "no-op"]
    assert fw.ftops("plan", "--detailed-exitcode").code == 0
    assert len(fw.ftops("output", "--json").json()["support-bot"]["kept_deployments"]) == 1

    fw.edit("lifecycle: {prevent_destroy: false}", "lifecycle: {prevent_destroy: true}")
    # `--prune` would delete the replaced model's older fine-tuned model: under prevent_destroy the whole
    # plan fails, naming the model (issue 13), and nothing is deleted.
    r = fw.ftops("plan", "--prune", "--json")
    assert r.code == 1 and "plan.prevent_destroy" in r.out and "support-bot" in r.out, r.out
    fw.edit("lifecycle: {prevent_destroy: true}", "lifecycle: {prevent_destroy: false}")
    assert fw.ftops("apply", "--auto-approve", "--prune").code == 0
    live = [r for r in _deployments(fw) if '"deleted_at"' not in r[1]]
    assert len(live) == 1
    assert fw.ftops("plan", "--prune", "--detailed-exitcode").code == 0


def test_deployment_fields_are_validated_with_file_line(fw: Project) -> None:
    fw.edit("min_replicas: 0", "min_replica: 0")
    r = fw.ftops("plan")
    assert r.code == 1 and "ftops.yaml:19:" in r.err and "provider.unknown_option" in r.err and "min_replicas" in r.err
