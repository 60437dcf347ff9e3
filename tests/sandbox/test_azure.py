"""Azure OpenAI's dialect driven by the official `openai` SDK (`AzureOpenAI` and `OpenAI(base_url=…)`)
over real HTTP, plus the minimal ARM deployments endpoint."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from ftops.sandbox import SandboxSettings
from ftops.sandbox.testing import running_sandbox
from tests.sandbox.conftest import FakeClock, chat_lines, jsonl

pytestmark = pytest.mark.needs_tiktoken
BOM = b"\xef\xbb\xbf"


@pytest.fixture
def root(tmp_path: Path, clock: FakeClock) -> str:  # type: ignore[misc]
    with running_sandbox(tmp_path / "s.db", SandboxSettings(time_scale=1000.0), clock=clock) as url:
        yield url.removesuffix("/v1")


def test_azure_sdk_files_jobs_models(root: str, clock: FakeClock) -> None:
    # Microsoft's two ways to reach the v1 API: AzureOpenAI (api-key header, api-version) and OpenAI(base_url=…)
    az = openai.AzureOpenAI(base_url=root + "/azure/openai/v1", api_key="azkey", api_version="preview",
                            max_retries=0)
    v1 = openai.OpenAI(base_url=root + "/azure/openai/v1", api_key="azkey", max_retries=0)
    data = jsonl(chat_lines(12))
    plain = az.files.create(file=("t.jsonl", data), purpose="fine-tune")
    with_bom = v1.files.create(file=("b.jsonl", BOM + data), purpose="fine-tune")
    assert plain.bytes == with_bom.bytes == len(data)  # the BOM is taken off, whether sent or not

    with pytest.raises(openai.BadRequestError) as missing:
        v1.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=plain.id)
    assert "does not support fine-tuning" in str(missing.value)
    with pytest.raises(openai.BadRequestError):
        v1.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=plain.id, suffix="x" * 41,
                                   extra_body={"trainingType": "globalstandard"})
    job = v1.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=plain.id, suffix="bot",
                                     metadata={"ftops_project": "p"}, extra_body={"trainingType": "GlobalStandard"})
    assert job.status == "pending"
    other = v1.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=with_bom.id,
                                       extra_body={"trainingType": "developer"})
    listed = v1.fine_tuning.jobs.list(metadata={"ftops_project": "p"})  # no server-side filter on Azure
    assert {j.id for j in listed.data} == {job.id, other.id}
    clock.now += 3600
    done = v1.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded" and done.fine_tuned_model.startswith("gpt-4o-mini-2024-07-18.ft-")
    assert done.fine_tuned_model.endswith("-bot")

    models = httpx.get(root + "/azure/openai/v1/models", headers={"api-key": "azkey"}).json()["data"]
    base = next(m for m in models if m["id"] == "gpt-4o-mini-2024-07-18")
    assert base["deprecation"] == {"fine_tune": "2027-04-01", "inference": "2027-10-01"}
    assert done.fine_tuned_model in {m["id"] for m in models}
    assert az.fine_tuning.jobs.retrieve(job.id).status == "succeeded"


def test_arm_deployments(root: str, clock: FakeClock) -> None:
    v1 = openai.OpenAI(base_url=root + "/azure/openai/v1", api_key="k", default_headers={"api-key": "k"})
    f = v1.files.create(file=("t.jsonl", jsonl(chat_lines(12))), purpose="fine-tune")
    job = v1.fine_tuning.jobs.create(model="gpt-4.1-mini-2025-04-14", training_file=f.id,
                                     extra_body={"trainingType": "standard"})
    clock.now += 3600
    tuned = v1.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
    arm = (root + "/azure/management/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
           "accounts/a/deployments")
    h = {"Authorization": "Bearer t"}
    q = {"api-version": "2024-10-21"}
    body = {"sku": {"name": "standard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": tuned, "version": "1"}}}
    assert httpx.put(arm + "/bot", json=body, headers=h).status_code == 400  # api-version required
    assert httpx.put(arm + "/bot", json=body, headers=h, params=q).status_code == 201
    assert httpx.put(arm + "/bot", json=body, headers=h, params=q).status_code == 200  # idempotent
    assert [d["name"] for d in httpx.get(arm, headers=h, params=q).json()["value"]] == ["bot"]
    assert httpx.delete(root + f"/azure/openai/v1/models/{tuned}", headers={"api-key": "k"}).status_code == 409
    assert httpx.delete(arm + "/bot", headers=h, params=q).status_code == 200
    assert httpx.get(arm + "/bot", headers=h, params=q).status_code == 404
