"""Cost of recording actions (issue 14): apply of 100, 400 and 1,000 models on the in-process sandbox,
no rate limits, on the local backend and on PostgreSQL; ms per model at each size.

Target: the 1,000-model figure within 1.3x of the 100-model one (it was 31 -> 68 ms/model when every
action rewrote the whole state file). Times the executor (uploads, look-before-create, creates and
every state save); the plan before it is timed separately.
Run: .venv/bin/pytest tests/benchmarks/test_state_bench.py -s   (FTOPS_BENCH_SIZES=100,400,1000)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.benchmarks.scale import write_project

SIZES = [int(n) for n in os.environ.get("FTOPS_BENCH_SIZES", "100,400,1000").split(",")]


def _apply(root: Path, environ: dict[str, str]) -> tuple[float, float, int, float]:
    from ftops.engine.apply import Executor
    from ftops.sandbox import SandboxApp, SandboxSettings
    from ftops.workspace import Workspace

    ws = Workspace(root, environ=environ)
    # No rate limits: the sandbox's own (OpenAI's documented 3 active jobs per base model, 48 creations
    # a day) would stop the run; jobs stay queued (time scale 1) and files are usable at once, so this
    # times ftops's own bookkeeping, not the emulator simulating 1,000 trainings.
    (root / ".ftops").mkdir(exist_ok=True)
    ws._sandbox = SandboxApp(root / ".ftops" / "sandbox.db", settings=SandboxSettings(
        time_scale=1.0, max_active_jobs_per_model=None, job_creates_per_day=None, job_creates_per_hour=None,
        file_uploads_per_hour=None, file_processing_s=0.0))
    store = ws.store
    try:
        with store.locked("apply"):
            t0 = time.perf_counter()
            res = ws.plan()
            t_plan = time.perf_counter() - t0
            saves = []
            in_save = [0.0]
            real_save = store.save

            def timed_save(state):  # type: ignore[no-untyped-def]
                t = time.perf_counter()
                try:
                    return real_save(state)
                finally:
                    in_save[0] += time.perf_counter() - t

            store.save = timed_save  # type: ignore[method-assign]
            ex = Executor(ws.provider(), store, res.state, root=ws.root, hash_cache=ws.hash_cache)  # type: ignore[arg-type]
            ex.hooks.state_saved = saves.append  # type: ignore[method-assign]
            t0 = time.perf_counter()
            ex.run(res.plan, res.snapshot)
            t_apply = time.perf_counter() - t0
        assert len(ex.created) == len(ws.loaded.config.models)
        return t_plan, t_apply, len(saves), in_save[0]
    finally:
        ws.close()
        store.close()


@pytest.mark.parametrize("backend", ["local", "postgres"])
def test_state_cost_per_action(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               request: pytest.FixtureRequest) -> None:
    monkeypatch.delenv("FTOPS_STATE_VERIFY_TOUCH", raising=False)  # the test-only O(n) self-check
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FTOPS_SANDBOX")}
    extra = ""
    if backend == "postgres":
        from tests.state.servers import start_postgres

        pg = start_postgres()
        if isinstance(pg, str):
            pytest.skip(f"no PostgreSQL server: {pg}")
        request.addfinalizer(pg.stop)
        environ["FTOPS_STATE_PG_URL"] = pg.url
    rows = []
    for n in SIZES:
        root = tmp_path / f"p{n}"
        write_project(root, models=n, datasets=10, dataset_bytes=20_000)
        if backend == "postgres":
            extra = f"state:\n  backend: postgres\n  url_env: FTOPS_STATE_PG_URL\n  key: bench{n}\n"
            with (root / "ftops.yaml").open("a") as f:
                f.write(extra)
        rows.append((n, *_apply(root, environ)))
    print(f"\nstate backend {backend}: apply on the in-process sandbox, no rate limits")
    for n, t_plan, t_apply, saves, t_save in rows:
        print(f"  {n:5d} models: apply {1000 * t_apply / n:5.1f} ms/model, of which state saves "
              f"{1000 * t_save / n:5.2f} ms/model ({saves} saves, {1000 * t_save / saves:.2f} ms each); "
              f"apply {t_apply:.2f}s, plan {t_plan:.2f}s")
    per_save = {n: t / n for n, *_, t in rows}
    per_apply = {n: t / n for n, _, t, *_ in rows}
    if 100 in per_save and 1000 in per_save:
        ratio = per_save[1000] / per_save[100]
        print(f"  1,000 vs 100 models: state saves {ratio:.2f}x per model (target <= 1.3x); whole apply "
              f"{per_apply[1000] / per_apply[100]:.2f}x (the rest is the emulator, whose job list and "
              "lifecycle scan every job on each request)")
        assert ratio <= 1.3, f"recording an action is not O(1): {ratio:.2f}x"
