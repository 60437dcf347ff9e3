"""The PostgreSQL backend (psycopg 3, extra `ftops[postgres]`): shared state for teams and CI.

Layout (schema version 1, created on first use under a transaction-level advisory lock, and
refused when the database holds a newer one):

    ftops_schema   (version)
    ftops_states   (name PK, lineage, serial, top jsonb)          one row per state (project)
    ftops_models   (state, name, doc jsonb)                        one row per model, history excluded
    ftops_history  (state, model, seq, doc jsonb)                  earlier jobs, one row each
    ftops_files    (state, key, doc jsonb)                         one row per uploaded file
    ftops_locks    (state PK, info jsonb)                          who holds the lock (informational)

A save is one transaction: `UPDATE ftops_states SET serial = serial + 1 … WHERE serial = <base>
AND lineage = <lineage>` is the compare-and-swap (0 rows: refused, never merged), then only the
touched model and file rows are written and new history entries inserted, so recording one action
costs O(1). A save with nothing touched rewrites every row.

The lock is a session-level advisory lock (`pg_try_advisory_lock`) on the backend's connection: the
server releases it when the connection drops, so a crashed run never leaves a stale lock. The row in
`ftops_locks` only names the holder; `force-unlock` terminates the holder's session if it still
runs (a hung run), which releases its lock.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any
from urllib.parse import urlsplit

from ftops.diagnostics import FtopsError, error
from ftops.state.backend import LockInfo, StateBackend, StateWriteError, check_document, conflict
from ftops.state.model import State

SCHEMA_VERSION = 1
_SCHEMA_LOCK = 0x66746F7073  # "ftops": serialises schema creation across concurrent first uses

_DDL = """
CREATE TABLE IF NOT EXISTS ftops_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS ftops_states (name text PRIMARY KEY, lineage text NOT NULL, serial bigint NOT NULL,
                                         top jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS ftops_models (state text NOT NULL, name text NOT NULL, doc jsonb NOT NULL,
                                         PRIMARY KEY (state, name));
CREATE TABLE IF NOT EXISTS ftops_history (state text NOT NULL, model text NOT NULL, seq integer NOT NULL,
                                          doc jsonb NOT NULL, PRIMARY KEY (state, model, seq));
CREATE TABLE IF NOT EXISTS ftops_files (state text NOT NULL, key text NOT NULL, doc jsonb NOT NULL,
                                        PRIMARY KEY (state, key));
CREATE TABLE IF NOT EXISTS ftops_locks (state text PRIMARY KEY, info jsonb NOT NULL);
"""


def _redacted(url: str) -> str:
    """host:port/db, never the user's password."""
    try:
        u = urlsplit(url)
        return f"postgres {u.hostname or 'localhost'}{f':{u.port}' if u.port else ''}{u.path or ''}"
    except ValueError:
        return "postgres (unparsable URL)"


class PostgresBackend(StateBackend):
    def __init__(self, url: str, name: str):
        try:
            import psycopg
        except ImportError:
            raise FtopsError(error(
                "state.backend_missing", "the postgres state backend needs psycopg",
                "psycopg 3 is not installed.", hint="pip install 'ftops[postgres]'")) from None
        self._psycopg = psycopg
        self.name = name
        self.location = f"{_redacted(url)} (state {name})"
        self.warnings = []
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            raise FtopsError(error(
                "state.backend_unreachable", "cannot connect to the postgres state backend",
                f"{self.location}: {type(e).__name__}: {str(e).strip().splitlines()[0][:200]}; nothing was sent.",
                hint="check the URL's variable, the server and the network")) from None
        self._key = int.from_bytes(hashlib.sha256(f"ftops:{name}".encode()).digest()[:8], "big", signed=True)
        self._history: dict[str, int] | None = None  # model -> history rows stored, as of our last read/write
        self._locked: LockInfo | None = None
        self._ensure_schema()

    # ------------------------------------------------------------------ schema

    def _ensure_schema(self) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cur.execute(_DDL)
            cur.execute("SELECT max(version) FROM ftops_schema")
            row = cur.fetchone()
            version = row[0] if row else None
            if version is None:
                cur.execute("INSERT INTO ftops_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif version > SCHEMA_VERSION:
                raise FtopsError(error(
                    "state.too_new", "the postgres state schema was written by a newer ftops",
                    f"{self.location} has schema version {version}; this ftops knows up to {SCHEMA_VERSION}.",
                    hint="upgrade ftops (pip install -U 'ftops[postgres]')"))

    # ------------------------------------------------------------------ reader

    def load(self) -> State:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT lineage, serial, top FROM ftops_states WHERE name = %s", (self.name,))
            row = cur.fetchone()
            if row is None:
                self._history = {}
                return State()
            doc: dict[str, Any] = dict(row[2])
            doc.update(lineage=row[0], serial=row[1], models={}, files={})
            cur.execute("SELECT name, doc FROM ftops_models WHERE state = %s", (self.name,))
            for name, mdoc in cur.fetchall():
                doc["models"][name] = dict(mdoc, history=[])
            cur.execute("SELECT model, doc FROM ftops_history WHERE state = %s ORDER BY model, seq", (self.name,))
            for model, hdoc in cur.fetchall():
                if model in doc["models"]:
                    doc["models"][model]["history"].append(hdoc)
            cur.execute("SELECT key, doc FROM ftops_files WHERE state = %s", (self.name,))
            for key, fdoc in cur.fetchall():
                doc["files"][key] = fdoc
        state = check_document(doc, self.location, self._corrupt)
        self._history = {n: len(m.history) for n, m in state.models.items()}
        return state

    def _corrupt(self, why: str) -> Any:
        return error("state.corrupt", "the state in postgres is corrupt", f"{self.location}: {why}.",
                     hint="inspect the ftops_* tables; the next plan re-adopts every job from the provider")

    def exists(self) -> bool:
        with self.conn.cursor() as cur:
            cur.execute("SELECT 1 FROM ftops_states WHERE name = %s", (self.name,))
            return cur.fetchone() is not None

    # ------------------------------------------------------------------ writer

    def save(self, state: State) -> State:
        from ftops import __version__

        new = state.saved_copy(serial=state.serial + 1, ftops_version=__version__)
        touched = state.touched()
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute("UPDATE ftops_states SET serial = serial + 1, top = %s "
                            "WHERE name = %s AND serial = %s AND lineage = %s",
                            (self._top(new), self.name, state.serial, state.lineage))
                if cur.rowcount == 0:
                    cur.execute("SELECT serial, lineage FROM ftops_states WHERE name = %s", (self.name,))
                    row = cur.fetchone()
                    if row is not None:
                        raise conflict(self.location, (row[0], row[1]), (state.serial, state.lineage))
                    cur.execute("INSERT INTO ftops_states (name, lineage, serial, top) VALUES (%s, %s, %s, %s) "
                                "ON CONFLICT DO NOTHING", (self.name, new.lineage, new.serial, self._top(new)))
                    if cur.rowcount == 0:
                        raise conflict(self.location, (-1, "?"), (state.serial, state.lineage))
                    touched = None
                if touched is None or self._history is None:
                    self._write_all(cur, new)
                else:
                    self._write_touched(cur, new, *touched)
        except self._psycopg.Error as e:
            self._history = None  # unknown after a failed transaction: the next save writes everything
            raise StateWriteError(error(
                "state.write_failed", "the state could not be saved",
                f"{self.location}: {type(e).__name__}: {str(e).strip().splitlines()[0][:200]}. The transaction "
                "was rolled back: the previous state is intact.", hint="check the database, then re-run")) from None
        state._touched_models.clear()
        state._touched_files.clear()
        return new

    def replace(self, state: State) -> State:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("DELETE FROM ftops_states WHERE name = %s", (self.name,))
            cur.execute("INSERT INTO ftops_states (name, lineage, serial, top) VALUES (%s, %s, %s, %s)",
                        (self.name, state.lineage, state.serial, self._top(state)))
            self._write_all(cur, state)
        return state

    @staticmethod
    def _top(state: State) -> str:
        return json.dumps(state.model_dump(mode="json", exclude={"models", "files", "serial", "lineage"}))

    def _write_all(self, cur: Any, state: State) -> None:
        for table in ("ftops_models", "ftops_history", "ftops_files"):
            cur.execute(f"DELETE FROM {table} WHERE state = %s", (self.name,))  # noqa: S608 - fixed names
        models = [(self.name, n, json.dumps(m.model_dump(mode="json", exclude={"history"})))
                  for n, m in state.models.items()]
        history = [(self.name, n, i, json.dumps(h.model_dump(mode="json")))
                   for n, m in state.models.items() for i, h in enumerate(m.history)]
        files = [(self.name, k, json.dumps(f.model_dump(mode="json"))) for k, f in state.files.items()]
        if models:
            cur.executemany("INSERT INTO ftops_models (state, name, doc) VALUES (%s, %s, %s)", models)
        if history:
            cur.executemany("INSERT INTO ftops_history (state, model, seq, doc) VALUES (%s, %s, %s, %s)", history)
        if files:
            cur.executemany("INSERT INTO ftops_files (state, key, doc) VALUES (%s, %s, %s)", files)
        self._history = {n: len(m.history) for n, m in state.models.items()}

    def _write_touched(self, cur: Any, state: State, models: frozenset[str], files: frozenset[str]) -> None:
        assert self._history is not None
        for name in sorted(models):
            rec = state.models.get(name)
            if rec is None:
                cur.execute("DELETE FROM ftops_models WHERE state = %s AND name = %s", (self.name, name))
                cur.execute("DELETE FROM ftops_history WHERE state = %s AND model = %s", (self.name, name))
                self._history.pop(name, None)
                continue
            cur.execute("INSERT INTO ftops_models (state, name, doc) VALUES (%s, %s, %s) "
                        "ON CONFLICT (state, name) DO UPDATE SET doc = EXCLUDED.doc",
                        (self.name, name, json.dumps(rec.model_dump(mode="json", exclude={"history"}))))
            stored = self._history.get(name, 0)
            start = stored
            if len(rec.history) < stored:  # history rewritten, not appended: store it again
                cur.execute("DELETE FROM ftops_history WHERE state = %s AND model = %s", (self.name, name))
                start = 0
            for i in range(start, len(rec.history)):
                cur.execute("INSERT INTO ftops_history (state, model, seq, doc) VALUES (%s, %s, %s, %s)",
                            (self.name, name, i, json.dumps(rec.history[i].model_dump(mode="json"))))
            self._history[name] = len(rec.history)
        for key in sorted(files):
            f = state.files.get(key)
            if f is None:
                cur.execute("DELETE FROM ftops_files WHERE state = %s AND key = %s", (self.name, key))
            else:
                cur.execute("INSERT INTO ftops_files (state, key, doc) VALUES (%s, %s, %s) "
                            "ON CONFLICT (state, key) DO UPDATE SET doc = EXCLUDED.doc",
                            (self.name, key, json.dumps(f.model_dump(mode="json"))))

    # ------------------------------------------------------------------ locker

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s), pg_backend_pid()", (self._key,))
            row = cur.fetchone()
            assert row is not None
            got, pid = row
            if not got:
                return self.lock_info() or LockInfo(id="?", who="another ftops run", operation="?", since="?")
            held = info.model_copy(update={"pg_pid": pid})
            cur.execute("INSERT INTO ftops_locks (state, info) VALUES (%s, %s) "
                        "ON CONFLICT (state) DO UPDATE SET info = EXCLUDED.info",
                        (self.name, held.model_dump_json()))
        self._locked = held
        return None

    def unlock(self) -> None:
        if self._locked is None:
            return
        with self.conn.cursor() as cur:
            cur.execute("DELETE FROM ftops_locks WHERE state = %s AND info->>'id' = %s", (self.name, self._locked.id))
            cur.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        self._locked = None

    def _holder_pid(self) -> int | None:
        """The backend pid that holds our advisory lock right now, if any."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND ((classid::bigint << 32) | objid::bigint) = (%s::bigint & x'ffffffffffffffff'::bigint)",
                        (self._key,))
            row = cur.fetchone()
            return int(row[0]) if row else None

    #: How long `lock_info` waits for a new holder's row (it takes the lock, then writes the row).
    holder_row_wait = 1.0

    def lock_info(self) -> LockInfo | None:
        pid = self._holder_pid()
        if pid is None:
            return None
        deadline = time.monotonic() + self.holder_row_wait
        while True:
            with self.conn.cursor() as cur:
                cur.execute("SELECT info FROM ftops_locks WHERE state = %s", (self.name,))
                row = cur.fetchone()
            if row is not None and row[0].get("pg_pid") == pid:
                return LockInfo.model_validate(row[0])
            # A contender that lost by a hair reads before the winner's row commits: wait for it, so the
            # refusal names the holder (user, host, pid) rather than a server session.
            if time.monotonic() >= deadline or self._holder_pid() != pid:
                return LockInfo(id="?", who=f"a postgres session (pid {pid})", operation="?", since="?")
            time.sleep(0.02)

    def force_unlock(self, lock_id: str) -> None:
        holder = self.lock_info()
        if holder is None:
            with self.conn.cursor() as cur:
                cur.execute("DELETE FROM ftops_locks WHERE state = %s", (self.name,))
            raise FtopsError(error("state.not_locked", "the state is not locked",
                                   f"no session holds the lock on {self.location} (a crashed run's lock is "
                                   "released by the server when its connection drops); nothing to unlock."))
        if holder.id != lock_id:
            raise FtopsError(error("state.lock_id_mismatch", "that is not the current lock",
                                   f"{self.location} is held by {holder.describe()}, not by lock {lock_id}.",
                                   hint=f"check the holder; to break it: ftops force-unlock {holder.id}"))
        pg_pid = getattr(holder, "pg_pid", None)
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pg_pid,))
            cur.execute("DELETE FROM ftops_locks WHERE state = %s AND info->>'id' = %s", (self.name, lock_id))

    def close(self) -> None:
        if not self.conn.closed:
            self.conn.close()  # a held advisory lock goes with the session
        self._locked = None
