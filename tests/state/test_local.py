"""The local backend's journal, its crash and disk-full behaviour, and refusal of bad format versions."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftops.diagnostics import FtopsError
from ftops.state import FileRecord, LocalBackend, ModelRecord, State, StateWriteError


def _model(name: str, pad: int = 0) -> ModelRecord:
    return ModelRecord(name=name, fingerprint="f" * 64, seed=1, spec={"pad": "x" * pad})


@pytest.mark.parametrize("version", ['"999"', '"1"', "true", "1.5", "0", "null"])
def test_a_format_version_that_is_not_a_positive_integer_is_refused(tmp_path: Path, version: str) -> None:
    store = LocalBackend.for_project(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_text(f'{{"format_version": {version}, "serial": 3, "ftops_version": "9.0"}}')
    with pytest.raises(FtopsError) as e:
        store.load()
    assert e.value.diagnostics[0].code == "state.corrupt"
    assert "format_version" in e.value.diagnostics[0].detail


def test_touched_saves_append_one_line_and_a_reload_sees_them(tmp_path: Path) -> None:
    store = LocalBackend.for_project(tmp_path)
    s = store.save(State())  # first save of a process: a snapshot
    for i in range(50):
        s.models[f"m{i}"] = _model(f"m{i}")
        s.touch_model(f"m{i}")
        s = store.save(s)
    lines = store.journal_path.read_bytes().splitlines()
    assert len(lines) == 50 and all(len(line) < 1000 for line in lines)  # one record each, not the document
    assert json.loads(store.path.read_text())["models"] == {}  # the snapshot is not rewritten
    fresh = LocalBackend.for_project(tmp_path).load()
    assert fresh.serial == 51 and sorted(fresh.models) == sorted(s.models)
    del s.models["m3"]
    s.touch_model("m3")
    s = store.save(s)
    assert "m3" not in LocalBackend.for_project(tmp_path).load().models


def test_a_torn_journal_tail_is_ignored_and_a_full_save_compacts(tmp_path: Path) -> None:
    store = LocalBackend.for_project(tmp_path)
    s = store.save(State())
    s.files["a" * 64] = FileRecord(sha256="a" * 64, file_id="file-1", bytes=3, filename="x")
    s.touch_file("a" * 64)
    s = store.save(s)
    good = store.journal_path.read_bytes()
    s.touch_file("b" * 64)
    s.files["b" * 64] = FileRecord(sha256="b" * 64, file_id="file-2", bytes=3, filename="y")
    store.save(s)
    torn = store.journal_path.read_bytes()[: len(good) + 40]  # killed in the middle of the second append
    store.journal_path.write_bytes(torn)
    back = LocalBackend.for_project(tmp_path).load()
    assert back.serial == 2 and list(back.files) == ["a" * 64]
    # a flipped byte inside a complete line fails its checksum: the line and what follows are ignored
    store.journal_path.write_bytes(good.replace(b"file-1", b"file-X"))
    assert LocalBackend.for_project(tmp_path).load().serial == 1
    store.journal_path.write_bytes(good)
    other = LocalBackend.for_project(tmp_path)
    st = other.load()
    st = other.save(st)  # nothing touched: a full save folds the journal into state.json
    assert other.journal_path.read_bytes() == b""
    assert json.loads(other.path.read_text())["files"]["a" * 64]["file_id"] == "file-1" and st.serial == 3


def test_unlock_leaves_state_json_whole(tmp_path: Path) -> None:
    store = LocalBackend.for_project(tmp_path)
    with store.locked("apply"):
        s = store.save(store.load())
        s.models["m"] = _model("m")
        s.touch_model("m")
        store.save(s)
        assert json.loads(store.path.read_text())["models"] == {}
    assert json.loads(store.path.read_text())["models"]["m"]["name"] == "m"
    assert store.journal_path.read_bytes() == b""


def _saves_like_an_apply(tmp_path: Path, n: int) -> tuple[list[int], int]:
    """n records saved one by one (an intent, then the job), as apply does; the journal growth per save
    and how many times state.json was rewritten after the first save."""
    from ftops.state import Intent, JobRecord

    store = LocalBackend.for_project(tmp_path / f"p{n}")
    s = store.save(State())
    snapshots = {store.path.stat().st_ino}
    growth = []
    for i in range(n):
        name = f"m{i:04d}"
        s.intents.append(Intent(kind="create_job", key=name, model=name, started_at=1.0))
        s.touch()
        s = store.save(s)
        s.intents.clear()
        s.models[name] = _model(name)
        s.models[name].job = JobRecord(job_id=f"ftjob-{i:04d}", fingerprint="f" * 64, status="queued")
        s.touch_model(name)
        before = store.journal_path.stat().st_size
        s = store.save(s)
        growth.append(store.journal_path.stat().st_size - before)
        snapshots.add(store.path.stat().st_ino)
    assert LocalBackend.for_project(tmp_path / f"p{n}").load().models == s.models
    store.close()
    return growth, len(snapshots) - 1


def test_recording_an_action_costs_the_same_at_100_and_1000_records(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What a save writes does not depend on how many records the state holds, and an apply of 1,000
    models rewrites state.json only when its lock is released (not in between)."""
    monkeypatch.delenv("FTOPS_STATE_VERIFY_TOUCH", raising=False)  # its full reload per save is O(n)
    small, rewrites_small = _saves_like_an_apply(tmp_path, 100)
    large, rewrites_large = _saves_like_an_apply(tmp_path, 1000)
    assert (rewrites_small, rewrites_large) == (0, 0)
    # the same record, a serial with a digit or two more: not the 1,000 records of the document
    assert max(large) - max(small) <= 4 and max(large) < 1000


