"""sha256 of dataset files with a stat cache, so unchanged files are never read again.

The cache maps (absolute path, size, mtime_ns, inode) to the digest. It is a JSON file written
atomically (temp file + fsync + rename) after merging what another process may have saved
meanwhile, so two racing processes never leave a torn file; the last writer wins per path.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ftops.diagnostics import FtopsError, error

_BLOCK = 4 * 1024 * 1024
_FORMAT = 1


#: on_progress(bytes_done, bytes_total), called as a long read advances (and once at the end).
ProgressCallback = Callable[[int, int], None]


def sha256_file(path: Path, on_progress: ProgressCallback | None = None) -> str:
    """Hex sha256 of a file's bytes, read in large blocks (hashlib releases the GIL)."""
    h = hashlib.sha256()
    done = 0
    with open(path, "rb", buffering=0) as f:
        total = os.fstat(f.fileno()).st_size if on_progress else 0
        buf = bytearray(_BLOCK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            if on_progress is not None:
                done += n
                on_progress(done, max(total, done))
    return h.hexdigest()


def stat_dataset(path: Path) -> os.stat_result:
    """stat() a dataset path, turning missing paths and non-regular files into FtopsError."""
    import stat as _stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FtopsError(error("dataset.not_found", f"dataset file not found: {path}",
                               hint="check the path in ftops.yaml")) from None
    except OSError as exc:
        raise FtopsError(error("dataset.not_found", f"cannot read dataset {path}: {exc}")) from None
    if not _stat.S_ISREG(st.st_mode):
        kind = "a directory" if _stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise FtopsError(error("dataset.not_a_file", f"dataset path is {kind}: {path}",
                               hint="point at a .jsonl file"))
    return st


def _key(st: os.stat_result) -> list[int]:
    """What must be unchanged for a cached digest to be trusted. ctime is in it because no user call can
    set it back: an in-place edit that restores size, mtime and inode still changes ctime."""
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


class HashCache:
    """Stat cache of dataset digests: a warm `sha256()` only stats the file, it reads no bytes."""

    def __init__(self, cache_file: Path) -> None:
        self.cache_file = Path(cache_file)
        self._entries: dict[str, dict[str, object]] = self._load()
        self._dirty: dict[str, dict[str, object]] = {}

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def sha256(self, path: Path, on_progress: ProgressCallback | None = None) -> str:
        """Digest of `path`; re-hashed only when size, mtime_ns or inode changed (then `on_progress`
        follows the read)."""
        abs_path = str(Path(path).resolve())
        st = stat_dataset(Path(abs_path))
        key = _key(st)
        entry = self._entries.get(abs_path)
        if entry is not None and entry.get("stat") == key and isinstance(entry.get("sha256"), str):
            return str(entry["sha256"])
        digest = sha256_file(Path(abs_path), on_progress)
        # A file modified while hashing gets no entry: the next call hashes it again.
        st2 = os.stat(abs_path)
        if _key(st2) == key:
            new: dict[str, object] = {"stat": key, "sha256": digest}
            self._entries[abs_path] = new
            self._dirty[abs_path] = new
        return digest

    def save(self) -> None:
        """Merge with the file on disk and replace it atomically (tmp + fsync + rename).

        The merge runs under an advisory lock (a sidecar `.lock` file, where fcntl exists) so
        two processes saving at once both keep their entries; without the lock the rename
        still guarantees a whole file, and the worst case is a lost entry (re-hashed later).
        """
        if not self._dirty and self.cache_file.exists():
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            with _file_lock(self.cache_file.with_name(self.cache_file.name + ".lock")):
                merged = self._load()  # what another process may have saved since we loaded
                merged.update(self._dirty)
                self._entries = merged
                write_atomic(self.cache_file, json.dumps({"format": _FORMAT, "entries": self._entries},
                                                         sort_keys=True, allow_nan=False))
        except OSError:
            return  # a cache is an optimisation: unwritable (read-only, full, misshapen) means re-hashing later
        self._dirty = {}


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on `path` (no-op where fcntl is unavailable, e.g. Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_cache(path: Path, text: str) -> None:
    """`write_atomic` for a cache file: an unwritable cache (read-only or full disk, a directory
    in the file's place) costs a recomputation next time, never the run."""
    try:
        write_atomic(path, text)
    except OSError:
        pass


def write_atomic(path: Path, text: str) -> None:
    """Write a cache file atomically (tmp + fsync + rename): readers never see a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
