"""SQLite state of the sandbox: one database for every dialect, file bytes on disk beside it.

Files, uploads, jobs and models carry the `dialect` that created them (`openai`, `together`, …):
a dialect only ever sees its own rows, so a Together client never lists OpenAI's jobs.

Several processes may share one database (two `ftops apply` runs on one project), so every
request runs in one `BEGIN IMMEDIATE` transaction: the simulation step and the action commit
together or not at all. WAL keeps readers from blocking, busy_timeout makes writers queue.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Store"]

# Columns added after version 1; a version-1 database gains them (its rows are OpenAI's).
_ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "files": (("dialect", "TEXT NOT NULL DEFAULT 'openai'"), ("extra", "TEXT"), ("ready_at", "REAL"),
              ("status_details", "TEXT")),
    "uploads": (("dialect", "TEXT NOT NULL DEFAULT 'openai'"),),
    "jobs": (("dialect", "TEXT NOT NULL DEFAULT 'openai'"), ("output_name", "TEXT"),
             ("tokens_per_second", "REAL"), ("extra", "TEXT")),
    "events": (("kind", "TEXT"),),
    "models": (("dialect", "TEXT NOT NULL DEFAULT 'openai'"),),
}

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    created_at REAL NOT NULL,
    bytes INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at REAL,
    sha256 TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    dialect TEXT NOT NULL DEFAULT 'openai',
    extra TEXT,
    ready_at REAL,
    status_details TEXT
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at REAL NOT NULL,
    file_expires_s REAL,
    file_id TEXT,
    dialect TEXT NOT NULL DEFAULT 'openai'
);
CREATE TABLE IF NOT EXISTS upload_parts (
    id TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    short_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    training_file TEXT NOT NULL,
    validation_file TEXT,
    method TEXT NOT NULL,
    legacy_hp INTEGER NOT NULL,
    suffix TEXT,
    seed INTEGER NOT NULL,
    metadata TEXT,
    integrations TEXT,
    validate_until REAL NOT NULL,
    queued_at REAL,
    eligible_at REAL,
    segment_start REAL,
    elapsed_before REAL NOT NULL DEFAULT 0,
    run_seconds REAL,
    n_examples INTEGER,
    steps_per_epoch INTEGER,
    n_epochs INTEGER,
    total_steps INTEGER,
    last_step INTEGER NOT NULL DEFAULT 0,
    trained_tokens INTEGER,
    fine_tuned_model TEXT,
    result_file TEXT,
    error TEXT,
    finished_at REAL,
    dialect TEXT NOT NULL DEFAULT 'openai',
    output_name TEXT,
    tokens_per_second REAL,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT,
    kind TEXT
);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id, seq);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    step_number INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    model TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_job ON checkpoints(job_id, seq);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    owned_by TEXT NOT NULL,
    job_id TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    dialect TEXT NOT NULL DEFAULT 'openai'
);
CREATE TABLE IF NOT EXISTS resources (
    name TEXT PRIMARY KEY,
    dialect TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_events (kind TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_events_kind ON rate_events(kind, at);
"""


class Store:
    """Pooled connections to the sandbox database, plus the directory of file bytes."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.files_dir = self.db_path.with_name(self.db_path.name + ".files")
        self.parts_dir = self.files_dir / "parts"
        self.cache_dir = self.db_path.with_name(self.db_path.name + ".cache")
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self._idle: list[sqlite3.Connection] = []  # pooled: the threaded server makes a thread per request
        self._lock = threading.Lock()
        with self.write() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for table, columns in _ADDED_COLUMNS.items():
                have = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()}
                for name, decl in columns:
                    if name not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
            conn.execute("CREATE INDEX IF NOT EXISTS jobs_dialect ON jobs(dialect, seq)")
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))

    def _connect(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; taken immediately so a concurrent writer waits instead of failing."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            with self._lock:
                self._idle.append(conn)

    def file_path(self, file_id: str) -> Path:
        return self.files_dir / file_id

    def part_path(self, part_id: str) -> Path:
        return self.parts_dir / part_id

    def close(self) -> None:
        """Close the pooled connections (a later request opens new ones)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def fsync_dir(path: Path) -> None:
    """Make a rename durable (best effort on platforms without directory fds)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_id(prefix: str, length: int = 24) -> str:
    """An OpenAI-looking id (`file-…`, `ftjob-…`); random, since ids carry no meaning."""
    import secrets

    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def insert_file(conn: sqlite3.Connection, *, file_id: str, created_at: float, size: int, filename: str,
                purpose: str, sha256: str, expires_at: float | None = None, dialect: str = "openai",
                status: str = "processed", extra: str | None = None, ready_at: float | None = None) -> None:
    """Record a file whose bytes are already at `Store.file_path(file_id)` (or will be, for a
    file whose status is not yet `processed`). A file stored as `uploaded` with `ready_at` is
    processed by the core once the clock passes `ready_at` (`SandboxApp.process_files`)."""
    conn.execute(
        "INSERT INTO files(id, created_at, bytes, filename, purpose, status, expires_at, sha256, dialect, extra,"
        " ready_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (file_id, created_at, size, filename, purpose, status, expires_at, sha256, dialect, extra, ready_at),
    )


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
