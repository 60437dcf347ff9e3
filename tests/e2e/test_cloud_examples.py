"""examples/bedrock (and examples/vertex when present) run on a fresh machine with `sandbox: true`:
plan, apply, re-plan to no changes, `output` gives the tuned model; and data a provider cannot take
is refused at plan with file:line, before anything is sent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.reliability.harness import run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [p for p in ("bedrock", "vertex") if (REPO / "examples" / p / "ftops.yaml").exists()]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FTOPS_SANDBOX_FAULTS", "FTOPS_SANDBOX_TIME_SCALE", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_in_the_sandbox(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / name
    shutil.copytree(REPO / "examples" / name, root, ignore=shutil.ignore_patterns(".ftops"))
    code, out, err = run_cli(root, capsys, "plan")
    assert code == 0, err
    assert " as " in out  # the converted copy is shown beside the source
    code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
    assert code == 0, err
    code, out, err = run_cli(root, capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err
    code, out, err = run_cli(root, capsys, "output", "--json")
    assert code == 0, err
    assert out.strip()


def test_tool_calls_are_refused_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "bedrock"
    shutil.copytree(REPO / "examples" / "bedrock", root, ignore=shutil.ignore_patterns(".ftops"))
    lines = (root / "data" / "train.jsonl").read_text().splitlines()
    call = {"messages": [{"role": "user", "content": "weather?"},
                         {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                               "function": {"name": "w", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                         {"role": "assistant", "content": "Sunny."}]}
    lines[4] = json.dumps(call)
    (root / "data" / "train.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(root, capsys, "plan")
    assert code == 1
    assert "data/train.jsonl:5" in err and "convert.unsupported_tools" in err, err
    assert not (root / ".ftops" / "sandbox.db").exists() or "jobs" not in out
