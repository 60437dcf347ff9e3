"""Compatibility layer: the names the local state store had before backends (see backends/local.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ftops.state.backend import LockInfo, write_private_file
from ftops.state.backends.local import STATE_DIR, STATE_FILE, LocalBackend, StateStore


class StateLock:
    """The local backend's lock on its own: `acquire` fails (after `timeout`) naming the holder."""

    def __init__(self, path: Path, operation: str = "apply"):
        self.path = path
        self.operation = operation
        self._backend = LocalBackend(path.with_name(STATE_FILE))
        self.info: LockInfo | None = None

    @classmethod
    def for_project(cls, root: Path, operation: str = "apply") -> StateLock:
        return cls(root / STATE_DIR / "state.lock", operation)

    def acquire(self, timeout: float = 0.0) -> None:
        self.info = self._backend.lock(self.operation, timeout)

    def release(self) -> None:
        self._backend.unlock()

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def locked(root: Path, operation: str, timeout: float = 0.0) -> Iterator[StateLock]:
    lock = StateLock.for_project(root, operation)
    lock.acquire(timeout)
    try:
        yield lock
    finally:
        lock.release()


__all__ = ["STATE_DIR", "STATE_FILE", "LocalBackend", "StateLock", "StateStore", "locked", "write_private_file"]
