"""Harness for reliability tests (shared with tests/benchmarks/test_soak.py): a served sandbox that counts requests, a multi-model project
pointing at it with a real provider type (`openai`, `together`, `fireworks`: every test is parametrised by
provider through `PROVIDER_TYPES`) and a state backend (`local`, `postgres`: `STATE_BACKENDS`, one fresh database per trial
from `fresh_state`), `ftops` as a real subprocess, and the remote truth.

The truth is read from the sandbox's own SQLite database, never from what ftops says it did:
a test that trusted ftops's report could not catch ftops lying.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftops.sandbox import FaultConfig, SandboxApp, SandboxSettings, serving

if TYPE_CHECKING:
    from ftops.state import State
    from tests.state.servers import Postgres

REPO = Path(__file__).resolve().parents[2]
QUICKSTART_DATA = REPO / "examples" / "quickstart" / "data"
API_KEY = "sk-reliability-test-key-7f3a9c"
DEAD = ("failed", "cancelled", "expired")


@dataclass(frozen=True)
class ProviderSpec:
    """A provider type under test: its sandbox dialect's URL prefix, the key variable ftops reads, and what
    `write_project` declares for it (a base model the dialect fine-tunes, extra provider-entry lines, and
    whether it takes a `seed`)."""

    prefix: str
    key_env: str
    base_model: str
    entry: tuple[str, ...] = ()
    seed: bool = True


PROVIDERS: dict[str, ProviderSpec] = {
    "openai": ProviderSpec("/v1", "OPENAI_API_KEY", "gpt-4o-mini-2024-07-18"),
    "together": ProviderSpec("/together/v1", "TOGETHER_API_KEY", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"),
    # Fireworks: its account in the URL path (`account_id:`); client-chosen job ids are its identity, and a
    # declared `seed` is refused (Fireworks takes none). The user's suffix is the job's displayName and
    # leads its output model id.
    "fireworks": ProviderSpec("/fireworks/v1", "FIREWORKS_API_KEY", "accounts/fireworks/models/llama-v3p1-8b-instruct",
                              entry=("account_id: reliability",), seed=False),
}
PROVIDER_TYPES = list(PROVIDERS)
# Providers whose jobs and files carry ids the client chose (a second create answers 409): `check_trial` holds
# them to exactly one job per model ever created and one remote file per dataset.
CLIENT_CHOSEN_IDS = frozenset({"fireworks"})
_MODEL_IN_SUFFIX = re.compile(r"^rel-(\d+)(?:-|$)")
# State backends under test. Checks read the state through the backend ftops itself opens (`read_state`),
# never through a backend's own files.
STATE_BACKENDS = ["local", "postgres"]
PG_URL_ENV = "FTOPS_STATE_PG_URL"
_databases = itertools.count()


@dataclass(frozen=True)
class StateSpec:
    """Where a generated project keeps its state: `local` (.ftops/state.json) or a PostgreSQL database whose
    URL the subprocesses read from `FTOPS_STATE_PG_URL` (`env()`), as a team's CI would."""

    backend: str = "local"
    url: str | None = None

    def yaml(self) -> str:
        """The `state:` block of ftops.yaml (empty for local: the default)."""
        if self.backend == "local":
            return ""
        return f"state:\n  backend: {self.backend}\n  url_env: {PG_URL_ENV}\n"

    def env(self) -> dict[str, str]:
        """Variables the ftops subprocesses need to reach this state."""
        return {PG_URL_ENV: self.url} if self.url else {}


LOCAL = StateSpec()


@contextmanager
def fresh_state(backend: str, pg: Postgres | None = None) -> Iterator[StateSpec]:
    """A state location no other trial shares: local needs nothing (each trial has its own directory);
    postgres gets a new empty database (schema created by the first apply, under the kills too), dropped after."""
    if backend == "local":
        yield LOCAL
        return
    assert backend == "postgres" and pg is not None, backend
    name = f"ftops_trial_{os.getpid()}_{next(_databases)}"
    url = pg.create_database(name)
    try:
        yield StateSpec("postgres", url)
    finally:
        with suppress(Exception):  # the cluster is a temp dir removed at session end anyway
            pg.drop_database(name)


