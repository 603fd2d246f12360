"""When ``accept()`` fails for want of file descriptors (``EMFILE``/``ENFILE``) the
pending connection stays queued and the listener stays readable: retrying at once spins
the loop. Instead stop watching the listener for a while (asyncio waits 1 s too) and say
so in the log at most once a minute."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from ftpd.log import get_logger

log = get_logger("ftpd.server")

OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_PAUSE = 1.0  # seconds without accepting after such a failure
LOG_INTERVAL = 60.0  # seconds between two log lines about it


class RateLimitedLog:
    """Log a message at most once per *interval* seconds of loop time."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self._last: float | None = None
        self.suppressed = 0

    def error(self, now: float, msg: str, *args: Any) -> None:
        if self._last is not None and now - self._last < self.interval:
            self.suppressed += 1
            return
        self._last = now
        if self.suppressed:
            msg += " (%d more since the last report)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        log.error(msg, *args)


class AcceptPause:
    """Pauses a group of listeners: *stop* unwatches them, *resume* watches them again
    after ``pause`` seconds (both set per use, so tests may shorten the pause)."""

    def __init__(self, loop: Any, pause: float = ACCEPT_PAUSE,
                 report: RateLimitedLog | None = None) -> None:
        self.loop = loop
        self.pause = pause
        self.report = report or RateLimitedLog()
        self.paused = False

    def out_of_fds(self, exc: OSError, stop: Callable[[], None],
                   resume: Callable[[], None]) -> None:
        self.report.error(self.loop.time(), "accept failed: %s; not accepting new "
                          "connections for %gs", exc.strerror or exc, self.pause)
        if self.paused:
            return
        self.paused = True
        stop()
        self.loop.call_later(self.pause, self._resume, resume)

    def _resume(self, resume: Callable[[], None]) -> None:
        self.paused = False
        resume()
