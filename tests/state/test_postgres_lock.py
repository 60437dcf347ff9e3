"""The postgres lock's holder, as a contender sees it: a run that loses by a hair reads the holder's row
before the winner has written it (the winner takes the advisory lock, then writes the row)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from ftops.diagnostics import FtopsError
from ftops.state import LockInfo
from tests.state.servers import Postgres


def test_a_contender_names_the_holder_whose_row_lands_just_after_its_lock(postgres: Postgres) -> None:
    import psycopg

    from ftops.state.backends.postgres import PostgresBackend

    name = f"race-{uuid.uuid4().hex[:8]}"
    holder, contender = PostgresBackend(postgres.url, name), PostgresBackend(postgres.url, name)
    try:
        # The winner's two steps, pulled apart: the advisory lock now, its row 300 ms later.
        row = psycopg.connect(postgres.url, autocommit=True)
        with holder.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s), pg_backend_pid()", (holder._key,))
            got = cur.fetchone()
            assert got is not None
        info = LockInfo.new("apply").model_copy(update={"pg_pid": got[1]})

        def write_row() -> None:
            time.sleep(0.3)
            row.execute("INSERT INTO ftops_locks (state, info) VALUES (%s, %s)", (name, info.model_dump_json()))

        t = threading.Thread(target=write_row)
        t.start()
        with pytest.raises(FtopsError) as e:
            contender.lock("apply")
        t.join()
        (d,) = e.value.diagnostics
        assert d.code == "state.locked"
        assert info.who in d.detail and info.id in (d.hint or ""), (d.detail, d.hint)
        # With no row at all (a foreign session holding the key), it says so after a bounded wait.
        row.execute("DELETE FROM ftops_locks WHERE state = %s", (name,))
        start = time.monotonic()
        holder_seen = contender.lock_info()
        assert holder_seen is not None and holder_seen.id == "?" and f"pid {got[1]}" in holder_seen.who
        assert time.monotonic() - start < contender.holder_row_wait + 1
        row.close()
    finally:
        holder.close()
        contender.close()
    # The holder's session is gone: so is its lock.
    after = PostgresBackend(postgres.url, name)
    try:
        assert after.lock_info() is None
    finally:
        after.close()
