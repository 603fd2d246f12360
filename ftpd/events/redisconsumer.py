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
        self._acker: RedisClient | None = None
        self._ack_lock = threading.Lock()
        self._in_flight: set[bytes] = set()
        self._flight_lock = threading.Lock()
        self._woken = threading.Event()
        self.acked = self.failed_events = 0

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
                self._ack(entry_id)
            else:
                self.failed_events += 1
                log.warning("redis %s: entry %s not acknowledged; handled again after "
                            "--claim-idle", self.url, entry_id.decode("ascii", "replace"))
            with self._flight_lock:
                self._in_flight.discard(entry_id)

        return settle

    # -- acknowledging (from the dispatcher's threads) ------------------------------------
    def _ack(self, entry_id: bytes) -> None:
        with self._ack_lock:
            for attempt in (1, 2):  # a dropped connection is reopened once
                try:
                    if self._acker is None:
                        self._acker = RedisClient(self.url)
                    self._acker.call("XACK", self.url.stream, self.group, entry_id)
                    self.acked += 1
                    return
                except (OSError, ProtocolError, RespError) as exc:
                    if self._acker is not None:
                        self._acker.close()
                        self._acker = None
                    if attempt == 2:
                        log.warning("redis %s: XACK %s failed (%s): it will be handled again",
                                    self.url, entry_id.decode("ascii", "replace"), exc)

    # -- stopping ----------------------------------------------------------------------------
    def wake(self) -> None:
        self._woken.set()

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        with self._ack_lock:
            if self._acker is not None:
                self._acker.close()
                self._acker = None


def _fields(flat: Any) -> dict[bytes, bytes]:
    """An entry's field list (``[f1, v1, f2, v2, ...]``; nil for a deleted entry) as a dict."""
    if not isinstance(flat, list):
        return {}
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)
            if isinstance(flat[i], bytes) and isinstance(flat[i + 1], bytes)}
