"""Transfers whose bytes pass through Python (a file object without a usable
descriptor, a listing, TYPE A, TLS): the file side runs in a small worker pool, one
chunk at a time and in order, so a slow ``read()``/``write()``/``next()`` blocks only
its own transfer, never the loop. Back-pressure: at most ``DEPTH`` chunks per transfer
are read ahead or waiting to be written; past that the socket is not watched.

A filesystem that is slow is not the client's stall: while a transfer waits on its
pool job, the data timeout does not run (``waiting_on_fs``). Results that arrive after
the transfer ended are dropped, and a queued write never starts once it has ended."""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ftpd.core.actions import Outcome, Transfer
from ftpd.core.errors import FTPError
from ftpd.io.stream import would_block as _would_block
from ftpd.log import get_logger

if TYPE_CHECKING:
    from ftpd.io.data import DataChannel
    from ftpd.io.loop import EventLoop

log = get_logger("ftpd.data")

CHUNK = 256 << 10  # bytes per read() or write() of the file
LISTING_CHUNK = 64 << 10  # listing lines gathered per hand-back
DEPTH = 3  # chunks in flight per transfer: read ahead, or received and not yet written
WORKERS = 4  # threads of the data pool, shared by every transfer of the server
MAX_ROUNDS = 64  # socket calls per readiness event before yielding to other connections

Landed = Callable[[Any, "BaseException | None"], None]


class ChunkPool:
    """The data pool: runs one file call off the loop and hands its result (or the
    exception it raised) back on the loop. Separate from the auth and metadata pools, so
    a stuck upload cannot starve logins. Threads start on first use."""

    def __init__(self, loop: EventLoop, workers: int = WORKERS) -> None:
        self.loop = loop
        self.workers = workers
        self._executor: Any = None

    def run(self, job: Callable[[], Any], landed: Landed) -> None:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="ftpd-data")
        loop = self.loop

        def back(result: Any, exc: BaseException | None) -> None:
            loop.outstanding -= 1
            landed(result, exc)

        def work() -> None:
            try:
                result = job()
            except BaseException as exc:  # noqa: BLE001 - every failure must land once
                loop.call_soon_threadsafe(back, None, exc)
            else:
                loop.call_soon_threadsafe(back, result, None)

        loop.outstanding += 1  # the loop is not idle while a chunk is out (virtual time)
        try:
            self._executor.submit(work)
        except RuntimeError as exc:  # the pool is shut down: the server is stopping
            back(None, exc)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class Inline:
    """Runs the file call at once, on the loop: for a local file (a real descriptor:
    as quick as sendfile's own reads) when bytes must change or be encrypted, so TYPE A
    and TLS on local files pay no thread hop. Same pumps, same back-pressure."""

    @staticmethod
    def run(job: Callable[[], Any], landed: Landed) -> None:
        try:
            result = job()
        except Exception as exc:
            landed(None, exc)
            return
        landed(result, None)


INLINE = Inline()


def has_descriptor(file: Any) -> bool:
    """Whether *file* is backed by a real descriptor (a local file)."""
    fileno = getattr(file, "fileno", None)
    if fileno is None:
        return False
    try:
        return isinstance(fileno(), int)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False


def failure(exc: BaseException,
            where: str) -> tuple[Outcome, OSError | FTPError | None]:
    """How a transfer ends when the file side raised *exc*: REFUSED with an FTPError,
    OS_ERROR with an OSError (the session answers 550/450/452, 451 otherwise), anything
    else FAILED (426), logged once with its traceback."""
    if isinstance(exc, FTPError):  # the source refused to go on (a listing's match budget)
        log.info("data transfer refused: %s", exc)
        return Outcome.REFUSED, exc
    if isinstance(exc, OSError):
        log.info("data transfer failed in %s: %s", where, exc)
        return Outcome.OS_ERROR, exc
    log.error("data transfer failed in %s; ending it", where,
              exc_info=(type(exc), exc, exc.__traceback__))
    return Outcome.FAILED, None


