"""Bedrock's and S3's dialects, driven by the real boto3 clients against a served sandbox on loopback
(`endpoint_url` at the sandbox, dummy credentials from the environment)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftops.sandbox import SandboxApp, SandboxSettings, serving
from tests.sandbox.conftest import FakeClock

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

BASE = "amazon.nova-micro-v1:0:128k"
ROLE = "arn:aws:iam::123456789012:role/ft"


@pytest.fixture
def served(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FakeClock]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSANDBOX")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    app = SandboxApp(tmp_path / "sandbox.db", settings=SandboxSettings(time_scale=100.0), clock=clock)
    with serving(app) as url:
        yield url, clock


def clients(root: str) -> tuple[Any, Any, Any]:
    cfg = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"},
                 request_checksum_calculation="when_required", response_checksum_validation="when_required")
    return (boto3.client("bedrock", region_name="us-east-1", endpoint_url=f"{root}/bedrock", config=cfg),
            boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=f"{root}/bedrock", config=cfg),
            boto3.client("s3", region_name="us-east-1", endpoint_url=f"{root}/s3", config=cfg))


def nova_lines(n: int) -> bytes:
    return "".join(json.dumps({"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "Be terse."}],
                               "messages": [{"role": "user", "content": [{"text": f"question {i} topic{i}"}]},
                                            {"role": "assistant", "content": [{"text": f"answer {i}"}]}]}) + "\n"
                   for i in range(n)).encode()


def create(bedrock: Any, name: str, token: str, uri: str = "s3://b/data/train.jsonl", **extra: Any) -> str:
    params: dict[str, Any] = dict(
        jobName=name, customModelName=f"{name}-model", roleArn=ROLE, clientRequestToken=token,
        baseModelIdentifier=BASE, customizationType="FINE_TUNING", trainingDataConfig={"s3Uri": uri},
        outputDataConfig={"s3Uri": "s3://b/out/"}, hyperParameters={"epochCount": "2"},
        jobTags=[{"key": "ftops_model", "value": "m"}])
    arn: str = bedrock.create_model_customization_job(**{**params, **extra})["jobArn"]
    return arn


def test_s3_put_head_get_list(served: tuple[str, FakeClock]) -> None:
    _bedrock, _runtime, s3 = clients(served[0])
    s3.put_object(Bucket="b", Key="data/a.jsonl", Body=b"one\n")
    s3.put_object(Bucket="b", Key="data/a.jsonl", Body=b"two!\n")  # replaces
    s3.put_object(Bucket="b", Key="other/c.jsonl", Body=b"x")
    head = s3.head_object(Bucket="b", Key="data/a.jsonl")
    assert head["ContentLength"] == 5
    assert s3.get_object(Bucket="b", Key="data/a.jsonl")["Body"].read() == b"two!\n"
    listed = s3.list_objects_v2(Bucket="b", Prefix="data/")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("data/a.jsonl", 5)]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="b", Key="missing")
    assert exc.value.response["Error"]["Code"] == "NoSuchKey"
    for i in range(3):
        s3.put_object(Bucket="p", Key=f"k{i}", Body=b"z")
    page = s3.list_objects_v2(Bucket="p", MaxKeys=2)
    assert page["IsTruncated"] and page["KeyCount"] == 2
    rest = s3.list_objects_v2(Bucket="p", MaxKeys=2, ContinuationToken=page["NextContinuationToken"])
    assert [o["Key"] for o in rest["Contents"]] == ["k2"] and not rest["IsTruncated"]


def test_customization_job_lifecycle_token_tags_and_converse(served: tuple[str, FakeClock]) -> None:
    root, clock = served
    bedrock, runtime, s3 = clients(root)
    s3.put_object(Bucket="b", Key="data/train.jsonl", Body=nova_lines(12))
    arn = create(bedrock, "ftops-a-x1", "tok-1")
    # AWS ignores a repeated clientRequestToken: same job, nothing new.
    assert create(bedrock, "ftops-a-x1", "tok-1") == arn
    with pytest.raises(ClientError) as exc:
        create(bedrock, "ftops-a-x1", "tok-2")
    assert exc.value.response["Error"]["Code"] == "ConflictException"
    job = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert job["status"] == "InProgress" and job["clientRequestToken"] == "tok-1"
    assert bedrock.get_model_customization_job(jobIdentifier="ftops-a-x1")["jobArn"] == arn  # by name
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "ftops_model", "value": "m"}]
    clock.advance(3600)
    job = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert job["status"] == "Completed", job
    answer = runtime.converse(modelId=job["outputModelArn"],
                              messages=[{"role": "user", "content": [{"text": "question 3 topic3"}]}])
    assert answer["output"]["message"]["content"][0]["text"] == "answer 3"


def test_list_filters_paginates_and_stop(served: tuple[str, FakeClock]) -> None:
    bedrock, _runtime, s3 = clients(served[0])
    s3.put_object(Bucket="b", Key="data/train.jsonl", Body=nova_lines(12))
    arns = [create(bedrock, f"ftops-p{i}-xabc", f"t{i}") for i in range(3)]
    create(bedrock, "other-job", "t9")
    first = bedrock.list_model_customization_jobs(nameContains="-xabc", maxResults=2)
    assert len(first["modelCustomizationJobSummaries"]) == 2 and first["nextToken"]
    rest = bedrock.list_model_customization_jobs(nameContains="-xabc", maxResults=2, nextToken=first["nextToken"])
    seen = [j["jobArn"] for j in first["modelCustomizationJobSummaries"] + rest["modelCustomizationJobSummaries"]]
    assert sorted(seen) == sorted(arns)
    bedrock.stop_model_customization_job(jobIdentifier=arns[0])
    assert bedrock.get_model_customization_job(jobIdentifier=arns[0])["status"] == "Stopping"
    assert [j["jobArn"] for j in bedrock.list_model_customization_jobs(statusEquals="Stopping")[
        "modelCustomizationJobSummaries"]] == [arns[0]]


def test_errors_are_aws_shaped(served: tuple[str, FakeClock]) -> None:
    bedrock, _runtime, s3 = clients(served[0])
    s3.put_object(Bucket="b", Key="bad.jsonl", Body=b'{"messages": []}\n')
    with pytest.raises(ClientError) as exc:
        create(bedrock, "j", "t", uri="s3://b/bad.jsonl")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "line 1" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        bedrock.get_model_customization_job(jobIdentifier="nope")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        create(bedrock, "j", "t", hyperParameters={"epochCount": "9"})
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def trained_model(bedrock: Any, s3: Any, clock: FakeClock, name: str, base: str = BASE) -> str:
    s3.put_object(Bucket="b", Key="data/train.jsonl", Body=nova_lines(12))
    arn = create(bedrock, name, f"tok-{name}", baseModelIdentifier=base)
    clock.advance(3600)
    job = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert job["status"] == "Completed", job
    return str(job["outputModelArn"])


def test_custom_model_deployment_lifecycle_token_update_converse_delete(served: tuple[str, FakeClock]) -> None:
    root, clock = served
    bedrock, runtime, s3 = clients(root)
    first = trained_model(bedrock, s3, clock, "ftops-a-x1")
    second = trained_model(bedrock, s3, clock, "ftops-a-x2")
    params = dict(modelDeploymentName="ftops-a-d1234abcd", modelArn=first, description="d",
                  tags=[{"key": "ftops_model", "value": "a"}], clientRequestToken="dep-tok-1")
    arn = bedrock.create_custom_model_deployment(**params)["customModelDeploymentArn"]
    assert ":custom-model-deployment/" in arn
    # A repeated token is ignored by AWS: same deployment, nothing new; a new token meets the name.
    assert bedrock.create_custom_model_deployment(**params)["customModelDeploymentArn"] == arn
    with pytest.raises(ClientError) as exc:
        bedrock.create_custom_model_deployment(**{**params, "clientRequestToken": "dep-tok-2"})
    assert exc.value.response["Error"]["Code"] == "ConflictException"
    dep = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert (dep["status"], dep["modelArn"], dep["modelDeploymentName"]) == ("Creating", first, "ftops-a-d1234abcd")
    question = [{"role": "user", "content": [{"text": "question 3 topic3"}]}]
    with pytest.raises(ClientError) as exc:
        runtime.converse(modelId=arn, messages=question)
    assert exc.value.response["Error"]["Code"] == "ValidationException"  # not Active yet
    clock.advance(3600)
    assert bedrock.get_custom_model_deployment(customModelDeploymentIdentifier="ftops-a-d1234abcd")[
        "status"] == "Active"  # by name too
    assert runtime.converse(modelId=arn, messages=question)["output"]["message"]["content"][0]["text"] == "answer 3"
    listed = bedrock.list_custom_model_deployments(nameContains="-d1234")["modelDeploymentSummaries"]
    assert [(d["customModelDeploymentArn"], d["customModelDeploymentName"], d["status"]) for d in listed] == [
        (arn, "ftops-a-d1234abcd", "Active")]
    assert bedrock.list_custom_model_deployments(modelArnEquals=second)["modelDeploymentSummaries"] == []

    bedrock.update_custom_model_deployment(customModelDeploymentIdentifier=arn, modelArn=second)
    dep = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert dep["modelArn"] == first and dep["updateDetails"] == {"modelArn": second, "updateStatus": "Updating"}
    with pytest.raises(ClientError) as exc:  # one update at a time
        bedrock.update_custom_model_deployment(customModelDeploymentIdentifier=arn, modelArn=first)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    clock.advance(3600)
    dep = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert dep["modelArn"] == second and dep["updateDetails"]["updateStatus"] == "UpdateCompleted"
    assert [d["customModelDeploymentArn"] for d in bedrock.list_custom_model_deployments(
        modelArnEquals=second, statusEquals="Active")["modelDeploymentSummaries"]] == [arn]

    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
    for call in (lambda: bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn),
                 lambda: bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn),
                 lambda: runtime.converse(modelId=arn, messages=question)):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert bedrock.list_custom_model_deployments()["modelDeploymentSummaries"] == []
    # The spent token still answers with the deleted deployment and creates nothing (AWS idempotency).
    assert bedrock.create_custom_model_deployment(**params)["customModelDeploymentArn"] == arn
    assert bedrock.list_custom_model_deployments()["modelDeploymentSummaries"] == []


def test_custom_model_deployment_refuses_what_aws_refuses(served: tuple[str, FakeClock]) -> None:
    root, clock = served
    bedrock, _runtime, s3 = clients(root)
    s3.put_object(Bucket="b", Key="data/pc.jsonl", Body=b"".join(
        json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}).encode() + b"\n" for i in range(12)))
    titan = create(bedrock, "titan-job", "tok-t", uri="s3://b/data/pc.jsonl",
                   baseModelIdentifier="amazon.titan-text-lite-v1:0:4k")
    clock.advance(3600)
    titan_model = bedrock.get_model_customization_job(jobIdentifier=titan)["outputModelArn"]
    cases = [({"modelDeploymentName": "ok", "modelArn": titan_model}, "ValidationException"),  # not on demand
             ({"modelDeploymentName": "ok", "modelArn": titan_model.rsplit("/", 1)[0] + "/000000000000"},
              "ResourceNotFoundException"),
             ({"modelDeploymentName": "bad--name", "modelArn": titan_model}, "ValidationException")]
    for params, code in cases:
        with pytest.raises(ClientError) as exc:
            bedrock.create_custom_model_deployment(**params)
        assert exc.value.response["Error"]["Code"] == code, params
    assert bedrock.list_custom_model_deployments()["modelDeploymentSummaries"] == []
