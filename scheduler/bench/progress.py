"""A one-line progress bar on stderr.

On a terminal the line is redrawn in place a few times a second; when stderr is a file or a
pipe (CI logs) a plain line is written every few seconds instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 28


def render(label: str, done: int, total: int, extra: str = "", width: int = BAR_WIDTH) -> str:
    """`label [#####.....]  done/total  extra` with the bar filled by done/total."""
    fraction = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = round(fraction * width)
    bar = "#" * filled + "." * (width - filled)
    text = f"{label} [{bar}] {done:>{len(str(total))}}/{total}"
    return f"{text}  {extra}" if extra else text


class Progress:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interval: float = 0.25,
        plain_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else plain_interval
        self._clock = clock
        self._last = float("-inf")
        self._width = 0

    def update(self, line: str, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self, line: str) -> None:
        """The final state of this bar; the next output starts on a fresh line."""
        self.update(line, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self._width = 0
        self._last = float("-inf")

    def say(self, message: str) -> None:
        """A log line that does not tear the bar."""
        if self.tty and self._width:
            self.stream.write("\n")
            self._width = 0
        self.stream.write(message + "\n")
        self.stream.flush()
