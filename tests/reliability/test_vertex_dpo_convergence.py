"""Google Vertex AI preference tuning (`method: dpo`) against a served sandbox: apply -> no changes ->
beta edit = 1 replace and 0 uploads -> lost state adopts; and under 30% faults (lost responses
included) exactly one preferenceOptimizationSpec job per model, the converted pairs put once.

The truth is read from the sandbox's database, never from what ftops reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.harness import Served, run_cli, served_sandbox, shorten_backoff

MODELS = ("d0", "d1")
FAULTS = "error_rate=0.3,rate_limit_rate=0.3,lost_response_rate=0.3,latency_ms=5,retry_after_ms=50,seed={seed}"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.sandbox-token")
    for var in ("FTOPS_SANDBOX_FAULTS", "FTOPS_SANDBOX_TIME_SCALE"):
        monkeypatch.delenv(var, raising=False)
    shorten_backoff(monkeypatch)


def project(root: Path, url: str) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    pairs = [{"input": {"messages": [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": f"question {i} about topic{i}"}]},
              "preferred_output": [{"role": "assistant", "content": f"answer {i}"}],
              "non_preferred_output": [{"role": "assistant", "content": f"well, it depends, maybe answer {i}?"}]}
             for i in range(16)]
    (root / "data" / "pref.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    lines = ["version: 1", "project: vertex-dpo-rel", "provider:", "  type: vertex",
             f"  base_url: {url.removesuffix('/v1')}/vertex", "  region: us-central1", "  bucket: training",
             "  prefix: ftops/data", "  gcp_project: p1", "  timeout: 10", "  max_retries: 8",
             "  max_retry_wait: 30", "models:"]
    for i, name in enumerate(MODELS):
        lines += [f"  {name}:", f"    base_model: {'gemini-2.5-flash' if i == 0 else 'gemini-2.5-flash-lite'}",
                  "    method: dpo", "    training_file: data/pref.jsonl",
                  f"    hyperparameters: {{n_epochs: 1, beta: 0.{i + 1}}}"]
    (root / "ftops.yaml").write_text("\n".join(lines) + "\n")
    return root


def jobs(s: Served) -> list[tuple[str, str, dict[str, str], dict[str, object]]]:
    out = []
    for i, st, m, extra in s.remote("select id, status, metadata, extra from jobs where dialect = 'vertex' "
                                    "order by seq"):
        out.append((i, st, json.loads(m or "{}"), json.loads(extra)["request"]))
    return out


def objects(s: Served) -> list[str]:
    return [r[0] for r in s.remote("select filename from files where dialect = 'gcs' and filename like "
                                   "'training/ftops/data/%' order by seq")]


def test_dpo_apply_noop_replace_adopt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db", time_scale=600) as s:
        root = project(tmp_path / "proj", s.url)
        code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 0, err
        assert len(jobs(s)) == 2 and len(objects(s)) == 1
        assert all("preferenceOptimizationSpec" in j[3] and "supervisedTuningSpec" not in j[3] for j in jobs(s))
        code, out, err = run_cli(root, capsys, "plan", "--detailed-exitcode")
        assert code == 0, out + err

        (root / "ftops.yaml").write_text((root / "ftops.yaml").read_text().replace("beta: 0.1}", "beta: 0.3}"))
        code, out, _ = run_cli(root, capsys, "plan", "--json")
        plan = json.loads(out)
        assert plan["summary"]["replace"] == 1 and plan["summary"]["upload"] == 0, plan["summary"]
        code, out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 0, err
        assert len(jobs(s)) == 3 and len(objects(s)) == 1

        for f in (root / ".ftops").glob("state.json*"):
            f.unlink()
        code, out, _ = run_cli(root, capsys, "plan", "--json")
        plan = json.loads(out)
        assert plan["summary"]["adopt"] == 2 and plan["summary"]["create"] == 0, plan["summary"]


@pytest.mark.parametrize("seed", [1] + [pytest.param(s, marks=pytest.mark.soak) for s in range(2, 9)])
def test_dpo_faults_converge_with_one_job_per_model(tmp_path: Path, seed: int, capsys: pytest.CaptureFixture[str],
                                                    request: pytest.FixtureRequest) -> None:
    if seed > 1 and "soak" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("more seeds under -m soak")
    with served_sandbox(tmp_path / "sandbox.db", faults=FAULTS.format(seed=seed)) as s:
        root = project(tmp_path / "proj", s.url)
        for _ in range(30):
            code, out, err = run_cli(root, capsys, "apply", "--auto-approve", "--max-wait", "2")
            if code == 0:
                break
        else:
            pytest.fail(f"apply did not converge:\n{err}")
        live: dict[str, int] = {}
        for _id, status, labels, _req in jobs(s):
            if status not in ("failed", "cancelled"):
                live[labels["ftops_model"]] = live.get(labels["ftops_model"], 0) + 1
        assert live == {m: 1 for m in MODELS}
        assert len(jobs(s)) == len(MODELS), jobs(s)
        assert len(objects(s)) == 1, objects(s)
