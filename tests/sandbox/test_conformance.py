"""Conformance: the official `openai` SDK against a served sandbox on loopback, for every
endpoint, with each raw JSON answer validated against the OpenAPI component schemas."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftops.sandbox import SandboxSettings
from ftops.sandbox.testing import running_sandbox
from tests.sandbox.conftest import T0, SpecValidator, chat_lines, jsonl

openai = pytest.importorskip("openai")


class _Clock:
    """Real time moving on, but anchored before the catalogue's shutdown dates."""

    def __init__(self) -> None:
        self.offset = T0 - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("conformance") / "sandbox.db"
    settings = SandboxSettings(time_scale=2000.0, api_keys=["sk-test"])
    with running_sandbox(db, settings, clock=_Clock()) as url:
        yield url


@pytest.fixture(scope="module")
def sdk(base_url: str) -> Any:
    return openai.OpenAI(api_key="sk-test", base_url=base_url, max_retries=0, timeout=20)


def _raw(spec: SpecValidator, schema: str, raw: Any) -> Any:
    """Validate the raw JSON of an SDK `with_raw_response` call, then return the parsed object."""
    spec.validate(schema, raw.http_response.json())
    return raw.parse()


def _wait_for(sdk: Any, job_id: str, status: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sdk.fine_tuning.jobs.retrieve(job_id)
        if job.status == status:
            return job
        time.sleep(0.02)
    raise AssertionError(f"{job_id} did not reach {status}; last {job.status}")


def test_schema_validator_rejects_bad_objects(spec: SpecValidator) -> None:
    with pytest.raises(AssertionError):
        spec.validate("OpenAIFile", {"object": "file", "id": "file-x"})
    with pytest.raises(AssertionError):
        spec.validate("Upload", {"id": "u", "bytes": 1, "created_at": 1, "expires_at": 1, "filename": "f",
                                 "purpose": "fine-tune", "status": "bogus"})


def test_files_endpoints(sdk: Any, spec: SpecValidator) -> None:
    data = jsonl(chat_lines(12))
    created = _raw(spec, "OpenAIFile", sdk.files.with_raw_response.create(file=("t.jsonl", data), purpose="fine-tune"))
    assert created.bytes == len(data) and created.purpose == "fine-tune" and created.status == "uploaded"
    processed = sdk.files.wait_for_processing(created.id, poll_interval=0.01, max_wait_seconds=10)
    assert processed.status == "processed"  # the SDK's own wait loop ends, as on the real service
    second = sdk.files.create(file=("u.jsonl", data), purpose="fine-tune")
    listed = _raw(spec, "ListFilesResponse", sdk.files.with_raw_response.list(purpose="fine-tune", limit=1))
    assert [f.id for f in listed.data] == [second.id]
    page = sdk.files.list(purpose="fine-tune", limit=1, order="desc", after=second.id)
    assert [f.id for f in page.data][:1] == [created.id]
    asc = sdk.files.list(purpose="fine-tune", order="asc")
    assert [f.id for f in asc.data][-2:] == [created.id, second.id]
    got = _raw(spec, "OpenAIFile", sdk.files.with_raw_response.retrieve(created.id))
    assert got.id == created.id
    assert sdk.files.content(created.id).read() == data
    deleted = _raw(spec, "DeleteFileResponse", sdk.files.with_raw_response.delete(second.id))
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError) as err:
        sdk.files.retrieve(second.id)
    spec.validate("ErrorResponse", err.value.response.json())
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.files.create(file=("t.csv", b"a,b\n"), purpose="fine-tune")
    assert bad.value.param == "file" or bad.value.body["param"] == "file"
    other = sdk.files.create(file=("notes.pdf", b"%PDF"), purpose="user_data")
    assert other.purpose == "user_data"


def test_uploads_endpoints(sdk: Any, spec: SpecValidator) -> None:
    data = jsonl(chat_lines(15))
    half = len(data) // 2
    up = _raw(spec, "Upload", sdk.uploads.with_raw_response.create(
        bytes=len(data), filename="big.jsonl", mime_type="text/jsonl", purpose="fine-tune"))
    assert up.status == "pending" and up.expires_at == up.created_at + 3600
    p2 = _raw(spec, "UploadPart", sdk.uploads.parts.with_raw_response.create(upload_id=up.id, data=data[half:]))
    p1 = sdk.uploads.parts.create(upload_id=up.id, data=data[:half])
    done = _raw(spec, "Upload", sdk.uploads.with_raw_response.complete(
        upload_id=up.id, part_ids=[p1.id, p2.id], md5=hashlib.md5(data).hexdigest()))
    assert done.status == "completed" and done.file is not None
    assert sdk.files.content(done.file.id).read() == data

    other = sdk.uploads.create(bytes=10, filename="x.jsonl", mime_type="text/jsonl", purpose="fine-tune")
    cancelled = _raw(spec, "Upload", sdk.uploads.with_raw_response.cancel(other.id))
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        sdk.uploads.parts.create(upload_id=other.id, data=b"0123456789")


