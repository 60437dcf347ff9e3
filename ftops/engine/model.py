"""Engine values: desired models, the remote snapshot, and the plan.

All of these are frozen pydantic models so they serialise: a plan can be saved, reviewed in a PR
and applied later (with a stale check against the state serial and lineage it was built from).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ftops.providers import RemoteDeployment, RemoteFile, RemoteJob, RemoteModel

PLAN_FORMAT_VERSION = "2.0"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetRef(_Frozen):
    """A dataset as a desired model uses it: identified by the sha256 of its bytes."""

    path: str  # relative to the project, as written in ftops.yaml
    sha256: str
    bytes: int
    format: str = "unknown"
    valid: bool = True
    examples: int = 0
    tokens_per_epoch: int = 0
    approximate: bool = False
    # Set when the provider trains on a converted copy: `sha256`/`bytes` are then the converted
    # file's (what is uploaded and fingerprinted), these the declared file's.
    converted_to: str | None = None
    source_sha256: str | None = None
    source_bytes: int | None = None


class CostInfo(_Frozen):
    usd: float | None = None
    trained_tokens: int = 0
    n_epochs: int = 0
    price_per_1m: float | None = None
    approximate: bool = False
    note: str = ""


#: A chained model's base model before its upstream's job succeeded (Terraform's "known after apply").
KNOWN_AFTER_APPLY = "(known after apply)"


class DesiredModel(_Frozen):
    """One declared model, resolved: seeds picked, datasets hashed, body and fingerprint computed."""

    name: str
    provider: str = "default"  # the config's name of the provider entry
    provider_type: str = ""
    fingerprint: str
    group: str  # the provider's identity group for (project, name, fingerprint)
    seed: int | None
    seed_declared: bool
    attributes: dict[str, Any]  # the human view that diffs are computed on
    body: dict[str, Any]  # the translated request, sha256 placeholders for file ids, no identity fields
    cancel_superseded: bool = True
    prevent_destroy: bool = False
    moved_from: str | None = None  # the model's previous name (`moved_from:`)
    training: DatasetRef
    validation: DatasetRef | None = None
    cost: CostInfo = CostInfo()
    source: str = ""  # "ftops.yaml:12:3", for errors that concern this model
    deployment: dict[str, Any] | None = None  # the declared `deployment:` block (the provider's fields)
    deployment_key: str = ""  # the provider's identity for this fingerprint's deployment
    deployment_cost_per_hour: float | None = None
    upstream: str | None = None  # a chain: the declared model whose fine-tuned model is the base model
    upstream_ready: bool = True  # False until the upstream's job succeeded (base model known after apply)

    @property
    def address(self) -> str:
        return f"models.{self.name}"

    @property
    def datasets(self) -> list[DatasetRef]:
        return [self.training] + ([self.validation] if self.validation else [])


class ProviderSnapshot(_Frozen):
    """What refresh read from one provider entry."""

    endpoint: str
    files: list[RemoteFile] = Field(default_factory=list)
    jobs: list[RemoteJob] = Field(default_factory=list)
    fine_tuned_models: list[str] | None = None  # fine-tuned model ids, when the provider lists them (drift)
    deployments: list[RemoteDeployment] = Field(default_factory=list)
    models: list[RemoteModel] = Field(default_factory=list)
    """The provider's model catalogue, when it publishes a complete one (`Capabilities.model_catalogue`)."""
    requests: int = 0  # HTTP requests refresh made (for the scale target)


class RemoteSnapshot(_Frozen):
    """What refresh read from the providers: the only input of `plan` that comes from the network."""

    providers: dict[str, ProviderSnapshot] = Field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.providers.values())

    def of(self, provider: str) -> ProviderSnapshot:
        return self.providers.get(provider) or ProviderSnapshot(endpoint="")

    @property
    def jobs(self) -> list[RemoteJob]:
        return [j for p in self.providers.values() for j in p.jobs]


