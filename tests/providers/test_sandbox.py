"""OpenAIProvider against the sandbox emulator over HTTP (in-process WSGI transport and served on loopback).

The sandbox is written independently of the client (it never imports ftops.providers), so a shared
misunderstanding of the API cannot pass these tests. Assert the state of the world, not the calls.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.providers.conftest import body_of, identity, sha256_of, upload

from ftops.providers import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    OpenAIProvider,
    ProviderError,
    RateLimitError,
    TransportError,
)

sandbox = pytest.importorskip("ftops.sandbox")
if not hasattr(sandbox, "SandboxApp"):  # the sandbox is being written in parallel
    pytest.skip("ftops.sandbox has no SandboxApp yet", allow_module_level=True)
SandboxApp = sandbox.SandboxApp
SandboxSettings = sandbox.SandboxSettings
FaultConfig = sandbox.FaultConfig
in_process_transport = sandbox.in_process_transport

KEY = "sk-sandbox-provider-tests-0123456789"
BASE = "gpt-4o-mini-2024-07-18"


class Clock:
    def __init__(self, t: float | None = None) -> None:
        self.t = float(int(time.time())) if t is None else t

    def __call__(self) -> float:
        return self.t


def chat_dataset(path: Path, n: int = 12, tag: str = "") -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"messages": [
                {"role": "system", "content": "You are a support bot."},
                {"role": "user", "content": f"Question {tag}{i}: how do I reset my password?"},
                {"role": "assistant", "content": f"Answer {i}: use the reset link on the login page."},
            ]}) + "\n" for i in range(n))
    return path


class World:
    """One sandbox database; apps over it with different settings; providers bound to those apps."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "sandbox.db"
        self.clock = Clock()
        self.sleeps: list[float] = []

    def app(self, **settings: Any) -> Any:
        settings.setdefault("api_keys", [KEY])
        settings.setdefault("time_scale", 1000.0)
        return SandboxApp(self.db, settings=SandboxSettings(**settings), clock=self.clock)

    def client(self, app: Any) -> httpx.Client:
        return httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local/v1")

    def provider(self, app: Any | None = None, *, api_key: str = KEY, **kw: Any) -> OpenAIProvider:
        kw.setdefault("sleep", self.sleeps.append)
        return OpenAIProvider(self.client(app or self.app()), api_key=api_key, **kw)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def make_job(p: OpenAIProvider, training_file: str, *, model: str = "bot", fp: str = "F1", **kw: Any) -> Any:
    body = body_of(model=BASE, training_file=training_file,
                   method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}, **kw)
    return p.create_job(body, identity(model=model, fp=fp), {})


def test_files_direct_upload_and_list(world: World):
    p = world.provider()
    f = chat_dataset(world.tmp / "train.jsonl")
    progress: list[tuple[int, int]] = []
    rf = upload(p, f, "data/train.jsonl", on_progress=lambda a, b: progress.append((a, b)))
    assert rf.id and rf.filename == f"train.sha256-{sha256_of(f)}.jsonl" and rf.bytes == f.stat().st_size
    assert rf.sha256 == sha256_of(f)
    assert rf.purpose == "fine-tune"
    assert progress[-1] == (f.stat().st_size, f.stat().st_size)
    assert [x.id for x in p.list_files()] == [rf.id]
    assert p.get_file(rf.id).sha256 == sha256_of(f)
    content = world.client(world.app()).get(f"/files/{rf.id}/content", headers={"Authorization": f"Bearer {KEY}"})
    assert content.content == f.read_bytes()


def test_uploads_api_path_assembles_the_same_bytes(world: World):
    p = world.provider(upload_threshold=1024, upload_part_bytes=1000)
    f = chat_dataset(world.tmp / "big.jsonl", n=30)
    size = f.stat().st_size
    assert size > 3000  # several parts
    rf = upload(p, f, "big.jsonl")
    assert rf.bytes == size and rf.sha256 == sha256_of(f)
    content = world.client(world.app()).get(f"/files/{rf.id}/content", headers={"Authorization": f"Bearer {KEY}"})
    assert content.content == f.read_bytes()
    assert [x.id for x in p.list_files()] == [rf.id]


