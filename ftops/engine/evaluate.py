"""Model tests: chat inputs with expectations, run against a fine-tuned model through the provider's
inference call (`Provider.chat`), and golden answers recorded for later comparison.

The similarity score is local (ROUGE-L F1 over lower-cased words, no model call), so a migration can
be checked on any provider: record what today's model answers (`ftops test NAME --record`, saved in
`tests/golden/NAME.jsonl` for review in git), retrain elsewhere, and `ftops test` compares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ftops.providers import Provider

GOLDEN_DIR = Path("tests") / "golden"
_WORD = re.compile(r"\w+", re.UNICODE)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of two texts (longest common subsequence of lower-cased words); 1.0 for two empties."""
    a, b = _WORD.findall(candidate.lower()), _WORD.findall(reference.lower())
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return round(2 * p * r / (p + r), 4)


class CaseResult(BaseModel):
    """One test case's outcome."""

    model_config = ConfigDict(extra="forbid")

    model: str
    case: int
    name: str | None = None
    fine_tuned_model: str
    passed: bool
    answer: str
    failures: list[str] = []
    similarity: float | None = None


def golden_path(root: Path, model: str) -> Path:
    return root / GOLDEN_DIR / f"{model}.jsonl"


def read_golden(root: Path, model: str) -> list[dict[str, Any]]:
    path = golden_path(root, model)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("answer"), str):
            out.append(row)
    return out


def write_golden(root: Path, model: str, rows: Sequence[dict[str, Any]]) -> Path:
    path = golden_path(root, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _golden_for(golden: list[dict[str, Any]], index: int, messages: list[dict[str, Any]]) -> str | None:
    """The recorded answer for these messages (matched by messages, else by position)."""
    for row in golden:
        if row.get("messages") == messages:
            return str(row["answer"])
    for row in golden:
        if row.get("case") == index:
            return str(row["answer"])
    return None


def check_answer(answer: str, expect: Any, golden: str | None) -> tuple[list[str], float | None]:
    """Every failed expectation, worded for people; and the similarity when one was asked for."""
    failures: list[str] = []
    similarity = None
    if expect.contains is not None and expect.contains not in answer:
        failures.append(f"does not contain {expect.contains!r}")
    if expect.not_contains is not None and expect.not_contains in answer:
        failures.append(f"contains {expect.not_contains!r}")
    if expect.equals is not None and answer.strip() != expect.equals.strip():
        failures.append(f"is not equal to {expect.equals!r}")
    if expect.regex is not None and not re.search(expect.regex, answer):
        failures.append(f"does not match /{expect.regex}/")
    if expect.similar_to_golden is not None:
        if golden is None:
            failures.append("no golden answer recorded (run `ftops test NAME --record` on the current model)")
        else:
            similarity = rouge_l(answer, golden)
            if similarity < expect.similar_to_golden:
                failures.append(f"ROUGE-L {similarity:.2f} with the golden answer, below {expect.similar_to_golden:g}")
    return failures, similarity


def run_tests(provider: Provider, name: str, fine_tuned_model: str, cases: Sequence[Any], *,
              root: Path, record: bool = False) -> list[CaseResult]:
    """Ask the model each case's messages and check its answers (`record`: save them as golden instead)."""
    golden = [] if record else read_golden(root, name)
    results = []
    rows = []
    for i, case in enumerate(cases):
        answer = provider.chat(fine_tuned_model, list(case.messages))
        if record:
            rows.append({"case": i, "name": case.name, "messages": case.messages, "answer": answer,
                         "fine_tuned_model": fine_tuned_model})
            results.append(CaseResult(model=name, case=i, name=case.name, fine_tuned_model=fine_tuned_model,
                                      passed=True, answer=answer))
            continue
        failures, similarity = check_answer(answer, case.expect, _golden_for(golden, i, list(case.messages)))
        results.append(CaseResult(model=name, case=i, name=case.name, fine_tuned_model=fine_tuned_model,
                                  passed=not failures, answer=answer, failures=failures, similarity=similarity))
    if record:
        write_golden(root, name, rows)
    return results
