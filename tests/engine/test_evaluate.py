"""Model-test checks and the local ROUGE-L score (no model calls)."""

from __future__ import annotations

from ftops.config.models import Expectation
from ftops.engine.evaluate import check_answer, rouge_l


def test_rouge_l() -> None:
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("", "") == 1.0 and rouge_l("a", "") == 0.0
    assert 0.5 < rouge_l("open settings then security", "open settings and security") < 1.0
    assert rouge_l("alpha beta", "gamma delta") == 0.0


def test_each_expectation_fails_on_its_own() -> None:
    ok, _ = check_answer("Hello world", Expectation(contains="world", regex=r"^Hel", equals=" Hello world "), None)
    assert ok == []
    bad, _ = check_answer("Hello world", Expectation(contains="moon", not_contains="Hello", equals="x", regex=r"\d"),
                          None)
    assert len(bad) == 4
    missing, _ = check_answer("a", Expectation(similar_to_golden=0.5), None)
    assert "no golden answer" in missing[0]
    low, sim = check_answer("alpha beta", Expectation(similar_to_golden=0.5), "gamma delta")
    assert sim == 0.0 and "below 0.5" in low[0]
