"""Pydantic models of `ftops.yaml`: the single source of truth for validation and the JSON Schema.

Every model forbids unknown keys (so a typo is an error with a suggestion, not a silent no-op),
is frozen (the engine hashes these values), and is strict (YAML's `yes` is not a number and
`"3"` is not an int). Ranges mirror the OpenAI fine-tuning API so a bad value fails here, with
a line number, instead of after an upload. Errors raised by custom checks use
`PydanticCustomError` with a `ftops.*`-style type and may carry `hint`/`field` in their context,
which `ftops.config.loader` turns into diagnostics.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ftops.diagnostics import did_you_mean

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SUFFIX_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
RESERVED_METADATA_PREFIX = "ftops_"
#: ftops adds ftops_project, ftops_model and ftops_fp; the API allows 16 pairs in all.
MAX_USER_METADATA = 13
MAX_SEED = 2147483647
#: USD per 1M training tokens; far above any published price, low enough that no sum overflows.
MAX_PRICE_PER_1M = 1_000_000

METHODS = ("supervised", "dpo", "reinforcement")
Method = Literal["supervised", "dpo", "reinforcement"]
ModelName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def _custom(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    """A validation error whose `type` the loader maps to a diagnostic code (`out_of_range`...)."""
    return PydanticCustomError(kind, message, ctx or None)


class _Strict(BaseModel):
    # allow_inf_nan=False: YAML's `.inf`/`.nan` are floats; no field of ftops.yaml means them.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- hyperparameters

# name -> (number type, low, high, low exclusive, keyword). The schema comes from the
# annotations; this table gives one readable message instead of pydantic's per-union-member list.
_HP_RULES: dict[str, tuple[type, float, float | None, bool, str]] = {
    "batch_size": (int, 1, 256, False, "auto"),
    "learning_rate_multiplier": (float, 0, None, True, "auto"),
    "n_epochs": (int, 1, 50, False, "auto"),
    "beta": (float, 0, 2, True, "auto"),
    "compute_multiplier": (float, 0, None, True, "auto"),
    "eval_interval": (int, 1, None, False, "auto"),
    "eval_samples": (int, 1, None, False, "auto"),
}


def _describe(rule: tuple[type, float, float | None, bool, str]) -> str:
    typ, lo, hi, lo_open, kw = rule
    noun = "an integer" if typ is int else "a number"
    if hi is None:
        rng = f"{'>' if lo_open else '>='} {lo:g}"
        return f'"{kw}" or {noun} {rng}'
    if lo_open:
        return f'"{kw}" or {noun} in ({lo:g}, {hi:g}]'
    return f'"{kw}" or {noun} from {lo:g} to {hi:g}'


def _check_hp(name: str, value: Any) -> None:
    """Raise one clear error for a bad hyperparameter value."""
    rule = _HP_RULES[name]
    typ, lo, hi, lo_open, kw = rule
    allowed = _describe(rule)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (typ is int and isinstance(value, float)):
        hint = ""
        if isinstance(value, bool):
            hint = "YAML reads yes/no/on/off as booleans; write a number"
        elif isinstance(value, str):
            hint = f'write "{kw}" exactly, or an unquoted number'
        raise _custom("invalid_value", f"{name} must be {allowed}, got {value!r}", hint=hint)
    if not math.isfinite(value):
        raise _custom("invalid_value", f"{name} must be {allowed}, got {value!r}",
                      hint="`.inf` and `.nan` are not numbers a provider accepts")
    too_low = value <= lo if lo_open else value < lo
    if too_low or (hi is not None and value > hi):
        raise _custom("out_of_range", f"{name} must be {allowed}, got {value!r}")


class SupervisedHyperparameters(_Strict):
    """Hyperparameters of supervised fine-tuning; a missing key means "auto"."""

    batch_size: Literal["auto"] | Annotated[int, Field(ge=1, le=256)] = Field(
        default="auto", description="Examples per batch: \"auto\" or 1-256.")
    learning_rate_multiplier: Literal["auto"] | Annotated[float, Field(gt=0)] = Field(
        default="auto", description="Learning-rate scale: \"auto\" or a number > 0.")
    n_epochs: Literal["auto"] | Annotated[int, Field(ge=1, le=50)] = Field(
        default="auto", description="Passes over the training data: \"auto\" or 1-50.")

    @field_validator("*", mode="wrap")
    @classmethod
    def _one_clear_error(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        name = info.field_name
        if name in _HP_RULES and value != _HP_RULES[name][4]:
            _check_hp(name, value)
            if _HP_RULES[name][0] is float and isinstance(value, int):
                value = float(value)  # `2` and `2.0` must fingerprint the same
        return handler(value)

    def normalized(self) -> dict[str, Any]:
        """Every key with defaults filled in, so an absent key and "auto" compare equal."""
        return self.model_dump()


class DpoHyperparameters(SupervisedHyperparameters):
    """Hyperparameters of DPO; `beta` weighs the penalty between policy and reference model."""

    beta: Literal["auto"] | Annotated[float, Field(gt=0, le=2)] = Field(
        default="auto", description="DPO beta: \"auto\" or a number in (0, 2].")


class ReinforcementHyperparameters(SupervisedHyperparameters):
    """Hyperparameters of reinforcement fine-tuning."""

    reasoning_effort: Literal["default", "low", "medium", "high"] = Field(
        default="default", description="Reasoning effort: default, low, medium or high.")
    compute_multiplier: Literal["auto"] | Annotated[float, Field(gt=0)] = Field(
        default="auto", description="Compute multiplier: \"auto\" or a number > 0.")
    eval_interval: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        default="auto", description="Training steps between evaluations: \"auto\" or an integer >= 1.")
    eval_samples: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        default="auto", description="Evaluation samples per evaluation: \"auto\" or an integer >= 1.")


Hyperparameters = Union[SupervisedHyperparameters, DpoHyperparameters, ReinforcementHyperparameters]  # noqa: UP007
HYPERPARAMETERS_BY_METHOD: dict[str, type[SupervisedHyperparameters]] = {
    "supervised": SupervisedHyperparameters,
    "dpo": DpoHyperparameters,
    "reinforcement": ReinforcementHyperparameters,
}


# --------------------------------------------------------------------------- graders

# Required keys per grader type, from the OpenAI spec (components/schemas/Grader*).
GRADER_REQUIRED: dict[str, tuple[str, ...]] = {
    "string_check": ("type", "name", "input", "reference", "operation"),
    "text_similarity": ("type", "name", "input", "reference", "evaluation_metric"),
    "python": ("type", "name", "source"),
    "score_model": ("type", "name", "input", "model"),
    "label_model": ("type", "name", "model", "input", "labels", "passing_labels"),
    "multi": ("type", "name", "graders", "calculate_output"),
}
_GRADER_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("string_check", "operation"): ("eq", "ne", "like", "ilike"),
    ("text_similarity", "evaluation_metric"): (
        "cosine", "fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3",
        "rouge_4", "rouge_5", "rouge_l"),
}


def check_grader(grader: Any, where: str = "grader", *, nested: bool = False) -> None:
    """Check a grader's `type` and required keys; the rest is passed to the API untouched."""
    if not isinstance(grader, dict):
        raise _custom("invalid_value", f"{where} must be a mapping with a `type`, got {type(grader).__name__}",
                      field=where)
    gtype = grader.get("type")
    allowed = [t for t in GRADER_REQUIRED if not (nested and t == "multi")]
    if gtype not in allowed:
        hint = did_you_mean(str(gtype), allowed) if isinstance(gtype, str) else ""
        raise _custom("invalid_value", f"{where}.type must be one of {', '.join(allowed)}, got {gtype!r}",
                      hint=hint, field=f"{where}.type")
    missing = [k for k in GRADER_REQUIRED[gtype] if k not in grader]
    if missing:
        raise _custom("missing", f"{where} of type {gtype} is missing required key(s): {', '.join(missing)}",
                      hint="required for " + gtype + ": " + ", ".join(GRADER_REQUIRED[gtype]), field=where)
    for (t, key), values in _GRADER_ENUMS.items():
        if t == gtype and grader.get(key) not in values:
            raise _custom("invalid_value", f"{where}.{key} must be one of {', '.join(values)}, "
                                           f"got {grader.get(key)!r}", field=f"{where}.{key}")
    if gtype == "multi":
        subs = grader["graders"]
        if isinstance(subs, dict) and "type" in subs:
            check_grader(subs, f"{where}.graders", nested=True)
        elif isinstance(subs, dict) and subs:
            for name, sub in subs.items():
                check_grader(sub, f"{where}.graders.{name}", nested=True)
        else:
            raise _custom("invalid_value", f"{where}.graders must be a grader or a mapping of named graders",
                          field=f"{where}.graders")


