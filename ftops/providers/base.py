"""The provider boundary: what every fine-tuning provider declares, and the one interface the engine calls.

Terraform core never knows what an AWS resource is (STYLE.md habit 11); ftops's engine never knows
what a Together job looks like. A provider module owns, behind `Provider`:

- **capabilities** (`Capabilities`): declared once, read by validation, planning and the README's
  provider table (methods, hyperparameters and options with ranges, seed, suffix rules, file limits,
  data formats, rate limits, metadata, identity, prices, cut-off dates);
- **validation** (`Provider.validate`): a `ModelSpec` checked against those capabilities, as
  `Problem`s that the workspace turns into `file:line` diagnostics before any request;
- **translation** (`Provider.translate`): the exact request body, without identity fields, with
  dataset placeholders (`sha256:<hex>`) instead of file ids; the fingerprint hashes it;
- **identity** (`Identity`, `Provider.group_key`): how ftops recognises its own jobs without state
  (metadata, a tag in the suffix, client-chosen ids, labels, request tokens);
- **status mapping** (`JobState`): the provider's words onto one neutral lifecycle; the word itself
  is kept for display, and unknown words are `unknown`, never success or failure;
- **files** (`RemoteFile.sha256`): uploaded under a name carrying the content hash, found by it;
- **cost**, **errors** (one tree, `ftops.providers.errors`) and **inference** (`chat`).

Nothing here imports the engine or the config: the boundary is plain values.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ftops.datasets.convert import ConvertedFile, convert_cached
from ftops.diagnostics import did_you_mean

MB = 1024 * 1024
GB = 1024 * MB

ProgressCallback = Callable[[int, int], None]
"""on_progress(bytes_sent, bytes_total): called as an upload advances."""

FILE_PLACEHOLDER = "sha256:"


# --------------------------------------------------------------------------- lifecycle


class JobState(str, Enum):
    """ftops's one job lifecycle; each provider maps its own status words onto it."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CANCELLING = "cancelling"
    UNKNOWN = "unknown"

    @property
    def dead(self) -> bool:
        """Will never produce a model (a retry is a new attempt). A job being cancelled is dead for
        planning -- it is never cancelled twice nor counted as a competing live job -- but not terminal."""
        return self in (JobState.FAILED, JobState.CANCELLED, JobState.CANCELLING)

    @property
    def live(self) -> bool:
        """Pending, running, succeeded -- or unknown, which is never read as dead: never pay twice."""
        return not self.dead

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class Identity(BaseModel):
    """Who a job is: (project, model, fingerprint, attempt). Two jobs are duplicates only when all four match.

    The attempt starts at 1 and grows with every deliberate new job for the same fingerprint (a retry
    after a failure or cancellation, `--replace`, a retrain after drift), so providers whose ids or
    tokens derive from the identity never re-adopt a dead job.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    model: str
    fingerprint: str
    attempt: int = 1


def short_hash(*parts: str, chars: int = 10) -> str:
    """Lowercase hex digest of the parts, for tags and ids that must be short (collision bound:
    2**(4*chars) per project)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:chars]


