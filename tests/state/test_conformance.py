"""One conformance suite for every state backend: local, postgres (a real server), s3 (moto's server).

Lock tests are sequential (one holder, then a contender), so they are deterministic on moto too: its
threaded server checks and writes a conditional PUT in separate steps, so two truly simultaneous
`If-None-Match: *` writes could both succeed there (never on AWS S3). The concurrent two-process
apply test therefore runs on postgres (tests/state/test_shared_state.py, tests/reliability/test_concurrency.py),
not on moto.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from ftops.diagnostics import FtopsError
from ftops.state import FileRecord, Intent, JobRecord, LockInfo, ModelRecord, State, StateBackend
from tests.state.conftest import hold_lock_in_subprocess

Make = Callable[[], StateBackend]


def _job(i: int, status: str = "succeeded") -> JobRecord:
    return JobRecord(job_id=f"ftjob-{i}", fingerprint="f" * 64, status=status, fine_tuned_model=f"ft:m:{i}",
                     trained_tokens=100 + i, created_at=1700000000 + i)


def _rich_state(n: int = 5) -> State:
    s = State(project="p", endpoint="http://x/v1")
    for i in range(n):
        s.models[f"m{i}"] = ModelRecord(name=f"m{i}", fingerprint=f"{i:064d}", seed=i, spec={"n_epochs": i},
                                        job=_job(i), history=[_job(100 + i, "cancelled"), _job(200 + i, "failed")])
        s.files[f"{i:064x}"] = FileRecord(sha256=f"{i:064x}", file_id=f"file-{i}", bytes=i, filename=f"{i}.jsonl")
    s.intents.append(Intent(kind="create_job", key="f" * 64, model="m0", started_at=1.5))
    return s


def _dump(s: State) -> dict[str, Any]:
    return s.model_dump(mode="json")


def test_round_trip(make: Make) -> None:
    a = make()
    assert a.load().serial == 0
    saved = a.save(_rich_state())
    back = make().load()
    assert back.serial == 1 and _dump(back) == _dump(saved)


def test_touched_saves_equal_a_full_reload(make: Make) -> None:
    a = make()
    s = a.save(a.save(_rich_state()))
    for i in range(5, 12):  # new models, a job moved to history, a deleted file
        s.models[f"m{i}"] = ModelRecord(name=f"m{i}", fingerprint="a" * 64, seed=i, job=_job(i, "running"))
        s.touch_model(f"m{i}")
        s = a.save(s)
    rec = s.models["m1"]
    assert rec.job is not None
    rec.history.append(rec.job)
    rec.job = _job(999, "queued")
    s.touch_model("m1")
    del s.files[f"{2:064x}"]
    s.touch_file(f"{2:064x}")
    del s.models["m3"]
    s.touch_model("m3")
    s.intents = []
    s = a.save(s)
    back = make().load()
    assert back.serial == s.serial and _dump(back) == _dump(s)


def test_a_write_based_on_a_stale_serial_is_refused(make: Make) -> None:
    a, b = make(), make()
    base = a.save(_rich_state())
    sa, sb = a.load(), b.load()
    assert sa.serial == sb.serial == base.serial
    sa.models["x"] = ModelRecord(name="x", fingerprint="1" * 64, seed=1)
    sa.touch_model("x")
    a.save(sa)
    sb.models["y"] = ModelRecord(name="y", fingerprint="2" * 64, seed=2)
    sb.touch_model("y")
    with pytest.raises(FtopsError) as e:
        b.save(sb)
    assert e.value.diagnostics[0].code == "state.conflict"
    now = make().load()
    assert "x" in now.models and "y" not in now.models  # refused, never merged
    fresh = b.load()  # re-read, then the write goes through
    fresh.models["y"] = ModelRecord(name="y", fingerprint="2" * 64, seed=2)
    fresh.touch_model("y")
    b.save(fresh)
    assert {"x", "y"} <= set(make().load().models)


def test_a_state_of_another_lineage_is_refused(make: Make) -> None:
    a = make()
    a.save(_rich_state())
    with pytest.raises(FtopsError) as e:
        make().save(State())  # a fresh state (serial 0, new lineage) over an existing one
    assert e.value.diagnostics[0].code == "state.conflict"


def test_lock_contention_names_the_holder_and_waits(make: Make) -> None:
    a, b = make(), make()
    held = a.lock("apply")
    seen: list[LockInfo] = []
    t0 = time.monotonic()
    with pytest.raises(FtopsError) as e:
        b.lock("apply", timeout=0.5, on_wait=seen.append)
    assert time.monotonic() - t0 >= 0.45
    d = e.value.diagnostics[0]
    assert d.code == "state.locked" and held.id in d.detail and f"pid {os.getpid()}" in d.detail
    assert [h.id for h in seen] == [held.id]
    a.unlock()
    got = b.lock("apply", timeout=2)
    b.unlock()
    assert got.id != held.id


def test_crash_with_the_lock_held(spec: dict[str, Any], make: Make) -> None:
    """local and postgres: the lock dies with its holder. s3: the lock object stays; force-unlock by id."""
    p, lock_id = hold_lock_in_subprocess(spec)
    b = make()
    with pytest.raises(FtopsError) as e:
        b.lock("apply", timeout=0.2)
    assert lock_id in e.value.diagnostics[0].detail
    os.kill(p.pid, signal.SIGKILL)
    p.wait(30)
    if spec["kind"] == "s3":
        with pytest.raises(FtopsError) as e:
            b.lock("apply", timeout=0.2)  # stale: the crashed run's lock object is still there
        assert lock_id in e.value.diagnostics[0].detail and f"force-unlock {lock_id}" in e.value.diagnostics[0].hint
        with pytest.raises(FtopsError) as e:
            b.force_unlock("not-" + lock_id)
        assert e.value.diagnostics[0].code == "state.lock_id_mismatch"
        b.force_unlock(lock_id)
    info = b.lock("apply", timeout=10)  # postgres: released when the connection dropped
    assert b.lock_info() is not None and b.lock_info().id == info.id  # type: ignore[union-attr]
    b.unlock()
    assert b.lock_info() is None


def test_force_unlock_of_a_live_postgres_holder_terminates_its_session(spec: dict[str, Any], make: Make) -> None:
    if spec["kind"] != "postgres":
        pytest.skip("postgres only: a local lock cannot be forced (the OS holds it), s3 is covered above")
    p, lock_id = hold_lock_in_subprocess(spec)
    try:
        b = make()
        b.force_unlock(lock_id)
        b.lock("apply", timeout=10)
        b.unlock()
    finally:
        p.kill()
        p.wait(30)


def test_local_force_unlock_refuses_a_live_lock(tmp_path: Any) -> None:
    from ftops.state import LocalBackend

    a = LocalBackend.for_project(tmp_path)
    held = a.lock("apply")
    with pytest.raises(FtopsError) as e:
        LocalBackend.for_project(tmp_path).force_unlock(held.id)
    assert e.value.diagnostics[0].code == "state.lock_alive"
    a.unlock()
    with pytest.raises(FtopsError) as e:
        LocalBackend.for_project(tmp_path).force_unlock(held.id)
    assert e.value.diagnostics[0].code == "state.not_locked"