class _Pump:
    def __init__(self, channel: DataChannel, transfer: Transfer, pool: ChunkPool | Inline) -> None:
        self.channel, self.t, self.pool = channel, transfer, pool
        assert channel.stream is not None
        self.loop, self.stream = channel.loop, channel.stream
        self.sock = channel.stream.sock  # for the loop's watch lists
        self.stopped = False
        self.busy = False  # a job of this transfer is in the pool
        self.at_end = False
        self.peak_in_flight = 0  # most chunks ever in flight at once (a test reads it)

    def stop(self) -> None:
        """The transfer ended: drop late results, start no further job."""
        self.stopped = True

    def _fail(self, exc: BaseException, where: str) -> None:
        if not self.stopped:
            self.stopped = True
            self.channel.end(*failure(exc, where))

    def _socket_error(self, exc: OSError) -> None:
        from ftpd.io.data import is_reset

        self.stopped = True
        if is_reset(exc):
            self.channel.end(Outcome.RESET)
        else:
            self.channel.end(Outcome.OS_ERROR, exc)


class SendPump(_Pump):
    """File -> socket: the pool reads up to DEPTH chunks ahead; the writable callback
    sends from that queue and is not armed while the queue is empty."""

    def start(self) -> None:
        self.queue: deque[memoryview] = deque()
        self.failed: BaseException | None = None
        self._read_more()

    @property
    def waiting_on_fs(self) -> bool:
        return self.busy and not self.queue

    def _read_more(self) -> None:
        if self.stopped or self.busy or self.at_end or len(self.queue) >= DEPTH:
            return
        self.busy = True
        self.pool.run(self._read_job, self._read_landed)

    def _read_job(self) -> tuple[bytes, bool]:
        """In the pool: the next chunk, transformed, and whether it is the last. A
        listing's slices are gathered up to LISTING_CHUNK (one hand-back for a small
        directory); one that matched nothing is asked again, here, not on the loop."""
        t, src = self.t, self.t.source
        if self.failed is not None:  # raised after the bytes before it were handed back
            raise self.failed
        reader = getattr(src, "read", None)
        parts: list[bytes] = []
        size = 0
        while not self.stopped:
            try:
                if reader is not None:
                    chunk = reader(CHUNK)
                    at_end = not chunk
                else:
                    chunk = next(src, None)
                    at_end = chunk is None
            except Exception as exc:
                if not parts:
                    raise
                self.failed = exc
                return b"".join(parts), False
            if at_end:
                parts.append(t.flush_transform() if t.transform is not None else b"")
                return b"".join(parts), True
            if chunk and t.transform is not None:
                chunk = t.transform(chunk)
            if chunk:
                if reader is not None:
                    return chunk, False
                parts.append(chunk)
                size += len(chunk)
                if size >= LISTING_CHUNK:
                    return b"".join(parts), False
        return b"", True

    def _read_landed(self, result: Any, exc: BaseException | None) -> None:
        self.busy = False
        if self.stopped:
            return
        if exc is not None:
            self._fail(exc, "read")
            return
        chunk, self.at_end = result
        self.channel.touch()  # the filesystem answered: that is progress, not a stall
        if chunk:
            self.queue.append(memoryview(chunk))
            self.peak_in_flight = max(self.peak_in_flight, len(self.queue))
        self.loop.add_writer(self.sock, self.on_writable)
        self._read_more()

    def on_writable(self) -> None:
        if self.stopped:
            return
        t, queue = self.t, self.queue
        try:
            for _ in range(MAX_ROUNDS):
                if not queue:
                    if self.at_end:
                        self.stopped = True
                        self.channel.end(Outcome.OK)
                    else:  # the read is in flight: wait for it, do not spin
                        self.loop.remove_writer(self.sock)
                        self._read_more()
                    return
                head = queue[0]
                sent = self.stream.send(head)
                t.bytes_done += sent
                self.channel.touch()
                if sent == len(head):
                    queue.popleft()
                    self._read_more()
                else:
                    queue[0] = head[sent:]
        except OSError as exc:
            if not _would_block(exc):
                self._socket_error(exc)
        except Exception as exc:
            self._fail(exc, "send")


