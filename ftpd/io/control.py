"""A control connection: bytes from the socket go to the session; the replies and
actions it returns are carried out in order. Buffered writes, idle timeout, and
TLS on the control channel when asked."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ftpd.core import actions as A
from ftpd.core.ids import normalize_host
from ftpd.core.replies import Reply
from ftpd.core.session import Session
from ftpd.io import become  # --pam: system accounts (ftpd/io/become.py)
from ftpd.io.data import DataChannel
from ftpd.io.nowait import NOT_NOW, answer_now
from ftpd.io.stream import Stream, tls_would_block
from ftpd.log import get_logger

if TYPE_CHECKING:
    from ftpd.io.server import Server

log = get_logger("ftpd.control")

MAX_OUTPUT = 4 << 20  # a client that stops reading replies is cut off past this


class ControlConnection:
    # how to carry out each output of the session (filled below the class)
    _ORDERS: dict[type[Reply | A.Action], Callable[[ControlConnection, Any], None]]
    __slots__ = ("server", "loop", "stream", "peer", "local", "session", "_data", "closed",
                 "_last_activity", "_idle_timer", "tls", "tls_context", "tls_handshaking")

    def __init__(self, server: Server, sock: socket.socket, session_id: str,
                 implicit_tls: bool = False, client: tuple[str, int] | None = None) -> None:
        self.server = server
        self.loop = server.loop
        self.stream = Stream(self.loop, sock, on_error=self._send_failed)
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        peer = client or sock.getpeername()  # client: carried by a PROXY header
        # one copy of an address string however many sessions share it (a client's
        # several connections, clients behind one NAT; the server's own addresses)
        self.peer = (sys.intern(normalize_host(peer[0])), peer[1])
        self.local = _shared_local(sock.getsockname())
        self.session = Session(server.session_config(implicit_tls), self.peer, self.local,
                               session_id)
        self._data: DataChannel | None = None  # made on first use: most sessions never do
        self.closed = False
        self._last_activity = self.loop.time()
        self._idle_timer = None
        self.tls: Any = None  # the SSLSocket, set by ftpd.io.tls when the channel is protected
        self.tls_context: Any = None  # this session's own SSLContext
        self.tls_handshaking = False

    @property
    def sock(self) -> Any:
        """The control socket (an SSLSocket once protected)."""
        return self.stream.sock

    @property
    def data(self) -> DataChannel:
        """The data side, created when the session first needs one."""
        if self._data is None:
            server, sock = self.server, self.sock
            wrap = self._protect_data if server.tls is not None else None
            self._data = DataChannel(self.loop, sock.getsockname()[0], sock.family,
                                     server.options.data_timeout, server.recv_buffer,
                                     wrap=wrap, pool=server.chunk_pool)
            self._data.proxy_networks = server.options.proxy_networks  # PROXY on passive
        return self._data

    def _protect_data(self, channel: DataChannel) -> None:
        """PROT P: shake hands on a data connection, resuming this channel's session."""
        self.server.tls.start_data(channel, self)

    # -- life cycle --------------------------------------------------------------------
    def start(self, refuse: str | None = None, greeted: bool = False) -> None:
        """Greet (*greeted*: the 220 is on the wire already), or refuse with 421."""
        if refuse is not None:
            self.call(self.session.refuse, refuse)
            return
        self.resume_reading()
        if self.server.options.timeout > 0:
            self._idle_timer = self.loop.call_later(self.server.options.timeout, self._check_idle)
        if self.session.config.implicit_tls:
            self.server.tls.start_control(self, then=lambda: self.call(self.session.start))
        else:
            self.call(self.session.start, greeted)

    def _check_idle(self) -> None:
        if self.closed:
            return
        timeout = self.server.options.timeout
        idle = self.loop.time() - self._last_activity
        # a TLS handshake has its own deadline (ftpd.io.tls closes it without a word)
        if idle >= timeout and not self.transferring and not self.tls_handshaking:
            self.call(self.session.timeout)
            if not self.closed:  # a transfer is running: look again later
                self._idle_timer = self.loop.call_later(timeout, self._check_idle)
        else:
            wait = timeout - idle if idle < timeout else timeout
            self._idle_timer = self.loop.call_later(wait, self._check_idle)

    # -- reading ---------------------------------------------------------------------
    def resume_reading(self) -> None:
        """Watch the control socket for commands (again, after a TLS handshake)."""
        self.loop.add_reader(self.sock, self._on_readable)

    def _on_readable(self) -> None:
        if self.closed:  # closed by an earlier event of the same round
            return
        try:
            data = self.stream.recv(8192)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if tls_would_block(exc):
                return
            data = b""
        if not data:
            self.call(self.session.connection_lost)
            self.close()
            return
        lines_before, arrived = self.session.lines_received, self.loop.time()
        self.call(self.session.receive, data)
        if self.session.lines_received != lines_before:
            # only whole commands count: a byte a second must not keep a session alive
            self._last_activity = arrived  # (when they came: the reply may be seen first)
        if not self.closed and self.stream.pending():
            self.loop.call_soon(self._on_readable)  # TLS holds decrypted bytes select can't see

    # -- carrying out the session's orders ------------------------------------------------
    def process(self, outputs: list[Reply | A.Action]) -> None:
        try:
            self._process(outputs)
        except Exception:
            self._internal_error()

    def call(self, entry: Callable[..., list[Reply | A.Action]], *args: Any) -> None:
        """Run a session entry point and carry out what it returns; a bug in either
        closes this session with 421 instead of leaving the client hanging."""
        try:
            outputs = entry(*args)
        except Exception:
            self._internal_error()
            return
        self.process(outputs)

    def _internal_error(self) -> None:
        log.exception("%s: internal error; closing the session", self.peer[0])
        if not self.closed:
            self.stream.discard_output()
            self.write(b"421 Internal server error; closing the connection.\r\n")
            self.close_when_drained()

    def _process(self, outputs: list[Reply | A.Action]) -> None:
        for item in outputs:
            kind = type(item)
            if self.closed and kind not in _EVEN_WHEN_CLOSED:
                continue
            do = self._ORDERS.get(kind)
            if do is None:
                log.error("unknown action %r", item)
            else:
                do(self, item)

    def _emit(self, item: A.Emit) -> None:
        self.flush()  # the reply before it goes first: a listener never delays it
        self.server.bus.generate(item.name, item.data)

    def _call(self, item: A.Call) -> None:
        result = answer_now(item.fn, item.args)
        if result is NOT_NOW:
            self.server.run_in_pool(item.fn, item.args, self._answered)
        else:  # answered from memory: the command goes on now (as for ListenPassive)
            self._answered(result, None)

    def _reply(self, item: Reply) -> None:
        self.write(item.encode())

    def _start_transfer(self, item: A.StartTransfer) -> None:
        self.flush()
        self.data.start(item.transfer, self._transfer_done)

    def _close_data(self, item: A.CloseData) -> None:
        if self._data is not None:
            self._data.close()

    def _authenticate(self, item: A.Authenticate) -> None:
        self.server.authenticate(item.username, item.password, self._auth_done)

    def _wait(self, item: A.Wait) -> None:
        self.loop.call_later(item.seconds, self._resume)

    def _start_tls(self, item: A.StartTLS) -> None:
        self.flush()
        self.server.tls.start_control(self, then=self._tls_ready)

    def _close_order(self, item: A.Close) -> None:
        self.close_when_drained()

    def _listen(self, item: A.ListenPassive) -> None:
        try:
            port = self.data.listen(item.ports, item.allowed_peer)
        except OSError as exc:
            self.call(self.session.fail, exc)
            return
        self.call(self.session.answer, port)

    def _answered(self, result: Any, exc: BaseException | None) -> None:
        """A Call came back from the worker pool (on the loop, posted by the pool)."""
        if not self.session.expecting:  # the session closed meanwhile: nobody wants it
            close = getattr(result, "close", None)
            if close is not None:  # a file it opened: closed off the loop too
                self.server.run_in_pool(close, (), _ignore)
            if not self.session.closed:
                log.error("%s: an answer nobody waits for", self.peer[0])
        elif exc is not None:
            self.call(self.session.fail, exc)
        else:
            self.call(self.session.answer, result)
        if self.closed and not self.session.expecting:
            self.server.connection_closed(self)  # a lingering cleanup has finished

    def _transfer_done(self, end: A.TransferEnd) -> None:
        if not self.closed:
            self.call(self.session.answer, end)

    def _auth_done(self, account: Any) -> None:
        if not self.closed:
            # --pam: a system account's process becomes it first, or 530 and close
            if account is not None and not become.admit(self, account):
                return
            self.call(self.session.answer, account)

    def _resume(self) -> None:
        if not self.closed:
            self.call(self.session.answer)

    def _tls_ready(self) -> None:
        self.call(self.session.answer)

    # -- writing ---------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        stream = self.stream
        if self.closed:  # nobody to send it to
            return
        if stream.out and len(stream.out) + len(data) > MAX_OUTPUT:
            log.warning("%s: client does not read its replies; closing", self.peer[0])
            self.close()
            return
        stream.write(data)

    def flush(self) -> None:
        if not self.closed:
            self.stream.flush()

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Run *callback* once every reply written so far is on the wire."""
        self.stream.when_drained(callback)

    def discard_output(self) -> None:
        """Drop replies not yet sent (the connection is about to go, mid-handshake)."""
        self.stream.discard_output()

    def _send_failed(self, exc: BaseException) -> None:
        self.close()  # the client is gone

    def close_when_drained(self) -> None:
        self.stream.when_drained(self.close)

    def close(self) -> None:
        if self.closed:
            return
        leftover = [] if self.session.closed else self.session.connection_lost()
        self.closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._data is not None:
            self._data.close()
        self.stream.close()
        self._process(leftover)  # events, and the cleanups of a transfer cut short
        if not self.session.expecting:  # else once the cleanup is done (_answered)
            self.server.connection_closed(self)

    @property
    def transferring(self) -> bool:
        return self._data is not None and self._data.busy


def _ignore(result: Any, exc: BaseException | None) -> None:
    pass


_LOCALS: dict[tuple[str, int], tuple[str, int]] = {}  # the server's own (host, port)s


def _shared_local(address: tuple[Any, ...]) -> tuple[str, int]:
    """The local (host, port) of a connection, one tuple per address: every session on a
    listener has the same one (bounded: a wildcard listener has the host's addresses)."""
    local = (normalize_host(address[0]), address[1])
    shared = _LOCALS.get(local)
    if shared is None:
        if len(_LOCALS) >= 256:
            _LOCALS.clear()
        shared = _LOCALS[local] = (sys.intern(local[0]), local[1])
    return shared


# Facts are reported and calls made even once the client is gone (a cleanup must happen).
_EVEN_WHEN_CLOSED = frozenset({A.Emit, A.Call})

ControlConnection._ORDERS = {  # one dict look-up per order, not a chain of isinstance
    Reply: ControlConnection._reply,
    A.Emit: ControlConnection._emit,
    A.Call: ControlConnection._call,
    A.StartTransfer: ControlConnection._start_transfer,
    A.ListenPassive: ControlConnection._listen,
    A.CloseData: ControlConnection._close_data,
    A.Authenticate: ControlConnection._authenticate,
    A.Wait: ControlConnection._wait,
    A.StartTLS: ControlConnection._start_tls,
    A.Close: ControlConnection._close_order,
}
