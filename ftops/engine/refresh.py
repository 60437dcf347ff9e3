"""Refresh: read each provider into a RemoteSnapshot with a handful of list calls.

Cost is independent of the number of models: per provider entry in use, one paginated list of
fine-tuning files, one paginated list of this project's jobs (the provider filters by its own
identity carrier) and, where the provider lists them, one list of models (its catalogue, with base
models' dates; and its fine-tuned models, to see one deleted outside ftops). Jobs the state knows but
the listing did not return are fetched one by one
(normally none): only a definite 404 lets them count as gone; any other error aborts the refresh
(an auth error is never "the job is gone").
"""

from __future__ import annotations

from collections.abc import Mapping

from ftops.engine.model import ProviderSnapshot, RemoteSnapshot
from ftops.providers import NotFoundError, Provider, RemoteJob
from ftops.state import State


def refresh_provider(provider: Provider, name: str, state: State, project: str) -> ProviderSnapshot:
    start = int(provider.requests_sent)
    files = provider.list_files()
    jobs = provider.list_jobs(project)
    # One more request where the provider lists models: its catalogue (base models and their dates) and/or
    # its fine-tuned models (to see one deleted outside ftops).
    caps = provider.capabilities
    listed = provider.list_models() if (caps.model_catalogue or caps.lists_fine_tuned_models) else []
    models = listed if caps.model_catalogue else []
    fine_tuned = [m.id for m in listed] if caps.lists_fine_tuned_models else None
    seen = {j.id for j in jobs}
    missing: list[RemoteJob] = []
    for rec in state.models.values():
        if rec.provider != name or rec.job is None or rec.job.job_id in seen:
            continue
        try:
            job = provider.get_job(rec.job.job_id)
        except NotFoundError:
            continue
        if job.group is None:  # a job the provider cannot attribute (e.g. adopted by id): the state's word
            job = job.model_copy(update={"group": rec.group, "attempt": rec.attempt})
        missing.append(job)
        seen.add(job.id)
    deployments = provider.list_deployments(project) if provider.capabilities.deployment_fields else []
    used = int(provider.requests_sent) - start
    return ProviderSnapshot(endpoint=provider.endpoint, files=files, jobs=jobs + missing, models=models,
                            fine_tuned_models=fine_tuned, deployments=deployments,
                            requests=used)


def refresh(providers: Mapping[str, Provider], state: State, project: str) -> RemoteSnapshot:
    """Snapshot every provider entry in `providers` (the workspace passes those in use)."""
    return RemoteSnapshot(providers={name: refresh_provider(p, name, state, project)
                                     for name, p in sorted(providers.items())})
