"""`ftops plan --markdown [--out-dir DIR]` for the PR comment workflow (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ftops.render.plan import COMMENT_LIMIT
from tests.benchmarks.scale import write_project
from tests.e2e.conftest import Project

MARKER = re.compile(r"<!-- ftops-plan:scale part (\d+)/(\d+) -->")


def test_a_300_model_plan_is_written_as_parts_each_under_the_limit(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "p"
    write_project(root, models=300, datasets=2, dataset_bytes=4_000)
    p = Project(root, capsys)
    out = tmp_path / "md"
    out.mkdir()
    (out / "plan-9.md").write_text("a stale part of a longer plan")
    (out / "keep.md").write_text("not ours")
    r = p.ftops("plan", "--markdown", "--out-dir", str(out))
    assert r.code == 0, r.err
    assert r.out == ""
    files = sorted(out.glob("plan-*.md"), key=lambda f: int(f.stem.split("-")[1]))
    n = len(files)
    assert n >= 2 and f"as {n} Markdown part(s)" in r.err
    assert [f.name for f in files] == [f"plan-{i}.md" for i in range(1, n + 1)]  # plan-9.md is gone
    assert (out / "keep.md").exists()
    texts = [f.read_text(encoding="utf-8") for f in files]
    for i, text in enumerate(texts, 1):
        assert len(text) < COMMENT_LIMIT
        m = MARKER.match(text)
        assert m and (int(m[1]), int(m[2])) == (i, n)
        assert f"*part {i} of {n}*" in text
    assert texts[0].index("**Plan: 3 to upload, 300 to create") < texts[0].index("<details>")
    assert all(sum(f"| `m{k:03d}` |" in t for t in texts) == 1 for k in range(300))
    # plain --markdown prints the same parts, one after another
    r = p.ftops("plan", "--markdown")
    assert r.code == 0 and r.out == "\n".join(texts)


def test_a_small_plan_is_one_document_with_the_project_marker(project: Project, tmp_path: Path) -> None:
    r = project.ftops("plan", "--markdown")
    assert r.code == 0, r.err
    assert r.out.startswith("<!-- ftops-plan:quickstart -->\n### ftops plan")
    assert "part 1 of" not in r.out
    assert r.out.index("**Plan: ") < r.out.index("<details>")
    r = project.ftops("plan", "--markdown", "--out-dir", str(tmp_path / "md"))
    assert r.code == 0 and [f.name for f in (tmp_path / "md").iterdir()] == ["plan-1.md"]


def test_out_dir_needs_markdown(project: Project, tmp_path: Path) -> None:
    r = project.ftops("plan", "--out-dir", str(tmp_path / "md"))
    assert r.code == 1 and "--markdown" in r.err
    assert not (tmp_path / "md").exists()
