"""examples/vertex's `method: dpo` model end to end on the embedded sandbox: the job the sandbox
holds is a preferenceOptimizationSpec over the converted pairs, a beta edit replaces it without a new
upload, and DPO on a base model Vertex does not offer it for is refused at plan with file:line."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.reliability.harness import run_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("FTOPS_SANDBOX_FAULTS", "FTOPS_SANDBOX_TIME_SCALE"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "vertex"
    shutil.copytree(REPO / "examples" / "vertex", out, ignore=shutil.ignore_patterns(".ftops"))
    return out


def dpo_requests(root: Path) -> list[dict[str, object]]:
    with sqlite3.connect(root / ".ftops" / "sandbox.db") as db:
        extras = [json.loads(r[0])["request"] for r in db.execute("SELECT extra FROM jobs WHERE dialect = 'vertex' "
                                                                  "ORDER BY seq")]
    return [r for r in extras if "preferenceOptimizationSpec" in r]


def test_dpo_model_applies_as_preference_optimization(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
    assert code == 0, err
    [req] = dpo_requests(root)
    assert req["baseModel"] == "gemini-2.5-flash" and "supervisedTuningSpec" not in req
    spec = req["preferenceOptimizationSpec"]
    assert isinstance(spec, dict)
    assert spec["hyperParameters"] == {"epochCount": 1, "beta": 0.1, "adapterSize": "ADAPTER_SIZE_TWO"}
    with sqlite3.connect(root / ".ftops" / "sandbox.db") as db:
        uploads = db.execute("SELECT count(*) FROM files WHERE dialect = 'gcs' AND deleted = 0").fetchone()[0]

    text = (root / "ftops.yaml").read_text()
    (root / "ftops.yaml").write_text(text.replace("{n_epochs: 1, beta: 0.1}", "{n_epochs: 1, beta: 0.3}"))
    code, out, err = run_cli(root, capsys, "plan")
    assert code == 0, err
    assert "models.concise-gemini will be replaced" in out and "0 to upload" in out, out
    code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
    assert code == 0, err
    assert [r["preferenceOptimizationSpec"]["hyperParameters"]["beta"] for r in dpo_requests(root)] == [0.1, 0.3]
    with sqlite3.connect(root / ".ftops" / "sandbox.db") as db:
        assert db.execute("SELECT count(*) FROM files WHERE dialect = 'gcs' AND deleted = 0").fetchone()[0] == uploads


def test_dpo_on_a_base_without_preference_tuning_is_refused_at_plan(root: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lines = (root / "ftops.yaml").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "base_model: gemini-2.5-flash" in line)
    lines[at] = lines[at].replace("gemini-2.5-flash", "gemini-2.0-flash-001")
    (root / "ftops.yaml").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(root, capsys, "plan")
    assert code == 1
    assert f"ftops.yaml:{at + 1}:" in err and "error[provider.unsupported_method]" in err, err
    assert "hint: use `base_model: gemini-2.5-flash`" in err
    assert not (root / ".ftops" / "sandbox.db").exists() or dpo_requests(root) == []
