"""Amazon Bedrock (through boto3) and Google Vertex AI (REST) end to end against a served sandbox: apply -> no changes ->
hyperparameter edit = 1 replace and 0 uploads -> lost state adopts -> 30% faults (lost responses
included) converge with exactly one job per model, and the converted data is put once per hash.

The truth is read from the sandbox's database, never from what ftops reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.reliability.harness import QUICKSTART_DATA, Served, run_cli, served_sandbox, state_loads, shorten_backoff

pytest.importorskip("boto3")

MODELS = ("m0", "m1", "m2")
FAULTS = "error_rate=0.3,rate_limit_rate=0.3,lost_response_rate=0.3,latency_ms=5,retry_after_ms=50,seed={seed}"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSANDBOX")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.sandbox-token")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "FTOPS_SANDBOX_FAULTS", "FTOPS_SANDBOX_TIME_SCALE"):
        monkeypatch.delenv(var, raising=False)
    shorten_backoff(monkeypatch)


PROVIDERS = ("bedrock", "vertex")
STORE = {"bedrock": "s3", "vertex": "gcs"}
BASE = {"bedrock": "amazon.nova-micro-v1:0:128k", "vertex": "gemini-2.0-flash-001"}


def project(root: Path, url: str, kind: str, epochs: int = 2) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name in ("train.jsonl", "val.jsonl"):
        shutil.copyfile(QUICKSTART_DATA / name, root / "data" / name)
    settings = ["  role_arn: arn:aws:iam::123456789012:role/ft"] if kind == "bedrock" else ["  gcp_project: p1"]
    lines = ["version: 1", f"project: {kind}-rel", "provider:", f"  type: {kind}",
             f"  base_url: {url.removesuffix('/v1')}/{kind}", "  region: us-east-1", "  bucket: training",
             "  prefix: ftops/data", *settings, "  timeout: 10", "  max_retries: 8", "  max_retry_wait: 30", "models:"]
    for i, name in enumerate(MODELS):
        lines += [f"  {name}:", f"    base_model: {BASE[kind]}", "    training_file: data/train.jsonl",
                  f"    hyperparameters: {{n_epochs: {epochs if i == 0 else 1}}}", f"    suffix: rel{i}"]
        if i % 2 == 0:
            lines.append("    validation_file: data/val.jsonl")
    (root / "ftops.yaml").write_text("\n".join(lines) + "\n")
    return root


def jobs(s: Served, kind: str) -> list[tuple[str, str, dict[str, str]]]:
    return [(i, st, json.loads(m or "{}")) for i, st, m in
            s.remote("select id, status, metadata from jobs where dialect = ? order by seq", kind)]


def puts(s: Served, kind: str) -> list[str]:
    """Every object ever put under the data prefix (replaced ones too: a put is paid once sent)."""
    return [r[0] for r in s.remote("select filename from files where dialect = ? and filename like "
                                   "'training/ftops/data/%' order by seq", STORE[kind])]


def live_by_model(s: Served, kind: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for _id, status, tags in jobs(s, kind):
        if status not in ("failed", "cancelled"):
            out[tags["ftops_model"]] = out.get(tags["ftops_model"], 0) + 1
    return out


@pytest.mark.parametrize("kind", PROVIDERS)
def test_apply_noop_replace_adopt(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db", time_scale=600) as s:
        root = project(tmp_path / "proj", s.url, kind)
        code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 0, err
        assert len(jobs(s, kind)) == 3 and len(puts(s, kind)) == 2
        assert all(p.endswith(".jsonl") and len(p.rsplit("/", 1)[1]) == 64 + 6 for p in puts(s, kind))
        tags = jobs(s, kind)[0][2]
        assert set(tags) >= {"ftops_project", "ftops_model", "ftops_fp", "ftops_attempt"}

        code, out, err = run_cli(root, capsys, "plan", "--detailed-exitcode")
        assert code == 0, out + err

        (root / "ftops.yaml").write_text((root / "ftops.yaml").read_text().replace("{n_epochs: 2}", "{n_epochs: 3}"))
        code, out, _ = run_cli(root, capsys, "plan", "--json")
        plan = json.loads(out)
        assert plan["summary"]["replace"] == 1 and plan["summary"]["upload"] == 0, plan["summary"]
        code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 0, err
        assert len(jobs(s, kind)) == 4 and len(puts(s, kind)) == 2

        for f in (root / ".ftops").glob("state.json*"):
            f.unlink()
        code, out, _ = run_cli(root, capsys, "plan", "--json")
        plan = json.loads(out)
        assert plan["summary"]["adopt"] == 3 and plan["summary"]["create"] == 0, plan["summary"]
        code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 0, err
        assert len(jobs(s, kind)) == 4 and len(puts(s, kind)) == 2
        state = state_loads(root)
        assert {state.models[m].job.job_id for m in MODELS} <= {j[0] for j in jobs(s, kind)}  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", PROVIDERS)
@pytest.mark.parametrize("seed", [1] + [pytest.param(s, marks=pytest.mark.soak) for s in range(2, 13)])
def test_faults_converge_with_one_job_per_model(tmp_path: Path, seed: int, kind: str,
                                                capsys: pytest.CaptureFixture[str],
                                                request: pytest.FixtureRequest) -> None:
    if seed > 1 and "soak" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("more seeds under -m soak")
    with served_sandbox(tmp_path / "sandbox.db", faults=FAULTS.format(seed=seed)) as s:
        root = project(tmp_path / "proj", s.url, kind)
        for runs in range(1, 31):
            code, out, err = run_cli(root, capsys, "apply", "--auto-approve", "--max-wait", "2")
            if code == 0:
                break
        else:
            pytest.fail(f"apply did not converge:\n{err}")
        assert live_by_model(s, kind) == {m: 1 for m in MODELS}
        assert len(jobs(s, kind)) == len(MODELS), jobs(s, kind)
        assert len(puts(s, kind)) == 2 and len(set(puts(s, kind))) == 2, puts(s, kind)
        assert not state_loads(root).intents
