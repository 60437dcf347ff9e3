"""BedrockProvider's deployments against the in-process sandbox (boto3 underneath): what the world holds after
each call -- a spent token, a name made before the state was lost, a Failed deployment, another project's
deployments -- and the refusals validation gives before any request."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ftops.providers.base import Identity, ModelSpec
from ftops.providers.bedrock import BedrockProvider
from ftops.sandbox import SandboxApp, SandboxSettings, in_process_transport
from ftops.sandbox.dialects.bedrock import DEPLOYMENT

pytest.importorskip("boto3")
BASE = "amazon.nova-micro-v1:0:128k"
ROLE = "arn:aws:iam::123456789012:role/ft"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[SandboxApp, BedrockProvider]]:
    app = SandboxApp(tmp_path / "sandbox.db", settings=SandboxSettings(time_scale=1_000_000.0))
    http = httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local/bedrock")
    prov = BedrockProvider(http, max_retry_wait=1.0, sleep=lambda _s: None)
    prov.sandbox = True
    yield app, prov
    prov.close()


def custom_model(prov: BedrockProvider, name: str) -> str:
    line = {"schemaVersion": "bedrock-conversation-2024",
            "messages": [{"role": "user", "content": [{"text": "q"}]},
                         {"role": "assistant", "content": [{"text": "a"}]}]}
    prov.client("s3").put_object(Bucket="b", Key="t.jsonl", Body=(json.dumps(line) + "\n").encode() * 12)
    arn = prov.client("bedrock").create_model_customization_job(
        jobName=name, customModelName=name, roleArn=ROLE, baseModelIdentifier=BASE,
        trainingDataConfig={"s3Uri": "s3://b/t.jsonl"}, outputDataConfig={"s3Uri": "s3://b/out/"})["jobArn"]
    for _ in range(200):
        job = prov.get_job(arn)
        if job.fine_tuned_model:
            return job.fine_tuned_model
        time.sleep(0.01)
    raise AssertionError("the job did not finish")


def live(app: SandboxApp) -> list[dict[str, object]]:
    with app.tx() as (conn, _now, _sim):
        return [d for d in app.resources(conn, "bedrock", DEPLOYMENT) if d.get("deleted_at") is None]


def ident(project: str = "p", model: str = "m") -> Identity:
    return Identity(project=project, model=model, fingerprint="f" * 64)


def test_a_token_spent_on_a_deleted_deployment_gets_a_fresh_one(world: tuple[SandboxApp, BedrockProvider]) -> None:
    app, prov = world
    model = custom_model(prov, "j1")
    first = prov.create_deployment("m", model, {"type": "on-demand"}, ident())
    prov.delete_deployment(first.id)
    prov.delete_deployment(first.id)  # already gone: nothing to do
    again = prov.create_deployment("m", model, {"type": "on-demand"}, ident())
    assert again.id != first.id and again.model == model
    assert [d["arn"] for d in live(app)] == [again.id]


def test_a_name_made_before_the_state_was_lost_is_adopted_and_pointed_at_the_model(
        world: tuple[SandboxApp, BedrockProvider]) -> None:
    app, prov = world
    old, new = custom_model(prov, "j1"), custom_model(prov, "j2")
    name = prov.model_deployment_key("p", "m", "")
    made = prov.client("bedrock").create_custom_model_deployment(modelDeploymentName=name, modelArn=old,
                                                                 clientRequestToken="someone-else")
    time.sleep(0.01)
    dep = prov.create_deployment("m", new, {"type": "on-demand"}, ident())
    assert dep.id == made["customModelDeploymentArn"] and dep.model == new
    assert [d["arn"] for d in live(app)] == [dep.id]
    assert [d.id for d in prov.list_deployments("p")] == [dep.id]


def test_a_failed_deployment_is_left_out_then_deleted_and_made_again(world: tuple[SandboxApp, BedrockProvider]) -> None:
    app, prov = world
    model = custom_model(prov, "j1")
    first = prov.create_deployment("m", model, {}, ident())
    with app.tx() as (conn, _now, _sim):
        doc = next(d for d in app.resources(conn, "bedrock", DEPLOYMENT) if d["arn"] == first.id)
        app.put_resource(conn, "bedrock", DEPLOYMENT, first.id, {**doc, "failure": "capacity"})
    assert prov.get_deployment(first.id).status == "Failed"
    assert prov.list_deployments("p") == []  # so the plan creates it again
    again = prov.create_deployment("m", model, {}, ident())
    assert again.id != first.id and [d["arn"] for d in live(app)] == [again.id]


def test_each_project_lists_only_its_own_deployments(world: tuple[SandboxApp, BedrockProvider]) -> None:
    _app, prov = world
    model = custom_model(prov, "j1")
    mine = prov.create_deployment("m", model, {}, ident("p"))
    theirs = prov.create_deployment("m", model, {}, ident("q"))
    assert mine.key != theirs.key and mine.key.startswith("ftops-m-d")
    assert [d.id for d in prov.list_deployments("p")] == [mine.id]
    assert [d.id for d in prov.list_deployments("q")] == [theirs.id]
    assert prov.list_deployments("p")[0].settings == {"type": "on-demand"}


def test_chat_goes_through_an_active_deployment(world: tuple[SandboxApp, BedrockProvider]) -> None:
    app, prov = world
    model = custom_model(prov, "j1")
    assert prov.chat(model, [{"role": "user", "content": "q"}]) == "a"  # none yet: the model itself
    prov.create_deployment("m", model, {}, ident())
    time.sleep(0.01)
    fresh = BedrockProvider(prov.http)
    fresh.sandbox = True
    assert fresh.chat(model, [{"role": "user", "content": "q"}]) == "a"
    assert [d.get("invocations") for d in live(app)] == [1]


def test_validation_refuses_other_bases_and_provisioned_and_warns_on_region() -> None:
    prov = BedrockProvider(None, region="eu-west-1")
    spec = ModelSpec(name="m", base_model="amazon.titan-text-lite-v1:0:4k")
    problems = prov.validate_model_deployment(spec, {"type": "on-demand"})
    assert [(p.path, p.code, p.severity) for p in problems] == [
        (("type",), "provider.unsupported_field", "error"), ((), "provider.unsupported_region", "warning")]
    nova = spec.model_copy(update={"base_model": "amazon.nova-pro-v1:0:300k"})
    assert [p.code for p in BedrockProvider(None).validate_model_deployment(nova, {})] == []
    assert [p.path for p in BedrockProvider(None).validate_model_deployment(nova, {"type": "provisioned"})] == [
        ("type",)]
    assert [p.code for p in BedrockProvider(None).validate_model_deployment(nova, {"typo": 1})] == [
        "provider.unknown_option"]


def test_the_look_before_a_create_is_one_filtered_request(world: tuple[SandboxApp, BedrockProvider]) -> None:
    """find_jobs asks ListModelCustomizationJobs for the identity's tag in the job name: one request that
    returns only that group's jobs, however many the project has (list_jobs pages through all of them)."""
    _app, prov = world
    line = {"schemaVersion": "bedrock-conversation-2024",
            "messages": [{"role": "user", "content": [{"text": "q"}]},
                         {"role": "assistant", "content": [{"text": "a"}]}]}
    prov.client("s3").put_object(Bucket="b", Key="t.jsonl", Body=(json.dumps(line) + "\n").encode() * 12)
    arns = [prov.client("bedrock").create_model_customization_job(
        jobName=prov.job_name(ident(model=f"m{i}")), customModelName=f"c{i}", roleArn=ROLE,
        baseModelIdentifier=BASE, trainingDataConfig={"s3Uri": "s3://b/t.jsonl"},
        outputDataConfig={"s3Uri": "s3://b/out/"})["jobArn"] for i in range(120)]
    before = prov.requests_sent
    found = prov.find_jobs(ident(model="m7"))
    assert [j.id for j in found] == [arns[7]] and prov.requests_sent - before == 1
    before = prov.requests_sent
    assert len(prov.list_jobs("p")) == 120 and prov.requests_sent - before == 2  # two pages of 100
