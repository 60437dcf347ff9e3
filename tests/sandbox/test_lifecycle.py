"""Job lifecycle with an injected clock: states in order, events, checkpoints, queueing, controls."""

from __future__ import annotations

import base64

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ftops.sandbox import SandboxApp
from ftops.sandbox.testing import in_process_client
from tests.sandbox.conftest import QUICK, FakeClock, chat_lines, create_job, jsonl, upload


def _job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    r = client.get(f"/fine_tuning/jobs/{job_id}")
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    return job


def _paged(client: httpx.Client, path: str, page: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": page}
        if after:
            params["after"] = after
        body = client.get(path, params=params).json()
        items += body["data"]
        if not body["has_more"]:
            return items
        after = body["data"][-1]["id"]


def _run_to(client: httpx.Client, clock: FakeClock, job_id: str, status: str, step: float = 2.0) -> list[str]:
    seen = [_job(client, job_id)["status"]]
    for _ in range(5000):
        if seen[-1] == status:
            return seen
        clock.advance(step)
        now = _job(client, job_id)["status"]
        if now != seen[-1]:
            seen.append(now)
    raise AssertionError(f"job never reached {status}: {seen}")


def test_job_goes_through_states_in_order(client: httpx.Client, clock: FakeClock, tmp_path: Path) -> None:
    data = jsonl(chat_lines(20))
    train = upload(client, data)
    valid = upload(client, jsonl(chat_lines(5, prefix="v")), name="valid.jsonl")
    job = create_job(client, model="gpt-4o-mini", training_file=train, validation_file=valid, suffix="demo")
    assert job["status"] == "validating_files"
    assert job["model"] == "gpt-4o-mini-2024-07-18"
    assert job["method"]["supervised"]["hyperparameters"]["n_epochs"] == "auto"
    assert isinstance(job["seed"], int)

    assert _run_to(client, clock, job["id"], "succeeded") == ["validating_files", "queued", "running", "succeeded"]
    final = _job(client, job["id"])
    hp = final["method"]["supervised"]["hyperparameters"]
    # 20 examples: auto epochs raise examples x epochs to 100 -> 5; batch ~0.2% -> 1; lr for batch 1 -> 2.0 (what real jobs report).
    assert hp == {"n_epochs": 5, "batch_size": 1, "learning_rate_multiplier": 2.0}
    assert final["hyperparameters"] == hp
    assert final["fine_tuned_model"].startswith("ft:gpt-4o-mini-2024-07-18:ftops-sandbox:demo:")
    assert final["finished_at"] is not None and final["estimated_finish"] is None

    from ftops.datasets import check_dataset

    local = tmp_path / "train.jsonl"
    local.write_bytes(data)
    report = check_dataset(local, base_model="gpt-4o-mini-2024-07-18")
    assert final["trained_tokens"] == report.stats.trained_tokens_per_epoch * 5

    (result,) = final["result_files"]
    meta = client.get(f"/files/{result}").json()
    assert meta["purpose"] == "fine-tune-results" and meta["filename"] == "step_metrics.csv"
    served = client.get(f"/files/{result}/content")
    assert served.headers["content-type"].startswith("application/json")
    csv = base64.b64decode(served.content).decode().splitlines()  # base64, as the real API serves it
    assert meta["bytes"] == len(served.content)
    assert csv[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    assert len(csv) == 1 + 100  # 20 steps per epoch x 5 epochs
    models = [m["id"] for m in client.get("/models").json()["data"]]
    assert final["fine_tuned_model"] in models


def test_running_job_reports_estimated_finish_and_metrics(client: httpx.Client, clock: FakeClock) -> None:
    train = upload(client, jsonl(chat_lines(30)))
    valid = upload(client, jsonl(chat_lines(5, prefix="v")), name="v.jsonl")
    job = create_job(client, model="gpt-4o-mini", training_file=train, validation_file=valid)
    _run_to(client, clock, job["id"], "running")
    clock.advance(30)
    running = _job(client, job["id"])
    assert running["status"] == "running"
    assert running["estimated_finish"] > clock.now
    metrics = [e for e in _paged(client, f"/fine_tuning/jobs/{job['id']}/events", 50) if e["type"] == "metrics"]
    assert metrics, "a running job has metric events"
    data = metrics[0]["data"]
    assert {"step", "train_loss", "valid_loss", "train_mean_token_accuracy", "total_steps"} <= set(data)
    assert metrics[0]["data"]["step"] > metrics[-1]["data"]["step"]  # newest first


def test_events_and_checkpoints_page_newest_first(client: httpx.Client, clock: FakeClock) -> None:
    train = upload(client, jsonl(chat_lines(10)))
    job = create_job(client, model="gpt-4o-mini", training_file=train,
                     method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 4}}})
    _run_to(client, clock, job["id"], "succeeded", step=20)
    full = client.get(f"/fine_tuning/jobs/{job['id']}/events", params={"limit": 1000}).json()
    assert full["has_more"] is False
    paged = _paged(client, f"/fine_tuning/jobs/{job['id']}/events", 3)
    assert [e["id"] for e in paged] == [e["id"] for e in full["data"]]
    times = [e["created_at"] for e in paged]
    assert times == sorted(times, reverse=True)
    messages = [e["message"] for e in reversed(paged)]
    assert messages[0] == f"Created fine-tuning job: {job['id']}"
    assert messages[-1] == "The job has successfully completed"
    assert client.get(f"/fine_tuning/jobs/{job['id']}/events").json()["data"] == full["data"][:20]

    ckpts = _paged(client, f"/fine_tuning/jobs/{job['id']}/checkpoints", 2)
    # 10 steps per epoch, 4 epochs: checkpoints for the last 3 epochs, newest first.
    assert [c["step_number"] for c in ckpts] == [40, 30, 20]
    final = _job(client, job["id"])
    assert ckpts[0]["fine_tuned_model_checkpoint"] == f"{final['fine_tuned_model']}:ckpt-step-40"
    first = client.get(f"/fine_tuning/jobs/{job['id']}/checkpoints", params={"limit": 2}).json()
    assert first["has_more"] is True and first["first_id"] == ckpts[0]["id"] and first["last_id"] == ckpts[1]["id"]