@dataclass
class Served:
    """A sandbox served on loopback: its URL, database and a per-(method, path kind) request count."""

    url: str
    db: Path
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    base: str = ""

    def url_for(self, provider: str) -> str:
        """The base URL of `provider`'s dialect on this sandbox."""
        return self.base + PROVIDERS[provider].prefix

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    def remote(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db, timeout=10) as db:
            return db.execute(sql, args).fetchall()

    def live_files(self) -> int:
        """Fine-tune files not deleted (duplicates a race made are swept by ftops). Every dialect keeps its
        files (Fireworks: its datasets, one row per dataset id, its bytes sent to that row) in `files`."""
        return int(self.remote("select count(*) from files where purpose = 'fine-tune' and deleted = 0")[0][0])

    def uploads(self) -> int:
        """Every fine-tune file ever created (deleted ones too: an upload is paid for once sent)."""
        return int(self.remote("select count(*) from files where purpose = 'fine-tune'")[0][0])

    def jobs(self) -> list[dict[str, Any]]:
        """Every job ever created. `suffix` is the user's suffix as the provider received it: the `suffix`
        column (OpenAI, Together), or for Fireworks (no suffix field) the create request's `displayName`,
        which also leads the output model's id."""
        rows = self.remote("select id, status, metadata, suffix, dialect, "
                           "json_extract(extra, '$.request.displayName') from jobs order by seq")
        return [{"id": i, "status": s, "metadata": json.loads(m or "{}"),
                 "suffix": (display if dialect == "fireworks" else x) or ""}
                for i, s, m, x, dialect, display in rows]

    def live_jobs_by_model(self) -> dict[str, int]:
        """Live jobs per declared model, read from the user's suffix `rel-<i>` that `write_project` gives
        model `m<i>` (every dialect keeps the suffix; ftops's own identity carrier is not trusted here)."""
        out: collections.Counter[str] = collections.Counter()
        for j in self.jobs():
            if j["status"] not in DEAD:
                m = _MODEL_IN_SUFFIX.match(j["suffix"])
                out[f"m{m.group(1)}" if m else "?"] += 1
        return dict(out)

    def live_jobs_by_fingerprint(self) -> dict[str, int]:
        out: collections.Counter[str] = collections.Counter()
        for j in self.jobs():
            if j["status"] not in DEAD:
                out[j["metadata"].get("ftops_fp", "?")] += 1
        return dict(out)


def _kind(path: str) -> str:
    """`/v1/fine_tuning/jobs/ftjob-x/cancel` -> `/v1/fine_tuning/jobs/*/cancel`, Fireworks's
    `…/datasets/ds-x:upload` -> `…/datasets/*:upload` (bounded key space)."""
    parts = path.split("/")
    return "/".join("*" + (":" + p.partition(":")[2] if ":" in p else "")
                    if p.startswith(("ftjob-", "ft-", "file-", "upload_", "ds-")) else p for p in parts)


@contextmanager
def served_sandbox(db: Path, *, faults: str | None = None, api_keys: list[str] | None = None,
                   time_scale: float = 1.0, **settings_extra: Any) -> Iterator[Served]:
    """Serve a fresh sandbox app on 127.0.0.1 (free port) in a thread, counting requests (an injected
    429's wait is the fault string's `retry_after_ms`)."""
    # These tests run several projects' jobs on one base model at once: OpenAI's "3 active jobs per
    # model" limit (the sandbox default) is not what they test, so it is lifted unless asked for.
    settings_extra.setdefault("max_active_jobs_per_model", None)
    settings = SandboxSettings(time_scale=time_scale, api_keys=api_keys,
                               faults=FaultConfig.parse(faults) if faults else FaultConfig(), **settings_extra)
    app = SandboxApp(db, settings=settings)
    served = Served(url="", db=db)
    lock = threading.Lock()

    def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            served.counts[f"{environ['REQUEST_METHOD']} {_kind(environ.get('PATH_INFO', ''))}"] += 1
        return app(environ, start_response)

    with serving(counting) as base:
        served.base = base
        served.url = base + "/v1"
        yield served