class ModelAction(str, Enum):
    """Completes "model X will be …"."""

    CREATE = "create"
    REPLACE = "replace"
    RETRY = "retry"
    NOOP = "no-op"
    ADOPT = "adopt"
    ORPHAN = "orphan"

    @property
    def creates_job(self) -> bool:
        return self in (ModelAction.CREATE, ModelAction.REPLACE, ModelAction.RETRY)

    @property
    def terraform_actions(self) -> list[str]:
        # A replace deletes nothing: the old fine-tuned model stays (and stays in history).
        return {"create": ["create"], "replace": ["create"], "retry": ["create"],
                "no-op": ["no-op"], "adopt": ["no-op"], "orphan": ["no-op"]}[self.value]


class FileAction(str, Enum):
    UPLOAD = "upload"
    REUSE = "reuse"
    ADOPT = "adopt"


class AttributeChange(_Frozen):
    path: str  # dotted, e.g. "hyperparameters.n_epochs"
    before: Any = None
    after: Any = None


class FileChange(_Frozen):
    provider: str = "default"
    sha256: str
    path: str
    bytes: int
    action: FileAction
    filename: str  # the remote name, which carries the hash
    file_id: str | None = None  # known id (reuse / adopt)
    models: list[str] = Field(default_factory=list)
    converted_to: str | None = None  # uploaded as `path` converted to this format (see DatasetRef)
    source_sha256: str | None = None
    source_bytes: int | None = None


class Deadline(_Frozen):
    """A dated end that concerns one model, from the provider's catalogue or its capabilities."""

    kind: str  # base_model_retires | fine_tuned_model_stops | new_jobs_end
    date: str  # ISO date
    days: int  # from "today" (negative: already past)
    source: str
    exact: bool = True  # False: announced as "no earlier than" (warned, never refused)


class ModelChange(_Frozen):
    name: str
    provider: str = "default"
    action: ModelAction
    reason: str  # stable slug, for people and JSON; apply never branches on it
    fingerprint: str | None = None
    group: str | None = None  # the identity group apply creates and looks up under
    attempt: int = 1
    before_fingerprint: str | None = None
    changes: list[AttributeChange] = Field(default_factory=list)
    job_id: str | None = None  # the existing job (no-op / adopt / orphan) or the failed one (retry)
    status: str | None = None
    fine_tuned_model: str | None = None
    error: dict[str, Any] | None = None
    seed: int | None = None
    attributes: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    datasets: list[str] = Field(default_factory=list)  # sha256 of the files the job needs
    cost: CostInfo | None = None
    source: str = ""
    prevent_destroy: bool = False
    deadlines: list[Deadline] = Field(default_factory=list)
    """Announced ends that concern this model (base model retirement, the provider's last day for jobs)."""
    waits_for: str | None = None  # a chain: the job is created only once this upstream model's job has its model

    @property
    def address(self) -> str:
        return f"models.{self.name}"


class Drift(_Frozen):
    """Something ftops made that changed outside ftops (Terraform's "changed outside"): shown in its own
    section; the plan's action for it (a retrain, a re-upload) is in `models` / `files`."""

    address: str
    kind: str  # drift_model_deleted | drift_file_deleted
    id: str
    detail: str = ""


class CancelChange(_Frozen):
    """A live job apply will cancel: a duplicate of another job's whole identity, or superseded by a
    new fingerprint. Cancelling cannot be undone (the Markdown banner says so); finished models are
    never touched."""

    name: str
    provider: str = "default"
    job_id: str
    status: str
    reason: str  # cancel_duplicate | cancel_superseded
    kept_job_id: str | None = None
    remaining_usd: float | None = None