def test_losses_are_deterministic_for_a_seed(make_app: Callable[..., SandboxApp], clock: FakeClock,
                                             tmp_path: Path) -> None:
    def metrics_for(seed: int, db: str) -> list[float]:
        app = SandboxApp(tmp_path / db, settings=QUICK, clock=clock)
        with in_process_client(app) as c:
            train = upload(c, jsonl(chat_lines(12)))
            job = create_job(c, model="gpt-4o-mini", training_file=train, seed=seed)
            _run_to(c, clock, job["id"], "succeeded", step=30)
            events = _paged(c, f"/fine_tuning/jobs/{job['id']}/events", 100)
        return [e["data"]["train_loss"] for e in events if e["type"] == "metrics"]

    a, b, c = metrics_for(7, "a.db"), metrics_for(7, "b.db"), metrics_for(8, "c.db")
    assert a == b
    assert a != c


def test_queue_holds_jobs_beyond_max_running(make_app: Callable[..., SandboxApp], clock: FakeClock) -> None:
    app = make_app(max_running_jobs=2)
    with in_process_client(app) as client:
        train = upload(client, jsonl(chat_lines(50)))
        jobs = [create_job(client, model="gpt-4o-mini", training_file=train)["id"] for _ in range(3)]
        clock.advance(55)  # past validation (20 s) and the minimum queue time (30 s)
        statuses = [_job(client, j)["status"] for j in jobs]
        assert statuses == ["running", "running", "queued"]
        for _ in range(2000):
            clock.advance(5)
            statuses = [_job(client, j)["status"] for j in jobs]
            assert statuses.count("running") <= 2
            if statuses[2] == "running":
                break
        assert statuses[:2].count("succeeded") >= 1
        client.post(f"/fine_tuning/jobs/{jobs[2]}/cancel")


