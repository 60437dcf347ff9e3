"""examples/nebius on the embedded sandbox (Nebius's dialect), and its routes through the `openai` SDK."""

from __future__ import annotations

import shutil
from pathlib import Path

import openai
import pytest

from ftops.sandbox import SandboxSettings
from ftops.sandbox.testing import running_sandbox
from tests.e2e.conftest import REPO, Project
from tests.sandbox.conftest import chat_lines, jsonl


@pytest.fixture
def nebius(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "nebius"
    shutil.copytree(REPO / "examples" / "nebius", root, ignore=shutil.ignore_patterns(".ftops"))
    return Project(root, capsys)


def test_example_applies_with_its_hyperparameters_and_replans_to_no_changes(nebius: Project) -> None:
    doc = nebius.ftops("plan", "--json")
    assert doc.code == 0, doc.err
    (m,) = doc.json()["models"]
    assert m["body"]["hyperparameters"] == {"batch_size": 8, "context_length": 8192, "learning_rate": 1e-05,
                                            "lora": True, "lora_alpha": 16, "lora_r": 16, "n_epochs": 3,
                                            "warmup_ratio": 0.05}
    assert nebius.ftops("apply", "--auto-approve").code == 0
    (row,) = nebius.remote("select suffix, metadata from jobs where dialect = 'nebius'")
    assert row[0].startswith("support-x") and row[1] is None  # identity in the suffix, no metadata
    assert nebius.ftops("plan", "--detailed-exitcode").code == 0


def test_refusals_name_what_nebius_takes_instead(nebius: Project) -> None:
    nebius.edit("n_epochs: 3, batch_size: 8", "n_epochs: 3, learning_rate_multiplier: 2")
    r = nebius.ftops("plan")
    assert r.code == 1 and "options: {learning_rate: 1.0e-5}" in r.err
    nebius.edit("n_epochs: 3, learning_rate_multiplier: 2", "n_epochs: 3")
    nebius.edit("    seed: 42", "    seed: 42\n    metadata: {team: cx}")
    r = nebius.ftops("plan")
    assert r.code == 1 and "error[provider.unsupported_field]" in r.err and "metadata" in r.err
    nebius.edit("    metadata: {team: cx}\n", "")
    nebius.edit("warmup_ratio: 0.05,", "warmup_ratio: 0.05, lora_rank: 8,")
    r = nebius.ftops("plan")
    assert r.code == 1 and "did you mean `lora_r`?" in r.err


def test_routes_through_the_openai_sdk(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "s.db", SandboxSettings(time_scale=1000.0)) as url:
        sdk = openai.OpenAI(base_url=url.removesuffix("/v1") + "/nebius/v1", api_key="nb-key", max_retries=0)
        f = sdk.files.create(file=("t.jsonl", jsonl(chat_lines(12))), purpose="fine-tune")
        job = sdk.fine_tuning.jobs.create(model="meta-llama/Meta-Llama-3.1-8B-Instruct", training_file=f.id,
                                          suffix="s", seed=7, hyperparameters={"n_epochs": 2},  # type: ignore[typeddict-unknown-key]
                                          extra_body={"hyperparameters": {"n_epochs": 2, "lora": True, "lora_r": 8}})
        assert job.status == "validating_files"
        got = sdk.fine_tuning.jobs.retrieve(job.id).model_dump()
        assert got["suffix"] == "s" and got["hyperparameters"]["lora_r"] == 8
        with pytest.raises(openai.BadRequestError):
            sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=f.id)
        assert [j.id for j in sdk.fine_tuning.jobs.list().data] == [job.id]
