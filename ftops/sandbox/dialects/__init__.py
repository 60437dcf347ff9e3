"""Dialects: one module per provider API the sandbox speaks, over one shared emulator core.

The core (`SandboxApp` in `ftops.sandbox.app`, with `store`, `lifecycle`, `faults`, `settings`)
owns the database, the clock, job progress over simulated time, rate limits and fault injection.
A dialect owns only what a provider's wire format decides: its URLs, authentication, error body,
status words and the JSON shape of its objects.

To add a dialect (say Fireworks):

1. Create `ftops/sandbox/dialects/fireworks.py` with a `Dialect` subclass. Set `name` (the tag
   stored on its rows: "fireworks") and `prefix` (where it is mounted: "/fireworks/v1").
2. `rules()` returns werkzeug `Rule`s relative to the prefix; endpoint "jobs" is served by the
   method `h_jobs(self, request, **url_values) -> Response`.
3. Override `authenticate` (raise `ApiError(401, …)`), `error_response` (the provider's error
   body; the default is `{"error": {message, type, param, code}}`) and `decorate` (headers).
4. Store through the core: `with self.app.tx() as (conn, now, sim):` gives one transaction with
   the world already advanced to `now`. Insert jobs with `dialect=self.name` and a neutral
   `method` ({"type": "supervised"|"dpo", <type>: {"hyperparameters": {...}}}), an
   `output_name` and `tokens_per_second`; the lifecycle then validates the files, queues, runs,
   writes events (with a neutral `kind`), checkpoints and the model. Read only rows whose
   `dialect` is yours (`self.app.file_row`, `self.app.job_row`), so providers never see each
   other's files or jobs. Map the neutral job states (validating_files, queued, running, paused,
   succeeded, failed, cancelled) to the provider's words when rendering.
5. Add the class to `default_dialects()` below, and a test under tests/sandbox/ that drives it
   with the provider's official SDK and validates responses against the provider's spec.

Faults and latency apply to every route of every dialect (the core decides them before calling
the handler); rate limits are counted per dialect (`"{name}:job_create"`).

What the core guarantees every dialect, provided it uses the core's helpers:

- Read JSON bodies only with `self.app.json_body(request)`: it refuses (in your `error_response`
  shape) bodies over `settings.max_json_body_bytes` (413, before reading), nesting deeper than
  `settings.max_json_depth`, non-finite numbers and lone surrogates (400). Never `json.loads` a
  request yourself. Multipart endpoints: set `request.max_content_length` before touching
  `request.files`/`form` (the core turns werkzeug's RequestEntityTooLarge into a 413).
- Answer with `self.app.json(...)`: it never emits NaN/Infinity (a stored non-finite number is sent
  as null). Unknown methods on a known route answer 405, unexpected exceptions a 500, both through
  your `error_response`.
- `self.app.rate_limit(conn, now, kind, limit, what, window_s=...)`: `limit=None` means no limit;
  the window is sandbox time (divided by `time_scale`). Several windows may share one `kind`.
- Files: `self.app.commit_file(..., processing_s=N)` stores the file `uploaded`; once N sandbox
  seconds have passed the core calls your `process_file(row)` for its final (status, details).
  Omit `processing_s` for a provider whose files are ready at once. Store your provider's words for
  the statuses in your renderer; the core only knows uploaded/processed/error. A dialect must not
import `ftops.providers`: the emulator is an independent reading of the provider's documents.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import TYPE_CHECKING, ClassVar

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.errors import ApiError

if TYPE_CHECKING:
    from ftops.sandbox.app import SandboxApp

__all__ = ["Dialect", "default_dialects"]


class Dialect:
    """One provider's wire format, mounted at `prefix`, over the shared core `app`."""

    name: ClassVar[str]
    prefix: ClassVar[str]

    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    def rules(self) -> list[Rule]:
        """URL rules relative to `prefix` (fresh objects: a werkzeug Rule binds to one Map)."""
        raise NotImplementedError

    def authenticate(self, request: Request, endpoint: str) -> None:
        """Raise ApiError(401) unless the request may call `endpoint`."""
        raise NotImplementedError

    def error_response(self, exc: ApiError) -> Response:
        response = self.app.json(exc.body(), exc.status)
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response

    def process_file(self, row: sqlite3.Row) -> tuple[str, str | None]:
        """Final (status, status_details) of a file committed with `processing_s` (see
        `SandboxApp.commit_file`), called once its simulated processing time has passed. The bytes
        are at `self.app.store.file_path(row["id"])`. Default: always "processed"."""
        return "processed", None

    def decorate(self, response: Response, started: float) -> None:
        """Add the provider's response headers (request id, processing time, …)."""
        response.headers["x-request-id"] = "req_" + secrets.token_hex(16)
        response.headers["x-processing-ms"] = str(int((time.monotonic() - started) * 1000))


def default_dialects() -> list[type[Dialect]]:
    """Every dialect the sandbox serves, in mounting order."""
    from ftops.sandbox.dialects.fireworks import FireworksDialect
    from ftops.sandbox.dialects.bedrock import BedrockDialect
    from ftops.sandbox.dialects.azure import AzureArmDialect, AzureDialect
    from ftops.sandbox.dialects.nebius import NebiusDialect
    from ftops.sandbox.dialects.openai import OpenAIDialect
    from ftops.sandbox.dialects.s3 import S3Dialect
    from ftops.sandbox.dialects.together import TogetherDialect
    from ftops.sandbox.dialects.vertex import GcsDialect, VertexDialect

    return [OpenAIDialect, TogetherDialect, FireworksDialect, BedrockDialect, S3Dialect, VertexDialect, GcsDialect,
            AzureDialect, AzureArmDialect, NebiusDialect]
