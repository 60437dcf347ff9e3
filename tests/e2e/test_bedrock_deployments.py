"""Amazon Bedrock on-demand deployments (CreateCustomModelDeployment) as the generic `deployment:` resource,
on the sandbox driven through boto3: created once the job succeeded, unchanged on a re-plan, pointed at the
new model (UpdateCustomModelDeployment) after a replace, deleted only by `--prune`, adopted by name after
the state is lost; a lost answer to the
create makes exactly one deployment; a base model AWS does not deploy on demand is refused at plan."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftops.sandbox.dialects.bedrock import BedrockDialect
from ftops.sandbox.faults import LostResponse
from tests.e2e.conftest import REPO, Project

pytest.importorskip("boto3")
EXAMPLE = REPO / "examples" / "bedrock"


@pytest.fixture
def br(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    for var in ("FTOPS_SANDBOX_FAULTS", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FTOPS_SANDBOX_TIME_SCALE", "1000000")  # jobs and deployments finish between two runs
    root = tmp_path / "br"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".ftops"))
    p = Project(root, capsys)
    p.edit("    metadata: {team: cx}\n", "    metadata: {team: cx}\n    deployment: {type: on-demand}\n")
    yield p


def _deployments(p: Project) -> list[dict[str, Any]]:
    """Live deployments in the sandbox's own database."""
    rows = p.remote("select data from resources where dialect = 'bedrock' and kind = 'custom-model-deployment'")
    return [d for d in (json.loads(r[0]) for r in rows) if d.get("deleted_at") is None]


def _models(p: Project) -> list[str]:
    return [r[0] for r in p.remote("select fine_tuned_model from jobs where dialect = 'bedrock' and "
                                   "status = 'succeeded' order by seq")]


def test_deployment_created_after_success_then_updated_to_the_replacing_model(br: Project) -> None:
    first = br.ftops("plan", "--json").json()
    (dep,) = first["deployments"]
    assert (dep["address"], dep["action"], dep["reason"]) == ("models.support-nova.deployment", "wait",
                                                              "waits_for_job")
    assert br.ftops("apply", "--auto-approve").code == 0
    assert _deployments(br) == []  # the job had not succeeded when apply got there
    plan = br.ftops("plan", "--json").json()
    (dep,) = plan["deployments"]
    assert dep["action"] == "create" and dep["cost_per_hour"] == 0.0 and plan["has_changes"]
    r = br.ftops("apply", "--auto-approve")
    assert r.code == 0, r.err
    (live,) = _deployments(br)
    assert live["modelArn"] == _models(br)[0] and live["name"].startswith("ftops-support-nova-d")
    assert {t["key"]: t["value"] for t in live["tags"]}["ftops_model"] == "support-nova"
    assert br.ftops("plan", "--detailed-exitcode").code == 0
    out = br.ftops("output", "--json").json()["support-nova"]
    assert out["deployment"] == live["arn"] and out["endpoint"] == live["arn"]

    # A hyperparameter edit replaces the model; the deployment serves the old one until the new job
    # succeeded, then is pointed at the new model: still one deployment, same ARN.
    br.edit("hyperparameters: {n_epochs: 2,", "hyperparameters: {n_epochs: 3,")
    plan = br.ftops("plan", "--json").json()
    assert plan["summary"]["replace"] == 1 and [d["action"] for d in plan["deployments"]] == ["no-op"]
    assert br.ftops("apply", "--auto-approve").code == 0
    plan = br.ftops("plan", "--json").json()
    assert [(d["action"], d["reason"]) for d in plan["deployments"]] == [("update", "update_because_model_replaced")]
    assert br.ftops("apply", "--auto-approve").code == 0
    old, new = _models(br)
    (live_after,) = _deployments(br)
    assert live_after["arn"] == live["arn"] and live_after["update"]["modelArn"] == new != old
    assert br.ftops("plan", "--detailed-exitcode").code == 0
    assert br.ftops("output", "--json").json()["support-nova"]["kept_deployments"] == []



def test_removed_deployment_is_kept_until_prune_deletes_it(br: Project) -> None:
    assert br.ftops("apply", "--auto-approve").code == 0
    assert br.ftops("apply", "--auto-approve").code == 0
    (live,) = _deployments(br)
    br.edit("    deployment: {type: on-demand}\n", "")  # apps may still call it: kept until --prune
    assert br.ftops("plan", "--detailed-exitcode").code == 0
    assert [d["action"] for d in br.ftops("plan", "--json").json()["deployments"]] == ["keep"]
    pruned = br.ftops("plan", "--prune", "--json").json()
    assert [(d["action"], d["deployment_id"]) for d in pruned["deployments"]] == [("delete", live["arn"])]
    r = br.ftops("apply", "--auto-approve", "--prune")
    assert r.code == 0, r.err
    assert _deployments(br) == []
    state = json.loads((br.root / ".ftops" / "state.json").read_text())
    assert not state.get("deployments")
    assert br.ftops("plan", "--prune", "--detailed-exitcode").code == 0


