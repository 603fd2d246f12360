"""One selector loop: readiness callbacks, a timer heap, thread-safe wake-ups and
signals delivered through ``signal.set_wakeup_fd``. It knows nothing of FTP."""

from __future__ import annotations

import heapq
import itertools
import os
import signal
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from ftpd.io.clock import Clock, RealClock
from ftpd.io.poller import EVENT_READ, EVENT_WRITE, make_poller
from ftpd.log import get_logger

log = get_logger("ftpd.loop")

Callback = Callable[..., Any]


def _mask(reader: Callback | None, writer: Callback | None) -> int:
    """The selector events to watch for these callbacks."""
    return (EVENT_READ if reader else 0) | (EVENT_WRITE if writer else 0)


class TimerHandle:
    __slots__ = ("when", "callback", "args", "cancelled", "_loop")

    def __init__(self, when: float, callback: Callback, args: tuple[Any, ...],
                 loop: EventLoop | None = None) -> None:
        self.when, self.callback, self.args = when, callback, args
        self.cancelled = False
        self._loop = loop

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.callback, self.args = _cancelled, ()  # what it held goes now
            if self._loop is not None:
                self._loop._timer_cancelled()


def _cancelled() -> None:
    """What a cancelled timer would call (nothing: it is skipped)."""


# A heap with more cancelled timers than this, and more than half of it, is rebuilt: every
# session's idle timer (--timeout, 300 s) is cancelled when it ends, and at thousands of
# logins a second they would otherwise pile up until they fall due.
COMPACT_AFTER = 512


