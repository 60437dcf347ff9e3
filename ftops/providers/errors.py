"""Provider errors: the one exception tree every provider raises, translated once at the HTTP edge.

    ProviderError                      message, status_code, code, param, request_id, retryable,
    │                                  maybe_committed, diagnostic_code; cause chained
    ├── MissingAPIKeyError             no key configured (nothing was sent)
    ├── PaginationError                a list did not end within max_pages, or its cursor repeated
    ├── TransportError                 no HTTP answer at all; maybe_committed says whether a
    │                                  non-GET request may have reached the server
    ├── FileProcessingError            an uploaded file ended in `error` or never became usable
    └── APIStatusError                 the server answered with an error status
        ├── BadRequestError            400, 422 (message names `param`)
        ├── AuthError                  401/403: never read as "absent"
        │   ├── AuthenticationError    401
        │   └── PermissionDeniedError  403
        ├── NotFoundError              404: the ONLY error that means "absent"
        ├── ConflictError              409
        ├── RateLimitError             429, retry_after: float | None (seconds)
        └── ServerError                5xx; retryable for reads; maybe_committed for writes

Why one tree: the engine decides between "absent", "try later" and "stop" from the class and the
`retryable` / `maybe_committed` flags, never from message text (STYLE.md habits 5 and 9).
Messages never contain the API key: `scrub` removes it (and anything shaped like a key) from
server-provided text before it is stored.
"""

from __future__ import annotations

import re
from typing import Any

from ftops.diagnostics import Diagnostic, error

_KEY_PATTERN = re.compile(r"\b(sk|ak|key)-[A-Za-z0-9_*\-]{4,}")


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove API keys (the configured ones, and anything shaped like `sk-...`) from text."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return _KEY_PATTERN.sub("***", text)


class ProviderError(Exception):
    """Base of every provider failure; carries what the engine needs to decide what to do."""

    diagnostic_code = "provider.error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        maybe_committed: bool = False,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.maybe_committed = maybe_committed
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return self.message

    def to_diagnostic(self, *, address: str = "") -> Diagnostic:
        """This error as a diagnostic (stable code, summary, detail with request id, hint)."""
        where = f"{self.method} {self.path}" if self.method and self.path else ""
        detail_parts = [self.message]
        if where:
            detail_parts.append(f"request: {where}")
        if self.request_id:
            detail_parts.append(f"request id: {self.request_id}")
        return error(
            self.diagnostic_code,
            self.summary(),
            "; ".join(detail_parts),
            hint=self.hint(),
            address=address,
        )

    def summary(self) -> str:
        return "provider request failed"

    def hint(self) -> str:
        return ""


class MissingAPIKeyError(ProviderError):
    """No API key is configured for a provider that needs one; nothing was sent."""

    diagnostic_code = "provider.missing_api_key"

    def summary(self) -> str:
        return "no API key"


class PaginationError(ProviderError):
    """A list endpoint did not end within the page bound, or returned the same cursor twice."""

    diagnostic_code = "provider.pagination"

    def summary(self) -> str:
        return "listing did not terminate"


class TransportError(ProviderError):
    """No HTTP answer: connect failure, timeout, reset, protocol error.

    `maybe_committed` is True when a non-GET request may have reached the server (read timeout,
    reset after send): the caller must look the result up before trying again.
    """

    diagnostic_code = "provider.transport_error"

    def summary(self) -> str:
        return "no answer from the provider"

    def hint(self) -> str:
        if self.maybe_committed:
            return "the request may have been applied; re-running looks it up before retrying"
        return "check the network and the provider's base_url"


class FileProcessingError(ProviderError):
    """An uploaded file that the provider could not process (status `error`), or that did not become
    usable in time: training on it would fail, so apply stops before creating a job."""

    diagnostic_code = "provider.file_error"

    def summary(self) -> str:
        return "the provider could not process an uploaded file"

    def hint(self) -> str:
        if self.retryable:
            return "re-run `ftops apply` later: the file is kept and adopted, not uploaded again"
        return "fix the dataset (`ftops dataset check` names the line), then re-run `ftops apply`"