def test_lost_answer_to_the_create_makes_exactly_one_deployment(br: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    assert br.ftops("apply", "--auto-approve").code == 0
    original = BedrockDialect._create_deployment
    lost: list[str] = []

    def losing(self: BedrockDialect, request: Any) -> Any:
        response = original(self, request)
        if not lost:
            lost.append("create")  # the deployment was created and committed; its answer never arrives
            raise LostResponse("dropped")
        return response

    monkeypatch.setattr(BedrockDialect, "_create_deployment", losing)
    r = br.ftops("apply", "--auto-approve")
    assert r.code == 0, r.err
    assert lost == ["create"]
    assert len(_deployments(br)) == 1  # the same clientRequestToken again: AWS (and the sandbox) made nothing new
    assert br.ftops("plan", "--detailed-exitcode").code == 0


def test_lost_state_adopts_the_deployment_by_name(br: Project) -> None:
    assert br.ftops("apply", "--auto-approve").code == 0
    assert br.ftops("apply", "--auto-approve").code == 0
    (live,) = _deployments(br)
    for f in (br.root / ".ftops").glob("state.json*"):
        f.unlink()
    plan = br.ftops("plan", "--json").json()
    assert [(d["action"], d["deployment_id"]) for d in plan["deployments"]] == [("no-op", live["arn"])]
    assert br.ftops("apply", "--auto-approve").code == 0
    assert [d["arn"] for d in _deployments(br)] == [live["arn"]]
    assert br.ftops("plan", "--detailed-exitcode").code == 0


def test_model_tests_are_answered_through_the_deployment(br: Project) -> None:
    br.edit("    deployment: {type: on-demand}\n", "    deployment: {type: on-demand}\n    tests:\n"
            "      - messages: [{role: user, content: \"How do I reset my password?\"}]\n"
            "        expect: {contains: \"Reset password\"}\n")
    assert br.ftops("apply", "--auto-approve").code == 0
    assert br.ftops("test", "support-nova").code == 0  # no deployment yet: the custom model itself
    assert br.ftops("apply", "--auto-approve").code == 0
    r = br.ftops("test", "support-nova")
    assert r.code == 0 and "1 passed" in r.out, r.out + r.err
    (live,) = _deployments(br)
    assert live.get("invocations") == 1  # Converse went to the deployment's ARN


def test_base_model_without_on_demand_deployment_is_refused_with_file_line(br: Project) -> None:
    br.edit("base_model: amazon.nova-micro-v1:0:128k", "base_model: amazon.titan-text-lite-v1:0:4k")
    r = br.ftops("plan")
    line = next(i for i, t in enumerate(br.config.read_text().splitlines(), 1) if "deployment:" in t)
    assert r.code == 1 and f"ftops.yaml:{line}:" in r.err and "provider.unsupported_field" in r.err, r.err
    assert "amazon.nova-micro" in r.err  # the hint names what can be deployed
    br.edit("deployment: {type: on-demand}", "deployment: {type: provisioned}")
    br.edit("base_model: amazon.titan-text-lite-v1:0:4k", "base_model: amazon.nova-micro-v1:0:128k")
    r = br.ftops("plan")
    assert r.code == 1 and f"ftops.yaml:{line}:" in r.err and "Provisioned Throughput" in r.err, r.err


def test_prune_after_a_replace_moves_the_deployment_before_deleting_the_old_model(br: Project) -> None:
    """One `apply --prune` after the replacing job succeeded: the deployment is pointed at the new model
    first, then the old model is deleted (DeleteCustomModel; the sandbox, like AWS, refuses to delete a
    model a deployment serves; a model still in use is left for the next run, never an error)."""
    assert br.ftops("apply", "--auto-approve").code == 0
    assert br.ftops("apply", "--auto-approve").code == 0
    (live,) = _deployments(br)
    br.edit("hyperparameters: {n_epochs: 2,", "hyperparameters: {n_epochs: 3,")
    assert br.ftops("apply", "--auto-approve").code == 0  # the replacing job
    old, new = _models(br)
    plan = br.ftops("plan", "--prune", "--json").json()
    assert [(d["action"]) for d in plan["deployments"]] == ["update"]
    assert [(d["kind"], d["id"]) for d in plan["deletes"] if d["kind"] == "model"] == [("model", old)]
    # (Time runs 1,000,000x here, so the update has switched by the time the delete is sent.)
    r = br.ftops("apply", "--auto-approve", "--prune")
    assert r.code == 0, r.err
    assert br.remote(f"select deleted from models where id = '{old}'") == [(1,)]
    assert br.remote(f"select deleted from models where id = '{new}'") == [(0,)]
    (after,) = _deployments(br)
    assert after["arn"] == live["arn"] and after["update"]["modelArn"] == new
    assert br.ftops("plan", "--prune", "--detailed-exitcode").code == 0
