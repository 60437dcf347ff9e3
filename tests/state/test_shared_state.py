"""Shared state end to end: two applies on one postgres state, and `ftops state migrate` round trips."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import DATASETS, finish, ftops_env, run_ftops, served_sandbox, start_ftops, write_project
from tests.state.servers import Postgres, S3Server, make_bucket


def _use_postgres(root: Path, key: str) -> None:
    with (root / "ftops.yaml").open("a") as f:
        f.write(f"state:\n  backend: postgres\n  url_env: FTOPS_STATE_PG_URL\n  key: {key}\n")


def test_two_applies_on_one_postgres_state(tmp_path: Path, postgres: Postgres) -> None:
    """Two runners, one shared state: one waits for the other's lock; 0 duplicate jobs, 0 lost writes."""
    from ftops.state.backends.postgres import PostgresBackend

    key = f"two-{uuid.uuid4().hex[:8]}"
    env = ftops_env(FTOPS_STATE_PG_URL=postgres.url)
    with served_sandbox(tmp_path / "sandbox.db", faults="latency_ms=20") as s:
        # two checkouts (two CI runners): no local state in common, only the database
        roots = [write_project(tmp_path / f"runner{i}", s.url) for i in range(2)]
        for r in roots:
            _use_postgres(r, key)
        procs = [start_ftops(r, "apply", "--auto-approve", "--lock-timeout", "2m", env=env) for r in roots]
        runs = [finish(p) for p in procs]
        for r in runs:
            assert r.code == 0 and "Traceback" not in r.err, r.err
        assert any("waiting for the state lock" in r.err for r in runs) or \
            any("Apply complete: 0 uploaded, 0 created" in r.out for r in runs), [r.err for r in runs]
        live, jobs, uploads = s.live_jobs_by_model(), s.jobs(), s.uploads()
        state = PostgresBackend(postgres.url, key).load()
    assert live == {"m0": 1, "m1": 1, "m2": 1}  # 0 duplicates
    assert len(jobs) == 3 and uploads == DATASETS
    assert {m.job.job_id for m in state.models.values() if m.job} == {j["id"] for j in jobs}  # 0 lost writes
    assert not (roots[0] / ".ftops" / "state.json").exists()


def test_state_migrate_local_postgres_s3_and_back(tmp_path: Path, postgres: Postgres, s3_server: S3Server) -> None:
    bucket = f"ftops-{uuid.uuid4().hex[:12]}"
    make_bucket(s3_server.endpoint, bucket)
    key = f"mig-{uuid.uuid4().hex[:8]}"
    env = ftops_env(FTOPS_STATE_PG_URL=postgres.url, FTOPS_S3_ENDPOINT=s3_server.endpoint,
                    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with served_sandbox(tmp_path / "sandbox.db") as s:
        root = write_project(tmp_path / "proj", s.url)
        assert run_ftops(root, "apply", "--auto-approve", env=env).code == 0
        original = json.loads(run_ftops(root, "state", "pull", env=env).out)
        assert len(original["models"]) == 3 and original["serial"] > 0

        def migrate(*args: str) -> None:
            r = run_ftops(root, "state", "migrate", *args, env=env)
            assert r.code == 0, r.err


        migrate("--to", "postgres", "--key", key)
        config = (root / "ftops.yaml").read_text()
        (root / "ftops.yaml").write_text(config + f"state:\n  backend: postgres\n  url_env: FTOPS_STATE_PG_URL\n"
                                                  f"  key: {key}\n")
        assert json.loads(run_ftops(root, "state", "pull", env=env).out) == original
        migrate("--to", "s3", "--bucket", bucket, "--s3-key", "ftops/proj.json", "--endpoint-url-env",
                "FTOPS_S3_ENDPOINT")
        (root / "ftops.yaml").write_text(config + f"state:\n  backend: s3\n  s3:\n    bucket: {bucket}\n"
                                                  "    key: ftops/proj.json\n    endpoint_url_env: FTOPS_S3_ENDPOINT\n")
        assert json.loads(run_ftops(root, "state", "pull", env=env).out) == original
        # the plan on the s3 state sees everything: nothing to do
        r = run_ftops(root, "plan", "--detailed-exitcode", env=env)
        assert r.code == 0, r.out + r.err
        (root / ".ftops" / "state.json").unlink()
        migrate("--to", "local")
        (root / "ftops.yaml").write_text(config)
        assert json.loads(run_ftops(root, "state", "pull", env=env).out) == original
        # a different state at the destination is not overwritten without --force
        other = tmp_path / "other"
        write_project(other, s.url)
        assert run_ftops(other, "apply", "--auto-approve", env=env).code == 0
        r = run_ftops(other, "state", "migrate", "--to", "postgres", "--key", key, env=env)
        assert r.code == 1 and "error[state.migrate_exists]" in r.err, r.err


def test_lock_timeout_accepts_durations_and_rejects_nonsense(tmp_path: Path) -> None:
    with served_sandbox(tmp_path / "sandbox.db") as s:
        root = write_project(tmp_path / "proj", s.url)
        r = run_ftops(root, "apply", "--auto-approve", "--lock-timeout", "nan")
        assert r.code == 1 and "not a duration" in r.err
        r = run_ftops(root, "apply", "--auto-approve", "--lock-timeout", "5m")
        assert r.code == 0, r.err


@pytest.mark.parametrize("cmd", [["force-unlock", "abc"]])
def test_force_unlock_on_local_says_nothing_is_locked(tmp_path: Path, cmd: list[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db") as s:
        root = write_project(tmp_path / "proj", s.url)
        r = run_ftops(root, *cmd)
        assert r.code == 1 and "error[state.not_locked]" in r.err, r.err


def test_plan_offline_from_a_pulled_snapshot(tmp_path: Path) -> None:
    """Fork PRs: plan --offline --state FILE on the snapshot apply.yml publishes."""
    with served_sandbox(tmp_path / "sandbox.db") as s:
        root = write_project(tmp_path / "proj", s.url)
        assert run_ftops(root, "apply", "--auto-approve").code == 0
        snap = tmp_path / "snapshot.json"
        snap.write_text(run_ftops(root, "state", "pull").out)
        shutil_root = tmp_path / "fork"
        write_project(shutil_root, s.url)  # a fresh checkout: no .ftops at all
        r = run_ftops(shutil_root, "plan", "--offline", "--state", str(snap), "--detailed-exitcode",
                      env=ftops_env(OPENAI_API_KEY="sk-offline-unused"))
        assert r.code == 0, r.out + r.err
        r = run_ftops(shutil_root, "plan", "--offline", "--detailed-exitcode", env=ftops_env(OPENAI_API_KEY="sk-offline-unused"))
        assert r.code == 2 and "3 to create" in r.out, r.out + r.err