class RecvPump(_Pump):
    """Socket -> file: each readiness event's bytes (transformed on the loop, in order)
    become one chunk that the pool writes, one write at a time; with DEPTH chunks in
    flight the socket is not read until a write completes."""

    def start(self) -> None:
        self.pending: deque[tuple[bytearray, int]] = deque()
        self.reading = False
        self._resume_reading()

    @property
    def in_flight(self) -> int:
        return len(self.pending) + self.busy

    @property
    def waiting_on_fs(self) -> bool:
        return self.busy and (not self.reading or self.at_end)

    def _resume_reading(self) -> None:
        if not (self.reading or self.stopped or self.at_end) and self.in_flight < DEPTH:
            self.reading = True
            self.loop.add_reader(self.sock, self.on_readable)
            if self.stream.pending():  # held by TLS, where select cannot see it
                self.loop.call_soon(self.on_readable)

    def _pause_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.sock)

    def on_readable(self) -> None:
        if self.stopped or not self.reading:
            return
        try:
            self._receive()
        except Exception as exc:
            self._fail(exc, "receive")

    def _receive(self) -> None:
        t = self.t
        inline = self.pool is INLINE  # a local file: written straight from the buffer
        view = memoryview(self.channel.buffer)
        if not inline:
            view = view[:CHUNK]
        filled, eof, more, error = 0, False, True, None
        try:
            for _ in range(MAX_ROUNDS):
                n = self.stream.recv_into(view[filled:])
                if n == 0:
                    eof, more = True, False
                    break
                filled += n
                if filled == len(view):
                    break
        except OSError as exc:
            more = False
            if not _would_block(exc):
                error = exc
        finally:
            data: Any = view[:filled] if inline and t.transform is None else bytes(view[:filled])
            if filled:
                if t.transform is not None:
                    data = t.transform(data)
                if inline and not self.pending:
                    self.busy = True
                    self.pool.run(lambda: self._write_job(data, filled), self._written)
                else:
                    self._queue(data, filled)
            data = None
            view.release()
        if error is not None:
            self._socket_error(error)
            return
        if eof:
            self._pause_reading()
            self.at_end = True
            if t.transform is not None:
                self._queue(t.flush_transform(), 0)
        elif self.in_flight >= DEPTH:
            self._pause_reading()
        elif more or (filled and self.stream.pending()):
            self.loop.call_soon(self.on_readable)  # more may wait that select cannot see
        self._write_more()

    def _queue(self, data: bytes, received: int) -> None:
        """Append to the last chunk not yet handed to the pool while it has room (small
        TLS records or a trickling client make few full chunks, not many small ones)."""
        pending = self.pending
        if pending and len(pending[-1][0]) + len(data) <= CHUNK:
            tail, counted = pending[-1]
            tail += data
            pending[-1] = (tail, counted + received)
        elif data or received:
            pending.append((bytearray(data), received))
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _write_more(self) -> None:
        if self.stopped or self.busy:
            return
        if not self.pending:
            if self.at_end:
                self.stopped = True
                self.channel.end(Outcome.OK)
            return
        data, received = self.pending.popleft()
        self.busy = True
        self.pool.run(lambda: self._write_job(data, received), self._written)

    def _write_job(self, data: bytearray, received: int) -> int:
        if self.stopped:  # ended meanwhile (ABOR, close): the file is not written
            return 0
        view = memoryview(data)
        sink = self.t.sink
        while view:
            written = sink.write(view)
            if written is None:  # a non-blocking raw sink; never expected for files
                raise OSError(errno.EAGAIN, "short write")
            view = view[written:]
        return received

    def _written(self, received: Any, exc: BaseException | None) -> None:
        self.busy = False
        if self.stopped:
            return
        if exc is not None:
            self._fail(exc, "write")
            return
        self.t.bytes_done += received
        self.channel.touch()
        self._resume_reading()
        self._write_more()
