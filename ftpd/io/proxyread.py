"""Reading a PROXY protocol header off a freshly accepted socket, on the loop: never
blocking, bounded in size and time, and never taking a byte past the header (it
peeks, then consumes exactly the header), so the session — or a TLS handshake —
finds the stream as the client sent it.

Also which peers must send one: the ``--proxy-protocol`` networks."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

from ftpd.io.loop import EventLoop
from ftpd.io.proxyproto import ProxyError, ProxyHeader, parse, wanted
from ftpd.log import get_logger

log = get_logger("ftpd.proxy")

HEADER_TIMEOUT = 10.0  # a balancer sends the header at once; anyone slower is not one

# called with the header, or None when it was missing or invalid (already logged;
# the socket is then the callback's to close)
HeaderDone = Callable[[ProxyHeader | None], None]


class ProxyNetworks:
    """The addresses whose connections must start with a header."""

    def __init__(self, specs: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(str(spec), strict=False) for spec in specs)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks)


class ProxyHeaderReader:
    """Reads one header from *sock* (non-blocking), then calls *done* once."""

    def __init__(self, loop: EventLoop, sock: socket.socket, peer: str, done: HeaderDone,
                 timeout: float = HEADER_TIMEOUT) -> None:
        self.loop, self.sock, self.peer, self._done = loop, sock, peer, done
        self._buffer = bytearray()
        self.finished = False
        sock.setblocking(False)
        self._timer = loop.call_later(timeout, self._timed_out)
        loop.add_reader(sock, self._on_readable)

    def _on_readable(self) -> None:
        try:
            chunk = self.sock.recv(wanted(self._buffer) or 1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(f"connection lost ({exc.strerror or exc})")
            return
        if not chunk:  # nothing at all: a plain TCP check, most likely
            self._fail("closed within the PROXY header" if self._buffer
                       else "closed before a PROXY header", quiet=not self._buffer)
            return
        try:
            header = parse(self._buffer + chunk)
        except ProxyError as exc:
            self._fail(str(exc))
            return
        take = len(chunk) if header is None else header.consumed - len(self._buffer)
        try:
            self._take(take)
        except OSError as exc:
            self._fail(f"connection lost ({exc.strerror or exc})")
            return
        if header is not None:
            self._finish(header)

    def _take(self, count: int) -> None:
        """Consume *count* bytes already seen by the peek (so they are there)."""
        while count > 0:
            got = self.sock.recv(count)
            if not got:
                raise OSError("closed")
            self._buffer += got
            count -= len(got)

    def _timed_out(self) -> None:
        self._fail("no PROXY header in time")

    def _fail(self, reason: str, quiet: bool = False) -> None:
        (log.info if quiet else log.warning)("%s: dropped: %s", self.peer, reason)
        self._finish(None)

    def _finish(self, header: ProxyHeader | None) -> None:
        if self.finished:
            return
        self.finished = True
        self._timer.cancel()
        self.loop.remove_reader(self.sock)
        self._done(header)

    def cancel(self) -> None:
        """Stop reading without a callback (the server or the data channel closes)."""
        if not self.finished:
            self.finished = True
            self._timer.cancel()
            self.loop.forget(self.sock)


def carried_peer(header: ProxyHeader, real: tuple[Any, ...]) -> tuple[str, int]:
    """The client address to serve: the carried one, or the real peer when the header
    carries none (a health check)."""
    return header.client if header.client is not None else (real[0], real[1])
