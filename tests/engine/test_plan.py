"""The pure planner: data in, data out (no provider, no disk)."""

from __future__ import annotations

from typing import Any

from ftops.engine.fingerprint import file_placeholder, fingerprint
from ftops.engine.model import (
    DatasetRef,
    DesiredModel,
    FileAction,
    ModelAction,
    ProviderInfo,
    ProviderSnapshot,
    RemoteSnapshot,
)
from ftops.engine.plan import build_plan
from ftops.providers import JobState, RemoteFile, RemoteJob
from ftops.providers.base import remote_filename, sha_of_remote_name
from ftops.state import FileRecord, JobRecord, ModelRecord, State

SHA_A = "a" * 64
SHA_B = "b" * 64


def desired(name: str = "bot", sha: str = SHA_A, n_epochs: Any = 3, seed: int = 1) -> DesiredModel:
    attrs = {"base_model": "gpt-4o-mini-2024-07-18", "training_file": file_placeholder(sha),
             "hyperparameters": {"n_epochs": n_epochs}, "seed": seed}
    body = {"model": "gpt-4o-mini-2024-07-18", "training_file": file_placeholder(sha),
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": n_epochs}}},
            "seed": seed}
    fp = fingerprint(body)
    return DesiredModel(name=name, fingerprint=fp, group=f"p/{name}/{fp}", seed=seed, seed_declared=True,
                        attributes=attrs, body=body, training=DatasetRef(path="data/t.jsonl", sha256=sha, bytes=100))


STATES = {"running": JobState.RUNNING, "queued": JobState.PENDING, "succeeded": JobState.SUCCEEDED,
          "failed": JobState.FAILED, "cancelled": JobState.CANCELLED}


def job(d: DesiredModel, status: str = "running", jid: str = "ftjob-1", created: int = 1,
        attempt: int = 1) -> RemoteJob:
    """A job as a provider reports it: its own status word, ftops's lifecycle, the identity it carries."""
    return RemoteJob(id=jid, status=status, state=STATES.get(status, JobState.UNKNOWN),
                     model="gpt-4o-mini-2024-07-18", training_file="file-1", created_at=created,
                     group=d.group, attempt=attempt, declared_model=d.name, declared_fingerprint=d.fingerprint)


