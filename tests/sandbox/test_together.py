"""Together AI's dialect: the official `together` SDK against a served sandbox on loopback, every raw
JSON answer validated against Together's OpenAPI description; and plain HTTP in-process, with an
injected clock, for the status progression, isolation from OpenAI's dialect, and faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ftops.sandbox import FaultConfig, SandboxApp, SandboxSettings, in_process_transport
from ftops.sandbox.dialects.together_catalog import resolve_together_model
from ftops.sandbox.testing import in_process_client, running_sandbox
from tests.sandbox.conftest import FakeClock, _modernise, chat_lines, jsonl

BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
pytestmark = pytest.mark.needs_tiktoken


# -- Together's OpenAPI description ---------------------------------------------------------------

def _fix_sibling_types(node: Any) -> Any:
    """The file gives `oneOf: [boolean, "auto"]` a sibling `type: boolean` (train_on_inputs), which
    JSON Schema reads as "boolean only"; the description means the oneOf. Drop such siblings."""
    if isinstance(node, list):
        return [_fix_sibling_types(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _fix_sibling_types(v) for k, v in node.items()}
    if "oneOf" in node and node.get("type") in ("boolean", "object"):
        node.pop("type")
    return node


class TogetherSpec:
    """Validates JSON values against a component schema, or a path's 200 response schema, of
    Together's OpenAPI description."""

    def __init__(self, path: Path) -> None:
        import yaml

        with open(path, encoding="utf-8") as fh:
            spec = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        self.root = _fix_sibling_types(_modernise({"components": spec["components"], "paths": spec["paths"]}))
        # Cosine scheduler args ({min_lr_ratio, num_cycles}) also match the open Linear args schema,
        # so the file's `oneOf` rejects every cosine scheduler (the SDK's default): read it as anyOf.
        args = self.root["components"]["schemas"]["LRScheduler"]["properties"]["lr_scheduler_args"]
        args["anyOf"] = args.pop("oneOf")

    def validate(self, ref: str, value: Any) -> None:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        registry: Registry[Any] = Registry().with_resource(
            "urn:together", Resource(contents=self.root, specification=DRAFT202012))
        target = f"urn:together#/components/schemas/{ref}" if "/" not in ref else f"urn:together#{ref}"
        validator = jsonschema.Draft202012Validator({"$ref": target}, registry=registry)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        assert not errors, f"{ref}: " + "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])


@pytest.fixture(scope="session")
def together_spec(shared_dir: Path) -> TogetherSpec:
    p = shared_dir / "provider-specs" / "together" / "openapi.yaml"
    if not p.is_file():
        pytest.skip("../shared/provider-specs/together/openapi.yaml is absent")
    return TogetherSpec(p)


_PRICE = "/paths/~1fine-tunes~1estimate-price/post/responses/200/content/application~1json/schema"


def _schema_for(method: str, path: str, status: int) -> str | None:
    """The schema of a Together answer, by route (None: not JSON, e.g. file content or the PUT)."""
    p = path.split("/together/v1", 1)[-1].split("?")[0]
    parts = p.strip("/").split("/")
    if status >= 400:
        return "ErrorData"
    if parts[0] == "files":
        if len(parts) == 1:
            return "FileList" if method == "GET" else None  # POST /files: the 302
        if parts[1] == "upload" or (len(parts) == 3 and parts[2] == "preprocess"):
            return "FileResponse"
        if len(parts) == 2:
            return "FileResponse" if method == "GET" else "FileDeleteResponse"
        return None  # content, signed upload
    if parts[0] == "fine-tunes":
        if len(parts) == 1:
            return "FinetuneTruncatedList" if method == "GET" else "FinetuneResponseTruncated"
        if parts[1] == "estimate-price":
            return _PRICE
        if parts[1] == "models":
            return "FineTuneModelLimits" if parts[2] == "limits" else None
        if len(parts) == 2:
            return "FinetuneResponse" if method == "GET" else "FinetuneDeleteResponse"
        return {"cancel": "FinetuneResponseTruncated", "events": "FinetuneListEvents",
                "checkpoints": "FinetuneListCheckpoints"}[parts[2]]
    if parts[0] == "models":
        return "ModelInfoList"
    if parts[0] == "chat":
        return "ChatCompletionResponse"
    raise AssertionError(f"no schema known for {method} {path}")