def test_a_journal_past_its_limit_is_folded_into_the_snapshot(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import ftops.state.backends.local as local

    monkeypatch.setattr(local, "JOURNAL_MIN_BYTES", 4096)
    _growth, rewrites = _saves_like_an_apply(tmp_path, 200)
    # the limit grows with the snapshot (4x): a few compactions, not one per save
    assert 1 <= rewrites <= 6


def test_a_write_by_someone_else_makes_the_next_save_a_full_one(tmp_path: Path) -> None:
    store = LocalBackend.for_project(tmp_path)
    s = store.save(State())
    s.models["a"] = _model("a")
    s.touch_model("a")
    s = store.save(s)
    other = LocalBackend.for_project(tmp_path)
    o = other.load()
    o.models["b"] = _model("b")
    o.touch_model("b")
    other.save(o)  # the other process's first save: a compaction
    s.models["c"] = _model("c")
    s.touch_model("c")
    with pytest.raises(FtopsError) as e:  # based on an old serial: refused, never merged
        store.save(s)
    assert e.value.diagnostics[0].code == "state.conflict"
    s = store.load()
    s.models["c"] = _model("c")
    s.touch_model("c")
    s = store.save(s)
    assert sorted(LocalBackend.for_project(tmp_path).load().models) == ["a", "b", "c"]


def test_an_untouched_mutation_is_caught_in_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_STATE_VERIFY_TOUCH", "1")
    store = LocalBackend.for_project(tmp_path)
    s = store.save(State())
    s.models["a"] = _model("a")
    s.models["b"] = _model("b")
    s.touch_model("a")  # b forgotten
    with pytest.raises(AssertionError, match="models.b"):
        store.save(s)


# ---------------------------------------------------------------------- a nearly full disk


@contextlib.contextmanager
def tiny_disk(where: Path, size: str = "96k") -> Iterator[Path]:
    """A small tmpfs mounted at `where` (root only), or a skip saying why there is none."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the disk-full tests need one")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}); disk-full tests skipped")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the file system until about `leave` bytes are free."""
    filler = disk / f"filler{len(list(disk.glob('filler*')))}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            st = os.statvfs(disk)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            try:
                os.write(fd, b"\0" * min(4096, free - leave))
            except OSError as e:
                assert e.errno == errno.ENOSPC
                break
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_fails_the_save_and_keeps_state_and_backup_readable(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        store = LocalBackend.for_project(disk)
        s = store.save(State())
        for i in range(3):
            s.models[f"m{i}"] = _model(f"m{i}", pad=2000)
        s = store.save(s)  # full save: state.json (serial 2) and its backup (serial 1)
        before, backup = store.path.read_bytes(), store.backup_path.read_bytes()
        fill(disk, leave=4096)
        for i in range(3, 40):
            s.models[f"m{i}"] = _model(f"m{i}", pad=2000)
        with pytest.raises(StateWriteError) as e:
            store.save(s)  # nothing touched: a whole new snapshot, larger than the free space
        d = e.value.diagnostics[0]
        assert d.code == "state.write_failed" and "ENOSPC" in d.detail
        assert store.path.read_bytes() == before and store.backup_path.read_bytes() == backup
        assert not list(store.path.parent.glob(".*.tmp"))
        assert LocalBackend.for_project(disk).load().serial == 2

        # the journal: an append that does not fit is cut back, and the state before it still loads
        s2 = store.load()
        for i in range(3, 40):
            s2.models[f"m{i}"] = _model(f"m{i}", pad=2000)
            s2.touch_model(f"m{i}")
        with pytest.raises(StateWriteError):
            for _ in range(3):  # the first save of a process compacts; then appends
                s2 = store.save(s2)
                s2.touch_model("m3")
        reloaded = LocalBackend.for_project(disk).load()
        assert reloaded.serial >= 2 and reloaded.models["m0"].name == "m0"


def test_with_actions_names_what_the_run_already_did() -> None:
    e = StateWriteError(__import__("ftops.diagnostics", fromlist=["error"]).error(
        "state.write_failed", "the state could not be saved", "writing x failed: ENOSPC."))
    named = e.with_actions(["file-1"], ["ftjob-9"])
    assert "uploaded file file-1" in named.diagnostics[0].detail
    assert "created job ftjob-9" in named.diagnostics[0].detail


def test_apply_on_a_full_disk_fails_naming_the_remote_actions_and_resumes_without_duplicates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 1: apply used to exit 0 with state.json and its backup truncated to 4 KiB."""
    import ftops.cli
    from tests.reliability.harness import run_cli, served_sandbox, write_project

    with served_sandbox(tmp_path / "sandbox.db") as s, tiny_disk(tmp_path / "disk", "256k") as disk:
        root = write_project(disk / "proj", s.url)
        fillers: list[Path] = []
        original = ftops.cli._CliHooks.job_started

        def job_started(self: object, m: object) -> None:  # the disk fills up after the uploads
            if not fillers:
                fillers.append(fill(disk))
            original(self, m)  # type: ignore[arg-type]

        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setattr(ftops.cli._CliHooks, "job_started", job_started)
        code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 1 and "error[state.write_failed]" in err and "ENOSPC" in err, err
        assert "uploaded file file-" in err, err  # the remote actions already taken are named
        assert "Apply complete" not in out
        state = LocalBackend.for_project(root).load()  # the previous state stays readable
        assert len(state.files) == 2
        monkeypatch.setattr(ftops.cli._CliHooks, "job_started", original)
        for f in fillers:
            f.unlink()
        code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 0, err
        assert s.live_jobs_by_model() == {"m0": 1, "m1": 1, "m2": 1}
        assert s.uploads() == 2
        assert {r.job.job_id for r in LocalBackend.for_project(root).load().models.values()  # type: ignore[union-attr]
                } == {j["id"] for j in s.jobs()}
