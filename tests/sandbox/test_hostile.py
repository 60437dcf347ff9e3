"""Hostile requests: every one answers a JSON 4xx in the dialect's error shape, never an HTML 500,
and nothing the sandbox sends is non-standard JSON (no NaN/Infinity), even for rows stored before
such numbers were refused."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ftops.sandbox import SandboxApp, SandboxSettings
from ftops.sandbox.settings import parse_limits
from ftops.sandbox.testing import in_process_client, running_sandbox
from tests.sandbox.conftest import QUICK, chat_lines, create_job, jsonl, upload


def strict_json(r: httpx.Response) -> Any:
    """Parse as a strict parser (Node's JSON.parse) would: NaN/Infinity are errors."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name} in {r.request.method} {r.request.url}")

    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    return json.loads(r.text, parse_constant=refuse)


def openai_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = strict_json(r)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("path", ["/fine_tuning/jobs", "/uploads", "/chat/completions", "/uploads/upload_x/complete"])
def test_deeply_nested_json_is_a_400(client: httpx.Client, path: str) -> None:
    body = b'{"model": ' + DEEP + b"}"
    err = openai_error(client.post(path, content=body, headers={"content-type": "application/json"}), 400)
    assert err["type"] == "invalid_request_error" and "nested" in err["message"]


def test_together_dialect_gets_the_same_guard(app: SandboxApp) -> None:
    with httpx.Client(transport=in_process_client(app)._transport, base_url="http://sandbox.local/together/v1",
                      headers={"Authorization": "Bearer k"}) as c:
        r = c.post("/fine-tunes", content=b'{"model": ' + DEEP + b"}",
                   headers={"content-type": "application/json"})
        assert r.status_code == 400 and "nested" in r.text


@pytest.mark.parametrize("field", ["filename", "mime_type", "purpose"])
def test_lone_surrogate_in_an_upload_is_a_400(client: httpx.Client, field: str) -> None:
    body = {"filename": "a.jsonl", "purpose": "fine-tune", "bytes": 3, "mime_type": "application/jsonl"}
    raw = json.dumps(body).replace(json.dumps(body[field]), '"x\\ud800"')
    err = openai_error(client.post("/uploads", content=raw, headers={"content-type": "application/json"}), 400)
    assert err["type"] == "invalid_request_error" and "surrogate" in err["message"]


def test_lone_surrogate_in_a_suffix_is_a_400(client: httpx.Client) -> None:
    train = upload(client, jsonl(chat_lines(10)))
    raw = '{"model": "gpt-4o-mini", "training_file": "%s", "suffix": "a\\udfff"}' % train
    openai_error(client.post("/fine_tuning/jobs", content=raw, headers={"content-type": "application/json"}), 400)
    raw = '{"model": "gpt-4o-mini", "training_file": "%s", "metadata": {"\\ud800": "v"}}' % train
    openai_error(client.post("/fine_tuning/jobs", content=raw, headers={"content-type": "application/json"}), 400)


@pytest.mark.parametrize("raw", [
    '{"filename": "a.jsonl", "purpose": "fine-tune", "bytes": 3, "mime_type": "application/jsonl", '
    '"expires_after": {"anchor": "created_at", "seconds": 1e999}}',
    '{"filename": "a.jsonl", "purpose": "fine-tune", "bytes": 3, "mime_type": "application/jsonl", '
    '"expires_after": {"anchor": "created_at", "seconds": NaN}}',
    '{"filename": "a.jsonl", "purpose": "fine-tune", "bytes": -Infinity, "mime_type": "application/jsonl"}',
])
def test_non_finite_numbers_are_refused(client: httpx.Client, raw: str) -> None:
    err = openai_error(client.post("/uploads", content=raw, headers={"content-type": "application/json"}), 400)
    assert "finite" in err["message"]


def test_non_finite_form_value_is_a_400(client: httpx.Client) -> None:
    r = client.post("/files", files={"file": ("t.jsonl", b"{}\n")},
                    data={"purpose": "fine-tune", "expires_after[anchor]": "created_at",
                          "expires_after[seconds]": "1e999"})
    assert openai_error(r, 400)["param"] == "expires_after"


def test_learning_rate_multiplier_1e999_is_refused(client: httpx.Client) -> None:
    train = upload(client, jsonl(chat_lines(10)))
    raw = ('{"model": "gpt-4o-mini", "training_file": "%s", "hyperparameters": '
           '{"learning_rate_multiplier": 1e999}}' % train)
    openai_error(client.post("/fine_tuning/jobs", content=raw, headers={"content-type": "application/json"}), 400)
    assert client.get("/fine_tuning/jobs").json()["data"] == []


def test_a_poisoned_row_stored_earlier_does_not_break_listings(client: httpx.Client, app: SandboxApp) -> None:
    """A database written before non-finite numbers were refused: the job renders with null, and every
    listing stays standard JSON."""
    train = upload(client, jsonl(chat_lines(10)))
    job = create_job(client, model="gpt-4o-mini", training_file=train)
    create_job(client, model="gpt-4o-mini", training_file=train)
    method = {"type": "supervised", "supervised": {"hyperparameters": {
        "n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": float("inf")}}}
    with app.store.write() as conn:
        conn.execute("UPDATE jobs SET method = ? WHERE id = ?", (json.dumps(method), job["id"]))
    listed = strict_json(client.get("/fine_tuning/jobs"))
    assert len(listed["data"]) == 2
    one = strict_json(client.get(f"/fine_tuning/jobs/{job['id']}"))
    assert one["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"] is None


def test_json_body_over_the_limit_is_a_413(make_app: Callable[..., SandboxApp]) -> None:
    app = make_app(max_json_body_bytes=1000)
    with in_process_client(app) as client:
        r = client.post("/fine_tuning/jobs", content=b'{"model": "' + b"x" * 2000 + b'"}',
                        headers={"content-type": "application/json"})
        err = openai_error(r, 413)
        assert err["code"] == "request_too_large"
        assert client.post("/fine_tuning/jobs", json={"model": "x" * 10}).status_code == 400  # under: parsed


def test_trace_is_a_405_and_unknown_routes_a_404(client: httpx.Client) -> None:
    r = client.request("TRACE", "/fine_tuning/jobs")
    assert openai_error(r, 405)["type"] == "invalid_request_error"
    assert "GET" in r.headers["Allow"] and "POST" in r.headers["Allow"]
    openai_error(client.request("PUT", "/files/file-x"), 405)
    openai_error(client.get("/nope"), 404)


def test_an_unexpected_bug_answers_json_500(app: SandboxApp, client: httpx.Client,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    dialect = app.dialect("openai")

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(dialect, "h_models", boom)
    err = openai_error(client.get("/models"), 500)
    assert err["type"] == "server_error"


# -- served: read timeouts and huge announced bodies ----------------------------------------------

def _raw_request(port: int, head: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def test_served_huge_content_length_is_refused_without_reading(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "s.db", QUICK) as url:
        port = int(url.split(":")[2].split("/")[0])
        started = time.monotonic()
        for path in (b"/v1/fine_tuning/jobs", b"/v1/files", b"/v1/uploads/upload_x/parts"):
            ctype = b"application/json" if b"jobs" in path else b"multipart/form-data; boundary=x"
            answer = _raw_request(port, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                                  b"Content-Type: " + ctype + b"\r\nContent-Length: 10000000000\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
            assert b'"error"' in answer
        assert time.monotonic() - started < 5


def test_served_read_timeout_frees_the_thread(tmp_path: Path) -> None:
    settings = SandboxSettings(read_timeout_s=0.5, file_processing_s=0)
    with running_sandbox(tmp_path / "s.db", settings) as url:
        port = int(url.split(":")[2].split("/")[0])
        started = time.monotonic()
        # Announces 100 bytes (under every limit) and sends 10: the server gives up after the timeout.
        answer = _raw_request(port, b"POST /v1/fine_tuning/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":", timeout=10)
        assert time.monotonic() - started < 5
        assert b"HTTP/1.1 2" not in answer
        # ...and it still serves others.
        assert httpx.get(f"{url}/models", headers={"Authorization": "Bearer k"}).status_code == 200


def test_limits_parse_for_serve() -> None:
    assert parse_limits(["job_creates_per_day=5", "file_uploads_per_hour=none", "read_timeout_s=2.5"]) == {
        "job_creates_per_day": 5, "file_uploads_per_hour": None, "read_timeout_s": 2.5}
    from ftops.diagnostics import FtopsError

    for bad in (["nope=1"], ["max_running_jobs=none"], ["job_creates_per_day=x"], ["read_timeout_s=inf"]):
        with pytest.raises(FtopsError):
            parse_limits(bad)

