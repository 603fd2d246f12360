"""One connected socket, plain or TLS, behind one small interface: the control and the
data connections send and receive through it, and it is the one place a socket becomes
TLS (``upgrade``: the non-blocking handshake, driven by readiness events). Buffered
output (``write``/``flush``) ends in a drained callback, so "once everything queued is
on the wire" is an event, not something to poll for."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftpd.io.loop import EventLoop

Failed = Callable[[BaseException], None]
_NONE: tuple[()] = ()  # no drained callbacks (a list is made for the first)


class Stream:
    __slots__ = ("loop", "sock", "tls", "out", "on_error", "_drained", "held", "ahead")

    def __init__(self, loop: EventLoop, sock: Any, on_error: Failed | None = None) -> None:
        self.loop = loop
        self.sock = sock
        self.tls = False  # set by upgrade once the handshake is done
        # written, not yet sent: a bytearray while some is pending, else the shared b""
        # (an idle connection keeps no buffer of its own)
        self.out: bytearray | bytes = b""
        self.on_error: Failed | None = on_error  # a send failed: the connection is gone
        self.held = False  # a handshake is running: output waits for it
        self.ahead = False  # TLS reads ahead of the records asked for (read_ahead)
        self._drained: list[Callable[[], None]] | tuple[()] = _NONE

    def fileno(self) -> int:
        return self.sock.fileno()

    # -- bytes in and out ---------------------------------------------------------------
    def send(self, data: Any) -> int:
        return self.sock.send(data)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def recv_into(self, buffer: Any) -> int:
        return self.sock.recv_into(buffer)

    def pending(self) -> int:
        """Whether TLS holds bytes select cannot see: decrypted, or (reading ahead)
        ciphertext read from the socket and not yet processed (0 for a plain socket)."""
        if not self.tls:
            return 0
        if self.ahead:
            from ftpd.io.libssl import has_pending

            return int(has_pending(self.sock))
        return self.sock.pending()

    @property
    def session_reused(self) -> bool:
        return bool(self.tls and self.sock.session_reused)

    # -- buffered output ----------------------------------------------------------------
    def append(self, data: bytes) -> None:
        """Queue *data* for ``flush``."""
        if self.out:
            self.out += data
        else:
            self.out = bytearray(data)

    def write(self, data: bytes) -> None:
        """Send *data* now if nothing waits before it (a reply, usually all of it);
        queue what the socket does not take."""
        if self.out or self.held or self.sock is None:
            self.append(data)
            self.flush()
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            if not tls_would_block(exc):
                self._failed(exc)
                return
            sent = 0
        if sent < len(data):
            self.out = bytearray(data[sent:])
            self.loop.add_writer(self.sock, self.flush)
            return
        self._run_drained()

    def flush(self) -> None:
        """Send what the socket takes; watch for writability while output remains;
        when it is all sent, run the drained callbacks (once each). The writer is
        watched exactly while output is pending."""
        if self.held or self.sock is None:
            return
        out = self.out
        if out:
            try:
                while out:
                    sent = self.sock.send(out)
                    del out[:sent]  # (pending output is a bytearray)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                if not tls_would_block(exc):
                    self._failed(exc)
                    return
            if out:
                self.loop.add_writer(self.sock, self.flush)
                return
            self.out = b""
            self.loop.remove_writer(self.sock)
        self._run_drained()

    def _run_drained(self) -> None:
        while self._drained and not self.out and not self.held:
            self._drained.pop(0)()  # (not empty: a list)

    def _failed(self, exc: BaseException) -> None:
        self.out = b""
        self.loop.remove_writer(self.sock)
        if self.on_error is not None:
            self.on_error(exc)

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Run *callback* once everything written so far has been sent."""
        if self._drained:
            self._drained.append(callback)
        else:
            self._drained = [callback]
        if not self.out and not self.held:
            self.flush()

    def discard_output(self) -> None:
        self.out = b""
        self._drained = _NONE

    # -- TLS ----------------------------------------------------------------------------
    def upgrade(self, context: Any, server_side: bool, then: Callable[[], None],
                failed: Failed, read_ahead: bool = False, **wrap: Any) -> None:
        """Wrap the socket in TLS and shake hands without blocking: *then()* when done,
        *failed(exc)* if it cannot be. Output written meanwhile waits for it.
        *read_ahead*: read the socket in large pieces, not record by record (a data
        connection; ``ftpd.io.libssl``), where OpenSSL can be asked to."""
        import ssl

        raw = self.sock
        self.loop.forget(raw)
        self.held = True
        try:
            self.sock = context.wrap_socket(raw, server_side=server_side,
                                            do_handshake_on_connect=False, **wrap)
        except (ssl.SSLError, OSError) as exc:
            self.held = False
            failed(exc)
            return
        if read_ahead:
            from ftpd.io import libssl

            self.ahead = libssl.read_ahead(self.sock)

        def done() -> None:
            self.held = False
            self.tls = True
            then()

        def broken(exc: BaseException) -> None:
            self.held = False
            failed(exc)

        _handshake(self.loop, self.sock, done, broken)

    # -- the end ------------------------------------------------------------------------
    def close(self) -> None:
        """Forget the socket in the loop and close it (close_notify first when TLS)."""
        sock, self.sock = self.sock, None
        self._drained = _NONE
        if sock is None:
            return
        self.loop.forget(sock)
        if self.tls:
            _close_notify(sock)
        try:
            sock.close()
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        return self.sock is None


def tls_would_block(exc: BaseException) -> bool:
    """Whether *exc* is TLS's way of saying "try again when ready"."""
    import sys

    ssl = sys.modules.get("ssl")  # only TLS sockets raise these, and only when ssl is loaded
    return ssl is not None and isinstance(exc, (ssl.SSLWantReadError, ssl.SSLWantWriteError))


def would_block(exc: BaseException) -> bool:
    """Whether a socket call on a non-blocking stream only means "not now"."""
    return isinstance(exc, (BlockingIOError, InterruptedError)) or tls_would_block(exc)


def _handshake(loop: EventLoop, sock: Any, done: Callable[[], None], failed: Failed) -> None:
    """Drive a non-blocking handshake from readiness events."""
    import ssl

    def step() -> None:
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            loop.forget(sock)
            loop.add_reader(sock, step)
            return
        except ssl.SSLWantWriteError:
            loop.forget(sock)
            loop.add_writer(sock, step)
            return
        except (ssl.SSLError, OSError) as exc:
            loop.forget(sock)
            failed(exc)
            return
        loop.forget(sock)
        done()

    step()


def _close_notify(sock: Any) -> None:
    """Best effort: send TLS close_notify before closing (strict clients expect it)."""
    import ssl

    try:
        sock.unwrap()
    except (ssl.SSLError, OSError, ValueError):
        pass
