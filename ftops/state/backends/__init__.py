"""State backends: `local` (default), `postgres` (psycopg 3), `s3` (boto3); `open_backend` picks one.

postgres and s3 import their client library only when used (extras `ftops[postgres]`, `ftops[s3]`).
Secrets (a database URL with its password, S3 endpoints) come from environment variables named in
the config, never from the YAML itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftops.diagnostics import FtopsError, error
from ftops.state.backend import StateBackend
from ftops.state.backends.local import LocalBackend

BACKENDS = ("local", "postgres", "s3")


def _env(environ: Mapping[str, str], name: str | None, what: str, backend: str) -> str:
    value = environ.get(name or "") if name else None
    if not value:
        raise FtopsError(error(
            "state.backend_config", f"${name} is not set" if name else f"the {backend} state backend needs {what}",
            f"`state: backend: {backend}` reads {what} from the environment variable "
            f"{name or '(none named)'}; nothing was read or sent.",
            hint=f"export {name or 'FTOPS_STATE_URL'}=... (secrets never go into ftops.yaml)"))
    return value


def open_backend(settings: Any, *, root: Path, project: str, environ: Mapping[str, str]) -> StateBackend:
    """The backend a `state:` config block (duck-typed: `backend`, `url_env`, `key`, `s3`) names."""
    kind = getattr(settings, "backend", "local") if settings is not None else "local"
    key = (getattr(settings, "key", None) or project) if settings is not None else project
    if kind == "local":
        return LocalBackend.for_project(root)
    if kind == "postgres":
        from ftops.state.backends.postgres import PostgresBackend

        url = _env(environ, settings.url_env, "a postgresql:// URL", "postgres")
        return PostgresBackend(url, key)
    if kind == "s3":
        from ftops.state.backends.s3 import S3Backend

        s3 = settings.s3
        endpoint = _env(environ, s3.endpoint_url_env, "the S3 endpoint URL", "s3") if s3.endpoint_url_env else None
        return S3Backend(bucket=s3.bucket, key=s3.key, region=s3.region, endpoint_url=endpoint)
    raise FtopsError(error("state.backend_config", f"unknown state backend {kind!r}",
                           f"choose one of {', '.join(BACKENDS)}."))




__all__ = ["BACKENDS", "LocalBackend", "StateBackend", "open_backend"]
