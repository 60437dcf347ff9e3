"""Together AI end to end on the embedded sandbox (its own dialect, `/together/v1`), through the CLI.

The remote truth is read from the sandbox's database; the provider boundary is exercised whole:
validation from capabilities, translation, the identity tag in the suffix, status mapping, cost.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Project, add_examples

TOGETHER = REPO / "examples" / "together"
MIGRATE = REPO / "examples" / "migrate-openai-to-together"


@pytest.fixture
def together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "together"
    shutil.copytree(TOGETHER, root, ignore=shutil.ignore_patterns(".ftops"))
    return Project(root, capsys)


def _live(p: Project) -> list[tuple[str, str]]:
    return p.remote("select id, suffix from jobs where dialect = 'together' and status not in "
                    "('failed', 'cancelled') order by seq")


def _summary(p: Project) -> dict[str, int]:
    r = p.ftops("plan", "--json")
    assert r.code == 0, r.err
    return r.json()["summary"]


def _apply(p: Project) -> None:
    r = p.ftops("apply", "--auto-approve")
    assert r.code == 0, r.out + r.err


def test_apply_then_no_changes_then_edits(together: Project) -> None:
    _apply(together)
    live = _live(together)
    assert len(live) == 2 and together.file_count() == 2
    # ftops's identity tag sits after the user's suffix, within Together's 40 characters.
    assert all(s.startswith(("support-", "support-qwen-")) and len(s) <= 40 for _id, s in live), live
    assert together.ftops("plan", "--detailed-exitcode").code == 0
    # A hyperparameter edit: one replace, no upload.
    together.edit("hyperparameters: {n_epochs: 2}", "hyperparameters: {n_epochs: 3}")
    s = _summary(together)
    assert (s["upload"], s["create"], s["replace"], s["unchanged"]) == (0, 0, 1, 1)
    _apply(together)
    assert together.job_count() == 3 and together.file_count() == 2
    # Dataset bytes edit: one upload, both models replaced.
    add_examples(together.root / "data" / "train.jsonl", 3, offset=0)
    s = _summary(together)
    assert (s["upload"], s["replace"]) == (1, 2)
    _apply(together)
    assert together.file_count() == 3 and together.job_count() == 5


def test_lost_state_adopts_every_job(together: Project) -> None:
    _apply(together)
    jobs = together.job_count()
    for f in (together.root / ".ftops").glob("state.json*"):
        f.unlink()
    s = _summary(together)
    assert (s["adopt"], s["create"], s["upload"]) == (2, 0, 0)
    _apply(together)
    assert together.job_count() == jobs
    out = together.ftops("output", "--json").json()
    assert all(v["fine_tuned_model"] is None or v["fine_tuned_model"].startswith("sandbox-user/")
               for v in out.values())


def test_cost_comes_from_the_estimate_endpoint_once_data_is_there(together: Project) -> None:
    before = together.ftops("plan", "--json").json()
    notes = {m["name"]: m["cost"]["note"] for m in before["models"]}
    assert all("needs the data uploaded first" in n for n in notes.values()), notes
    _apply(together)
    together.edit("hyperparameters: {n_epochs: 2}", "hyperparameters: {n_epochs: 4}")
    after = together.ftops("plan", "--json").json()
    qwen = next(m for m in after["models"] if m["name"] == "support-bot-qwen")
    assert qwen["cost"]["note"] == "the provider's own estimate" and qwen["cost"]["usd"] is not None


def test_status_output_and_plan_json_name_each_models_provider(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "mixed"
    shutil.copytree(MIGRATE, root, ignore=shutil.ignore_patterns(".ftops"))
    p = Project(root, capsys)
    p.edit("models:\n", "models:\n  llama-bot:\n    provider: together\n"
                        "    base_model: meta-llama/Meta-Llama-3.1-8B-Instruct-Reference\n"
                        "    training_file: data/train.jsonl\n    options: {learning_rate: 1.0e-5}\n")
    plan = p.ftops("plan", "--json").json()
    assert {m["name"]: m["provider"] for m in plan["models"]} == {"llama-bot": "together", "support-bot": "default"}
    assert {n: v["type"] for n, v in plan["providers"].items()} == {"default": "openai", "together": "together"}
    # One dataset, two providers: uploaded once to each.
    assert sorted((f["provider"], f["path"]) for f in plan["files"] if f["action"] == "upload") == [
        ("default", "data/train.jsonl"), ("default", "data/val.jsonl"), ("together", "data/train.jsonl")]
    _apply(p)
    assert p.ftops("plan", "--detailed-exitcode").code == 0
    state = json.loads((root / ".ftops" / "state.json").read_text())
    assert {n: m["provider"] for n, m in state["models"].items()} == {"llama-bot": "together",
                                                                     "support-bot": "default"}
    assert p.remote("select dialect, count(*) from jobs group by dialect order by dialect") == [
        ("openai", 1), ("together", 1)]


def test_moving_a_model_to_together_is_a_replace_and_keeps_the_old_model(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "migrate"
    shutil.copytree(MIGRATE, root, ignore=shutil.ignore_patterns(".ftops"))
    p = Project(root, capsys)
    _apply(p)
    old = json.loads((root / ".ftops" / "state.json").read_text())["models"]["support-bot"]["job"]["job_id"]
    p.edit("    base_model: gpt-4o-mini-2024-07-18\n", "    provider: together\n"
                                                        "    base_model: meta-llama/Meta-Llama-3.1-8B-Instruct-Reference\n")
    p.edit("hyperparameters: {n_epochs: 3, learning_rate_multiplier: 2}", "hyperparameters: {n_epochs: 3}\n"
                                                                         "    options: {learning_rate: 1.0e-5}")
    p.edit("    metadata: {team: cx}\n", "")
    plan = p.ftops("plan", "--json").json()
    bot = plan["models"][0]
    assert (bot["action"], bot["reason"], bot["provider"]) == ("replace", "replace_because_provider_changed", "together")
    assert bot["actions"] == ["create"]  # nothing is deleted: the OpenAI model stays
    _apply(p)
    state = json.loads((root / ".ftops" / "state.json").read_text())["models"]["support-bot"]
    assert state["provider"] == "together" and [h["job_id"] for h in state["history"]] == [old]


@pytest.mark.parametrize(("edit", "code", "where"), [
    ("hyperparameters: {n_epochs: 3, batch_size: auto}",
     "provider.unsupported_field", "hyperparameters: {n_epochs: 3, batch_size: auto, learning_rate_multiplier: 2}"),
    ("method: supervised", "provider.unsupported_method",
     "method: reinforcement\n    grader: {type: string_check, name: x, input: a, reference: b, operation: eq}"),
    ("suffix: support        #", "provider.invalid_value", "suffix: a-suffix-far-too-long-for-together #"),
    ("seed: 42", "provider.unsupported_field", "seed: 42\n    metadata: {team: cx}"),
    ("options: {learning_rate: 1.0e-5,", "provider.unknown_option", "options: {learning_rat: 1.0e-5,"),
    ("options: {learning_rate: 1.0e-5,", "provider.invalid_value", "options: {learning_rate: 7,"),
    ("options: {lora_r: 16}", "provider.invalid_value", "options: {lora_r: 0}"),
])
def test_fields_together_cannot_honour_are_refused_before_any_request(together: Project, edit: str, code: str,
                                                                      where: str) -> None:
    together.edit(edit, where)
    for cmd in (("validate",), ("plan",)):
        r = together.ftops(*cmd, "--json")
        assert r.code == 1, r.out
        diags = r.json()["diagnostics"]
        hit = [d for d in diags if d["code"] == code]
        assert hit, diags
        line = hit[0]["range"]["line"]
        assert together.config.read_text().splitlines()[line - 1].strip(), hit[0]
    assert not (together.root / ".ftops" / "sandbox.db").exists() or together.job_count() == 0


def test_apply_json_names_what_it_created(together: Project) -> None:
    r = together.ftops("apply", "--auto-approve", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["created"] == 2 and sorted(doc["created_jobs"]) == sorted(i for i, _s in _live(together))
    assert len(doc["uploaded_files"]) == 2 and doc["cancelled_jobs"] == []
