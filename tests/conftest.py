"""Suite-wide setup: offline tiktoken, the location of ../shared (skip when absent), one PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.state.servers import Postgres

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

_cache = SHARED / "tiktoken-cache"
if _cache.is_dir():
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(_cache))

# Every incremental state save (the local journal) is checked against a full reload, in this process
# and in the ftops subprocesses tests start: a mutation the engine forgot to touch fails loudly.
# The benchmarks unset it (it makes each save O(n)).
os.environ.setdefault("FTOPS_STATE_VERIFY_TOUCH", "1")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED


@pytest.fixture(scope="session")
def openapi_spec_path(shared_dir: Path) -> Path:
    p = shared_dir / "openai-openapi" / "openapi.yaml"
    if not p.is_file():
        pytest.skip("../shared/openai-openapi/openapi.yaml is absent")
    return p


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL server for the session (initdb + pg_ctl in a temp dir, as the postgres user under
    root); skips saying why where it cannot start. State tests, the reliability harness and the soak share it."""
    from tests.state.servers import start_postgres

    pg = start_postgres()
    if isinstance(pg, str):
        pytest.skip(f"no PostgreSQL server: {pg}")
    try:
        yield pg
    finally:
        pg.stop()


def _tiktoken_ready() -> bool:
    """True when tiktoken's encodings load (from ../shared/tiktoken-cache: this machine has no network)."""
    try:
        import tiktoken

        tiktoken.get_encoding("o200k_base")
        tiktoken.get_encoding("cl100k_base")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_tiktoken: needs tiktoken's encodings (../shared/tiktoken-cache)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "fuzz" not in (config.getoption("-m") or ""):  # minutes long: only when asked for with -m fuzz
        skip_fuzz = pytest.mark.skip(reason="fuzzing runs only with -m fuzz")
        for item in items:
            if item.get_closest_marker("fuzz"):
                item.add_marker(skip_fuzz)
    if "soak" not in (config.getoption("-m") or ""):  # extra seeds and trials: only with -m soak
        skip_soak = pytest.mark.skip(reason="extra seeds and trials run only with -m soak")
        for item in items:
            if item.get_closest_marker("soak"):
                item.add_marker(skip_soak)
    marked = [i for i in items if i.get_closest_marker("needs_tiktoken")]
    if marked and not _tiktoken_ready():
        skip = pytest.mark.skip(reason="tiktoken encodings unavailable (../shared/tiktoken-cache is absent)")
        for item in marked:
            item.add_marker(skip)
