"""The sandbox WSGI app: one emulator core that mounts one dialect per provider by URL prefix.

OpenAI's dialect answers under `/v1`, Together's under `/together/v1` (see
`ftops.sandbox.dialects`). Each request: find the dialect and endpoint, let the dialect
authenticate it, maybe inject a fault, then run the dialect's handler, which does its work in one
database transaction (`SandboxApp.tx`) that first advances the simulation to `clock()`. A
lost-response fault raises `LostResponse` only after that transaction committed. Errors are
`ApiError`s, rendered by the dialect that owns the URL.

What lives here is shared by every dialect: the store, the clock, the simulation, fault
injection, rate limits, file bytes (hashing, committing, expiry) and the deterministic "chat with
a fine-tuned model" answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.routing import EndpointPrefix, Map, Submount
from werkzeug.wrappers import Request, Response

from ftops.sandbox.errors import ApiError, bad_request, not_found
from ftops.sandbox.faults import FaultInjector, LostResponse
from ftops.sandbox.lifecycle import Simulation
from ftops.sandbox.settings import SandboxSettings
from ftops.sandbox.store import Store, fsync_dir, insert_file

if TYPE_CHECKING:
    from ftops.sandbox.dialects import Dialect

__all__ = ["SandboxApp", "finite_json", "int_arg", "parse_json"]

MB = 1024 * 1024
WINDOW_S = 3600.0

log = logging.getLogger("ftops.sandbox")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text}")
    return value


def parse_json(raw: bytes | str, *, max_depth: int) -> Any:
    """Strict JSON: no NaN/Infinity (nor numbers that overflow to them), at most `max_depth` levels of
    nesting, no lone UTF-16 surrogates in strings or keys. Raises ApiError(400) otherwise.

    Depth is checked on the raw text before parsing, so a 100,000-level document never reaches the
    (recursive) parser."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > max_depth:
                    raise bad_request(f"The JSON body is nested more than {max_depth} levels deep.",
                                      code="invalid_json")
        elif ch in "]}":
            depth -= 1
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:  # pragma: no cover - the depth scan above refuses such bodies first
        raise bad_request("The JSON body is nested too deeply.", code="invalid_json") from None
    except ValueError as exc:
        if "non-finite" in str(exc):
            raise bad_request("The JSON body holds a non-finite number (NaN, Infinity or one too large to "
                              "represent); numbers must be finite.", code="invalid_value") from None
        raise
    _check_strings(value)
    return value


def _check_strings(value: Any) -> None:
    """Refuse strings (values or keys) that are not valid Unicode: a lone surrogate such as \\ud800
    parses in Python but can be neither stored nor sent back as UTF-8."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            strings: list[str] = [node]
        elif isinstance(node, dict):
            strings = [k for k in node if isinstance(k, str)]
            stack.extend(node.values())
        elif isinstance(node, list):
            strings = []
            stack.extend(node)
        else:
            continue
        for s in strings:
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request("The JSON body holds a string that is not valid Unicode (a lone UTF-16 "
                                  "surrogate such as \\ud800).", code="invalid_value") from None


def finite_json(value: Any) -> Any:
    """`value` with every non-finite float replaced by None: what the sandbox sends is always standard
    JSON, even when a row stored before non-finite numbers were refused still holds one."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or a 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid '{name}': expected an integer, got {raw!r}.", param=name,
                          code="invalid_value") from None
    if not low <= value <= high:
        raise bad_request(f"Invalid '{name}': must be between {low} and {high}.", param=name, code="invalid_value")
    return value


_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


