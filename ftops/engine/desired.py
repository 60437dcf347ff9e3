"""Desired models: the config resolved into exactly what would be sent, fingerprinted.

This stage reads the local disk (dataset hashes through the stat cache, validation reports through
their sha256-keyed cache) but never the network; a warm run reads no dataset bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftops.config import LoadedConfig
from ftops.config.interpolate import chain_upstream
from ftops.config.loader import chain_order, root_base_model
from ftops.datasets import (
    DatasetReport,
    HashCache,
    check_dataset,
    cross_check,
    estimate_cost,
    resolve_n_epochs,
)
from ftops.datasets.convert import ConversionError
from ftops.diagnostics import Diagnostic, FtopsError, SourceRange, error, warning
from ftops.engine.fingerprint import derived_seed, file_placeholder, fingerprint
from ftops.engine.hooks import Hooks
from ftops.engine.model import KNOWN_AFTER_APPLY, CostInfo, DatasetRef, DesiredModel, RemoteSnapshot
from ftops.engine.plan import record_state
from ftops.providers import JobState, ModelSpec, Problem, Provider
from ftops.state import State


@dataclass
class DesiredSet:
    """The desired models plus what was learnt about their datasets on the way."""

    models: list[DesiredModel]
    reports: dict[tuple[str, str, str, str], DatasetReport] = field(default_factory=dict)  # sha, method, base, purpose
    diagnostics_by_sha: dict[str, list[Diagnostic]] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)

    def dataset_diagnostics(self, shas: set[str]) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        for sha in sorted(shas):
            out.extend(self.diagnostics_by_sha.get(sha, []))
        return out


def model_spec(loaded: LoadedConfig, name: str) -> ModelSpec:
    """A declared model in the provider-neutral vocabulary the providers validate and translate."""
    cfg = loaded.config
    m = cfg.models[name]
    _pname, pc = cfg.provider_of(name)
    declared_hp = m.hyperparameters.model_dump(exclude_unset=True) if m.hyperparameters is not None else {}
    return ModelSpec(
        name=name, base_model=root_base_model(cfg, name), method=m.method, hyperparameters=declared_hp,
        options={**pc.options, **m.options}, options_from_model=frozenset(m.options), suffix=m.suffix,
        seed=m.seed, seed_declared=m.seed is not None, metadata=dict(m.metadata),
        integrations=[i.model_dump(exclude_none=True, mode="json") for i in m.integrations],
        grader=getattr(m, "grader", None), response_format=getattr(m, "response_format", None),
        has_validation_file=m.validation_file is not None)


def provider_problems(loaded: LoadedConfig, providers: Mapping[str, Provider]) -> list[Diagnostic]:
    """Every declared field a model's provider cannot honour, with file:line: before any request."""
    out: list[Diagnostic] = []
    cfg = loaded.config
    for name in sorted(cfg.models):
        pname, _pc = cfg.provider_of(name)
        prov = providers[pname]
        for p in prov.validate(model_spec(loaded, name)):
            out.append(_problem_diagnostic(loaded, name, pname, p))
        if cfg.models[name].deployment is not None:
            for p in prov.validate_model_deployment(model_spec(loaded, name), cfg.models[name].deployment or {}):
                p = p.model_copy(update={"path": ("deployment", *p.path)})
                out.append(_problem_diagnostic(loaded, name, pname, p))
    return out


def _problem_diagnostic(loaded: LoadedConfig, name: str, pname: str, p: Problem) -> Diagnostic:
    if p.on_provider:
        where = ("provider",) if pname == "default" else ("providers", pname)
        rng = loaded.range_of(*where, *p.path)
    else:
        rng = loaded.range_of("models", name, *p.path)
    make = error if p.severity == "error" else warning
    return make(p.code, p.message, f"model `{name}` is trained by provider `{pname}`; nothing was sent.",
                range=rng, hint=p.hint, address=f"models.{name}")


def upstream_outputs(state: State, snapshot: RemoteSnapshot | None) -> Callable[[DesiredModel], str | None]:
    """For chains: the fine-tuned model of an upstream's desired fingerprint, once its job succeeded
    (the provider's word when refreshed, else the state's); None until then."""
    def find(u: DesiredModel) -> str | None:
        if snapshot is not None:
            ok = [j for j in snapshot.of(u.provider).jobs
                  if j.group == u.group and j.state is JobState.SUCCEEDED and j.fine_tuned_model]
            best = max(ok, key=lambda j: (j.attempt or 1, j.created_at or 0, j.id)) if ok else None
            return best.fine_tuned_model if best else None
        rec = state.models.get(u.name)
        if rec is not None and rec.fingerprint == u.fingerprint and rec.provider == u.provider and rec.job \
                and record_state(rec.job) is JobState.SUCCEEDED:
            return rec.job.fine_tuned_model
        return None
    return find


