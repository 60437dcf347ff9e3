"""The composition root: one project directory wired to its config, state, caches and provider.

Like `cli.py` it may import anything; the engine stays free of provider construction and of the
sandbox (the sandbox is one provider among others, reached over HTTP through a transport).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ftops.config import LoadedConfig, find_config, load_config
from ftops.datasets import HashCache
from ftops.diagnostics import FtopsError, error
from ftops.engine.desired import DesiredSet, build_desired
from ftops.engine.model import Plan, RemoteSnapshot
from ftops.engine.plan import build_plan
from ftops.engine.refresh import refresh
from ftops.providers import Provider, ProviderError
from ftops.state import STATE_DIR, State, StateBackend, open_backend

SANDBOX_BASE_URL = "http://sandbox.local/v1"
SANDBOX_API_KEY = "sk-sandbox"
# The embedded sandbox runs 100x faster than real time unless configured: a demo job finishes in
# seconds to minutes, which is what someone trying ftops for the first time wants.
DEFAULT_SANDBOX_TIME_SCALE = 100.0


@dataclass
class PlanResult:
    plan: Plan
    desired: DesiredSet
    state: State
    snapshot: RemoteSnapshot | None


class Workspace:
    def __init__(self, directory: Path, *, environ: Mapping[str, str] | None = None):
        self.directory = directory.resolve()
        self.environ = dict(os.environ if environ is None else environ)
        self._provider: Provider | None = None

    @cached_property
    def loaded(self) -> LoadedConfig:
        return load_config(find_config(self.directory), environ=self.environ)

    @property
    def root(self) -> Path:
        return self.loaded.root

    @property
    def project(self) -> str:
        return self.loaded.config.project

    @property
    def ftops_dir(self) -> Path:
        return self.root / STATE_DIR

    @cached_property
    def store(self) -> StateBackend:
        return open_backend(self.loaded.config.state, root=self.root, project=self.project, environ=self.environ)

    @cached_property
    def hash_cache(self) -> HashCache:
        return HashCache(self.ftops_dir / "cache" / "hashes.json")

    # ------------------------------------------------------------------ provider

    @property
    def provider_type(self) -> str:
        return self.loaded.config.provider.type

    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = self._build_provider()
        return self._provider

    def _build_provider(self) -> Provider:
        from ftops.providers import AzureOpenAIProvider, OpenAIProvider

        pc = self.loaded.config.provider
        common: dict[str, Any] = dict(max_retries=pc.max_retries, max_retry_wait=pc.max_retry_wait)
        keyed: dict[str, Any] = dict(common, api_key_env=pc.api_key_env)
        if pc.type == "sandbox":
            import httpx

            from ftops.providers import OPENAI_CAPABILITIES
            from ftops.sandbox import SandboxApp, SandboxSettings, in_process_transport

            db = Path(pc.db) if pc.db else self.ftops_dir / "sandbox.db"
            if not db.is_absolute():
                db = self.root / db
            db.parent.mkdir(parents=True, exist_ok=True)
            overrides: dict[str, object] = {
                "job_creates_per_hour": pc.rate_limits.job_creates_per_hour,
                "file_uploads_per_hour": pc.rate_limits.file_uploads_per_hour,
            }
            if "FTOPS_SANDBOX_TIME_SCALE" not in self.environ:
                overrides["time_scale"] = pc.time_scale or DEFAULT_SANDBOX_TIME_SCALE
            settings = SandboxSettings.from_env(**overrides)
            app = SandboxApp(db, settings=settings)
            http = httpx.Client(transport=in_process_transport(app), base_url=SANDBOX_BASE_URL,
                                timeout=pc.timeout)
            caps = OPENAI_CAPABILITIES.model_copy(update={
                "name": "sandbox",
                "job_creates_per_hour": pc.rate_limits.job_creates_per_hour,
                "file_uploads_per_hour": pc.rate_limits.file_uploads_per_hour})
            return OpenAIProvider(http, api_key=SANDBOX_API_KEY, capabilities=caps, **common)
        key = self.environ.get(pc.api_key_env) or None
        if not key:
            raise FtopsError(error(
                "provider.missing_api_key", f"${pc.api_key_env} is not set",
                f"provider `{pc.type}` needs an API key; nothing was sent.",
                range=self.loaded.range_of("provider"),
                hint=f"export {pc.api_key_env}=... (keys never go into ftops.yaml)"))
        try:
            if pc.type == "azure":
                assert pc.base_url is not None  # the config model requires it for azure
                return AzureOpenAIProvider.from_settings(
                    pc.base_url, key, pc.timeout, api_version=pc.api_version, **keyed)
            base = pc.base_url or self.environ.get("OPENAI_BASE_URL")
            prov = OpenAIProvider.from_settings(base, key, pc.timeout, organization=pc.organization,
                                                project=pc.openai_project, **keyed)
        except ProviderError as e:
            raise FtopsError(e.to_diagnostic()) from None
        caps = prov.capabilities.model_copy(update={
            "job_creates_per_hour": pc.rate_limits.job_creates_per_hour,
            "file_uploads_per_hour": pc.rate_limits.file_uploads_per_hour})
        prov.capabilities = caps
        return prov

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()
            self._provider = None

    # ------------------------------------------------------------------ stages

    def _body_builder(self) -> Provider:
        """A provider instance that only builds bodies: no connection, no sandbox db, no key needed.

        `build_job_body` is pure, so the desired stage (and the fingerprints) never wait for, or touch,
        the network: a bad dataset fails before the first request.
        """
        import httpx

        from ftops.providers import AzureOpenAIProvider, OpenAIProvider

        if self._provider is not None:
            return self._provider
        offline = httpx.Client(transport=httpx.BaseTransport(), base_url="http://offline.invalid/v1")
        pc = self.loaded.config.provider
        if pc.type == "azure":
            return AzureOpenAIProvider(offline, api_key=None, api_version=pc.api_version)
        return OpenAIProvider(offline, api_key=None)

    @property
    def uploads_api(self) -> bool:
        """Whether files over 512 MB can go through the provider's multipart Uploads API."""
        return self._body_builder().capabilities.uploads_api

    def check_dataset_sizes(self) -> None:
        """Refuse datasets larger than the provider accepts, from a stat alone: before hashing or
        validating gigabytes that could never be uploaded."""
        caps = self._body_builder().capabilities
        limit = caps.max_upload_bytes if caps.uploads_api else caps.max_file_bytes
        diags = []
        seen: set[Path] = set()
        for name, m in sorted(self.loaded.config.models.items()):
            for which in ("training_file", "validation_file"):
                if getattr(m, which) is None:
                    continue
                path = self.loaded.dataset_path(name, which)
                if path in seen:
                    continue
                seen.add(path)
                size = path.stat().st_size
                if size > limit:
                    diags.append(error(
                        "dataset.too_large", f"{getattr(m, which)} is too large for the provider",
                        f"{size / 2**30:.1f} GiB; {caps.name} accepts files up to {limit / 2**30:.1f} GiB"
                        + (" through its Uploads API" if caps.uploads_api else "") + ". Nothing was read or sent.",
                        range=self.loaded.range_of("models", name, which),
                        hint="split the dataset or sample it down", address=f"models.{name}"))
        if diags:
            raise FtopsError(diags)

    def desired(self) -> DesiredSet:
        self.check_dataset_sizes()
        builder = self._body_builder()
        return build_desired(self.loaded, builder.build_job_body, cache_dir=self.ftops_dir / "cache",
                             hash_cache=self.hash_cache, uploads_api=builder.capabilities.uploads_api)

    def snapshot(self, state: State) -> RemoteSnapshot:
        try:
            return refresh(self.provider(), state, self.project)
        except ProviderError as e:
            raise FtopsError(e.to_diagnostic()) from None

    def plan(self, *, offline: bool = False) -> PlanResult:
        """Desired models (local disk only), then refresh (reads), then the pure plan.

        Any dataset error stops here, before the first request: fail before spending.
        """
        state = self.store.load()
        desired = self.desired()
        diags = desired.dataset_diagnostics(set(desired.diagnostics_by_sha))
        if any(d.is_error for d in diags):
            raise FtopsError(diags + desired.warnings)
        snapshot = None if offline else self.snapshot(state)
        prov = self.provider()
        plan = build_plan(desired.models, state, snapshot, project=self.project, provider=self.provider_type,
                          endpoint=prov.endpoint, job_creates_per_hour=prov.capabilities.job_creates_per_hour)
        closing = openai_closing_warning(plan, datetime.date.today())
        if closing:
            plan = plan.model_copy(update={"warnings": [*plan.warnings, closing]})
        return PlanResult(plan, desired, state, snapshot)


OPENAI_SELF_SERVE_CLOSES = datetime.date(2027, 1, 6)


def openai_closing_warning(plan: Plan, today: datetime.date) -> dict[str, Any] | None:
    """OpenAI accepts no new self-serve fine-tuning jobs after 2027-01-06: say so when a plan needs one."""
    creates = plan.summary.create + plan.summary.replace + plan.summary.retry
    if not creates or "api.openai.com" not in plan.endpoint:
        return None
    days = (OPENAI_SELF_SERVE_CLOSES - today).days
    when = (f"in {days} day(s), on {OPENAI_SELF_SERVE_CLOSES}" if days >= 0
            else f"since {OPENAI_SELF_SERVE_CLOSES}: these creations will be refused")
    return {"code": "plan.provider_closing", "severity": "warning",
            "summary": f"OpenAI stops accepting new fine-tuning jobs {when}",
            "detail": "ftops keeps the declaration; switch `provider:` to `azure` or another OpenAI-compatible "
                      "endpoint to keep training. Existing fine-tuned models are not affected."}
