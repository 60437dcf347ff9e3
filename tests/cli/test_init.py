"""`ftops init`: never overwrites a file, and writes a project name unique to the project (issue 9, items 6-7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from ftops.config import is_placeholder_project, load_config, unique_project_name
from ftops.config.models import NAME_PATTERN
from tests.e2e.conftest import Project


def _project_name(root: Path) -> str:
    return str(yaml.safe_load((root / "ftops.yaml").read_text())["project"])


def test_init_refuses_to_replace_user_data_and_names_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = Project(tmp_path / "mine", capsys)
    (p.root / "data").mkdir(parents=True)
    mine = p.root / "data" / "train.jsonl"
    mine.write_text('{"my": "precious data"}\n')
    r = p.ftops("init", str(p.root))
    assert r.code == 1
    assert "error[init.exists]" in r.err and str(mine) in r.err and "--force" in r.err
    assert mine.read_text() == '{"my": "precious data"}\n'
    assert not (p.root / "ftops.yaml").exists() and not (p.root / "data" / "val.jsonl").exists()


def test_init_force_replaces_the_starter_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = Project(tmp_path / "mine", capsys)
    (p.root / "data").mkdir(parents=True)
    (p.root / "data" / "val.jsonl").write_text("old\n")
    assert p.ftops("init", "--force", str(p.root)).code == 0
    assert (p.root / "data" / "val.jsonl").read_text().startswith('{"messages"')
    assert p.ftops("validate").code == 0


def test_init_writes_a_unique_project_name_per_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = Project(tmp_path / "a" / "support bot!", capsys), Project(tmp_path / "b" / "support bot!", capsys)
    assert a.ftops("init", str(a.root)).code == 0 and b.ftops("init", str(b.root)).code == 0
    na, nb = _project_name(a.root), _project_name(b.root)
    assert na != nb and not is_placeholder_project(na)
    assert re.fullmatch(r"support-bot-[0-9a-f]{6}", na), na
    assert load_config(a.root / "ftops.yaml").config.project == na


@pytest.mark.parametrize("directory", ["", "...", "ü" * 10, "x" * 200, "-lead", "my.repo_v2"])
def test_unique_project_name_always_matches_the_pattern(directory: str) -> None:
    name = unique_project_name(directory, tag="abc123")
    assert re.fullmatch(NAME_PATTERN, name) and name.endswith("-abc123")


def test_placeholder_project_names() -> None:
    assert is_placeholder_project("default") and is_placeholder_project("starter")
    assert not is_placeholder_project("starter-1f2e3d") and not is_placeholder_project("support")