def write_project(root: Path, url: str, *, models: int = 3, project: str = "reliability",
                  provider_extra: str = "", provider: str = "openai", state: StateSpec = LOCAL) -> Path:
    """A project of `models` models sharing the two quickstart datasets (train for all, val for half),
    on `provider` (its dialect of the sandbox at `url`), its state where `state` says. Only what every
    provider takes is declared, plus what `PROVIDERS[provider]` adds (Fireworks: `account_id`, no seed)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name in ("train.jsonl", "val.jsonl"):
        shutil.copyfile(QUICKSTART_DATA / name, root / "data" / name)
    spec = PROVIDERS[provider]
    if provider != "openai" and url.endswith("/v1") and not url.endswith(spec.prefix):
        url = url.removesuffix("/v1") + spec.prefix
    base_model = spec.base_model
    lines = ["version: 1", f"project: {project}", "provider:", f"  type: {provider}", f"  base_url: {url}"]
    lines += [f"  {line}" for line in (*spec.entry, *provider_extra.splitlines()) if line.strip()]
    lines.append("models:")
    for i in range(models):
        lines += [f"  m{i}:", f"    base_model: {base_model}", "    training_file: data/train.jsonl"]
        if i % 2 == 0:
            lines.append("    validation_file: data/val.jsonl")
        lines += ["    hyperparameters: {n_epochs: 2}", f"    suffix: rel-{i}"]
        if spec.seed:
            lines.append(f"    seed: {i + 1}")
    (root / "ftops.yaml").write_text("\n".join(lines) + "\n" + state.yaml())
    return root


DATASETS = 2  # train.jsonl and val.jsonl


def ftops_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ftops.cli", "-C", str(root), "--no-color", *args]


def ftops_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTOPS_SANDBOX", "OPENAI_"))}
    env.update({p.key_env: API_KEY for p in PROVIDERS.values()})
    env.update({"PYTHONUNBUFFERED": "1"}, **extra)
    return env


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err


def run_ftops(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    start = time.monotonic()
    p = subprocess.run(ftops_cmd(root, *args), check=False, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=env if env is not None else ftops_env())
    return Run(p.returncode, p.stdout, p.stderr, time.monotonic() - start)


def start_ftops(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(ftops_cmd(root, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=env if env is not None else ftops_env())


def finish(p: subprocess.Popen[str], timeout: float = 120) -> Run:
    start = time.monotonic()
    out, err = p.communicate(timeout=timeout)
    return Run(p.returncode, out, err, time.monotonic() - start)


def kill9(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=30)


def apply_until_done(root: Path, *args: str, bound: int = 20, env: dict[str, str] | None = None,
                     failed: list[Run] | None = None) -> tuple[Run, int]:
    """Re-run `apply --auto-approve` until it exits 0 (at most `bound` runs); returns the last run and
    the number of runs. Runs that exited non-zero are appended to `failed` when given."""
    for n in range(1, bound + 1):
        r = run_ftops(root, "apply", "--auto-approve", *args, env=env)
        assert "Traceback" not in r.err, r.err
        if r.code == 0:
            return r, n
        if failed is not None:
            failed.append(r)
    raise AssertionError(f"apply did not converge in {bound} runs; last:\n{r.out}\n{r.err}")


def declared_models(root: Path) -> list[str]:
    import yaml

    return sorted(yaml.safe_load((root / "ftops.yaml").read_text())["models"])


def read_state(root: Path, env: dict[str, str] | None = None) -> State:
    """The project's state, loaded through the backend its ftops.yaml names (with `env`, as the subprocesses
    see it): raises `FtopsError` (`state.corrupt`, ...) if that backend cannot read it."""
    from ftops.workspace import Workspace

    ws = Workspace(root, environ=env if env is not None else ftops_env())
    store = ws.store
    try:
        return store.load()
    finally:
        store.close()


def state_loads(root: Path, env: dict[str, str] | None = None) -> Any:
    return read_state(root, env)


# ---------------------------------------------------------------------- kill -9 trials


@dataclass
class TrialResult:
    seed: int
    crashes: int
    kill_points: list[tuple[int, int]]  # (uploads, jobs) on the remote at each kill
    uploads: int
    live_by_model: dict[str, int]
    extra_uploads: int
    duplicates: int
    reruns: int
    seconds: float
    backend: str = "local"
    corrupt: str | None = None  # why the state could not be read back after the re-run, if it could not
    lost: list[str] = field(default_factory=list)  # declared models the state does not point at a live job for
    locked_reruns: int = 0  # re-runs refused with state.locked (a dead run's lock outliving it)
    provider: str = "openai"
    jobs_created: int = 0  # every job the remote ever created, dead ones included


def kill_trial(workdir: Path, seed: int, *, models: int = 3, max_crashes: int = 2, latency_ms: int = 20,
               max_requests: int = 24, provider: str = "openai", state: StateSpec = LOCAL,
               file_processing_s: float = 0.5) -> TrialResult:
    """One seeded trial: start apply, SIGKILL it at a random request (1..max_crashes times), then
    re-run apply to completion and read the remote truth and the state (through its backend). Asserts
    nothing about the outcome; `check_trial` does.

    `file_processing_s`: how long an uploaded file stays `uploaded` (OpenAI dialect). The client polls it
    with doubling waits, so the polls (the requests a kill can land on) are as many at 0.5 s as at the
    sandbox's default 3 s, and a trial is ~5 s shorter."""
    import random

    from ftops.diagnostics import FtopsError

    rng = random.Random(seed)
    start = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    env = ftops_env(**state.env())
    with served_sandbox(workdir / "sandbox.db", faults=f"latency_ms={latency_ms}",
                        file_processing_s=file_processing_s) as s:
        root = write_project(workdir / "proj", s.url_for(provider), models=models, provider=provider, state=state)
        crashes = 0
        points: list[tuple[int, int]] = []
        for _ in range(rng.randint(1, max_crashes)):
            # Kill once the k-th request of this run reached the server, plus a random fraction of the
            # injected latency: the process dies with that request in flight, just after it, or while
            # writing the state. Seeded, and independent of how long interpreter start-up takes.
            k = rng.randint(1, max_requests)
            base = s.requests
            p = start_ftops(root, "apply", "--auto-approve", env=env)
            deadline = time.monotonic() + 60
            while s.requests < base + k and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 1.5 * latency_ms / 1000))
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.communicate(timeout=30)
                crashes += 1
                points.append((s.uploads(), len(s.jobs())))
            else:
                r = finish(p)
                assert "Traceback" not in r.err, r.err
        # The re-run comes right after the kill, with the default lock timeout (none): a lock the dead
        # run held (a flock, a postgres session's advisory lock) must already be gone.
        failed: list[Run] = []
        _, reruns = apply_until_done(root, env=env, failed=failed)
        live = s.live_jobs_by_model()
        uploads = s.uploads()
        jobs = s.jobs()
        live_ids = {j["id"] for j in jobs if j["status"] not in DEAD}
        corrupt, lost = None, []
        try:
            st = read_state(root, env)
        except FtopsError as e:
            corrupt = str(e)
        else:
            for name in declared_models(root):
                rec = st.models.get(name)
                if rec is None or rec.job is None or rec.job.job_id not in live_ids:
                    lost.append(f"{name}: {rec}")
    return TrialResult(seed=seed, crashes=crashes, kill_points=points, uploads=uploads, live_by_model=live,
                       extra_uploads=max(0, uploads - DATASETS),
                       duplicates=sum(n - 1 for n in live.values() if n > 1), reruns=reruns,
                       seconds=time.monotonic() - start, backend=state.backend, corrupt=corrupt, lost=lost,
                       locked_reruns=sum("error[state.locked]" in r.err for r in failed), provider=provider,
                       jobs_created=len(jobs))


