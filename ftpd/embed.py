"""Embedding: run an FTP server inside a Python program, on any filesystem, on a
free port or on a socket the program already holds (listening or connected).

    from ftpd.embed import FTPServer
    from ftpd.fs.memory import MemoryFS

    with FTPServer(MemoryFS({"/hello.txt": b"hi\\n"}), users={"alice": "secret"}) as server:
        print("serving on port", server.port)

Tests pass ``clock=VirtualClock()`` (``ftpd.io.clock``): every timer of the server, and
the sessions' clock, then run on virtual time the test moves (``clock.advance(300)``).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from ftpd.auth.base import ALL_PERMS, Account, AnonymousAuthorizer, ChainAuthorizer
from ftpd.core.session import SessionConfig
from ftpd.fs.base import FileSystem
from ftpd.io.clock import Clock
from ftpd.io.server import Server, ServerOptions
from ftpd.launch.context import Endpoint, LaunchContext
from ftpd.launch.standalone import bind


class _UsersAuthorizer:
    cheap = True  # a dict look-up: answered on the loop

    def __init__(self, users: dict[str, str], perm: str) -> None:
        self.users, self.perm = users, perm

    def authenticate(self, username: str, password: str) -> Account | None:
        import hmac

        expected = self.users.get(username)
        if expected is not None and hmac.compare_digest(expected.encode(), password.encode()):
            return Account(username, "/", self.perm)
        return None


def _always(fs: FileSystem) -> Any:
    """The fs_factory of one filesystem object for every login: made already, so it is
    answered on the loop (``nowait``, see ftpd.io.nowait), with no thread round trip."""

    def factory(account: Account) -> FileSystem:
        return fs

    factory.nowait = factory  # type: ignore[attr-defined]
    return factory


class FTPServer:
    """A server on *fs* (a FileSystem object, or a directory path)."""

    def __init__(self, fs: FileSystem | str, *, users: dict[str, str] | None = None,
                 anonymous: bool = True, anonymous_write: bool = False,
                 host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None,
                 idle_timeout: float = 0.0, timeout: float = 300.0,
                 data_timeout: float = 300.0, shutdown_timeout: float = 5.0,
                 clock: Clock | None = None, **session_options: Any) -> None:
        if isinstance(fs, str):
            from ftpd.fs.local import LocalFS

            fs = LocalFS(fs)
        self.fs = fs
        if sock is None:
            launch = LaunchContext("embedded", listeners=[Endpoint(bind(host, port))])
        elif sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            launch = LaunchContext("embedded", listeners=[Endpoint(sock, inherited=True)])
        else:
            launch = LaunchContext("embedded", connections=[Endpoint(sock)])
        authorizers: list[Any] = [_UsersAuthorizer(users or {}, ALL_PERMS)]
        if anonymous:
            authorizers.append(AnonymousAuthorizer("/", writable=anonymous_write))
        from ftpd.app import injected

        if clock is not None:
            session_options.setdefault("clock", clock.wall)  # events and login throttle
        session_options = {**injected(), "fs_factory": _always(fs), **session_options}
        config = SessionConfig(**session_options)
        options = ServerOptions(timeout=timeout, data_timeout=data_timeout,
                                idle_timeout=idle_timeout, shutdown_timeout=shutdown_timeout)
        self.server = Server(launch, config, ChainAuthorizer(*authorizers), options,
                             clock=clock)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.server.addresses[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def clock(self) -> Clock:
        """The clock every timer of this server runs on."""
        return self.server.loop.clock

    @property
    def bus(self) -> Any:
        """The events bus: ``server.bus.register("fs.upload", callback)``."""
        return self.server.bus

    def serve_forever(self) -> None:
        """Serve in this thread until stopped (or idle, with idle_timeout)."""
        self.server.serve()

    def start(self) -> FTPServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.server.serve, name="ftpd", daemon=True)
        self._thread.start()
        self.server.wait_started()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: sessions are told 421 and the thread ends."""
        if self._thread is not None and self._thread.is_alive():
            self.server.stop()
            self._thread.join(timeout)

    def __enter__(self) -> FTPServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
