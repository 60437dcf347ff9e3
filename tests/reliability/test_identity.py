"""Identity holes: projects sharing an account, copied state files, saved plans moved to another
endpoint, refused writes, and duplicates that appear after the fact. Against a served sandbox."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from ftops.providers import Identity, OpenAIProvider
from tests.reliability.harness import API_KEY, run_cli, served_sandbox, state_loads, write_project


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    for var in ("FTOPS_SANDBOX_FAULTS", "FTOPS_SANDBOX_TIME_SCALE", "OPENAI_BASE_URL", "FTOPS_PROJECT_RENAMED_FROM"):
        monkeypatch.delenv(var, raising=False)


def _plan_json(root: Path, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    code, out, err = run_cli(root, capsys, "plan", "--json")
    assert code == 0, out + err
    return json.loads(out)  # type: ignore[no-any-return]


def test_two_projects_on_one_account_never_adopt_each_other(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db") as s:
        a = write_project(tmp_path / "a", s.url, project="alpha")
        b = write_project(tmp_path / "b", s.url, project="beta")  # same model names, data and seeds
        assert run_cli(a, capsys, "apply", "--auto-approve")[0] == 0
        plan = _plan_json(b, capsys)
        assert plan["summary"]["create"] == 3 and plan["summary"]["adopt"] == 0 and plan["summary"]["orphan"] == 0
        assert run_cli(b, capsys, "apply", "--auto-approve")[0] == 0
        assert len(s.jobs()) == 6
        # alpha still sees exactly its own three jobs, unchanged.
        again = _plan_json(a, capsys)["summary"]
        assert (again["unchanged"], again["orphan"], again["create"]) == (3, 0, 0)


def test_a_state_from_another_project_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with served_sandbox(tmp_path / "sandbox.db") as s:
        a = write_project(tmp_path / "a", s.url, project="alpha")
        b = write_project(tmp_path / "b", s.url, project="beta")
        assert run_cli(a, capsys, "apply", "--auto-approve")[0] == 0
        shutil.copytree(a / ".ftops", b / ".ftops", dirs_exist_ok=True)
        code, out, err = run_cli(b, capsys, "plan")
        assert code == 1 and "state.project_mismatch" in err and "FTOPS_PROJECT_RENAMED_FROM=alpha" in err
        assert len(s.jobs()) == 3
        monkeypatch.setenv("FTOPS_PROJECT_RENAMED_FROM", "alpha")  # the escape hatch for a deliberate rename
        assert run_cli(b, capsys, "plan")[0] == 0


def test_a_saved_plan_is_bound_to_its_endpoint_and_configuration(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "one.db") as one, served_sandbox(tmp_path / "two.db") as two:
        root = write_project(tmp_path / "p", one.url)
        assert run_cli(root, capsys, "plan", "--out", str(tmp_path / "plan.json"))[0] == 0
        cfg = root / "ftops.yaml"
        cfg.write_text(cfg.read_text().replace(one.url, two.url))
        code, _out, err = run_cli(root, capsys, "apply", str(tmp_path / "plan.json"))
        assert code == 1 and "apply.stale_plan" in err and "provider `default`" in err and two.url in err
        assert two.jobs() == [] and one.jobs() == []
        cfg.write_text(cfg.read_text().replace(two.url, one.url).replace("suffix: rel-0", "suffix: rel-0\n    metadata: {k: v}"))
        code, _out, err = run_cli(root, capsys, "apply", str(tmp_path / "plan.json"))
        assert code == 1 and "the configuration" in err and one.jobs() == []
        # An offline saved plan of an unchanged configuration is applied (it binds no remote actions).
        cfg.write_text(cfg.read_text().replace("\n    metadata: {k: v}", ""))
        assert run_cli(root, capsys, "plan", "--offline", "--out", str(tmp_path / "off.json"))[0] == 0
        code, out, err = run_cli(root, capsys, "apply", str(tmp_path / "off.json"))
        assert code == 0, err
        assert len(one.jobs()) == 3


def test_a_refused_create_leaves_no_unconfirmed_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db") as s:
        root = write_project(tmp_path / "p", s.url, models=1)
        cfg = root / "ftops.yaml"
        cfg.write_text(cfg.read_text().replace("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-19"))
        code, _out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 1 and s.jobs() == []
        assert state_loads(root).intents == []
        code, out, _err = run_cli(root, capsys, "plan")
        assert "never confirmed" not in out and "interrupted" not in out


def _duplicate(url: str, project: str, model: str, fp: str, training_file: str) -> str:
    p = OpenAIProvider(httpx.Client(base_url=url), api_key=API_KEY)
    body = {"model": "gpt-4o-mini-2024-07-18", "training_file": training_file, "suffix": "rel-0",
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}, "seed": 1}
    return p.create_job(body, Identity(project=project, model=model, fingerprint=fp), {}).id


def test_plan_finds_a_duplicate_made_elsewhere_and_apply_cancels_it(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db") as s:
        root = write_project(tmp_path / "p", s.url, models=1, project="dup")
        assert run_cli(root, capsys, "apply", "--auto-approve")[0] == 0
        st = state_loads(root)
        rec = st.models["m0"]
        train = next(f.file_id for f in st.files.values())
        dup = _duplicate(s.url, "dup", "m0", rec.fingerprint, train)
        plan = _plan_json(root, capsys)
        # Which of the two is kept is deterministic (oldest, then lowest id), so that runs with separate
        # state files agree; within one second either may be the older.
        (k,) = plan["cancels"]
        assert k["reason"] == "cancel_duplicate" and {k["job_id"], k["kept_job_id"]} == {dup, rec.job.job_id}  # type: ignore[union-attr]
        assert run_cli(root, capsys, "plan", "--detailed-exitcode")[0] == 2
        assert run_cli(root, capsys, "apply", "--auto-approve")[0] == 0
        assert s.live_jobs_by_model() == {"m0": 1}
        assert run_cli(root, capsys, "plan", "--detailed-exitcode")[0] == 0


def test_a_finished_duplicate_is_reported_once_and_fails_that_apply(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db", time_scale=100_000.0) as s:
        root = write_project(tmp_path / "p", s.url, models=1, project="dup2")
        assert run_cli(root, capsys, "apply", "--auto-approve")[0] == 0
        st = state_loads(root)
        train = next(f.file_id for f in st.files.values())
        dup = _duplicate(s.url, "dup2", "m0", st.models["m0"].fingerprint, train)
        # Both jobs succeed (time_scale 100,000): the sandbox advances jobs when asked, so ask through its API.
        client = httpx.Client(base_url=s.url, headers={"Authorization": f"Bearer {API_KEY}"})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(j["status"] != "succeeded" for j in s.jobs()):
            client.get("/fine_tuning/jobs")
            time.sleep(0.1)
        plan = _plan_json(root, capsys)
        (k,) = plan["cancels"]
        extra = k["job_id"]
        assert k["reason"] == "record_finished_duplicate" and {extra, k["kept_job_id"]} == {dup, st.models["m0"].job.job_id}  # type: ignore[union-attr]
        code, _out, err = run_cli(root, capsys, "apply", "--auto-approve")
        assert code == 1 and "apply.paid_twice" in err and extra in err
        hist = state_loads(root).models["m0"].history
        assert [(h.job_id, bool(h.duplicate_of)) for h in hist if h.duplicate_of] == [(extra, True)]
        # Reported once: the next plan and apply are clean.
        assert _plan_json(root, capsys)["cancels"] == []
        assert run_cli(root, capsys, "apply", "--auto-approve")[0] == 0


def test_a_superseded_running_job_is_cancelled_and_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db", time_scale=1.0) as s:  # jobs stay running
        root = write_project(tmp_path / "p", s.url, models=1, project="sup")
        assert run_cli(root, capsys, "apply", "--auto-approve")[0] == 0
        old = state_loads(root).models["m0"].job
        assert old is not None
        cfg = root / "ftops.yaml"
        cfg.write_text(cfg.read_text().replace("n_epochs: 2", "n_epochs: 3"))
        plan = _plan_json(root, capsys)
        assert [(k["job_id"], k["reason"]) for k in plan["cancels"]] == [(old.job_id, "cancel_superseded")]
        code, out, _err = run_cli(root, capsys, "plan")
        assert "cancel job " + old.job_id in out and "superseded" in out
        _code, md, _err = run_cli(root, capsys, "plan", "--markdown")
        assert "[!WARNING]" in md and old.job_id in md
        assert run_cli(root, capsys, "apply", "--auto-approve")[0] == 0
        statuses = {j["id"]: j["status"] for j in s.jobs()}
        assert statuses[old.job_id] == "cancelled" and len(statuses) == 2
        rec = state_loads(root).models["m0"]
        assert [(h.job_id, h.cancelled_by_ftops) for h in rec.history] == [(old.job_id, True)]


def test_a_model_deleted_outside_ftops_is_drift_and_retrained(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with served_sandbox(tmp_path / "sandbox.db", time_scale=100_000.0) as s:
        root = write_project(tmp_path / "p", s.url, models=1, project="drift")
        assert run_cli(root, capsys, "apply", "--auto-approve")[0] == 0
        time.sleep(0.3)
        assert run_cli(root, capsys, "plan", "--detailed-exitcode")[0] == 0
        job = OpenAIProvider(httpx.Client(base_url=s.url), api_key=API_KEY).get_job(state_loads(root).models["m0"].job.job_id)  # type: ignore[union-attr]
        assert job.fine_tuned_model
        OpenAIProvider(httpx.Client(base_url=s.url), api_key=API_KEY).delete_model(job.fine_tuned_model)
        plan = _plan_json(root, capsys)
        assert [(x["kind"], x["id"]) for x in plan["drift"]] == [("drift_model_deleted", job.fine_tuned_model)]
        m0 = plan["models"][0]
        assert (m0["action"], m0["reason"], m0["attempt"]) == ("retry", "drift_model_deleted", 2)
        code, out, _err = run_cli(root, capsys, "plan", "--detailed-exitcode")
        assert code == 2 and "Changed outside ftops" in out
        assert run_cli(root, capsys, "apply", "--auto-approve")[0] == 0
        time.sleep(0.3)
        assert len(s.jobs()) == 2 and run_cli(root, capsys, "plan", "--detailed-exitcode")[0] == 0
