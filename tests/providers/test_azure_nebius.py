"""Azure OpenAI and Nebius on the wire (MockTransport): authentication, the training type, the BOM sent
and hashed, and Nebius's suffix identity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from ftops.providers import Identity, ModelSpec, ProviderError
from ftops.providers.azure import BOM, AzureOpenAIProvider, azure_base_url
from ftops.providers.nebius import NebiusProvider

from .conftest import Script, job_json


def _azure(script: Script, **kw: object) -> AzureOpenAIProvider:
    client = httpx.Client(transport=httpx.MockTransport(script), base_url=azure_base_url("res"))
    return AzureOpenAIProvider(client, max_retries=0, **kw)  # type: ignore[arg-type]


def test_entra_token_when_no_key_and_training_type_translated() -> None:
    script = Script([httpx.Response(200, json={"object": "list", "data": [], "has_more": False})])
    p = _azure(script, api_key=None, token_provider=lambda: "entra-token", training_type="global_standard")
    p.list_jobs("proj")
    assert script.requests[0].headers["authorization"] == "Bearer entra-token"
    assert "api-key" not in script.requests[0].headers
    spec = ModelSpec(name="m", base_model="gpt-4o-mini-2024-07-18")
    assert p.validate(spec) == []
    assert p.translate(spec, training="sha256:x", validation=None)["trainingType"] == "globalstandard"
    dev = spec.model_copy(update={"options": {"training_type": "developer"}, "options_from_model": frozenset({"training_type"})})
    assert p.translate(dev, training="sha256:x", validation=None)["trainingType"] == "developer"
    bare = _azure(script, api_key="k")
    (problem,) = bare.validate(spec)
    assert problem.code == "provider.missing_field" and "training_type: global_standard" in problem.hint
    assert bare.job_state("pending").value == "pending" and bare.job_state("weird").value == "unknown"


def test_upload_sends_a_bom_and_hashes_the_file_bytes(tmp_path: Path) -> None:
    data = b'{"messages": []}\n' * 3
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    bodies: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return httpx.Response(200, json={"id": "file-1", "object": "file", "bytes": len(data) + 3, "created_at": 1,
                                         "filename": "t.jsonl", "purpose": "fine-tune", "status": "processed"})

    p = _azure(Script([answer]), api_key="k")
    f = p.upload_file(path, sha256=hashlib.sha256(data).hexdigest(), display_path="t.jsonl")
    assert f.id == "file-1" and BOM + data in bodies[0]
    # planned bytes differ from the bytes sent (file rewritten): refused, the upload deleted
    p2 = _azure(Script([answer, httpx.Response(200, json={"id": "file-1", "deleted": True})]), api_key="k")
    with pytest.raises(ProviderError) as e:
        p2.upload_file(path, sha256="0" * 64, display_path="t.jsonl")
    assert e.value.code == "dataset_changed_during_upload"


def test_nebius_identity_lives_in_the_suffix() -> None:
    created: list[dict[str, object]] = []

    def create(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        created.append(body)
        return httpx.Response(200, json=job_json("ftjob-n1", suffix=body["suffix"], metadata=None))

    client = httpx.Client(transport=httpx.MockTransport(Script([create])), base_url="https://nebius.test/v1")
    p = NebiusProvider(client, api_key="k", max_retries=0)
    spec = ModelSpec(name="bot", base_model="meta-llama/Meta-Llama-3.1-8B-Instruct", suffix="s",
                     hyperparameters={"n_epochs": 2}, options={"lora": True, "learning_rate": 1},
                     options_from_model=frozenset({"lora", "learning_rate"}))
    body = p.translate(spec, training="sha256:" + "a" * 64, validation=None)
    assert body["hyperparameters"] == {"learning_rate": 1.0, "lora": True, "n_epochs": 2}
    ident = Identity(project="p", model="bot", fingerprint="f" * 32, attempt=2)
    job = p.create_job(body, ident, {"a" * 64: "file-1"})
    assert str(created[0]["suffix"]).startswith("s-x") and created[0]["training_file"] == "file-1"
    assert "metadata" not in created[0]
    assert job.group == p.group_key("p", "bot", "f" * 32) and job.attempt == 2
    bad = p.validate(spec.model_copy(update={"hyperparameters": {"learning_rate_multiplier": 2.0},
                                             "metadata": {"a": "b"}}))
    assert {b.code for b in bad} == {"provider.unsupported_field"}
