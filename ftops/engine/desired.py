"""Desired models: the config resolved into exactly what would be sent, fingerprinted.

This stage reads the local disk (dataset hashes through the stat cache, validation reports through
their sha256-keyed cache) but never the network; a warm run reads no dataset bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftops.config import LoadedConfig
from ftops.datasets import (
    DatasetReport,
    HashCache,
    check_dataset,
    cross_check,
    estimate_cost,
    resolve_n_epochs,
)
from ftops.diagnostics import Diagnostic, SourceRange, warning
from ftops.engine.fingerprint import (
    derived_seed,
    file_placeholder,
    fingerprint,
    job_metadata,
)
from ftops.engine.hooks import Hooks
from ftops.engine.model import CostInfo, DatasetRef, DesiredModel

BuildBody = Callable[..., dict[str, Any]]


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


def build_desired(loaded: LoadedConfig, build_body: BuildBody, *, cache_dir: Path,
                  hash_cache: HashCache, uploads_api: bool = True, hooks: Hooks | None = None) -> DesiredSet:
    """`uploads_api`: the provider takes files over 512 MB through its multipart Uploads API.
    `hooks.dataset_progress` follows the hashing and checking of each dataset read."""
    on = hooks or Hooks()
    cfg = loaded.config
    project = cfg.project
    result = DesiredSet(models=[])
    seen_diag: set[tuple[str, str, str, str]] = set()
    checked_pairs: set[tuple[str, str]] = set()

    def dataset(name: str, which: str, display: str, method: str, base: str) -> tuple[DatasetRef, DatasetReport]:
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
            result.diagnostics_by_sha.setdefault(sha, []).extend(report.diagnostics(display))
        st = report.stats
        ref = DatasetRef(path=display, sha256=sha, bytes=report.size, format=report.format, valid=report.valid,
                         examples=st.examples, tokens_per_epoch=st.trained_tokens_per_epoch,
                         approximate=st.approximate)
        return ref, report

    for name in sorted(cfg.models):
        m = cfg.models[name]
        method = m.method
        train_ref, train_report = dataset(name, "training_file", m.training_file, method, m.base_model)
        val_ref = None
        if m.validation_file:
            val_ref, val_report = dataset(name, "validation_file", m.validation_file, method, m.base_model)
            pair = (train_ref.sha256, val_ref.sha256)
            if pair not in checked_pairs:  # a pair shared by several models is reported once
                checked_pairs.add(pair)
                for issue in cross_check(train_report, val_report, cache_dir=cache_dir):
                    result.warnings.append(warning(
                        f"dataset.{issue.code}", issue.message,
                        range=SourceRange(m.validation_file, issue.line or 1), hint=issue.hint))

        hp = m.hyperparameters.normalized() if m.hyperparameters is not None else {}
        seed = m.seed if m.seed is not None else derived_seed(project, name)
        integrations = [i.model_dump(exclude_none=True, mode="json") for i in m.integrations]
        grader = getattr(m, "grader", None)
        response_format = getattr(m, "response_format", None)
        body = build_body(
            model=m.base_model, training_file=file_placeholder(train_ref.sha256),
            validation_file=file_placeholder(val_ref.sha256) if val_ref else None,
            method=method, hyperparameters=hp, suffix=m.suffix, seed=seed, metadata=None,
            integrations=integrations or None, grader=grader, response_format=response_format,
        )
        fp = fingerprint(body)
        attributes: dict[str, Any] = {
            "base_model": m.base_model,
            "training_file": file_placeholder(train_ref.sha256),
            "validation_file": file_placeholder(val_ref.sha256) if val_ref else None,
            "method": method,
            "hyperparameters": hp,
            "suffix": m.suffix,
            "seed": seed,
            "metadata": dict(m.metadata),
        }
        if integrations:
            attributes["integrations"] = integrations
        if grader is not None:
            attributes["grader"] = grader
        if response_format is not None:
            attributes["response_format"] = response_format

        requested_epochs = hp.get("n_epochs", "auto")
        n_epochs = resolve_n_epochs(train_ref.examples, requested_epochs)
        trained = train_ref.tokens_per_epoch * n_epochs
        est = estimate_cost(m.base_model, trained, method=method, overrides=dict(cfg.pricing) or None)
        cost = CostInfo(usd=est.usd, trained_tokens=trained, n_epochs=n_epochs, price_per_1m=est.price_per_1m,
                        approximate=est.approximate or train_ref.approximate, note=est.note)
        rng = loaded.range_of("models", name)
        result.models.append(DesiredModel(
            name=name, fingerprint=fp, seed=seed, seed_declared=m.seed is not None, attributes=attributes,
            body=body, metadata=job_metadata(project, name, fp, dict(m.metadata)),
            training=train_ref, validation=val_ref, cost=cost, source=str(rng) if rng else "",
        ))
    hash_cache.save()
    return result
