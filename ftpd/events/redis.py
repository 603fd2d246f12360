"""The Redis stream sink (``--event-sink redis://HOST:PORT/STREAM``, SPEC §9): one
``XADD STREAM MAXLEN ~ N * frame <frame> server <id> type <t>`` per message, written
pipelined to a non-blocking socket driven by the server's own loop, never by a session.

Messages wait in a bounded queue until Redis has answered them: while Redis is slow or away
the queue fills, what it cannot hold is dropped (counted, logged at most once a minute), and
the connection is retried with exponential back-off. A message whose reply was lost with its
connection is sent again (at least once; receivers de-duplicate when they must). The loop
is handed over by the server (``start``); until then messages are only queued."""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from typing import Any

from ftpd.events.redisurl import RedisURL
from ftpd.events.resp import ProtocolError, ReplyParser, RespError, bulk
from ftpd.events.sinks import Sink, SinkError, log

BATCH_BYTES = 256 << 10  # joined into one send
WRITES_PER_EVENT = 8  # sends per readiness event, so other connections get their turn
RETRY_FIRST, RETRY_MAX = 0.1, 5.0  # seconds between connection attempts, doubling
CONNECT_TIMEOUT = 5.0
DRAIN_TIMEOUT = 10.0  # closed while the loop runs (reload): deliver what is queued, on it
CLOSE_TIMEOUT = 2.0  # closed after the loop ended: a bounded blocking flush


