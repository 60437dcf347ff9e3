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
from ftops.diagnostics import Diagnostic, FtopsError, error, warning
from ftops.engine.desired import DesiredSet, build_desired
from ftops.engine.hooks import Hooks
from ftops.engine.model import Plan, ProviderInfo, RemoteSnapshot
from ftops.engine.plan import build_plan, plan_deletes, restrict_plan
from ftops.engine.refresh import refresh
from ftops.engine.retirement import Refusal, check_base_models, review_deadlines
from ftops.providers import Capabilities, Provider, ProviderError, RemoteModel
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
    def store(self) -> StateBackend:
        return open_backend(self.loaded.config.state, root=self.root, project=self.project, environ=self.environ)

    @cached_property
    def hash_cache(self) -> HashCache:
        return HashCache(self.ftops_dir / "cache" / "hashes.json")

    @cached_property
    def today(self) -> datetime.date:
        """The one clock for announced ends: `FTOPS_TODAY` (an ISO date; tests and rehearsals pin it), else
        the local date. Job timestamps never read it."""
        raw = (self.environ.get("FTOPS_TODAY") or "").strip()
        if not raw:
            return datetime.date.today()
        try:
            return datetime.date.fromisoformat(raw)
        except ValueError:
            raise FtopsError(error("config.bad_today", f"FTOPS_TODAY={raw!r} is not a date",
                                   "FTOPS_TODAY sets the day ftops compares announced end dates with.",
                                   hint="e.g. FTOPS_TODAY=2027-02-01, or unset it")) from None

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
            if any(pc.rehearse_cutoffs for pc in pcs):  # the sandbox refuses past cut-offs only when asked
                overrides.update(enforce_cutoffs=True, today=self.today.isoformat())
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
        if ptype in ("together", "fireworks"):
            common["environ"] = self.environ
        if ptype == "fireworks":
            common["account_id"] = pc.account_id
        common.update(self._type_settings(pc))
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
            if ptype == "azure":  # ARM deployments on the same embedded sandbox
                common["arm"] = httpx.Client(transport=in_process_transport(self._sandbox_app()),
                                             base_url=SANDBOX_BASE_URL.removesuffix("/v1") + "/azure/management")
                common.setdefault("subscription_id", "sandbox-subscription")
                common.setdefault("resource_group", "sandbox-rg")
                common.setdefault("account", "sandbox")
                common["arm_token"] = lambda: SANDBOX_API_KEY
            prov = cls(http, api_key=SANDBOX_API_KEY, **common)
            prov.sandbox = True
            return prov  # type: ignore[no-any-return]
        key_env = pc.api_key_env or caps.key_env
        key = (self.environ.get(key_env) or "").strip() or None
        where = ("provider",) if name == "default" else ("providers", name)
        if ptype == "azure":
            from ftops.providers.azure import ARM_SCOPE, COGNITIVE_SCOPE, entra_token_provider

            if not key:  # a Microsoft Entra token instead, when azure-identity is installed
                common["token_provider"] = entra_token_provider(COGNITIVE_SCOPE)
            token = (self.environ.get("AZURE_MANAGEMENT_TOKEN") or "").strip()
            if pc.subscription_id:
                common["arm_token"] = (lambda: token) if token else entra_token_provider(ARM_SCOPE)
        if not key and common.get("token_provider") is None and not caps.credential_chain:
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

    @staticmethod
    def _type_settings(pc: Any) -> dict[str, Any]:
        """Provider-entry settings only one provider type has, as constructor arguments."""
        if pc.provider_type != "azure":
            return {}
        out = {k: getattr(pc, k) for k in ("api_version", "training_type", "subscription_id", "resource_group",
                                           "account") if getattr(pc, k) is not None}
        return out

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
            prov = cls(offline, api_key=None, name=name, **self._type_settings(pc))
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

    def desired(self, state: State | None = None, snapshot: RemoteSnapshot | None = None) -> DesiredSet:
        """`state`/`snapshot`: where chained models find their upstream's fine-tuned model."""
        from ftops.engine.desired import upstream_outputs

        self.check_dataset_sizes()
        return build_desired(self.loaded, self._translators(), cache_dir=self.ftops_dir / "cache",
                             hash_cache=self.hash_cache, hooks=self.hooks,
                             upstream_model=upstream_outputs(state, snapshot) if state is not None else None)

    def load_state(self) -> State:
        """The state, with records written by older ftops versions completed (identity group, lifecycle
        word) through their provider: a pure, in-memory upgrade; nothing is saved by reading."""
        state = self.store.load()
        project = self.project
        if state.project and state.project != project:
            renamed_from = self.environ.get("FTOPS_PROJECT_RENAMED_FROM", "")
            if renamed_from != state.project:
                raise FtopsError(error(
                    "state.project_mismatch", f"the state belongs to project `{state.project}`, not `{project}`",
                    f"{self.store.location if hasattr(self.store, 'location') else 'the state'} was written for "
                    f"project `{state.project}`; ftops.yaml declares `{project}`. A state copied from another "
                    "project would make this one adopt or orphan that project's jobs. Nothing was read from a "
                    "provider.",
                    range=self.loaded.range_of("project"),
                    hint=f"use this project's own state, or, for a deliberate rename, run once with "
                         f"FTOPS_PROJECT_RENAMED_FROM={state.project} (jobs are identified by project: renaming "
                         "retrains every model)"))
        provs = self._translators()
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
            snap = refresh(self.providers(), state, self.project)
        except ProviderError as e:
            raise FtopsError(e.to_diagnostic()) from None
        self.catalogues(snap)  # caches what was read, for offline plans and `status`
        return snap

    def provider_infos(self) -> dict[str, ProviderInfo]:
        """Type and endpoint of every provider entry in use, from the configuration alone: the same online
        and offline, so a saved plan binds them whichever way it was made."""
        from ftops.providers import PROVIDERS, SANDBOX_PREFIX

        out = {}
        for name, pc in self.loaded.config.provider_entries().items():
            if name not in self.provider_names():
                continue
            ptype = pc.provider_type
            if pc.is_sandbox:
                endpoint = SANDBOX_BASE_URL.removesuffix("/v1") + SANDBOX_PREFIX[ptype]
            else:
                env_url = self.environ.get("OPENAI_BASE_URL") if ptype == "openai" else None
                endpoint = (pc.base_url or env_url or PROVIDERS[ptype].capabilities.default_base_url).rstrip("/")
            out[name] = ProviderInfo(type=ptype, endpoint=endpoint, sandbox=pc.is_sandbox)
        return out

    @property
    def config_digest(self) -> str:
        """sha256 of the resolved configuration (after interpolation): what a saved plan was made from."""
        import hashlib

        return hashlib.sha256(self.loaded.config.model_dump_json().encode()).hexdigest()

    def plan(self, *, offline: bool = False, replace: frozenset[str] = frozenset(),
             target: frozenset[str] = frozenset(), prune: bool = False,
             destroy: frozenset[str] | None = None) -> PlanResult:
        """Desired models (local disk only), then refresh (reads), then the pure plan.

        Any declaration or dataset error stops here, before the first request: fail before spending.
        `replace`: retrain these models (same fingerprint and seed, a new attempt); `target`: plan only
        these models and what they depend on.
        """
        self.check_model_names(replace | target)
        state = self.load_state()
        desired = self.desired(state)
        diags = desired.dataset_diagnostics(set(desired.diagnostics_by_sha))
        if any(d.is_error for d in diags):
            raise FtopsError(diags + desired.warnings)
        snapshot = None if offline else self.snapshot(state)
        if snapshot is not None and any(d.upstream for d in desired.models):
            desired = self.desired(state, snapshot)  # chains: upstream jobs as the provider reports them
        limits = {n: p.capabilities.job_creates_per_hour for n, p in
                  (self.providers() if not offline else self._translators()).items() if n in self.provider_names()}
        plan = build_plan(desired.models, state, snapshot, project=self.project, providers=self.provider_infos(),
                          job_creates_per_hour=limits, replace=replace, prune=prune)
        if prune or destroy is not None:
            plan = self._with_deletes(plan, desired, state, snapshot, destroy)
        if target:
            ups = {d.name: d.upstream for d in desired.models}
            closed = set(target)
            while more := {u for n in closed if (u := ups.get(n)) and u not in closed}:
                closed |= more  # a chained model's upstream is what it depends on
            plan = restrict_plan(plan, frozenset(closed))
        if not offline:
            plan = self._provider_estimates(plan, state)
        plan = plan.model_copy(update={"config_digest": self.config_digest})
        plan = self._review_lifecycle(plan, desired, state, snapshot)
        from ftops.config.project import is_placeholder_project

        if is_placeholder_project(self.project) and any(not p.sandbox for p in plan.providers.values()):
            plan = plan.model_copy(update={"warnings": [*plan.warnings, {
                "code": "plan.placeholder_project", "severity": "warning",
                "summary": f"project `{self.project}` is a name other repositories use too",
                "detail": "jobs are recognised by project: two repositories with the same project name on one "
                          "account adopt each other's jobs or list them as orphans. Set `project:` in ftops.yaml "
                          "to a name unique to this repository before the first apply (renaming later retrains)."}]})
        return PlanResult(plan, desired, state, snapshot)

    def _with_deletes(self, plan: Plan, desired: DesiredSet, state: State, snapshot: RemoteSnapshot | None,
                      destroy: frozenset[str] | None) -> Plan:
        """Add what `--prune` (or `destroy`: these models, or all when empty) deletes; any deletion of a
        model with `lifecycle.prevent_destroy` fails the plan, naming the model."""
        names = frozenset(destroy or {d.name for d in desired.models}) if destroy is not None else frozenset()
        deletes = plan_deletes(plan, desired.models, state, snapshot, destroy=names)
        if destroy:
            deletes = [k for k in deletes if k.name in names or (k.kind == "file" and not destroy)]
        if snapshot is not None:  # a fine-tuned model already deleted is not offered again (one list per provider)
            existing: dict[str, set[str] | None] = {}
            for pname in sorted({k.provider for k in deletes if k.kind == "model"}):
                try:
                    ids = {m.id for m in self.provider(pname).list_models()}
                except (ProviderError, NotImplementedError):
                    ids = set()
                existing[pname] = ids or None  # an empty list: the provider lists no models; keep the record
            deletes = [k for k in deletes if k.kind != "model" or existing.get(k.provider) is None
                       or k.id in (existing[k.provider] or set())]
        protected = {d.name for d in desired.models if d.prevent_destroy} | {
            n for n, r in state.models.items() if r.prevent_destroy and n not in self.loaded.config.models}
        blocked = sorted({k.name for k in deletes if k.name in protected})
        if blocked:
            raise FtopsError([error(
                "plan.prevent_destroy", f"the plan would delete models.{n}, which has lifecycle.prevent_destroy",
                "nothing was sent. A protected model's fine-tuned models and jobs are never deleted or cancelled by "
                "--prune or destroy.", range=self.loaded.range_of("models", n, "lifecycle")
                if n in self.loaded.config.models else None,
                hint="set `lifecycle: {prevent_destroy: false}` first if you really mean it, or leave out --prune",
                address=f"models.{n}") for n in blocked])
        if destroy is not None:
            plan = restrict_plan(plan, frozenset())  # destroy creates, uploads and cancels nothing else
        return plan.model_copy(update={"deletes": deletes,
                                       "summary": plan.summary.model_copy(update={"delete": len(deletes)})})

    def check_model_names(self, names: frozenset[str]) -> None:
        """Every name given on the command line (`--target`, `--replace`) is a declared model."""
        from ftops.diagnostics import did_you_mean

        declared = self.loaded.config.models
        bad = [error("model.unknown", f"no declared model named {n}",
                     "Declared models: " + (", ".join(sorted(declared)) or "none") + ".",
                     hint=did_you_mean(n, declared) or "check the name in ftops.yaml", address=f"models.{n}")
               for n in sorted(names) if n not in declared]
        if bad:
            raise FtopsError(bad)

    # ------------------------------------------------------------------ announced ends

    def catalogues(self, snapshot: RemoteSnapshot | None) -> dict[str, dict[str, RemoteModel]]:
        """Each provider entry's model catalogue: read by this refresh (and cached), else the cached one."""
        import json

        out: dict[str, dict[str, RemoteModel]] = {}
        cache = self.ftops_dir / "cache"
        for name in self.provider_names():
            path = cache / f"models-{name}.json"
            psnap = snapshot.providers.get(name) if snapshot is not None else None
            if psnap is not None and psnap.models:
                out[name] = {m.id: m for m in psnap.models}
                try:
                    cache.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps([m.model_dump(mode="json") for m in psnap.models]), encoding="utf-8")
                except OSError:
                    pass  # a cache: never worth failing a plan
            elif path.is_file():
                try:
                    out[name] = {m["id"]: RemoteModel.model_validate(m)
                                 for m in json.loads(path.read_text(encoding="utf-8"))}
                except (OSError, ValueError, KeyError, TypeError):
                    pass
        return out

    def provider_capabilities(self, every: bool = False) -> dict[str, Capabilities]:
        """Capabilities by provider entry name: those in use (or `every` declared entry)."""
        provs = self._translators()
        names = list(provs) if every else self.provider_names()
        return {n: provs[n].capabilities for n in names if n in provs}

    def model_ends(self, state: State) -> dict[str, Any]:
        """Per recorded model with a live job: the day its fine-tuned model stops working (it dies with its base
        model), from the cached catalogue or the capabilities; for `status`."""
        from ftops.engine.plan import record_state
        from ftops.engine.retirement import base_model_end

        caps = self.provider_capabilities(every=True)
        cats = self.catalogues(None)
        out: dict[str, Any] = {}
        for name, rec in state.models.items():
            base = str(rec.spec.get("base_model") or "")
            pc = caps.get(rec.provider)
            if not base or pc is None or rec.job is None or record_state(rec.job).dead:
                continue
            end = base_model_end(pc, cats.get(rec.provider), base)
            if end is not None:
                out[name] = end
        return out

    def _review_lifecycle(self, plan: Plan, desired: DesiredSet, state: State,
                          snapshot: RemoteSnapshot | None) -> Plan:
        """Deadlines and warnings on the plan; refusals (base model unknown to a read catalogue, a job
        after an exact announced end on a real provider) raise here, before any upload."""
        caps = self.provider_capabilities()
        catalogues = self.catalogues(snapshot)
        known_tuned = {j.fine_tuned_model for r in state.models.values() for j in ([r.job] if r.job else []) + r.history
                       if j.fine_tuned_model}
        fresh = {n: c for n, c in catalogues.items() if snapshot is not None and n in snapshot.providers}
        refusals = check_base_models(desired.models, caps, fresh, known_tuned)
        entries = self.loaded.config.provider_entries()
        lenient = {n: self._lenient(pc, caps.get(n)) for n, pc in entries.items()}
        plan, more = review_deadlines(plan, desired.models, state, caps, catalogues, self.today, lenient)
        diags = [self._refusal_diagnostic(r) for r in refusals + more]
        errors = [d for d in diags if d.is_error]
        desired.warnings.extend(d for d in diags if not d.is_error)
        if errors:
            raise FtopsError(errors + desired.warnings)
        return plan

    def _lenient(self, pc: Any, caps: Capabilities | None) -> str:
        """Empty when a job after an exact announced cut-off is refused on this entry, else why it only
        warns: the sandbox (unless rehearsing) or another endpoint than the provider's own (a compatible
        server is not bound by the provider's dates)."""
        if pc.is_sandbox:
            return "" if pc.rehearse_cutoffs else \
                "the sandbox accepts it (set `rehearse_cutoffs: true` on the provider entry to rehearse)"
        own = (caps.default_base_url if caps else "").rstrip("/")
        base = (pc.base_url or (self.environ.get("OPENAI_BASE_URL") if pc.provider_type == "openai" else None)
                or own).rstrip("/")
        return "" if own and base == own else f"the endpoint {base} is not the provider's own ({own or 'none'})"

    def _refusal_diagnostic(self, r: Refusal) -> Diagnostic:
        make = error if r.severity == "error" else warning
        return make(r.code, r.summary, r.detail, range=self.loaded.range_of("models", r.model, *r.path), hint=r.hint,
                    address=f"models.{r.model}")

    def base_model_warnings(self, desired: DesiredSet) -> list[Diagnostic]:
        """Offline (`validate`, `plan --offline`): each `base_model` against its provider's declared list."""
        state = self.load_state()
        known = {j.fine_tuned_model for r in state.models.values() for j in ([r.job] if r.job else []) + r.history
                 if j.fine_tuned_model}
        return [self._refusal_diagnostic(r) for r in check_base_models(desired.models, self.provider_capabilities(),
                                                                       {}, known)]

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
                elif c.cost is not None:
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