def test_fine_tuning_endpoints(sdk: Any, spec: SpecValidator) -> None:
    train = sdk.files.create(file=("train.jsonl", jsonl(chat_lines(12))), purpose="fine-tune")
    valid = sdk.files.create(file=("valid.jsonl", jsonl(chat_lines(3, prefix="v"))), purpose="fine-tune")
    for f in (train, valid):
        sdk.files.wait_for_processing(f.id, poll_interval=0.01, max_wait_seconds=10)
    job = _raw(spec, "FineTuningJob", sdk.fine_tuning.jobs.with_raw_response.create(
        model="gpt-4o-mini", training_file=train.id, validation_file=valid.id, suffix="conf", seed=42,
        metadata={"project": "conformance", "run": "1"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        integrations=[{"type": "wandb", "wandb": {"project": "p"}}]))
    assert job.status == "validating_files" and job.seed == 42
    done = _wait_for(sdk, job.id, "succeeded")
    spec.validate("FineTuningJob", sdk.fine_tuning.jobs.with_raw_response.retrieve(job.id).http_response.json())
    assert done.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:ftops-sandbox:conf:")
    assert done.trained_tokens and done.result_files

    listed = _raw(spec, "ListPaginatedFineTuningJobsResponse", sdk.fine_tuning.jobs.with_raw_response.list(
        limit=5, metadata={"project": "conformance", "run": "1"}))
    assert [j.id for j in listed.data] == [job.id]
    assert sdk.fine_tuning.jobs.list(metadata={"project": "conformance", "run": "2"}).data == []

    events = _raw(spec, "ListFineTuningJobEventsResponse",
                  sdk.fine_tuning.jobs.with_raw_response.list_events(job.id, limit=3))
    assert len(events.data) == 3 and events.has_more
    more = sdk.fine_tuning.jobs.list_events(job.id, limit=3, after=events.data[-1].id)
    assert more.data[0].id not in {e.id for e in events.data}
    ckpts = _raw(spec, "ListFineTuningJobCheckpointsResponse",
                 sdk.fine_tuning.jobs.checkpoints.with_raw_response.list(job.id, limit=2))
    assert [c.step_number for c in ckpts.data] == [36, 24]
    rest = sdk.fine_tuning.jobs.checkpoints.list(job.id, after=ckpts.data[-1].id)
    assert [c.step_number for c in rest.data] == [12]

    answer = _raw(spec, "CreateChatCompletionResponse", sdk.chat.completions.with_raw_response.create(
        model=done.fine_tuned_model, messages=[{"role": "user", "content": "question number 7 about topic7"}]))
    assert answer.choices[0].message.content == "answer 7 for topic7"
    ckpt_answer = sdk.chat.completions.create(model=ckpts.data[0].fine_tuned_model_checkpoint,
                                              messages=[{"role": "user", "content": "topic3"}])
    assert ckpt_answer.choices[0].message.content == "answer 3 for topic3"

    second = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=train.id,
                                         hyperparameters={"n_epochs": 50})
    _wait_for(sdk, second.id, "running")
    paused = _raw(spec, "FineTuningJob", sdk.fine_tuning.jobs.with_raw_response.pause(second.id))
    assert paused.status == "paused"
    resumed = _raw(spec, "FineTuningJob", sdk.fine_tuning.jobs.with_raw_response.resume(second.id))
    assert resumed.status in ("queued", "running")
    cancelled = _raw(spec, "FineTuningJob", sdk.fine_tuning.jobs.with_raw_response.cancel(second.id))
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.NotFoundError) as err:
        sdk.fine_tuning.jobs.retrieve("ftjob-doesnotexist")
    spec.validate("ErrorResponse", err.value.response.json())
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.fine_tuning.jobs.create(model="gpt-2", training_file=train.id)
    assert bad.value.param == "model" and bad.value.code == "model_not_available"
    spec.validate("ErrorResponse", bad.value.response.json())

    models = _raw(spec, "ListModelsResponse", sdk.models.with_raw_response.list())
    ids = {m.id for m in models.data}
    assert {"gpt-4o-mini-2024-07-18", done.fine_tuned_model} <= ids
    base = sdk.models.with_raw_response.retrieve("gpt-4o-mini-2024-07-18")
    spec.validate("Model", base.http_response.json())
    assert base.http_response.json()["shutdown_date"] == "2027-01-14"  # announced; enforced only when rehearsed
    retired = sdk.models.with_raw_response.retrieve("babbage-002").http_response.json()
    assert retired["shutdown_date"] == "2024-10-28"
    _raw(spec, "Model", sdk.models.with_raw_response.retrieve(done.fine_tuned_model))
    deleted = _raw(spec, "DeleteModelResponse", sdk.models.with_raw_response.delete(done.fine_tuned_model))
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve(done.fine_tuned_model)
    with pytest.raises(openai.PermissionDeniedError):
        sdk.models.delete("gpt-4o-mini-2024-07-18")


def test_authentication(base_url: str, spec: SpecValidator) -> None:
    wrong = openai.OpenAI(api_key="sk-wrong-key-123", base_url=base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        wrong.models.list()
    body = err.value.response.json()
    spec.validate("ErrorResponse", body)
    assert body["error"]["code"] == "invalid_api_key" and "sk-wrong-key-123" not in body["error"]["message"]
    import httpx

    missing = httpx.get(f"{base_url}/models")
    assert missing.status_code == 401
    spec.validate("ErrorResponse", missing.json())


def test_running_sandbox_shuts_down(tmp_path: Path) -> None:
    import httpx

    with running_sandbox(tmp_path / "s.db") as url:
        assert httpx.get(f"{url}/models", headers={"Authorization": "Bearer x"}).status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/models", headers={"Authorization": "Bearer x"}, timeout=2)


def test_busy_port_is_an_error(tmp_path: Path) -> None:
    from ftops.diagnostics import FtopsError
    from ftops.sandbox import SandboxApp, make_server, serve

    first = make_server("127.0.0.1", 0, SandboxApp(tmp_path / "a.db"))
    try:
        assert first.port > 0
        with pytest.raises(OSError):
            make_server("127.0.0.1", first.port, SandboxApp(tmp_path / "a.db"))
        with pytest.raises(FtopsError) as err:
            serve(host="127.0.0.1", port=first.port, db_path=tmp_path / "a.db", time_scale=None, faults=None,
                  api_keys=None, echo=lambda s: None)
        assert err.value.diagnostics[0].code == "sandbox.cannot_listen"
    finally:
        first.server_close()
