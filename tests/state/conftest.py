"""Session-wide S3 server (moto) and a factory of backends per test; the PostgreSQL server is the suite-wide
`postgres` fixture of tests/conftest.py (the reliability harness and the benchmarks use it too)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ftops.state import StateBackend
from tests.state.servers import Postgres, S3Server, make_bucket, start_s3

_counter = itertools.count()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    srv = start_s3()
    if isinstance(srv, str):
        pytest.skip(f"no S3 emulator: {srv}")
    try:
        yield srv
    finally:
        srv.stop()


def backend_spec(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Where one test's state lives, as plain data (so a subprocess can open the same backend)."""
    if kind == "local":
        return {"kind": "local", "root": str(tmp_path / "proj")}
    if kind == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        return {"kind": "postgres", "url": pg.url, "name": f"t{next(_counter)}-{uuid.uuid4().hex[:8]}"}
    srv: S3Server = request.getfixturevalue("s3_server")
    bucket = f"ftops-{uuid.uuid4().hex[:12]}"
    make_bucket(srv.endpoint, bucket)
    return {"kind": "s3", "endpoint": srv.endpoint, "bucket": bucket, "key": "team/state.json"}


def open_spec(spec: dict[str, Any]) -> StateBackend:
    if spec["kind"] == "local":
        from ftops.state import LocalBackend

        return LocalBackend.for_project(Path(spec["root"]))
    if spec["kind"] == "postgres":
        from ftops.state.backends.postgres import PostgresBackend

        return PostgresBackend(spec["url"], spec["name"])
    from ftops.state.backends.s3 import S3Backend

    return S3Backend(bucket=spec["bucket"], key=spec["key"], endpoint_url=spec["endpoint"])


@pytest.fixture(params=["local", "postgres", "s3"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def spec(backend_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return backend_spec(backend_kind, request, tmp_path)


@pytest.fixture
def make(spec: dict[str, Any]) -> Iterator[Callable[[], StateBackend]]:
    """New backend instances on one store (each one is "another process" as far as state goes)."""
    opened: list[StateBackend] = []

    def _make() -> StateBackend:
        b = open_spec(spec)
        opened.append(b)
        return b

    yield _make
    for b in opened:
        b.close()


HOLD = """
import json, sys, time
sys.path.insert(0, {repo!r})
from tests.state.conftest import open_spec
b = open_spec(json.loads(sys.argv[1]))
info = b.lock("apply")
print(info.id, flush=True)
time.sleep(120)
"""


def hold_lock_in_subprocess(spec: dict[str, Any]) -> tuple[subprocess.Popen[str], str]:
    """A process that takes the lock and then hangs; returns it and its lock id."""
    repo = str(Path(__file__).resolve().parents[2])
    p = subprocess.Popen([sys.executable, "-c", HOLD.format(repo=repo), json.dumps(spec)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    assert line, p.stderr.read() if p.stderr else ""
    return p, line