def build_desired(loaded: LoadedConfig, providers: Mapping[str, Provider], *, cache_dir: Path,
                  hash_cache: HashCache, hooks: Hooks | None = None,
                  upstream_model: Callable[[DesiredModel], str | None] | None = None) -> DesiredSet:
    """Resolve every declared model through its provider: validate, translate, fingerprint, price.

    A chained model (`base_model: ${models.U.fine_tuned_model}`) comes after U: its base model is
    `upstream_model(U)` when known, else "known after apply" and its fingerprint includes U's.

    Provider problems stop here (with file:line), before any dataset is read or request sent.
    `hooks.dataset_progress` follows the hashing and checking of each dataset read.
    """
    on = hooks or Hooks()
    problems = provider_problems(loaded, providers)
    if any(d.is_error for d in problems):
        raise FtopsError(problems)
    cfg = loaded.config
    project = cfg.project
    result = DesiredSet(models=[], warnings=list(problems))
    seen_diag: set[tuple[str, str, str, str]] = set()
    seen_conv: set[tuple[str, str]] = set()
    checked_pairs: set[tuple[str, str]] = set()

    def dataset(name: str, which: str, display: str, method: str, base: str,
                prov: Provider) -> tuple[DatasetRef, DatasetReport]:
        uploads_api = prov.capabilities.uploads_api
        path = loaded.dataset_path(name, which)
        sha = hash_cache.sha256(path, lambda done, total: on.dataset_progress(display, "hashing", done, total))
        purpose = "validation" if which == "validation_file" else "training"
        key = (sha, method, base, purpose)
        report = result.reports.get(key)
        if report is None:
            report = check_dataset(path, method=method, base_model=base, cache_dir=cache_dir, sha256=sha,
                                   uploads_api=uploads_api, purpose=purpose,
                                   on_progress=lambda done, total: on.dataset_progress(display, "checking", done,
                                                                                       total))
            result.reports[key] = report
        if key not in seen_diag:
            seen_diag.add(key)
            result.diagnostics_by_sha.setdefault(sha, []).extend(
                report.diagnostics(display, accept=list(cfg.allow_secrets)))
        st = report.stats
        ref = DatasetRef(path=display, sha256=sha, bytes=report.size, format=report.format,
                         valid=report.accepting(list(cfg.allow_secrets)).valid,
                         examples=st.examples, tokens_per_epoch=st.trained_tokens_per_epoch,
                         approximate=st.approximate)
        return _converted(ref, path, prov, method, base), report

    def _converted(ref: DatasetRef, path: Path, prov: Provider, method: str, base: str) -> DatasetRef:
        """The provider's converted copy (what is uploaded and fingerprinted), when it wants one;
        examples it cannot convert become dataset errors with file:line."""
        if not ref.valid:
            return ref
        try:
            conv = prov.convert(path, sha256=ref.sha256, base_model=base, method=method, cache_dir=cache_dir)
        except ConversionError as e:
            key = (ref.sha256, e.target)
            if key not in seen_conv:
                seen_conv.add(key)
                title = prov.capabilities.title or prov.capabilities.name
                result.diagnostics_by_sha.setdefault(ref.sha256, []).extend(
                    error(p.code, p.message, f"{title} trains on {e.target}; this example has no equivalent "
                          "there, so nothing was converted or sent.", range=SourceRange(ref.path, p.line),
                          hint=p.hint) for p in e.problems)
            return ref.model_copy(update={"valid": False})
        if conv is None:
            return ref
        return ref.model_copy(update={"sha256": conv.sha256, "bytes": conv.bytes, "converted_to": conv.target,
                                      "source_sha256": ref.sha256, "source_bytes": ref.bytes})

    done: dict[str, DesiredModel] = {}
    for name in chain_order(cfg):
        m = cfg.models[name]
        pname, pc = cfg.provider_of(name)
        prov = providers[pname]
        caps = prov.capabilities
        method = m.method
        base = root_base_model(cfg, name)  # a chain's family: datasets, tokens and prices
        up = chain_upstream(m.base_model)
        up_model = upstream_model(done[up]) if up and upstream_model is not None else None
        train_ref, train_report = dataset(name, "training_file", m.training_file, method, base, prov)
        val_ref = None
        if m.validation_file:
            val_ref, val_report = dataset(name, "validation_file", m.validation_file, method, base, prov)
            pair = (train_ref.sha256, val_ref.sha256)
            if pair not in checked_pairs:  # a pair shared by several models is reported once
                checked_pairs.add(pair)
                for issue in cross_check(train_report, val_report, cache_dir=cache_dir):
                    result.warnings.append(warning(
                        f"dataset.{issue.code}", issue.message,
                        range=SourceRange(m.validation_file, issue.line or 1), hint=issue.hint))

        spec = model_spec(loaded, name)
        # A renamed model (`moved_from:`) keeps the seed derived from its old name: same fingerprint, no retrain.
        seed_name = getattr(m, "moved_from", None) or name
        seed = m.seed if m.seed is not None else (derived_seed(project, seed_name) if caps.seed else None)
        spec = spec.model_copy(update={"seed": seed})
        if up:
            spec = spec.model_copy(update={"base_model": up_model or KNOWN_AFTER_APPLY})
        body = prov.translate(spec, training=file_placeholder(train_ref.sha256),
                              validation=file_placeholder(val_ref.sha256) if val_ref else None)
        material = prov.fingerprint_material(body)
        # Until the upstream's fine-tuned model exists, the upstream's fingerprint stands in for it.
        fp = fingerprint({**material, "after": done[up].fingerprint} if up and not up_model else material)
        hp = m.hyperparameters.normalized() if m.hyperparameters is not None else {}
        attributes: dict[str, Any] = {
            "base_model": (up_model or f"{KNOWN_AFTER_APPLY} models.{up}.fine_tuned_model") if up else m.base_model,
            "training_file": file_placeholder(train_ref.sha256),
            "validation_file": file_placeholder(val_ref.sha256) if val_ref else None,
            "method": method,
            "hyperparameters": hp,
            "suffix": m.suffix,
            "seed": seed,
            "metadata": dict(m.metadata),
        }
        attributes["provider"] = f"{pname} ({pc.provider_type})"
        if spec.options:
            attributes["options"] = dict(sorted(spec.options.items()))
        if spec.integrations:
            attributes["integrations"] = spec.integrations
        if spec.grader is not None:
            attributes["grader"] = spec.grader
        if spec.response_format is not None:
            attributes["response_format"] = spec.response_format

        requested_epochs = hp.get("n_epochs", "auto")
        n_epochs = resolve_n_epochs(train_ref.examples, requested_epochs)
        trained = train_ref.tokens_per_epoch * n_epochs
        cost = _price(caps, base, method, trained, n_epochs, dict(cfg.pricing), train_ref.approximate)
        rng = loaded.range_of("models", name)
        lifecycle = getattr(m, "lifecycle", None)
        group = prov.group_key(project, name, fp)
        dep = dict(m.deployment) if m.deployment is not None else None
        result.models.append(done.setdefault(name, DesiredModel(
            name=name, provider=pname, provider_type=pc.provider_type, fingerprint=fp,
            group=prov.group_key(project, name, fp), seed=seed, seed_declared=m.seed is not None,
            attributes=attributes, body=body,
            cancel_superseded=bool(getattr(lifecycle, "cancel_superseded", True)),
            prevent_destroy=bool(getattr(lifecycle, "prevent_destroy", False)),
            moved_from=getattr(m, "moved_from", None),
            training=train_ref, validation=val_ref, cost=cost, source=str(rng) if rng else "",
            deployment=dep, deployment_key=prov.model_deployment_key(project, name, group) if dep is not None else "",
            deployment_cost_per_hour=prov.deployment_cost_per_hour(dep) if dep is not None else None,
            upstream=up, upstream_ready=bool(up_model) or not up,
        )))
    result.models.sort(key=lambda d: d.name)
    hash_cache.save()
    return result


