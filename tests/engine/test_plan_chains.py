"""Chains and imported jobs in the pure plan: data in, data out."""

from __future__ import annotations

from ftops.engine.desired import upstream_outputs
from ftops.engine.model import ModelAction
from ftops.state import JobRecord, ModelRecord, State
from tests.engine.test_plan import desired, job, plan, snap


def _chained(name: str, upstream: str, ready: bool = False):  # type: ignore[no-untyped-def]
    return desired(name, seed=7).model_copy(update={"upstream": upstream, "upstream_ready": ready})


def test_a_waiting_dependent_is_planned_after_its_upstream_and_says_what_it_waits_for() -> None:
    up = desired("stage1")
    dep = _chained("a-stage2", "stage1")  # sorts first by name: the chain orders it after stage1
    p = plan([dep, up], snap=snap())
    assert [(m.name, m.action, m.waits_for) for m in p.models] == [
        ("stage1", ModelAction.CREATE, None), ("a-stage2", ModelAction.CREATE, "stage1")]


def test_a_replaced_upstream_plans_a_waiting_replace_of_its_dependent() -> None:
    dep_before = desired("stage2", seed=7)
    dep = _chained("stage2", "stage1").model_copy(update={
        "fingerprint": "f" * 64, "group": "p/stage2/" + "f" * 64,
        "attributes": {**dep_before.attributes, "base_model": "(known after apply) models.stage1.fine_tuned_model"}})
    state = State(models={"stage2": ModelRecord(
        name="stage2", fingerprint=dep_before.fingerprint, group=dep_before.group, spec=dep_before.attributes,
        job=JobRecord(job_id="ftjob-old", fingerprint=dep_before.fingerprint, status="succeeded", state="succeeded"))})
    p = plan([desired("stage1", n_epochs=4), dep], state, snap(jobs=[job(dep_before, "succeeded", "ftjob-old")]))
    (m,) = [m for m in p.models if m.name == "stage2"]
    assert (m.action, m.reason, m.waits_for) == (ModelAction.REPLACE, "replace_because_base_model_changed", "stage1")


def test_the_upstream_output_is_its_succeeded_job_for_the_desired_fingerprint() -> None:
    up = desired("stage1")
    running = snap(jobs=[job(up, "running")])
    done = snap(jobs=[job(up, "succeeded").model_copy(update={"fine_tuned_model": "ft:x"})])
    other = snap(jobs=[job(desired("stage1", n_epochs=9), "succeeded").model_copy(update={"fine_tuned_model": "ft:y"})])
    assert upstream_outputs(State(), running)(up) is None
    assert upstream_outputs(State(), done)(up) == "ft:x"
    assert upstream_outputs(State(), other)(up) is None  # a job of another fingerprint (a replaced upstream)
    rec = ModelRecord(name="stage1", fingerprint=up.fingerprint, group=up.group, job=JobRecord(
        job_id="j", fingerprint=up.fingerprint, status="succeeded", state="succeeded", fine_tuned_model="ft:s"))
    assert upstream_outputs(State(models={"stage1": rec}), None)(up) == "ft:s"  # offline: the state's word


def test_an_imported_job_without_identity_is_matched_by_the_states_job_id() -> None:
    d = desired("bot")
    # refresh fetched it by the state's id and gave it the state's group (the job carries no identity)
    imported = job(d, "succeeded", "ftjob-raw").model_copy(update={"declared_model": None,
                                                                   "declared_fingerprint": None})
    state = State(models={"bot": ModelRecord(name="bot", fingerprint=d.fingerprint, group=d.group, spec=d.attributes,
                                             job=JobRecord(job_id="ftjob-raw", fingerprint=d.fingerprint,
                                                           status="succeeded", state="succeeded"))})
    (m,) = plan([d], state, snap(jobs=[imported])).models
    assert (m.action, m.job_id) == (ModelAction.NOOP, "ftjob-raw")