def unix_seconds(value: Any) -> int:
    """A provider's timestamp (RFC 3339 string, datetime or unix number) as unix seconds; 0 when absent
    or unreadable. The interface speaks unix seconds whatever the provider sends."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value:
        try:
            return int(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return 0
    return 0


def project_key(project: str) -> str:
    """4 hex characters naming a project inside tags, ids and labels (a list filters by its prefix)."""
    return short_hash("ftops-project", project, chars=4)


def hashed_group(project: str, model: str, fingerprint: str, sep: str = "") -> str:
    """The identity group for providers whose carriers are short (suffix tags, ids, labels, job names):
    the project key, then 10 hex characters of (project, model, fingerprint): 40 bits per project, so n
    declarations collide with probability about n²/2⁴¹."""
    return project_key(project) + sep + short_hash("ftops-identity", project, model, fingerprint, chars=10)


# --------------------------------------------------------------------------- capabilities


class ParamSpec(BaseModel):
    """One hyperparameter or option a provider accepts, in ftops's snake_case vocabulary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: str  # "int" | "float" | "bool" | "str" | "choice"
    wire: str = ""  # the provider's own field name (informational; translate() is the truth)
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    auto: bool = True  # "auto" accepted (means: leave it to the provider)
    methods: frozenset[str] = frozenset({"supervised", "dpo", "reinforcement"})
    description: str = ""

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return "a string"
        noun = "an integer" if self.kind == "int" else "a number"
        if self.min is not None and self.max is not None:
            lo = "(" if self.min_exclusive else "["
            return f"{noun} in {lo}{self.min:g}, {self.max:g}]"
        if self.min is not None:
            return f"{noun} {'>' if self.min_exclusive else '>='} {self.min:g}"
        return noun

    def check(self, value: Any) -> str | None:
        """None when `value` is acceptable, else what is wrong (never echoes secrets: values are numbers)."""
        if value == "auto":
            return None if self.auto else f"`{self.name}` has no `auto` on this provider; give {self.describe()}"
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"`{self.name}` must be true or false, got {value!r}"
        if self.kind == "str":
            return None if isinstance(value, str) else f"`{self.name}` must be a string"
        if self.kind == "choice":
            return None if value in self.choices else (
                f"`{self.name}` must be {self.describe()}, got {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                self.kind == "int" and isinstance(value, float)):
            return f"`{self.name}` must be {self.describe()}, got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"`{self.name}` must be a finite number, got {value!r}"
        low = self.min is not None and (value <= self.min if self.min_exclusive else value < self.min)
        if low or (self.max is not None and value > self.max):
            return f"`{self.name}` must be {self.describe()}, got {value!r}"
        return None


class Cutoff(BaseModel):
    """A dated end announced by the provider, with where the date comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: datetime.date
    source: str
    exact: bool = True  # False: announced as "no earlier than" (warn, never refuse)


class Capabilities(BaseModel):
    """What a provider supports and its limits, declared once; validation, plan and docs read these."""

    model_config = ConfigDict(frozen=True)

    name: str  # the provider type, e.g. "together"
    title: str = ""  # "Together AI"
    default_base_url: str = ""
    key_env: str = ""
    credential_chain: str = ""
    """Set when credentials come from the provider's own chain (AWS, Google ADC) rather than one key
    variable: then no key is required up front, and this says where they are looked for."""
    methods: frozenset[str] = frozenset({"supervised", "dpo", "reinforcement"})
    hyperparameters: tuple[ParamSpec, ...] = ()
    refused_hyperparameters: dict[str, str] = Field(default_factory=dict)
    """ftops hyperparameter names this provider has no place for -> what it takes instead."""
    options: tuple[ParamSpec, ...] = ()
    """Provider-only settings, declared under a model's (or provider entry's) `options:`."""
    seed: bool = True
    seed_max: int = 2147483647
    user_metadata: bool = True
    """Jobs carry user `metadata` (else a declared `metadata:` is refused, never dropped)."""
    max_metadata_pairs: int = 16
    metadata_filter: bool = True
    """Server-side filter of the job list by ftops's identity (else: filtered client-side)."""
    max_suffix_chars: int = 64
    suffix_pattern: str = r"^[A-Za-z0-9_.-]+$"
    identity_chars: int = 0
    """Characters of the suffix that ftops's identity tag takes (the user's suffix gets the rest)."""
    identity: str = ""
    """How ftops recognises its jobs and files without state (for the docs)."""
    uploads_api: bool = True
    max_file_bytes: int = 512 * MB
    """Largest file accepted by a direct upload."""
    max_upload_bytes: int = 8 * GB
    """Largest file accepted at all (through a multipart/chunked upload where one exists)."""
    data_formats: frozenset[str] = frozenset({"chat", "preference", "reinforcement"})
    job_creates_per_hour: int = 10
    file_uploads_per_hour: int = 100
    pause_resume: bool = True
    checkpoints: bool = True
    price_estimate_endpoint: bool = False
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    """USD per 1M trained tokens, by method then exact base model id (no prefixes: an unknown model
    has an unknown price)."""
    prices_source: str = ""
    prices_checked: bool = True
    """False when the table could not be checked against the provider's page: every estimate says so."""
    new_jobs_until: Cutoff | None = None
    """Last day the provider accepts new fine-tuning jobs, when announced."""
    model_shutdowns: dict[str, Cutoff] = Field(default_factory=dict)
    """Base model id -> the day it (and every fine-tune built on it) stops working."""
    model_aliases: dict[str, str] = Field(default_factory=dict)
    """Alias -> the model id it stands for (`gpt-4o-mini` -> its snapshot): dates follow the alias."""
    base_models: frozenset[str] = frozenset()
    """Fine-tunable base model ids known offline (with `model_shutdowns` and `prices`): an offline plan
    warns about a `base_model` none of them names."""
    model_catalogue: bool = False
    """`list_models()` names every model a job may start from, so refresh reads it (one request) and a
    `base_model` absent from it is refused at plan. False: no catalogue, or an incomplete one."""
    fine_tuned_model_pattern: str = ""
    lists_fine_tuned_models: bool = False
    """`list_models` includes the fine-tuned models, so refresh can see one deleted outside ftops (drift)."""
    tiktoken_counts: bool = False
    """Token counts made with tiktoken are this provider's own (else they are approximate, and said to be)."""
    price_table: str = ""
    """Where prices come from when `prices` is empty: "shipped" = ftops/data/pricing.json (by model family)."""
    deployment_fields: tuple[ParamSpec, ...] = ()
    """Fields of a model's `deployment:` block (empty: the provider has no deployments; the block is refused)."""
    deployment_prices: dict[str, float] = Field(default_factory=dict)
    """USD per hour of a deployment, by the provider's own key (e.g. accelerator type)."""
    upload_format: str | None = None
    """The format training data is converted to before upload (`ftops.datasets.convert.TARGETS`), or
    None: uploaded as declared. `Provider.upload_format` may choose per base model."""

    def known_base_models(self) -> set[str]:
        """Every base model id these capabilities name (the offline catalogue)."""
        return (set(self.base_models) | set(self.model_shutdowns) | set(self.model_aliases)
                | {m for t in self.prices.values() for m in t})

    def param(self, name: str, *, option: bool = False) -> ParamSpec | None:
        return next((p for p in (self.options if option else self.hyperparameters) if p.name == name), None)

    @property
    def max_user_suffix(self) -> int:
        return self.max_suffix_chars - (self.identity_chars + 1 if self.identity_chars else 0)


