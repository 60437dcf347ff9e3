"""Hooks: how the engine reports progress without printing (terraform internal/terraform/hook.go).

The CLI connects a renderer; tests connect a recorder; the default does nothing. Future `watch`
and smoke-test steps report through the same interface.
"""

from __future__ import annotations

from ftops.engine.model import FileChange, ModelChange
from ftops.providers import RemoteFile, RemoteJob


class Hooks:
    """Every method is optional to override; none may raise."""

    def upload_started(self, change: FileChange) -> None: ...

    def upload_progress(self, change: FileChange, sent: int, total: int) -> None: ...

    def upload_finished(self, change: FileChange, remote: RemoteFile, adopted: bool) -> None: ...

    def job_started(self, change: ModelChange) -> None: ...

    def job_finished(self, change: ModelChange, job: RemoteJob, adopted: bool) -> None: ...

    def duplicate_cancelled(self, model: str, job_id: str, kept: str) -> None: ...

    def waiting(self, seconds: float, why: str) -> None: ...

    def retrying(self, what: str, why: str) -> None: ...

    def deployment_done(self, address: str, what: str) -> None: ...

    def state_saved(self, serial: int) -> None: ...

    def dataset_progress(self, path: str, stage: str, done: int, total: int) -> None:
        """A dataset being read: `stage` is "hashing" or "checking", `done`/`total` in bytes."""
