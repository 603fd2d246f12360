"""Connection seats: how many control connections are open, in all and per client
address, for ``--max-connections`` and ``--max-connections-per-ip``.

``Seats`` is one process's count (a ``Counter``). ``SharedSeats`` is the count of
every ``--workers`` process at once: an anonymous shared mapping made before the
workers fork, one region per worker (its sessions, and its addresses in a small
open-addressing table), under one ``fcntl.lockf`` lock. A POSIX record lock rather
than a semaphore: the kernel drops it when its holder dies, so a killed worker can
never leave the others locked out; and the supervisor clears a dead worker's region,
so its sessions stop counting. Only the standard library; imported only with
``--workers`` above 1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ftpd.io.clock import RealClock

MIN_SLOTS = 1024  # addresses per worker's table, at least (a power of two)


class Seats:
    """The connections of one process. ``take`` counts a connection whatever it
    answers (a refused one holds its seat until its 421 is written and it closes)."""

    shared = False

    def __init__(self) -> None:
        self.per_ip: Counter[str] = Counter()
        self.total = 0

    def take(self, host: str, max_total: int, max_per_ip: int) -> str | None:
        """Count a new connection from *host*; the cap it is over, or None."""
        reason = None
        if self.total >= max_total:
            reason = "max-connections"
        elif 0 < max_per_ip <= self.per_ip[host]:
            reason = "max-connections-per-ip"
        self.total += 1
        self.per_ip[host] += 1
        return reason

    def my_turn(self) -> bool:
        """One process: every connection is ours to accept."""
        return True

    def release(self, host: str) -> None:
        self.total -= 1
        self.per_ip[host] -= 1
        if self.per_ip[host] <= 0:
            del self.per_ip[host]


def address_key(host: str) -> bytes:
    """16 bytes standing for a client address: the address itself (IPv4 v4-mapped),
    or a digest of anything that is not one."""
    import socket

    try:
        if ":" in host:
            return socket.inet_pton(socket.AF_INET6, host)
        return b"\0" * 10 + b"\xff\xff" + socket.inet_pton(socket.AF_INET, host)
    except OSError:
        import hashlib

        return hashlib.blake2b(host.encode("utf-8", "surrogateescape"),
                               digest_size=16).digest()


class SharedSeats:
    """Seats counted across the processes that share one mapping.

    Layout: a header (the monotonic time the last seat of all was released, for the
    supervisor's ``--idle-timeout``), then per worker its session count and a table of
    ``slots`` entries (16-byte address key, 4-byte count; count 0 is a free entry;
    linear probing, backward-shift deletion so no tombstones pile up). A worker writes
    only its own region (``bind``); every region is read for the caps."""

    shared = True
    HEADER = 16
    ENTRY = 20

    def __init__(self, workers: int, max_connections: int,
                 now: Callable[[], float] = RealClock.time) -> None:
        """*now* stamps the moment the last seat is released: monotonic seconds,
        comparable between processes (the supervisor's loop reads the same clock)."""
        import mmap
        import os
        import struct
        import tempfile

        slots = MIN_SLOTS
        while slots < 2 * max_connections:
            slots *= 2
        self.workers, self.slots = workers, slots
        self.region = 8 + slots * self.ENTRY
        size = self.HEADER + workers * self.region
        if hasattr(os, "memfd_create"):
            self._fd = os.memfd_create("ftpd-seats")  # close-on-exec, inherited by fork
        else:
            handle = tempfile.TemporaryFile()
            self._fd = os.dup(handle.fileno())
            handle.close()
        os.ftruncate(self._fd, size)
        self.map = mmap.mmap(self._fd, size)  # MAP_SHARED: the workers see one memory
        self._u32 = struct.Struct("<I")
        self._f64 = struct.Struct("<d")
        self._entry = struct.Struct("<16sI")
        self.index = -1  # this process's region (``bind``); -1 in the supervisor
        self.per_ip: Counter[str] = Counter()  # this worker's own, for release()
        self.now = now
        self.set_idle_since(now())

    # -- locking ----------------------------------------------------------------------
    def _lock(self) -> None:
        import fcntl

        fcntl.lockf(self._fd, fcntl.LOCK_EX)

    def _unlock(self) -> None:
        import fcntl

        fcntl.lockf(self._fd, fcntl.LOCK_UN)

    # -- regions --------------------------------------------------------------------
    def bind(self, index: int) -> None:
        """This process is worker *index* (after the fork)."""
        self.index = index
        self.per_ip = Counter()

    def _base(self, worker: int) -> int:
        return self.HEADER + worker * self.region

    def sessions_of(self, worker: int) -> int:
        return self._u32.unpack_from(self.map, self._base(worker))[0]

    def _set_sessions(self, worker: int, value: int) -> None:
        self._u32.pack_into(self.map, self._base(worker), value)

    def _total(self) -> int:
        return sum(self.sessions_of(w) for w in range(self.workers))

    @property
    def total(self) -> int:
        """Connections open in all workers."""
        return self._total()

    def idle_since(self) -> float:
        return self._f64.unpack_from(self.map, 0)[0]

    def set_idle_since(self, when: float) -> None:
        self._f64.pack_into(self.map, 0, when)

    def snapshot(self) -> tuple[int, float]:
        """(connections open in all workers, when the last one closed)."""
        self._lock()
        try:
            return self._total(), self.idle_since()
        finally:
            self._unlock()

    # -- the address table of one region ----------------------------------------------
    def _entry_at(self, worker: int, slot: int) -> tuple[bytes, int]:
        return self._entry.unpack_from(self.map, self._base(worker) + 8 + slot * self.ENTRY)

    def _put(self, worker: int, slot: int, key: bytes, count: int) -> None:
        self._entry.pack_into(self.map, self._base(worker) + 8 + slot * self.ENTRY,
                              key, count)

    def _home(self, key: bytes) -> int:
        return hash(key) & (self.slots - 1)  # same in every worker: forked, one seed

    def _find(self, worker: int, key: bytes) -> tuple[int, int]:
        """(slot, count) of *key*, or (the free slot where it would go, 0)."""
        slot = self._home(key)
        for _ in range(self.slots):
            found, count = self._entry_at(worker, slot)
            if count == 0 or found == key:
                return slot, count
            slot = (slot + 1) & (self.slots - 1)
        return -1, 0  # full: cannot happen while a worker holds fewer than ``slots``

    def _remove(self, worker: int, slot: int) -> None:
        """Free *slot*, shifting later entries of its probe run back into the hole."""
        mask = self.slots - 1
        hole, j = slot, slot
        for _ in range(self.slots):
            j = (j + 1) & mask
            key, count = self._entry_at(worker, j)
            if count == 0:
                break
            home = self._home(key)
            if (j - home) & mask >= (j - hole) & mask:  # its home is at or before the hole
                self._put(worker, hole, key, count)
                hole = j
        self._put(worker, hole, b"\0" * 16, 0)

    def count_of(self, host: str) -> int:
        """Connections from *host* in all workers."""
        key = address_key(host)
        return sum(self._find(w, key)[1] for w in range(self.workers))

    # -- what the server asks ----------------------------------------------------------
    def take(self, host: str, max_total: int, max_per_ip: int) -> str | None:
        """Count a connection from *host* in this worker; the cap it is over in all the
        workers, or None (checked and counted under the lock: no two workers can both
        take the last seat)."""
        key = address_key(host)
        self._lock()
        try:
            reason = None
            if self._total() >= max_total:
                reason = "max-connections"
            elif max_per_ip > 0 and sum(self._find(w, key)[1]
                                        for w in range(self.workers)) >= max_per_ip:
                reason = "max-connections-per-ip"
            slot, count = self._find(self.index, key)
            if slot < 0:
                reason = reason or "max-connections"
            else:
                self._put(self.index, slot, key, count + 1)
            self._set_sessions(self.index, self.sessions_of(self.index) + 1)
        finally:
            self._unlock()
        self.per_ip[host] += 1
        return reason

    def my_turn(self) -> bool:
        """Whether this worker should take the next connection: it has no more
        sessions than any other worker (read without the lock: a stale count only
        shifts one connection). All workers are woken for each connection, so while
        one passes, a less busy one takes it; the server passes only a bounded
        number of times in a row (a worker that is restarting or stuck must not
        keep connections waiting)."""
        own = self.sessions_of(self.index)
        return all(own <= self.sessions_of(w) for w in range(self.workers) if w != self.index)

    def release(self, host: str) -> None:
        key = address_key(host)
        self._lock()
        try:
            slot, count = self._find(self.index, key)
            if count > 1:
                self._put(self.index, slot, key, count - 1)
            elif count == 1:
                self._remove(self.index, slot)
            self._set_sessions(self.index, max(0, self.sessions_of(self.index) - 1))
            if self._total() == 0:
                self.set_idle_since(self.now())
        finally:
            self._unlock()
        self.per_ip[host] -= 1
        if self.per_ip[host] <= 0:
            del self.per_ip[host]

    def clear(self, worker: int) -> None:
        """A worker exited: its connections are gone (the supervisor calls this before
        the slot's next worker starts)."""
        self._lock()
        try:
            base = self._base(worker)
            self.map[base:base + self.region] = bytes(self.region)
            if self._total() == 0:
                self.set_idle_since(self.now())
        finally:
            self._unlock()
