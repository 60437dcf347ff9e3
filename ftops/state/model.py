"""The state file's model: what ftops knows it created, so plans can be computed offline.

State is a cache of the provider's truth plus ftops's own bookkeeping (seeds, intents, history).
The provider stays authoritative: refresh can rebuild everything here from job metadata and file
names, which is why losing the state file never causes a second job. It never holds API keys or
dataset content.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

STATE_FORMAT_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileRecord(_Model):
    """An uploaded dataset, keyed by the sha256 of its bytes."""

    sha256: str
    file_id: str
    bytes: int
    filename: str
    path: str = ""  # last path that had these bytes, relative to the project (informational)
    provider: str = "default"


class JobRecord(_Model):
    """One fine-tuning job ftops created or adopted."""

    job_id: str
    fingerprint: str
    status: str  # the provider's own word
    state: str | None = None  # ftops's lifecycle word (providers.JobState); None in older state files
    attempt: int = 1
    cancelled_by_ftops: bool = False
    duplicate_of: str | None = None  # a duplicate that finished before it could be cancelled (paid twice)
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    error: dict[str, Any] | None = None


class ModelRecord(_Model):
    """The current job of a declared model, what it was built from, and the jobs before it."""

    name: str
    provider: str = "default"
    fingerprint: str
    group: str = ""  # the provider's identity group for (project, name, fingerprint)
    attempt: int = 1
    seed: int | None = None
    spec: dict[str, Any] = Field(default_factory=dict)  # the fingerprinted job body, for diffs
    job: JobRecord | None = None
    history: list[JobRecord] = Field(default_factory=list)


class Intent(_Model):
    """A remote write that was started but not yet confirmed; resolved against the remote on the next run."""

    kind: Literal["upload_file", "create_job"]
    key: str  # sha256 for uploads; identity group#attempt for jobs (a bare fingerprint in older files)
    model: str = ""
    provider: str = "default"
    started_at: float


class State(_Model):
    format_version: int = STATE_FORMAT_VERSION
    serial: int = 0
    lineage: str = Field(default_factory=lambda: str(uuid.uuid4()))
    ftops_version: str = ""
    project: str = ""
    endpoint: str = ""
    files: dict[str, FileRecord] = Field(default_factory=dict)
    models: dict[str, ModelRecord] = Field(default_factory=dict)
    intents: list[Intent] = Field(default_factory=list)

    @staticmethod
    def file_key(provider: str, sha256: str) -> str:
        """Files are keyed by sha256 for the default provider (as before providers had names), and
        by `provider:sha256` for the others: one dataset is uploaded once to each provider."""
        return sha256 if provider == "default" else f"{provider}:{sha256}"

    def file_for(self, sha256: str, provider: str = "default") -> FileRecord | None:
        return self.files.get(self.file_key(provider, sha256))

    # Dirty tracking, so a backend can record one action in O(1) instead of rewriting every record.
    # Opt-in: when nothing was touched since the last save, the next save writes everything, so code
    # that mutates the state without touching stays correct (only slower). Top-level fields and
    # `intents` (a handful) are written by every save; `models` and `files` only where touched.
    _touched_models: set[str] = PrivateAttr(default_factory=set)
    _touched_files: set[str] = PrivateAttr(default_factory=set)


    def touch_model(self, name: str) -> None:
        """Mark `models[name]` (added, changed or removed) for the next incremental save."""
        self._touched_models.add(name)

    def touch_file(self, key: str) -> None:
        """Mark `files[key]` (added, changed or removed) for the next incremental save."""
        self._touched_files.add(key)

    def touch(self) -> None:
        """Mark a change of the top-level fields or `intents` only (no record): an O(1) save, not a full one."""
        self._touched_models.add("")

    def touched(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """(model names, file keys) touched since the last save, or None: nothing touched, save it all."""
        if not self._touched_models and not self._touched_files:
            return None
        return frozenset(self._touched_models - {""}), frozenset(self._touched_files)

    def saved_copy(self, **update: Any) -> State:
        """A shallow copy with `update` applied and nothing touched (what a backend returns from save)."""
        new = self.model_copy(update=update)
        new._touched_models = set()
        new._touched_files = set()
        return new