def _price(caps: Any, base_model: str, method: str, trained: int, n_epochs: int, overrides: dict[str, float],
           approximate: bool) -> CostInfo:
    """Trained tokens x price: the user's `pricing:` first, then the provider's table (exact ids only).

    A provider declares its prices in its capabilities, or names the shipped table
    (ftops/data/pricing.json, `estimate_cost`). Tokens are counted with tiktoken, so for providers whose
    tokenizers differ the count (and the cost) is approximate, and said to be.
    """
    foreign = not caps.tiktoken_counts
    if caps.price_table == "shipped" or overrides:
        est = estimate_cost(base_model, trained, method=method, overrides=overrides or None)
        if est.usd is not None or not caps.prices:
            return CostInfo(usd=est.usd, trained_tokens=trained, n_epochs=n_epochs, price_per_1m=est.price_per_1m,
                            approximate=est.approximate or approximate or foreign, note=est.note)
    price = (caps.prices.get(method) or {}).get(base_model)
    if price is None:
        return CostInfo(usd=None, trained_tokens=trained, n_epochs=n_epochs, approximate=approximate or foreign,
                        note=f"no published {caps.title or caps.name} price for {base_model}; add `pricing:` to "
                             "estimate it")
    return CostInfo(usd=round(trained * price / 1_000_000, 4), trained_tokens=trained, n_epochs=n_epochs,
                    price_per_1m=price, approximate=True,
                    note=f"{caps.title or caps.name} price table"
                         + ("" if caps.prices_checked else " (not re-checked against the provider's pricing page)")
                         + "; tokens counted with tiktoken")