# --------------------------------------------------------------------------- integrations


class WandbSettings(_Strict):
    """Weights & Biases run settings passed to the fine-tuning job."""

    project: str = Field(min_length=1, description="W&B project the run is logged to.")
    name: str | None = Field(default=None, description="Display name of the run.")
    entity: str | None = Field(default=None, description="W&B entity (team or user).")
    tags: list[str] = Field(default_factory=list, description="Tags attached to the run.")


class WandbIntegration(_Strict):
    """An integration of type `wandb` (the only type the fine-tuning API supports)."""

    type: Literal["wandb"] = Field(description="Integration type; only `wandb` is supported.")
    wandb: WandbSettings


# --------------------------------------------------------------------------- model


MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]


class Lifecycle(_Strict):
    """What ftops may do to a model's remote objects beyond training it."""

    cancel_superseded: bool = Field(
        default=True, description="Cancel this model's previous job while it is still pending or running when a "
                                  "change makes a new one (finished models are never touched).")
    prevent_destroy: bool = Field(
        default=False, description="Refuse any plan (`--prune`, `destroy`) that would delete this model's "
                                   "fine-tuned models or deployments, or cancel its job.")


class Expectation(_Strict):
    """What a test's answer must satisfy (every given check must pass)."""

    contains: str | None = Field(default=None, description="The answer contains this text.")
    not_contains: str | None = Field(default=None, description="The answer does not contain this text.")
    equals: str | None = Field(default=None, description="The answer is exactly this text (outer whitespace ignored).")
    regex: str | None = Field(default=None, description="The answer matches this regular expression (search).")
    similar_to_golden: float | None = Field(
        default=None, ge=0, le=1, description="ROUGE-L F1 with the recorded golden answer (tests/golden/NAME.jsonl, "
                                             "`ftops test NAME --record`) is at least this.")

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise _custom("invalid_value", f"`regex` is not a valid regular expression: {exc}") from None
        return value


