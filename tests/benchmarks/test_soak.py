"""Soak: the kill -9 trial loop of tests/reliability/test_kill9.py, N times (default 500).

Not in the default run (tests/benchmarks is ignored by addopts). Run:
    FTOPS_SOAK_TRIALS=500 .venv/bin/pytest -o addopts="" -m soak tests/benchmarks/test_soak.py -s
(once per provider of the reliability harness; `-k openai` for one).
Every trial must end with exactly one live job per declared model, at most one extra upload per crash,
and a state file that loads and points at the live jobs; the figures are printed at the end.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.reliability.harness import PROVIDER_TYPES, check_trial, kill_trial, summarize

pytestmark = pytest.mark.soak


@pytest.mark.parametrize("provider", PROVIDER_TYPES)
def test_soak_kill9(tmp_path: Path, provider: str) -> None:
    n = int(os.environ.get("FTOPS_SOAK_TRIALS", "500"))
    first = int(os.environ.get("FTOPS_SOAK_FIRST_SEED", "1000"))
    names = ["m0", "m1", "m2"]
    start = time.monotonic()
    results = []
    failures: list[str] = []
    for seed in range(first, first + n):
        try:
            t = kill_trial(tmp_path / f"t{seed}", seed, provider=provider)
            results.append(t)
            check_trial(t, names)
        except AssertionError as e:  # keep going: the figures of the whole run are the point
            failures.append(f"seed {seed}: {e}")
    wall = time.monotonic() - start
    print(f"\nsoak ({provider}): {summarize(results)}\nsoak wall time {wall:.0f}s for {n} trials; failures: {len(failures)}")
    for f in failures[:20]:
        print("  ", f)
    assert not failures
