"""The Markdown plan for PR comments (issue 14): summary outside a collapsed details block, the warning
banner, a hidden marker, and parts under GitHub's 65,536-character limit, each with its own marker.

Plans are data in, data out: built as values, no project or sandbox needed.
"""

from __future__ import annotations

import re

import pytest

from ftops.diagnostics import warning
from ftops.engine.model import (
    AttributeChange,
    CancelChange,
    DeleteChange,
    ModelAction,
    ModelChange,
    Plan,
    PlanSummary,
)
from ftops.render import plan_markdown, plan_markdown_parts
from ftops.render.plan import COMMENT_LIMIT

MARKER = re.compile(r"^<!-- ftops-plan:(?P<project>[^ ]+?)(?: part (?P<i>\d+)/(?P<n>\d+))? -->$")


def _plan(n: int, *, replace_every: int = 0, project: str = "support") -> Plan:
    models = []
    for i in range(n):
        if replace_every and i % replace_every == 0:
            models.append(ModelChange(
                name=f"model-{i:04d}", action=ModelAction.REPLACE, reason="replace_because_hyperparameters_changed",
                fingerprint="f" * 64, before_fingerprint="e" * 64,
                changes=[AttributeChange(path="hyperparameters.n_epochs", before=2, after=3),
                         AttributeChange(path="training_file", before="sha256:" + "a" * 64,
                                         after="sha256:" + "b" * 64)]))
        else:
            models.append(ModelChange(name=f"model-{i:04d}", action=ModelAction.CREATE, reason="create_new_model",
                                      fingerprint="f" * 64, attributes={
                                          "provider": "default", "base_model": "gpt-4o-mini-2024-07-18",
                                          "method": "supervised", "training_file": "sha256:" + "c" * 64,
                                          "validation_file": "sha256:" + "d" * 64, "seed": i,
                                          "suffix": f"model-{i:04d}", "hyperparameters": {"n_epochs": 1 + i % 3}}))
    n_replace = sum(m.action == ModelAction.REPLACE for m in models)
    return Plan(project=project, provider="openai", endpoint="https://api.openai.com/v1", state_lineage="l",
                state_serial=1, models=models,
                summary=PlanSummary(create=n - n_replace, replace=n_replace))


def _markers(parts: list[str]) -> list[tuple[str, str | None, str | None]]:
    out = []
    for p in parts:
        m = MARKER.match(p.split("\n", 1)[0])
        assert m, p[:200]
        out.append((m["project"], m["i"], m["n"]))
    return out


def _balanced(part: str) -> None:
    """Each part is well-formed on its own: details and code fences closed, tables with their header."""
    assert part.count("<details>") == part.count("</details>")
    fences = [line for line in part.splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0
    lines = part.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| `model-"):
            j = i
            while lines[j - 1].startswith("| `model-"):
                j -= 1
            assert lines[j - 1] == "|---|---|---|---|---|---|" and lines[j - 2].startswith("| model |")


def test_a_small_plan_is_one_part_with_the_summary_outside_the_details() -> None:
    plan = _plan(3, replace_every=2)
    diags = [warning("dataset.duplicate_example", "duplicate example", "line 3 repeats line 1")]
    parts = plan_markdown_parts(plan, diags)
    assert len(parts) == 1
    (doc,) = parts
    assert doc == plan_markdown(plan, diags)
    assert _markers(parts) == [("support", None, None)]
    assert doc.startswith("<!-- ftops-plan:support -->\n### ftops plan")
    assert "part 1 of" not in doc
    before, details = doc.split("<details>", 1)
    assert "\n**Plan: 0 to upload, 1 to create, 2 to replace, 0 unchanged." in before
    assert "> [!WARNING]" in before and "2 model(s) replaced" in before
    assert "`dataset.duplicate_example`" in before
    assert "| `model-0001` | default | create | `create_new_model` |" in details
    assert "- hyperparameters.n_epochs: 2\n+ hyperparameters.n_epochs: 3" in details
    assert details.rstrip().endswith("</details>")
    _balanced(doc)


def test_no_banner_when_nothing_is_replaced_cancelled_or_deleted() -> None:
    assert "[!WARNING]" not in plan_markdown(_plan(2))


def test_cancels_and_deletes_raise_the_banner_and_are_listed() -> None:
    plan = _plan(1).model_copy(update={
        "cancels": [CancelChange(name="model-0000", job_id="ftjob-1", status="running", reason="cancel_superseded")],
        "deletes": [DeleteChange(kind="file", id="file-9", reason="delete_unused_file")]})
    doc = plan_markdown(plan)
    before, details = doc.split("<details>", 1)
    assert "1 job(s) cancelled" in before and "1 object(s) deleted" in before
    assert "`ftjob-1`" in details and "`file-9`" in details


@pytest.mark.parametrize("replace_every", [0, 1, 7])
def test_a_300_model_plan_splits_into_marked_parts_under_the_limit(replace_every: int) -> None:
    plan = _plan(300, replace_every=replace_every)
    if replace_every == 1:  # long values in the diffs, as a model with many options would have
        models = [m.model_copy(update={"changes": m.changes + [
            AttributeChange(path=f"options.o{k}", before="x" * 60, after="y" * 60) for k in range(12)]})
            for m in plan.models]
        plan = plan.model_copy(update={"models": models})
    parts = plan_markdown_parts(plan)
    n = len(parts)
    assert n >= 2
    assert _markers(parts) == [("support", str(i), str(n)) for i in range(1, n + 1)]
    for i, part in enumerate(parts, 1):
        assert len(part) < COMMENT_LIMIT
        assert part.split("\n")[2] == f"*part {i} of {n}*"
        _balanced(part)
    assert "**Plan: " in parts[0] and all("**Plan: " not in p for p in parts[1:])
    assert parts[0].index("**Plan: ") < parts[0].index("<details>")
    whole = "".join(parts)
    for i in range(300):  # every model's row and diff is somewhere, once
        assert whole.count(f"| `model-{i:04d}` |") == 1
        assert len(re.findall(rf"^# models\.model-{i:04d}( \(new\))?$", whole, re.M)) == 1
    # all parts printed together: one after another, each from its marker
    assert plan_markdown(plan) == "\n".join(parts)


def test_an_entry_longer_than_a_part_is_cut_not_spilled() -> None:
    plan = _plan(1, replace_every=1)
    huge = plan.models[0].model_copy(update={"changes": [AttributeChange(path="options.x", before="a" * 200_000,
                                                                         after="b")]})
    parts = plan_markdown_parts(plan.model_copy(update={"models": [huge]}))
    assert all(len(p) < COMMENT_LIMIT for p in parts)
    assert "cut: too long for a comment" in "".join(parts)
    for p in parts:
        _balanced(p)


def test_backticks_in_values_cannot_close_the_diff_fence() -> None:
    plan = _plan(1, replace_every=1)
    m = plan.models[0].model_copy(update={"changes": [AttributeChange(path="suffix", before="a```b", after="c")]})
    doc = plan_markdown(plan.model_copy(update={"models": [m]}))
    assert "````diff" in doc and "\n````\n" in doc