class APIStatusError(ProviderError):
    """The server answered with an error status (4xx/5xx).

    `retry_after` is the wait the server asked for (Retry-After / retry-after-ms), in seconds.
    """

    diagnostic_code = "provider.api_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after

    def summary(self) -> str:
        return f"provider answered HTTP {self.status_code}"


class BadRequestError(APIStatusError):
    """400/422: the request was invalid; `param` names the offending field when the server says."""

    diagnostic_code = "provider.bad_request"

    def summary(self) -> str:
        return "the provider rejected the request"

    def hint(self) -> str:
        return f"check `{self.param}`" if self.param else ""


class AuthError(APIStatusError):
    """401/403. Never means "absent": refresh must abort, not conclude that things are gone."""

    diagnostic_code = "provider.auth_failed"
    key_env = "OPENAI_API_KEY"
    """The environment variable the key came from, named in the hint."""


class AuthenticationError(AuthError):
    """401: the key is missing, wrong or revoked."""

    diagnostic_code = "provider.auth_failed"

    def summary(self) -> str:
        return "authentication failed"

    def hint(self) -> str:
        return f"check the key in ${self.key_env}"


class PermissionDeniedError(AuthError):
    """403: the key is valid but may not do this (project, organization or role)."""

    diagnostic_code = "provider.permission_denied"

    def summary(self) -> str:
        return "permission denied"

    def hint(self) -> str:
        return f"check the permissions of the key in ${self.key_env} (organization, project, role)"


class NotFoundError(APIStatusError):
    """404: the one answer that means the object does not exist."""

    diagnostic_code = "provider.not_found"

    def summary(self) -> str:
        return "not found"


class ConflictError(APIStatusError):
    """409: the object is in a state that does not allow this."""

    diagnostic_code = "provider.conflict"

    def summary(self) -> str:
        return "conflict"


class RateLimitError(APIStatusError):
    """429: slow down. `retry_after` is the server's requested wait in seconds, when it said."""

    diagnostic_code = "provider.rate_limited"
    default_retryable = True

    def summary(self) -> str:
        return "rate limited"

    def hint(self) -> str:
        if self.code == "insufficient_quota":
            return "the account is out of quota: check billing; waiting will not help"
        if self.retry_after is not None:
            return f"retry in {self.retry_after:.0f} s; re-running resumes"
        return "wait and re-run; re-running resumes"


class ServerError(APIStatusError):
    """5xx. Retryable for reads; for a write the request may have been applied (maybe_committed)."""

    diagnostic_code = "provider.server_error"
    default_retryable = True

    def summary(self) -> str:
        return "provider server error"

    def hint(self) -> str:
        if self.maybe_committed:
            return "the request may have been applied; re-running looks it up before retrying"
        return "try again later"


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return ServerError
    return APIStatusError


_STATUS_TEXT: dict[type[APIStatusError], str] = {
    BadRequestError: "bad request",
    AuthenticationError: "authentication failed (check the key in $OPENAI_API_KEY)",
    PermissionDeniedError: "permission denied (check the permissions of the key in $OPENAI_API_KEY)",
    NotFoundError: "not found",
    ConflictError: "conflict",
    RateLimitError: "rate limit exceeded",
    ServerError: "server error",
}


def status_message(cls: type[APIStatusError], status_code: int, server_message: str | None,
                   param: str | None, method: str, path: str) -> str:
    """One clear line: what kind of failure, the request, the server's (scrubbed) words, the param."""
    head = _STATUS_TEXT.get(cls, "error")
    msg = f"{method} {path}: HTTP {status_code} {head}"
    if server_message:
        msg += f": {server_message}"
    if param:
        msg += f" (param: {param})"
    return msg
