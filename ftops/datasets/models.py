"""Result types of dataset checks: issues, statistics and the per-file report.

They are frozen pydantic models so a report can be cached as JSON keyed by the dataset's
sha256 and handed to the engine, the sandbox and the CLI unchanged.
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict

from ftops.diagnostics import Diagnostic, Severity, SourceRange


class DatasetIssue(BaseModel):
    """One problem in a dataset; `line` is 1-based (counting b"\\n" only) or None for file-level issues."""

    model_config = ConfigDict(frozen=True)

    line: int | None
    code: str  # slug without the "dataset." prefix, e.g. "blank_line"
    message: str
    hint: str = ""


class DatasetStats(BaseModel):
    """Per-file figures; token figures cover the examples that passed validation."""

    model_config = ConfigDict(frozen=True)

    examples: int = 0
    tokens_total: int = 0
    tokens_min: int = 0
    tokens_mean: float = 0.0
    tokens_max: int = 0
    examples_over_limit: int = 0
    assistant_turns_trained: int = 0
    trained_tokens_per_epoch: int = 0  # billable tokens for one epoch, after truncation at the limit
    encoding: str | None = None
    approximate: bool = False  # True when tiktoken could not load and tokens are estimated (bytes/4)
    token_limit: int = 0


class DatasetReport(BaseModel):
    """Everything ftops learnt about one dataset file: format, validity, issues, statistics."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    size: int
    format: str  # "chat" | "preference" | "reinforcement" | "prompt_completion" | "unknown"
    valid: bool
    errors: list[DatasetIssue]
    warnings: list[DatasetIssue]
    stats: DatasetStats
    method: str = "supervised"

    def diagnostics(self, display_path: str | None = None, *, accept: Collection[str] = ()) -> list[Diagnostic]:
        """Issues as ftops diagnostics with code `dataset.<code>` and the file/line they are on.

        `accept` holds finding ids (`sha256:…`, ftops.yaml `allow_secrets`): a secret finding with
        one of them is reported as a warning (`dataset.accepted_secret`) instead of an error.
        """
        from ftops.datasets.sensitive import SECRET_CODES, finding_id_in

        where = display_path or self.path
        accepted = frozenset(accept)
        out: list[Diagnostic] = []
        for severity, issues in ((Severity.ERROR, self.errors), (Severity.WARNING, self.warnings)):
            for i in issues:
                rng = SourceRange(where, i.line) if i.line is not None else SourceRange(where, 1)
                if severity is Severity.ERROR and i.code in SECRET_CODES and finding_id_in(i.message) in accepted:
                    out.append(Diagnostic(Severity.WARNING, "dataset.accepted_secret", i.message, range=rng,
                                          detail="accepted by `allow_secrets` in ftops.yaml"))
                    continue
                out.append(Diagnostic(severity, f"dataset.{i.code}", i.message, range=rng, hint=i.hint))
        return out

    def accepting(self, accept: Collection[str]) -> DatasetReport:
        """This report with accepted secret findings moved to the warnings (and `valid` recomputed)."""
        from ftops.datasets.sensitive import SECRET_CODES, finding_id_in

        accepted = frozenset(accept)
        if not accepted:
            return self
        keep = [i for i in self.errors if not (i.code in SECRET_CODES and finding_id_in(i.message) in accepted)]
        if len(keep) == len(self.errors):
            return self
        moved = [i.model_copy(update={"code": "accepted_secret", "hint": ""}) for i in self.errors if i not in keep]
        return self.model_copy(update={"errors": keep, "warnings": [*self.warnings, *moved], "valid": not keep})

    def to_json(self) -> dict[str, object]:
        """The per-file shape of `ftops dataset check --json`."""

        def issue(i: DatasetIssue) -> dict[str, object]:
            d: dict[str, object] = {"line": i.line, "code": i.code, "message": i.message}
            if i.hint:
                d["hint"] = i.hint
            return d

        return {
            "path": self.path,
            "format": self.format,
            "valid": self.valid,
            "errors": [issue(i) for i in self.errors],
            "warnings": [issue(i) for i in self.warnings],
            "stats": self.stats.model_dump(),
            "sha256": self.sha256,
            "size": self.size,
        }


class CostEstimate(BaseModel):
    """Estimated training cost; `usd` is None when no price is known for the model."""

    model_config = ConfigDict(frozen=True)

    usd: float | None
    price_per_1m: float | None
    approximate: bool
    note: str
