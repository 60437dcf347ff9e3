"""Sandbox settings and fault-injection configuration.

Kept free of heavy imports: the CLI builds these from flags and the environment before any
request is served.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ftops.diagnostics import FtopsError, did_you_mean, error

__all__ = ["LIMIT_NAMES", "FaultConfig", "SandboxSettings", "parse_limits"]

_RATE_KEYS = ("error_rate", "rate_limit_rate", "lost_response_rate")


def _settings_error(code: str, summary: str, detail: str, hint: str = "") -> FtopsError:
    return FtopsError(error(code, summary, detail, hint=hint))


@dataclass(frozen=True)
class FaultConfig:
    """Random faults injected before (500/503, 429) or after (lost response) a request's action.

    Off by default. Draws come from one seeded generator, so a given sequence of requests meets
    the same faults on every run.
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    lost_response_rate: float = 0.0
    latency_ms: int = 0
    seed: int | None = None
    # The wait an injected 429 asks for (Retry-After, retry-after-ms); tests shorten it.
    retry_after_ms: int = 1000

    @property
    def enabled(self) -> bool:
        return any(getattr(self, k) > 0 for k in _RATE_KEYS) or self.latency_ms > 0

    @classmethod
    def parse(cls, text: str | None) -> FaultConfig:
        """Parse ``"error_rate=0.2,rate_limit_rate=0.1,lost_response_rate=0.1,latency_ms=50,seed=7"``
        (and ``retry_after_ms=N``, the wait an injected 429 asks for; 1000 by default)."""
        if text is None or not text.strip():
            return cls()
        values: dict[str, Any] = {}
        known = [f.name for f in dataclasses.fields(cls)]
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip()
            value = value.strip()
            if not sep or not value:
                raise _settings_error(
                    "sandbox.bad_faults", "malformed fault setting",
                    f"`{item}` in FTOPS_SANDBOX_FAULTS is not of the form key=value.",
                    "e.g. error_rate=0.2,latency_ms=50,seed=7",
                )
            if key not in known:
                raise _settings_error(
                    "sandbox.bad_faults", "unknown fault setting",
                    f"`{key}` is not a fault setting; known: {', '.join(known)}.",
                    did_you_mean(key, known),
                )
            if key in values:
                raise _settings_error("sandbox.bad_faults", "duplicate fault setting", f"`{key}` is given twice.")
            try:
                if key in _RATE_KEYS:
                    number: float = float(value)
                    if not 0.0 <= number <= 1.0:
                        raise ValueError
                    values[key] = number
                else:
                    integer = int(value)
                    if key in ("latency_ms", "retry_after_ms") and integer < 0:
                        raise ValueError
                    values[key] = integer
            except ValueError:
                expected = "a probability between 0 and 1" if key in _RATE_KEYS else "a non-negative integer"
                if key == "seed":
                    expected = "an integer"
                raise _settings_error(
                    "sandbox.bad_faults", "invalid fault value", f"`{key}={value}`: expected {expected}."
                ) from None
        config = cls(**values)
        if config.error_rate + config.rate_limit_rate > 1.0:
            raise _settings_error(
                "sandbox.bad_faults", "fault rates too high",
                "error_rate + rate_limit_rate must not exceed 1 (they are drawn from one number).",
            )
        return config


