"""The loop's clock. Every timer in ``ftpd/io`` reads time from it, so a test can run
the server on a ``VirtualClock`` (trio's ``MockClock``, more or less): virtual time
stands still until the test moves it, or, with *autojump*, jumps straight to the next
timer whenever the loop has nothing else to do. A 300 s control timeout then takes
milliseconds of real time, and "not yet" is a fact, not a race."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """What the loop asks of its clock."""

    def time(self) -> float: ...  # for timers: monotonic seconds

    def wall(self) -> float: ...  # for event stamps: a Unix timestamp

    def select_timeout(self, delay: float) -> float | None: ...

    def idle(self, next_timer: float) -> None: ...

    def subscribe(self, wake: Callable[[], None]) -> None: ...

    def unsubscribe(self, wake: Callable[[], None]) -> None: ...


class RealClock:
    """``time.monotonic`` for timers, ``time.time`` for the core's event stamps."""

    @staticmethod
    def time() -> float:
        return time.monotonic()

    @staticmethod
    def wall() -> float:
        return time.time()

    @staticmethod
    def select_timeout(delay: float) -> float:
        """Real seconds the loop may block when its next timer is *delay* away."""
        return max(0.0, delay)

    def idle(self, next_timer: float) -> None:
        """The loop waited and nothing happened: real time moved by itself."""

    def subscribe(self, wake: Callable[[], None]) -> None:
        """Real time needs nobody woken."""

    def unsubscribe(self, wake: Callable[[], None]) -> None:
        pass


class VirtualClock:
    """Time that moves only when told: by :meth:`advance` (from any thread), or by
    itself to the next timer once the loop has sat idle for *autojump_threshold* real
    seconds (``inf``: never; ``0``: as soon as nothing is ready).

    Sockets are still polled for real, so a client in another thread is served as
    usual; only timers run on virtual time. :meth:`wall` is the same time as a Unix
    timestamp, for ``SessionConfig.clock`` (the login throttle and event times)."""

    def __init__(self, start: float = 0.0, *, autojump_threshold: float = math.inf,
                 epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch = epoch - start
        self._lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []
        self._threshold = autojump_threshold
        self.jumps = 0  # how often autojump moved time: a test can see that it did

    def time(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._epoch + self._now

    @property
    def autojump_threshold(self) -> float:
        return self._threshold

    @autojump_threshold.setter
    def autojump_threshold(self, seconds: float) -> None:
        """Switch autojump on (or off) from any thread; the loop notices at once."""
        self._threshold = seconds
        self._wake()

    def advance(self, seconds: float) -> None:
        """Move virtual time forward; timers now due run on the loop's next turn."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        with self._lock:
            self._now += seconds
        self._wake()

    def select_timeout(self, delay: float) -> float | None:
        if delay <= 0:
            return 0.0
        if math.isinf(self._threshold):
            return None  # time stands still: only I/O or advance() can wake the loop
        return self._threshold

    def idle(self, next_timer: float) -> None:
        if math.isinf(self._threshold):
            return
        with self._lock:
            if next_timer > self._now:
                self._now = next_timer
                self.jumps += 1

    def subscribe(self, wake: Callable[[], None]) -> None:
        """*wake* is called whenever time or autojump changes from outside the loop."""
        with self._lock:
            self._wakers.append(wake)

    def unsubscribe(self, wake: Callable[[], None]) -> None:
        with self._lock:
            if wake in self._wakers:
                self._wakers.remove(wake)

    def _wake(self) -> None:
        with self._lock:
            wakers = list(self._wakers)
        for wake in wakers:
            wake()