class SandboxApp:
    """A WSGI app emulating providers' fine-tuning APIs, with its state in `db_path`.

    `clock` (seconds since the epoch) drives every timestamp and the job simulation; tests inject
    one to walk a job through its lifecycle without sleeping. `dialects` defaults to every dialect
    the sandbox knows (`ftops.sandbox.dialects.default_dialects`).
    """

    def __init__(self, db_path: Path, *, settings: SandboxSettings | None = None,
                 clock: Callable[[], float] | None = None,
                 dialects: Iterable[type[Dialect]] | None = None) -> None:
        from ftops.sandbox.dialects import default_dialects

        self.settings = settings or SandboxSettings()
        self.clock: Callable[[], float] = clock or time.time
        self.store = Store(Path(db_path))
        self.faults = FaultInjector(self.settings.faults)
        self.dialects: list[Dialect] = [cls(self) for cls in (dialects or default_dialects())]
        self._by_name = {d.name: d for d in self.dialects}
        # Longest prefix first, so "/together/v1" wins over "/v1" for a URL that matches no rule.
        self._by_prefix = sorted(self.dialects, key=lambda d: len(d.prefix), reverse=True)
        self._urls = Map([Submount(d.prefix, [EndpointPrefix(f"{d.name}.", d.rules())]) for d in self.dialects],
                         strict_slashes=False)

    def dialect(self, name: str) -> Dialect:
        return self._by_name[name]

    def _dialect_for(self, path: str) -> Dialect:
        for d in self._by_prefix:
            if path == d.prefix or path.startswith(d.prefix + "/"):
                return d
        return self._by_name.get("openai", self.dialects[0])

    # -- WSGI --------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        dialect = self._dialect_for(request.path)
        lost = False
        try:
            adapter = self._urls.bind_to_environ(environ)
            try:
                endpoint, values = adapter.match()
            except MethodNotAllowed as exc:
                allowed = ", ".join(sorted(exc.valid_methods or ()))
                raise ApiError(405, f"Method {request.method} is not allowed on {request.path}"
                                    + (f" (allowed: {allowed})." if allowed else "."),
                               headers={"Allow": allowed} if allowed else None) from None
            except HTTPException:
                raise ApiError(404, f"Invalid URL ({request.method} {request.path})") from None
            name, _, handler = str(endpoint).partition(".")
            dialect = self._by_name[name]
            dialect.authenticate(request, handler)
            decision = self.faults.decide()
            if decision.before is not None:
                raise decision.before
            lost = decision.lose_response
            response: Response = getattr(dialect, f"h_{handler}")(request, **values)
        except ApiError as exc:
            response = dialect.error_response(exc)
        except RequestEntityTooLarge:
            response = dialect.error_response(ApiError(413, "Request body too large.", code="request_too_large"))
        except (LostResponse, TimeoutError, ConnectionError):
            raise  # the served wrapper drops the connection; werkzeug treats these as "client went away"
        except Exception:  # a bug: still answer in the dialect's JSON shape, never an HTML page
            log.exception("sandbox: unhandled error on %s %s", request.method, request.path)
            response = dialect.error_response(ApiError(500, "The sandbox hit an internal error while processing "
                                                            "your request.", type="server_error"))
        if lost:
            raise LostResponse(f"{request.method} {request.path}: response dropped after the action committed")
        dialect.decorate(response, started)
        body: Iterable[bytes] = response(environ, start_response)
        return body

    # -- shared services for dialects -----------------------------------------------------------
    @staticmethod
    def json(body: Any, status: int = 200) -> Response:
        """A JSON response; never NaN/Infinity (non-finite numbers become null)."""
        try:
            text = json.dumps(body, allow_nan=False)
        except ValueError:
            text = json.dumps(finite_json(body), allow_nan=False)
        return Response(text, status=status, mimetype="application/json")

    @contextmanager
    def tx(self) -> Iterator[tuple[sqlite3.Connection, float, Simulation]]:
        """One transaction, with the world advanced to now before the action runs."""
        with self.store.write() as conn:
            now = self.clock()
            self.process_files(conn, now)
            sim = Simulation(conn, self.store, self.settings)
            sim.advance(now)
            yield conn, now, sim

    def process_files(self, conn: sqlite3.Connection, now: float) -> None:
        """Finish the processing of every `uploaded` file whose `ready_at` has passed: its dialect's
        `process_file` decides `processed` or `error` (with `status_details`)."""
        for row in conn.execute("SELECT * FROM files WHERE status = 'uploaded' AND ready_at IS NOT NULL "
                                "AND ready_at <= ? AND deleted = 0", (now,)).fetchall():
            dialect = self._by_name.get(row["dialect"])
            status, details = dialect.process_file(row) if dialect is not None else ("processed", None)
            conn.execute("UPDATE files SET status = ?, status_details = ? WHERE id = ?", (status, details, row["id"]))

    def json_body(self, request: Request) -> dict[str, Any]:
        """The request's JSON object, within `settings.max_json_body_bytes` (413) and
        `settings.max_json_depth` (400), finite numbers and valid Unicode only (400)."""
        limit = self.settings.max_json_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, f"Request body too large: the limit for JSON bodies is {limit} bytes.",
                           code="request_too_large")
        request.max_content_length = limit
        try:
            raw = request.stream.read(limit + 1) if request.content_length is None else request.get_data(cache=True)
        except RequestEntityTooLarge:
            raise ApiError(413, f"Request body too large: the limit for JSON bodies is {limit} bytes.",
                           code="request_too_large") from None
        if len(raw) > limit:
            raise ApiError(413, f"Request body too large: the limit for JSON bodies is {limit} bytes.",
                           code="request_too_large")
        try:
            body = parse_json(raw or b"{}", max_depth=self.settings.max_json_depth)
        except (ValueError, UnicodeDecodeError):
            raise bad_request("We could not parse the JSON body of your request. (HINT: This likely means you "
                              "aren't using your HTTP library correctly.)") from None
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        return body

    def rate_limit(self, conn: sqlite3.Connection, now: float, kind: str, limit: int | None, what: str, *,
                   window_s: float = WINDOW_S) -> None:
        """Refuse (429) a `kind` of action done `limit` times in the last `window_s` seconds of sandbox
        time (divided by `time_scale`, like every duration); `limit=None` means no limit. The caller
        records the action with `record_rate_event` once it succeeded."""
        if limit is None:
            return
        window = window_s / self.settings.time_scale
        per = {3600.0: "hour", 86400.0: "day", 60.0: "minute"}.get(window_s, f"{window_s:g} s")
        # One kind may be limited over several windows (per hour and per day): keep a day's events.
        conn.execute("DELETE FROM rate_events WHERE kind = ? AND at <= ?",
                     (kind, now - max(window, 86400.0 / self.settings.time_scale)))
        rows = conn.execute("SELECT at FROM rate_events WHERE kind = ? AND at > ? ORDER BY at",
                            (kind, now - window)).fetchall()
        if len(rows) >= limit:
            wait = max(0.001, rows[len(rows) - limit]["at"] + window - now)
            raise ApiError(
                429, f"Rate limit reached for {what} per {per}: limit {limit}, used {len(rows)}. "
                     f"Please try again in {math.ceil(wait)}s.",
                type="requests", code="rate_limit_exceeded",
                headers={"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))},
            )

    @staticmethod
    def record_rate_event(conn: sqlite3.Connection, now: float, kind: str) -> None:
        conn.execute("INSERT INTO rate_events(kind, at) VALUES (?, ?)", (kind, now))

    def copy_hashed(self, sources: Iterable[Any], tmp: Path, limit: int) -> tuple[int, str, str]:
        """Concatenate readable sources into `tmp` (fsynced), refusing more than `limit` bytes;
        returns (size, sha256, md5). One pass: files and completed uploads are hashed as written."""
        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
        try:
            with open(tmp, "wb") as out:
                for src in sources:
                    while chunk := src.read(MB):
                        size += len(chunk)
                        if size > limit:
                            raise bad_request(f"File is too large: the limit is {limit // MB} MB.", param="file",
                                              code="file_too_large")
                        sha.update(chunk)
                        md5.update(chunk)
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size, sha.hexdigest(), md5.hexdigest()

    def tmp_path(self, object_id: str) -> Path:
        return self.store.files_dir / f"{object_id}.tmp"

    def place_file(self, tmp: Path, file_id: str) -> None:
        """Move fsynced bytes to their final place (inside the caller's transaction)."""
        os.replace(tmp, self.store.file_path(file_id))
        fsync_dir(self.store.files_dir)

    def commit_file(self, conn: sqlite3.Connection, tmp: Path, *, dialect: str, file_id: str, now: float,
                    size: int, filename: str, purpose: str, sha256: str, expires_at: float | None,
                    extra: dict[str, Any] | None = None, processing_s: float | None = None) -> sqlite3.Row:
        """Record an uploaded file (rate-limited per dialect) and move its bytes in place.

        `processing_s` (sandbox seconds, divided by `time_scale`): the file starts `uploaded` and
        the core later asks the dialect's `process_file` for its final status; None: `processed` now."""
        kind = "file_upload" if dialect == "openai" else f"{dialect}:file_upload"
        self.rate_limit(conn, now, kind, self.settings.file_uploads_per_hour, "file uploads")
        pending = processing_s is not None
        insert_file(conn, file_id=file_id, created_at=now, size=size, filename=filename, purpose=purpose,
                    sha256=sha256, expires_at=expires_at, dialect=dialect,
                    extra=json.dumps(extra) if extra is not None else None,
                    status="uploaded" if pending else "processed",
                    ready_at=now + (processing_s or 0.0) / self.settings.time_scale if pending else None)
        self.record_rate_event(conn, now, kind)
        self.place_file(tmp, file_id)
        row: sqlite3.Row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return row

    def expire_files(self, conn: sqlite3.Connection, now: float) -> None:
        for row in conn.execute("SELECT id FROM files WHERE deleted = 0 AND expires_at IS NOT NULL "
                                "AND expires_at <= ?", (now,)).fetchall():
            self.delete_file(conn, row["id"])

    def delete_file(self, conn: sqlite3.Connection, file_id: str) -> None:
        conn.execute("UPDATE files SET deleted = 1 WHERE id = ?", (file_id,))
        self.store.file_path(file_id).unlink(missing_ok=True)

    def file_row(self, conn: sqlite3.Connection, dialect: str, file_id: str, now: float) -> sqlite3.Row | None:
        """A live file of `dialect`, or None (another dialect's file is as absent as a missing one)."""
        self.expire_files(conn, now)
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM files WHERE id = ? AND deleted = 0 AND dialect = ?", (file_id, dialect)).fetchone()
        return row

    def job_row(self, conn: sqlite3.Connection, dialect: str, job_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute("SELECT * FROM jobs WHERE id = ? AND dialect = ?",
                                               (job_id, dialect)).fetchone()
        return row

    def tuned_job_of(self, conn: sqlite3.Connection, dialect: str, model: str) -> str | None:
        """The job that trained `model` (a fine-tuned model or one of its checkpoints) in `dialect`."""
        row = conn.execute("SELECT job_id FROM models WHERE id = ? AND deleted = 0 AND dialect = ?",
                           (model, dialect)).fetchone()
        if row is not None:
            return str(row["job_id"])
        ckpt = conn.execute("SELECT c.job_id FROM checkpoints c JOIN jobs j ON j.id = c.job_id "
                            "WHERE c.model = ? AND j.dialect = ?", (model, dialect)).fetchone()
        return str(ckpt["job_id"]) if ckpt is not None else None

    # Other resources a dialect keeps (deployments, …): JSON documents by name, in creation order.
    @staticmethod
    def resource(conn: sqlite3.Connection, dialect: str, kind: str, name: str) -> dict[str, Any] | None:
        row = conn.execute("SELECT data FROM resources WHERE name = ? AND dialect = ? AND kind = ?",
                           (name, dialect, kind)).fetchone()
        return json.loads(row["data"]) if row is not None else None

    @staticmethod
    def resources(conn: sqlite3.Connection, dialect: str, kind: str, prefix: str = "") -> list[dict[str, Any]]:
        rows = conn.execute("SELECT data FROM resources WHERE dialect = ? AND kind = ? AND name LIKE ? ORDER BY seq",
                            (dialect, kind, prefix + "%")).fetchall()
        return [json.loads(r["data"]) for r in rows]

    @staticmethod
    def put_resource(conn: sqlite3.Connection, dialect: str, kind: str, name: str, data: dict[str, Any]) -> None:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM resources").fetchone()[0]
        conn.execute("INSERT INTO resources(name, dialect, kind, seq, data) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT(name) DO UPDATE SET data = excluded.data", (name, dialect, kind, seq, json.dumps(data)))

    def answer_chat(self, conn: sqlite3.Connection, job_id: str, messages: list[dict[str, Any]]) -> str:
        job = conn.execute("SELECT training_file FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if job is None:
            raise not_found(f"Could not find fine-tuning job: {job_id}")
        return self.nearest_answer(self.store.file_path(job["training_file"]), messages)

    @staticmethod
    def nearest_answer(training: Path, messages: list[dict[str, Any]]) -> str:
        """The reply of the training example whose prompt shares most words with the last user
        message (Jaccard overlap; first example wins ties). Chat, preference and prompt/completion
        examples all count."""
        users = [m for m in messages if m.get("role") == "user"] or messages
        query = words(text_of(users[-1].get("content")))
        best_score, best_answer = -1.0, ""
        if not training.is_file():  # training file deleted since: nothing to imitate
            return ""
        with open(training, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    example = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(example, dict):
                    continue
                turns = example.get("messages") or (example.get("input") or {}).get("messages") or []
                prompt = " ".join(text_of(t.get("content")) for t in turns
                                  if isinstance(t, dict) and t.get("role") == "user")
                replies = [t for t in turns if isinstance(t, dict) and t.get("role") == "assistant"]
                preferred = example.get("preferred_output") or []
                replies += [t for t in preferred if isinstance(t, dict)]
                if isinstance(example.get("prompt"), str) and isinstance(example.get("completion"), str):
                    prompt = example["prompt"]
                    replies = [{"content": example["completion"]}]
                if not replies:
                    continue
                found = words(prompt)
                union = query | found
                score = len(query & found) / len(union) if union else 0.0
                if score > best_score:
                    best_score, best_answer = score, text_of(replies[-1].get("content"))
        return best_answer
