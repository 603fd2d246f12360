"""NcFTPd event sinks (`--event-sink`): bus listeners that send each message fire-and-forget.
A send never blocks or raises into a session; what cannot be sent is dropped, counted and
logged at most once a minute. Everything that can fail for good fails when the sink is made."""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from ftpd.events.bus import EventBus, Listener
from ftpd.events.ncftpd import ENCODED_EVENTS, encode

log = logging.getLogger("ftpd.events")

DROP_LOG_INTERVAL = 60.0
BATCH_LIMIT = 64  # frames queued in one loop iteration before they are sent at once
MMSG_MIN = 4  # from this many frames on one sendmmsg (fewer: a sendto each, no ctypes)


class SinkError(OSError):
    """A sink cannot be opened or written to; its message is one line for the operator."""


class Sink(Listener):
    """What every sink shares: bus wiring and drop accounting."""

    description = "sink"
    events = ENCODED_EVENTS

    def __init__(self) -> None:
        self.sent = 0
        self.dropped = 0
        self._unlogged = 0  # drops since the last log line
        self._last_log = -DROP_LOG_INTERVAL
        self._last_error = ""

    def on_event(self, event_data: Any, name: str) -> None:
        frame = encode(name, event_data)
        if frame is not None:
            self.send(frame)

    def send(self, frame: bytes) -> bool:
        """Send one framed message; False (and counted) when it was dropped."""
        raise NotImplementedError

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        self._unlogged += 1
        self._last_error = reason
        now = time.monotonic()
        if now - self._last_log >= DROP_LOG_INTERVAL:
            self._log_drops()
            self._last_log = now

    def _log_drops(self) -> None:
        if self._unlogged:
            log.warning("event sink %s: dropped %d message(s) (%d in all): %s",
                        self.description, self._unlogged, self.dropped, self._last_error)
            self._unlogged = 0

    def start(self, loop: Any) -> None:
        """The server's loop, handed over when it starts serving: sinks that do their I/O
        on it (Redis) begin there; the others send directly and ignore it."""

    def close(self) -> None:
        """Stop listening and release the transport; drops not yet logged are logged now."""
        self.detach()
        self._log_drops()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description} sent={self.sent} dropped={self.dropped}>"


class BatchedSink(Sink):
    """A sink with a system call per message: what one loop iteration produces is queued
    and sent together at its end (``call_after_iteration``), in order, so that UDP needs
    one sendmmsg for the lot and the kernel's send path stays warm. Without a running loop
    (before ``start``, after the loop ended, on another thread) a message goes at once."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[bytes] = []
        self._loop: Any = None
        self._loop_thread = 0

    def start(self, loop: Any) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def on_event(self, event_data: Any, name: str) -> None:
        frame = encode(name, event_data)
        if frame is None:
            return
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() != self._loop_thread:
            self.flush()
            self.send(frame)
            return
        pending = self._pending
        pending.append(frame)
        if len(pending) == 1:
            loop.call_after_iteration(self.flush)
        elif len(pending) >= BATCH_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Send every queued message now."""
        frames = self._pending
        if frames:
            self._pending = []
            self.send_batch(frames)

    def send_batch(self, frames: list[bytes]) -> None:
        """Send *frames* in order; each one that cannot go is dropped and counted."""
        for frame in frames:
            self.send(frame)

    def close(self) -> None:
        """Stop listening, send what is queued, then close."""
        self.detach()
        self.flush()
        super().close()


