"""`ftops import NAME JOB_ID`: adopting a job created outside ftops (issue 13), on the sandbox."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from ftops.workspace import SANDBOX_API_KEY, Workspace
from tests.e2e.conftest import Project


def _raw_job(p: Project, body: dict[str, Any], training: str = "data/train.jsonl",
             validation: str | None = "data/val.jsonl") -> str:
    """A job made with the raw OpenAI-style API: files under their own names, no ftops metadata."""
    ws = Workspace(p.root)
    try:
        http: httpx.Client = ws.provider().http  # type: ignore[attr-defined]
        auth = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}

        def upload(path: str) -> str:
            r = http.post("/files", headers=auth, data={"purpose": "fine-tune"},
                          files={"file": (path.rsplit("/", 1)[-1], (p.root / path).read_bytes())})
            r.raise_for_status()
            fid = str(r.json()["id"])
            for _ in range(200):  # until the provider has processed it, as an SDK user would wait
                if http.get(f"/files/{fid}", headers=auth).json()["status"] == "processed":
                    break
                time.sleep(0.05)
            return fid

        files = {"training_file": upload(training)}
        if validation:
            files["validation_file"] = upload(validation)
        r = http.post("/fine_tuning/jobs", headers=auth, json={**body, **files})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])
    finally:
        ws.close()


SUPPORT = {"model": "gpt-4o-mini-2024-07-18", "suffix": "support", "seed": 42,
           "method": {"type": "supervised", "supervised": {"hyperparameters": {
               "n_epochs": 3, "learning_rate_multiplier": 2.0}}}}


def test_import_adopts_a_matching_job_and_the_next_plan_has_no_changes(project: Project) -> None:
    job = _raw_job(project, SUPPORT)
    r = project.ftops("import", "support-bot", job, "--json")
    assert r.code == 0, r.err
    assert r.json()["job_id"] == job
    state = json.loads((project.root / ".ftops" / "state.json").read_text())
    assert state["models"]["support-bot"]["job"]["job_id"] == job
    jobs_before = project.job_count()
    plan = project.ftops("plan", "--json", "--target", "support-bot").json()
    (m,) = [m for m in plan["models"] if m["name"] == "support-bot"]
    assert (m["action"], m["job_id"]) == ("no-op", job), m
    assert project.ftops("plan", "--detailed-exitcode", "--target", "support-bot").code == 0
    assert project.ftops("apply", "--auto-approve", "--target", "support-bot").code == 0
    assert project.job_count() == jobs_before  # import and the apply after it created nothing
    assert project.ftops("import", "support-bot", job).code == 0  # again: nothing to do


def test_import_refuses_a_job_that_differs_naming_each_difference(project: Project) -> None:
    other = {**SUPPORT, "model": "gpt-4.1-mini-2025-04-14", "seed": 7}
    job = _raw_job(project, other, training="data/val.jsonl")
    r = project.ftops("import", "support-bot", job)
    assert r.code == 1 and "error[import.mismatch]" in r.err, r.out + r.err
    for what in ("base_model:", "training_file:", "seed:"):
        assert what in r.err, (what, r.err)
    assert "validation_file:" not in r.err
    assert not (project.root / ".ftops" / "state.json").exists() or "support-bot" not in json.loads(
        (project.root / ".ftops" / "state.json").read_text()).get("models", {})
    assert project.ftops("import", "support-bot", "ftjob-nope").code == 1
    assert project.ftops("import", "nobody", job).code == 1


def test_import_on_together_matches_through_the_same_job_fields(tmp_path: Any, capsys: Any) -> None:
    import shutil

    from ftops.providers.base import bind_files
    from tests.e2e.conftest import REPO

    root = tmp_path / "together"
    shutil.copytree(REPO / "examples" / "together", root, ignore=shutil.ignore_patterns(".ftops"))
    p = Project(root, capsys)
    ws = Workspace(root)
    try:
        (d,) = [m for m in ws.desired().models if m.name == "support-bot"]
        prov = ws.provider()
        files = {ds.sha256: prov.upload_file(root / ds.path, sha256=ds.sha256, display_path=ds.path).id
                 for ds in d.datasets}
        for fid in files.values():
            prov.wait_until_usable(next(f for f in prov.list_files() if f.id == fid))
        # The raw API, as a user of Together's SDK would call it: no ftops identity tag in the suffix.
        created = prov._request_json("POST", "/fine-tunes", json=bind_files(d.body, files))  # type: ignore[attr-defined]
        assert prov.get_job(created["id"]).group is None
    finally:
        ws.close()
    r = p.ftops("import", "support-bot", created["id"])
    assert r.code == 0, r.err
    assert p.ftops("plan", "--detailed-exitcode", "--target", "support-bot").code == 0
    p.edit("n_epochs: 3", "n_epochs: 4")  # now the declaration differs from the recorded job: a replace
    assert p.ftops("plan", "--detailed-exitcode", "--target", "support-bot").code == 2