# --------------------------------------------------------------------------- validation


class ModelSpec(BaseModel):
    """A declared model as the provider sees it: ftops's one vocabulary, provider-neutral."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    base_model: str
    method: str = "supervised"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    """Declared keys only (absent means auto)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Provider defaults merged with the model's own `options:`; `options_declared` says which were the model's."""
    options_from_model: frozenset[str] = frozenset()
    suffix: str | None = None
    seed: int | None = None
    seed_declared: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)
    integrations: list[dict[str, Any]] = Field(default_factory=list)
    grader: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    has_validation_file: bool = False


class Problem(BaseModel):
    """A declared field the provider cannot honour; `path` is relative to the model (or provider entry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: tuple[str, ...]
    code: str
    message: str
    hint: str = ""
    severity: str = "error"
    on_provider: bool = False  # the offending value came from the provider entry's `options:`


# --------------------------------------------------------------------------- remote objects


class JobError(BaseModel):
    """Why a job failed."""

    model_config = ConfigDict(extra="ignore")

    code: str | None = None
    message: str | None = None
    param: str | None = None


class RemoteFile(BaseModel):
    """An uploaded file as the provider reports it; `sha256` is filled by the provider from the name."""

    model_config = ConfigDict(extra="ignore")

    id: str
    filename: str
    bytes: int | None = None
    purpose: str = ""
    status: str | None = None
    created_at: int = 0
    sha256: str | None = None
    usable: bool = True
    """False when the provider says the file errored or was deleted: never reused."""
    status_details: str | None = None
    """The provider's reason when `status` is an error (OpenAI's `status_details`)."""


class RemoteJob(BaseModel):
    """A fine-tuning job. `status` is the provider's word, `state` ftops's; identity fields are the
    provider's reading of its own identity carrier (metadata, suffix tag, id)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: str
    state: JobState = JobState.UNKNOWN
    model: str = ""
    fine_tuned_model: str | None = None
    training_file: str | None = None
    validation_file: str | None = None
    metadata: dict[str, str] | None = None
    seed: int | None = None
    trained_tokens: int | None = None
    created_at: int = 0
    finished_at: int | None = None
    estimated_finish: int | None = None
    error: JobError | None = None
    method: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None
    result_files: list[str] | None = None
    integrations: list[dict[str, Any]] | None = None
    # identity, as read by the provider
    group: str | None = None
    """`Provider.group_key(project, model, fingerprint)` of the job, or None: not ftops's (or not this project's)."""
    attempt: int | None = None
    declared_model: str | None = None
    """The declared model name, when the provider's identity carrier spells it (else matched by group)."""
    declared_fingerprint: str | None = None
    existed: bool = False
    """Returned by `create_job` when the create met a job that already had this identity (a client-chosen
    id answered "already exists"): an adoption, not a new job."""


