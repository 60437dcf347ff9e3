"""Two applies at once.

Same project (one state: the local file, or a postgres database): the lock (a flock, an advisory lock)
makes one of them the only writer; the other exits 1 with `state.locked` naming the holder, or (if it
started after the winner finished) finds nothing to do.
Separate state files (two copies of one project, same `project:` name, one served sandbox): the
look-before-create and the final duplicate sweep leave at most one live job per fingerprint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.reliability.harness import (
    DATASETS,
    STATE_BACKENDS,
    finish,
    fresh_state,
    ftops_env,
    run_ftops,
    served_sandbox,
    start_ftops,
    state_loads,
    write_project,
)


# Two rounds on local, one on postgres (each round costs ~5-9 s).
@pytest.mark.parametrize(("backend", "round_"), [(b, r) for b in STATE_BACKENDS for r in range(2 if b == "local" else 1)])
def test_two_applies_one_project(tmp_path: Path, backend: str, round_: int, request: pytest.FixtureRequest) -> None:
    pg = request.getfixturevalue("postgres") if backend == "postgres" else None
    with fresh_state(backend, pg) as state, served_sandbox(tmp_path / "sandbox.db", faults="latency_ms=20") as s:
        env = ftops_env(**state.env())
        root = write_project(tmp_path / "proj", s.url, state=state)
        a = start_ftops(root, "apply", "--auto-approve", env=env)
        b = start_ftops(root, "apply", "--auto-approve", env=env)
        ra, rb = finish(a), finish(b)
        runs = {a.pid: ra, b.pid: rb}
        codes = sorted(r.code for r in runs.values())
        jobs, uploads, live = s.jobs(), s.uploads(), s.live_jobs_by_model()
        st = state_loads(root, env)  # readable through its backend, and it records exactly the jobs
    for r in runs.values():
        assert "Traceback" not in r.err, r.err
    assert live == {"m0": 1, "m1": 1, "m2": 1}
    assert len(jobs) == 3 and uploads == DATASETS
    if codes == [0, 1]:
        (winner_pid,) = [pid for pid, r in runs.items() if r.code == 0]
        (loser,) = [r for r in runs.values() if r.code == 1]
        assert "error[state.locked]" in loser.err, loser.err
        assert f"pid {winner_pid}" in loser.err, f"the loser does not name the holder: {loser.err}"
        assert "before sending anything" in loser.err
        outcome = "loser refused with state.locked"
    else:
        assert codes == [0, 0], {p: (r.code, r.err) for p, r in runs.items()}
        # The second started after the first finished: it must have had nothing to do.
        assert sum("0 uploaded, 0 created" in r.out for r in runs.values()) >= 1
        outcome = "sequential (second had nothing to do)"
    print(f"\ntwo applies, one project, {backend} state, round {round_}: exit codes {codes}: {outcome}")
    assert not st.intents
    assert {m.job.job_id for m in st.models.values() if m.job} == {j["id"] for j in jobs}


@pytest.mark.parametrize(("provider", "round_"), [("openai", 0), ("openai", 1), ("together", 0)])
def test_two_applies_separate_state_files(tmp_path: Path, provider: str, round_: int) -> None:
    with served_sandbox(tmp_path / "sandbox.db", faults="latency_ms=20") as s:
        one = write_project(tmp_path / "one", s.url_for(provider), provider=provider)
        two = tmp_path / "two"
        shutil.copytree(one, two)
        a = start_ftops(one, "apply", "--auto-approve")
        b = start_ftops(two, "apply", "--auto-approve")
        ra, rb = finish(a), finish(b)
        assert ra.code == 0 and rb.code == 0, (ra.err, rb.err)
        jobs, uploads = s.jobs(), s.uploads()
        live_model = s.live_jobs_by_model()
        live_files = s.live_files()
        # Both projects converge afterwards: a plan in each has nothing to do.
        plans = [run_ftops(d, "plan", "--detailed-exitcode") for d in (one, two)]
        # The run whose job the other one's sweep cancelled still points at it until its next apply,
        # which adopts the survivor (plan is read-only).
        again = [run_ftops(d, "apply", "--auto-approve") for d in (one, two)]
        assert [r.code for r in again] == [0, 0] and all("0 uploaded, 0 created" in r.out for r in again)
    cancelled = sum(j["status"] == "cancelled" for j in jobs)
    print(f"\nseparate state files, {provider}, round {round_}: {len(jobs)} jobs created, {cancelled} cancelled by the sweep, "
          f"{uploads} uploads, live per model {live_model}; "
          f"swept: {('cancelled duplicate' in ra.text) + ('cancelled duplicate' in rb.text)} run(s)")
    # Look-before-upload narrows the race; a true tie uploads twice, and the copy is swept at once.
    assert uploads <= 2 * DATASETS and live_files == DATASETS, (uploads, live_files)
    assert live_model == {"m0": 1, "m1": 1, "m2": 1}
    assert [p.code for p in plans] == [0, 0], [p.out + p.err for p in plans]
    live_ids = {j["id"] for j in jobs if j["status"] not in ("cancelled", "failed")}
    for d in (one, two):
        st = state_loads(d)
        ids = {m.job.job_id for m in st.models.values() if m.job}
        assert ids == live_ids, f"{d.name}'s state points at {ids}, live are {live_ids}"
