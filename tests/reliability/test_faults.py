"""Faults at 30%: 500/503, 429, lost responses (the action commits, the answer never arrives) and
latency, on a served sandbox and on the embedded one (FTOPS_SANDBOX_FAULTS).

Proves that a lost create is resolved by looking before trying again: apply, re-run until it exits 0
(bounded), converges with zero duplicate jobs and zero duplicate uploads, and the state (local, or
postgres: a fresh database per trial) records exactly the provider's jobs. Prints the requests made
and the time taken (pytest -s).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import (
    API_KEY,
    DATASETS,
    declared_models,
    fresh_state,
    run_cli,
    StateSpec,
    served_sandbox,
    state_loads,
    write_project,
    shorten_backoff,
)

FAULTS = "error_rate=0.3,rate_limit_rate=0.3,lost_response_rate=0.3,latency_ms=30,retry_after_ms=50,seed={seed}"
PROVIDER = "timeout: 10\nmax_retries: 8\nmax_retry_wait: 30"
MODELS = 4
BOUND = 30


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same retry policy, 25x shorter backoff, so 30% faults finish in seconds (the policy's shape,
    not its scale, is under test). 429 waits are the fault string's `retry_after_ms`."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("TOGETHER_API_KEY", API_KEY)
    monkeypatch.setenv("FIREWORKS_API_KEY", API_KEY)
    for var in ("FTOPS_SANDBOX_FAULTS", "FTOPS_SANDBOX_TIME_SCALE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    shorten_backoff(monkeypatch)


def cli(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code, out, err = run_cli(root, capsys, *args)
    return code, err


def apply_until_done(root: Path, capsys: pytest.CaptureFixture[str], before_each: Any = None) -> int:
    for runs in range(1, BOUND + 1):
        if before_each is not None:
            before_each(runs)
        code, err = cli(root, capsys, "apply", "--auto-approve", "--max-wait", "2")
        if code == 0:
            return runs
    pytest.fail(f"apply did not converge in {BOUND} runs:\n{err}")


# One postgres trial by default, its uploads processed in 0.5 s instead of the sandbox's 3 (~12 s instead of
# 13-36 s); Fireworks (datasets READY on upload, no processing wait) seed 1 on local by default (~10 s);
# extra seeds under -m soak (and tests/benchmarks/test_soak.py, FTOPS_SOAK_FAULT_TRIALS).
SERVED_CASES = [("local", "openai", 1), ("local", "together", 1), ("local", "fireworks", 1), ("postgres", "openai", 2),
                *[pytest.param(*c, marks=pytest.mark.soak)
                  for c in (("local", "openai", 2), ("local", "openai", 3), ("local", "together", 2),
                            ("local", "fireworks", 2), ("local", "fireworks", 3), ("postgres", "fireworks", 1))]]
PROCESSING_S = {"local": 3.0, "postgres": 0.5}


@pytest.mark.parametrize(("backend", "provider", "seed"), SERVED_CASES)
def test_served_faults_converge_without_duplicates(tmp_path: Path, backend: str, provider: str, seed: int,
                                                  capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pg = request.getfixturevalue("postgres") if backend == "postgres" else None
    with fresh_state(backend, pg) as state:
        for var, value in state.env().items():  # the CLI runs in-process: it reads this process's env
            monkeypatch.setenv(var, value)
        served_faults_trial(tmp_path, provider, seed, state, capsys, PROCESSING_S[backend])


def served_faults_trial(tmp_path: Path, provider: str, seed: int, state: StateSpec,
                        capsys: pytest.CaptureFixture[str], file_processing_s: float = 3.0) -> None:
    """One served sandbox at 30% faults, apply re-run until it exits 0; asserts the remote truth and the state.
    `file_processing_s`: how long an OpenAI-dialect upload stays `uploaded` (the sandbox's default: 3 s)."""
    start = time.monotonic()
    with served_sandbox(tmp_path / "sandbox.db", faults=FAULTS.format(seed=seed),
                        file_processing_s=file_processing_s) as s:
        root = write_project(tmp_path / "proj", s.url_for(provider), models=MODELS, provider_extra=PROVIDER,
                             provider=provider, state=state)
        runs = apply_until_done(root, capsys)
        jobs = s.jobs()
        live = s.live_jobs_by_model()
        uploads = s.uploads()
        counts = dict(s.counts)
        requests = s.requests
    elapsed = time.monotonic() - start
    with capsys.disabled():
        print(f"\nfaults 30% served {provider} state={state.backend} seed={seed}: {runs} apply run(s), "
              f"{requests} requests, {elapsed:.1f}s, {len(jobs)} jobs created, {uploads} uploads; by kind {counts}")
    names = declared_models(root)
    assert live == {n: 1 for n in names}
    assert len(jobs) == len(names), f"duplicate jobs were created (even if cancelled later): {jobs}"
    assert uploads == DATASETS
    st = state_loads(root)  # through the backend ftops.yaml names
    assert not st.intents
    assert {st.models[n].job.job_id for n in names} == {j["id"] for j in jobs}  # type: ignore[union-attr]


def test_embedded_sandbox_faults_converge_without_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The default provider (sandbox in-process) with FTOPS_SANDBOX_FAULTS: lost responses surface as a
    dropped connection from the in-process transport (429s ask for 50 ms: `retry_after_ms`)."""
    root = write_project(tmp_path / "proj", "unused", models=MODELS)
    text = (root / "ftops.yaml").read_text()
    text = text.replace("provider:\n  type: openai\n  base_url: unused\n",
                        "provider:\n  type: sandbox\n  " + PROVIDER.replace("\n", "\n  ") + "\n")
    (root / "ftops.yaml").write_text(text)
    # Each run builds a fresh app whose fault generator restarts from its seed: vary it per run.
    start = time.monotonic()
    runs = apply_until_done(root, capsys, lambda n: monkeypatch.setenv(
        "FTOPS_SANDBOX_FAULTS", FAULTS.format(seed=100 + n).replace("latency_ms=30", "latency_ms=5")))
    elapsed = time.monotonic() - start
    with sqlite3.connect(root / ".ftops" / "sandbox.db") as db:
        jobs = db.execute("select json_extract(metadata, '$.ftops_model'), status from jobs").fetchall()
        uploads = db.execute("select count(*) from files where purpose = 'fine-tune'").fetchone()[0]
    with capsys.disabled():
        print(f"\nfaults 30% embedded: {runs} apply run(s), {elapsed:.1f}s, {len(jobs)} jobs, {uploads} uploads")
    assert sorted(m for m, _ in jobs) == declared_models(root), jobs
    assert uploads == DATASETS
    assert not state_loads(root).intents
