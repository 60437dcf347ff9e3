"""Shared HTTP plumbing for providers: one retry policy and one error translation (STYLE.md habits 8, 9).

The `httpx.Client` is the seam: production code builds one with `HttpProvider.make_client`, tests
hand in a client bound to the sandbox (in process or served) or to an `httpx.MockTransport`.

Retry policy, in one place (`_send`) -- and only here: the executor never retries a request the
client already retried, it only decides between "look before writing again" and "stop":
- a request that certainly did not reach the server (connect error, 429) is retried for any
  method while the wait stays within the budget;
- a request that may have reached the server (read timeout, reset, 5xx) is retried only when it
  is safe to repeat (reads, idempotent parts); a write such as a job create instead raises with
  `maybe_committed=True`, so the engine looks the result up first;
- waits are exponential backoff with full jitter, or what Retry-After / retry-after-ms asks
  (finite, non-negative values only); attempts (`max_retries`) and total sleep (`max_retry_wait`)
  are both bounded, and every request has a total deadline (`timeout`), not just a per-read one.

Keys: stripped of surrounding whitespace and refused, without being echoed, when they hold
characters no HTTP header can carry; every message built here is scrubbed of them.
"""

from __future__ import annotations

import email.utils
import io
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from ftops.providers.base import Provider
from ftops.providers.errors import (
    APIStatusError,
    AuthError,
    MissingAPIKeyError,
    ProviderError,
    RateLimitError,
    ServerError,
    TransportError,
    scrub,
    status_error_class,
    status_message,
)

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
             httpx.LocalProtocolError, httpx.ProxyError)
# Longest wait ever honoured from a server's Retry-After; beyond it the caller stops cleanly.
MAX_RETRY_AFTER_S = 24 * 3600.0

http_log = logging.getLogger("ftops.http")


def clean_api_key(raw: str | None, env: str) -> str | None:
    """The key with surrounding whitespace removed; refused (never echoed) if a header cannot carry it."""
    if raw is None:
        return None
    key = raw.strip()
    if not key:
        return None
    bad = [c for c in key if ord(c) < 0x21 or ord(c) > 0x7E]
    if bad:
        raise MissingAPIKeyError(
            f"${env} holds a value with {len(bad)} character(s) that cannot be sent in an HTTP header "
            "(spaces, control characters or non-ASCII inside the key); the value is not shown. "
            f"Re-export ${env} with the key alone.", code="invalid_api_key")
    return key