class ModelTest(_Strict):
    """One chat input and what the fine-tuned model must answer (`ftops test`)."""

    name: str | None = Field(default=None, description="A label for reports.")
    messages: list[dict[str, Any]] = Field(min_length=1, description="Chat messages sent to the fine-tuned model.")
    expect: Expectation = Field(description="Checks on the answer.")


class ModelConfig(_Strict):
    """One fine-tuned model: what to train (base model, data, method) and how."""

    base_model: str = Field(min_length=1, description="Model to fine-tune, e.g. gpt-4o-mini-2024-07-18.")
    training_file: str = Field(min_length=1, description="Training JSONL, relative to ftops.yaml.")
    validation_file: str | None = Field(
        default=None, min_length=1, description="Optional validation JSONL, relative to ftops.yaml.")
    method: Method = Field(
        default="supervised", description="Fine-tuning method: supervised, dpo or reinforcement.")
    hyperparameters: Hyperparameters = Field(default=SupervisedHyperparameters(),
        description="Method hyperparameters; a missing key means \"auto\".")
    grader: dict[str, Any] | None = Field(
        default=None, validate_default=True, description="Grader (required for reinforcement): string_check, text_similarity, python, "
                          "score_model, label_model or multi, as in the OpenAI API.")
    response_format: dict[str, Any] | None = Field(
        default=None, description="Response format for reinforcement fine-tuning (optional).")
    suffix: str | None = Field(default=None, min_length=1, max_length=64, pattern=SUFFIX_PATTERN,
        description="Up to 64 characters [A-Za-z0-9_.-] added to the fine-tuned model name.")
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Training seed 0-2147483647; ftops picks one when absent.")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=MAX_USER_METADATA,
        description="Up to 13 key/value pairs (keys <= 64, values <= 512 characters); keys starting with "
                    "`ftops_` are reserved.")
    integrations: list[WandbIntegration] = Field(default_factory=list, description="W&B integrations.")
    provider: str | None = Field(
        default=None, min_length=1, description="Key of `providers:` that trains this model; `default` (or "
                                                "absent) is the top-level `provider:`.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Settings only this model's provider has (e.g. Together's lora_r, "
                                          "learning_rate), in ftops's snake_case; checked against the provider's "
                                          "capabilities. Merged over the provider entry's `options:`.")
    deployment: dict[str, Any] | None = Field(
        default=None, description="Serve the fine-tuned model once its job succeeded; the fields are the provider's "
                                  "(e.g. Fireworks: type, shape, accelerator_type, min_replicas, max_replicas). "
                                  "Address `models.NAME.deployment`; deleted only by `--prune`.")
    lifecycle: Lifecycle = Field(default_factory=Lifecycle, description="cancel_superseded, prevent_destroy.")
    moved_from: ModelName | None = Field(
        default=None, description="The model's previous name: its state and jobs move here instead of retraining.")
    tests: list[ModelTest] = Field(default_factory=list, description="Chat inputs with expectations, run by "
                                                                     "`ftops test` and after `apply --wait`.")

    @field_validator("hyperparameters", mode="wrap")
    @classmethod
    def _by_method(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """Validate against the method's own model, so a DPO key on a supervised model is an error."""
        method = info.data.get("method")
        if method not in HYPERPARAMETERS_BY_METHOD:
            return handler(value)  # the method itself is invalid and already reported
        model = HYPERPARAMETERS_BY_METHOD[method]
        if isinstance(value, model) and type(value) is model:
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_unset=True)
        return model.model_validate(value, strict=True)

    @field_validator("suffix", mode="before")
    @classmethod
    def _suffix(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not 1 <= len(value) <= 64:
                raise _custom("out_of_range", f"suffix must be 1 to 64 characters long, got {len(value)}",
                              hint="shorten the suffix" if value else "remove `suffix:` or give it a value")
            bad = sorted({c for c in value if not re.match(r"[A-Za-z0-9_.-]", c)})
            if bad:
                shown = " ".join(repr(c) for c in bad)
                fixed = re.sub(r"[^A-Za-z0-9_.-]", "-", value)
                raise _custom("invalid_value", f"suffix may only contain letters, digits, `_`, `.` and `-`; "
                                               f"found {shown}", hint=f"e.g. `suffix: {fixed}`")
        return value

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_SEED:
            raise _custom("out_of_range", f"seed must be an integer from 0 to {MAX_SEED}, got {value}")
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: Any) -> Any:
        if isinstance(value, dict):
            reserved = [k for k in value if isinstance(k, str) and k.startswith(RESERVED_METADATA_PREFIX)]
            if reserved:
                raise _custom("invalid_value", f"metadata key `{reserved[0]}` is reserved: keys starting with "
                                               f"`{RESERVED_METADATA_PREFIX}` are set by ftops",
                              hint="rename the key", key=reserved[0])
            if len(value) > MAX_USER_METADATA:
                raise _custom("out_of_range", f"metadata has {len(value)} pairs; at most {MAX_USER_METADATA} "
                                              "are allowed (the API allows 16 and ftops uses 3)")
        return value

    @field_validator("grader", "response_format", mode="after")
    @classmethod
    def _method_specific(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        """A field validator (not a model one) so it runs even when other fields have errors."""
        method = info.data.get("method")
        if method is None:
            return value  # invalid method: already reported
        if method == "reinforcement":
            if info.field_name == "grader":
                if value is None:
                    raise _custom("missing", "method reinforcement requires a `grader`",
                                  hint="add e.g. `grader: {type: string_check, name: exact, input: "
                                       "\"{{sample.output_text}}\", reference: \"{{item.answer}}\", operation: eq}`")
                check_grader(value)
        elif value is not None:
            raise _custom("invalid_value", f"`{info.field_name}` is only allowed with method: reinforcement "
                                           f"(this model uses {method})",
                          hint="set `method: reinforcement` or remove the key")
        return value


# --------------------------------------------------------------------------- provider


class RateLimits(_Strict):
    """Overrides of the provider's declared hourly limits (absent: the provider's own apply)."""

    job_creates_per_hour: int | None = Field(
        default=None, ge=1, description="Fine-tuning jobs that may be created per hour.")
    file_uploads_per_hour: int | None = Field(
        default=None, ge=1, description="Files that may be uploaded per hour.")


#: Provider types ftops speaks (`ftops.providers.registry.PROVIDERS`; a test keeps the two equal).
PROVIDER_TYPES = ("openai", "azure", "together", "fireworks", "bedrock", "vertex", "nebius")
ProviderType = Literal["sandbox", "openai", "azure", "together", "fireworks", "bedrock", "vertex", "nebius"]


class ProviderConfig(_Strict):
    """Where jobs are created. Keys are read from the environment, never from YAML."""

    type: ProviderType = Field(
        default="sandbox", description="openai, azure, together, nebius; `sandbox` means `{type: openai, sandbox: true}`.")
    sandbox: bool = Field(
        default=False, description="Use ftops's embedded emulator speaking this provider's dialect: no key, no "
                                   "network. Enables `time_scale` and `db`.")
    base_url: str | None = Field(
        default=None, min_length=1, description="API base URL; default: the provider's own (openai: "
                                                "$OPENAI_BASE_URL, else api.openai.com).")
    api_key_env: str | None = Field(
        default=None, min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the API key (default: the provider's, e.g. "
                    "OPENAI_API_KEY, TOGETHER_API_KEY, AZURE_OPENAI_API_KEY).")
    organization: str | None = Field(default=None, description="OpenAI-Organization header (openai).")
    openai_project: str | None = Field(default=None, description="OpenAI-Project header (openai).")
    api_version: str | None = Field(default=None, description="Azure api-version (azure only).")
    account_id: str | None = Field(default=None, min_length=1, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
                                   description="Fireworks account id (fireworks only; required unless sandbox).")
    region: str | None = Field(default=None, min_length=1, description="Cloud region (bedrock, vertex).")
    gcp_project: str | None = Field(default=None, min_length=1, description="Google Cloud project id (vertex).")
    bucket: str | None = Field(
        default=None, min_length=3, description="Bucket for the converted training data (bedrock: S3, vertex: GCS).")
    prefix: str | None = Field(default=None, description="Key prefix in `bucket` (default `ftops`).")
    role_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
        description="IAM role Bedrock assumes to read the data and write the output (bedrock).")
    output_uri: str | None = Field(
        default=None, pattern=r"^s3://.+", description="Where Bedrock writes job output (default "
                                                       "s3://BUCKET/PREFIX/output/; bedrock).")
    training_type: Literal["global_standard", "standard", "developer"] | None = Field(
        default=None, description="Azure only: the training tier of this entry's models (a model's "
                                  "`options: {training_type: ...}` overrides it); Azure requires one.")
    subscription_id: str | None = Field(default=None, min_length=1, description="Azure only: subscription of the "
                                        "resource, for deployments through Azure Resource Manager.")
    resource_group: str | None = Field(default=None, min_length=1, description="Azure only: resource group, for "
                                       "deployments.")
    account: str | None = Field(default=None, min_length=1, description="Azure only: the Azure OpenAI resource "
                                "(account) name, for deployments.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Defaults for the `options:` of this provider's models.")
    time_scale: float | None = Field(
        default=None, gt=0, description="Sandbox only: how much faster than real time jobs progress.")
    rehearse_cutoffs: bool = Field(
        default=False, description="Sandbox only: behave like the real provider after its announced cut-offs "
                                   "(plans refuse, the sandbox rejects jobs) as of today or $FTOPS_TODAY; "
                                   "otherwise the sandbox only warns, so examples keep working on any date.")
    db: str | None = Field(
        default=None, description="Sandbox only: database path (default .ftops/sandbox.db, shared by every "
                                  "dialect).")
    timeout: float = Field(default=60, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(default=5, ge=0, le=20, description="Retries of a failed read (0-20).")
    max_retry_wait: float = Field(
        default=60, ge=0, description="Total time one request may spend waiting between its retries, in seconds.")
    rate_limits: RateLimits = RateLimits()

    @property
    def provider_type(self) -> str:
        """The dialect: `sandbox` is the OpenAI dialect on the emulator."""
        return "openai" if self.type == "sandbox" else self.type

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox or self.type == "sandbox"

    @model_validator(mode="after")
    def _type_specific(self) -> ProviderConfig:
        if not self.is_sandbox:
            for field in ("time_scale", "db", "rehearse_cutoffs"):
                if getattr(self, field) not in (None, False):
                    raise _custom("invalid_value", f"`{field}` only applies to the sandbox",
                                  hint="remove it or add `sandbox: true`", field=field)
        for field in ("api_version", "training_type", "subscription_id", "resource_group", "account"):
            if self.type != "azure" and getattr(self, field) is not None:
                raise _custom("invalid_value", f"`{field}` only applies to provider type azure",
                              hint="remove it or set `type: azure`", field=field)
        if self.type != "fireworks" and self.account_id is not None:
            raise _custom("invalid_value", "`account_id` only applies to provider type fireworks",
                          hint="remove it or set `type: fireworks`", field="account_id")
        if self.type == "fireworks" and not self.account_id and not self.sandbox:
            raise _custom("missing", "provider type fireworks requires `account_id`",
                          hint="e.g. account_id: my-account (from fireworks.ai/account)")
        cloud = {"bedrock": ("region", "bucket", "prefix", "role_arn", "output_uri"),
                 "vertex": ("region", "bucket", "prefix", "gcp_project")}
        for field in ("region", "bucket", "prefix", "role_arn", "output_uri", "gcp_project"):
            if getattr(self, field) is not None and field not in cloud.get(self.type, ()):
                raise _custom("invalid_value", f"`{field}` does not apply to provider type {self.type}",
                              hint="remove it", field=field)
        if self.type == "bedrock" and not self.sandbox:
            for field in ("bucket", "role_arn"):
                if getattr(self, field) is None:
                    raise _custom("missing", f"provider type bedrock requires `{field}`",
                                  hint="bucket: S3 bucket for training data; role_arn: the role Bedrock assumes")
        if self.type == "vertex" and not self.sandbox:
            for field in ("bucket", "gcp_project"):
                if getattr(self, field) is None:
                    raise _custom("missing", f"provider type vertex requires `{field}`",
                                  hint="bucket: GCS bucket for training data; gcp_project: your project id")
        if self.type == "azure" and not self.base_url and not self.sandbox:
            raise _custom("missing", "provider type azure requires `base_url` (your resource endpoint)",
                          hint="e.g. base_url: https://NAME.openai.azure.com/openai/v1")
        return self


# --------------------------------------------------------------------------- state


ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class S3StateConfig(_Strict):
    """Where the s3 state backend keeps the state object (and `KEY.lock` beside it)."""

    bucket: str = Field(min_length=3, description="Bucket name; enable versioning on it.")
    key: str = Field(default="ftops/state.json", min_length=1, description="Object key of the state.")
    region: str | None = Field(default=None, description="Region (default: the AWS SDK's own resolution).")
    endpoint_url_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN,
        description="Environment variable holding an S3-compatible endpoint URL (MinIO, R2, ...).")


class StateConfig(_Strict):
    """Where the state lives. Secrets (a database URL with its password) come only from the environment."""

    backend: Literal["local", "postgres", "s3"] = Field(default="local",
        description="local: .ftops/state.json; postgres: a shared database; s3: an S3-compatible bucket.")
    url_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN,
        description="postgres: environment variable holding the postgresql:// URL.")
    key: str | None = Field(default=None, pattern=NAME_PATTERN,
        description="postgres: the state's name in the database (default: the project name).")
    s3: S3StateConfig | None = Field(default=None, description="s3: bucket, key, region.")

    @model_validator(mode="after")
    def _backend_specific(self) -> StateConfig:
        if self.backend == "postgres" and not self.url_env:
            raise _custom("missing", "`state: backend: postgres` requires `url_env` (the variable holding the URL)",
                          hint="e.g. url_env: FTOPS_STATE_PG_URL")
        if self.backend == "s3" and self.s3 is None:
            raise _custom("missing", "`state: backend: s3` requires an `s3:` block with `bucket`",
                          hint="e.g. s3: {bucket: my-bucket, key: ftops/state.json}")
        if self.backend != "s3" and self.s3 is not None:
            raise _custom("invalid_value", "`s3` only applies to `backend: s3`", hint="remove it or set backend: s3")
        return self


