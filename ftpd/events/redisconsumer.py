"""``ftpd-eventd --redis``: read a Redis stream in a consumer group, at least once.

A reader thread takes entries (``XREADGROUP``) into the daemon's bounded backlog; each is
acknowledged (``XACK``) only when its handler and --exec command succeeded. Entries a
consumer read but never acknowledged (it crashed, or their handling failed) are claimed
(``XAUTOCLAIM``) once idle for ``--claim-idle`` seconds, periodically, by whichever consumer
of the group runs, and handled again. The client is the stdlib RESP one in ftpd.events.resp:
five commands do not justify a dependency, and the sink speaks the same codec."""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from typing import Any

from ftpd.events.receiver import Delivery, Reader
from ftpd.events.redisurl import RedisURL
from ftpd.events.resp import ProtocolError, ReplyParser, RespError, command

log = logging.getLogger("ftpd.eventd")

READ_COUNT = 100  # entries per XREADGROUP / XAUTOCLAIM page
CLAIM_PAGES = 10  # XAUTOCLAIM pages per claim round
BLOCK_MS = 1000  # longest XREADGROUP wait: also how soon a stop request is seen
RETRY_FIRST, RETRY_MAX = 0.1, 5.0
CONNECT_TIMEOUT = 5.0


class RedisClient:
    """A blocking RESP connection: one command at a time, replies as values, error replies
    raised as RespError. Not shared between threads."""

    def __init__(self, url: RedisURL, timeout: float = CONNECT_TIMEOUT) -> None:
        self.sock = socket.create_connection((url.host, url.port), timeout)
        self.sock.settimeout(BLOCK_MS / 1000 + 10)
        self.parser = ReplyParser()

    def call(self, *args: bytes | str | int) -> Any:
        self.sock.sendall(command(*args))
        while True:
            found, reply = self.parser.pop_reply()
            if found:
                if isinstance(reply, RespError):
                    raise reply
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by Redis")
            self.parser.feed(data)

    def close(self) -> None:
        self.sock.close()


def default_consumer() -> str:
    """host-pid: unique, so a restarted daemon never takes over a dead one's name."""
    return f"{socket.gethostname()}-{os.getpid()}"


def open_group(url: RedisURL, group: str) -> RedisClient:
    """Connect and make sure the stream and the group exist; a new group starts at the
    beginning of the stream, so nothing sent before the first receiver is lost."""
    client = RedisClient(url)
    try:
        client.call("XGROUP", "CREATE", url.stream, group, "0", "MKSTREAM")
    except RespError as exc:
        if exc.code != "BUSYGROUP":  # "Consumer Group name already exists"
            client.close()
            raise
    except BaseException:
        client.close()
        raise
    return client