class Recorder:
    """httpx response hook: keeps every answer the SDK received, for schema validation."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, Any]] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        body = None
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
        self.seen.append((response.request.method, response.request.url.path, response.status_code, body))


# -- served, with the official SDK ------------------------------------------------------------------

class _Clock:
    def __init__(self) -> None:
        self.offset = 1_760_000_000.0 - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with running_sandbox(tmp_path / "sandbox.db", SandboxSettings(time_scale=3000.0), clock=_Clock()) as url:
        yield url.removesuffix("/v1")


def _sdk(root: str, recorder: Recorder) -> Any:
    together = pytest.importorskip("together")
    # The SDK's base URL is the host root: its paths carry /v1 (POST /v1/files, /v1/fine-tunes, …).
    return together.Together(api_key="tg-test", base_url=f"{root}/together", max_retries=0,
                              http_client=httpx.Client(event_hooks={"response": [recorder]}))


def _wait(client: Any, job_id: str, done: Callable[[str], bool]) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.fine_tuning.retrieve(job_id)
        if done(str(job.status)):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job.status}")


def test_sdk_full_workflow_matches_the_spec(served: str, tmp_path: Path, together_spec: TogetherSpec) -> None:
    rec = Recorder()
    client = _sdk(served, rec)
    data = tmp_path / "support.jsonl"
    data.write_bytes(jsonl(chat_lines(24)))

    uploaded = client.files.upload(data, purpose="fine-tune")  # POST /files -> 302 -> PUT -> preprocess
    assert uploaded.id.startswith("file-") and uploaded.bytes == data.stat().st_size
    assert [f.id for f in client.files.list().data] == [uploaded.id]
    assert client.files.retrieve(uploaded.id).filename == "support.jsonl"
    assert client.files.content(uploaded.id).read() == data.read_bytes()
    methods = [(m, p.split("/together")[-1]) for m, p, _, _ in rec.seen[:3]]
    assert methods[0] == ("POST", "/v1/files") and methods[1][0] == "PUT" and methods[2][1].endswith("/preprocess")

    estimate = client.fine_tuning.estimate_price(training_file=uploaded.id, model=BASE, n_epochs=2)
    again = client.fine_tuning.estimate_price(training_file=uploaded.id, model=BASE, n_epochs=2)
    assert estimate.estimated_total_price == again.estimated_total_price > 0
    per_token = resolve_together_model(BASE).price_per_token(full=False, dpo=False)  # type: ignore[union-attr]
    assert estimate.estimated_total_price == pytest.approx(estimate.estimated_train_token_count * per_token)

    job = client.fine_tuning.create(training_file=uploaded.id, model=BASE, n_epochs=2, suffix="support",
                                    train_on_inputs="auto", random_seed=7)
    assert job.id.startswith("ft-") and job.status == "pending"
    assert job.output_name.startswith("sandbox-user/Meta-Llama-3.1-8B-Instruct-Reference-support-")
    assert len(job.output_name.rsplit("-", 1)[1]) == 6
    assert [j.id for j in client.fine_tuning.list().data] == [job.id]

    done = _wait(client, job.id, lambda s: s == "completed")
    assert done.x_model_output_name == job.output_name and done.token_count and done.random_seed == 7
    types = [e.type for e in client.fine_tuning.list_events(job.id).data]
    assert types[0] == "job_pending" and "job_start" in types and types[-1] == "job_complete"
    checkpoints = client.fine_tuning.list_checkpoints(job.id).data
    assert checkpoints[0].checkpoint_type == "Final" and checkpoints[0].path == job.output_name
    # SDK 3.x's models.list() is the project-scoped model registry; the spec's GET /v1/models is raw:
    assert job.output_name in [m["id"] for m in client.get("/v1/models", cast_to=object)]

    answer = client.chat.completions.create(model=job.output_name,
                                            messages=[{"role": "user", "content": "q question number 5 about topic5"}])
    assert answer.choices[0].message.content == "answer 5 for topic5"

    other = client.fine_tuning.create(training_file=uploaded.id, model=BASE, train_on_inputs="auto")
    assert client.fine_tuning.cancel(other.id).status == "cancel_requested"
    assert _wait(client, other.id, lambda s: s != "cancel_requested").status == "cancelled"
    assert client.fine_tuning.delete(other.id).message
    assert [j.id for j in client.fine_tuning.list().data] == [job.id]
    assert client.files.delete(uploaded.id).deleted is True

    checked = 0
    for method, path, status, body in rec.seen:
        ref = _schema_for(method, path, status)
        if ref is not None:
            together_spec.validate(ref, body)
            checked += 1
    assert checked >= 18


def test_sdk_errors_use_together_error_shape(served: str, tmp_path: Path, together_spec: TogetherSpec) -> None:
    together = pytest.importorskip("together")
    rec = Recorder()
    client = _sdk(served, rec)
    data = tmp_path / "t.jsonl"
    data.write_bytes(jsonl(chat_lines(12)))
    file_id = client.files.upload(data).id
    with pytest.raises(together.BadRequestError) as too_long:
        client.fine_tuning.create(training_file=file_id, model=BASE, suffix="x" * 41, train_on_inputs="auto")
    assert too_long.value.status_code == 400
    with pytest.raises(together.NotFoundError):
        client.fine_tuning.retrieve("ft-00000000-0000-0000-0000-000000000000")
    anonymous = httpx.get(f"{served}/together/v1/files")
    assert anonymous.status_code == 401
    together_spec.validate("ErrorData", anonymous.json())
    errors = [(s, b) for _, _, s, b in rec.seen if s >= 400]
    assert errors and all(together_spec.validate("ErrorData", b) is None for _, b in errors)
    assert any(b["error"]["param"] == "suffix" for _, b in errors)


# -- in-process, plain HTTP, injected clock ----------------------------------------------------------

def _together(app: SandboxApp, key: str = "tg-key") -> httpx.Client:
    return httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local/together/v1",
                        headers={"Authorization": f"Bearer {key}"})


def _upload(c: httpx.Client, data: bytes, name: str = "train.jsonl") -> str:
    r = c.post("/files/upload", files={"file": (name, data)},
               data={"purpose": "fine-tune", "file_name": name, "file_type": "jsonl"})
    assert r.status_code == 200, r.text
    assert r.json()["Processed"] is True
    file_id: str = r.json()["id"]
    return file_id


def test_in_process_status_progression(make_app: Callable[..., SandboxApp], clock: FakeClock,
                                       together_spec: TogetherSpec) -> None:
    app = make_app(time_scale=10.0)
    with _together(app) as c:
        file_id = _upload(c, jsonl(chat_lines(40)))
        together_spec.validate("FileResponse", c.get(f"/files/{file_id}").json())
        r = c.post("/fine-tunes", json={"training_file": file_id, "model": BASE, "suffix": "support",
                                        "n_epochs": 3, "training_type": {"type": "Lora", "lora_r": 16,
                                                                         "lora_alpha": 32}})
        assert r.status_code == 200, r.text
        together_spec.validate("FinetuneResponseTruncated", r.json())
        job_id = r.json()["id"]
        seen: list[str] = []
        for _ in range(4000):
            job = c.get(f"/fine-tunes/{job_id}").json()
            if not seen or seen[-1] != job["status"]:
                together_spec.validate("FinetuneResponse", job)
                seen.append(job["status"])
            if job["status"] == "completed":
                break
            clock.advance(0.25)
        assert seen == ["pending", "queued", "running", "compressing", "uploading", "completed"]
        assert job["training_type"] == {"type": "Lora", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
                                        "lora_trainable_modules": "all-linear"}
        assert job["model_output_name"].startswith("sandbox-user/Meta-Llama-3.1-8B-Instruct-Reference-support-")


def test_in_process_dpo_and_prompt_completion(app: SandboxApp, clock: FakeClock) -> None:
    prefs = [json.dumps({"input": {"messages": [{"role": "user", "content": f"pick {i}"}]},
                         "preferred_output": [{"role": "assistant", "content": f"good {i}"}],
                         "non_preferred_output": [{"role": "assistant", "content": f"bad {i}"}]}) for i in range(12)]
    pc = [json.dumps({"prompt": f"say {i}", "completion": f"said {i}"}) for i in range(12)]
    with _together(app) as c:
        dpo = c.post("/fine-tunes", json={"training_file": _upload(c, jsonl(prefs)), "model": "Qwen/Qwen2.5-7B-Instruct",
                                          "training_method": {"method": "dpo", "dpo_beta": 0.2}}).json()
        sft = c.post("/fine-tunes", json={"training_file": _upload(c, jsonl(pc)), "model": BASE}).json()
        assert dpo["training_method"]["dpo_beta"] == 0.2
        clock.advance(24 * 3600)
        for job, prompt, reply in ((dpo, "pick 3", "good 3"), (sft, "say 4", "said 4")):
            assert c.get(f"/fine-tunes/{job['id']}").json()["status"] == "completed"
            r = c.post("/chat/completions", json={"model": job["model_output_name"],
                                                  "messages": [{"role": "user", "content": prompt}]})
            assert r.json()["choices"][0]["message"]["content"] == reply


def test_in_process_failures(app: SandboxApp, clock: FakeClock) -> None:
    with _together(app) as c:
        few = c.post("/fine-tunes", json={"training_file": _upload(c, jsonl(chat_lines(3))), "model": BASE}).json()
        clock.advance(3600)
        job = c.get(f"/fine-tunes/{few['id']}").json()
        assert job["status"] == "error"
        assert any(e["type"] == "job_error" and e["level"] == "error" for e in job["events"])
        good = _upload(c, jsonl(chat_lines(12)))
        r = c.post("/fine-tunes", json={"training_file": good, "model": "meta-llama/Not-A-Model"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "model"
        r = c.post("/fine-tunes", json={"training_file": good, "model": BASE, "suffix": "s" * 41})
        assert r.status_code == 400 and r.json()["error"]["param"] == "suffix"
        r = c.post("/fine-tunes", json={"training_file": good, "model": BASE, "n_epoch": 2})
        assert r.status_code == 400 and r.json()["error"]["param"] == "n_epoch"
        bad = c.post("/files/upload", files={"file": ("x.jsonl", b"not json\n")},
                     data={"purpose": "fine-tune", "file_name": "x.jsonl"}).json()
        assert bad["Processed"] is False and bad["processing_status"] == "INVALID_FORMAT"
        r = c.post("/fine-tunes", json={"training_file": bad["id"], "model": BASE})
        assert r.status_code == 400 and r.json()["error"]["param"] == "training_file"
        assert c.get("/files", headers={"Authorization": ""}).status_code == 401


def test_signed_upload_needs_its_token(app: SandboxApp) -> None:
    with _together(app) as c:
        r = c.post("/files", files={"purpose": (None, "fine-tune"), "file_name": (None, "a.jsonl"),
                                    "file_type": (None, "jsonl")})
        assert r.status_code == 302 and r.headers["X-Together-File-Id"].startswith("file-")
        location = r.headers["Location"]
        assert c.put(location.split("?")[0] + "?token=wrong", content=b"{}\n", headers={"Authorization": ""}
                     ).status_code == 403
        assert c.put(location, content=b"{}\n", headers={"Authorization": ""}).status_code == 200
        file_id = r.headers["X-Together-File-Id"]
        assert c.post(f"/files/{file_id}/preprocess").json()["LineCount"] == 1


def test_dialects_do_not_see_each_other(app: SandboxApp, clock: FakeClock) -> None:
    with in_process_client(app) as oa, _together(app) as tg:
        oa_file = oa.post("/files", files={"file": ("o.jsonl", jsonl(chat_lines(12)))},
                          data={"purpose": "fine-tune"}).json()["id"]
        oa_job = oa.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": oa_file}).json()["id"]
        tg_file = _upload(tg, jsonl(chat_lines(12)))
        tg_job = tg.post("/fine-tunes", json={"training_file": tg_file, "model": BASE}).json()["id"]
        clock.advance(24 * 3600)

        assert [f["id"] for f in tg.get("/files").json()["data"]] == [tg_file]
        assert [j["id"] for j in tg.get("/fine-tunes").json()["data"]] == [tg_job]
        assert [f["id"] for f in oa.get("/files").json()["data"] if f["purpose"] == "fine-tune"] == [oa_file]
        assert [j["id"] for j in oa.get("/fine_tuning/jobs").json()["data"]] == [oa_job]
        assert tg.get(f"/fine-tunes/{oa_job}").status_code == 404
        assert oa.get(f"/fine_tuning/jobs/{tg_job}").status_code == 404
        assert tg.get(f"/files/{oa_file}").status_code == 404
        assert oa.get(f"/files/{tg_file}").status_code == 404
        r = tg.post("/fine-tunes", json={"training_file": oa_file, "model": BASE})
        assert r.status_code == 400 and r.json()["error"]["param"] == "training_file"
        oa_model = oa.get(f"/fine_tuning/jobs/{oa_job}").json()["fine_tuned_model"]
        tg_model = tg.get(f"/fine-tunes/{tg_job}").json()["model_output_name"]
        assert oa_model not in [m["id"] for m in tg.get("/models").json()]
        assert tg_model not in [m["id"] for m in oa.get("/models").json()["data"]]
        chat = {"messages": [{"role": "user", "content": "hi"}]}
        assert tg.post("/chat/completions", json={"model": oa_model, **chat}).status_code == 404
        assert oa.post("/chat/completions", json={"model": tg_model, **chat}).status_code == 404


def test_faults_apply_to_together_routes(db_path: Path, clock: FakeClock, together_spec: TogetherSpec) -> None:
    app = SandboxApp(db_path, settings=SandboxSettings(faults=FaultConfig(error_rate=1.0, seed=1)), clock=clock)
    with _together(app) as c:
        r = c.get("/fine-tunes")
        assert r.status_code in (500, 503)
        together_spec.validate("ErrorData", r.json())


def test_lost_response_create_still_created_the_job(db_path: Path, clock: FakeClock) -> None:
    healthy = SandboxApp(db_path, clock=clock)
    with _together(healthy) as c:
        file_id = _upload(c, jsonl(chat_lines(12)))
    lossy = SandboxApp(db_path, settings=SandboxSettings(faults=FaultConfig(lost_response_rate=1.0, seed=3)),
                       clock=clock)
    with _together(lossy) as c, pytest.raises(httpx.RemoteProtocolError):
        c.post("/fine-tunes", json={"training_file": file_id, "model": BASE, "suffix": "lost"})
    with _together(healthy) as c:
        jobs = c.get("/fine-tunes").json()["data"]
    assert len(jobs) == 1 and jobs[0]["suffix"] == "lost"


def test_rate_limits_count_per_dialect(make_app: Callable[..., SandboxApp]) -> None:
    app = make_app(job_creates_per_hour=1)
    with in_process_client(app) as oa, _together(app) as tg:
        oa_file = oa.post("/files", files={"file": ("o.jsonl", jsonl(chat_lines(12)))},
                          data={"purpose": "fine-tune"}).json()["id"]
        assert oa.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": oa_file}).status_code == 200
        tg_file = _upload(tg, jsonl(chat_lines(12)))
        assert tg.post("/fine-tunes", json={"training_file": tg_file, "model": BASE}).status_code == 200
        r = tg.post("/fine-tunes", json={"training_file": tg_file, "model": BASE})
        assert r.status_code == 429 and "Retry-After" in r.headers