class DeploymentAction(str, Enum):
    """Completes "deployment models.X.deployment will be …"."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "no-op"
    WAIT = "wait"  # declared, but its model has no succeeded job yet: created by a later apply
    KEEP = "keep"  # serves a superseded or undeclared model: kept until `--prune`

    @property
    def writes(self) -> bool:
        return self in (DeploymentAction.CREATE, DeploymentAction.UPDATE, DeploymentAction.DELETE)


class DeploymentChange(_Frozen):
    """A deployment serving a model (`models.NAME.deployment`): created after its job succeeded, updated when
    its settings change, deleted only with `--prune` and never under `lifecycle.prevent_destroy`."""

    name: str
    provider: str = "default"
    action: DeploymentAction
    reason: str
    deployment_id: str | None = None
    key: str = ""
    group: str | None = None
    fingerprint: str | None = None
    attempt: int = 1
    model_id: str | None = None  # the fine-tuned model it serves (or will)
    settings: dict[str, Any] = Field(default_factory=dict)
    before: dict[str, Any] | None = None
    status: str | None = None
    endpoint: str | None = None
    cost_per_hour: float | None = None  # USD; None: unknown
    prevent_destroy: bool = False

    @property
    def address(self) -> str:
        return f"models.{self.name}.deployment"


class MoveChange(_Frozen):
    """A state record that apply renames (a state-only change: nothing is retrained or sent):
    `moved_from:` names it, or a new model's fingerprint matches an orphan's."""

    from_name: str
    to_name: str
    reason: str  # move_because_moved_from | move_because_fingerprint_matches_orphan
    fingerprint: str


class DeleteChange(_Frozen):
    """Something `--prune`/`destroy` deletes, shown before anything happens. `kind` is generic so other
    remote objects (deployments) slot in: job (cancelled), model (a fine-tuned model), file."""

    kind: str
    name: str = ""  # the model it belongs to ("" for a dataset file)
    provider: str = "default"
    id: str
    status: str | None = None
    reason: str  # delete_orphan | delete_superseded_model | delete_unused_file | destroy

    @property
    def address(self) -> str:
        return f"models.{self.name}" if self.name else f"files.{self.id}"


class IntentResolution(_Frozen):
    """A remote write an earlier apply started but never confirmed, and what the remote says of it."""

    kind: str  # upload_file | create_job
    key: str  # sha256 or fingerprint
    model: str = ""
    found: str | None = None  # the file or job id that shows the write happened; None: it never committed


class ProviderInfo(_Frozen):
    type: str
    endpoint: str
    sandbox: bool = False


class PlanSummary(_Frozen):
    upload: int = 0
    create: int = 0
    replace: int = 0
    retry: int = 0
    unchanged: int = 0
    adopt: int = 0
    orphan: int = 0
    cancel: int = 0
    deploy: int = 0
    deploy_update: int = 0
    deploy_delete: int = 0
    move: int = 0
    delete: int = 0


class Plan(_Frozen):
    """A complete, serialisable plan; `apply` walks `files` then `models`."""

    format_version: str = PLAN_FORMAT_VERSION
    project: str
    provider: str  # the default provider's type (see `providers` for every entry)
    endpoint: str
    providers: dict[str, ProviderInfo] = Field(default_factory=dict)
    config_digest: str = ""  # sha256 of the resolved configuration the plan was made from
    offline: bool = False
    state_lineage: str
    state_serial: int
    files: list[FileChange] = Field(default_factory=list)
    models: list[ModelChange] = Field(default_factory=list)
    cancels: list[CancelChange] = Field(default_factory=list)
    drift: list[Drift] = Field(default_factory=list)
    deployments: list[DeploymentChange] = Field(default_factory=list)
    prune: bool = False
    moves: list[MoveChange] = Field(default_factory=list)
    deletes: list[DeleteChange] = Field(default_factory=list)
    summary: PlanSummary = PlanSummary()
    cost_usd: float | None = None
    cost_approximate: bool = False
    warnings: list[dict[str, Any]] = Field(default_factory=list)
    intents: list[IntentResolution] = Field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """Remote changes only: adoption and orphans write state, not the provider."""
        s = self.summary
        return bool(s.upload or s.create or s.replace or s.retry or s.cancel or s.deploy or s.deploy_update
                    or s.deploy_delete or s.delete)

    def model(self, name: str) -> ModelChange | None:
        return next((m for m in self.models if m.name == name), None)