def check_trial(t: TrialResult, names: list[str]) -> None:
    assert t.corrupt is None, f"seed {t.seed}: the {t.backend} state cannot be read: {t.corrupt}"
    assert not t.lost, f"seed {t.seed}: the {t.backend} state lost track of {t.lost}"
    assert t.locked_reruns == 0, f"seed {t.seed}: a killed run's lock blocked {t.locked_reruns} re-run(s)"
    assert t.live_by_model == {n: 1 for n in names}, f"seed {t.seed}: live jobs per model {t.live_by_model}"
    assert t.uploads <= DATASETS + t.crashes, f"seed {t.seed}: {t.uploads} uploads for {t.crashes} crashes"
    if t.provider in CLIENT_CHOSEN_IDS:
        # The id is the identity: a repeated create meets 409 and adopts, the same bytes are one dataset.
        # Not even a swept (cancelled) duplicate may exist, and no crash may cost a second dataset.
        assert t.jobs_created == len(names), f"seed {t.seed}: {t.jobs_created} jobs created for {len(names)} models"
        assert t.uploads == DATASETS, f"seed {t.seed}: {t.uploads} datasets for {DATASETS} files"


def summarize(trials: list[TrialResult]) -> str:
    points = collections.Counter(p for t in trials for p in t.kill_points)
    return (f"trials={len(trials)} crashes={sum(t.crashes for t in trials)} "
            f"kills_after_a_job={sum(jobs > 0 for t in trials for _u, jobs in t.kill_points)} "
            f"duplicates={sum(t.duplicates for t in trials)} extra_uploads={sum(t.extra_uploads for t in trials)} "
            f"extra_jobs_created={sum(max(0, t.jobs_created - len(t.live_by_model)) for t in trials)} "
            f"corrupt_states={sum(t.corrupt is not None for t in trials)} "
            f"lost_records={sum(len(t.lost) for t in trials)} "
            f"locked_reruns={sum(t.locked_reruns for t in trials)} "
            f"max_reruns={max((t.reruns for t in trials), default=0)} "
            f"wall={sum(t.seconds for t in trials):.1f}s\n"
            f"kill points (uploads, jobs) on the remote when killed: {dict(sorted(points.items()))}")


def run_cli(root: Path, capsys: Any, *args: str) -> tuple[int, str, str]:
    """`ftops -C root --no-color ARGS` in-process through its real entry point: (exit code, stdout, stderr).

    Never a traceback or an "internal error", whatever the input or the fault.
    """
    from ftops.cli import main

    capsys.readouterr()
    try:
        main(["-C", str(root), "--no-color", *args])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and "internal error" not in cap.err, cap.err
    return code, cap.out, cap.err


def shorten_backoff(monkeypatch: Any, factor: float = 25.0) -> None:
    """The same retry policy with `factor`-times shorter waits, for every provider and the executor: the
    policy's shape, not its scale, is under test (429 waits are the sandbox's `retry_after_ms`)."""
    from ftops.engine.apply import Executor
    from ftops.providers.bedrock import BedrockProvider
    from ftops.providers.http import HttpProvider

    for cls in (HttpProvider, BedrockProvider, Executor):
        orig = cls._backoff
        monkeypatch.setattr(cls, "_backoff", lambda self, a, _orig=orig: _orig(self, a) / factor)
