"""The pure planner: plan(desired models, state, remote snapshot) -> Plan.

No I/O happens here: every input is a value, so plans are testable as data in, data out, can be
computed offline from state alone (snapshot=None), and can never write to a provider. The planner
knows no provider: jobs are matched by their identity group (`Provider.group_key`, computed in the
desired stage and kept in state) and judged by ftops's lifecycle (`JobState`), never by metadata
or status words.

Decision per model, remote first (the provider is the truth, state is a cache):
- a live job (not failed/cancelled) carries this model's identity -> no-op, or adopt when the
  state does not know it yet (lost state, crash after create); live jobs sharing one whole identity
  (attempt included) beyond the first are duplicates -> cancel;
- only dead jobs carry it -> retry, as the next attempt;
- no job carries it -> replace when the model existed before (state or remote), else create; a
  replace cancels the model's superseded jobs still pending or running (`lifecycle.cancel_superseded`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ftops.config.loader import upstream_order
from ftops.engine.model import (
    AttributeChange,
    CancelChange,
    Drift,
    DeploymentAction,
    DeploymentChange,
    DesiredModel,
    FileAction,
    FileChange,
    IntentResolution,
    ModelAction,
    DeleteChange,
    ModelChange,
    MoveChange,
    Plan,
    PlanSummary,
    ProviderInfo,
    RemoteSnapshot,
)
from ftops.providers import JobState, RemoteFile, RemoteJob
from ftops.state import JobRecord, ModelRecord, State

# Most significant first: the reason names the first attribute group that changed.
_REASON_ORDER = [
    ("provider", "replace_because_provider_changed"),
    ("training_file", "replace_because_dataset_changed"),
    ("validation_file", "replace_because_dataset_changed"),
    ("base_model", "replace_because_base_model_changed"),
    ("method", "replace_because_method_changed"),
    ("hyperparameters", "replace_because_hyperparameters_changed"),
    ("grader", "replace_because_grader_changed"),
    ("seed", "replace_because_seed_changed"),
    ("suffix", "replace_because_suffix_changed"),
    ("integrations", "replace_because_integrations_changed"),
]


def diff_attributes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[AttributeChange]:
    """Attribute-level diff (deepdiff), as dotted paths; dataset hashes shortened by the renderers."""
    if not before or before == after:
        return []
    from deepdiff import (
        DeepDiff,  # imported only when something changed: it is slow to import
    )

    dd = DeepDiff(before, after, view="tree", ignore_order=False, verbose_level=2)
    out: list[AttributeChange] = []
    for kind in sorted(dd.keys()):
        for level in dd[kind]:
            path = ".".join(str(p) for p in level.path(output_format="list"))
            t1 = None if "added" in kind else _plain(level.t1)
            t2 = None if "removed" in kind else _plain(level.t2)
            out.append(AttributeChange(path=path, before=t1, after=t2))
    out.sort(key=lambda c: c.path)
    return out


def _plain(v: Any) -> Any:
    from deepdiff.helper import NotPresent

    return None if isinstance(v, NotPresent) else v


def replace_reason(changes: Iterable[AttributeChange]) -> str:
    tops = {c.path.split(".", 1)[0] for c in changes}
    for attr, reason in _REASON_ORDER:
        if attr in tops:
            return reason
    return "replace_because_fingerprint_changed"


def choose_live(jobs: list[RemoteJob]) -> RemoteJob:
    """The job ftops keeps among live jobs of one model and fingerprint: the newest attempt, then the
    oldest job of it (then the lowest id)."""
    top = max(j.attempt or 1 for j in jobs)
    return min((j for j in jobs if (j.attempt or 1) == top), key=lambda j: (j.created_at or 0, j.id))


def upstream_first(desired: list[DesiredModel]) -> list[DesiredModel]:
    """By name, except that a chained model comes after the model it continues from (the work's order)."""
    by_name = {d.name: d for d in desired}

    def upstream_of(name: str) -> str | None:
        return u if (u := by_name[name].upstream) in by_name else None

    return [by_name[n] for n in upstream_order(by_name, upstream_of)]


def record_state(job: JobRecord) -> JobState:
    """A recorded job's lifecycle word (older state files lack it: unknown, which counts as live)."""
    try:
        return JobState(job.state) if job.state else JobState.UNKNOWN
    except ValueError:
        return JobState.UNKNOWN


def _groups_of(rec: ModelRecord | None) -> set[str]:
    return {rec.group} if rec is not None and rec.group else set()


def build_plan(
    desired: list[DesiredModel],
    state: State,
    snapshot: RemoteSnapshot | None,
    *,
    project: str,
    providers: dict[str, ProviderInfo],
    job_creates_per_hour: dict[str, int] | None = None,
    replace: frozenset[str] = frozenset(),
    prune: bool = False,
) -> Plan:
    """Compute the plan. `snapshot=None` means an offline plan from state alone.

    `replace`: models to retrain even though a live job matches (`apply --replace`): a new attempt.
    """
    by_name = {d.name: d for d in desired}
    moves = plan_moves(desired, state)
    if moves:
        state = moved_state(state, moves)
    # Which remote jobs belong to which model: by the identity group of the desired fingerprint or of
    # the fingerprint in state, or by the model name where the provider's identity spells it.
    jobs_by_model: dict[str, list[RemoteJob]] = {}
    job_provider: dict[str, str] = {}  # job id -> the provider entry it lives on
    if snapshot is not None:
        for pname, psnap in sorted(snapshot.providers.items()):
            owners: dict[str, str] = {}
            for name, rec in state.models.items():
                if rec.provider == pname and rec.group:
                    owners[rec.group] = name
            for d in desired:
                if d.provider == pname:
                    owners[d.group] = d.name
            for job in psnap.jobs:
                owner = owners.get(job.group or "") or job.declared_model
                if owner and job.group:
                    jobs_by_model.setdefault(owner, []).append(job)
                    job_provider[job.id] = pname

    # A new model whose fingerprint matches live jobs of an undeclared name the state does not know (a
    # rename after a lost state or `state rm`): those jobs are its own, adopted, never retrained.
    for d in sorted(desired, key=lambda m: m.name):
        if d.name in state.models or jobs_by_model.get(d.name):
            continue
        for oname in sorted(set(jobs_by_model) - set(by_name) - set(state.models)):
            if any(j.declared_fingerprint == d.fingerprint and j.state.live for j in jobs_by_model[oname]):
                jobs_by_model[d.name] = jobs_by_model.pop(oname)
                break

    changes: list[ModelChange] = []
    cancels: list[CancelChange] = []
    drift: list[Drift] = []
    for d in upstream_first(desired):
        models_listed = snapshot.of(d.provider).fine_tuned_models if snapshot is not None else None
        change, extra = _plan_model(d, state, jobs_by_model.get(d.name, []), snapshot is None,
                                    d.name in replace, job_provider, models_listed)
        if change.reason == "drift_model_deleted":
            drift.append(Drift(address=d.address, kind="drift_model_deleted", id=change.fine_tuned_model or "",
                               detail=f"job {change.job_id} finished, but its fine-tuned model is gone from the "
                                      "provider"))
        changes.append(change)
        cancels.extend(extra)

    declared = set(by_name)
    orphan_names = sorted((set(state.models) | set(jobs_by_model)) - declared)
    for name in orphan_names:
        orec = state.models.get(name)
        remote = jobs_by_model.get(name, [])
        newest = max(remote, key=lambda j: (j.created_at or 0, j.id)) if remote else None
        changes.append(ModelChange(
            name=name, action=ModelAction.ORPHAN, reason="orphan_not_in_config",
            provider=orec.provider if orec else "default",
            fingerprint=orec.fingerprint if orec else (newest.declared_fingerprint if newest else None),
            job_id=newest.id if newest else (orec.job.job_id if orec and orec.job else None),
            status=newest.status if newest else (orec.job.status if orec and orec.job else None),
            fine_tuned_model=(newest.fine_tuned_model if newest else
                              (orec.job.fine_tuned_model if orec and orec.job else None)),
        ))

    files = _plan_files(desired, changes, state, snapshot)
    if snapshot is not None:
        for f in files:
            frec = state.file_for(f.sha256, f.provider)
            if f.action is FileAction.UPLOAD and frec is not None:
                drift.append(Drift(address=f"files.{f.path}", kind="drift_file_deleted", id=frec.file_id,
                                   detail=f"uploaded as {frec.file_id}, no longer on the provider: uploaded again"))
    deployments = _plan_deployments(desired, changes, state, snapshot, prune)
    dcount = {a: sum(1 for x in deployments if x.action is a) for a in DeploymentAction}
    counts = {a: sum(1 for c in changes if c.action is a) for a in ModelAction}
    summary = PlanSummary(
        upload=sum(1 for f in files if f.action is FileAction.UPLOAD),
        create=counts[ModelAction.CREATE], replace=counts[ModelAction.REPLACE],
        retry=counts[ModelAction.RETRY], unchanged=counts[ModelAction.NOOP],
        adopt=counts[ModelAction.ADOPT], orphan=counts[ModelAction.ORPHAN], cancel=len(cancels),
        deploy=dcount[DeploymentAction.CREATE], deploy_update=dcount[DeploymentAction.UPDATE],
        deploy_delete=dcount[DeploymentAction.DELETE],
    )
    spending = [c for c in changes if c.action.creates_job and c.cost is not None]
    priced = [c.cost.usd for c in spending if c.cost and c.cost.usd is not None]
    # One unpriced model makes the total unknown (and --max-cost refuses): never a partial sum.
    cost: float | None = round(sum(priced), 2) if len(priced) == len(spending) else None
    warnings: list[dict[str, Any]] = []
    for pname, limit in sorted((job_creates_per_hour or {}).items()):
        n_creates = sum(1 for c in changes if c.action.creates_job and c.provider == pname)
        if limit and n_creates > limit:
            warnings.append({
                "code": "plan.rate_limit", "severity": "warning",
                "summary": f"{n_creates} jobs to create on `{pname}`, but it allows {limit} per hour",
                "detail": "apply creates jobs until the provider answers 429, waits when the wait is short, and "
                          "otherwise stops with the state saved and says when to re-run; re-running resumes.",
            })
    intents = [_resolve_intent(i.kind, i.key, i.model, i.provider, snapshot) for i in state.intents]
    default = providers.get("default") or next(iter(providers.values()), ProviderInfo(type="", endpoint=""))
    return Plan(
        intents=intents,
        project=project, provider=default.type, endpoint=default.endpoint, providers=dict(sorted(providers.items())),
        offline=snapshot is None, state_lineage=state.lineage, state_serial=state.serial,
        files=files, models=changes, cancels=sorted(cancels, key=lambda c: (c.name, c.job_id)), moves=moves,
        drift=sorted(drift, key=lambda x: (x.address, x.id)), summary=summary.model_copy(update={"move": len(moves)}),
        deployments=deployments, prune=prune,
        cost_usd=cost, cost_approximate=any(c.cost and c.cost.approximate for c in spending),
        warnings=warnings,
    )


def _resolve_intent(kind: str, key: str, model: str, provider: str,
                    snapshot: RemoteSnapshot | None) -> IntentResolution:
    found = None
    if snapshot is not None and kind == "upload_file":
        found = next((f.id for f in snapshot.of(provider).files if f.sha256 == key), None)
    elif snapshot is not None and kind == "create_job":
        group, sep, attempt = key.rpartition("#")
        if sep:
            found = next((j.id for j in snapshot.of(provider).jobs
                          if j.group == group and str(j.attempt or 1) == attempt), None)
        else:  # written before identities had groups: the key is the bare fingerprint
            found = next((j.id for j in snapshot.of(provider).jobs
                          if j.declared_fingerprint == key and j.declared_model == model), None)
    return IntentResolution(kind=kind, key=key, model=model, found=found)


def _plan_model(d: DesiredModel, state: State, remote: list[RemoteJob], offline: bool,
                force_new: bool, job_provider: dict[str, str],
                models_listed: list[str] | None = None) -> tuple[ModelChange, list[CancelChange]]:
    rec = state.models.get(d.name)
    common: dict[str, Any] = dict(
        name=d.name, provider=d.provider, fingerprint=d.fingerprint, group=d.group, seed=d.seed,
        attributes=d.attributes, body=d.body, datasets=[ds.sha256 for ds in d.datasets], cost=d.cost,
        source=d.source, prevent_destroy=d.prevent_destroy,
        waits_for=None if d.upstream_ready else d.upstream,
    )
    changes = diff_attributes(rec.spec if rec else None, d.attributes)
    # A moved record keeps the identity group its jobs carry (the old name's): same fingerprint, same model.
    groups = {d.group} | ({rec.group} if rec is not None and rec.group and rec.fingerprint == d.fingerprint
                          and rec.provider == d.provider else set())
    if rec is None:
        groups |= {j.group for j in remote if j.group and j.declared_fingerprint == d.fingerprint}
    same_rec = rec is not None and rec.group in groups and rec.provider == d.provider

    if offline:
        if same_rec and rec is not None and rec.job:
            if force_new:
                return ModelChange(action=ModelAction.RETRY, reason="retry_because_replace_requested",
                                   attempt=rec.attempt + 1, job_id=rec.job.job_id, status=rec.job.status,
                                   **common), []
            if record_state(rec.job).dead:
                return ModelChange(action=ModelAction.RETRY, reason=f"retry_because_job_{record_state(rec.job).value}",
                                   attempt=rec.attempt + 1, job_id=rec.job.job_id, status=rec.job.status,
                                   error=rec.job.error, **common), []
            return ModelChange(action=ModelAction.NOOP, reason="job_exists_for_fingerprint", changes=changes,
                               attempt=rec.attempt, job_id=rec.job.job_id, status=rec.job.status,
                               fine_tuned_model=rec.job.fine_tuned_model, **common), []
        if rec:
            return ModelChange(action=ModelAction.REPLACE, reason=replace_reason(changes),
                               before_fingerprint=rec.fingerprint, changes=changes, **common), []
        return ModelChange(action=ModelAction.CREATE, reason="create_new_model", **common), []

    same = [j for j in remote if j.group in groups and job_provider.get(j.id, d.provider) == d.provider]
    live = [j for j in same if j.state.live]
    top_attempt = max([j.attempt or 1 for j in same] + ([rec.attempt] if same_rec and rec else []), default=0)
    cancels: list[CancelChange] = []
    if live:
        job = choose_live(live)
        # Every other live job with the kept job's whole identity is a duplicate (two CI runs, a lost
        # answer): cancelled, keeping the oldest. A different attempt is deliberate, never a duplicate.
        known_dupes = {h.job_id for h in (rec.history if rec else []) if h.duplicate_of}
        for j in sorted(live, key=lambda j: (j.created_at or 0, j.id)):
            if j.id == job.id or (j.attempt or 1) != (job.attempt or 1):
                continue
            if not j.state.terminal:
                cancels.append(CancelChange(name=d.name, provider=d.provider, job_id=j.id, status=j.status,
                                            reason="cancel_duplicate", kept_job_id=job.id))
            elif j.id not in known_dupes:
                # Finished before anyone could cancel it: paid twice. Recorded (and so reported) once.
                cancels.append(CancelChange(name=d.name, provider=d.provider, job_id=j.id, status=j.status,
                                            reason="record_finished_duplicate", kept_job_id=job.id))
        if force_new:
            return ModelChange(action=ModelAction.RETRY, reason="retry_because_replace_requested",
                               attempt=top_attempt + 1, job_id=job.id, status=job.status, **common), cancels
        if job.group and job.group != d.group:
            common["group"] = job.group  # recorded as the group its job carries (a moved model)
        if (models_listed is not None and job.state is JobState.SUCCEEDED and job.fine_tuned_model
                and job.fine_tuned_model not in models_listed):
            # Deleted outside ftops: retrained as a new attempt, so the dead job is never re-adopted.
            return ModelChange(action=ModelAction.RETRY, reason="drift_model_deleted", attempt=top_attempt + 1,
                               job_id=job.id, status=job.status, fine_tuned_model=job.fine_tuned_model,
                               **common), cancels
        known = rec is not None and rec.job is not None and rec.job.job_id == job.id
        # Only metadata can differ here (it is outside the fingerprint): recorded, never retrained.
        reason = ("adopt_remote_job_with_fingerprint" if not known else
                  "metadata_changed_not_retrained" if changes else "job_exists_for_fingerprint")
        return ModelChange(
            action=ModelAction.NOOP if known else ModelAction.ADOPT, reason=reason, attempt=job.attempt or 1,
            changes=changes, job_id=job.id, status=job.status, fine_tuned_model=job.fine_tuned_model,
            **common), cancels
    if same:
        last = max(same, key=lambda j: (j.attempt or 1, j.created_at or 0, j.id))
        err = last.error.model_dump() if last.error is not None else None
        return ModelChange(action=ModelAction.RETRY, reason=f"retry_because_job_{last.state.value}",
                           attempt=top_attempt + 1, job_id=last.id, status=last.status, error=err, **common), []
    if rec is not None or remote:
        if d.cancel_superseded:
            for j in sorted(remote, key=lambda j: (j.created_at or 0, j.id)):
                if j.state in (JobState.PENDING, JobState.RUNNING):
                    cancels.append(CancelChange(name=d.name, provider=job_provider.get(j.id, d.provider),
                                                job_id=j.id, status=j.status, reason="cancel_superseded"))
        before_fp = rec.fingerprint if rec else max(remote, key=lambda j: (j.created_at or 0, j.id)).declared_fingerprint
        return ModelChange(action=ModelAction.REPLACE, reason=replace_reason(changes), attempt=max(top_attempt, 0) + 1,
                           before_fingerprint=before_fp, changes=changes, **common), cancels
    return ModelChange(action=ModelAction.CREATE, reason="create_new_model", **common), []


def _plan_deployments(desired: list[DesiredModel], changes: list[ModelChange], state: State,
                      snapshot: RemoteSnapshot | None, prune: bool) -> list[DeploymentChange]:
    """`models.NAME.deployment`: created once the model's job succeeded (until then it waits), updated when
    its settings or served model change, and -- for deployments no declaration wants any more (a replaced
    fingerprint, a removed model) -- kept until `prune`, never deleted under `prevent_destroy`."""
    by_change = {c.name: c for c in changes}
    recorded = {(r.provider, r.key): r for r in state.deployments.values() if r.key}
    remote: dict[tuple[str, str], Any] = {}
    if snapshot is not None:
        for pname, psnap in snapshot.providers.items():
            for dep in psnap.deployments:
                remote[(pname, dep.key or dep.id)] = dep
    else:
        remote = {k: r for k, r in recorded.items()}
    out: list[DeploymentChange] = []
    wanted: set[tuple[str, str]] = set()
    for d in sorted(desired, key=lambda m: m.name):
        if d.deployment is None:
            continue
        c = by_change[d.name]
        key = (d.provider, d.deployment_key)
        wanted.add(key)
        cur = remote.get(key)
        model_id = None if c.action.creates_job else c.fine_tuned_model
        common: dict[str, Any] = dict(name=d.name, provider=d.provider, key=d.deployment_key, group=d.group,
                                      fingerprint=d.fingerprint, attempt=c.attempt, settings=dict(d.deployment),
                                      cost_per_hour=d.deployment_cost_per_hour, prevent_destroy=d.prevent_destroy)
        if cur is not None:
            cur_id = getattr(cur, "id", None) or getattr(cur, "deployment_id", None)
            cur_model = getattr(cur, "model", None) or getattr(cur, "model_id", "")
            before = dict(cur.settings)
            same_settings = all(before.get(k) == v for k, v in d.deployment.items())
            same = (model_id in (None, cur_model)) and same_settings
            reason = ("deployment_matches" if same else
                      "update_because_settings_changed" if not same_settings else "update_because_model_replaced")
            out.append(DeploymentChange(action=DeploymentAction.NOOP if same else DeploymentAction.UPDATE,
                                        reason=reason,
                                        deployment_id=cur_id, model_id=model_id or cur_model, before=before,
                                        status=cur.status, endpoint=cur.endpoint, **common))
        elif model_id:
            out.append(DeploymentChange(action=DeploymentAction.CREATE, reason="create_after_job_succeeded",
                                        model_id=model_id, **common))
        else:
            out.append(DeploymentChange(action=DeploymentAction.WAIT, reason="waits_for_job",
                                        status=c.status, **common))
    protected = {d.name for d in desired if d.prevent_destroy}
    for key, dep in sorted(remote.items()):
        if key in wanted:
            continue
        rec = recorded.get(key)
        name = rec.model if rec is not None else key[1]
        keep_anyway = name in protected or (rec is not None and rec.prevent_destroy)
        action = DeploymentAction.DELETE if prune and not keep_anyway else DeploymentAction.KEEP
        reason = ("delete_because_pruned" if action is DeploymentAction.DELETE else
                  "kept_because_prevent_destroy" if prune else "kept_until_prune")
        out.append(DeploymentChange(
            name=name, provider=key[0], action=action, reason=reason, key=key[1],
            deployment_id=getattr(dep, "id", None) or getattr(dep, "deployment_id", None),
            model_id=getattr(dep, "model", None) or getattr(dep, "model_id", None), settings=dict(dep.settings),
            status=dep.status, endpoint=dep.endpoint, prevent_destroy=keep_anyway))
    return out


def _plan_files(desired: list[DesiredModel], changes: list[ModelChange], state: State,
                snapshot: RemoteSnapshot | None) -> list[FileChange]:
    """One entry per distinct (provider, dataset) a job to be created needs; shared datasets upload
    once to each provider."""
    creating = {c.name for c in changes if c.action.creates_job}
    needed: dict[tuple[str, str], tuple[str, int, list[str], dict[str, Any]]] = {}
    for d in sorted(desired, key=lambda m: m.name):
        if d.name not in creating:
            continue
        for ds in d.datasets:
            conv: dict[str, Any] = ({"converted_to": ds.converted_to, "source_sha256": ds.source_sha256,
                     "source_bytes": ds.source_bytes} if ds.converted_to else {})
            entry = needed.setdefault((d.provider, ds.sha256), (ds.path, ds.bytes, [], conv))
            entry[2].append(d.name)

    out: list[FileChange] = []
    for (pname, sha), (path, size, models, conv) in sorted(needed.items(), key=lambda kv: (kv[0][0], kv[1][0])):
        live: dict[str, RemoteFile] = {}
        by_sha: dict[str, RemoteFile] = {}
        if snapshot is not None:
            for f in sorted(snapshot.of(pname).files, key=lambda f: (f.created_at or 0, f.id)):
                if not f.usable:
                    continue
                live[f.id] = f
                if f.sha256 and f.sha256 not in by_sha:
                    by_sha[f.sha256] = f
        rec = state.file_for(sha, pname)
        if rec and (snapshot is None or (rec.file_id in live and live[rec.file_id].bytes in (size, None))):
            out.append(FileChange(provider=pname, sha256=sha, path=path, bytes=size, action=FileAction.REUSE,
                                  filename=rec.filename, file_id=rec.file_id, models=models, **conv))
        elif sha in by_sha and by_sha[sha].bytes in (size, None):
            f = by_sha[sha]
            out.append(FileChange(provider=pname, sha256=sha, path=path, bytes=size, action=FileAction.ADOPT,
                                  filename=f.filename, file_id=f.id, models=models, **conv))
        else:
            out.append(FileChange(provider=pname, sha256=sha, path=path, bytes=size, action=FileAction.UPLOAD,
                                  filename="", models=models, **conv))
    return out


def restrict_plan(plan: Plan, targets: frozenset[str]) -> Plan:
    """The plan limited to `targets` (`--target`, already closed over dependencies): their model
    records, the datasets their jobs need, their cancels; totals recomputed. Other models are left
    out of the plan, neither changed nor reported as orphans."""
    models = [m for m in plan.models if m.name in targets]
    files = [f.model_copy(update={"models": [n for n in f.models if n in targets]})
             for f in plan.files if set(f.models) & targets]
    cancels = [k for k in plan.cancels if k.name in targets]
    counts = {a: sum(1 for c in models if c.action is a) for a in ModelAction}
    summary = PlanSummary(
        upload=sum(1 for f in files if f.action is FileAction.UPLOAD), create=counts[ModelAction.CREATE],
        replace=counts[ModelAction.REPLACE], retry=counts[ModelAction.RETRY], unchanged=counts[ModelAction.NOOP],
        adopt=counts[ModelAction.ADOPT], orphan=counts[ModelAction.ORPHAN], cancel=len(cancels))
    spending = [c for c in models if c.action.creates_job and c.cost is not None]
    priced = [c.cost.usd for c in spending if c.cost and c.cost.usd is not None]
    cost = round(sum(priced), 2) if len(priced) == len(spending) else None
    return plan.model_copy(update={
        "models": models, "files": files, "cancels": cancels, "summary": summary, "cost_usd": cost,
        "cost_approximate": any(c.cost and c.cost.approximate for c in spending)})


def plan_moves(desired: list[DesiredModel], state: State) -> list[MoveChange]:
    """State records to rename: a model's `moved_from:` names an undeclared record, or (without it) a new
    model's fingerprint matches an orphan's on the same provider -- never retrained under a new name."""
    declared = {d.name for d in desired}
    orphans = {n: r for n, r in state.models.items() if n not in declared}
    out: list[MoveChange] = []
    for d in sorted(desired, key=lambda m: m.name):
        if d.name in state.models:
            continue
        if d.moved_from and d.moved_from in orphans:
            out.append(MoveChange(from_name=d.moved_from, to_name=d.name, reason="move_because_moved_from",
                                  fingerprint=orphans.pop(d.moved_from).fingerprint))
            continue
        match = next((n for n, r in sorted(orphans.items())
                      if r.fingerprint == d.fingerprint and r.provider == d.provider), None)
        if match is not None:
            orphans.pop(match)
            out.append(MoveChange(from_name=match, to_name=d.name, reason="move_because_fingerprint_matches_orphan",
                                  fingerprint=d.fingerprint))
    return out


def moved_state(state: State, moves: list[MoveChange]) -> State:
    """A copy of `state` with the moved records renamed (apply does the same to the real state)."""
    out = state.model_copy(deep=True)
    for mv in moves:
        rec = out.models.pop(mv.from_name)
        rec.name = mv.to_name
        out.models[mv.to_name] = rec
    return out


def plan_deletes(plan: Plan, desired: list[DesiredModel], state: State, snapshot: RemoteSnapshot | None, *,
                 destroy: frozenset[str] = frozenset()) -> list[DeleteChange]:
    """What `--prune` deletes: for each orphan (and each model in `destroy`) cancel its unfinished jobs and
    delete its fine-tuned models; older fine-tuned models of declared models (never the last succeeded
    one, which `output` hands out); uploaded files no remaining declared model uses."""
    remote = {j.id: j for j in (snapshot.jobs if snapshot is not None else [])}
    gone = {m.name for m in plan.models if m.action is ModelAction.ORPHAN} | set(destroy)
    out: list[DeleteChange] = []
    for name in sorted(set(state.models) | gone):
        rec = state.models.get(name)
        jobs = [j for j in ([rec.job] if rec and rec.job else []) + (list(rec.history) if rec else [])]
        extra = [j for j in remote.values() if j.declared_model == name and j.id not in {r.job_id for r in jobs}]
        keep = None
        if name not in gone:
            ok = [j for j in jobs if j.fine_tuned_model and record_state(j) is JobState.SUCCEEDED]
            keep = ok[0].job_id if ok and rec and rec.job and ok[0].job_id == rec.job.job_id else (
                max(ok, key=lambda j: (j.finished_at or 0, j.job_id)).job_id if ok else None)
        pname = rec.provider if rec else "default"
        seen_models: set[str] = set()
        for j in jobs:
            fresh = remote.get(j.job_id)
            st = fresh.state if fresh is not None else record_state(j)
            ftm = fresh.fine_tuned_model if fresh is not None else j.fine_tuned_model
            if name in gone and not st.terminal:
                out.append(DeleteChange(kind="job", name=name, provider=pname, id=j.job_id,
                                        status=fresh.status if fresh else j.status,
                                        reason="destroy" if name in destroy else "delete_orphan"))
            if ftm and j.job_id != keep and ftm not in seen_models and (name in gone or st is JobState.SUCCEEDED):
                seen_models.add(ftm)
                reason = "destroy" if name in destroy else "delete_orphan" if name in gone else "delete_superseded_model"
                out.append(DeleteChange(kind="model", name=name, provider=pname, id=ftm, reason=reason))
        for rj in extra:
            if name in gone and not rj.state.terminal:
                out.append(DeleteChange(kind="job", name=name, provider=pname, id=rj.id, status=rj.status,
                                        reason="destroy" if name in destroy else "delete_orphan"))
            if name in gone and rj.fine_tuned_model and rj.fine_tuned_model not in seen_models:
                seen_models.add(rj.fine_tuned_model)
                out.append(DeleteChange(kind="model", name=name, provider=pname, id=rj.fine_tuned_model,
                                        reason="destroy" if name in destroy else "delete_orphan"))
    used = {(d.provider, ds.sha256) for d in desired if d.name not in destroy for ds in d.datasets}
    files: dict[tuple[str, str], str] = {}
    for f in state.files.values():
        files[(f.provider, f.file_id)] = f.sha256
    if snapshot is not None:
        for pname, ps in snapshot.providers.items():
            for rf in ps.files:
                if rf.sha256 and rf.usable:
                    files[(pname, rf.id)] = rf.sha256
        live_ids = {(pname, rf.id) for pname, ps in snapshot.providers.items() for rf in ps.files if rf.usable}
        files = {k: v for k, v in files.items() if k in live_ids}
    for (pname, file_id), sha in sorted(files.items()):
        if (pname, sha) not in used:
            out.append(DeleteChange(kind="file", provider=pname, id=file_id, reason="delete_unused_file"))
    return out
