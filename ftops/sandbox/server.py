"""Served mode: the same app on a threaded HTTP server (werkzeug), every dialect on one port."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.serving import make_server as _werkzeug_make_server

from ftops.diagnostics import FtopsError, error
from ftops.sandbox.app import SandboxApp
from ftops.sandbox.faults import LostResponse
from ftops.sandbox.settings import SandboxSettings

__all__ = ["SandboxServer", "make_server", "serve", "serving"]

SandboxServer = BaseWSGIServer


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: tests and CI output stay readable."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _dropping(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap the app so a lost-response fault closes the client's connection without an answer."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except LostResponse as exc:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            # werkzeug treats a ConnectionError as "client went away": no 500, no traceback.
            raise ConnectionAbortedError(str(exc)) from exc

    return wsgi


def make_server(host: str, port: int, app: Callable[..., Iterable[bytes]], *,
                read_timeout_s: float | None = None) -> BaseWSGIServer:
    """A threaded server for `app` (port 0 picks a free port; read it back from `.port`).
    Call `.serve_forever()` and, from another thread, `.shutdown()`; raises OSError if the port is busy.

    A connection that sends nothing for `read_timeout_s` seconds (default: the app's
    `settings.read_timeout_s`, else 30) is closed, so a client announcing a huge body it never sends
    cannot hold a server thread."""
    if read_timeout_s is None:
        settings = getattr(app, "settings", None)
        read_timeout_s = float(getattr(settings, "read_timeout_s", 30.0))

    class Handler(_QuietHandler):
        timeout = read_timeout_s

    # Bind here so a busy port raises OSError (werkzeug would print and sys.exit instead).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        return _werkzeug_make_server(host, port, _dropping(app), threaded=True, request_handler=Handler,
                                     fd=sock.fileno())


@contextmanager
def serving(app: Callable[..., Iterable[bytes]], *, read_timeout_s: float | None = None) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) from a background thread for the `with` block; yields the
    base URL (`http://127.0.0.1:PORT`). For tests of your own pipeline against the sandbox, and ours."""
    server = make_server("127.0.0.1", 0, app, read_timeout_s=read_timeout_s)
    thread = threading.Thread(target=server.serve_forever, name="ftops-sandbox", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def serve(*, host: str, port: int, db_path: Path, time_scale: float | None, faults: str | None,
          api_keys: list[str] | None, echo: Callable[[str], None] = print,
          limits: dict[str, Any] | None = None) -> None:
    """Run the sandbox until interrupted (the `ftops sandbox serve` command); `limits` replaces
    `SandboxSettings` fields (a None value there means "no limit", not "the default")."""
    settings = SandboxSettings.from_env(time_scale=time_scale, faults=faults, api_keys=api_keys or None)
    if limits:
        settings = dataclasses.replace(settings, **limits)
    app = SandboxApp(Path(db_path), settings=settings)
    try:
        server = make_server(host, port, app)
    except OSError as exc:
        raise FtopsError(error("sandbox.cannot_listen", f"cannot listen on {host}:{port}", str(exc),
                               hint="pick another --port, or 0 for any free port")) from exc
    root = f"http://{host}:{server.port}"
    echo(f"ftops sandbox serving on {root} (db: {db_path}): "
         + ", ".join(f"{d.name} at {root}{d.prefix}" for d in app.dialects))
    if settings.faults.enabled:
        echo(f"fault injection on: {settings.faults}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