def plan(ds: list[DesiredModel], state: State | None = None, snap: RemoteSnapshot | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    return build_plan(ds, state or State(), snap, project="p",
                      providers={"default": ProviderInfo(type="openai", endpoint="x")}, **kw)


def snap(files: list[RemoteFile] = (), jobs: list[RemoteJob] = ()) -> RemoteSnapshot:  # type: ignore[assignment]
    return RemoteSnapshot(providers={"default": ProviderSnapshot(endpoint="x", files=list(files), jobs=list(jobs))})


def test_new_model_creates_and_uploads_once_for_shared_dataset() -> None:
    p = plan([desired("a"), desired("b", seed=2)], snap=snap())
    assert [m.action for m in p.models] == [ModelAction.CREATE, ModelAction.CREATE]
    assert [f.action for f in p.files] == [FileAction.UPLOAD]
    assert p.files[0].models == ["a", "b"]
    assert p.summary.upload == 1 and p.summary.create == 2 and p.has_changes


def test_remote_job_with_fingerprint_is_adopted_without_state() -> None:
    d = desired()
    p = plan([d], snap=snap(jobs=[job(d)]))
    assert p.models[0].action is ModelAction.ADOPT
    assert p.files == [] and not p.has_changes


def test_known_job_is_noop_and_shows_status() -> None:
    d = desired()
    st = State(models={"bot": ModelRecord(name="bot", fingerprint=d.fingerprint, seed=1, spec=d.attributes,
                                          job=JobRecord(job_id="ftjob-1", fingerprint=d.fingerprint,
                                                        status="queued"))})
    p = plan([d], st, snap(jobs=[job(d, "succeeded")]))
    m = p.models[0]
    assert m.action is ModelAction.NOOP and m.status == "succeeded" and m.changes == []


def test_hyperparameter_change_is_replace_with_attribute_diff() -> None:
    old, new = desired(n_epochs=3), desired(n_epochs=4)
    st = State(models={"bot": ModelRecord(name="bot", fingerprint=old.fingerprint, seed=1, spec=old.attributes)},
               files={SHA_A: FileRecord(sha256=SHA_A, file_id="file-1", bytes=100, filename="t")})
    remote_file = RemoteFile(id="file-1", filename="t", bytes=100, purpose="fine-tune", status="processed",
                             created_at=1)
    p = plan([new], st, snap(files=[remote_file], jobs=[job(old, "succeeded")]))
    m = p.models[0]
    assert m.action is ModelAction.REPLACE
    assert m.reason == "replace_because_hyperparameters_changed"
    assert [(c.path, c.before, c.after) for c in m.changes] == [("hyperparameters.n_epochs", 3, 4)]
    assert p.summary.upload == 0 and p.files[0].action is FileAction.REUSE


def test_dataset_change_replaces_and_uploads() -> None:
    old, new = desired(sha=SHA_A), desired(sha=SHA_B)
    p = plan([new], State(), snap(jobs=[job(old, "succeeded")]))
    assert p.models[0].action is ModelAction.REPLACE and p.summary.upload == 1


def test_failed_job_is_retried_with_its_error() -> None:
    d = desired()
    j = RemoteJob.model_validate({**job(d, "failed").model_dump(),
                                  "error": {"code": "invalid_file", "message": "bad", "param": None}})
    p = plan([d], snap=snap(jobs=[j]))
    assert p.models[0].action is ModelAction.RETRY and p.models[0].reason == "retry_because_job_failed"
    assert p.models[0].error and p.models[0].error["code"] == "invalid_file"


def test_remote_file_found_by_hash_in_name_is_adopted() -> None:
    d = desired()
    name = remote_filename("x/t.jsonl", SHA_A)
    f = RemoteFile(id="file-9", filename=name, bytes=100, purpose="fine-tune", status="processed", created_at=1,
                   sha256=sha_of_remote_name(name))
    p = plan([d], snap=snap(files=[f]))
    assert p.files[0].action is FileAction.ADOPT and p.files[0].file_id == "file-9"
    assert sha_of_remote_name(f.filename) == SHA_A


def test_orphan_is_kept_never_deleted() -> None:
    d = desired("gone")
    st = State(models={"gone": ModelRecord(name="gone", fingerprint=d.fingerprint, seed=1)})
    p = plan([], st, snap(jobs=[job(d, "succeeded")]))
    assert p.models[0].action is ModelAction.ORPHAN and p.models[0].job_id == "ftjob-1"
    assert p.summary.orphan == 1 and not p.has_changes


def test_offline_plan_uses_state_only() -> None:
    d = desired()
    st = State(models={"bot": ModelRecord(name="bot", fingerprint=d.fingerprint, group=d.group, seed=1,
                                          spec=d.attributes,
                                          job=JobRecord(job_id="j", fingerprint=d.fingerprint, status="running"))},
               files={SHA_A: FileRecord(sha256=SHA_A, file_id="file-1", bytes=100, filename="t")})
    p = plan([d], st, None)
    assert p.offline and p.models[0].action is ModelAction.NOOP and not p.has_changes


def test_plan_is_deterministic_and_serialisable() -> None:
    ds = [desired("b", seed=2), desired("a")]
    st = State()
    p1, p2 = plan(ds, st, snap=snap()), plan(list(reversed(ds)), st, snap=snap())
    assert p1.model_dump_json() == p2.model_dump_json()
    assert type(p1).model_validate_json(p1.model_dump_json()) == p1


def test_rate_limit_warning_when_plan_needs_more_creates_than_allowed() -> None:
    ds = [desired(f"m{i}", seed=i) for i in range(3)]
    p = plan(ds, State(), snap(), job_creates_per_hour={"default": 2})
    assert [w["code"] for w in p.warnings] == ["plan.rate_limit"]


def test_fingerprint_ignores_metadata_and_file_ids_are_placeholders() -> None:
    import httpx

    from ftops.providers import OpenAIProvider, TogetherProvider

    d = desired()
    openai = OpenAIProvider(httpx.Client(base_url="http://x/v1"), api_key=None)
    assert fingerprint(openai.fingerprint_material({**d.body, "metadata": {"team": "x"}})) == d.fingerprint
    assert fingerprint(openai.fingerprint_material({**d.body, "seed": 2})) != d.fingerprint
    # The same body on another provider is another training: a move is a replace.
    together = TogetherProvider(httpx.Client(base_url="http://x/v1"), api_key=None)
    assert fingerprint(together.fingerprint_material(d.body)) != d.fingerprint


def test_pending_intents_are_resolved_against_the_snapshot() -> None:
    from ftops.state import Intent

    d = desired()
    st = State(intents=[Intent(kind="create_job", key=d.fingerprint, model="bot", started_at=0),
                        Intent(kind="upload_file", key=SHA_B, started_at=0)])
    p = plan([d], st, snap(jobs=[job(d, "queued", "ftjob-7")]))
    assert [(i.kind, i.found) for i in p.intents] == [("create_job", "ftjob-7"), ("upload_file", None)]
    # Intents written since identities have groups carry group#attempt: attempt 2 is not attempt 1.
    st2 = State(intents=[Intent(kind="create_job", key=f"{d.group}#2", model="bot", started_at=0),
                         Intent(kind="create_job", key=f"{d.group}#1", model="bot", started_at=0)])
    p2 = plan([d], st2, snap(jobs=[job(d, "queued", "ftjob-7")]))
    assert [i.found for i in p2.intents] == [None, "ftjob-7"]
    assert p.models[0].action is ModelAction.ADOPT  # the crashed create is adopted, never repeated
