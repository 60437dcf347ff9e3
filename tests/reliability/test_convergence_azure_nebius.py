"""Convergence on Azure OpenAI and Nebius Token Factory (embedded sandbox, their own dialects).

apply -> no changes -> hyperparameter edit = 1 replace, 0 uploads -> dataset edit = 1 upload and the
replaces of its models -> lost state adopts every job (Azure: client-side metadata filter; Nebius:
suffix tag) -> 30% faults including lost responses converge with exactly one job per model.
One fault seed per provider by default; more under `-m soak`.
"""

from __future__ import annotations

import collections
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import QUICKSTART_DATA, run_cli, shorten_backoff

MODELS = 3
FAULTS = "error_rate=0.3,rate_limit_rate=0.3,lost_response_rate=0.3,latency_ms=5,retry_after_ms=50,seed={seed}"
PROVIDERS: dict[str, dict[str, str]] = {
    "azure": {"entry": "  type: azure\n  sandbox: true\n  training_type: standard\n",
              "base": "gpt-4o-mini-2024-07-18", "hp": "{n_epochs: 2}", "hp2": "{n_epochs: 3}"},
    "nebius": {"entry": "  type: nebius\n  sandbox: true\n  options: {lora: true, lora_r: 8}\n",
               "base": "meta-llama/Meta-Llama-3.1-8B-Instruct", "hp": "{n_epochs: 2}", "hp2": "{n_epochs: 3}"},
}


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FTOPS_SANDBOX_FAULTS", "FTOPS_SANDBOX_TIME_SCALE", "FTOPS_TODAY"):
        monkeypatch.delenv(var, raising=False)
    shorten_backoff(monkeypatch)


def _project(root: Path, ptype: str) -> Path:
    (root / "data").mkdir(parents=True)
    for name in ("train.jsonl", "val.jsonl"):
        (root / "data" / name).write_bytes((QUICKSTART_DATA / name).read_bytes())
    p = PROVIDERS[ptype]
    lines = ["version: 1", f"project: conv-{ptype}", "provider:", p["entry"].rstrip("\n"),
             "  timeout: 10", "  max_retries: 8", "  max_retry_wait: 30", "models:"]
    for i in range(MODELS):
        lines += [f"  m{i}:", f"    base_model: {p['base']}",
                  f"    training_file: data/{'val' if i == MODELS - 1 else 'train'}.jsonl",
                  f"    hyperparameters: {p['hp']}", f"    suffix: c{i}", f"    seed: {i + 1}"]
    (root / "ftops.yaml").write_text("\n".join(lines) + "\n")
    return root


def _remote(root: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / ".ftops" / "sandbox.db") as db:
        return db.execute(sql).fetchall()


def _jobs_by_model(root: Path, ptype: str) -> dict[str, int]:
    """Live jobs per declared model, read from the remote truth (metadata on Azure, the suffix on Nebius)."""
    out: collections.Counter[str] = collections.Counter()
    for suffix, metadata, status in _remote(root, f"select suffix, metadata, status from jobs where dialect = '{ptype}'"):
        if status in ("failed", "cancelled"):
            continue
        out[json.loads(metadata)["ftops_model"] if ptype == "azure" else "m" + suffix.split("-")[0][1:]] += 1
    return dict(out)


def _plan(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run_cli(root, capsys, "plan", "--json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def _apply(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(root, capsys, "apply", "--auto-approve")
    assert code == 0, err


@pytest.mark.parametrize("ptype", sorted(PROVIDERS))
def test_apply_edit_and_lost_state_converge(ptype: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path / ptype, ptype)
    _apply(root, capsys)
    assert _jobs_by_model(root, ptype) == {f"m{i}": 1 for i in range(MODELS)}
    assert run_cli(root, capsys, "plan", "--detailed-exitcode")[0] == 0

    text = (root / "ftops.yaml").read_text()
    (root / "ftops.yaml").write_text(text.replace(PROVIDERS[ptype]["hp"], PROVIDERS[ptype]["hp2"], 1))
    s = _plan(root, capsys)["summary"]
    assert (s["replace"], s["upload"], s["create"]) == (1, 0, 0)
    _apply(root, capsys)

    with open(root / "data" / "val.jsonl", "ab") as f:  # a dataset edit: one upload, its model replaced
        f.write((QUICKSTART_DATA / "train.jsonl").read_bytes().splitlines(keepends=True)[0])
    s = _plan(root, capsys)["summary"]
    assert (s["replace"], s["upload"]) == (1, 1)
    _apply(root, capsys)
    assert run_cli(root, capsys, "plan", "--detailed-exitcode")[0] == 0

    for f in (root / ".ftops").glob("state.json*"):
        f.unlink()
    s = _plan(root, capsys)["summary"]
    assert (s["adopt"], s["create"], s["replace"], s["upload"]) == (MODELS, 0, 0, 0)
    _apply(root, capsys)
    assert run_cli(root, capsys, "plan", "--detailed-exitcode")[0] == 0


@pytest.mark.parametrize("ptype, seed", [
    ("azure", 1), ("nebius", 1),
    *[pytest.param(p, s, marks=pytest.mark.soak) for p in sorted(PROVIDERS) for s in (2, 3, 4)],
])
def test_faults_converge_with_one_job_per_model(ptype: str, seed: int, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("soak") and "soak" not in (request.config.option.markexpr or ""):
        pytest.skip("soak: run with -m soak")
    root = _project(tmp_path / ptype, ptype)
    for run in range(1, 31):
        monkeypatch.setenv("FTOPS_SANDBOX_FAULTS", FAULTS.format(seed=seed * 100 + run))
        code, _, err = run_cli(root, capsys, "apply", "--auto-approve", "--max-wait", "2")
        if code == 0:
            break
    else:
        pytest.fail(f"apply did not converge in 30 runs:\n{err}")
    monkeypatch.delenv("FTOPS_SANDBOX_FAULTS")
    assert _jobs_by_model(root, ptype) == {f"m{i}": 1 for i in range(MODELS)}
    created = _remote(root, f"select count(*) from jobs where dialect = '{ptype}'")[0][0]
    assert created == MODELS, "a duplicate job was created (even if cancelled later)"
    files = _remote(root, f"select id, filename, deleted, status from files where dialect = '{ptype}' and purpose = 'fine-tune'")
    assert len(files) == 2, files
    assert run_cli(root, capsys, "plan", "--detailed-exitcode")[0] == 0
