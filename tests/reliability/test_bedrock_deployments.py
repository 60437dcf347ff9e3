"""Amazon Bedrock on-demand deployments under 30% faults (errors, 429s, lost responses) against a served
sandbox, through boto3: reruns of `apply` converge with exactly one live deployment per model, each serving
that model's fine-tuned model. The truth is read from the sandbox's database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.reliability.harness import QUICKSTART_DATA, Served, run_cli, served_sandbox, shorten_backoff

pytest.importorskip("boto3")

MODELS = ("m0", "m1")
FAULTS = "error_rate=0.3,rate_limit_rate=0.3,lost_response_rate=0.3,retry_after_ms=50,seed={seed}"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSANDBOX")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "FTOPS_SANDBOX_FAULTS", "FTOPS_SANDBOX_TIME_SCALE"):
        monkeypatch.delenv(var, raising=False)
    shorten_backoff(monkeypatch)


def project(root: Path, url: str) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(QUICKSTART_DATA / "train.jsonl", root / "data" / "train.jsonl")
    lines = ["version: 1", "project: bedrock-deploy-rel", "provider:", "  type: bedrock",
             f"  base_url: {url.removesuffix('/v1')}/bedrock", "  region: us-east-1", "  bucket: training",
             "  role_arn: arn:aws:iam::123456789012:role/ft", "  timeout: 10", "  max_retries: 8",
             "  max_retry_wait: 30", "models:"]
    for i, name in enumerate(MODELS):
        lines += [f"  {name}:", "    base_model: amazon.nova-micro-v1:0:128k", "    training_file: data/train.jsonl",
                  f"    hyperparameters: {{n_epochs: {i + 1}}}", "    deployment: {type: on-demand}"]
    (root / "ftops.yaml").write_text("\n".join(lines) + "\n")
    return root


def deployments(s: Served) -> list[dict[str, object]]:
    rows = s.remote("select data from resources where dialect = 'bedrock' and kind = 'custom-model-deployment' "
                    "order by seq")
    return [json.loads(r[0]) for r in rows]


@pytest.mark.parametrize("seed", [1] + [pytest.param(s, marks=pytest.mark.soak) for s in range(2, 9)])
def test_faults_converge_with_one_deployment_per_model(tmp_path: Path, seed: int, capsys: pytest.CaptureFixture[str],
                                                       request: pytest.FixtureRequest) -> None:
    if seed > 1 and "soak" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("more seeds under -m soak")
    with served_sandbox(tmp_path / "sandbox.db", faults=FAULTS.format(seed=seed),
                        time_scale=1_000_000) as s:
        root = project(tmp_path / "proj", s.url)
        for _ in range(40):
            code, out, err = run_cli(root, capsys, "apply", "--auto-approve", "--max-wait", "2")
            if code == 0 and len(deployments(s)) >= len(MODELS):
                code, out, err = run_cli(root, capsys, "plan", "--detailed-exitcode")
                if code == 0:
                    break
        else:
            pytest.fail(f"apply did not converge:\n{out}\n{err}")
        deps = deployments(s)
        assert len(deps) == len(MODELS), deps  # none made twice, none deleted and made again
        tuned = {json.loads(t or "{}").get("ftops_model"): m for t, m in
                 s.remote("select metadata, fine_tuned_model from jobs where dialect = 'bedrock'")}
        serving = {next(t["value"] for t in d["tags"] if t["key"] == "ftops_model"): d["modelArn"]  # type: ignore
                   for d in deps}
        assert serving == {m: tuned[m] for m in MODELS}