# --------------------------------------------------------------------------- root


class FtopsConfig(_Strict):
    """ftops.yaml: the fine-tuned models a project declares and the provider that trains them."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, allow_inf_nan=False, title="ftops configuration",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"})

    version: Literal[1] = Field(description="Configuration format version; always 1.")
    project: str = Field(default="default", pattern=NAME_PATTERN,
        description="Project name, recorded in job metadata as ftops_project.")
    provider: ProviderConfig = Field(
        default=ProviderConfig(), description="The default provider (named `default`) for models that name none.")
    providers: dict[ModelName, ProviderConfig] = Field(
        default_factory=dict, description="More providers by name; a model picks one with `provider: NAME`.")
    models: dict[ModelName, ModelConfig] = Field(
        description="Fine-tuned models by name ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}).")
    pricing: dict[str, Annotated[float, Field(ge=0, le=MAX_PRICE_PER_1M)]] = Field(
        default_factory=dict,
        description="USD per 1M training tokens, keyed by base model or base-model prefix.")
    vars: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Values usable as ${vars.NAME} in string values.")
    allow_external_paths: bool = Field(
        default=False, description="Allow dataset paths outside the project directory.")
    allow_secrets: list[Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{12}$")]] = Field(
        default_factory=list,
        description="Secret findings in training data to accept (deliberate fakes), by the id ftops prints: "
                    "sha256:<12 hex digits>. Every other secret in a dataset is an error.")
    state: StateConfig = Field(default_factory=StateConfig, description="Where the state lives (default: local).")

    @model_validator(mode="after")
    def _provider_refs(self) -> FtopsConfig:
        if "default" in self.providers:
            raise _custom("invalid_value", "`providers.default` is the top-level `provider:`",
                          hint="declare it as `provider:` or pick another name", field="providers.default")
        names = ["default", *self.providers]
        for name, m in self.models.items():
            if m.provider is not None and m.provider not in names:
                hint = did_you_mean(m.provider, names) or ("declare it under `providers:` (declared: "
                                                           + ", ".join(names) + ")")
                raise _custom("invalid_value", f"model `{name}` names provider `{m.provider}`, which is not "
                                               "declared", hint=hint, field=f"models.{name}.provider")
        return self

    def provider_of(self, model: str) -> tuple[str, ProviderConfig]:
        """(provider name, its config) for a declared model."""
        name = self.models[model].provider or "default"
        return name, (self.provider if name == "default" else self.providers[name])

    def provider_entries(self) -> dict[str, ProviderConfig]:
        return {"default": self.provider, **self.providers}


# Keep ValidationError importable from here for callers that validate fragments.
__all__ = [
    "GRADER_REQUIRED",
    "HYPERPARAMETERS_BY_METHOD",
    "Lifecycle",
    "ModelTest",
    "Expectation",
    "METHODS",
    "DpoHyperparameters",
    "FtopsConfig",
    "Hyperparameters",
    "ModelConfig",
    "PROVIDER_TYPES",
    "ProviderConfig",
    "RateLimits",
    "S3StateConfig",
    "StateConfig",
    "ReinforcementHyperparameters",
    "SupervisedHyperparameters",
    "ValidationError",
    "WandbIntegration",
    "WandbSettings",
    "check_grader",
]
