"""State store: atomic writes with a backup, 0600, serial, refusal of corrupt or newer files, the lock."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from ftops.diagnostics import FtopsError
from ftops.state import FileRecord, State, StateLock, StateStore


def test_save_bumps_serial_keeps_backup_and_is_private(tmp_path: Path) -> None:
    store = StateStore.for_project(tmp_path)
    s1 = store.save(State())
    s1.files["a" * 64] = FileRecord(sha256="a" * 64, file_id="file-1", bytes=3, filename="x")
    s2 = store.save(s1)
    assert (s1.serial, s2.serial) == (1, 2)
    assert store.load().files["a" * 64].file_id == "file-1"
    assert json.loads(store.backup_path.read_text())["serial"] == 1
    for p in (store.path, store.backup_path):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert not list(store.path.parent.glob("*.tmp"))


def test_missing_state_is_empty_with_a_fresh_lineage(tmp_path: Path) -> None:
    a, b = StateStore.for_project(tmp_path).load(), StateStore.for_project(tmp_path).load()
    assert a.serial == 0 and a.models == {} and a.lineage != b.lineage


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"serial": "x"}', b"\x00\xff"])
def test_corrupt_state_is_refused_with_a_recovery_hint(tmp_path: Path, content: bytes) -> None:
    store = StateStore.for_project(tmp_path)
    store.save(store.save(State()))
    store.path.write_bytes(content)
    with pytest.raises(FtopsError) as e:
        store.load()
    d = e.value.diagnostics[0]
    assert d.code == "state.corrupt" and "backup" in d.hint
    assert store.path.read_bytes() == content  # left untouched
    assert store.backup_path.exists()


def test_state_from_a_newer_ftops_is_refused(tmp_path: Path) -> None:
    store = StateStore.for_project(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps({"format_version": 99, "ftops_version": "9.0"}))
    with pytest.raises(FtopsError) as e:
        store.load()
    assert e.value.diagnostics[0].code == "state.too_new"


def _hold(root: str, ready: "multiprocessing.synchronize.Event", done: "multiprocessing.synchronize.Event") -> None:  # type: ignore[name-defined]
    lock = StateLock.for_project(Path(root), "apply")
    lock.acquire()
    ready.set()
    done.wait(10)
    lock.release()


def test_lock_is_exclusive_across_processes_and_names_the_holder(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(str(tmp_path), ready, done))
    p.start()
    try:
        assert ready.wait(10)
        with pytest.raises(FtopsError) as e:
            StateLock.for_project(tmp_path).acquire(timeout=0.2)
        d = e.value.diagnostics[0]
        assert d.code == "state.locked" and f"pid {p.pid}" in d.detail
    finally:
        done.set()
        p.join(10)
    with StateLock.for_project(tmp_path):  # free again once the holder is gone
        pass