class UdpSink(BatchedSink):
    """One datagram per message, the frame exactly, from a non-blocking socket; a batch
    goes with sendmmsg (``ftpd.events.mmsg``) where libc has it."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self._mmsg: Any = None  # the sendmmsg sender once needed; False: libc has none
        self.description = f"udp:{_join_host(host)}:{port}"
        try:
            infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        except (OSError, UnicodeError) as exc:
            raise SinkError(f"event sink {self.description}: cannot resolve {host!r}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
        family, kind, proto, _, self.address = infos[0]
        try:
            self._sock: socket.socket | None = socket.socket(family, kind, proto)
        except OSError as exc:
            raise SinkError(f"event sink {self.description}: {exc.strerror or exc}") from None
        self._sock.setblocking(False)

    def send(self, frame: bytes) -> bool:
        sock = self._sock
        if sock is None:
            self._drop("sink is closed")
            return False
        try:
            sock.sendto(frame, self.address)
        except OSError as exc:
            self._drop(exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc)))
            return False
        self.sent += 1
        return True

    def send_batch(self, frames: list[bytes]) -> None:
        sender = self._mmsg
        if sender is None and len(frames) >= MMSG_MIN and self._sock is not None:
            from ftpd.events.mmsg import open_sender  # ctypes: only once batches come

            sender = self._mmsg = open_sender(self._sock, self.address) or False
        if not sender or len(frames) < MMSG_MIN or self._sock is None:
            super().send_batch(frames)
            return
        done = 0
        while done < len(frames):
            try:
                sent = sender.send(frames[done:] if done else frames)
            except OSError as exc:  # the first of them: dropped, as sendto would
                self._drop(exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc)))
                sent = 1
            else:
                self.sent += sent
            done += sent

    def close(self) -> None:
        super().close()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class MqueueSink(BatchedSink):
    """The System V message queue *key*: mtype 1, the frame plus one NUL, IPC_NOWAIT.

    Opened now, before privileges are dropped. A queue this sink creates gets mode *perm*
    and, with *owner_uid*/*owner_gid*, is handed to that user (IPC_SET) so the server can
    still write to it after dropping privileges; a queue that exists already must be
    writable by that user, or by us."""

    def __init__(self, key: int, perm: int = 0o600, *, owner_uid: int | None = None,
                 owner_gid: int | None = None) -> None:
        super().__init__()
        import sysv_ipc  # only servers with a queue sink pay for the import

        self._ipc = sysv_ipc
        self.key, self.perm = key, perm
        self.description = f"mqueue:{key:#x}"
        where = f"event sink {self.description}"
        try:
            try:
                self._mq = sysv_ipc.MessageQueue(key, sysv_ipc.IPC_CREX, mode=perm)
                self.created = True
            except sysv_ipc.ExistentialError:  # it exists: open it, asking only to write
                self._mq = sysv_ipc.MessageQueue(key, 0, mode=0o200)
                self.created = False
            if self.created and owner_uid is not None:
                self._mq.uid = owner_uid
            if self.created and owner_gid is not None:
                self._mq.gid = owner_gid
        except sysv_ipc.PermissionsError:
            raise SinkError(f"{where}: permission denied") from None
        except (sysv_ipc.Error, OSError, ValueError) as exc:
            raise SinkError(f"{where}: {exc}") from None
        uid = os.geteuid() if owner_uid is None else owner_uid
        gid = os.getegid() if owner_gid is None else owner_gid
        if not _may_write(self._mq, uid, gid):
            raise SinkError(f"{where}: queue is not writable by uid {uid} "
                            f"(owner uid {self._mq.uid}, gid {self._mq.gid}, "
                            f"mode {self._mq.mode & 0o777:04o})")

    def send(self, frame: bytes) -> bool:
        ipc = self._ipc
        try:
            self._mq.send(frame + b"\0", False, 1)  # positional: no keyword parsing
        except ipc.BusyError:
            self._drop("queue is full (raise kernel.msgmnb for a bigger one)")
            return False
        except (ipc.Error, OSError, ValueError) as exc:
            self._drop(str(exc) or type(exc).__name__)
            return False
        self.sent += 1
        return True


def _may_write(mq: Any, uid: int, gid: int) -> bool:
    """The kernel's ipcperms() write check for *uid*/*gid*, so a queue the server could not
    write after dropping privileges is a start-up error instead of silent drops."""
    if uid == 0:
        return True
    mode = mq.mode
    if uid in (mq.uid, mq.cuid):
        return bool(mode & 0o200)
    groups = {gid}
    try:
        import pwd

        groups.update(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    except (KeyError, OSError):
        pass
    if mq.gid in groups or mq.cgid in groups:
        return bool(mode & 0o020)
    return bool(mode & 0o002)


def _join_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


_MODE = re.compile(r"(?:0o)?[0-7]{1,4}")


def parse_key(text: str) -> int:
    """A System V IPC key as NcFTPd writes it: ``0x78C0FFEE`` or decimal."""
    try:
        key = int(text, 16) if text[:2].lower() == "0x" else int(text, 10)
    except ValueError:
        raise ValueError(f"bad message queue key {text!r} (use 0x78C0FFEE or decimal)") from None
    if not 0 < key <= 0xFFFFFFFF:
        raise ValueError(f"message queue key {text!r} out of range (1 to 0xFFFFFFFF)")
    return key


SPEC_FORMS = "udp:HOST:PORT, mqueue:KEY[,perm=MODE] or redis://HOST:PORT/STREAM"


def parse_sink_spec(spec: str, *, owner_uid: int | None = None,
                    owner_gid: int | None = None, server_id: str = "") -> Sink:
    """``udp:HOST:PORT`` (HOST may be ``[v6]``), ``mqueue:KEY[,perm=MODE]`` or
    ``redis://HOST:PORT/STREAM[?maxlen=N&queue=N]`` to an opened sink; *server_id* goes with
    every message sent to Redis. Raises ValueError naming the bad part, SinkError when it
    cannot be opened."""
    scheme, sep, rest = spec.partition(":")
    if not sep:
        raise ValueError(f"event sink {spec!r}: expected {SPEC_FORMS}")
    if scheme == "redis":
        from ftpd.events.redis import RedisSink  # only servers with a Redis sink pay for it
        from ftpd.events.redisurl import parse_url

        try:
            url = parse_url(spec)
        except ValueError as exc:
            raise ValueError(f"event sink {exc}") from None
        return RedisSink(url, server_id)
    if scheme == "udp":
        host, sep, port_text = rest.rpartition(":")
        if not sep or not host:
            raise ValueError(f"event sink {spec!r}: expected udp:HOST:PORT")
        if host.startswith("["):
            if not host.endswith("]") or len(host) < 3:
                raise ValueError(f"event sink {spec!r}: bad IPv6 address {host!r}")
            host = host[1:-1]
        elif ":" in host:
            raise ValueError(f"event sink {spec!r}: write an IPv6 address as [{host}]")
        if not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise ValueError(f"event sink {spec!r}: bad port {port_text!r} (1-65535)")
        return UdpSink(host, int(port_text))
    if scheme == "mqueue":
        key_text, *options = rest.split(",")
        try:
            key = parse_key(key_text)
        except ValueError as exc:
            raise ValueError(f"event sink {spec!r}: {exc}") from None
        perm = 0o600
        for option in options:
            name, sep, value = option.partition("=")
            if name != "perm" or not sep:
                raise ValueError(f"event sink {spec!r}: unknown option {option!r} "
                                 "(only perm=MODE)")
            if not _MODE.fullmatch(value):
                raise ValueError(f"event sink {spec!r}: bad perm {value!r} (octal, e.g. 0620)")
            perm = int(value.removeprefix("0o"), 8)
            if perm > 0o777:
                raise ValueError(f"event sink {spec!r}: bad perm {value!r} (at most 0777)")
        return MqueueSink(key, perm, owner_uid=owner_uid, owner_gid=owner_gid)
    raise ValueError(f"event sink {spec!r}: unknown kind {scheme!r} (udp, mqueue or redis)")


def _resolve_user(run_as: Any) -> tuple[int | None, int | None]:
    if run_as is None:
        return None, None
    if isinstance(run_as, tuple):
        return run_as[0], run_as[1]
    if hasattr(run_as, "pw_uid"):
        return run_as.pw_uid, run_as.pw_gid
    import pwd

    try:
        entry = pwd.getpwuid(run_as) if isinstance(run_as, int) else pwd.getpwnam(run_as)
    except KeyError:
        raise SinkError(f"event sinks: no such user {run_as!r}") from None
    return entry.pw_uid, entry.pw_gid


def install_sinks(bus: EventBus, specs: Iterable[str], run_as: Any = None,
                  server_id: str | None = None) -> list[Sink]:
    """Open every ``--event-sink`` and attach it to *bus*. *run_as* (a user name, uid,
    ``pwd`` entry or ``(uid, gid)``) is who the server will run as: queues we create are
    handed to it. *server_id* (default: the host name) is sent with every Redis message.
    On any failure the sinks already opened are closed and the error raised."""
    uid, gid = _resolve_user(run_as)
    server_id = server_id or os.uname().nodename
    sinks: list[Sink] = []
    try:
        for spec in specs:
            sinks.append(parse_sink_spec(spec, owner_uid=uid, owner_gid=gid,
                                         server_id=server_id))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    for sink in sinks:
        sink.attach(bus)
    return sinks
