"""Apply: walk the plan's typed records and converge the provider, saving state after each write.

Never pay twice, by construction:
- every remote write is preceded by an *intent* saved in the state, and followed by a state save;
- before each job creation the provider is asked for a live job with this model's whole identity
  (project, model, fingerprint, attempt): a crash, lost response or a concurrent run may have made
  one; if there is one it is adopted;
- an ambiguous failure (no answer, 5xx after sending) is never retried blindly: the next attempt
  looks first, for a bounded time (`settle_seconds`), since a provider's list can lag its creates;
- the plan's `cancel` actions (duplicates, superseded jobs) run after the creates, and a final
  sweep cancels any extra live job of one identity that a race made, keeping the oldest.
The executor never branches on `reason`; it dispatches on the action type only, and knows no
provider: identity, statuses and files are the provider's business.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ftops.datasets import HashCache
from ftops.datasets.convert import convert_cached
from ftops.diagnostics import Diagnostic, FtopsError, SourceRange, error
from ftops.engine.hooks import Hooks
from ftops.engine.model import (
    CancelChange,
    DeploymentAction,
    DeploymentChange,
    FileAction,
    FileChange,
    ModelAction,
    ModelChange,
    Plan,
    RemoteSnapshot,
)
from ftops.engine.plan import choose_live
from ftops.providers import (
    JobState,
    AuthError,
    BadRequestError,
    ConflictError,
    Identity,
    Provider,
    ProviderError,
    RateLimitError,
    RemoteFile,
    RemoteJob,
    ServerError,
    TransportError,
)
from ftops.state import DeploymentRecord, FileRecord, Intent, JobRecord, ModelRecord, State, StateBackend


T = TypeVar("T")


class ApplyStopped(FtopsError):
    """Apply stopped cleanly with the state saved; re-running resumes."""


class ApplyInterrupted(FtopsError):
    exit_code = 130


def parse_source(source: str) -> SourceRange | None:
    parts = source.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return SourceRange(parts[0], int(parts[1]), int(parts[2]))
    return None


class Executor:
    def __init__(self, providers: Mapping[str, Provider] | Provider, store: StateBackend, state: State, *, root: Path,
                 hooks: Hooks | None = None, hash_cache: HashCache | None = None,
                 sleep: Callable[[float], None] = time.sleep, max_wait: float = 60.0, max_attempts: int = 6,
                 should_stop: Callable[[], bool] = lambda: False, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None,
                 locate: Callable[[str, tuple[str, ...]], SourceRange | None] | None = None,
                 settle_seconds: float = 3.0, cache_dir: Path | None = None):
        self.providers: dict[str, Provider] = (
            {"default": providers} if isinstance(providers, Provider) else dict(providers))
        self.settle_seconds = settle_seconds
        self.cache_dir = cache_dir
        self.store = store
        self.state = state
        self.root = root
        self.hooks = hooks or Hooks()
        self.hash_cache = hash_cache
        self.sleep = sleep
        self.max_wait = max_wait
        self.max_attempts = max_attempts
        self.should_stop = should_stop
        self.clock = clock
        self.rng = rng or random.Random()
        self.locate = locate  # (model name, config keys) -> where ftops.yaml declares it
        self.created: list[str] = []
        self.waiting: list[str] = []  # chained models not created: their upstream's job has not succeeded
        self.uploaded: list[str] = []
        self.cancelled: list[str] = []
        self.paid_twice: list[tuple[str, str, str]] = []  # (model, duplicate job, kept job)
        self.deleted: list[str] = []
        self.project = ""

    def provider(self, name: str) -> Provider:
        return self.providers[name]

    # ------------------------------------------------------------------ driver

    def run(self, plan: Plan, snapshot: RemoteSnapshot | None) -> State:
        """Converge; a provider error that escapes the per-step handling (a look-up or sweep read that
        exhausted its retries) stops apply with the state saved and a diagnostic, not a traceback."""
        try:
            return self._run(plan, snapshot)
        except ProviderError as e:
            self._save()
            d = e.to_diagnostic()
            raise FtopsError(dataclasses.replace(
                d, detail=f"{d.detail} The state is saved; everything done so far is kept.",
                hint=d.hint or "re-run `ftops apply` to resume; nothing is created twice")) from e

    def _run(self, plan: Plan, snapshot: RemoteSnapshot | None) -> State:
        self.state.project = plan.project
        self.state.endpoint = plan.endpoint
        self.project = plan.project
        self.sync(plan, snapshot)
        for f in plan.files:
            if f.action is FileAction.UPLOAD:
                self._check_stop()
                self._upload(f)
        for c in plan.models:
            if c.action.creates_job and c.waits_for:
                self.waiting.append(c.name)  # its base model is the upstream's, known once that job succeeded
            elif c.action.creates_job:
                self._check_stop()
                self._create(c)
        for k in plan.cancels:
            self._check_stop()
            self._cancel(k)
        # Deployments before deletes: a deployment moves to its new model (or goes) before `--prune`
        # deletes the model it served.
        for dc in plan.deployments:
            self._check_stop()
            self._deployment(dc)
        if plan.deletes:
            self._delete_all(plan)
        if self.created:
            self._sweep_duplicates(plan)
        if self.paid_twice:
            self._save()
            raise FtopsError(error(
                "apply.paid_twice", "a duplicate job finished before it could be cancelled",
                "; ".join(f"models.{n}: job {j} duplicates {k}" for n, j, k in self.paid_twice)
                + ". It is recorded in the state (and not reported again); ftops keeps using the first job.",
                hint="delete the extra fine-tuned model on the provider if you do not want it; see `ftops show`"))
        return self.state

    def _deployment(self, k: DeploymentChange) -> None:
        """One `models.NAME.deployment` record: write what the plan decided, then record it in state."""
        prov = self.provider(k.provider)
        if k.action is DeploymentAction.WAIT:
            return
        if k.action is DeploymentAction.DELETE:
            if k.deployment_id:
                prov.delete_deployment(k.deployment_id)
                self.state.deployments.pop(k.deployment_id, None)
                self._save()
                self.hooks.deployment_done(k.address, f"deleted {k.deployment_id} (--prune)")
            return
        if k.action is DeploymentAction.CREATE and k.model_id and k.fingerprint:
            ident = Identity(project=self.project, model=k.name, fingerprint=k.fingerprint, attempt=k.attempt)
            dep = prov.create_deployment(k.name, k.model_id, k.settings, ident)
        elif k.action is DeploymentAction.UPDATE and k.deployment_id and k.model_id:
            dep = prov.update_deployment(k.deployment_id, k.model_id, k.settings)
        else:  # no-op / keep: refresh the record
            if not k.deployment_id:
                return
            rec = DeploymentRecord(deployment_id=k.deployment_id, model=k.name, provider=k.provider, key=k.key,
                                   model_id=k.model_id or "", settings=dict(k.settings), status=k.status or "",
                                   endpoint=k.endpoint or "", prevent_destroy=k.prevent_destroy)
            if self.state.deployments.get(k.deployment_id) != rec:
                self.state.deployments[k.deployment_id] = rec
                self._save()
            return
        self.state.deployments[dep.id] = DeploymentRecord(
            deployment_id=dep.id, model=k.name, provider=k.provider, key=dep.key or k.key, model_id=dep.model,
            settings=dict(k.settings), status=dep.status, endpoint=dep.endpoint, prevent_destroy=k.prevent_destroy)
        self._save()
        self.hooks.deployment_done(k.address, f"{k.action.value}d {dep.id} ({dep.status})")

    def _save(self) -> None:
        self.state = self.store.save(self.state)
        self.hooks.state_saved(self.state.serial)

    def _check_stop(self) -> None:
        if self.should_stop():
            self._save()
            raise ApplyInterrupted(error(
                "apply.interrupted", "apply interrupted",
                "stopped after the request in flight; the state is saved.",
                hint="run `ftops apply` again to resume; nothing is created twice"))

    # ------------------------------------------------------------------ state-only changes

    def sync(self, plan: Plan, snapshot: RemoteSnapshot | None) -> None:
        """Record what the plan adopted or observed, and resolve intents left by a crash."""
        changed = False
        for mv in plan.moves:  # state-only renames, first: the model records below use the new names
            if mv.from_name in self.state.models and mv.to_name not in self.state.models:
                moved = self.state.models.pop(mv.from_name)
                moved.name = mv.to_name
                self.state.models[mv.to_name] = moved
                changed = True
        for f in plan.files:
            if f.action in (FileAction.ADOPT, FileAction.REUSE) and f.file_id:
                key = State.file_key(f.provider, f.sha256)
                known = self.state.files.get(key)
                if known is None or known.file_id != f.file_id:
                    self._wait_adopted(f, snapshot)
                    self.state.files[key] = FileRecord(sha256=f.sha256, file_id=f.file_id, bytes=f.bytes,
                                                       filename=f.filename, path=f.path, provider=f.provider)
                    self.state.touch_file(key)
                    changed = True
        jobs = {j.id: j for j in snapshot.jobs} if snapshot else {}
        for c in plan.models:
            if c.action in (ModelAction.NOOP, ModelAction.ADOPT) and c.job_id and c.fingerprint:
                job = jobs.get(c.job_id)
                rec = self.state.models.get(c.name)
                if job is not None:
                    changed |= self._record_job(c, job)
                elif rec is not None and rec.spec != c.attributes and c.attributes is not None:
                    rec.spec = dict(c.attributes)
                    self.state.touch_model(c.name)
                    changed = True
            elif c.action is ModelAction.ORPHAN and c.job_id in jobs and c.name in self.state.models:
                rec = self.state.models[c.name]
                if rec.job and rec.job.job_id == c.job_id:
                    new = _job_record(jobs[c.job_id], rec.fingerprint, rec.job.attempt)
                    if new != rec.job:
                        rec.job = new
                        self.state.touch_model(c.name)
                        changed = True
        if snapshot is not None and self.state.intents:
            # The snapshot is a complete listing: an intent it does not satisfy never committed,
            # and an intent it does satisfy was recorded above (adopt) or by the plan (file adopt).
            self.state.intents = []
            changed = True
        if changed:
            self._save()

    def _wait_adopted(self, f: FileChange, snapshot: RemoteSnapshot | None) -> None:
        """A file found on the provider but not in the state (a run killed between its upload and its
        state write) may still be processing: wait for it as for an upload of ours before recording it,
        or the job that uses it is refused ("file not ready") and the re-run fails."""
        remote = next((r for r in snapshot.of(f.provider).files if r.id == f.file_id), None) if snapshot else None
        if remote is not None:
            self.provider(f.provider).wait_until_usable(remote)  # a broken file stops apply here

    def _record_job(self, c: ModelChange, job: RemoteJob) -> bool:
        assert c.fingerprint is not None
        self.state.touch_model(c.name)
        rec = self.state.models.get(c.name)
        attempt = job.attempt or c.attempt
        new_job = _job_record(job, c.fingerprint, attempt)
        if rec is None:
            self.state.models[c.name] = ModelRecord(name=c.name, provider=c.provider, fingerprint=c.fingerprint,
                                                    group=c.group or "", attempt=attempt, seed=c.seed,
                                                    prevent_destroy=c.prevent_destroy,
                                                    spec=dict(c.attributes or {}), job=new_job)
            return True
        before = rec.model_dump()
        rec.prevent_destroy = c.prevent_destroy
        if rec.job is not None and rec.job.job_id != job.id:
            rec.history.append(rec.job)
        rec.job = new_job
        rec.provider = c.provider
        rec.group = c.group or rec.group
        rec.attempt = attempt
        rec.fingerprint = c.fingerprint
        if c.seed is not None:
            rec.seed = c.seed
        if c.attributes is not None:
            rec.spec = dict(c.attributes)
        return rec.model_dump() != before

    # ------------------------------------------------------------------ uploads

    def _upload(self, f: FileChange) -> None:
        path = (self.root / f.path).resolve()
        if self.hash_cache is not None and self.hash_cache.sha256(path) != (f.source_sha256 or f.sha256):
            raise ApplyStopped(error(
                "apply.stale_dataset", f"{f.path} changed since the plan was made",
                "its bytes no longer have the sha256 the plan recorded, so uploading it would train on data "
                "nobody reviewed.", hint="run `ftops plan` again"))
        self.state.intents.append(Intent(kind="upload_file", key=f.sha256, provider=f.provider,
                                         started_at=self.clock()))
        self.state.touch()
        self._save()
        self.hooks.upload_started(f)
        if f.converted_to:
            path = self._converted(f, path)
        remote, adopted = self._upload_once(f, path)
        if not adopted:
            remote = self._settle_duplicate_upload(f, remote)
        remote = self.provider(f.provider).wait_until_usable(remote)  # a broken file stops apply here
        key = State.file_key(f.provider, f.sha256)
        self.state.files[key] = FileRecord(sha256=f.sha256, file_id=remote.id, bytes=remote.bytes or f.bytes,
                                           filename=remote.filename, path=f.path, provider=f.provider)
        self.state.touch_file(key)
        self._drop_intent("upload_file", f.sha256)
        self.uploaded.append(remote.id)
        self._save()
        self.hooks.upload_finished(f, remote, adopted)

    def _converted(self, f: FileChange, source: Path) -> Path:
        """The converted copy the plan hashed (from the cache, or converted again: conversion is
        deterministic, and the result is checked against the plan's hash)."""
        assert f.converted_to and f.source_sha256
        conv = convert_cached(source, sha256=f.source_sha256, target=f.converted_to,
                              cache_dir=self.cache_dir or self.root / ".ftops" / "cache")
        if conv.sha256 != f.sha256:
            raise ApplyStopped(error(
                "apply.stale_dataset", f"{f.path} converts to other bytes than when the plan was made",
                f"the {f.converted_to} copy hashes to {conv.sha256[:12]}…, the plan recorded {f.sha256[:12]}… "
                "(another ftops version?).", hint="run `ftops plan` again"))
        return conv.path

    def _find_file(self, f: FileChange) -> RemoteFile | None:
        for r in sorted(self.provider(f.provider).list_files(), key=lambda r: (r.created_at or 0, r.id)):
            if r.sha256 == f.sha256 and r.bytes in (f.bytes, None) and r.usable:
                return r
        return None

    def _settle_duplicate_upload(self, f: FileChange, ours: RemoteFile) -> RemoteFile:
        """Two runs with separate state files can both look, find nothing and upload. Look again: every
        run keeps the oldest file with these bytes and deletes its own newer copy before any job uses it,
        so the runs settle on one file."""
        same = [r for r in self.provider(f.provider).list_files()
                if r.sha256 == f.sha256 and r.usable and r.bytes in (f.bytes, None)]
        if not same:
            return ours
        keep = min(same + [ours], key=lambda r: (r.created_at or 0, r.id))
        if keep.id == ours.id:
            return ours
        try:
            self.provider(f.provider).delete_file(ours.id)
            self.hooks.retrying(f"upload of {f.path}", f"another run uploaded the same bytes first ({keep.id}); "
                                                        f"using it and deleting the copy {ours.id}")
        except ProviderError as e:
            self.hooks.retrying(f"deleting duplicate upload {ours.id}", str(e))
        return keep

    def _drop_intent(self, kind: str, key: str) -> None:
        self.state.intents = [i for i in self.state.intents if not (i.kind == kind and i.key == key)]

    def _upload_once(self, f: FileChange, path: Path) -> tuple[RemoteFile, bool]:
        # Look at the last moment: a concurrent run with its own state may have uploaded it already.
        found = self._find_file(f)
        if found is not None:
            return found, True
        return self._write_once(
            f"upload of {f.path}", "apply.upload_failed", ("upload_file", f.sha256),
            lambda: self.provider(f.provider).upload_file(
                path, sha256=f.sha256, display_path=f.path,
                on_progress=lambda sent, total: self.hooks.upload_progress(f, sent, total)),
            lambda: self._find_file(f))

    def _write_once(self, what: str, code: str, intent: tuple[str, str], write: Callable[[], T],
                    find: Callable[[], T | None]) -> tuple[T, bool]:
        """One remote write, never repeated blindly: after an ambiguous failure, look before retrying.

        Returns (result, adopted). A 429 waits (or stops cleanly); a 4xx propagates; bounded attempts.
        """
        ambiguous = False
        for attempt in range(self.max_attempts):
            if ambiguous:
                found = find()
                if found is not None:
                    return found, True
            try:
                return write(), False
            except (BadRequestError, AuthError) as e:
                # The provider definitely refused: nothing happened, so no intent is left for the next
                # plan to report as an unconfirmed write.
                if not ambiguous:
                    self._drop_intent(*intent)
                    self.state.touch()
                    self._save()
                raise e
            except RateLimitError as e:
                # Stopping on a 429 before any ambiguous attempt: nothing reached the provider, so the
                # intent is withdrawn rather than left for the next run to resolve.
                self._wait_rate_limit(e, what, None if ambiguous else lambda: self._drop_intent(*intent))
            except (TransportError, ServerError) as e:
                ambiguous = ambiguous or e.maybe_committed or isinstance(e, ServerError)
                if not (e.retryable or e.maybe_committed or isinstance(e, ServerError)):
                    raise
                self.hooks.retrying(what, str(e))
                self.sleep(self._backoff(attempt))
        raise ApplyStopped(error(
            code, f"{what} failed", f"{self.max_attempts} attempts failed; the state is saved and nothing was "
            "done twice.", hint="re-run `ftops apply` later"))

    # ------------------------------------------------------------------ jobs

    def _identity(self, c: ModelChange) -> Identity:
        assert c.fingerprint is not None
        return Identity(project=self.project, model=c.name, fingerprint=c.fingerprint, attempt=c.attempt)

    def _intent_key(self, c: ModelChange) -> str:
        return f"{c.group}#{c.attempt}"

    def _create(self, c: ModelChange) -> None:
        assert c.body is not None and c.fingerprint is not None
        files = self._bound_files(c)
        self.hooks.job_started(c)
        identity = self._identity(c)
        existing = self._find_live_job(c.provider, identity)
        if existing is not None:
            self._record_job(c, existing)
            self._save()
            self.hooks.job_finished(c, existing, True)
            return
        key = self._intent_key(c)
        self.state.intents.append(Intent(kind="create_job", key=key, model=c.name, provider=c.provider,
                                         started_at=self.clock()))
        self.state.touch()
        self._save()
        job, adopted = self._create_once(c, identity, files)
        adopted = adopted or job.existed
        self._record_job(c, job)
        self._drop_intent("create_job", key)
        if not adopted:
            self.created.append(job.id)
        self._save()
        self.hooks.job_finished(c, job, adopted)

    def _bound_files(self, c: ModelChange) -> dict[str, str]:
        """sha256 -> the file id on this model's provider, for every dataset its job needs."""
        out: dict[str, str] = {}
        for sha in c.datasets:
            rec = self.state.file_for(sha, c.provider)
            if rec is None:
                raise ApplyStopped(error("apply.file_missing", f"no uploaded file {sha[:12]}… for {c.name}",
                                         "the plan expected the dataset to be uploaded first.",
                                         hint="run `ftops apply` again", address=c.address))
            out[sha] = rec.file_id
        return out

    def _find_live_job(self, provider: str, identity: Identity) -> RemoteJob | None:
        live = [j for j in self.provider(provider).find_jobs(identity)
                if (j.attempt or 1) == identity.attempt and j.state.live]
        return choose_live(live) if live else None

    def _find_after_ambiguous(self, provider: str, identity: Identity) -> RemoteJob | None:
        """After a create that may have happened: look, and look again for `settle_seconds`, because a
        provider's job list can lag its creates by seconds (concluding "absent" too early pays twice)."""
        step = min(0.5, max(0.01, self.settle_seconds / 4))
        looks = 1 + (int(self.settle_seconds / step) if self.settle_seconds > 0 else 0)
        for i in range(looks):
            found = self._find_live_job(provider, identity)
            if found is not None or i == looks - 1:
                return found
            self.sleep(step)
        return None

    def _create_once(self, c: ModelChange, identity: Identity, files: dict[str, str]) -> tuple[RemoteJob, bool]:
        assert c.body is not None
        body = c.body
        prov = self.provider(c.provider)
        try:
            return self._write_once(f"job creation for {c.name}", "apply.create_failed",
                                    ("create_job", self._intent_key(c)),
                                    lambda: prov.create_job(body, identity, files),
                                    lambda: self._find_after_ambiguous(c.provider, identity))
        except BadRequestError as e:
            self._save()
            d = e.to_diagnostic(address=c.address)
            raise FtopsError(Diagnostic(d.severity, d.code, d.summary, d.detail, self._where(c, e.param),
                                        d.hint or "fix the model's declaration and re-run", c.address)) from e

    def _cancel(self, k: CancelChange) -> None:
        """Cancel a duplicate or superseded job; a job that finished meanwhile is reported, not touched."""
        if k.reason == "record_finished_duplicate":
            self._record_paid_twice(k.name, k.job_id, k.kept_job_id or "", k.provider)
            return
        try:
            job = self.provider(k.provider).cancel_job(k.job_id)
        except BadRequestError as e:
            now = self.provider(k.provider).get_job(k.job_id)
            if k.reason == "cancel_duplicate" and now.state is JobState.SUCCEEDED:
                self._record_paid_twice(k.name, k.job_id, k.kept_job_id or "", k.provider)
            elif not now.state.dead:
                self.hooks.retrying(f"cancel of job {k.job_id}", f"{e} (it finished meanwhile: {now.status})")
            return
        self.cancelled.append(k.job_id)
        rec = self.state.models.get(k.name)
        if rec is not None:
            self.state.touch_model(k.name)
            entry = _job_record(job, rec.fingerprint, job.attempt or 1).model_copy(update={"cancelled_by_ftops": True})
            at = next((i for i, h in enumerate(rec.history) if h.job_id == k.job_id), None)
            if rec.job is not None and rec.job.job_id == k.job_id:
                rec.job = entry
            elif at is not None:
                rec.history[at] = entry
            else:
                rec.history.append(entry)
            self._save()
        self.hooks.duplicate_cancelled(k.name, k.job_id, k.kept_job_id or "")

    def _delete_all(self, plan: Plan) -> None:
        """`--prune`/`destroy`: cancel jobs, then delete models, then files, saving after each; a definite
        404 means already gone. The records of models pruned whole are forgotten at the end."""
        from ftops.providers import NotFoundError

        order = {"job": 0, "deployment": 1, "model": 2, "file": 3}
        for k in sorted(plan.deletes, key=lambda k: (order.get(k.kind, 9), k.name, k.id)):
            self._check_stop()
            prov = self.provider(k.provider)
            op = {"job": prov.cancel_job, "model": prov.delete_model, "file": prov.delete_file}.get(k.kind)
            if op is None:
                continue
            try:
                op(k.id)
            except NotFoundError:
                pass
            except (BadRequestError, ConflictError) as e:  # refused or still in use: the next plan shows it again
                self.hooks.retrying(f"{k.kind} {k.id}", str(e))
                continue
            except NotImplementedError as e:
                raise FtopsError(error("provider.unsupported_operation", f"cannot delete {k.kind} {k.id}", str(e),
                                       hint="delete it in the provider's console", address=k.address)) from None
            self.deleted.append(k.id)
            if k.kind == "file":
                self.state.files = {key: f for key, f in self.state.files.items()
                                    if not (f.file_id == k.id and f.provider == k.provider)}
            rec = self.state.models.get(k.name)
            if rec is not None and k.kind == "model":
                rec.history = [h for h in rec.history if h.fine_tuned_model != k.id]
            self._save()
        whole = {k.name for k in plan.deletes if k.reason in ("delete_orphan", "destroy") and k.name}
        whole |= {m.name for m in plan.models if m.action is ModelAction.ORPHAN}
        for name in sorted(whole):
            self.state.models.pop(name, None)
        self._save()

    def _where(self, c: ModelChange, param: str | None) -> SourceRange | None:
        """The ftops.yaml line behind a rejected body parameter, else the model's declaration."""
        if self.locate is not None and param:
            keys = self.provider(c.provider).config_keys_for_param(param)
            if keys:
                found = self.locate(c.name, keys)
                if found is not None:
                    return found
        return parse_source(c.source)

    def _record_paid_twice(self, name: str, job_id: str, kept: str, provider: str) -> None:
        """A duplicate that finished before it could be cancelled: kept in state as such (so it is reported
        once), and this apply ends non-zero naming it."""
        rec = self.state.models.get(name)
        if rec is not None:
            at = next((i for i, h in enumerate(rec.history) if h.job_id == job_id), None)
            if at is not None:  # the state's own job turned out to be the extra one
                rec.history[at] = rec.history[at].model_copy(update={"duplicate_of": kept})
            else:
                job = self.provider(provider).get_job(job_id)
                rec.history.append(_job_record(job, rec.fingerprint, job.attempt or 1).model_copy(
                    update={"duplicate_of": kept}))
            self.state.touch_model(name)
            self._save()
        self.paid_twice.append((name, job_id, kept))

    def _sweep_duplicates(self, plan: Plan) -> None:
        """Cancel extra live jobs of one whole identity (concurrent runs with separate state files)."""
        changed = False
        for pname in sorted({c.provider for c in plan.models if c.action.creates_job}):
            groups: dict[tuple[str, int], list[RemoteJob]] = {}
            for j in self.provider(pname).list_jobs(plan.project):
                if j.state.live and not j.state.terminal and j.group:
                    groups.setdefault((j.group, j.attempt or 1), []).append(j)
            names = {c.group: c.name for c in plan.models if c.group}
            for (group, _attempt), live in sorted(groups.items()):
                if len(live) < 2:
                    continue
                keep = min(live, key=lambda j: (j.created_at or 0, j.id))
                name = names.get(group) or keep.declared_model or group
                for j in live:
                    if j.id == keep.id:
                        continue
                    try:
                        self.provider(pname).cancel_job(j.id)
                    except BadRequestError:
                        # Another run's sweep may have cancelled it first; only a finished job is paid twice.
                        if self.provider(pname).get_job(j.id).state is JobState.SUCCEEDED:
                            self._record_paid_twice(name, j.id, keep.id, pname)
                        continue
                    except ProviderError as e:
                        self.hooks.retrying(f"cancel duplicate job {j.id}", str(e))
                        continue
                    self.cancelled.append(j.id)
                    self.hooks.duplicate_cancelled(name, j.id, keep.id)
                    rec = self.state.models.get(name)
                    if rec is not None and rec.job is not None and rec.job.job_id == j.id:
                        rec.history.append(rec.job.model_copy(update={"status": "cancelled", "state": "cancelled",
                                                                      "cancelled_by_ftops": True}))
                        rec.job = _job_record(keep, rec.fingerprint, keep.attempt or 1)
                        self.state.touch_model(name)
                        changed = True
        if changed:
            self._save()

    # ------------------------------------------------------------------ waiting

    def _backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(10.0, 0.25 * 2 ** attempt))

    def _wait_rate_limit(self, e: RateLimitError, what: str,
                         before_stop: Callable[[], None] | None = None) -> None:
        wait = e.retry_after if e.retry_after is not None else 1.0
        if wait > self.max_wait:
            if before_stop is not None:
                before_stop()
            self._save()
            resume = time.strftime("%H:%M:%S UTC", time.gmtime(self.clock() + wait))
            raise ApplyStopped(error(
                "apply.rate_limited", f"the provider's rate limit stopped the {what}",
                f"it asks to wait {wait:.0f}s, more than --max-wait {self.max_wait:.0f}s; the state is saved "
                "and everything done so far is kept.", hint=f"re-run `ftops apply` after {resume}"))
        self.hooks.waiting(wait, f"rate limited during {what}")
        self.sleep(wait)


def _job_record(job: RemoteJob, fp: str, attempt: int = 1) -> JobRecord:
    return JobRecord(job_id=job.id, fingerprint=job.declared_fingerprint or fp, status=job.status,
                     state=job.state.value, attempt=job.attempt or attempt,
                     fine_tuned_model=job.fine_tuned_model, trained_tokens=job.trained_tokens,
                     created_at=job.created_at, finished_at=job.finished_at,
                     error=job.error.model_dump() if job.error is not None else None)


def refresh_job_records(state: State, snapshot: RemoteSnapshot) -> bool:
    """Copy fresh job statuses (and fine-tuned model ids) from a snapshot into the state."""
    jobs = {j.id: j for j in snapshot.jobs}
    changed = False
    for rec in state.models.values():
        if rec.job is not None and rec.job.job_id in jobs:
            new = _job_record(jobs[rec.job.job_id], rec.job.fingerprint, rec.job.attempt).model_copy(
                update={"cancelled_by_ftops": rec.job.cancelled_by_ftops})
            if new != rec.job:
                rec.job = new
                changed = True
    return changed
