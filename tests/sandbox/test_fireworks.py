"""Fireworks AI's dialect: the official `fireworks-ai` SDK against a served sandbox on loopback
(datasets and their upload flows, SFT and DPO jobs with client-chosen ids and 409 on a duplicate,
deployments, chat), and plain HTTP in process with an injected clock for the lifecycle and faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ftops.sandbox import FaultConfig, SandboxApp, SandboxSettings, in_process_transport
from ftops.sandbox.testing import running_sandbox
from tests.sandbox.conftest import FakeClock, chat_lines, jsonl

fireworks = pytest.importorskip("fireworks")
pytestmark = pytest.mark.needs_tiktoken
BASE = "accounts/fireworks/models/llama-v3p1-8b-instruct"
ACCT = "acme"


def _dpo_lines(n: int) -> list[str]:
    return [json.dumps({"input": {"messages": [{"role": "user", "content": f"question {i} topic{i}"}]},
                        "preferred_output": [{"role": "assistant", "content": f"good answer {i}"}],
                        "non_preferred_output": [{"role": "assistant", "content": f"bad answer {i}"}]})
            for i in range(n)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, FakeClock]]:
    clock = FakeClock()
    with running_sandbox(tmp_path / "sandbox.db", SandboxSettings(time_scale=1000.0), clock=clock) as url:
        yield url.removesuffix("/v1") + "/fireworks", clock


def _sdk(url: str) -> object:
    return fireworks.Fireworks(api_key="fw-test", account_id=ACCT, base_url=url, max_retries=0)


def test_sdk_dataset_sft_job_model_deployment_and_chat(served: tuple[str, FakeClock], tmp_path: Path) -> None:
    url, clock = served
    client = _sdk(url)
    data = tmp_path / "train.jsonl"
    data.write_bytes(jsonl(chat_lines(12)))
    ds = client.datasets.create(dataset={"displayName": "train.jsonl", "userUploaded": {}}, dataset_id="ds-abc")
    assert ds.name == f"accounts/{ACCT}/datasets/ds-abc" and ds.state == "UPLOADING"
    with pytest.raises(fireworks.ConflictError):
        client.datasets.create(dataset={"displayName": "again"}, dataset_id="ds-abc")
    client.datasets.upload("ds-abc", file=data.open("rb"))
    assert client.datasets.get("ds-abc").state == "READY"
    assert [d.name for d in client.datasets.list()] == [ds.name]

    job = client.supervised_fine_tuning_jobs.create(
        dataset=ds.name, base_model=BASE, supervised_fine_tuning_job_id="ft-0000-1111111111-a1",
        output_model=f"accounts/{ACCT}/models/ft-0000-1111111111-a1", epochs=2, learning_rate=1e-4, lora_rank=8)
    assert job.name == f"accounts/{ACCT}/supervisedFineTuningJobs/ft-0000-1111111111-a1"
    assert job.state == "JOB_STATE_VALIDATING"
    with pytest.raises(fireworks.ConflictError):  # the same id twice: 409, never a second job
        client.supervised_fine_tuning_jobs.create(dataset=ds.name, base_model=BASE,
                                                  supervised_fine_tuning_job_id="ft-0000-1111111111-a1")
    assert len(list(client.supervised_fine_tuning_jobs.list())) == 1
    clock.advance(3600)
    done = client.supervised_fine_tuning_jobs.get("ft-0000-1111111111-a1")
    assert done.state == "JOB_STATE_COMPLETED" and done.output_model.endswith("/ft-0000-1111111111-a1")
    model = client.models.get("ft-0000-1111111111-a1")
    assert model.name == done.output_model and model.state == "READY"

    dep = client.deployments.create(base_model=done.output_model, deployment_id="dep-1", min_replica_count=0,
                                    max_replica_count=1, accelerator_type="NVIDIA_A100_80GB")
    assert dep.state == "CREATING"
    clock.advance(60)
    assert client.deployments.get("dep-1").state == "READY"
    client.deployments.update("dep-1", base_model=done.output_model, max_replica_count=2)
    assert client.deployments.get("dep-1").state == "UPDATING"
    raw = httpx.post(f"{url}/inference/v1/chat/completions", headers={"Authorization": "Bearer k"},
                     json={"model": done.output_model, "messages": [{"role": "user", "content": "topic3 question"}]})
    assert raw.status_code == 200 and raw.json()["choices"][0]["message"]["content"] == "answer 3 for topic3"
    client.deployments.delete("dep-1")
    clock.advance(120)
    with pytest.raises(fireworks.NotFoundError):
        client.deployments.get("dep-1")


def test_sdk_dpo_job_and_signed_url_upload(served: tuple[str, FakeClock], tmp_path: Path) -> None:
    url, clock = served
    client = _sdk(url)
    ds = client.datasets.create(dataset={"displayName": "prefs.jsonl"}, dataset_id="ds-prefs")
    body = jsonl(_dpo_lines(12))
    signed = client.datasets.get_upload_endpoint("ds-prefs", filename_to_size={"prefs.jsonl": str(len(body))})
    put = httpx.put(signed.filename_to_signed_urls["prefs.jsonl"], content=body)
    assert put.status_code == 200
    client.datasets.validate_upload("ds-prefs", body={})
    assert client.datasets.get("ds-prefs").state == "READY"
    job = client.dpo_jobs.create(dataset=ds.name, dpo_job_id="ft-0000-2222222222-a1",
                                 training_config={"base_model": BASE, "epochs": 1,
                                                  "output_model": f"accounts/{ACCT}/models/dpo-out"},
                                 loss_config={"method": "DPO", "dpo": {"beta": 0.2}})
    assert job.name.endswith("/dpoJobs/ft-0000-2222222222-a1")
    clock.advance(3600)
    assert client.dpo_jobs.get("ft-0000-2222222222-a1").state == "JOB_STATE_COMPLETED"


def test_sdk_errors_are_rpc_status_bodies(served: tuple[str, FakeClock]) -> None:
    url, _clock = served
    r = httpx.get(f"{url}/v1/accounts/{ACCT}/supervisedFineTuningJobs/nope", headers={"Authorization": "Bearer k"})
    assert r.status_code == 404 and r.json()["code"] == 5 and "not found" in r.json()["message"]
    r = httpx.get(f"{url}/v1/accounts/{ACCT}/datasets")
    assert r.status_code == 401 and r.json()["code"] == 16


def test_lost_response_on_create_then_retry_meets_409(tmp_path: Path) -> None:
    clock = FakeClock()
    app = SandboxApp(tmp_path / "s.db", settings=SandboxSettings(time_scale=1000.0), clock=clock)
    c = httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local/fireworks/v1",
                     headers={"Authorization": "Bearer k"})
    c.post(f"/accounts/{ACCT}/datasets", json={"datasetId": "ds-x", "dataset": {}})
    c.post(f"/accounts/{ACCT}/datasets/ds-x:upload", files={"file": ("t.jsonl", jsonl(chat_lines(12)))})
    app.faults = type(app.faults)(FaultConfig(lost_response_rate=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        c.post(f"/accounts/{ACCT}/supervisedFineTuningJobs", params={"supervisedFineTuningJobId": "ft-a"},
               json={"dataset": f"accounts/{ACCT}/datasets/ds-x", "baseModel": BASE})
    app.faults = type(app.faults)(FaultConfig())
    again = c.post(f"/accounts/{ACCT}/supervisedFineTuningJobs", params={"supervisedFineTuningJobId": "ft-a"},
                   json={"dataset": f"accounts/{ACCT}/datasets/ds-x", "baseModel": BASE})
    assert again.status_code == 409 and again.json()["code"] == 6
    jobs = c.get(f"/accounts/{ACCT}/supervisedFineTuningJobs").json()["supervisedFineTuningJobs"]
    assert len(jobs) == 1
    # Another dialect never sees it.
    assert c.get("http://sandbox.local/together/v1/fine-tunes").json()["data"] == []