@dataclass(frozen=True)
class SandboxSettings:
    """Behaviour knobs of one sandbox app; the database holds no settings, so two processes on one db
    may differ (e.g. a test server with a high time scale)."""

    api_keys: list[str] | None = None  # None: any non-empty bearer key is accepted
    time_scale: float = 1.0  # speed-up factor; 1.0 = realistic durations (and rate-limit windows)
    max_running_jobs: int = 3
    # Limits (docs/sandbox-differences.md says where each default comes from; None = no limit).
    # OpenAI's rate-limit table for fine-tuning: "active / queued jobs" 3 per base model, and a daily
    # cap on job creations; it documents no hourly cap and no cap on file uploads.
    max_active_jobs_per_model: int | None = 3
    job_creates_per_day: int | None = 48
    job_creates_per_hour: int | None = None
    file_uploads_per_hour: int | None = None
    # Hostile requests: JSON bodies above this size answer 413, nested deeper answer 400; a served
    # connection that sends nothing for read_timeout_s seconds is closed.
    max_json_body_bytes: int = 16 * 1024 * 1024
    max_json_depth: int = 100
    read_timeout_s: float = 30.0
    # Simulated file processing (uploaded -> processed | error), divided by time_scale like every duration.
    file_processing_s: float = 3.0
    org: str = "ftops-sandbox"
    faults: FaultConfig = field(default_factory=FaultConfig)
    # OpenAI accepts no new self-serve fine-tuning jobs after 2027-01-06. That is a platform policy,
    # not a model retirement, so the sandbox keeps working after it unless asked to rehearse it:
    # set closes_on="2027-01-06" to have job creations refused from that day on.
    closes_on: str | None = None
    # Announced cut-offs (the catalogue's future shutdown dates, a dialect's last day for new jobs) are
    # shown but not enforced, so examples keep working on any later date; enforce_cutoffs rehearses
    # them as of `today` (ISO date; default: the simulated clock's date).
    enforce_cutoffs: bool = False
    today: str | None = None

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise _settings_error("sandbox.bad_time_scale", "invalid time scale",
                                  f"time_scale must be > 0, got {self.time_scale}.")
        if self.max_running_jobs < 1:
            raise _settings_error("sandbox.bad_setting", "invalid max_running_jobs",
                                  "max_running_jobs must be at least 1.")
        for name in ("max_active_jobs_per_model", "job_creates_per_day", "job_creates_per_hour",
                     "file_uploads_per_hour"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise _settings_error("sandbox.bad_setting", f"invalid {name}",
                                      f"{name} must be at least 1 (or unset for no limit), got {value}.")
        for name in ("max_json_body_bytes", "max_json_depth"):
            if getattr(self, name) < 1:
                raise _settings_error("sandbox.bad_setting", f"invalid {name}", f"{name} must be at least 1.")
        if not self.read_timeout_s > 0 or not self.file_processing_s >= 0:
            raise _settings_error("sandbox.bad_setting", "invalid timing setting",
                                  "read_timeout_s must be > 0 and file_processing_s >= 0.")

    @classmethod
    def from_env(cls, **overrides: Any) -> SandboxSettings:
        """Settings from FTOPS_SANDBOX_TIME_SCALE / FTOPS_SANDBOX_FAULTS; explicit overrides win
        (an override of None means "not given")."""
        values: dict[str, Any] = {}
        scale = os.environ.get("FTOPS_SANDBOX_TIME_SCALE")
        if scale:
            try:
                values["time_scale"] = float(scale)
            except ValueError:
                raise _settings_error(
                    "sandbox.bad_time_scale", "invalid time scale",
                    f"FTOPS_SANDBOX_TIME_SCALE={scale!r} is not a number.",
                ) from None
        if os.environ.get("FTOPS_SANDBOX_ENFORCE_CUTOFFS", "").strip().lower() in ("1", "true", "yes"):
            values["enforce_cutoffs"] = True
        if os.environ.get("FTOPS_TODAY", "").strip():
            values["today"] = os.environ["FTOPS_TODAY"].strip()
        faults = os.environ.get("FTOPS_SANDBOX_FAULTS")
        if faults:
            values["faults"] = FaultConfig.parse(faults)
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "faults" and isinstance(value, str):
                value = FaultConfig.parse(value)
            values[key] = value
        return cls(**values)


#: Settings `ftops sandbox serve --limit NAME=N` may change; the optional ones accept `none`.
LIMIT_NAMES: dict[str, type] = {
    "max_active_jobs_per_model": int, "job_creates_per_day": int, "job_creates_per_hour": int,
    "file_uploads_per_hour": int, "max_running_jobs": int, "max_json_body_bytes": int, "max_json_depth": int,
    "read_timeout_s": float, "file_processing_s": float,
}
_OPTIONAL_LIMITS = ("max_active_jobs_per_model", "job_creates_per_day", "job_creates_per_hour", "file_uploads_per_hour")


def parse_limits(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`["job_creates_per_day=10", "file_uploads_per_hour=none"]` -> settings overrides (None = no limit)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or name not in LIMIT_NAMES:
            raise _settings_error("sandbox.bad_limit", "unknown sandbox limit",
                                  f"`{item}` is not NAME=N with NAME among {', '.join(LIMIT_NAMES)}.",
                                  did_you_mean(name, list(LIMIT_NAMES)))
        if raw.lower() == "none" and name in _OPTIONAL_LIMITS:
            out[name] = None
            continue
        try:
            value = LIMIT_NAMES[name](raw)
        except ValueError:
            raise _settings_error("sandbox.bad_limit", "invalid sandbox limit",
                                  f"`{item}`: expected a number" + (" or none" if name in _OPTIONAL_LIMITS else "")
                                  + ".") from None
        if isinstance(value, float) and not (value == value and abs(value) != float("inf")):
            raise _settings_error("sandbox.bad_limit", "invalid sandbox limit", f"`{item}`: not a finite number.")
        out[name] = value
    return out
