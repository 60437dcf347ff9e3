"""cross_check: examples present in both the training and the validation file.

It re-reads both files (streaming) rather than storing every example hash in the cached
report: validation files are small, and their hashes are the only thing held in memory.
With `cache_dir` the result is kept per (training sha256, validation sha256), so an unchanged
pair is never read again.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftops.datasets.check import VALIDATOR_VERSION, _iter_lines
from ftops.datasets.formats import MAX_ISSUES_PER_CODE, example_hash
from ftops.datasets.hashing import write_cache
from ftops.datasets.models import DatasetIssue, DatasetReport

CODE = "in_training_and_validation"


def cross_check(train: DatasetReport, validation: DatasetReport, *,
                cache_dir: Path | None = None) -> list[DatasetIssue]:
    """Warnings (code `in_training_and_validation`) for validation lines also in the training file.

    Lines are compared byte for byte (surrounding whitespace ignored), as duplicates are.
    """
    if train.sha256 == validation.sha256:
        return [DatasetIssue(line=None, code=CODE,
                             message="the validation file is the same file as the training file",
                             hint="hold out different examples for validation")]
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / "crosscheck" / (
            f"{train.sha256}-{validation.sha256}-v{VALIDATOR_VERSION}.json")
        try:
            data = json.loads(cache_file.read_text(encoding="utf-8"))
            return [DatasetIssue.model_validate(x) for x in data]
        except (OSError, ValueError):
            pass
    issues = _compare(train.path, validation.path)
    if cache_file is not None:
        write_cache(cache_file, json.dumps([i.model_dump() for i in issues], allow_nan=False))
    return issues


def _compare(train_path: str, validation_path: str) -> list[DatasetIssue]:
    val: dict[int, int] = {}
    for line, raw in enumerate(_iter_lines(validation_path, 0, 1 << 62), 1):
        if raw is not None and raw.strip():
            val.setdefault(example_hash(raw), line)
    hits: dict[int, int] = {}  # validation line -> training line
    if val:
        for line, raw in enumerate(_iter_lines(train_path, 0, 1 << 62), 1):
            if raw is not None and raw.strip():
                v = val.get(example_hash(raw))
                if v is not None and v not in hits:
                    hits[v] = line
    out: list[DatasetIssue] = []
    for v_line in sorted(hits)[:MAX_ISSUES_PER_CODE]:
        out.append(DatasetIssue(line=v_line, code=CODE,
                                message=f"validation example is also in the training file (line {hits[v_line]})",
                                hint="remove it from one of the files"))
    if len(hits) > MAX_ISSUES_PER_CODE:
        out.append(DatasetIssue(line=None, code=CODE,
                                message=f"{len(hits) - MAX_ISSUES_PER_CODE} more shared examples not shown "
                                        f"({len(hits)} in total)"))
    return out
