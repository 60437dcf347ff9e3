"""Rate limits, fault injection (including lost responses that still commit), authentication."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ftops.sandbox import FaultConfig, SandboxApp, SandboxSettings, in_process_transport
from ftops.sandbox.testing import in_process_client, running_sandbox
from tests.sandbox.conftest import QUICK, FakeClock, chat_lines, jsonl, upload


def test_job_creation_rate_limit(make_app: Callable[..., SandboxApp], clock: FakeClock) -> None:
    app = make_app(job_creates_per_hour=2)
    with in_process_client(app) as client:
        train = upload(client, jsonl(chat_lines(10)))
        body = {"model": "gpt-4o-mini", "training_file": train}
        assert client.post("/fine_tuning/jobs", json=body).status_code == 200
        clock.advance(600)
        assert client.post("/fine_tuning/jobs", json=body).status_code == 200
        clock.advance(600)
        r = client.post("/fine_tuning/jobs", json=body)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limit_exceeded" and r.json()["error"]["type"] == "requests"
        # The oldest creation leaves the one-hour window 2400 s from now.
        assert r.headers["Retry-After"] == "2400" and r.headers["retry-after-ms"] == "2400000"
        # A rejected create is not counted, and the list shows only the two jobs.
        assert len(client.get("/fine_tuning/jobs").json()["data"]) == 2
        clock.advance(2400)
        assert client.post("/fine_tuning/jobs", json=body).status_code == 200


def test_file_upload_rate_limit_counts_uploads_api_too(make_app: Callable[..., SandboxApp],
                                                      clock: FakeClock) -> None:
    app = make_app(file_uploads_per_hour=2)
    with in_process_client(app) as client:
        upload(client, b"{}\n", name="a.jsonl")
        up = client.post("/uploads", json={"filename": "b.jsonl", "purpose": "fine-tune", "bytes": 3,
                                           "mime_type": "text/jsonl"}).json()
        part = client.post(f"/uploads/{up['id']}/parts", files={"data": ("blob", b"{}\n")}).json()
        assert client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]]}).status_code == 200
        r = client.post("/files", files={"file": ("c.jsonl", b"{}\n")}, data={"purpose": "fine-tune"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == 3600
        assert len(client.get("/files").json()["data"]) == 2
        clock.advance(3600.5)
        assert client.post("/files", files={"file": ("c.jsonl", b"{}\n")},
                           data={"purpose": "fine-tune"}).status_code == 200


def test_authentication_in_process(make_app: Callable[..., SandboxApp]) -> None:
    app = make_app(api_keys=["sk-good"])
    with httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local/v1") as raw:
        r = raw.get("/models")
        assert r.status_code == 401 and "didn't provide an API key" in r.json()["error"]["message"]
        r = raw.get("/models", headers={"Authorization": "Bearer sk-bad-key-0000"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert raw.get("/models", headers={"Authorization": "Bearer sk-good"}).status_code == 200
    open_app = make_app()  # api_keys None: any non-empty bearer key
    with in_process_client(open_app, api_key="anything") as client:
        assert client.get("/models").status_code == 200


def _statuses(app: SandboxApp, n: int) -> list[int | str]:
    out: list[int | str] = []
    with in_process_client(app) as client:
        for _ in range(n):
            try:
                out.append(client.get("/models").status_code)
            except httpx.RemoteProtocolError:
                out.append("lost")
    return out


def test_faults_are_deterministic_under_a_seed(tmp_path: Path, clock: FakeClock) -> None:
    faults = FaultConfig.parse("error_rate=0.2,rate_limit_rate=0.1,lost_response_rate=0.1,seed=7")

    def run(db: str) -> list[int | str]:
        return _statuses(SandboxApp(tmp_path / db, settings=SandboxSettings(faults=faults), clock=clock), 200)

    first, second = run("a.db"), run("b.db")
    assert first == second
    counts = {k: first.count(k) for k in (200, 500, 503, 429, "lost")}
    assert 20 <= counts[500] + counts[503] <= 60 and counts[500] and counts[503]
    assert 8 <= counts[429] <= 35
    assert 5 <= counts["lost"] <= 30
    other = _statuses(SandboxApp(tmp_path / "c.db", settings=SandboxSettings(
        faults=FaultConfig.parse("error_rate=0.2,rate_limit_rate=0.1,lost_response_rate=0.1,seed=8")),
        clock=clock), 200)
    assert other != first


def test_injected_429_and_500_bodies(make_app: Callable[..., SandboxApp]) -> None:
    app = make_app(faults=FaultConfig(rate_limit_rate=1.0, seed=1))
    with in_process_client(app) as client:
        r = client.get("/models")
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert r.headers["retry-after-ms"] == "1000"
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
    quick = make_app(faults=FaultConfig.parse("rate_limit_rate=1,retry_after_ms=50,seed=1"))
    with in_process_client(quick) as client:
        r = client.get("/models")  # the wait tests ask for; Retry-After (whole seconds) rounds up
        assert r.status_code == 429 and (r.headers["retry-after-ms"], r.headers["Retry-After"]) == ("50", "1")
    app = make_app(faults=FaultConfig(error_rate=1.0, seed=1))
    with in_process_client(app) as client:
        r = client.get("/models")
        assert r.status_code in (500, 503) and r.json()["error"]["type"] == "server_error"


def test_faults_off_by_default(app: SandboxApp) -> None:
    assert set(_statuses(app, 50)) == {200}


def test_lost_response_commits_the_action_in_process(make_app: Callable[..., SandboxApp],
                                                     tmp_path: Path) -> None:
    setup = make_app()
    with in_process_client(setup) as client:
        train = upload(client, jsonl(chat_lines(10)))
    lossy = make_app(faults=FaultConfig(lost_response_rate=1.0, seed=3))
    with in_process_client(lossy) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": train})
    with in_process_client(setup) as client:
        jobs = client.get("/fine_tuning/jobs").json()["data"]
        assert len(jobs) == 1 and jobs[0]["training_file"] == train


def test_lost_response_served_drops_the_connection(tmp_path: Path) -> None:
    openai = pytest.importorskip("openai")
    settings = SandboxSettings(faults=FaultConfig(lost_response_rate=1.0, seed=3))
    with running_sandbox(tmp_path / "s.db", settings) as url:
        sdk = openai.OpenAI(api_key="sk-x", base_url=url, max_retries=0, timeout=10)
        with pytest.raises(openai.APIConnectionError):
            sdk.files.create(file=("t.jsonl", jsonl(chat_lines(10))), purpose="fine-tune")
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{url}/files", headers={"Authorization": "Bearer x"})
    app = SandboxApp(tmp_path / "s.db")
    with in_process_client(app) as client:
        files = client.get("/files").json()["data"]
        assert [f["filename"] for f in files] == ["t.jsonl"]


def test_sdk_retries_through_a_lost_response_and_duplicates(tmp_path: Path) -> None:
    """The case the feature exists for: a retrying client creates the job twice."""
    openai = pytest.importorskip("openai")
    settings = SandboxSettings(faults=FaultConfig(lost_response_rate=0.5, seed=0), file_processing_s=0)
    with running_sandbox(tmp_path / "s.db", settings) as url:
        sdk = openai.OpenAI(api_key="sk-x", base_url=url, max_retries=5, timeout=10)
        train = sdk.files.create(file=("t.jsonl", jsonl(chat_lines(10))), purpose="fine-tune")
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=train.id)
        files = len(sdk.files.list().data)
        jobs = len(sdk.fine_tuning.jobs.list().data)
    assert files + jobs > 2, "with seed 0 some create was retried after a lost response"


def test_latency_is_injected(make_app: Callable[..., SandboxApp]) -> None:
    import time

    app = make_app(faults=FaultConfig(latency_ms=40))
    with in_process_client(app) as client:
        started = time.monotonic()
        for _ in range(3):
            assert client.get("/models").status_code == 200
        assert time.monotonic() - started >= 0.12


def test_concurrent_writers_on_one_database(db_path: Path, clock: FakeClock) -> None:
    """Two apps (as two processes would) and several threads writing at once: every write lands."""
    import threading

    apps = [SandboxApp(db_path, settings=QUICK, clock=clock), SandboxApp(db_path, settings=QUICK, clock=clock)]
    with in_process_client(apps[0]) as client:
        train = upload(client, jsonl(chat_lines(10)))
    failures: list[str] = []

    def work(app: SandboxApp, n: int) -> None:
        with in_process_client(app) as c:
            for i in range(n):
                r = c.post("/files", files={"file": (f"f{i}.jsonl", b"{}\n")}, data={"purpose": "fine-tune"})
                j = c.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": train})
                c.get("/fine_tuning/jobs")
                if r.status_code != 200 or j.status_code != 200:
                    failures.append(f"{r.status_code} {j.status_code}")

    settings_apps = [SandboxApp(db_path, settings=SandboxSettings(
        job_creates_per_hour=1000, file_uploads_per_hour=1000, max_active_jobs_per_model=None, file_processing_s=0),
        clock=clock)
                     for _ in range(2)]
    threads = [threading.Thread(target=work, args=(settings_apps[i % 2], 5)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with in_process_client(apps[1]) as client:
        assert len(client.get("/files").json()["data"]) == 1 + 20
        assert len(client.get("/fine_tuning/jobs", params={"limit": 100}).json()["data"]) == 20
