"""Data channels: a passive listener or an active connect, then a pump that moves
bytes between a socket and a file: zero-copy on the loop for a local file as it is
(``os.sendfile`` out, splice(2) in); otherwise through the data pool, chunk by chunk
(``ftpd.io.chunks``: a file without a descriptor, a listing, TYPE A, TLS).
It knows a ``Transfer`` only as a source, a sink and an optional transform."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import Any

from ftpd.core.actions import Active, Direction, Outcome, Transfer, TransferEnd
from ftpd.core.errors import FTPError
from ftpd.core.ids import normalize_host
from ftpd.io.backoff import ACCEPT_PAUSE, OUT_OF_FDS, RateLimitedLog
from ftpd.io.chunks import INLINE, ChunkPool, RecvPump, SendPump, has_descriptor
from ftpd.io.loop import EventLoop, TimerHandle
from ftpd.io.stream import Stream
from ftpd.log import get_logger

log = get_logger("ftpd.data")

SENDFILE_CHUNK = 32 << 10
SEND_ROUNDS = 256
MAX_ROUNDS = 64  # syscalls per readiness event before yielding to other connections
PASSIVE_BACKLOG = 8  # room for the client's connection beside a few stray ones
ACCEPTS_PER_EVENT = 16

Done = Callable[[TransferEnd], None]  # how the transfer ended

_OUT_OF_FDS_LOG = RateLimitedLog()  # shared by every data channel: once a minute in all

_RESET = (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT)


def _guarded(callback: Callable[[DataChannel], None]) -> Callable[[DataChannel], None]:
    """A pump callback that cannot spin the loop: an exception from the source, the
    sink, the transform or a listing generator (a filesystem plugin's bug, say) ends the
    transfer once (FAILED), logged with its traceback, and nothing
    stays armed to call it again."""

    def guarded(self: DataChannel) -> None:
        try:
            callback(self)
        except FTPError as exc:  # the source refused to go on (a listing's match budget)
            log.info("data transfer refused: %s", exc)
            self._close_pipe()
            self._finish(Outcome.REFUSED, exc)
        except Exception:
            log.exception("data transfer failed in %s; ending it",
                          getattr(callback, "__name__", "a pump"))
            self._close_pipe()
            self._finish(Outcome.FAILED)

    guarded.__name__ = getattr(callback, "__name__", "guarded")
    guarded.__doc__ = callback.__doc__
    return guarded


class DataChannel:
    """The data side of one control connection: at most one listener, one connection
    and one transfer at a time."""

    def __init__(self, loop: EventLoop, local_host: str, family: int, data_timeout: float,
                 recv_buffer: bytearray, wrap: Callable[[DataChannel], Any] | None = None,
                 pool: ChunkPool | None = None) -> None:
        self.loop = loop
        self.local_host = local_host  # the control connection's local address
        self.family = family
        self.data_timeout = data_timeout
        self.buffer = recv_buffer
        self.wrap = wrap  # TLS: wraps a connected data socket (set by the control layer)
        self.listener: socket.socket | None = None
        self.allowed_peer: str | None = None
        self.proxy_networks: Any = None  # --proxy-protocol (set by the control layer)
        self._header_readers: set[Any] = set()
        self.stream: Stream | None = None  # the data connection
        self.transfer: Transfer | None = None
        self.done: Done | None = None
        self.pool = pool or ChunkPool(loop)  # the server passes its one data pool
        self.pump: SendPump | RecvPump | None = None  # the pool-fed pump, when not zero-copy
        self._timer: TimerHandle | None = None
        self._offset = 0
        self._progress = 0.0
        self.buckets: dict[Direction, Any] = {}  # the session's rate-limit buckets (ratelimit.py)

    # -- set-up --------------------------------------------------------------------
    def listen(self, ports: range | None, allowed_peer: str | None) -> int:
        """Open a passive listener; returns its port. OSError if none can be had."""
        self.close()
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            # a port whose last data connection is in TIME_WAIT may listen again at once
            # (two listeners on one port are still refused, so the range stays exclusive)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            candidates = _port_order(ports) if ports else [0]
            for port in candidates:
                try:
                    sock.bind((self.local_host, port))
                    break
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE or port == candidates[-1]:
                        raise
            sock.listen(PASSIVE_BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.listener, self.allowed_peer = sock, allowed_peer
        self.loop.add_reader(sock, self._accept)
        return sock.getsockname()[1]

    @_guarded
    def _accept(self) -> None:
        # Drain the queue: connections from a foreign address (data theft) are dropped
        # here, all of them, so they cannot fill the backlog ahead of the real client.
        for _ in range(ACCEPTS_PER_EVENT):
            if self.listener is None:
                return
            try:
                conn, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_FDS:  # the client stays queued: retry later, not now
                    self._pause_accepting(exc)
                return
            host = normalize_host(addr[0])
            if self.proxy_networks and host in self.proxy_networks:
                self._read_header(conn, addr)
                continue
            if self.allowed_peer is not None and host != self.allowed_peer:
                log.warning("data connection from %s refused (expected %s): data theft?",
                            addr[0], self.allowed_peer)
                conn.close()
                continue
            self._adopt(conn)
            return

    def _read_header(self, conn: socket.socket, addr: tuple[Any, ...]) -> None:
        """A passive connection through the balancer: its PROXY header names the client,
        and the carried address is what the theft check compares."""
        from ftpd.io.proxyread import ProxyHeaderReader

        if len(self._header_readers) >= PASSIVE_BACKLOG:
            log.warning("data connection from balancer %s dropped: too many headers pending",
                        addr[0])
            conn.close()
            return
        listener = self.listener

        def done(header: Any) -> None:
            self._header_readers.discard(reader)
            if header is None or self.listener is not listener or header.client is None:
                conn.close()  # bad header (logged), too late, or a health check (LOCAL)
                return
            client = normalize_host(header.client[0])
            if self.allowed_peer is not None and client != self.allowed_peer:
                log.warning("data connection from %s via balancer %s refused (expected %s): "
                            "data theft?", client, addr[0], self.allowed_peer)
                conn.close()
                return
            self._adopt(conn)

        reader = ProxyHeaderReader(self.loop, conn, addr[0], done)
        self._header_readers.add(reader)

    accept_pause = ACCEPT_PAUSE

    def _pause_accepting(self, exc: OSError) -> None:
        listener = self.listener
        assert listener is not None
        _OUT_OF_FDS_LOG.error(self.loop.time(), "data connection accept failed: %s; "
                              "retrying in %gs", exc.strerror or exc, self.accept_pause)
        self.loop.remove_reader(listener)
        self.loop.call_later(self.accept_pause, self._resume_accepting, listener)

    def _resume_accepting(self, listener: socket.socket) -> None:
        if self.listener is listener:  # still ours: not closed nor replaced meanwhile
            self.loop.add_reader(listener, self._accept)

    def _adopt(self, conn: socket.socket) -> None:
        self._close_listener()
        conn.setblocking(False)
        self.stream = Stream(self.loop, conn)
        if self.transfer is not None:
            self._connected()

    def start(self, transfer: Transfer, done: Done) -> None:
        """Run *transfer* on the prepared connection; *done* reports how it ended."""
        self.transfer, self.done = transfer, done
        self._progress = self.loop.time()
        self._arm_timer()
        if type(transfer.mode) is Active:
            self._connect(transfer.mode)
        elif self.stream is not None:
            self._connected()
        elif self.listener is None:
            self._finish(Outcome.CONNECT_FAILED)

    def _connect(self, addr: tuple[str, int]) -> None:
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if self.local_host and (family == self.family or family == socket.AF_INET6):
                try:
                    sock.bind((self.local_host if family == self.family else "::", 0))
                except OSError:
                    pass
            err = sock.connect_ex(addr)
        except OSError as exc:
            err = exc.errno or errno.ECONNREFUSED
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            self._finish(Outcome.CONNECT_FAILED)
            return
        self.stream = Stream(self.loop, sock)
        self.loop.add_writer(sock, self._connect_done)

    @_guarded
    def _connect_done(self) -> None:
        if self.stream is None:  # closed meanwhile (ABOR, the session went away)
            return
        err = self.stream.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.loop.remove_writer(self.stream.sock)
        if err:
            self._finish(Outcome.CONNECT_FAILED)
            return
        self._connected()

    @_guarded
    def _connected(self) -> None:
        t = self.transfer
        assert t is not None
        if self.wrap is not None and t.tls:
            # TLS: the wrapper shakes hands, then calls start_pumping (or end)
            self.wrap(self)
            return
        self.start_pumping()

    def start_pumping(self) -> None:
        """The connection is ready (and protected, if asked): move the bytes."""
        t = self.transfer
        assert t is not None and self.stream is not None
        self.touch()
        rate = t.max_rate
        if rate:  # limited: bounded sends and receives, never zero-copy (ratelimit.py)
            from ftpd.io.ratelimit import throttle

            self.stream.sock = throttle(self.stream.sock, self.buckets, t.direction, rate,
                                        self.loop)
        plain = t.transform is None and not self.stream.tls and not rate
        sock = self.stream.sock
        if t.direction is Direction.SEND:
            if plain and self._sendfile_offset(t.source):
                self.loop.add_writer(sock, self._on_writable)
                return
            self.pump = SendPump(self, t, INLINE if has_descriptor(t.source) else self.pool)
        else:
            if plain and _spliceable(t.sink):
                self.loop.add_reader(sock, self._on_readable)
                return
            self.pump = RecvPump(self, t, INLINE if has_descriptor(t.sink) else self.pool)
        self.pump.start()

    def _sendfile_offset(self, src: Any) -> bool:
        """Whether *src* has a real descriptor sendfile can read (its offset noted)."""
        fileno = getattr(src, "fileno", None)
        if fileno is None:
            return False
        try:
            self._offset = os.lseek(fileno(), 0, os.SEEK_CUR)
        except (OSError, ValueError):  # io.UnsupportedOperation is both
            return False
        return True

    # -- zero-copy pumping -----------------------------------------------------------
    @_guarded
    def _on_writable(self) -> None:
        t = self.transfer
        if t is None:
            return
        try:
            for _ in range(SEND_ROUNDS):
                sent = os.sendfile(self.stream.fileno(), t.source.fileno(), self._offset,
                                   SENDFILE_CHUNK)
                if sent == 0:
                    self._finish(Outcome.OK)
                    return
                self._offset += sent
                t.bytes_done += sent
                self.touch()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._failed(exc, is_reset(exc))

    @_guarded
    def _on_readable(self) -> None:
        t = self.transfer
        if t is not None:
            self._splice_in(t, t.sink)

    _pipe: tuple[int, int] | None = None

    def _splice_in(self, t: Transfer, sink: Any) -> None:
        """socket -> pipe -> file with splice(2): the payload never enters Python."""
        import fcntl

        if self._pipe is None:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            setpipe_sz = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
            if setpipe_sz is not None:
                try:
                    fcntl.fcntl(w, setpipe_sz, 1 << 20)
                except OSError:
                    pass
            self._pipe = (r, w)
        r, w = self._pipe
        sfd, ffd = self.stream.fileno(), sink.fileno()
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        try:
            for _ in range(MAX_ROUNDS):
                n = os.splice(sfd, w, 1 << 20, flags=flags)
                if n == 0:
                    self._close_pipe()
                    self._finish(Outcome.OK)
                    return
                left = n
                while left:
                    left -= os.splice(r, ffd, left, flags=os.SPLICE_F_MOVE)
                t.bytes_done += n
                self.touch()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close_pipe()
            self._failed(exc, exc.errno in _RESET)

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    # -- timeouts and endings --------------------------------------------------------
    def touch(self) -> None:
        """The transfer moved (bytes on the socket, or the filesystem answered)."""
        self._progress = self.loop.time()

    def end(self, outcome: Outcome, error: OSError | FTPError | None = None) -> None:
        """A pump's ending: report *outcome* (and the exception that caused it) once."""
        if self.transfer is not None:
            self._finish(outcome, error)

    def _arm_timer(self) -> None:
        if self.data_timeout > 0:
            self._timer = self.loop.call_later(self.data_timeout, self._check_timeout)

    def _check_timeout(self) -> None:
        if self.transfer is None:
            return
        if self.pump is not None and self.pump.waiting_on_fs:
            self.touch()  # a slow filesystem is not the client's stall
        idle = self.loop.time() - self._progress
        if idle >= self.data_timeout:
            self._finish(Outcome.TIMEOUT)
        else:
            self._timer = self.loop.call_later(self.data_timeout - idle, self._check_timeout)

    def _failed(self, exc: OSError, reset: bool) -> None:
        """An OSError ended the pump: the peer's doing (RESET), else OS_ERROR with it."""
        self._finish(Outcome.RESET if reset else Outcome.OS_ERROR, None if reset else exc)

    def _finish(self, outcome: Outcome, error: OSError | FTPError | None = None) -> None:
        done = self.done
        self.transfer, self.done = None, None
        self.close()
        if done is not None:
            done(TransferEnd(outcome, error))

    def _close_listener(self) -> None:
        for reader in self._header_readers:
            reader.cancel()
            reader.sock.close()
        self._header_readers.clear()
        if self.listener is not None:
            self.loop.forget(self.listener)
            self.listener.close()
            self.listener = None

    def close(self) -> None:
        """Drop listener, connection and transfer without reporting (CloseData)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._close_listener()
        self._close_pipe()
        if self.pump is not None:
            self.pump.stop()
            self.pump = None
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        self.transfer = None
        self.done = None

    @property
    def busy(self) -> bool:
        return self.transfer is not None


def _spliceable(sink: Any) -> bool:
    """splice(2) needs a platform that has it (Linux; macOS has neither ``os.splice`` nor
    ``os.pipe2``) and a real fd opened without O_APPEND (APPE files have it)."""
    if not (hasattr(os, "splice") and hasattr(os, "pipe2")):
        return False
    import fcntl

    try:
        return not fcntl.fcntl(sink.fileno(), fcntl.F_GETFL) & os.O_APPEND
    except (AttributeError, OSError, ValueError):
        return False


def is_reset(exc: OSError) -> bool:
    """Whether a socket error means the peer went away (the transfer was cut short)."""
    return exc.errno in _RESET or _is_tls_error(exc)


def _port_order(ports: range) -> list[int]:
    """Passive ports in a random order, so concurrent sessions rarely collide."""
    import random

    order = list(ports)
    random.shuffle(order)
    return order


def _is_tls_error(exc: OSError) -> bool:
    import sys

    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLError)