class RedisSink(Sink):
    """A bus listener appending each NcFTPd frame to a Redis stream."""

    def __init__(self, url: RedisURL, server_id: str) -> None:
        super().__init__()
        self.url = url
        self.description = str(url)
        self._prefix = (b"*12\r\n" + bulk("XADD") + bulk(url.stream) + bulk("MAXLEN")
                        + bulk("~") + bulk(url.maxlen) + bulk("*") + bulk("frame"))
        self._suffix = bulk("server") + bulk(server_id) + bulk("type")
        try:  # at start-up (and reload), where it may wait; never again on the loop
            self._addresses = socket.getaddrinfo(url.host, url.port, 0, socket.SOCK_STREAM,
                                                 socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise SinkError(f"event sink {self.description}: cannot resolve {url.host!r}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
        self._unsent: deque[bytes] = deque()  # commands not written yet
        self._inflight: deque[bytes] = deque()  # written, waiting for their replies
        self._out = memoryview(b"")  # the part of the current batch not yet written
        self._parser = ReplyParser()
        self._loop: Any = None
        self._sock: socket.socket | None = None
        self._connected = self._writing = self._closing = self._closed = False
        self._attempt = 0
        self._delay = RETRY_FIRST
        self._timer: Any = None  # the next connection attempt, or the connect timeout
        self._drain_timer: Any = None  # closing on a running loop: when to give up
        self._trouble = ""  # why Redis is unusable now ("" while it answers)

    # -- the bus side ----------------------------------------------------------------------
    def send(self, frame: bytes) -> bool:
        if self._closed or self._closing:
            self._drop("sink is closed")
            return False
        if len(self._unsent) + len(self._inflight) >= self.url.queue:
            self._drop(f"queue full ({self.url.queue} messages)"
                       + (f"; {self._trouble}" if self._trouble else "; Redis is slow"))
            return False
        kind = frame[8:frame.find(b"\n", 8)]
        self._unsent.append(self._prefix + bulk(frame) + self._suffix + bulk(kind))
        if self._connected and not self._writing:
            self._loop.add_writer(self._sock, self._on_writable)
            self._writing = True
        return True

    @property
    def queued(self) -> int:
        """Messages not yet acknowledged by Redis."""
        return len(self._unsent) + len(self._inflight)

    # -- the loop side ---------------------------------------------------------------------
    def start(self, loop: Any) -> None:
        """Do all further I/O from *loop* (add_reader/add_writer/call_later/forget)."""
        if self._loop is None and not self._closed:
            self._loop = loop
            self._connect()

    def _connect(self) -> None:
        self._timer = None
        family, kind, proto, _, address = self._addresses[self._attempt % len(self._addresses)]
        self._attempt += 1
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            self._fail(exc.strerror or str(exc))
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            sock.close()
            self._fail(exc.strerror or str(exc))
            return
        self._sock = sock
        self._loop.add_writer(sock, self._on_writable)
        self._writing = True
        self._timer = self._loop.call_later(CONNECT_TIMEOUT, self._fail, "connect timed out")

    def _on_writable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        if not self._connected:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self._fail(os.strerror(error))
                return
            self._connected = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._loop.add_reader(sock, self._on_readable)
        for _ in range(WRITES_PER_EVENT):
            if not self._out:
                if not self._unsent:
                    self._loop.remove_writer(sock)
                    self._writing = False
                    return
                self._out = memoryview(self._next_batch())
            try:
                sent = sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fail(exc.strerror or str(exc))
                return
            self._out = self._out[sent:]

    def _next_batch(self) -> bytes:
        batch, size = [], 0
        while self._unsent and size < BATCH_BYTES:
            command = self._unsent.popleft()
            batch.append(command)
            size += len(command)
        self._inflight.extend(batch)
        return b"".join(batch)

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc.strerror or str(exc))
            return
        if not data:
            self._fail("connection closed by Redis")
            return
        self._parser.feed(data)
        problem = self._take_replies()
        if problem:
            self._fail(problem)
        elif self._closing and not self.queued:
            self._finish_close()

    def _take_replies(self) -> str:
        """Match complete replies to the commands in flight; a problem's text, or ""."""
        while True:
            try:
                found, reply = self._parser.pop_reply()
            except ProtocolError as exc:
                return f"bad reply from Redis: {exc}"
            if not found:
                return ""
            if not self._inflight:
                return "reply from Redis to nothing we sent"
            self._inflight.popleft()
            if isinstance(reply, RespError):
                self._drop(f"Redis refused XADD: {reply}")
                continue
            self.sent += 1
            if self._trouble:
                log.warning("event sink %s: Redis answers again (%d message(s) queued)",
                            self.description, self.queued)
                self._trouble = ""
            self._delay = RETRY_FIRST

    def _disconnect(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._loop is not None:
                self._loop.forget(sock)
            sock.close()
        self._connected = self._writing = False
        self._parser = ReplyParser()
        self._out = memoryview(b"")
        self._unsent.extendleft(reversed(self._inflight))  # their replies are lost: resend
        self._inflight.clear()

    def _fail(self, reason: str) -> None:
        self._disconnect()
        if not self._trouble:
            log.warning("event sink %s: %s; queueing up to %d messages, retrying",
                        self.description, reason, self.url.queue)
        self._trouble = f"Redis: {reason}"
        self._timer = self._loop.call_later(self._delay, self._connect)
        self._delay = min(self._delay * 2, RETRY_MAX)

    # -- closing ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop listening. On a running loop (a reload) what is queued is still delivered
        from the loop, for at most DRAIN_TIMEOUT; after the loop (exit) a bounded blocking
        flush sends it. What is left is counted as dropped and logged."""
        self.detach()
        if self._closed or self._closing:
            return
        loop = self._loop
        if loop is not None and loop.is_running() and self.queued:
            self._closing = True  # keeps connecting and sending; nothing new comes in
            self._drain_timer = loop.call_later(DRAIN_TIMEOUT, self._finish_close)
            return
        self._flush(CLOSE_TIMEOUT)
        self._finish_close()

    def _flush(self, timeout: float) -> None:
        """Send what is queued with blocking calls, waiting for the replies, all within
        *timeout* seconds: only once the loop has ended (process exit)."""
        if not self.queued:
            return
        deadline = time.monotonic() + timeout
        if not self._connected:
            self._disconnect()
        sock = self._sock
        try:
            if sock is None:
                family, kind, proto, _, address = self._addresses[0]
                sock = self._sock = socket.socket(family, kind, proto)
                sock.settimeout(timeout)
                sock.connect(address)
                self._connected = True
            elif self._loop is not None:
                self._loop.forget(sock)
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if self._out:
                sock.sendall(self._out)
                self._out = memoryview(b"")
            while self._unsent:
                sock.sendall(self._next_batch())
            while self._inflight and time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    break
                self._parser.feed(data)
                if self._take_replies():
                    break
        except OSError:
            pass

    def _finish_close(self) -> None:
        if self._closed:
            return
        self._closed, self._closing = True, False
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        self._disconnect()
        lost = self.queued
        if lost:
            self.dropped += lost
            self._unlogged += lost
            self._last_error = ("not delivered before the sink closed"
                                + (f" ({self._trouble})" if self._trouble else ""))
            self._unsent.clear()
        self._log_drops()
