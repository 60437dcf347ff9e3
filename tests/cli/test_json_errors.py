"""`--json` always prints exactly one JSON document, errors included, and keeps the exit code (issue 9, item 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Project

# Every command that has --json, run against a broken ftops.yaml.
COMMANDS = [
    ("validate",), ("plan",), ("plan", "--offline"), ("plan", "--markdown"), ("apply", "--auto-approve"),
    ("status",), ("status", "--offline"), ("output",), ("output", "support-bot"), ("show",),
]


def _one_document(out: str) -> dict:  # type: ignore[type-arg]
    doc = json.loads(out)  # raises on empty output or on two documents
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_json_with_a_broken_config_prints_one_document_with_the_diagnostics(project: Project, args: tuple[str, ...]) -> None:
    project.edit("n_epochs: 3,", "n_epoch: 3,")
    r = project.ftops(*args, "--json")
    assert r.code == 1, r.out + r.err
    doc = _one_document(r.out)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["command"] == args[0]
    d = next(d for d in doc["diagnostics"] if d["code"] == "config.unknown_field")
    assert set(d) >= {"code", "severity", "summary", "detail", "range", "hint", "address"}
    assert d["severity"] == "error" and d["hint"] == "did you mean `n_epochs`?"
    assert d["range"]["filename"].endswith("ftops.yaml") and d["range"]["line"] > 0 and d["range"]["column"] > 0
    assert d["address"] == "models.support-bot"


def test_validate_json_error_keeps_the_valid_key(project: Project) -> None:
    project.edit("version: 1", "version: 1\nversion: 1")
    doc = _one_document(project.ftops("validate", "--json").out)
    assert doc["valid"] is False and doc["diagnostics"][0]["code"] == "config.duplicate_key"


def test_plan_json_with_a_dataset_error_prints_the_dataset_diagnostics(project: Project) -> None:
    (project.root / "data" / "train.jsonl").write_text("not json\n" * 12)
    r = project.ftops("plan", "--json")
    assert r.code == 1
    codes = {d["code"] for d in _one_document(r.out)["diagnostics"]}
    assert "dataset.invalid_json" in codes, codes


def test_dataset_check_json_on_a_missing_file(project: Project) -> None:
    r = project.ftops("dataset", "check", "--json", str(project.root / "nope.jsonl"))
    assert r.code == 1
    doc = _one_document(r.out)
    assert doc["command"] == "dataset check" and doc["diagnostics"][0]["code"] == "dataset.not_found"


def test_usage_error_with_json_is_a_document_too(project: Project) -> None:
    r = project.ftops("plan", "--json", "--no-such-option")
    assert r.code == 1
    doc = _one_document(r.out)
    assert doc["command"] == "plan" and doc["diagnostics"][0]["code"] == "cli.usage_error"


def test_missing_config_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = Project(tmp_path / "empty", capsys)
    p.root.mkdir()
    r = p.ftops("status", "--json")
    assert r.code == 1 and _one_document(r.out)["diagnostics"][0]["code"] == "config.not_found"


def test_apply_json_reports_diagnostics_on_success(project: Project) -> None:
    r = project.ftops("apply", "--auto-approve", "--json")
    assert r.code == 0, r.err
    assert isinstance(_one_document(r.out)["diagnostics"], list)
