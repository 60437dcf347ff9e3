"""The local backend: `.ftops/state.json` (a snapshot) plus `.ftops/state.journal` (append-only).

Recording one action appends one checksummed line to the journal (the touched records, the intents
and the top-level fields) and fsyncs it: O(1) in the number of models. The snapshot is rewritten
(compacted) on the first save of a process, when the journal grows past JOURNAL_FACTOR times the
snapshot (and past JOURNAL_MIN_BYTES), when nothing was touched (a full save), and when the lock is
released, so after a clean run `state.json` alone is the whole state. A compaction costs O(n); the
journal limit grows with the snapshot, so over an apply that adds records one by one the compactions
cost O(1) per action (a geometric series), and with the factor of 4 an apply of 1,000 models does
none before its unlock.

Crash safety: a journal line counts only when it is complete, its checksum matches and its serial
follows the snapshot's (or the previous line's); a torn tail is ignored and cut off by the next
compaction. A snapshot is written to a temp file, fsynced, read back and compared, and only then is
the old snapshot copied to `state.json.backup` and the new one renamed over it. Any OSError (ENOSPC,
EIO, EROFS) raises `StateWriteError` with the previous state still readable.

The lock is an OS advisory lock (flock) on `state.lock`, which dies with its process, so a kill -9
never leaves a stale lock; the lock file names its holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path
from typing import IO, Any

from ftops.diagnostics import Diagnostic, FtopsError, error
from ftops.state.backend import (
    LockInfo,
    StateBackend,
    conflict,
    check_document,
    dump_state,
    fsync_dir,
    write_all,
    write_failed,
    write_private,
    write_verified_tmp,
)
from ftops.state.model import State

STATE_DIR = ".ftops"
STATE_FILE = "state.json"
VERIFY_ENV = "FTOPS_STATE_VERIFY_TOUCH"  # tests: check every incremental save against a full reload
#: The journal is folded into the snapshot when it is larger than JOURNAL_FACTOR snapshots and than
#: JOURNAL_MIN_BYTES: a load replays at most that much (a few ms per MiB), a compaction rewrites it all.
JOURNAL_FACTOR = 4
JOURNAL_MIN_BYTES = 4 << 20


def _crc(body: bytes) -> bytes:
    return hashlib.sha256(body).hexdigest()[:16].encode()


class LocalBackend(StateBackend):
    """Reads and writes `.ftops/state.json` and its journal; `save` bumps the serial."""

    def __init__(self, path: Path):
        self.path = path
        self.backup_path = path.with_name(path.name + ".backup")
        self.journal_path = path.with_name(path.stem + ".journal")
        self.lock_path = path.with_name(path.stem + ".lock")
        self.location = str(path)
        self.warnings = []
        self._stored: tuple[int, str | None] | None = None  # (serial, lineage) on disk, as last seen
        self._stamp: tuple[Any, ...] | None = None  # stat of snapshot and journal after our last write
        self._jfd: int | None = None
        self._jsize = 0
        self._lock_fh: IO[str] | None = None

    @classmethod
    def for_project(cls, root: Path) -> LocalBackend:
        return cls(root / STATE_DIR / STATE_FILE)

    # ------------------------------------------------------------------ reader

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> State:
        state = self._read()
        self._stored = (state.serial, state.lineage if self.path.exists() else None)
        self._stamp = None  # re-checked (and the journal re-opened) at the next save
        return state

    def _read(self) -> State:
        if not self.path.exists():
            return State()
        try:
            raw = self.path.read_bytes()
        except OSError as e:
            raise FtopsError(self._corrupt(f"it cannot be read ({e.strerror})")) from None
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise FtopsError(self._corrupt(f"it is not valid JSON ({e})")) from None
        if isinstance(doc, dict):
            self._replay(doc)
        return check_document(doc, str(self.path), self._corrupt)

    def _replay(self, doc: dict[str, Any]) -> None:
        try:
            data = self.journal_path.read_bytes()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")[:-1]  # a last piece without its newline is a torn write
        for line in lines:
            body, _, crc = line.rpartition(b"\t")
            if not body or crc != _crc(body):
                break
            rec = json.loads(body)
            if rec.get("lineage") != doc.get("lineage") or not isinstance(doc.get("serial"), int):
                continue
            if rec["serial"] <= doc["serial"]:
                continue  # already in the snapshot (a compaction that had not cut the journal yet)
            if rec["serial"] != doc["serial"] + 1:
                break
            doc.update(rec["top"])
            for section in ("models", "files"):
                target = doc.setdefault(section, {})
                for k, v in rec[section].items():
                    if v is None:
                        target.pop(k, None)
                    else:
                        target[k] = v

    def _corrupt(self, why: str) -> Diagnostic:
        hint = (f"a backup of the previous state is at {self.backup_path}: inspect it and copy it over "
                f"{self.path}, or move the broken file away; the next plan re-adopts every job from the "
                "provider's metadata, so no job is created twice")
        if not self.backup_path.exists():
            hint = (f"move {self.path} away; the next plan re-adopts every job from the provider's "
                    "metadata, so no job is created twice")
        return error("state.corrupt", "state file is corrupt", f"{self.path}: {why}. It was left untouched.",
                     hint=hint)

    # ------------------------------------------------------------------ writer

    def _disk_stamp(self) -> tuple[Any, ...]:
        """What tells whether someone else wrote since our last write: the snapshot's inode, size and
        mtime (a compaction renames a new file over it), and the journal's inode and size (it is only
        ever appended to, or cut when the snapshot is replaced)."""
        out: list[Any] = []
        for p, full in ((self.path, True), (self.journal_path, False)):
            try:
                st = p.stat()
                out.append((st.st_ino, st.st_size, st.st_mtime_ns) if full else (st.st_ino, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def save(self, state: State) -> State:
        """Persist `state` with serial + 1, as a compare-and-swap on the stored serial and lineage."""
        from ftops import __version__

        stale = self._stored is None or self._stamp is None or self._disk_stamp() != self._stamp
        if stale or self._stored is None:
            self._stored = self._stored_identity()  # first save, or someone else wrote since ours
        serial, lineage = self._stored
        if lineage is not None and (state.serial, state.lineage) != (serial, lineage):
            raise conflict(str(self.path), (serial, lineage), (state.serial, state.lineage))
        new = state.saved_copy(serial=state.serial + 1, ftops_version=__version__)
        touched = state.touched()
        if stale or touched is None or self._jfd is None or self._jsize > self._journal_limit:
            self._compact(new)
        else:
            self._append(new, *touched)
            if os.environ.get(VERIFY_ENV):
                self._verify(new, touched)
        state._touched_models.clear()
        state._touched_files.clear()
        return new

    def replace(self, state: State) -> State:
        """Write `state` as-is (its serial and lineage kept): `ftops state migrate`."""
        self._compact(state)
        return state

    def _stored_identity(self) -> tuple[int, str | None]:
        if not self.path.exists():
            return (0, None)
        s = self._read()
        return (s.serial, s.lineage)

    @property
    def _journal_limit(self) -> int:
        return max(JOURNAL_FACTOR * self._snap_bytes, JOURNAL_MIN_BYTES)

    _snap_bytes = 0

    def _compact(self, new: State) -> None:
        """Write `new` as the snapshot (verified before the backup rotates), then cut the journal."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(dump_state(new), indent=2, sort_keys=True).encode() + b"\n"
        where = str(self.path)
        try:
            tmp = write_verified_tmp(self.path, data)
            try:
                if self.path.exists():
                    where = str(self.backup_path)
                    write_private(self.backup_path, self.path.read_bytes())
                where = str(self.path)
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            fsync_dir(self.path.parent)
            where = str(self.journal_path)
            self._open_journal(truncate=True)
        except OSError as e:
            raise write_failed(where, e, previous=f"{self.path} still holds the previous state.") from None
        self._snap_bytes = len(data)
        self._stored = (new.serial, new.lineage)
        self._stamp = self._disk_stamp()

    def _open_journal(self, *, truncate: bool) -> None:
        if self._jfd is None:
            self._jfd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if truncate:
            os.ftruncate(self._jfd, 0)
            os.fsync(self._jfd)
            self._jsize = 0

    def _append(self, new: State, models: frozenset[str], files: frozenset[str]) -> None:
        assert self._jfd is not None
        rec = {"serial": new.serial, "lineage": new.lineage,
               "top": new.model_dump(mode="json", exclude={"models", "files"}),
               "models": {k: (new.models[k].model_dump(mode="json") if k in new.models else None)
                          for k in sorted(models)},
               "files": {k: (new.files[k].model_dump(mode="json") if k in new.files else None)
                         for k in sorted(files)}}
        body = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
        line = body + b"\t" + _crc(body) + b"\n"
        try:
            write_all(self._jfd, line)
            os.fdatasync(self._jfd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self._jfd, self._jsize)  # drop the partial line; the previous state stays valid
            raise write_failed(str(self.journal_path), e,
                               previous=f"{self.path} and its journal still hold the previous state.") from None
        self._jsize += len(line)
        self._stored = (new.serial, new.lineage)
        # the stamp save() checked, with our line added: no stat needed (the journal is O_APPEND)
        assert self._stamp is not None and self._stamp[1] is not None
        snap, (ino, size) = self._stamp
        self._stamp = (snap, (ino, size + len(line)))

    def _verify(self, new: State, touched: tuple[frozenset[str], frozenset[str]]) -> None:
        """Tests only: an incremental save must equal a full one (a mutation someone forgot to touch)."""
        disk, mem = dump_state(self._read()), dump_state(new)
        if disk != mem:
            diff = sorted(f"{sec}.{k}" for sec in ("models", "files")
                          for k in set(disk[sec]) | set(mem[sec]) if disk[sec].get(k) != mem[sec].get(k))
            raise AssertionError(f"incremental state save lost changes to {diff} (touched: {touched}); "
                                 "call state.touch_model/touch_file where they are mutated")

    def compact(self) -> None:
        """Fold the journal into the snapshot (from what is on disk: only saved changes)."""
        if self._jsize == 0 and not (self.journal_path.exists() and self.journal_path.stat().st_size):
            return
        self._compact(self._read())

    # ------------------------------------------------------------------ locker

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fh = os.fdopen(fd, "r+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fh)
            fh.close()
            return holder
        fh.seek(0)
        fh.truncate()
        fh.write(info.model_dump_json())
        fh.flush()
        self._lock_fh = fh
        return None

    def unlock(self) -> None:
        if self._lock_fh is None:
            return
        try:
            self.compact()  # leave state.json whole after a clean run
        finally:
            with contextlib.suppress(OSError):
                self._lock_fh.seek(0)
                self._lock_fh.truncate()
                fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def lock_info(self) -> LockInfo | None:
        if not self.lock_path.exists():
            return None
        with open(self.lock_path, "r+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_holder(fh)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return None

    def stale_lock_hint(self, holder: LockInfo) -> str:
        return "a local lock is released by the OS when its process ends, so it is never stale"

    def force_unlock(self, lock_id: str) -> None:
        holder = self.lock_info()
        if holder is None:
            raise FtopsError(error("state.not_locked", "the state is not locked",
                                   f"no run holds the lock on {self.path}; nothing to unlock."))
        raise FtopsError(error(
            "state.lock_alive", "a live process holds the local lock",
            f"{self.lock_path} is held by {holder.describe()}. A local lock is an OS lock that its process "
            "releases when it ends (even after kill -9), so it is never stale and cannot be forced.",
            hint=f"stop that process (pid {holder.pid}) if it hangs; its lock goes with it"))

    def close(self) -> None:
        if self._lock_fh is not None:
            self.unlock()
        if self._jfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._jfd)
            self._jfd = None
            self._stamp = None


def _read_holder(fh: IO[str]) -> LockInfo:
    """The holder's note; it writes it just after taking the lock, so give it a moment."""
    for _ in range(40):
        fh.seek(0)
        text = fh.read().strip()
        if text:
            try:
                return LockInfo.model_validate_json(text)
            except ValueError:
                break
        time.sleep(0.025)
    return LockInfo(id="?", who="another ftops process", operation="?", since="?")


# Compatibility names: the local backend was the only store before backends existed.
StateStore = LocalBackend
