"""A process per session, for ``--pam`` in the shared-loop modes (standalone, ``-W``,
Accept=no): each accepted control connection is handed to a fresh interpreter that
serves it exactly as ``ftpd -I`` would (the socket as its fd 0, the same settings),
so a system account's session can become that account for good (``ftpd.io.become``).

This is vsftpd's and ProFTPD's model. The root parent never reads a byte from a
client: it accepts, enforces the connection caps (each child counts as a connection
of its client's address until it exits), and reaps children from the loop through a
pidfd (SIGCHLD where there is none), never blocking. A new interpreter rather than a
fork: the parent has threads (the auth pool), and a fork of a threaded process may
hold locks nobody will release. The settings travel pickled through a pipe (fd 3),
so the child serves with exactly the parent's current ones, after a SIGHUP too."""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import Any

import ftpd
from ftpd.log import get_logger

log = get_logger("ftpd.persession")

SETTINGS_FD = 3
PARENT_ONLY_ENV = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
                   "WATCHDOG_USEC", "WATCHDOG_PID")


class ChildSession:
    """One session served by a child process, as the Server sees a connection: it has a
    ``peer``, ``start``, ``call``, ``session.shutdown`` and ``close``."""

    def __init__(self, spawner: SessionSpawner, pid: int, peer: tuple[str, int]) -> None:
        self.spawner, self.pid, self.peer = spawner, pid, peer
        self.session = self  # Server.begin_shutdown drains with conn.call(conn.session.shutdown)
        self.exited = False

    def start(self, refuse: str | None = None, greeted: bool = False) -> None:
        """The child greets the client itself (ControlConnection.start's signature)."""

    def call(self, entry: Any, *args: Any) -> None:
        entry(*args)

    def shutdown(self) -> list[Any]:
        """Graceful drain: the child's own SIGTERM handling (421 when idle, transfers
        finish first)."""
        self._signal(signal.SIGTERM)
        return []

    def close(self) -> None:
        """Stop now: a second SIGTERM makes the child close its session at once."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        if not self.exited:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


class SessionSpawner:
    """Starts and reaps the session children of one Server."""

    def __init__(self, server: Any, settings: Any, log_where: str,
                 launched_by: str | None) -> None:
        self.server, self.settings = server, settings
        self.log_where, self.launched_by = log_where, launched_by
        self.children: dict[int, ChildSession] = {}
        self._pidfds = hasattr(os, "pidfd_open")
        if not self._pidfds:
            server.loop.add_signal_handler(signal.SIGCHLD, lambda signum: self._reap_all())

    def hand_over(self, conn: Any, implicit_tls: bool) -> ChildSession | None:
        """Start a child serving *conn*'s socket; the parent's copy is closed. None when
        no child could be started (the caller refuses the client itself)."""
        try:
            pid = self._spawn(conn.sock, implicit_tls, self._carried(conn))
        except OSError as exc:
            log.error("%s: cannot start a session process: %s", conn.peer[0], exc)
            return None
        child = ChildSession(self, pid, conn.peer)
        self.children[pid] = child
        if self._pidfds:
            self._watch(child)
        conn.sock.close()
        log.debug("%s: session handed to process %d", conn.peer[0], pid)
        return child

    def _carried(self, conn: Any) -> tuple[str, int] | None:
        """The client a --proxy-protocol header named when the peer is a balancer (the
        parent has read that header: the child must not wait for one), else None."""
        networks = self.server.options.proxy_networks
        if not networks:
            return None
        try:
            peer = conn.sock.getpeername()
        except OSError:
            return None
        return conn.peer if peer[0] in networks else None

    def _order(self, implicit_tls: bool, client: tuple[str, int] | None) -> bytes:
        return pickle.dumps({"settings": dict(self.settings), "log": self.log_where,
                             "launched_by": self.launched_by,
                             "implicit_tls": implicit_tls, "client": client})

    def _spawn(self, sock: Any, implicit_tls: bool, client: tuple[str, int] | None) -> int:
        order = self._order(implicit_tls, client)
        r, w = os.pipe()
        try:
            os.set_blocking(w, False)
            if os.write(w, order) != len(order):  # a pipe holds 64 KiB; settings are ~2
                raise OSError("settings too large for the pipe")
            os.close(w)
            w = -1
            argv = [sys.executable, "-m", "ftpd.launch.sessionchild", str(SETTINGS_FD)]
            return os.posix_spawn(sys.executable, argv, self._environment(), file_actions=[
                (os.POSIX_SPAWN_DUP2, sock.fileno(), 0),
                (os.POSIX_SPAWN_DUP2, r, SETTINGS_FD),
            ])
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    @staticmethod
    def _environment() -> dict[str, str]:
        """The parent's environment without what systemd meant for the parent alone, and
        with this very ftpd first on the path (a daemon runs in /)."""
        env = {k: v for k, v in os.environ.items() if k not in PARENT_ONLY_ENV}
        source = os.path.dirname(os.path.dirname(os.path.abspath(ftpd.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
        return env

    def _watch(self, child: ChildSession) -> None:
        try:
            pidfd = os.pidfd_open(child.pid)
        except ProcessLookupError:  # gone already
            self._reap(child.pid)
            return
        loop = self.server.loop

        def on_exit() -> None:
            loop.forget(pidfd)
            os.close(pidfd)
            self._reap(child.pid)

        loop.add_reader(pidfd, on_exit)

    def _reap(self, pid: int) -> bool:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if done == 0:
            return False
        child = self.children.pop(pid, None)
        if child is not None:
            child.exited = True
            code = os.waitstatus_to_exitcode(status)
            (log.debug if code == 0 else log.warning)(
                "session process %d (%s) exited with %d", pid, child.peer[0], code)
            self.server.connection_closed(child)
        return True

    def _reap_all(self) -> None:
        for pid in list(self.children):
            self._reap(pid)


def attach(server: Any, settings: Any, log_where: str, launched_by: str | None) -> None:
    """--pam on a shared loop: every accepted connection goes to its own process, which
    logs as the parent does (*launched_by*: the parent's launcher, None standalone)."""
    server.spawner = SessionSpawner(server, settings, log_where, launched_by)