def parse_retry_after(headers: httpx.Headers, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, else `Retry-After` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            v = float(ms) / 1000.0
            if v >= 0 and math.isfinite(v):
                return min(v, MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        v = float(ra)
        return min(v, MAX_RETRY_AFTER_S) if v >= 0 and math.isfinite(v) else None
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - now())


class _FileSlice:
    """A read-only window [start, start+length) of an open file, for streaming one upload part.

    It has `seek`/`tell` but no `fileno`, so httpx computes the part's Content-Length from the
    window and reads it in chunks (constant memory). Reads report progress through `on_read`.
    """

    def __init__(self, f: io.BufferedReader, start: int, length: int,
                 on_read: Callable[[int], None] | None = None, hasher: Any = None) -> None:
        self._hasher = hasher
        self._hashed = 0
        self._f = f
        self._start = start
        self._length = length
        self._pos = 0
        self._on_read = on_read

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        else:
            pos = self._length + offset
        self._pos = min(max(pos, 0), self._length)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def hexdigest(self) -> str | None:
        """sha256 of the bytes read, once every byte was read in order (else None: unknown)."""
        if self._hasher is None or self._hashed != self._length:
            return None
        return str(self._hasher.hexdigest())

    def read(self, n: int = -1) -> bytes:
        remaining = self._length - self._pos
        if n < 0 or n > remaining:
            n = remaining
        if n <= 0:
            return b""
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        if self._hasher is not None and self._pos == self._hashed:
            self._hasher.update(data)
            self._hashed += len(data)
        self._pos += len(data)
        if self._on_read is not None:
            self._on_read(self._pos)
        return data


class HttpProvider(Provider):
    """A provider reached over HTTP: holds the client, the key and the retry policy."""

    default_key_header = "Authorization"

    def __init__(
        self,
        http: httpx.Client,
        *,
        api_key: str | None,
        max_retries: int = 5,
        max_retry_wait: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_pages: int = 1000,
        page_size: int = 100,
        log: logging.Logger | None = None,
        api_key_env: str = "",
        name: str = "default",
        deadline: float | None = None,
    ) -> None:
        self.http = http
        self.api_key_env = api_key_env or self.capabilities.key_env
        self._api_key = clean_api_key(api_key, self.api_key_env)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.max_pages = max_pages
        self.page_size = page_size
        self.log = log or http_log
        self.name = name
        self.endpoint = str(http.base_url).rstrip("/")
        self.requests_sent = 0
        timeout = http.timeout.read
        self.deadline = deadline if deadline is not None else (4 * timeout if timeout else None)

    @classmethod
    def require_key(cls, api_key: str | None, env: str = "") -> None:
        """A real endpoint needs a key: refuse before anything is sent."""
        if not (api_key or "").strip():
            raise MissingAPIKeyError(f"no API key: set ${env or cls.capabilities.key_env}")

    @staticmethod
    def make_client(base_url: str, timeout: float, headers: Mapping[str, str] | None = None) -> httpx.Client:
        """A client with a 10 s connect timeout and `timeout` per read."""
        return httpx.Client(base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout, connect=10.0),
                            headers={"User-Agent": "ftops", **(headers or {})})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HttpProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _error_fields(self, body: Any) -> tuple[str | None, str | None, str | None]:
        """(message, code, param) from an error body; override for a dialect's own error shape."""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            e = body["error"]
            message = str(e["message"]) if e.get("message") is not None else None
            code = str(e["code"]) if e.get("code") is not None else (
                str(e["type"]) if e.get("type") is not None else None)
            param = str(e["param"]) if e.get("param") is not None else None
            return message, code, param
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"], None, None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            code = body.get("code") if isinstance(body.get("code"), str) else None
            return body["message"], code, None
        return None, None, None

    def _prepare_params(self, params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """Hook for dialects that add query parameters (Azure's api-version)."""
        return params

    def _secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key else ()

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt))."""
        return self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * (2 ** attempt)))

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Callable[[], Any] | None = None,
        safe_to_repeat: bool | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send with the retry policy in the module docstring; return a 2xx response or raise.

        `files` is a factory so each attempt streams the body from the start.
        `safe_to_repeat` defaults to True for reads and False for writes.
        """
        if safe_to_repeat is None:
            safe_to_repeat = method in _READ_METHODS
        waited = 0.0
        attempt = 0
        while True:
            err = self._attempt(method, path, params=params, json=json, data=data,
                                files=files() if files else None, safe_to_repeat=safe_to_repeat, content=content)
            if isinstance(err, httpx.Response):
                return err
            if not err.retryable or attempt >= self.max_retries:
                raise err
            if isinstance(err, APIStatusError) and err.retry_after is not None:
                wait = err.retry_after
            else:
                wait = self._backoff(attempt)
            if waited + wait > self.max_retry_wait:
                self.log.debug("giving up on %s %s: next wait %.1fs exceeds the budget", method, path, wait)
                raise err
            self.log.debug("retrying %s %s in %.2fs after %s", method, path, wait, type(err).__name__)
            self._sleep(wait)
            waited += wait
            attempt += 1

    def _attempt(self, method: str, path: str, *, params: Mapping[str, Any] | None, json: Any,
                 data: Mapping[str, Any] | None, files: Any, safe_to_repeat: bool, content: bytes | None = None
                 ) -> httpx.Response | ProviderError:
        """One HTTP exchange: a 2xx response, or the translated error (returned, not raised)."""
        self.requests_sent += 1
        start = time.monotonic()
        try:
            request = self.http.build_request(method, path, params=self._prepare_params(params), json=json,
                                              data=data, files=files, content=content,
                                              headers=self._auth_headers())
            resp = self.http.send(request, stream=True)
            try:
                self._read_within_deadline(resp, start)
            finally:
                resp.close()
        except httpx.TransportError as exc:
            elapsed = time.monotonic() - start
            not_sent = isinstance(exc, _NOT_SENT)
            is_read = method in _READ_METHODS
            maybe_committed = not not_sent and not is_read
            self.log.debug("%s %s -> %s after %.3fs", method, path, type(exc).__name__, elapsed)
            bug = isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError))
            terr = TransportError(
                f"{method} {path}: no answer from {self.endpoint} ({type(exc).__name__}: "
                f"{scrub(str(exc), self._secrets()) or 'connection failed'})"
                + ("; the request may have been applied" if maybe_committed else ""),
                retryable=not bug and (not_sent or safe_to_repeat),
                maybe_committed=maybe_committed,
                method=method,
                path=path,
            )
            terr.__cause__ = exc
            return terr
        elapsed = time.monotonic() - start
        request_id = resp.headers.get("x-request-id")
        self.log.debug("%s %s -> %d in %.3fs (request id %s)", method, path, resp.status_code,
                       elapsed, request_id or "-")
        if resp.is_success:
            return resp
        return self._status_error(resp, method, path, request_id, safe_to_repeat)

    def _read_within_deadline(self, resp: httpx.Response, start: float) -> None:
        """Read the body, giving up once the whole request has taken longer than `deadline`: a server
        dripping a byte a second never holds a plan for longer than that."""
        chunks: list[bytes] = []
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
            if self.deadline is not None and time.monotonic() - start > self.deadline:
                raise httpx.ReadTimeout(f"the answer took longer than {self.deadline:.0f}s in all",
                                        request=resp.request)
        resp._content = b"".join(chunks)  # what Response.read() does, with a deadline between chunks

    def _status_error(self, resp: httpx.Response, method: str, path: str, request_id: str | None,
                      safe_to_repeat: bool) -> APIStatusError:
        try:
            body = resp.json()
        except ValueError:
            body = None
        server_message, code, param = self._error_fields(body)
        if server_message is None and body is None:
            text = resp.text.strip()
            if text:
                server_message = " ".join(text.split())[:200]
        if server_message:
            server_message = scrub(server_message, self._secrets())
        status = resp.status_code
        cls = status_error_class(status)
        message = status_message(cls, status, server_message, param, method, path)
        message = message.replace("$OPENAI_API_KEY", f"${self.api_key_env}")
        kw: dict[str, Any] = {"status_code": status, "code": code, "param": param, "request_id": request_id,
                              "method": method, "path": path}
        retry_after = parse_retry_after(resp.headers)
        should_retry = resp.headers.get("x-should-retry", "").lower()
        if cls is RateLimitError:
            # 429 means nothing was done, so any method may repeat it -- except an empty quota.
            retryable = code != "insufficient_quota" and should_retry != "false"
            return RateLimitError(message, retry_after=retry_after, retryable=retryable, **kw)
        if cls is ServerError:
            is_read = method in _READ_METHODS
            if not safe_to_repeat:
                message += "; the request may have been applied"
            return ServerError(message, retry_after=retry_after, retryable=safe_to_repeat and should_retry != "false",
                               maybe_committed=not is_read, **kw)
        if status == 408:  # the server gave up waiting for the request: repeat only what is safe
            return APIStatusError(message, retry_after=retry_after, retryable=safe_to_repeat, **kw)
        out = cls(message, retry_after=retry_after, **kw)
        if isinstance(out, AuthError):
            out.key_env = self.api_key_env
        return out

    def _json(self, resp: httpx.Response, method: str, path: str) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            err = APIStatusError(
                f"{method} {path}: HTTP {resp.status_code} with a body that is not JSON",
                status_code=resp.status_code, request_id=resp.headers.get("x-request-id"),
                method=method, path=path)
            raise err from exc

    def _parse(self, model: type[BaseModel], obj: Any, method: str, path: str) -> Any:
        try:
            return model.model_validate(obj)
        except ValidationError as exc:
            raise APIStatusError(
                f"{method} {path}: unexpected response shape for {model.__name__}: "
                f"{exc.error_count()} problem(s), first: {exc.errors()[0]['loc']} "
                f"{exc.errors()[0]['msg']}", method=method, path=path) from exc

    def _chat_completions(self, path: str, model: str, messages: list[dict[str, Any]]) -> str:
        """An OpenAI-style chat completion (OpenAI, Together, Fireworks, Nebius...): the answer's text."""
        body = self._request_json("POST", path, json={"model": model, "messages": messages}, safe_to_repeat=True)
        try:
            return str(body["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise APIStatusError(f"POST {path}: no message in the answer", method="POST", path=path) from exc

    def _request_json(self, method: str, path: str, **kw: Any) -> Any:
        return self._json(self._send(method, path, **kw), method, path)