class RemoteDeployment(BaseModel):
    """A deployment serving a fine-tuned model (providers whose models must be deployed to be called)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    model: str  # the fine-tuned model it serves
    status: str  # the provider's own word
    ready: bool = False
    gone: bool = False
    settings: dict[str, Any] = Field(default_factory=dict)  # in the provider's `deployment_fields` vocabulary
    endpoint: str = ""  # what to call
    key: str = ""  # the identity carrier (`Provider.deployment_key`), when the provider has one


class JobEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    created_at: int
    level: str = "info"
    message: str
    type: str | None = None
    data: dict[str, Any] | None = None


class JobCheckpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    step_number: int
    metrics: dict[str, Any] = {}


class RemoteModel(BaseModel):
    """A model in the provider's catalogue. `shutdown_date`: unix time or ISO date, as given."""

    model_config = ConfigDict(extra="ignore")

    id: str
    created: int | None = None
    owned_by: str | None = None
    shutdown_date: int | str | None = None
    new_jobs_until: int | str | None = None
    """Last day new fine-tuning jobs may start from this model, when the catalogue says (unix time or ISO)."""
    dates_exact: bool = True
    """False: the catalogue's dates are announced as "no earlier than" (warn, never refuse)."""


class PriceEstimate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: float | None
    source: str  # "provider estimate" | "price table" | ...


# --------------------------------------------------------------------------- the interface


def remote_filename(path: str, sha256: str) -> str:
    """An uploaded file's name: readable stem plus the content hash, so it is found without state."""
    stem = path.rsplit("/", 1)[-1]
    stem = stem.removesuffix(".jsonl")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:48] or "data"
    return f"{stem}.sha256-{sha256}.jsonl"


_SHA_IN_NAME = re.compile(r"sha256-([0-9a-f]{64})")


def sha_of_remote_name(filename: str) -> str | None:
    m = _SHA_IN_NAME.search(filename or "")
    return m.group(1) if m else None