class EventLoop:
    """A minimal reactor: ``add_reader``/``add_writer``, ``call_later``, ``call_soon``,
    ``call_soon_threadsafe``, ``add_signal_handler``, ``run``/``stop``. Timers run on
    *clock* (``ftpd.io.clock``): real time, or a test's virtual time."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else RealClock()
        self.selector = make_poller()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._cancelled = 0  # cancelled timers still in the heap
        self._seq = itertools.count()
        self._ready: deque[tuple[Callback, tuple[Any, ...]]] = deque()
        self._after: list[Callback] = []  # call_after_iteration
        # calls handed to worker threads whose answers the loop awaits (Server.run_in_pool):
        # while there are some the loop is not idle, and a virtual clock must not jump
        self.outstanding = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._signals: dict[int, Callback] = {}
        self._running = False
        # fd -> [reader, writer], also the selector key's data; the mask follows from it
        self._watch: dict[int, list[Callback | None]] = {}
        self._held: dict[int, TimerHandle] = {}  # fds whose readiness waits (hold)
        self.add_reader(self._wake_r, self._on_wake)
        self.clock.subscribe(self.wake)

    # -- readiness ----------------------------------------------------------------
    @staticmethod
    def _fd(fileobj: Any) -> int:
        return fileobj if isinstance(fileobj, int) else fileobj.fileno()

    def _update(self, fileobj: Any, reader: Callback | None, writer: Callback | None) -> None:
        mask = _mask(reader, writer)
        fd = self._fd(fileobj)
        if fd in self._held:  # only note what to watch once the hold ends
            if mask:
                self._watch[fd] = [reader, writer]
            else:
                self._watch.pop(fd, None)
            return
        cbs = self._watch.get(fd)
        if cbs is None:
            if mask:
                cbs = [reader, writer]
                self.selector.register(fileobj, mask, cbs)
                self._watch[fd] = cbs
        elif mask:
            old_mask = _mask(*cbs)
            cbs[0], cbs[1] = reader, writer
            if old_mask != mask:
                self.selector.modify(fileobj, mask, cbs)
        else:
            del self._watch[fd]
            self.selector.unregister(fileobj)

    def _callbacks(self, fileobj: Any) -> list[Callback | None]:
        cbs = self._watch.get(self._fd(fileobj))
        return list(cbs) if cbs else [None, None]

    def add_reader(self, fileobj: Any, callback: Callback) -> None:
        self._update(fileobj, callback, self._callbacks(fileobj)[1])

    def remove_reader(self, fileobj: Any) -> None:
        self._update(fileobj, None, self._callbacks(fileobj)[1])

    def add_writer(self, fileobj: Any, callback: Callback) -> None:
        self._update(fileobj, self._callbacks(fileobj)[0], callback)

    def remove_writer(self, fileobj: Any) -> None:
        cbs = self._watch.get(self._fd(fileobj))
        if cbs is not None and cbs[1] is not None:
            self._update(fileobj, cbs[0], None)

    def hold(self, fileobj: Any, delay: float) -> None:
        """Report no readiness of *fileobj* for *delay* seconds (a rate limit's wait),
        then watch it again for what it is watched for by then and run its reader once
        (TLS may hold bytes that select cannot see). Meanwhile ``add_reader`` and the
        like only note what to watch; ``forget`` ends the hold."""
        fd = self._fd(fileobj)
        earlier = self._held.pop(fd, None)
        if earlier is not None:
            earlier.cancel()
        elif fd in self._watch:
            self.selector.unregister(fileobj)
        self._held[fd] = self.call_later(delay, self._release, fileobj, fd)

    def _release(self, fileobj: Any, fd: int) -> None:
        if self._held.pop(fd, None) is None:
            return
        cbs = self._watch.get(fd)
        if cbs is not None:
            self.selector.register(fileobj, _mask(*cbs), cbs)
            if cbs[0] is not None:
                self.call_soon(cbs[0])

    def forget(self, fileobj: Any) -> None:
        """Stop watching *fileobj* entirely (call before closing it)."""
        try:
            fd = self._fd(fileobj)
        except (OSError, ValueError):
            return
        held = self._held.pop(fd, None)
        if held is not None:
            held.cancel()
            self._watch.pop(fd, None)
        elif self._watch.pop(fd, None) is not None:
            try:
                self.selector.unregister(fileobj)
            except (KeyError, ValueError):
                pass

    # -- time -----------------------------------------------------------------------
    def time(self) -> float:
        return self.clock.time()

    def call_later(self, delay: float, callback: Callback, *args: Any) -> TimerHandle:
        handle = TimerHandle(self.time() + max(0.0, delay), callback, args, self)
        heapq.heappush(self._timers, (handle.when, next(self._seq), handle))
        return handle

    def _timer_cancelled(self) -> None:
        self._cancelled += 1
        if self._cancelled > COMPACT_AFTER and 2 * self._cancelled > len(self._timers):
            self._timers = [entry for entry in self._timers if not entry[2].cancelled]
            heapq.heapify(self._timers)
            self._cancelled = 0

    def call_soon(self, callback: Callback, *args: Any) -> None:
        self._ready.append((callback, args))

    def call_after_iteration(self, callback: Callback) -> None:
        """Run *callback()* at the end of this iteration, after its readiness, timer and
        ready callbacks, before the loop waits again: work produced all over one iteration
        is then done at once (the event sinks send their datagrams together). One added by
        such a callback runs at the end of the next iteration, which does not wait."""
        self._after.append(callback)

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        self._ready.append((callback, args))
        self.wake()

    def wake(self) -> None:
        """Thread-safe: make a blocked ``select`` return, so the loop looks again."""
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the wake-up pipe is full: the loop is awake anyway

    # -- signals --------------------------------------------------------------------
    def add_signal_handler(self, signum: int, callback: Callback) -> None:
        """Run *callback(signum)* on the loop when the signal arrives (main thread only)."""
        self._signals[signum] = callback
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signum, _ignore_in_handler)

    def _on_wake(self) -> None:
        try:
            data = self._wake_r.recv(4096)
        except BlockingIOError:
            return
        for signum in data:
            if signum and signum in self._signals:
                self.call_soon(self._signals[signum], signum)

    # -- running --------------------------------------------------------------------
    def run(self) -> None:
        self._running = True
        while self._running:
            self._run_once()

    def stop(self) -> None:
        self._running = False

    def is_running(self) -> bool:
        """Whether run() is going on (a listener closing now must not wait)."""
        return self._running

    def _run_once(self) -> None:
        timeout: float | None = None
        if self._ready or self._after:
            timeout = 0
        elif self._timers:
            timeout = self.clock.select_timeout(self._timers[0][0] - self.time())
        events = self.selector.select(timeout)
        if not events and not self._ready and self._timers and not self.outstanding:
            self.clock.idle(self._timers[0][0])  # a virtual clock may jump to the timer
        for fd, mask, cbs in events:
            reader, writer = cbs
            if mask & EVENT_READ and reader is not None:
                self._safely(reader)
            if mask & EVENT_WRITE and writer is not None:
                # the reader may have dropped or replaced the writer
                current = cbs[1] if self._watch.get(fd) is cbs else None
                if current is not None and fd not in self._held:
                    self._safely(current)
        now = self.time()
        while self._timers and self._timers[0][0] <= now:
            handle = heapq.heappop(self._timers)[2]
            handle._loop = None
            if handle.cancelled:
                self._cancelled -= 1
            else:
                self._safely(handle.callback, *handle.args)
        for _ in range(len(self._ready)):
            callback, args = self._ready.popleft()
            self._safely(callback, *args)
        if self._after:
            after, self._after = self._after, []
            for callback in after:
                self._safely(callback)

    @staticmethod
    def _safely(callback: Callback, *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("unhandled error in %r", callback)

    def close(self) -> None:
        self.clock.unsubscribe(self.wake)
        if self._signals:
            for signum in self._signals:
                signal.signal(signum, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _ignore_in_handler(signum: int, frame: Any) -> None:
    """The real work happens on the loop, woken through the wake-up fd."""


def set_nonblocking_cloexec(sock: socket.socket) -> None:
    sock.setblocking(False)
    os.set_inheritable(sock.fileno(), False)
