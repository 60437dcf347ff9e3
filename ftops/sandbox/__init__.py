"""ftops.sandbox: a local emulator of providers' fine-tuning REST APIs (issue 3).

One WSGI app (`SandboxApp`) reached in-process (`in_process_transport`) or served
(`make_server`, `serve`): one core (store, lifecycle, faults, rate limits) and one dialect per
provider (`ftops.sandbox.dialects`): OpenAI at `/v1`, Together AI at `/together/v1`. State lives in SQLite beside the file bytes; job progress is derived
from the clock on every request, so there is no daemon. Imports only ftops.datasets (lazily)
and ftops.diagnostics; never ftops.providers.
"""

from __future__ import annotations

from ftops.sandbox.app import SandboxApp
from ftops.sandbox.faults import LostResponse
from ftops.sandbox.server import make_server, serve, serving
from ftops.sandbox.settings import FaultConfig, SandboxSettings
from ftops.sandbox.transport import in_process_transport

__all__ = [
    "FaultConfig",
    "LostResponse",
    "SandboxApp",
    "SandboxSettings",
    "in_process_transport",
    "make_server",
    "serve",
    "serving",
]