class RedisReader(Reader):
    """Moves stream entries into the backlog as Deliveries; reconnects with back-off when
    Redis goes away. Entries taken and not yet settled are *in flight*: a claim round never
    hands them out a second time in this process."""

    def __init__(self, url: RedisURL, group: str, consumer: str, claim_idle: float,
                 backlog: queue.Queue[Any], client: RedisClient | None = None) -> None:
        super().__init__(backlog)
        self.url, self.group, self.consumer = url, group, consumer
        self.claim_idle_ms = max(1, int(claim_idle * 1000))
        self.claim_every = max(0.1, claim_idle / 2)
        self.block_ms = max(1, min(BLOCK_MS, int(self.claim_every * 1000)))
        self._client = client
        self._in_flight: set[bytes] = set()
        self._flight_lock = threading.Lock()
        self._woken = threading.Event()
        self._acker = Acker(url, group, self.settled)
        self._acker.start()
        self.failed_events = 0

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> None:
        delay, trouble = RETRY_FIRST, ""
        next_claim = 0.0
        while not self.stopping:
            try:
                if self._client is None:
                    self._client = open_group(self.url, self.group)
                    self._take(self._own_pending())
                if trouble:
                    log.warning("redis %s: reading again", self.url)
                    delay, trouble = RETRY_FIRST, ""
                if time.monotonic() >= next_claim:
                    self._take(self._claim())
                    self._forget_gone()
                    next_claim = time.monotonic() + self.claim_every
                self._take(self._read_new())
            except (OSError, ProtocolError, RespError) as exc:
                if not trouble:
                    log.warning("redis %s: %s; retrying", self.url,
                                getattr(exc, "strerror", None) or exc)
                trouble = str(exc)
                self._drop_client()
                self._woken.wait(delay)
                delay = min(delay * 2, RETRY_MAX)
        self._drop_client()

    def _room(self) -> int:
        free = self.backlog.maxsize - self.backlog.qsize() if self.backlog.maxsize else READ_COUNT
        return max(1, min(READ_COUNT, free))

    def _read_new(self) -> list[Any]:
        assert self._client is not None
        reply = self._client.call("XREADGROUP", "GROUP", self.group, self.consumer,
                                  "COUNT", self._room(), "BLOCK", self.block_ms,
                                  "STREAMS", self.url.stream, ">")
        return reply[0][1] if reply else []

    def _own_pending(self) -> list[Any]:
        """Entries this consumer name took before (a restart with the same --consumer)."""
        assert self._client is not None
        entries: list[Any] = []
        after = "0"
        for _ in range(CLAIM_PAGES):
            reply = self._client.call("XREADGROUP", "GROUP", self.group, self.consumer,
                                      "COUNT", READ_COUNT, "STREAMS", self.url.stream, after)
            page = reply[0][1] if reply else []
            if not page:
                break
            entries += page
            after = page[-1][0]
        return entries

    def _claim(self) -> list[Any]:
        """XAUTOCLAIM every entry idle for claim-idle, whoever took it (a dead consumer, or
        this one when handling failed)."""
        assert self._client is not None
        entries: list[Any] = []
        cursor: bytes | str = "0-0"
        for _ in range(CLAIM_PAGES):
            reply = self._client.call("XAUTOCLAIM", self.url.stream, self.group, self.consumer,
                                      self.claim_idle_ms, cursor, "COUNT", READ_COUNT)
            cursor, page = reply[0], reply[1]
            entries += page
            if cursor in (b"0-0", "0-0"):
                break
        if entries:
            log.info("redis %s: claimed %d idle entries", self.url, len(entries))
        return entries

    def _forget_gone(self) -> None:
        """Remove consumers that hold nothing and have not read for twice claim-idle (a
        live one reads every second): every run under a new host-pid name would otherwise
        stay listed in the group for good. One removed too early merely comes back."""
        assert self._client is not None
        limit = max(2 * self.claim_idle_ms, 2 * BLOCK_MS)
        for flat in self._client.call("XINFO", "CONSUMERS", self.url.stream, self.group):
            info = dict(zip(flat[::2], flat[1::2], strict=False))
            name = info.get(b"name")
            if (isinstance(name, bytes) and name != self.consumer.encode()
                    and info.get(b"pending") == 0 and (info.get(b"idle") or 0) > limit):
                self._client.call("XGROUP", "DELCONSUMER", self.url.stream, self.group, name)
                log.info("redis %s: removed consumer %s (gone, nothing pending)", self.url,
                         name.decode("utf-8", "replace"))

    def _take(self, entries: list[Any]) -> None:
        for entry_id, fields in entries:
            with self._flight_lock:
                if entry_id in self._in_flight:
                    continue  # ours, still waiting in the backlog or running
                self._in_flight.add(entry_id)
            values = _fields(fields)
            frame = values.get(b"frame", b"")
            server = values.get(b"server", b"").decode("utf-8", "replace")
            self.backlog.put(Delivery(frame, server, self._settler(entry_id)))

    def _settler(self, entry_id: bytes) -> Any:
        def settle(ok: bool) -> None:
            if ok:
                self._acker.ack(entry_id)  # leaves the in-flight set once acknowledged
                return
            self.failed_events += 1
            log.warning("redis %s: entry %s not acknowledged; handled again after "
                        "--claim-idle", self.url, entry_id.decode("ascii", "replace"))
            self.settled(entry_id)

        return settle

    def settled(self, entry_id: bytes) -> None:
        """*entry_id* is no longer ours to hand out: acknowledged, or failed (to be claimed
        again)."""
        with self._flight_lock:
            self._in_flight.discard(entry_id)

    # -- stopping ----------------------------------------------------------------------------
    def wake(self) -> None:
        self._woken.set()

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        self._acker.close()

    @property
    def acked(self) -> int:
        return self._acker.acked


class Acker(threading.Thread):
    """XACKs from a connection of its own, many ids per command: the dispatcher's threads
    hand ids over and go on. An id whose XACK fails stays pending in the group, and is
    claimed and handled again (at least once)."""

    BATCH = 500

    def __init__(self, url: RedisURL, group: str, done: Any) -> None:
        super().__init__(name="acker", daemon=True)
        self.url, self.group, self.done = url, group, done
        self.acked = 0
        self._ids: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._client: RedisClient | None = None

    def ack(self, entry_id: bytes) -> None:
        self._ids.put(entry_id)

    def run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._ids.get()]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self._ids.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [i for i in batch if i is not _STOP]
            if batch:
                self._send(batch)
        if self._client is not None:
            self._client.close()

    def _send(self, batch: list[bytes]) -> None:
        for attempt in (1, 2):  # a dropped connection is reopened once
            try:
                if self._client is None:
                    self._client = RedisClient(self.url)
                self._client.call("XACK", self.url.stream, self.group, *batch)
                self.acked += len(batch)
                break
            except (OSError, ProtocolError, RespError) as exc:
                if self._client is not None:
                    self._client.close()
                    self._client = None
                if attempt == 2:
                    log.warning("redis %s: XACK of %d entries failed (%s): they will be "
                                "handled again", self.url, len(batch), exc)
        for entry_id in batch:
            self.done(entry_id)

    def close(self, timeout: float = CONNECT_TIMEOUT * 2) -> None:
        """Send the acks still queued (bounded), then stop."""
        self._ids.put(_STOP)
        self.join(timeout)


_STOP = object()


def _fields(flat: Any) -> dict[bytes, bytes]:
    """An entry's field list (``[f1, v1, f2, v2, ...]``; nil for a deleted entry) as a dict."""
    if not isinstance(flat, list):
        return {}
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)
            if isinstance(flat[i], bytes) and isinstance(flat[i + 1], bytes)}