class Provider(ABC):
    """What the engine needs from a fine-tuning provider; one subclass per provider module.

    Reads are retried inside the provider; writes are not repeated when they may have been applied
    (the error says `maybe_committed` and the executor looks first). Only `NotFoundError` means absent.
    """

    capabilities: Capabilities
    name: str = "default"  # the config's key for this provider entry
    endpoint: str = ""
    requests_sent: int = 0
    sandbox: bool = False

    # ----------------------------------------------------------- pure: validation and translation

    def validate(self, spec: ModelSpec) -> list[Problem]:
        """Every declared field this provider cannot honour, from the capabilities (override to add)."""
        caps = self.capabilities
        out: list[Problem] = []
        title = caps.title or caps.name
        if spec.method not in caps.methods:
            out.append(Problem(path=("method",), code="provider.unsupported_method",
                               message=f"{title} does not offer method `{spec.method}`",
                               hint="use one of: " + ", ".join(sorted(caps.methods))))
            return out
        known = {p.name: p for p in caps.hyperparameters if spec.method in p.methods}
        for key, value in sorted(spec.hyperparameters.items()):
            if value == "auto" and key not in caps.refused_hyperparameters:
                continue
            p = known.get(key)
            if p is None:
                if key in caps.refused_hyperparameters:
                    hint = caps.refused_hyperparameters[key]
                else:
                    hint = did_you_mean(key, list(known)) or (
                        "it takes: " + ", ".join(sorted(known)) if known else "remove it")
                out.append(Problem(path=("hyperparameters", key), code="provider.unsupported_field",
                                   message=f"{title} has no hyperparameter `{key}` for method {spec.method}",
                                   hint=hint))
                continue
            bad = p.check(value)
            if bad:
                out.append(Problem(path=("hyperparameters", key), code="provider.invalid_value", message=bad))
        opts = {p.name: p for p in caps.options if spec.method in p.methods}
        all_opts = {p.name for p in caps.options}
        for key, value in sorted(spec.options.items()):
            on_provider = key not in spec.options_from_model
            where = ("options", key)
            p = opts.get(key)
            if p is None:
                if key in all_opts:
                    msg = f"{title}'s option `{key}` does not apply to method {spec.method}"
                    hint = "remove it"
                else:
                    msg = f"{title} has no option `{key}`"
                    hint = did_you_mean(key, sorted(all_opts)) or (
                        f"{title} takes: " + ", ".join(sorted(all_opts)) if all_opts
                        else f"{title} takes no options")
                out.append(Problem(path=where, code="provider.unknown_option", message=msg, hint=hint,
                                   on_provider=on_provider))
                continue
            bad = p.check(value)
            if bad:
                out.append(Problem(path=where, code="provider.invalid_value", message=bad, on_provider=on_provider))
        if spec.seed_declared and not caps.seed:
            out.append(Problem(path=("seed",), code="provider.unsupported_field",
                               message=f"{title} jobs take no seed", hint="remove `seed:`"))
        if spec.seed is not None and spec.seed > caps.seed_max:
            out.append(Problem(path=("seed",), code="provider.invalid_value",
                               message=f"{title} takes seeds up to {caps.seed_max}", hint="pick a smaller seed"))
        if spec.metadata and not caps.user_metadata:
            out.append(Problem(path=("metadata",), code="provider.unsupported_field",
                               message=f"{title} jobs carry no metadata, so `metadata:` would be dropped",
                               hint="remove `metadata:` (ftops recognises its jobs by "
                                    f"{caps.identity or 'its own identity'})"))
        if spec.suffix is not None:
            limit = caps.max_user_suffix
            if len(spec.suffix) > limit:
                why = (f" ({caps.max_suffix_chars} in all, {caps.identity_chars + 1} taken by ftops's identity tag)"
                       if caps.identity_chars else "")
                out.append(Problem(path=("suffix",), code="provider.invalid_value",
                                   message=f"{title} takes a suffix of at most {limit} characters{why}; "
                                           f"this one has {len(spec.suffix)}",
                                   hint=f"shorten it, e.g. `suffix: {spec.suffix[:limit]}`"))
            elif not re.match(caps.suffix_pattern, spec.suffix):
                out.append(Problem(path=("suffix",), code="provider.invalid_value",
                                   message=f"{title} does not accept this suffix (allowed: {caps.suffix_pattern})"))
        return out

    @abstractmethod
    def translate(self, spec: ModelSpec, *, training: str, validation: str | None) -> dict[str, Any]:
        """The exact create-job body, without identity fields; `training`/`validation` are placeholders."""

    def fingerprint_material(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """What the fingerprint hashes: the body without user `metadata` (it never retrains, STYLE.md
        habit 7), tagged with the provider type, so a move between providers is a replace even when
        two bodies look alike."""
        return {"provider": self.capabilities.name, **{k: v for k, v in body.items() if k != "metadata"}}

    @abstractmethod
    def group_key(self, project: str, model: str, fingerprint: str) -> str:
        """The identity group that the provider's jobs for (project, model, fingerprint) carry."""

    # ----------------------------------------------------------- status

    @abstractmethod
    def job_state(self, status: str) -> JobState:
        """Map the provider's status word (unknown words -> UNKNOWN)."""

    # ----------------------------------------------------------- files

    def upload_format(self, base_model: str, method: str) -> str | None:
        """The format this base model's data is converted to before upload (None: as declared)."""
        return self.capabilities.upload_format

    def convert(self, path: Path, *, sha256: str, base_model: str, method: str,
                cache_dir: Path) -> ConvertedFile | None:
        """The bytes to upload for the dataset at `path` (sha256 `sha256`), converted and cached, or
        None when the provider takes the data as declared. Raises `ConversionError` (with line numbers)."""
        target = self.upload_format(base_model, method)
        if target is None:
            return None
        return convert_cached(path, sha256=sha256, target=target, cache_dir=cache_dir)

    @abstractmethod
    def list_files(self) -> list[RemoteFile]:
        """Fine-tuning files, every page; `sha256` filled from the name where ftops named it."""

    @abstractmethod
    def upload_file(self, path: Path, *, sha256: str, display_path: str,
                    on_progress: ProgressCallback | None = None) -> RemoteFile:
        """Upload the bytes at `path` (whose sha256 the caller verified) under a hash-carrying name."""

    @abstractmethod
    def delete_file(self, file_id: str) -> None: ...

    def wait_until_usable(self, file: RemoteFile) -> RemoteFile:
        """Block until the provider can train on `file` (just uploaded or adopted) and return its
        latest state; raise `FileProcessingError` if it ended in an error or never became usable.

        For providers whose files pass through a processing state (OpenAI: `uploaded` ->
        `processed` | `error`). Default: usable as soon as the upload answered."""
        return file

    # ----------------------------------------------------------- jobs

    @abstractmethod
    def list_jobs(self, project: str) -> list[RemoteJob]:
        """This project's ftops jobs (identity fields filled), every page: one paginated list."""

    def find_jobs(self, identity: Identity) -> list[RemoteJob]:
        """Jobs carrying this identity's group (any attempt): the look before a create."""
        key = self.group_key(identity.project, identity.model, identity.fingerprint)
        return [j for j in self.list_jobs(identity.project) if j.group == key]

    @abstractmethod
    def get_job(self, job_id: str) -> RemoteJob: ...

    @abstractmethod
    def create_job(self, body: Mapping[str, Any], identity: Identity, files: Mapping[str, str]) -> RemoteJob:
        """Create the job: bind `sha256:` placeholders to `files` ids and add the identity fields.

        Not repeated after an ambiguous failure (raises with `maybe_committed=True`)."""

    @abstractmethod
    def cancel_job(self, job_id: str) -> RemoteJob: ...

    def pause_job(self, job_id: str) -> RemoteJob:
        raise NotImplementedError(f"{self.capabilities.title or self.capabilities.name} cannot pause jobs")

    def resume_job(self, job_id: str) -> RemoteJob:
        raise NotImplementedError(f"{self.capabilities.title or self.capabilities.name} cannot resume jobs")

    def list_events(self, job_id: str, after: str | None = None, limit: int | None = None) -> list[JobEvent]:
        return []

    def list_checkpoints(self, job_id: str) -> list[JobCheckpoint]:
        return []

    # ----------------------------------------------------------- models, cost, inference

    def list_models(self) -> list[RemoteModel]:
        return []

    def delete_model(self, model_id: str) -> None:
        raise NotImplementedError(f"{self.capabilities.title or self.capabilities.name} cannot delete models")

    def config_keys_for_param(self, param: str) -> tuple[str, ...]:
        """The ftops.yaml keys (under the model) behind a request field the provider rejected, for a
        `file:line` on a 400; () when unknown. Override for the provider's own field names."""
        parts = param.replace("[", ".").replace("]", "").split(".")
        if parts[0] in ("training_file", "validation_file", "suffix", "seed", "metadata"):
            return tuple(parts[:1])
        return ()

    def estimate_price(self, body: Mapping[str, Any], files: Mapping[str, str]) -> float | None:
        """The provider's own estimate for this body (files bound), when it has an endpoint; else None."""
        return None

    def chat(self, model: str, messages: list[dict[str, Any]]) -> str:
        raise NotImplementedError(f"{self.capabilities.title or self.capabilities.name}: no inference call")

    # ----------------------------------------------------------- deployments (capabilities.deployment_fields)

    def validate_deployment(self, settings: Mapping[str, Any]) -> list[Problem]:
        """Problems of a `deployment:` block, from `capabilities.deployment_fields` (paths relative to it)."""
        caps = self.capabilities
        title = caps.title or caps.name
        if not caps.deployment_fields:
            return [Problem(path=(), code="provider.unsupported_field",
                            message=f"{title} has no deployments: its fine-tuned models are called directly",
                            hint="remove `deployment:`")]
        fields = {p.name: p for p in caps.deployment_fields}
        out: list[Problem] = []
        for key, value in sorted(settings.items()):
            p = fields.get(key)
            if p is None:
                out.append(Problem(path=(key,), code="provider.unknown_option",
                                   message=f"{title} deployments have no field `{key}`",
                                   hint=did_you_mean(key, sorted(fields)) or "it takes: " + ", ".join(sorted(fields))))
                continue
            bad = p.check(value)
            if bad:
                out.append(Problem(path=(key,), code="provider.invalid_value", message=bad))
        return out

    def validate_model_deployment(self, spec: ModelSpec, settings: Mapping[str, Any]) -> list[Problem]:
        """Problems of a model's `deployment:` block, including those that depend on the model (a base model
        that cannot be deployed); paths relative to the block. Default: `validate_deployment(settings)`."""
        return self.validate_deployment(settings)

    def deployment_key(self, group: str) -> str:
        """The identity the deployment of one identity group carries (`RemoteDeployment.key`); empty: none."""
        return ""

    def model_deployment_key(self, project: str, model: str, group: str) -> str:
        """The key of a declared model's deployment. Default: `deployment_key(group)`, one per fingerprint:
        a replaced model gets a new deployment and the old one is kept until `--prune`. A provider that
        swaps the served model in place keys it by (project, model) instead, so after a replace the one
        deployment keeps serving the old model until the new job succeeds, then is updated to it."""
        return self.deployment_key(group)

    def list_deployments(self, project: str) -> list[RemoteDeployment]:
        return []

    def create_deployment(self, name: str, model_id: str, settings: Mapping[str, Any],
                          identity: Identity) -> RemoteDeployment:
        raise NotImplementedError(f"{self.capabilities.title or self.capabilities.name} has no deployments")

    def update_deployment(self, deployment_id: str, model_id: str, settings: Mapping[str, Any]) -> RemoteDeployment:
        raise NotImplementedError(f"{self.capabilities.title or self.capabilities.name} has no deployments")

    def delete_deployment(self, deployment_id: str) -> None:
        raise NotImplementedError(f"{self.capabilities.title or self.capabilities.name} has no deployments")

    def deployment_cost_per_hour(self, settings: Mapping[str, Any]) -> float | None:
        """USD per hour of a deployment with these settings, when published; None: unknown."""
        return None

    def close(self) -> None:  # noqa: B027 -- optional
        pass


def bind_files(body: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `body` with every top-level `sha256:<hex>` string replaced by its file id."""
    out: dict[str, Any] = {}
    for k, v in body.items():
        if isinstance(v, str) and v.startswith(FILE_PLACEHOLDER):
            sha = v[len(FILE_PLACEHOLDER):]
            if sha not in files:
                raise KeyError(f"no uploaded file for {k} ({sha[:12]}…)")
            out[k] = files[sha]
        else:
            out[k] = v
    return out