def test_job_lifecycle_events_checkpoints_models(world: World):
    p = world.provider()
    tf = upload(p, chat_dataset(world.tmp / "t.jsonl"), "t.jsonl").id
    job = make_job(p, tf, suffix="support", seed=42)
    assert job.status in {"validating_files", "queued", "running"}
    assert job.metadata == {"ftops_project": "p", "ftops_model": "bot", "ftops_fp": "F1"} and job.seed == 42
    assert (job.group, job.attempt, job.declared_model, job.state.value) == ("p/bot/F1", 1, "bot", "pending")
    assert p.get_job(job.id).id == job.id
    world.clock.t += 10 * 24 * 3600
    done = p.get_job(job.id)
    assert done.status == "succeeded", done
    assert done.fine_tuned_model and done.trained_tokens
    assert p.list_events(job.id)
    assert len(p.list_events(job.id, limit=1)) == 1
    assert p.list_checkpoints(job.id)
    assert done.fine_tuned_model in {m.id for m in p.list_models()}
    p.delete_model(done.fine_tuned_model)
    assert done.fine_tuned_model not in {m.id for m in p.list_models()}


def test_cancel_pause_resume(world: World):
    p = world.provider(world.app(time_scale=1.0))
    tf = upload(p, chat_dataset(world.tmp / "t.jsonl"), "t.jsonl").id
    a = make_job(p, tf)
    assert p.cancel_job(a.id).status == "cancelled"
    b = make_job(p, tf)
    for _ in range(600):  # step the clock until the job trains
        if p.get_job(b.id).status == "running":
            break
        world.clock.t += 1
    assert p.get_job(b.id).status == "running"
    assert p.pause_job(b.id).status == "paused"
    world.clock.t += 7 * 24 * 3600
    assert p.get_job(b.id).status == "paused"  # paused jobs do not progress
    assert p.resume_job(b.id).status in {"queued", "running"}
    world.clock.t += 7 * 24 * 3600
    assert p.get_job(b.id).status == "succeeded"
    assert p.get_job(a.id).status == "cancelled"


def test_list_jobs_metadata_filter_and_pagination(world: World):
    p = world.provider(page_size=2)
    tf = upload(p, chat_dataset(world.tmp / "t.jsonl"), "t.jsonl").id
    app = world.app(job_creates_per_hour=100)
    p = world.provider(app, page_size=2)
    ids = [make_job(p, tf, model="bot" if i % 2 else "other", fp=f"F{i}").id for i in range(5)]
    before = p.requests_sent
    jobs = p._list({})
    assert [j.id for j in jobs] == list(reversed(ids))  # newest first, all pages
    assert p.requests_sent - before == 3  # 5 jobs, 2 per page
    assert [j.id for j in p._list({"ftops_model": "bot"})] == [ids[3], ids[1]]
    assert [j.id for j in p._list({"ftops_model": "bot", "ftops_fp": "F1"})] == [ids[1]]
    assert [j.id for j in p.list_jobs("p")] == list(reversed(ids))
    assert [j.id for j in p.list_jobs("another-project")] == []


def test_status_errors_from_the_sandbox(world: World, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="ftops")
    wrong = "sk-wrong-key-abcdefghijklmnop"
    p = world.provider(api_key=wrong)
    with pytest.raises(AuthenticationError) as ei:
        p._list({})
    assert not isinstance(ei.value, NotFoundError)
    for text in (str(ei.value), repr(ei.value), caplog.text, repr(ei.value.to_diagnostic())):
        assert wrong not in text and wrong[8:] not in text
        assert KEY not in text
    p = world.provider()
    with pytest.raises(NotFoundError):
        p.get_job("ftjob-doesnotexist")
    tf = upload(p, chat_dataset(world.tmp / "t.jsonl"), "t.jsonl").id
    with pytest.raises(BadRequestError) as bad:
        p.create_job({"model": BASE, "training_file": tf, "suffix": "x" * 65}, identity(), {})
    assert bad.value.param == "suffix"
    with pytest.raises(BadRequestError) as bad2:
        p.create_job(body_of(model=BASE, training_file="file-nope"), identity(), {})
    assert bad2.value.param == "training_file"


def test_lost_response_on_create_is_not_retried_and_the_job_exists(world: World):
    clean = world.provider()
    tf = upload(clean, chat_dataset(world.tmp / "t.jsonl"), "t.jsonl").id
    lossy = world.provider(world.app(faults=FaultConfig(lost_response_rate=1.0, seed=1)))
    with pytest.raises(TransportError) as ei:
        make_job(lossy, tf, fp="F1")
    assert ei.value.maybe_committed and not ei.value.retryable
    assert world.sleeps == []
    found = clean._list({"ftops_fp": "F1"})
    assert len(found) == 1  # committed server-side exactly once: the engine adopts it


