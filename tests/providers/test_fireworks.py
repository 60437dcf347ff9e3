"""FireworksProvider against the sandbox in process: client-chosen ids, 409 as adoption, states,
translation, refusals with file:line, and the request count of one refresh."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ftops.diagnostics import FtopsError
from ftops.providers import FireworksProvider, Identity, JobState, ModelSpec
from ftops.providers.fireworks import dataset_id
from ftops.sandbox import SandboxApp, SandboxSettings, in_process_transport
from ftops.workspace import Workspace
from tests.sandbox.conftest import FakeClock, chat_lines, jsonl

pytestmark = pytest.mark.needs_tiktoken
BASE = "accounts/fireworks/models/llama-v3p1-8b-instruct"


@pytest.fixture
def world(tmp_path: Path) -> tuple[FireworksProvider, FakeClock]:
    clock = FakeClock()
    app = SandboxApp(tmp_path / "s.db", settings=SandboxSettings(time_scale=1000.0), clock=clock)
    http = httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local/fireworks/v1")
    return FireworksProvider(http, api_key="k", account_id="acme", sleep=lambda s: None), clock


def _spec(**kw: object) -> ModelSpec:
    return ModelSpec(name="bot", base_model=BASE, **kw)  # type: ignore[arg-type]


def test_ids_are_lowercase_bounded_and_group_by_project() -> None:
    p = FireworksProvider(httpx.Client(base_url="http://x/v1"), api_key=None)
    ident = Identity(project="Proj", model="Support_Bot", fingerprint="f" * 32, attempt=12)
    jid = p.job_id(ident)
    assert jid.startswith("ft-") and len(jid) <= 63 and jid == jid.lower()
    assert jid.endswith("-a12") and jid[3:-4] == p.group_key("Proj", "Support_Bot", "f" * 32)
    assert p.job_id(ident.model_copy(update={"attempt": 13})) != jid
    assert len(dataset_id("a" * 64)) == 63


def test_translate_and_validate() -> None:
    p = FireworksProvider(httpx.Client(base_url="http://x/v1"), api_key=None)
    body = p.translate(_spec(hyperparameters={"n_epochs": 2, "batch_size": 4096},
                             options={"learning_rate": 1e-4, "lora_rank": 8, "warmup_steps": 5}, suffix="bot"),
                       training="sha256:aa", validation="sha256:bb")
    assert body == {"dataset": "sha256:aa", "evaluationDataset": "sha256:bb", "baseModel": BASE, "epochs": 2,
                    "batchSize": 4096, "learningRate": 1e-4, "loraRank": 8, "learningRateWarmupSteps": 5,
                    "displayName": "bot"}
    dpo = p.translate(_spec(method="dpo", hyperparameters={"beta": 0.2}), training="sha256:aa", validation=None)
    assert dpo == {"dataset": "sha256:aa", "trainingConfig": {"baseModel": BASE},
                   "lossConfig": {"method": "DPO", "dpo": {"beta": 0.2}}}
    codes = {(pr.path, pr.code) for pr in p.validate(_spec(
        hyperparameters={"learning_rate_multiplier": 2.0}, seed=1, seed_declared=True, metadata={"a": "b"},
        method="supervised"))}
    assert codes == {(("hyperparameters", "learning_rate_multiplier"), "provider.unsupported_field"),
                     (("seed",), "provider.unsupported_field"), (("metadata",), "provider.unsupported_field")}
    hint = next(pr.hint for pr in p.validate(_spec(hyperparameters={"learning_rate_multiplier": 2.0})))
    assert "options" in hint and "learning_rate" in hint


def test_states_map_through_the_boundary() -> None:
    p = FireworksProvider(httpx.Client(base_url="http://x/v1"), api_key=None)
    assert p.job_state("JOB_STATE_COMPLETED") is JobState.SUCCEEDED
    assert p.job_state("JOB_STATE_CANCELLING") is JobState.RUNNING
    assert p.job_state("JOB_STATE_EXPIRED") is JobState.FAILED
    assert p.job_state("JOB_STATE_SOMETHING_NEW") is JobState.UNKNOWN


def test_upload_create_adopt_on_409_and_refresh_counts(world: tuple[FireworksProvider, FakeClock],
                                                       tmp_path: Path) -> None:
    p, clock = world
    data = tmp_path / "t.jsonl"
    data.write_bytes(jsonl(chat_lines(12)))
    import hashlib

    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    f = p.upload_file(data, sha256=sha, display_path="t.jsonl")
    again = p.upload_file(data, sha256=sha, display_path="t.jsonl")  # 409 on create: the same dataset
    assert f.id == again.id == f"accounts/acme/datasets/{dataset_id(sha)}" and f.usable
    assert [x.sha256 for x in p.list_files()] == [sha]

    body = p.translate(_spec(hyperparameters={"n_epochs": 1}), training=f"sha256:{sha}", validation=None)
    ident = Identity(project="p", model="bot", fingerprint="0" * 32)
    job = p.create_job(body, ident, {sha: f.id})
    assert not job.existed and job.group == p.group_key("p", "bot", "0" * 32) and job.attempt == 1
    dup = p.create_job(body, ident, {sha: f.id})
    assert dup.existed and dup.id == job.id
    assert [j.id for j in p.list_jobs("p")] == [job.id]
    assert p.list_jobs("other-project") == []
    assert [j.id for j in p.find_jobs(ident)] == [job.id]
    assert p.find_jobs(ident.model_copy(update={"attempt": 2})) == []
    clock.advance(3600)
    done = p.get_job(job.id)
    assert done.state is JobState.SUCCEEDED and done.fine_tuned_model == f"accounts/acme/models/{p.job_id(ident)}"

    from ftops.engine.refresh import refresh_provider
    from ftops.state import State

    snap = refresh_provider(p, "default", State(), "p")
    assert snap.requests == 4  # datasets, supervised jobs, DPO jobs, deployments: one page each


def _project(tmp_path: Path, model_extra: str, provider_extra: str = "") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "t.jsonl").write_bytes(jsonl(chat_lines(12)))
    (tmp_path / "ftops.yaml").write_text(
        "version: 1\nproject: p\nprovider:\n  type: fireworks\n  sandbox: true\n" + provider_extra +
        "models:\n  bot:\n    base_model: " + BASE + "\n    training_file: data/t.jsonl\n" + model_extra)
    return tmp_path


def test_declared_seed_is_refused_with_file_line(tmp_path: Path) -> None:
    ws = Workspace(_project(tmp_path, "    seed: 7\n"), environ={})
    with pytest.raises(FtopsError) as e:
        ws.desired()
    d = next(d for d in e.value.diagnostics if d.code == "provider.unsupported_field")
    assert d.range is not None and d.range.line == 10


def test_no_seed_is_derived_for_fireworks(tmp_path: Path) -> None:
    ws = Workspace(_project(tmp_path, ""), environ={})
    (m,) = ws.desired().models
    assert m.seed is None and "seed" not in json.dumps(m.body)


def test_account_id_only_on_fireworks(tmp_path: Path) -> None:
    (tmp_path / "ftops.yaml").write_text("version: 1\nprovider: {type: together, sandbox: true, account_id: a}\n"
                                         "models: {}\n")
    with pytest.raises(FtopsError) as e:
        _ = Workspace(tmp_path, environ={}).loaded
    assert any("account_id" in d.summary for d in e.value.diagnostics)
