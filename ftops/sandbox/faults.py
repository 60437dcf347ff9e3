"""Fault injection: what a flaky network and an overloaded API do to a client.

A fault is decided before the action (500/503, 429: nothing happens) or after it (lost
response: the action is committed, then the client gets no answer). All draws come from one
generator, in request order, so a seeded run meets the same faults every time.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from ftops.sandbox.errors import ApiError
from ftops.sandbox.settings import FaultConfig

__all__ = ["FaultDecision", "FaultInjector", "LostResponse"]


class LostResponse(Exception):
    """Raised out of the WSGI app after the action committed: the transport or server must drop
    the connection without answering."""


@dataclass(frozen=True)
class FaultDecision:
    before: ApiError | None
    lose_response: bool


class FaultInjector:
    """Thread-safe, seeded source of fault decisions for one app."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()

    def decide(self) -> FaultDecision:
        c = self.config
        if not c.enabled:
            return FaultDecision(None, False)
        with self._lock:
            draw, pick, lost = self._rng.random(), self._rng.random(), self._rng.random()
        if c.latency_ms:
            time.sleep(c.latency_ms / 1000.0)
        before: ApiError | None = None
        if draw < c.error_rate:
            if pick < 0.5:
                before = ApiError(500, "The server had an error while processing your request. Sorry about that!",
                                  type="server_error")
            else:
                before = ApiError(503, "The engine is currently overloaded, please try again later.",
                                  type="server_error")
        elif draw < c.error_rate + c.rate_limit_rate:
            ms = c.retry_after_ms
            before = ApiError(429, f"Rate limit reached for requests (injected fault). Please try again in {ms}ms.",
                              type="requests", code="rate_limit_exceeded",
                              headers={"Retry-After": str(max(1, -(-ms // 1000))), "retry-after-ms": str(ms)})
        return FaultDecision(before, before is None and lost < c.lost_response_rate)
