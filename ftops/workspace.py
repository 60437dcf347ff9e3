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
from ftops.engine.hooks import Hooks
from ftops.engine.model import Plan, ProviderInfo, RemoteSnapshot
from ftops.engine.plan import build_plan
from ftops.engine.refresh import refresh
from ftops.providers import Provider, ProviderError
from ftops.state import STATE_DIR, State, StateStore

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
    def __init__(self, directory: Path, *, environ: Mapping[str, str] | None = None,
                 variables: Mapping[str, str] | None = None, hooks: Hooks | None = None):
        self.directory = directory.resolve()
        self.variables = dict(variables or {})
        self.hooks = hooks
        self.environ = dict(os.environ if environ is None else environ)
        self._providers: dict[str, Provider] = {}
        self._sandbox: Any = None

    @cached_property
    def loaded(self) -> LoadedConfig:
        return load_config(find_config(self.directory), environ=self.environ, variables=self.variables or None)

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
    def store(self) -> StateStore:
        return StateStore.for_project(self.root)

    @cached_property
    def hash_cache(self) -> HashCache:
        return HashCache(self.ftops_dir / "cache" / "hashes.json")

    # ------------------------------------------------------------------ providers

    @property
    def provider_type(self) -> str:
        return self.loaded.config.provider.provider_type

    def provider_names(self) -> list[str]:
        """Provider entries in use: the default, every one a model names, and every one the state knows."""
        cfg = self.loaded.config
        used = {"default"} | {cfg.provider_of(n)[0] for n in cfg.models}
        return sorted(used)

    def providers(self, names: list[str] | None = None) -> dict[str, Provider]:
        """Connected provider instances by entry name (built on first use, keys read from the environment)."""
        out: dict[str, Provider] = {}
        for name in names or self.provider_names():
            if name not in self._providers:
                self._providers[name] = self._build_provider(name)
            out[name] = self._providers[name]
        return out

    def provider(self, name: str = "default") -> Provider:
        return self.providers([name])[name]

    def _sandbox_app(self) -> Any:
        """One embedded sandbox for every dialect the project uses: one database, `.ftops/sandbox.db`."""
        if self._sandbox is None:
            from ftops.sandbox import SandboxApp, SandboxSettings

            pcs = [pc for pc in self.loaded.config.provider_entries().values() if pc.is_sandbox]
            db_setting = next((pc.db for pc in pcs if pc.db), None)
            db = Path(db_setting) if db_setting else self.ftops_dir / "sandbox.db"
            if not db.is_absolute():
                db = self.root / db
            db.parent.mkdir(parents=True, exist_ok=True)
            overrides: dict[str, object] = {}
            for pc in pcs:  # YAML rate limits only override the sandbox's own (OpenAI's documented) limits
                if pc.rate_limits.job_creates_per_hour is not None:
                    overrides["job_creates_per_hour"] = pc.rate_limits.job_creates_per_hour
                if pc.rate_limits.file_uploads_per_hour is not None:
                    overrides["file_uploads_per_hour"] = pc.rate_limits.file_uploads_per_hour
            if "FTOPS_SANDBOX_TIME_SCALE" not in self.environ:
                overrides["time_scale"] = next((pc.time_scale for pc in pcs if pc.time_scale),
                                               DEFAULT_SANDBOX_TIME_SCALE)
            self._sandbox = SandboxApp(db, settings=SandboxSettings.from_env(**overrides))
        return self._sandbox

    def _build_provider(self, name: str) -> Provider:
        import httpx

        from ftops.providers import PROVIDERS, SANDBOX_PREFIX

        pc = self.loaded.config.provider_entries()[name]
        ptype = pc.provider_type
        cls: Any = PROVIDERS[ptype]
        caps = cls.capabilities
        overrides = {k: v for k, v in pc.rate_limits.model_dump().items() if v is not None}
        if overrides:
            caps = caps.model_copy(update=overrides)
        common: dict[str, Any] = dict(max_retries=pc.max_retries, max_retry_wait=pc.max_retry_wait, name=name,
                                      capabilities=caps)
        if ptype == "together":
            common["environ"] = self.environ
        if ptype == "azure" and pc.api_version:
            common["api_version"] = pc.api_version
        if ptype == "openai":
            common.update(organization=pc.organization, project=pc.openai_project)
        if ptype == "bedrock":
            common.update(region=pc.region, bucket=pc.bucket, prefix=pc.prefix, role_arn=pc.role_arn,
                          output_uri=pc.output_uri)
        if ptype == "vertex":
            common.update(region=pc.region, bucket=pc.bucket, prefix=pc.prefix, gcp_project=pc.gcp_project)
        if pc.is_sandbox:
            from ftops.sandbox import in_process_transport

            http = httpx.Client(transport=in_process_transport(self._sandbox_app()),
                                base_url=SANDBOX_BASE_URL.removesuffix("/v1") + SANDBOX_PREFIX[ptype],
                                timeout=pc.timeout)
            prov = cls(http, api_key=SANDBOX_API_KEY, **common)
            prov.sandbox = True
            return prov  # type: ignore[no-any-return]
        key_env = pc.api_key_env or caps.key_env
        key = (self.environ.get(key_env) or "").strip() or None
        where = ("provider",) if name == "default" else ("providers", name)
        if not key and not caps.credential_chain:
            raise FtopsError(error(
                "provider.missing_api_key", f"${key_env} is not set",
                f"provider `{name}` ({caps.title or ptype}) needs an API key; nothing was sent.",
                range=self.loaded.range_of(*where), hint=f"export {key_env}=... (keys never go into ftops.yaml)"))
        base = pc.base_url or (self.environ.get("OPENAI_BASE_URL") if ptype == "openai" else None) \
            or caps.default_base_url
        if ptype == "azure":
            base = pc.base_url or ""
        try:
            return cls.from_settings(base, key, pc.timeout, api_key_env=key_env, **common)  # type: ignore[no-any-return]
        except ProviderError as e:
            raise FtopsError(e.to_diagnostic()) from None

    def close(self) -> None:
        for p in self._providers.values():
            p.close()
        self._providers = {}

    # ------------------------------------------------------------------ stages

    def _translators(self) -> dict[str, Provider]:
        """Provider instances for the pure stage (validate, translate, fingerprint): no connection, no
        sandbox database, no key -- a bad declaration fails before the first request."""
        import httpx

        from ftops.providers import PROVIDERS

        out: dict[str, Provider] = {}
        for name, pc in self.loaded.config.provider_entries().items():
            if name in self._providers:
                out[name] = self._providers[name]
                continue
            offline = httpx.Client(transport=httpx.BaseTransport(), base_url="http://offline.invalid/v1")
            cls: Any = PROVIDERS[pc.provider_type]
            prov = cls(offline, api_key=None, name=name)
            prov.sandbox = pc.is_sandbox
            out[name] = prov
        return out

    def check_dataset_sizes(self) -> None:
        """Refuse datasets larger than their provider accepts, from a stat alone: before hashing or
        validating gigabytes that could never be uploaded."""
        provs = self._translators()
        diags = []
        seen: set[tuple[str, Path]] = set()
        cfg = self.loaded.config
        for name, m in sorted(cfg.models.items()):
            pname, _pc = cfg.provider_of(name)
            caps = provs[pname].capabilities
            limit = caps.max_upload_bytes if caps.uploads_api else caps.max_file_bytes
            for which in ("training_file", "validation_file"):
                if getattr(m, which) is None:
                    continue
                path = self.loaded.dataset_path(name, which)
                if (pname, path) in seen:
                    continue
                seen.add((pname, path))
                size = path.stat().st_size
                if size > limit:
                    diags.append(error(
                        "dataset.too_large", f"{getattr(m, which)} is too large for the provider",
                        f"{size / 2**30:.1f} GiB; {caps.title or caps.name} accepts files up to "
                        f"{limit / 2**30:.1f} GiB" + (" through its Uploads API" if caps.uploads_api else "")
                        + ". Nothing was read or sent.",
                        range=self.loaded.range_of("models", name, which),
                        hint="split the dataset or sample it down", address=f"models.{name}"))
        if diags:
            raise FtopsError(diags)

    def desired(self) -> DesiredSet:
        self.check_dataset_sizes()
        return build_desired(self.loaded, self._translators(), cache_dir=self.ftops_dir / "cache",
                             hash_cache=self.hash_cache, hooks=self.hooks)

    def load_state(self) -> State:
        """The state, with records written by older ftops versions completed (identity group, lifecycle
        word) through their provider: a pure, in-memory upgrade; nothing is saved by reading."""
        state = self.store.load()
        provs = self._translators()
        project = self.project
        for rec in state.models.values():
            prov = provs.get(rec.provider)
            if prov is None:
                continue
            if not rec.group:
                rec.group = prov.group_key(project, rec.name, rec.fingerprint)
            for job in ([rec.job] if rec.job else []) + rec.history:
                if job.state is None:
                    job.state = prov.job_state(job.status).value
        return state

    def snapshot(self, state: State) -> RemoteSnapshot:
        try:
            return refresh(self.providers(), state, self.project)
        except ProviderError as e:
            raise FtopsError(e.to_diagnostic()) from None

    def provider_infos(self) -> dict[str, ProviderInfo]:
        out = {}
        for name, pc in self.loaded.config.provider_entries().items():
            if name not in self.provider_names():
                continue
            prov = self._providers.get(name)
            endpoint = prov.endpoint if prov is not None else (
                "sandbox" if pc.is_sandbox else (pc.base_url or PROVIDER_DEFAULT_URLS.get(pc.provider_type, "")))
            out[name] = ProviderInfo(type=pc.provider_type, endpoint=endpoint, sandbox=pc.is_sandbox)
        return out

    def plan(self, *, offline: bool = False, replace: frozenset[str] = frozenset()) -> PlanResult:
        """Desired models (local disk only), then refresh (reads), then the pure plan.

        Any declaration or dataset error stops here, before the first request: fail before spending.
        """
        state = self.load_state()
        desired = self.desired()
        diags = desired.dataset_diagnostics(set(desired.diagnostics_by_sha))
        if any(d.is_error for d in diags):
            raise FtopsError(diags + desired.warnings)
        snapshot = None if offline else self.snapshot(state)
        limits = {n: p.capabilities.job_creates_per_hour for n, p in
                  (self.providers() if not offline else self._translators()).items() if n in self.provider_names()}
        plan = build_plan(desired.models, state, snapshot, project=self.project, providers=self.provider_infos(),
                          job_creates_per_hour=limits, replace=replace)
        if not offline:
            plan = self._provider_estimates(plan, state)
        closing = openai_closing_warning(plan, datetime.date.today())
        if closing:
            plan = plan.model_copy(update={"warnings": [*plan.warnings, closing]})
        return PlanResult(plan, desired, state, snapshot)

    def _provider_estimates(self, plan: Plan, state: State) -> Plan:
        """Where a provider has a read-only price endpoint and the job's files are already on it, ask it
        (one request per job to create) and say that the figure is the provider's own."""
        files = {(f.provider, f.sha256): f.file_id for f in plan.files if f.file_id}
        models = []
        changed = False
        for c in plan.models:
            prov = self._providers.get(c.provider)
            if (c.action.creates_job and prov is not None and prov.capabilities.price_estimate_endpoint
                    and c.body is not None and c.cost is not None):
                ids = {sha: files.get((c.provider, sha)) or (state.file_for(sha, c.provider).file_id  # type: ignore[union-attr]
                                                            if state.file_for(sha, c.provider) else None)
                       for sha in c.datasets}
                if all(ids.values()):
                    try:
                        usd = prov.estimate_price(c.body, {k: v for k, v in ids.items() if v})
                    except ProviderError:
                        usd = None
                    if usd is not None:
                        c = c.model_copy(update={"cost": c.cost.model_copy(update={
                            "usd": round(usd, 4), "approximate": False, "note": "the provider's own estimate"})})
                        changed = True
                else:
                    note = (c.cost.note + "; " if c.cost.note else "") + \
                        "the provider's estimate needs the data uploaded first"
                    c = c.model_copy(update={"cost": c.cost.model_copy(update={"note": note})})
                    changed = True
            models.append(c)
        if not changed:
            return plan
        spending = [c for c in models if c.action.creates_job and c.cost is not None]
        priced = [c.cost.usd for c in spending if c.cost and c.cost.usd is not None]
        cost = round(sum(priced), 2) if len(priced) == len(spending) else None
        return plan.model_copy(update={"models": models, "cost_usd": cost,
                                       "cost_approximate": any(c.cost and c.cost.approximate for c in spending)})


PROVIDER_DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "together": "https://api.together.xyz/v1"}

OPENAI_SELF_SERVE_CLOSES = datetime.date(2027, 1, 6)


def openai_closing_warning(plan: Plan, today: datetime.date) -> dict[str, Any] | None:
    """OpenAI accepts no new self-serve fine-tuning jobs after 2027-01-06: say so when a plan needs one."""
    creates = [c for c in plan.models if c.action.creates_job
               and "api.openai.com" in (plan.providers[c.provider].endpoint if c.provider in plan.providers else "")]
    if not creates:
        return None
    days = (OPENAI_SELF_SERVE_CLOSES - today).days
    when = (f"in {days} day(s), on {OPENAI_SELF_SERVE_CLOSES}" if days >= 0
            else f"since {OPENAI_SELF_SERVE_CLOSES}: these creations will be refused")
    return {"code": "plan.provider_closing", "severity": "warning",
            "summary": f"OpenAI stops accepting new fine-tuning jobs {when}",
            "detail": "ftops keeps the declaration; switch `provider:` to `azure` or another OpenAI-compatible "
                      "endpoint to keep training. Existing fine-tuned models are not affected."}
