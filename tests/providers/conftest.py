"""Helpers for provider tests: a scripted httpx.MockTransport for edge cases the sandbox cannot produce."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from ftops.providers import OpenAIProvider

API_KEY = "sk-test-SECRET-0123456789abcdef"

Responder = Callable[[httpx.Request], httpx.Response]


class Script:
    """Answers requests from a list of responders in order (the last one repeats); records requests."""

    def __init__(self, responders: Iterable[Responder | httpx.Response | Exception]) -> None:
        self.responders = list(responders)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        r = self.responders[min(len(self.requests) - 1, len(self.responders) - 1)]
        if isinstance(r, Exception):
            raise r
        if isinstance(r, httpx.Response):
            return httpx.Response(r.status_code, headers=r.headers, content=r.content)
        return r(request)


def err(status: int, message: str = "boom", *, param: str | None = None, code: str | None = None,
        headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})


def job_json(job_id: str = "ftjob-1", **extra: Any) -> dict[str, Any]:
    j: dict[str, Any] = {"object": "fine_tuning.job", "id": job_id, "status": "queued",
                         "model": "gpt-4o-mini-2024-07-18", "training_file": "file-1", "created_at": 1,
                         "fine_tuned_model": None, "validation_file": None, "seed": 1}
    j.update(extra)
    return j


@pytest.fixture
def make_provider() -> Callable[..., tuple[OpenAIProvider, Script, list[float]]]:
    """make_provider(responders, **provider_kwargs) -> (provider, script, recorded sleeps)."""
    def make(responders: Iterable[Any], **kw: Any) -> tuple[OpenAIProvider, Script, list[float]]:
        script = Script(responders)
        sleeps: list[float] = []
        client = httpx.Client(transport=httpx.MockTransport(script), base_url="http://mock.local/v1")
        kw.setdefault("rng", random.Random(0))
        p = OpenAIProvider(client, api_key=kw.pop("api_key", API_KEY), sleep=sleeps.append, **kw)
        return p, script, sleeps
    return make


def sha256_of(path: Any) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def upload(p: Any, path: Any, name: str = "t.jsonl", **kw: Any) -> Any:
    """Upload through the provider interface (the caller knows the bytes' sha256, as the engine does)."""
    return p.wait_until_usable(p.upload_file(path, sha256=sha256_of(path), display_path=name, **kw))


def identity(model: str = "bot", fp: str = "F1", attempt: int = 1, project: str = "p") -> Any:
    from ftops.providers import Identity
    return Identity(project=project, model=model, fingerprint=fp, attempt=attempt)


def body_of(model: str = "gpt-4o-mini-2024-07-18", training_file: str = "file-1", **kw: Any) -> dict[str, Any]:
    """A create-job body as OpenAIProvider.translate builds it (minimal: model, file, method)."""
    return {"model": model, "training_file": training_file, "method": {"type": "supervised"}, **kw}
