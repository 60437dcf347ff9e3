"""The executor under precise faults, against the real sandbox through its transport.

Each test injects exactly one failure at the transport seam (the request reaches the sandbox and
commits, then the answer is lost or replaced) and asserts the state of the world: how many jobs
and files exist remotely, and what the state file says.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import httpx
import pytest

from ftops.diagnostics import FtopsError
from ftops.engine.apply import ApplyStopped, Executor
from ftops.providers import OpenAIProvider
from ftops.sandbox import SandboxApp, SandboxSettings, in_process_transport
from ftops.workspace import Workspace

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
Fault = Callable[[httpx.Request, httpx.BaseTransport], httpx.Response]


class FaultyTransport(httpx.BaseTransport):
    """Forwards to the sandbox; the first request matching (method, path suffix) gets `fault` instead."""

    def __init__(self, inner: httpx.BaseTransport, method: str, suffix: str, fault: Fault, times: int = 1):
        self.inner, self.method, self.suffix, self.fault, self.left = inner, method, suffix, fault, times

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.left and request.method == self.method and request.url.path.endswith(self.suffix):
            self.left -= 1
            return self.fault(request, self.inner)
        return self.inner.handle_request(request)


def lost(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    inner.handle_request(request).read()  # committed on the server ...
    raise httpx.ReadTimeout("timed out", request=request)  # ... but the answer never arrives


def error_500_after_commit(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    inner.handle_request(request).read()
    return httpx.Response(500, json={"error": {"message": "boom", "type": "server_error", "param": None,
                                               "code": None}})


def rate_limited_for_an_hour(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    return httpx.Response(429, headers={"retry-after": "3600"},
                          json={"error": {"message": "Rate limit reached", "type": "requests", "param": None,
                                          "code": "rate_limit_exceeded"}})


def race(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    """Another CI run (with its own state file) creates the same job just before we do."""
    inner.handle_request(request).read()
    return inner.handle_request(request)


class World:
    def __init__(self, root: Path):
        self.root = root
        self.app = SandboxApp(root / ".ftops" / "sandbox.db",
                              settings=SandboxSettings(time_scale=1000, job_creates_per_hour=1000))
        self.sleeps: list[float] = []

    def apply(self, transport: httpx.BaseTransport | None = None) -> Executor:
        ws = Workspace(self.root)
        http = httpx.Client(transport=transport or in_process_transport(self.app),
                            base_url="http://sandbox.local/v1")
        ws._providers = {"default": OpenAIProvider(http, api_key="sk-test", sleep=self.sleeps.append)}
        res = ws.plan()
        ex = Executor(ws.providers(), ws.store, res.state, root=ws.root, hash_cache=ws.hash_cache,
                      sleep=self.sleeps.append, max_wait=30,
                      locate=lambda name, keys: ws.loaded.range_of("models", name, *keys))
        try:
            ex.run(res.plan, res.snapshot)
        finally:
            ex.state = ws.store.load()
        return ex

    def faulty(self, method: str, suffix: str, fault: Fault) -> FaultyTransport:
        return FaultyTransport(in_process_transport(self.app), method, suffix, fault)

    def jobs(self, live_only: bool = True) -> list[dict[str, object]]:
        with httpx.Client(transport=in_process_transport(self.app), base_url="http://sandbox.local/v1",
                          headers={"Authorization": "Bearer k"}) as c:
            data = c.get("/fine_tuning/jobs", params={"limit": 100}).json()["data"]
        return [j for j in data if not live_only or j["status"] not in ("failed", "cancelled")]

    def files(self) -> list[dict[str, object]]:
        with httpx.Client(transport=in_process_transport(self.app), base_url="http://sandbox.local/v1",
                          headers={"Authorization": "Bearer k"}) as c:
            return c.get("/files", params={"purpose": "fine-tune"}).json()["data"]  # type: ignore[no-any-return]


@pytest.fixture
def world(tmp_path: Path) -> World:
    root = tmp_path / "proj"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".ftops"))
    return World(root)


def test_lost_response_on_job_create_is_adopted_not_repeated(world: World) -> None:
    ex = world.apply(world.faulty("POST", "/fine_tuning/jobs", lost))
    assert len(world.jobs()) == 2
    assert {m.job.job_id for m in ex.state.models.values() if m.job} == {j["id"] for j in world.jobs()}
    assert ex.state.intents == []


def test_server_error_after_commit_on_job_create_is_adopted(world: World) -> None:
    world.apply(world.faulty("POST", "/fine_tuning/jobs", error_500_after_commit))
    assert len(world.jobs()) == 2


def test_lost_response_on_upload_adopts_the_file_by_its_hash(world: World) -> None:
    ex = world.apply(world.faulty("POST", "/files", lost))
    assert len(world.files()) == 2
    assert {f.file_id for f in ex.state.files.values()} == {f["id"] for f in world.files()}


def test_long_rate_limit_stops_cleanly_with_state_saved_and_rerun_resumes(world: World) -> None:
    with pytest.raises(ApplyStopped) as e:
        world.apply(world.faulty("POST", "/fine_tuning/jobs", rate_limited_for_an_hour))
    assert e.value.diagnostics[0].code == "apply.rate_limited"
    assert "re-run" in e.value.diagnostics[0].hint
    state = Workspace(world.root).store.load()
    assert len(state.files) == 2 and len(world.jobs()) == 0  # uploads kept, nothing half-done
    assert state.intents == []  # a 429 committed nothing: no intent is left to resolve
    world.apply()
    assert len(world.jobs()) == 2 and len(world.files()) == 2


def test_racing_run_with_its_own_state_leaves_one_live_job_per_model(world: World) -> None:
    ex = world.apply(world.faulty("POST", "/fine_tuning/jobs", race))
    all_jobs = world.jobs(live_only=False)
    assert len(all_jobs) == 3
    assert len(world.jobs()) == 2  # the newer duplicate was cancelled by the sweep
    kept = {m.job.job_id for m in ex.state.models.values() if m.job}
    assert kept == {j["id"] for j in world.jobs()}


def test_bad_request_points_at_the_model_declaration(world: World) -> None:
    def reject(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "Invalid seed", "type": "invalid_request_error",
                                                   "param": "seed", "code": "invalid_value"}})

    with pytest.raises(FtopsError) as e:
        world.apply(world.faulty("POST", "/fine_tuning/jobs", reject))
    d = e.value.diagnostics[0]
    lines = (world.root / "ftops.yaml").read_text().splitlines()
    assert d.range is not None and d.range.filename.endswith("ftops.yaml")
    assert lines[d.range.line - 1].strip() == "seed: 42"  # the line that declared the rejected value
    assert d.address == "models.support-bot"
