"""Azure OpenAI deployments through Azure Resource Manager, as the generic `deployment:` resource:
created after the job succeeds, shown by `output`, unchanged on a re-plan, deleted only by `--prune`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Project

AZURE = REPO / "examples" / "azure"


@pytest.fixture
def az(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "az"
    shutil.copytree(AZURE, root, ignore=shutil.ignore_patterns(".ftops"))
    p = Project(root, capsys)
    p.edit("  training_type: global_standard", "  subscription_id: sub-1\n  resource_group: rg-1\n  account: aoai-1\n"
                                               "  training_type: global_standard")
    p.edit("    metadata: {team: cx}\n", "    metadata: {team: cx}\n    deployment: {sku: standard, capacity: 1}\n")
    return p


def test_deployment_created_after_success_shown_by_output_and_deleted_only_by_prune(az: Project) -> None:
    assert az.ftops("apply", "--auto-approve").code == 0
    plan = az.ftops("plan", "--json").json()
    waiting = [d for d in plan["deployments"] if d["name"] == "support-bot"]
    assert waiting and waiting[0]["action"] in ("wait", "create")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        plan = az.ftops("plan", "--json").json()
        if any(d["action"] == "create" for d in plan["deployments"]):
            break
        time.sleep(0.5)
    assert az.ftops("apply", "--auto-approve").code == 0
    out = az.ftops("output", "--json").json()["support-bot"]
    assert out["deployment"] and out["endpoint"] == out["deployment"]
    assert az.ftops("output", "support-bot").out.strip() == out["deployment"]
    assert az.ftops("plan", "--detailed-exitcode").code == 0
    # Removing the block keeps the deployment (apps may call it) until --prune.
    az.edit("    deployment: {sku: standard, capacity: 1}\n", "")
    assert az.ftops("plan", "--detailed-exitcode").code == 0
    pruned = az.ftops("plan", "--prune", "--json").json()
    assert [d["action"] for d in pruned["deployments"]] == ["delete"]
    assert az.ftops("apply", "--auto-approve", "--prune").code == 0
    state = json.loads((az.root / ".ftops" / "state.json").read_text())
    assert not [d for d in state.get("deployments", {}).values() if d.get("model") == "support-bot"]
