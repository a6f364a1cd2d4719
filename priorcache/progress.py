"""Throttled progress lines for long loops: evaluation episodes, benchmark env steps.

`Progress` prints a line at most every `every_s` seconds, so fast work stays quiet (tests, CI
logs) and slow work (LLM-bound evaluation or benchmark cells, minutes each on a CPU) shows
that it is moving and how far it got. Lines go to stdout, flushed, like the training loop's
line per iteration. It only prints: no state beyond its own clock.
"""

from __future__ import annotations

import time


class Progress:
    """`progress(done)` prints `<label>: <done>/<total> <unit>[, detail] | <elapsed> s` when due."""

    def __init__(self, label: str, total: int, unit: str, every_s: float = 30.0) -> None:
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self._started = self._last = time.monotonic()

    def __call__(self, done: int, detail: str = "") -> bool:
        """Print if `every_s` passed since the last line (or the start); returns whether it printed."""
        now = time.monotonic()
        if now - self._last < self.every_s:
            return False
        self._last = now
        extra = f", {detail}" if detail else ""
        print(f"{self.label}: {done}/{self.total} {self.unit}{extra} | {now - self._started:.0f} s", flush=True)
        return True
