"""A transient progress line for terminals: long reads, uploads and retries say what they are doing.

Drawn in place on one line (carriage return + erase), at most ten times a second, only once a step
has lasted `delay` seconds (a warm plan shows nothing), and erased before any other output. Without
a terminal it draws nothing at all: CI logs get plain lines from the hooks instead. No dependency:
importing it costs nothing at start-up.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

ERASE = "\r\x1b[2K"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class ProgressLine:
    """One status line on a terminal; every method is a no-op when `enabled` is false."""

    def __init__(self, stream: TextIO, *, enabled: bool, delay: float = 0.3, interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.enabled = enabled
        self.delay = delay
        self.interval = interval
        self.clock = clock
        self._key: str | None = None
        self._started = 0.0
        self._drawn_at = -1e9
        self.visible = False

    def update(self, key: str, text: str, done: int | None = None, total: int | None = None, *,
               now: bool = False) -> None:
        """Show `text` (with a bar when `done`/`total` are given); `key` names the step being timed."""
        if not self.enabled:
            return
        t = self.clock()
        if key != self._key:
            self._key, self._started = key, t
        if not now and t - self._started < self.delay:
            return
        if not now and t - self._drawn_at < self.interval:
            return
        if done is not None and total:
            frac = min(max(done / total, 0.0), 1.0)
            bar = "#" * int(frac * 20)
            text = f"{text}  [{bar:<20}] {frac:4.0%}  {_size(done)} / {_size(total)}"
        width = max(shutil.get_terminal_size((100, 20)).columns - 1, 20)
        self.stream.write(ERASE + text[:width])
        self.stream.flush()
        self._drawn_at = t
        self.visible = True

    def clear(self) -> None:
        """Erase the line (before other output, and when a step ends)."""
        if self.visible:
            self.stream.write(ERASE)
            self.stream.flush()
            self.visible = False
        self._key = None