def test_cancel_pause_resume(client: httpx.Client, clock: FakeClock) -> None:
    train = upload(client, jsonl(chat_lines(40)))
    job = create_job(client, model="gpt-4o-mini", training_file=train)
    jid = job["id"]
    r = client.post(f"/fine_tuning/jobs/{jid}/pause")
    assert r.status_code == 400 and r.json()["error"]["param"] == "fine_tuning_job_id"
    _run_to(client, clock, jid, "running")
    clock.advance(20)
    before = _job(client, jid)
    paused = client.post(f"/fine_tuning/jobs/{jid}/pause").json()
    assert paused["status"] == "paused" and paused["estimated_finish"] is None
    steps_at_pause = len([e for e in _paged(client, f"/fine_tuning/jobs/{jid}/events", 100)
                          if e["type"] == "metrics"])
    clock.advance(10_000)
    assert _job(client, jid)["status"] == "paused"
    assert len([e for e in _paged(client, f"/fine_tuning/jobs/{jid}/events", 100)
                if e["type"] == "metrics"]) == steps_at_pause
    resumed = client.post(f"/fine_tuning/jobs/{jid}/resume").json()
    assert resumed["status"] == "running"
    # The time spent paused does not count: the finish moves later by the paused duration.
    assert resumed["estimated_finish"] >= before["estimated_finish"] + 10_000 - 1
    assert client.post(f"/fine_tuning/jobs/{jid}/resume").status_code == 400
    cancelled = client.post(f"/fine_tuning/jobs/{jid}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["fine_tuned_model"] is None
    clock.advance(100_000)
    assert _job(client, jid)["status"] == "cancelled"
    r = client.post(f"/fine_tuning/jobs/{jid}/cancel")
    assert r.status_code == 400
    messages = [e["message"] for e in _paged(client, f"/fine_tuning/jobs/{jid}/events", 100)]
    assert {"Fine-tuning job paused", "Fine-tuning job resumed", "Fine-tuning job cancelled"} <= set(messages)


@pytest.mark.parametrize("content, code, message", [
    (jsonl(chat_lines(1)) + b'{not json}\n', "invalid_training_file",
     "The job failed due to an invalid training file. Invalid file format. Example 2: "),
    (jsonl(chat_lines(7)), "invalid_n_examples",
     "Training file has 7 example(s), but must have at least 10 examples"),
])
def test_invalid_training_file_fails_the_job(client: httpx.Client, clock: FakeClock, content: bytes,
                                             code: str, message: str) -> None:
    train = upload(client, content)
    job = create_job(client, model="gpt-4o-mini", training_file=train)
    assert job["error"] == {} and job["finished_at"] is None  # healthy: {} as the real API sends
    assert _run_to(client, clock, job["id"], "failed") == ["validating_files", "failed"]
    failed = _job(client, job["id"])
    assert failed["error"]["code"] == code
    assert failed["error"]["param"] == "training_file"
    assert failed["error"]["message"].startswith(message)
    assert "[" not in failed["error"]["message"] and "Line" not in failed["error"]["message"]
    assert failed["fine_tuned_model"] is None and failed["trained_tokens"] is None
    assert failed["finished_at"] is None  # as real failed jobs show
    levels = [e["level"] for e in _paged(client, f"/fine_tuning/jobs/{job['id']}/events", 50)]
    assert "error" in levels


@pytest.mark.parametrize("content, details", [(b"", "empty"), (b"\xff\xfe{}\n", "not UTF-8")])
def test_unreadable_file_ends_in_error_and_cannot_train(make_app: Callable[..., SandboxApp], clock: FakeClock,
                                                        content: bytes, details: str) -> None:
    app = make_app(file_processing_s=10.0, time_scale=2.0)
    with in_process_client(app) as client:
        f = upload(client, content)
        assert client.get(f"/files/{f}").json()["status"] == "uploaded"
        clock.advance(5.1)  # 10 s of sandbox time at x2
        obj = client.get(f"/files/{f}").json()
        assert obj["status"] == "error" and details in obj["status_details"]
        r = client.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": f})
        assert r.status_code == 400 and r.json()["error"]["code"] == "file_not_ready"


def test_file_is_uploaded_then_processed_over_scaled_time(make_app: Callable[..., SandboxApp],
                                                         clock: FakeClock) -> None:
    app = make_app(file_processing_s=10.0, time_scale=10.0)
    with in_process_client(app) as client:
        f = upload(client, jsonl(chat_lines(10)))
        assert client.get(f"/files/{f}").json()["status"] == "uploaded"
        r = client.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": f})
        assert r.status_code == 400 and r.json()["error"]["code"] == "file_not_ready"
        clock.advance(0.9)
        assert client.get(f"/files/{f}").json()["status"] == "uploaded"
        clock.advance(0.2)
        assert client.get(f"/files/{f}").json()["status"] == "processed"
        assert "status_details" not in client.get(f"/files/{f}").json()
        create_job(client, model="gpt-4o-mini", training_file=f)


def test_invalid_validation_file_names_its_param(client: httpx.Client, clock: FakeClock) -> None:
    train = upload(client, jsonl(chat_lines(10)))
    valid = upload(client, b"[1, 2]\n", name="v.jsonl")
    job = create_job(client, model="gpt-4o-mini", training_file=train, validation_file=valid)
    _run_to(client, clock, job["id"], "failed")
    assert _job(client, job["id"])["error"]["param"] == "validation_file"


def test_dpo_job_resolves_beta(client: httpx.Client, clock: FakeClock) -> None:
    import json

    lines = [json.dumps({"input": {"messages": [{"role": "user", "content": f"q{i}"}]},
                         "preferred_output": [{"role": "assistant", "content": f"good {i}"}],
                         "non_preferred_output": [{"role": "assistant", "content": f"bad {i}"}]})
             for i in range(10)]
    train = upload(client, jsonl(lines))
    job = create_job(client, model="gpt-4.1-mini", training_file=train, method={"type": "dpo"})
    _run_to(client, clock, job["id"], "succeeded", step=20)
    hp = _job(client, job["id"])["method"]["dpo"]["hyperparameters"]
    assert hp["beta"] == 0.1 and hp["n_epochs"] == 10 and hp["batch_size"] == 1


def test_time_scale_shortens_jobs(make_app: Callable[..., SandboxApp], clock: FakeClock) -> None:
    app = make_app(time_scale=1000.0)
    with in_process_client(app) as client:
        train = upload(client, jsonl(chat_lines(10)))
        job = create_job(client, model="gpt-4o-mini", training_file=train)
        clock.advance(1.0)
        assert _job(client, job["id"])["status"] == "succeeded"


def test_state_survives_restart(db_path: Path, clock: FakeClock) -> None:
    app = SandboxApp(db_path, settings=QUICK, clock=clock)
    with in_process_client(app) as client:
        train = upload(client, jsonl(chat_lines(10)))
        job = create_job(client, model="gpt-4o-mini", training_file=train, metadata={"k": "v"})
    app.store.close()
    clock.advance(100_000)
    again = SandboxApp(db_path, clock=clock)
    with in_process_client(again) as client:
        restored = _job(client, job["id"])
        assert restored["status"] == "succeeded"
        assert restored["metadata"] == {"k": "v"}
        assert client.get(f"/files/{train}/content").content == jsonl(chat_lines(10))


def test_two_apps_share_one_database(db_path: Path, clock: FakeClock) -> None:
    """Two processes on one project: both see one history and never duplicate a transition."""
    first, second = SandboxApp(db_path, settings=QUICK, clock=clock), SandboxApp(db_path, settings=QUICK, clock=clock)
    with in_process_client(first) as a, in_process_client(second) as b:
        train = upload(a, jsonl(chat_lines(10)))
        job = create_job(b, model="gpt-4o-mini", training_file=train)
        for _ in range(300):
            clock.advance(3)
            a.get(f"/fine_tuning/jobs/{job['id']}")
            status = b.get(f"/fine_tuning/jobs/{job['id']}").json()["status"]
            if status == "succeeded":
                break
        events = _paged(a, f"/fine_tuning/jobs/{job['id']}/events", 100)
        messages = [e["message"] for e in events]
        assert messages.count("Fine-tuning job started") == 1
        assert messages.count("The job has successfully completed") == 1
        assert len(a.get(f"/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]) == 3
