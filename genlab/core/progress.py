"""Progress that suits where it goes: a live tqdm bar on a terminal, plain periodic lines in a log file.

A bar redraws itself with carriage returns, which a log (`make demo > demo.log`, a CI job) keeps as one
ever-growing line. When stderr is not a terminal, `progress_bar` prints one readable line at most every
`every_s` seconds instead — count/total, rate, ETA and the latest postfix — and a last one when it closes.
Both answer tqdm's calls that genlab makes: update, set_postfix, close, and `with`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

LINE_EVERY_S = 10.0  # a log gets at most one progress line per this many seconds


def _duration(seconds: float) -> str:
    """71 -> '1m11s', 3725 -> '1h02m': short enough for a log line."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLines:
    """tqdm's interface as periodic plain lines: `desc: 120/600 batch (20%), 3.4 batch/s, ETA 2m21s, loss=0.345`."""

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        stream: TextIO | None = None,
        every_s: float = LINE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream = stream if stream is not None else sys.stderr
        self.every_s, self.clock = every_s, clock
        self.started = self.last_line = clock()
        self.first, self.printed = initial, initial  # counts at the start and at the last line
        self.postfix = ""
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.clock() - self.last_line >= self.every_s:
            self._line()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if not self.closed and self.n != self.printed:
            self._line()
        self.closed = True

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> None:
        now = self.clock()
        elapsed = max(now - self.started, 1e-9)
        rate = (self.n - self.first) / elapsed
        parts = [f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"]
        if self.total:
            parts[0] += f" ({self.n / self.total:.0%})"
        parts.append(f"{rate:.3g} {self.unit}/s")
        if self.total and rate > 0 and self.n < self.total:
            parts.append(f"ETA {_duration((self.total - self.n) / rate)}")
        elif self.n and self.total and self.n >= self.total:
            parts.append(f"done in {_duration(elapsed)}")
        if self.postfix:
            parts.append(self.postfix)
        prefix = f"{self.desc}: " if self.desc else ""
        print(prefix + ", ".join(parts), file=self.stream, flush=True)
        self.last_line, self.printed = now, self.n


def progress_bar(
    total: int | None,
    desc: str = "",
    unit: str = "it",
    initial: int = 0,
    disable: bool = False,
    stream: TextIO | None = None,
) -> Any:
    """A tqdm bar when `stream` (default stderr) is a terminal; otherwise periodic plain lines (ProgressLines)."""
    stream = stream if stream is not None else sys.stderr
    if disable or stream.isatty():
        from tqdm import tqdm  # about 70 ms to import: paid where a bar is drawn, not by every command's start

        return tqdm(
            total=total, desc=desc or None, unit=unit, initial=initial, disable=disable, file=stream, dynamic_ncols=True
        )
    return ProgressLines(total, desc, unit, initial, stream)
