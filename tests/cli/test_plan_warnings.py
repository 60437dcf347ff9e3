"""Every warning reaches every plan format (issue 9, item 11), and approximate token counts say why
(item 14)."""

from __future__ import annotations

import pytest

import ftops.datasets.tokens as tokens_mod
from tests.e2e.conftest import Project


def _duplicate_first_example(p: Project) -> None:
    train = p.root / "data" / "train.jsonl"
    lines = train.read_text().splitlines(keepends=True)
    train.write_text("".join(lines + lines[:1]))


def test_markdown_plan_shows_the_dataset_warnings_the_text_plan_shows(project: Project) -> None:
    _duplicate_first_example(project)
    text = project.ftops("plan")
    assert text.code == 0 and "warning[dataset.duplicate_example]" in text.err
    md = project.ftops("plan", "--markdown")
    assert md.code == 0
    assert "`dataset.duplicate_example` `data/train.jsonl:61`" in md.out and "**Warnings (" in md.out
    doc = project.ftops("plan", "--json").json()
    assert [d["code"] for d in doc["diagnostics"]] == ["dataset.duplicate_example"]


@pytest.fixture
def no_tiktoken(monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken cannot load any encoding (as offline without TIKTOKEN_CACHE_DIR)."""
    import tiktoken

    def refuse(name: str) -> None:
        raise ConnectionError(f"cannot download {name}: network unreachable")

    monkeypatch.setattr(tiktoken, "get_encoding", refuse)
    monkeypatch.setattr(tokens_mod, "_loaded", {})
    monkeypatch.setattr(tokens_mod, "_failures", {})


@pytest.mark.usefixtures("no_tiktoken")
def test_approximate_token_counts_say_why_in_every_format(project: Project) -> None:
    text = project.ftops("plan")
    assert text.code == 0, text.err
    assert "warning[dataset.tokens_approximate]" in text.err and "network unreachable" in text.err
    assert "TIKTOKEN_CACHE_DIR" in text.err and "≈ $" in text.out
    doc = project.ftops("plan", "--json").json()
    approx = [d for d in doc["diagnostics"] if d["code"] == "dataset.tokens_approximate"]
    assert approx and "TIKTOKEN_CACHE_DIR" in approx[0]["hint"] and doc["cost_approximate"] is True
    md = project.ftops("plan", "--markdown").out
    assert "`dataset.tokens_approximate`" in md and "TIKTOKEN_CACHE_DIR" in md
    r = project.ftops("dataset", "check", str(project.root / "data" / "train.jsonl"))
    assert "warning[dataset.tokens_approximate]" in r.err


@pytest.mark.needs_tiktoken
def test_exact_token_counts_have_no_such_warning(project: Project) -> None:
    doc = project.ftops("plan", "--json").json()
    assert not [d for d in doc["diagnostics"] if d["code"] == "dataset.tokens_approximate"]
