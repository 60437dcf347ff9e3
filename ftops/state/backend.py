"""The `StateBackend` interface: where the state lives, split as Terraform's statemgr is.

- reader: `load()` returns the current state (an empty one with a fresh lineage when there is none);
- writer: `save(state)` persists `state` with serial + 1, as a compare-and-swap: `state` must be based
  on the stored serial and lineage (what the last `load`/`save` returned). A write based on an old
  serial is refused with `state.conflict`, never merged;
- locker: `lock(operation, timeout)` takes the per-project lock (waiting up to `timeout`, calling
  `on_wait` once with the holder), `unlock()` releases it, `force_unlock(lock_id)` breaks a lock a
  crashed run left behind (where the store can leave one), `lock_info()` names the holder.

Every implementation keeps the same guarantees: a save that returns is durable (complete and
fsynced, or committed), a save that fails raises `StateWriteError` and leaves the previous state
readable. The engine and CLI see only this interface.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import socket
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ftops.diagnostics import Diagnostic, FtopsError, error
from ftops.state.model import STATE_FORMAT_VERSION, State


class LockInfo(BaseModel):
    """Who holds the state lock: shown to the run that waits, and the id `force-unlock` takes."""

    model_config = ConfigDict(extra="allow")

    id: str
    who: str
    operation: str
    since: str
    pid: int | None = None
    host: str = ""
    command: str = ""

    @classmethod
    def new(cls, operation: str, **extra: Any) -> LockInfo:
        host = socket.gethostname()
        return cls(id=str(uuid.uuid4()), who=f"{_user()}@{host} (pid {os.getpid()})", operation=operation,
                   since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), pid=os.getpid(), host=host,
                   command=" ".join(sys.argv[:3]), **extra)

    def describe(self) -> str:
        return f"{self.who}, running `{self.operation}` since {self.since} (lock id {self.id})"


class StateWriteError(FtopsError):
    """A save failed (disk full, I/O error, read-only store); the previous state is still readable."""

    def with_actions(self, uploaded: list[str], created: list[str]) -> StateWriteError:
        """The same error, naming the remote actions this run already took (they are not in the state)."""
        d = self.diagnostics[0]
        done = [*(f"uploaded file {i}" for i in uploaded), *(f"created job {i}" for i in created)]
        taken = ("Remote actions this run already took: " + ", ".join(done) + ". They are real and "
                 "billed; the next plan re-adopts them from the provider, so nothing is created twice."
                 ) if done else "No remote action had been taken yet."
        e = StateWriteError(Diagnostic(d.severity, d.code, d.summary, f"{d.detail} {taken}", d.range, d.hint,
                                       d.address))
        e.exit_code = self.exit_code
        return e


def write_failed(where: str, exc: OSError, *, previous: str) -> StateWriteError:
    name = errno.errorcode.get(exc.errno or 0, "EIO")
    hint = {"ENOSPC": "free disk space", "EDQUOT": "free disk space (quota)",
            "EROFS": "the file system is read-only: remount it or move the project"}.get(name, "check the disk")
    return StateWriteError(error(
        "state.write_failed", "the state could not be saved",
        f"writing {where} failed: {name} ({exc.strerror or exc}). {previous}",
        hint=f"{hint}, then re-run; the previous state is intact"))


def conflict(where: str, stored: tuple[int, str], ours: tuple[int, str]) -> FtopsError:
    same = stored[1] == ours[1]
    why = (f"it is at serial {stored[0]}, and this run's copy is based on serial {ours[0]}" if same
           else f"its lineage is {stored[1]}, not {ours[1]}")
    return FtopsError(error(
        "state.conflict", "the state changed under this run",
        f"{where} was written by someone else ({why}); this write was refused rather than merged.",
        hint="take the state lock for writes (ftops apply does); re-run to plan from the new state"))


def check_document(doc: Any, where: str, corrupt: Callable[[str], Diagnostic]) -> State:
    """Validate a decoded state document: refuse a newer (or non-integer) format_version, then the model."""
    if not isinstance(doc, dict):
        raise FtopsError(corrupt("its top level is not an object"))
    version = doc.get("format_version", STATE_FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FtopsError(corrupt(f"format_version must be a positive integer, not {json.dumps(version)[:40]}"))
    if version > STATE_FORMAT_VERSION:
        raise FtopsError(error(
            "state.too_new", "state file was written by a newer ftops",
            f"{where} has format_version {version}; this ftops reads up to "
            f"{STATE_FORMAT_VERSION} (written by ftops {str(doc.get('ftops_version', '?'))[:40]}).",
            hint="upgrade ftops (pip install -U ftops); do not edit the file by hand"))
    try:
        return State.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise FtopsError(corrupt(f"{loc}: {first['msg']}")) from None


def dump_state(state: State) -> dict[str, Any]:
    return state.model_dump(mode="json")


class StateBackend(ABC):
    """Reader, writer and locker of one project's state (see the module docstring)."""

    #: Human name of where the state lives, for messages (`.ftops/state.json`, `postgres …`, `s3://…`).
    location: str = ""
    #: Warnings found when opening the store (e.g. S3 bucket versioning off).
    warnings: list[Diagnostic]

    # ---------------------------------------------------------------- reader
    @abstractmethod
    def load(self) -> State: ...

    def exists(self) -> bool:
        return self.load().serial > 0

    # ---------------------------------------------------------------- writer
    @abstractmethod
    def save(self, state: State) -> State:
        """Persist `state` with serial + 1 (compare-and-swap on serial and lineage); return the saved copy."""

    def replace(self, state: State) -> State:
        """Write `state` as-is over whatever is stored (migration); keeps its serial and lineage."""
        raise NotImplementedError

    # ---------------------------------------------------------------- locker
    @abstractmethod
    def try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the lock and return None, or return the holder's info without waiting."""

    @abstractmethod
    def unlock(self) -> None: ...

    @abstractmethod
    def force_unlock(self, lock_id: str) -> None: ...

    @abstractmethod
    def lock_info(self) -> LockInfo | None: ...

    def lock(self, operation: str, timeout: float = 0.0,
             on_wait: Callable[[LockInfo], None] | None = None, poll: float = 0.1) -> LockInfo:
        """Take the lock, waiting up to `timeout` seconds; fails with `state.locked` naming the holder."""
        info = LockInfo.new(operation)
        deadline = time.monotonic() + timeout
        told = False
        while True:
            holder = self.try_lock(info)
            if holder is None:
                return info
            if time.monotonic() >= deadline:
                raise FtopsError(error(
                    "state.locked", "the state is locked by another ftops run",
                    f"{self.location} is held by {holder.describe()}. Two runs at once could both create the "
                    "same job, so this one stopped before sending anything.",
                    hint=f"wait for the other run to finish, then re-run (--lock-timeout 5m waits); "
                         f"{self.stale_lock_hint(holder)}"))
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def stale_lock_hint(self, holder: LockInfo) -> str:
        return f"if that run crashed, `ftops force-unlock {holder.id}`"

    @contextlib.contextmanager
    def locked(self, operation: str, timeout: float = 0.0,
               on_wait: Callable[[LockInfo], None] | None = None) -> Iterator[LockInfo]:
        info = self.lock(operation, timeout, on_wait)
        try:
            yield info
        except BaseException:
            with contextlib.suppress(Exception):
                self.unlock()
            raise
        self.unlock()

    def close(self) -> None:
        """Release connections (a held lock is released with them)."""


# ---------------------------------------------------------------------- complete, fsynced file writes


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written: a short write (nearly full disk) is continued, and an
    error raises instead of leaving a silently truncated file."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, "short write")
        view = view[n:]


def fsync_dir(path: Path) -> None:
    dfd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_verified_tmp(path: Path, data: bytes) -> Path:
    """Write `data` to a temp file beside `path` (0600), complete, fsynced and read back; return it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if tmp.read_bytes() != data:
            raise OSError(errno.EIO, "read-back differs from what was written")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically with mode 0600 (verified tmp + rename + dir fsync). Raises OSError."""
    tmp = write_verified_tmp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_private_file(path: Path, data: bytes) -> None:
    """Public atomic 0600 writer, for saved plans and caches."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, data)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "?"