def test_lost_response_on_read_is_retried(world: World):
    clean = world.provider()
    tf = upload(clean, chat_dataset(world.tmp / "t.jsonl"), "t.jsonl").id
    job = make_job(clean, tf)
    flaky = world.provider(world.app(faults=FaultConfig(lost_response_rate=0.5, error_rate=0.3, seed=3)),
                           max_retries=30, max_retry_wait=1e9)
    for _ in range(5):
        assert flaky.get_job(job.id).id == job.id
    assert world.sleeps  # it did meet faults and waited


def test_rate_limit_on_create_stops_with_retry_after(world: World):
    p = world.provider(world.app(job_creates_per_hour=1), max_retry_wait=60)
    tf = upload(p, chat_dataset(world.tmp / "t.jsonl"), "t.jsonl").id
    make_job(p, tf)
    with pytest.raises(RateLimitError) as ei:
        make_job(p, tf)
    assert ei.value.retry_after is not None and ei.value.retry_after > 60
    assert not ei.value.maybe_committed
    assert world.sleeps == []
    assert len(p._list({})) == 1


def test_served_sandbox_over_tcp(tmp_path: Path):
    testing = pytest.importorskip("ftops.sandbox.testing")
    settings = SandboxSettings(api_keys=[KEY], time_scale=1000.0)
    with testing.running_sandbox(tmp_path / "served.db", settings) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        with OpenAIProvider.from_settings(base_url, KEY, timeout=10.0) as p:
            rf = upload(p, chat_dataset(tmp_path / "t.jsonl"), "t.jsonl")
            job = make_job(p, rf.id)
            assert [j.id for j in p._list({"ftops_model": "bot"})] == [job.id]
            assert p.endpoint == base_url


def test_served_sandbox_lost_response_is_maybe_committed(tmp_path: Path):
    testing = pytest.importorskip("ftops.sandbox.testing")
    db = tmp_path / "served.db"
    lossy_settings = SandboxSettings(api_keys=[KEY], faults=FaultConfig(lost_response_rate=1.0, seed=2))
    with testing.running_sandbox(db, SandboxSettings(api_keys=[KEY])) as clean_url, \
            OpenAIProvider.from_settings(clean_url, KEY, timeout=10.0) as clean:
        tf = upload(clean, chat_dataset(tmp_path / "t.jsonl"), "t.jsonl").id
        with testing.running_sandbox(db, lossy_settings) as lossy_url, \
                OpenAIProvider.from_settings(lossy_url, KEY, timeout=10.0, sleep=lambda s: None) as lossy, \
                pytest.raises(TransportError) as ei:
            make_job(lossy, tf, fp="F2")
        assert ei.value.maybe_committed
        assert len(clean._list({"ftops_fp": "F2"})) == 1


def test_every_provider_error_is_a_provider_error():
    assert issubclass(TransportError, ProviderError) and issubclass(RateLimitError, ProviderError)


class AzureToSandbox(httpx.BaseTransport):
    """Stands in for an Azure resource: checks Azure's wire format, then forwards to the sandbox."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str | None, str | None, bool]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("api-key")
        version = request.url.params.get("api-version")
        self.seen.append((request.url.path, key, version, "authorization" in request.headers))
        params = [(k, v) for k, v in request.url.params.multi_items() if k != "api-version"]
        url = request.url.copy_with(path=request.url.path.replace("/openai/v1", "/v1", 1)).copy_with(
            params=params)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"api-key"]
        headers.append((b"authorization", f"Bearer {key}".encode()))
        fwd = httpx.Request(request.method, url, headers=headers, stream=request.stream)
        return self.inner.handle_request(fwd)


def test_azure_provider_against_sandbox_through_an_adapter(world: World):
    from ftops.providers import AzureOpenAIProvider
    adapter = AzureToSandbox(in_process_transport(world.app()))
    client = httpx.Client(transport=adapter, base_url="https://res.openai.azure.com/openai/v1")
    p = AzureOpenAIProvider(client, api_key=KEY, api_version="2025-04-01-preview", sleep=world.sleeps.append)
    rf = upload(p, chat_dataset(world.tmp / "t.jsonl"), "t.jsonl")
    job = p.create_job(body_of(model=BASE, training_file=rf.id), identity(model="az"), {})
    assert [j.id for j in p._list({"ftops_model": "az"})] == [job.id]
    assert [f.id for f in p.list_files()] == [rf.id]
    assert adapter.seen and all(path.startswith("/openai/v1/") and key == KEY and
                                version == "2025-04-01-preview" and not bearer
                                for path, key, version, bearer in adapter.seen)