def _where(p: ProviderInfo | None) -> str:
    return f"{p.type} at {p.endpoint}" if p else "absent"


def check_saved_plan(saved: Plan, fresh: Plan) -> None:
    """Refuse a saved plan that no longer describes what apply would do, saying what changed.

    It binds the state it was made from (lineage, serial), the providers (type and endpoint), the
    resolved configuration (digest) and, per model, the fingerprint and provider. An online saved plan
    also binds its actions (the remote may have moved since); an offline one cannot, and does not.
    """
    changed: list[str] = []
    same_lineage = saved.state_lineage == fresh.state_lineage or saved.state_serial == fresh.state_serial == 0
    if not same_lineage or saved.state_serial != fresh.state_serial:
        changed.append(f"the state (saved at serial {saved.state_serial}, now {fresh.state_serial})")
    for name in sorted(set(saved.providers) | set(fresh.providers)):
        a, b = saved.providers.get(name), fresh.providers.get(name)
        if a is None or b is None or (a.type, a.endpoint) != (b.type, b.endpoint):
            changed.append(f"provider `{name}` ({_where(a)} → {_where(b)})")
    if saved.config_digest and saved.config_digest != fresh.config_digest:
        changed.append("the configuration (ftops.yaml or the variables it reads)")
    before = {m.name: (m.provider, m.fingerprint) for m in saved.models}
    after = {m.name: (m.provider, m.fingerprint) for m in fresh.models}
    if before != after:
        diff = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
        changed.append("what models " + ", ".join(diff) + " would train (datasets or declaration)")
    if sorted((f.provider, f.sha256) for f in saved.files) != sorted((f.provider, f.sha256) for f in fresh.files):
        changed.append("the datasets to upload")
    if not saved.offline and not changed:
        def acts(p: Plan) -> list[tuple[str, str]]:
            return [(m.name, m.action.value) for m in p.models] + [(k.job_id, "cancel") for k in p.cancels]

        if acts(saved) != acts(fresh):
            changed.append("what the providers hold (a job started, ended or vanished since)")
    if changed:
        raise FtopsError(error("apply.stale_plan", "the saved plan is stale",
                               "changed since the plan was saved: " + "; ".join(changed) + ". Nothing was sent.",
                               hint="run `ftops plan --out FILE` again and review it"))
