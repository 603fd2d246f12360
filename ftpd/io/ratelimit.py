"""Rate limits (``max-rate``, ``--max-rate``): a token bucket per session and direction,
and the data socket that spends it.

A limited transfer's socket is a ``ThrottledSocket``: each ``send``/``recv_into`` moves at
most what the bucket holds, and when it is empty the socket is held (``EventLoop.hold``:
not watched until the bucket has refilled, a loop timer, never a sleep) and the call
raises ``BlockingIOError``, which every pump already takes as "not now". Limited
transfers take the pool-fed path, ``io/chunks.py`` (no sendfile/splice: the kernel would
move bytes past the bucket); an unlimited one never meets any of this: the data channel
builds a throttle only for a transfer that carries a ``max_rate``."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from ftpd.core.actions import Direction
from ftpd.io.loop import EventLoop

BURST = 0.25  # seconds of rate the bucket holds: a quarter second's worth may go at once
QUANTUM = 64 << 10  # an empty bucket waits until this much (or a full bucket) has come


class TokenBucket:
    """*rate* bytes per second on the clock *now*; holds at most ``rate * BURST`` (at
    least one byte), and starts full."""

    __slots__ = ("rate", "capacity", "tokens", "_now", "_last")

    def __init__(self, rate: int, now: Callable[[], float]) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * BURST)
        self.tokens = self.capacity
        self._now = now
        self._last = now()

    def _refill(self) -> None:
        now = self._now()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, want: int) -> int:
        """Up to *want* whole bytes, taken from the bucket (0: it is empty)."""
        self._refill()
        grant = min(want, int(self.tokens))
        if grant > 0:
            self.tokens -= grant
            return grant
        return 0

    def give_back(self, unused: int) -> None:
        """Bytes taken but not moved (a short or refused send)."""
        if unused > 0:
            self.tokens = min(self.capacity, self.tokens + unused)

    def wait(self) -> float:
        """Seconds until the bucket holds a quantum (or is full)."""
        self._refill()
        target = min(self.capacity, float(QUANTUM))
        return max(0.0, (target - self.tokens) / self.rate)


def buckets_for(store: dict[Direction, TokenBucket], direction: Direction, rate: int,
                now: Callable[[], float]) -> TokenBucket:
    """The session's bucket for *direction* (kept in *store* across its transfers, so
    many small transfers cannot each start with a fresh burst); a new one if the rate
    changed (REIN and another user)."""
    bucket = store.get(direction)
    if bucket is None or bucket.rate != rate:
        bucket = store[direction] = TokenBucket(rate, now)
    return bucket


class ThrottledSocket:
    """A data socket (plain or TLS) whose sends and receives the bucket bounds; anything
    else is the socket's own. A TLS send refused with "want write" is retried with the
    same length, as OpenSSL requires, whatever the bucket holds by then."""

    def __init__(self, sock: Any, bucket: TokenBucket, loop: EventLoop) -> None:
        self._sock, self.bucket, self._loop = sock, bucket, loop
        self._retry = 0  # bytes of a send that must be offered again as they were

    def _grant(self, want: int) -> int:
        grant = self.bucket.take(want)
        if grant == 0:
            self._loop.hold(self, self.bucket.wait())
            raise BlockingIOError(errno.EAGAIN, "rate limit: waiting for the bucket")
        return grant

    def send(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self._retry:
            n, self._retry = min(self._retry, len(view)), 0
        else:
            n = self._grant(len(view))
        try:
            sent = self._sock.send(view[:n])
        except OSError:
            self._retry = n  # taken, not moved: offered again next time (TLS needs that)
            raise
        self.bucket.give_back(n - sent)
        return sent

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        n = self._grant(nbytes or len(buffer))
        try:
            got = self._sock.recv_into(buffer, n)
        except OSError:
            self.bucket.give_back(n)
            raise
        self.bucket.give_back(n - got)
        return got

    def recv(self, size: int) -> bytes:
        n = self._grant(size)
        try:
            data = self._sock.recv(n)
        except OSError:
            self.bucket.give_back(n)
            raise
        self.bucket.give_back(n - len(data))
        return data

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._loop.forget(self)
        sock = self._sock
        if hasattr(sock, "cipher"):  # TLS: close_notify first, as for any data socket
            try:
                sock.unwrap()
            except (OSError, ValueError):  # ssl.SSLError is an OSError; done already
                pass
        sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def throttle(sock: Any, store: dict[Direction, TokenBucket], direction: Direction, rate: int,
             loop: EventLoop) -> ThrottledSocket:
    """*sock*, limited to *rate* bytes/s in *direction* by the session's bucket."""
    return ThrottledSocket(sock, buckets_for(store, direction, rate, loop.time), loop)
