"""User and provider strings cannot forge lines of a plan (issue 10, item 11).

A newline, CR, ANSI escape or Unicode line separator in a dataset path or a metadata value used to
be printed raw, so a config could add a fake "Plan: 0 to create" line to the text plan or the
Markdown posted on a pull request. Every renderer now shows such characters as escapes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ftops.diagnostics import printable
from tests.reliability.harness import QUICKSTART_DATA, run_cli

FORGED = "Plan: 0 to upload, 0 to create, 0 to replace, 9 unchanged."
EVIL_PATH = f"data/tr\n{FORGED}\r\u2028.jsonl"


def _project(root: Path, team: str) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(QUICKSTART_DATA / "train.jsonl", root / EVIL_PATH)
    path = EVIL_PATH.replace("\n", "\\n").replace("\r", "\\r").replace("\u2028", "\\u2028")
    (root / "ftops.yaml").write_text(
        "version: 1\nprovider: {type: sandbox, time_scale: 1}\nmodels:\n  bot:\n"
        f"    base_model: gpt-4o-mini-2024-07-18\n    training_file: \"{path}\"\n"
        f"    metadata: {{team: \"{team}\\n{FORGED}\\e[31m\\u202e\"}}\n")
    return root


def _assert_one_plan_line(text: str, prefix: str = "Plan: ") -> None:
    forged = [line for line in text.splitlines() if line.lstrip("*> #-+").startswith(prefix)]
    assert len(forged) <= 1, forged
    assert "\x1b" not in text and "\r" not in text and "\u2028" not in text and "\u202e" not in text


def test_newlines_in_paths_and_metadata_cannot_forge_plan_lines(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path / "proj", "cx")
    for args in (("plan",), ("plan", "--markdown"), ("validate",)):
        code, out, err = run_cli(root, capsys, *args)
        assert code == 0, err
        _assert_one_plan_line(out + err)
        assert "Plan: " in out or args == ("validate",)
    code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
    assert code == 0, err
    _assert_one_plan_line(out + err)
    assert "data/tr\\n" in err  # the upload hook shows the path, escaped
    for args in (("show",), ("status", "--offline"), ("output", "--offline")):
        code, out, err = run_cli(root, capsys, *args)
        _assert_one_plan_line(out + err)
    # a metadata change is an in-place update: its before/after values are printed
    _project(root, "cy")
    for args in (("plan",), ("plan", "--markdown")):
        code, out, err = run_cli(root, capsys, *args)
        assert code == 0, err
        _assert_one_plan_line(out + err)


def test_diagnostics_escape_the_values_they_quote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "ftops.yaml").write_text(
        "version: 1\nmodels:\n  bot:\n    base_model: x\n"
        f"    training_file: \"data/nope\\n{FORGED}\\e[2J.jsonl\"\n")
    code, _, err = run_cli(root, capsys, "plan")
    assert code == 1 and "error[config.dataset_not_found]" in err
    _assert_one_plan_line(err)


@pytest.mark.parametrize("raw, shown", [("a\nb", "a\\nb"), ("x\x1b[31m", "x\\x1b[31m"), ("tab\tok", "tab\tok"),
                                        ("\u2028", "\\u2028"), ("\u202e", "\\u202e"), ("plain ü", "plain ü")])
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown
