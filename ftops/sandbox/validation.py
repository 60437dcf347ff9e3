"""Validation of OpenAI create-job bodies, answering like OpenAI: 400 with the offending `param`."""

from __future__ import annotations

import datetime as _dt
import sqlite3
from typing import Any

from ftops.sandbox.catalog import NEW_JOBS_UNTIL, BaseModel, resolve_base_model
from ftops.sandbox.errors import ApiError, bad_request

__all__ = ["CREATE_JOB_FIELDS", "base_model_of", "validate_create_job"]

CREATE_JOB_FIELDS = frozenset({"model", "training_file", "validation_file", "hyperparameters", "suffix", "seed",
                               "method", "metadata", "integrations"})
_COMMON_HP = ("batch_size", "learning_rate_multiplier", "n_epochs")
_METHOD_HP: dict[str, tuple[str, ...]] = {
    "supervised": _COMMON_HP,
    "dpo": ("beta", *_COMMON_HP),
    "reinforcement": (*_COMMON_HP, "reasoning_effort", "compute_multiplier", "eval_interval", "eval_samples"),
}
_GRADER_TYPES = ("string_check", "text_similarity", "python", "score_model", "multi")
SEED_MAX = 2147483647


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_hp(key: str, value: Any, param: str) -> None:
    def fail(expected: str) -> ApiError:
        return bad_request(f"Invalid value for '{key}': expected {expected}, got {value!r}.", param=param,
                           code="invalid_value")

    if key == "reasoning_effort":
        if value not in ("default", "low", "medium", "high"):
            raise fail("one of 'default', 'low', 'medium', 'high'")
        return
    if value == "auto":
        return
    if key == "n_epochs" and not (_is_int(value) and 1 <= value <= 50):
        raise fail("'auto' or an integer between 1 and 50")
    if key == "batch_size" and not (_is_int(value) and 1 <= value <= 256):
        raise fail("'auto' or an integer between 1 and 256")
    if key == "learning_rate_multiplier" and not (_is_number(value) and value > 0):
        raise fail("'auto' or a number greater than 0")
    if key == "beta" and not (_is_number(value) and 0 < value <= 2):
        raise fail("'auto' or a number in (0, 2]")
    if key == "compute_multiplier" and not (_is_number(value) and 0.00001 < value <= 10):
        raise fail("'auto' or a number in (0.00001, 10]")
    if key in ("eval_interval", "eval_samples") and not (_is_int(value) and value >= 1):
        raise fail("'auto' or a positive integer")


def _check_hyperparameters(hp: Any, method_type: str, prefix: str) -> dict[str, Any]:
    if hp is None:
        hp = {}
    if not isinstance(hp, dict):
        raise bad_request(f"'{prefix}' must be an object.", param=prefix, code="invalid_type")
    allowed = _METHOD_HP[method_type]
    for key, value in hp.items():
        if key not in allowed:
            raise bad_request(f"Unrecognized hyperparameter for {method_type} fine-tuning: '{key}'.",
                              param=f"{prefix}.{key}", code="invalid_value")
        _check_hp(key, value, f"{prefix}.{key}")
    out = {k: hp.get(k, "auto") for k in allowed if k != "reasoning_effort"}
    if method_type == "reinforcement":
        out["reasoning_effort"] = hp.get("reasoning_effort", "default")
    return out


def base_model_of(model: str) -> BaseModel | None:
    """The base snapshot of a model name, alias or `ft:{base}:…` name."""
    if model.startswith("ft:"):
        parts = model.split(":")
        return resolve_base_model(parts[1]) if len(parts) > 1 else None
    return resolve_base_model(model)


def _check_file(conn: sqlite3.Connection, file_id: Any, param: str, dialect: str) -> str:
    if not isinstance(file_id, str) or not file_id:
        raise bad_request(f"'{param}' must be a file id string.", param=param, code="invalid_type")
    row = conn.execute("SELECT purpose, status FROM files WHERE id = ? AND deleted = 0 AND dialect = ?",
                       (file_id, dialect)).fetchone()
    if row is None:
        raise bad_request(f"Invalid file {file_id}: the file does not exist or you do not have access to it.",
                          param=param, code="file_not_found")
    if row["purpose"] != "fine-tune":
        raise bad_request(f"File {file_id} has purpose '{row['purpose']}'; fine-tuning needs purpose 'fine-tune'.",
                          param=param, code="invalid_file_purpose")
    if row["status"] != "processed":
        raise bad_request(f"File {file_id} is not ready: its status is '{row['status']}'.", param=param,
                          code="file_not_ready")
    return file_id


def validate_create_job(conn: sqlite3.Connection, body: Any, now: float,
                        closes_on: str | None = None, *, dialect: str = "openai", enforce_cutoffs: bool = False,
                        today: str | None = None) -> dict[str, Any]:
    """Check a create-job body; return the normalised fields (model resolved, method filled with "auto")."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_type")
    for key in body:
        if key not in CREATE_JOB_FIELDS:
            raise bad_request(f"Unrecognized request argument supplied: {key}", param=key,
                              code="unknown_parameter")
    for key in ("model", "training_file"):
        if body.get(key) in (None, ""):
            raise bad_request(f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter")
    model = body["model"]
    if not isinstance(model, str):
        raise bad_request("'model' must be a string.", param="model", code="invalid_type")
    base = base_model_of(model)
    if model.startswith("ft:"):
        row = conn.execute("SELECT id FROM models WHERE id = ? AND deleted = 0 AND dialect = ?",
                           (model, dialect)).fetchone()
        if row is None:
            base = None
    if base is None:
        raise bad_request(f"Model {model} is not available for fine-tuning or does not exist.", param="model",
                          code="model_not_available")
    day = _dt.date.fromisoformat(today) if today else _dt.datetime.fromtimestamp(now, _dt.timezone.utc).date()
    if closes_on is None and enforce_cutoffs:
        closes_on = NEW_JOBS_UNTIL
    if closes_on is not None and day > _dt.date.fromisoformat(closes_on):
        raise bad_request(f"Self-serve fine-tuning closed on {closes_on}: new fine-tuning jobs are no longer "
                          "accepted.", param="model", code="model_not_available")
    if base.is_retired(day, enforce_cutoffs):
        raise bad_request(f"Model {model} was retired on {base.shutdown_date} and can no longer be fine-tuned.",
                          param="model", code="model_not_available")
    resolved_model = model if model.startswith("ft:") else base.id

    training_file = _check_file(conn, body["training_file"], "training_file", dialect)
    validation_file = body.get("validation_file")
    if validation_file is not None:
        validation_file = _check_file(conn, validation_file, "validation_file", dialect)

    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or not 1 <= len(suffix) <= 64):
        raise bad_request("'suffix' must be a string of 1 to 64 characters.", param="suffix", code="invalid_value")
    if suffix is not None and (":" in suffix or any(ord(c) < 0x20 or ord(c) == 0x7F for c in suffix)):
        # ':' separates the fields of the fine-tuned model's name (ft:{base}:{org}:{suffix}:{id}).
        raise bad_request("'suffix' must not contain ':' or control characters.", param="suffix",
                          code="invalid_value")
    seed = body.get("seed")
    if seed is not None and not (_is_int(seed) and 0 <= seed <= SEED_MAX):
        raise bad_request(f"'seed' must be an integer between 0 and {SEED_MAX}.", param="seed", code="invalid_value")

    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise bad_request("'metadata' must be an object of string keys and values.", param="metadata",
                              code="invalid_type")
        if len(metadata) > 16:
            raise bad_request("'metadata' may hold at most 16 key-value pairs.", param="metadata",
                              code="invalid_value")
        for k, v in metadata.items():
            if len(k) > 64:
                raise bad_request(f"Metadata key '{k[:16]}…' is longer than 64 characters.", param="metadata",
                                  code="invalid_value")
            if not isinstance(v, str) or len(v) > 512:
                raise bad_request(f"Metadata value of '{k}' must be a string of at most 512 characters.",
                                  param="metadata", code="invalid_value")

    integrations = body.get("integrations")
    if integrations is not None:
        if not isinstance(integrations, list) or len(integrations) > 5:
            raise bad_request("'integrations' must be a list of at most 5 integrations.", param="integrations",
                              code="invalid_value")
        for item in integrations:
            wandb = item.get("wandb") if isinstance(item, dict) else None
            if not isinstance(item, dict) or item.get("type") != "wandb" or not isinstance(wandb, dict) \
                    or not isinstance(wandb.get("project"), str):
                raise bad_request("Each integration must be {'type': 'wandb', 'wandb': {'project': ...}}.",
                                  param="integrations", code="invalid_value")

    legacy = body.get("hyperparameters")
    method = body.get("method")
    if method is None:
        method_type = "supervised"
        if method_type not in base.methods:
            raise bad_request(f"Model {model} does not support supervised fine-tuning; choose a method in "
                              f"'method' ({', '.join(base.methods)}).", param="method", code="invalid_value")
        hp = _check_hyperparameters(legacy, "supervised", "hyperparameters")
        method_out: dict[str, Any] = {"type": "supervised", "supervised": {"hyperparameters": hp}}
    else:
        if not isinstance(method, dict):
            raise bad_request("'method' must be an object.", param="method", code="invalid_type")
        requested_type = method.get("type")
        if requested_type not in _METHOD_HP:
            raise bad_request(f"Invalid method type {requested_type!r}: expected 'supervised', 'dpo' or 'reinforcement'.",
                              param="method.type", code="invalid_value")
        method_type = str(requested_type)
        if method_type not in base.methods:
            raise bad_request(f"Model {model} does not support {method_type} fine-tuning.", param="method.type",
                              code="invalid_value")
        for key in method:
            if key not in ("type", method_type):
                raise bad_request(f"Unrecognized argument for method {method_type}: {key}", param=f"method.{key}",
                                  code="unknown_parameter")
        section = method.get(method_type) or {}
        if not isinstance(section, dict):
            raise bad_request(f"'method.{method_type}' must be an object.", param=f"method.{method_type}",
                              code="invalid_type")
        allowed_section = ("hyperparameters", "grader") if method_type == "reinforcement" else ("hyperparameters",)
        for key in section:
            if key not in allowed_section:
                raise bad_request(f"Unrecognized argument for method {method_type}: {key}",
                                  param=f"method.{method_type}.{key}", code="unknown_parameter")
        prefix = f"method.{method_type}.hyperparameters"
        if legacy is not None:
            if method_type != "supervised" or section.get("hyperparameters") is not None:
                raise bad_request("Specify hyperparameters in 'method' only; the top-level 'hyperparameters' "
                                  "is deprecated and cannot be combined with them.", param="hyperparameters",
                                  code="invalid_value")
            hp = _check_hyperparameters(legacy, "supervised", "hyperparameters")
        else:
            hp = _check_hyperparameters(section.get("hyperparameters"), method_type, prefix)
        method_out = {"type": method_type, method_type: {"hyperparameters": hp}}
        if method_type == "reinforcement":
            grader = section.get("grader")
            if not isinstance(grader, dict) or grader.get("type") not in _GRADER_TYPES:
                raise bad_request("Reinforcement fine-tuning needs a grader with a type among "
                                  f"{', '.join(_GRADER_TYPES)}.", param="method.reinforcement.grader",
                                  code="invalid_value")
            method_out["reinforcement"]["grader"] = grader
    return {
        "model": resolved_model,
        "training_file": training_file,
        "validation_file": validation_file,
        "method": method_out,
        "suffix": suffix,
        "seed": seed,
        "metadata": metadata,
        "integrations": integrations,
        "legacy_hp": legacy is not None,
    }
