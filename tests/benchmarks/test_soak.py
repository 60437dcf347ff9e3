"""Soak: the kill -9 trial loop of tests/reliability/test_kill9.py, N times (default 500), and the 30%
fault convergence of tests/reliability/test_faults.py, M times (FTOPS_SOAK_FAULT_TRIALS, default 20), per
state backend (local, postgres: a fresh database per trial) and provider.

Not in the default run (tests/benchmarks is ignored by addopts). Run:
    FTOPS_SOAK_TRIALS=500 .venv/bin/pytest -o addopts="" -m soak tests/benchmarks/test_soak.py -s
(`-k "kill9 and postgres and openai"` for one test, backend and provider).
Every trial must end with exactly one live job per declared model, at most one extra upload per crash,
a state that loads through its backend and points at the live jobs, and no re-run refused by a dead
run's lock; the figures are printed at the end.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.reliability.harness import (
    PROVIDER_TYPES,
    STATE_BACKENDS,
    TrialResult,
    check_trial,
    fresh_state,
    kill_trial,
    summarize,
)
from tests.reliability.test_faults import fast_backoff, served_faults_trial  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.soak


@pytest.mark.parametrize("provider", PROVIDER_TYPES)
@pytest.mark.parametrize("backend", STATE_BACKENDS)
def test_soak_kill9(tmp_path: Path, backend: str, provider: str, request: pytest.FixtureRequest) -> None:
    n = int(os.environ.get("FTOPS_SOAK_TRIALS", "500"))
    first = int(os.environ.get("FTOPS_SOAK_FIRST_SEED", "1000"))
    pg = request.getfixturevalue("postgres") if backend == "postgres" else None
    names = ["m0", "m1", "m2"]
    start = time.monotonic()
    results: list[TrialResult] = []
    failures: list[str] = []
    for seed in range(first, first + n):
        try:
            with fresh_state(backend, pg) as state:
                t = kill_trial(tmp_path / f"t{seed}", seed, provider=provider, state=state)
            results.append(t)
            check_trial(t, names)
        except AssertionError as e:  # keep going: the figures of the whole run are the point
            failures.append(f"seed {seed}: {e}")
        if results and results[-1].seed == seed:  # one line per trial: an interrupted soak still tells
            print(f"  seed {seed}: kills at (uploads, jobs) {results[-1].kill_points}, "
                  f"{results[-1].reruns} re-run(s), {results[-1].seconds:.1f}s", flush=True)
    wall = time.monotonic() - start
    print(f"\nsoak ({backend}, {provider}): {summarize(results)}\n"
          f"soak wall time {wall:.0f}s for {n} trials; failures: {len(failures)}")
    for f in failures[:20]:
        print("  ", f)
    assert not failures


@pytest.mark.parametrize("provider", PROVIDER_TYPES)
@pytest.mark.parametrize("backend", STATE_BACKENDS)
def test_soak_faults(tmp_path: Path, backend: str, provider: str, request: pytest.FixtureRequest,
                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """30% faults (errors, 429s, lost responses), apply re-run until it exits 0: every trial ends with one
    job per model ever created, 2 uploads, and a state that records exactly those jobs."""
    n = int(os.environ.get("FTOPS_SOAK_FAULT_TRIALS", "20"))
    first = int(os.environ.get("FTOPS_SOAK_FIRST_SEED", "1000"))
    pg = request.getfixturevalue("postgres") if backend == "postgres" else None
    start = time.monotonic()
    failures: list[str] = []
    for seed in range(first, first + n):
        try:
            with fresh_state(backend, pg) as state:
                for var, value in state.env().items():
                    monkeypatch.setenv(var, value)
                served_faults_trial(tmp_path / f"t{seed}", provider, seed, state, capsys)
        except (AssertionError, pytest.fail.Exception) as e:
            failures.append(f"seed {seed}: {str(e)[:300]}")
    with capsys.disabled():
        print(f"\nfault soak ({backend}, {provider}): {n} trials, {time.monotonic() - start:.0f}s, "
              f"failures: {len(failures)}")
        for f in failures[:20]:
            print("  ", f)
    assert not failures
