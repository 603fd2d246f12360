"""accept() failing for want of descriptors (issue 10, point 4): the server stops
watching its listener for a pause, logs it once, serves its sessions meanwhile and
accepts again afterwards (it used to spin, writing 8 MB of log in 3 s).

The failure is injected: the listening socket is wrapped so that accept() raises
EMFILE while ``failing`` is set (a real queued connection keeps it readable, exactly as
when the process is out of descriptors). "No spinning" is counted, not timed, and the
pause runs on virtual time: no retry 1/16 s before it ends, a retry once it has."""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

import pytest
from ftpsupport import DEADLINE, loop_turns, wait_until
from hhelpers import HOST, Control, open_data, read_all

from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS
from ftpd.io import data as data_module
from ftpd.io.backoff import ACCEPT_PAUSE, RateLimitedLog
from ftpd.io.clock import VirtualClock
from ftpd.io.data import DataChannel

SHORT = 1 / 16  # how far short of the pause the clock is stopped


class FlakyListener:
    """A listening socket whose accept() raises EMFILE the next *failures* times."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.failures = 0
        self.failed = 0

    def accept(self) -> tuple[socket.socket, Any]:
        if self.failures > 0:
            self.failures -= 1
            self.failed += 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self.sock.accept()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.fixture
def flaky(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    server = FTPServer(MemoryFS({"/f.txt": b"hi\n"}), users={"user": "pw"},
                       clock=VirtualClock())
    listeners = server.server.launch.listeners
    listener = FlakyListener(listeners[0].sock)
    listeners[0] = listeners[0]._replace(sock=listener)  # type: ignore[arg-type]
    server.start()
    try:
        yield server, listener
    finally:
        server.stop()


def _emfile_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "accept failed" in r.getMessage()]


def _connect(port: int) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=DEADLINE)


def test_out_of_fds_pauses_accepting_instead_of_spinning(flaky, caplog):
    server, listener = flaky
    server.server.accept_pause.pause = 3600.0  # never resumes by itself in this test
    session = Control(server.port)
    session.login()
    listener.failures = 1_000_000  # out of descriptors from now on
    waiting = _connect(server.port)  # queued in the backlog: the listener stays readable
    try:
        wait_until(lambda: listener.failed >= 1, "accept() to be tried")
        for _ in range(50):  # each is a few loop iterations: a spinning loop retries
            session.ok("NOOP", 200)  # the existing session is served meanwhile
        assert listener.failed == 1
        assert len(_emfile_records(caplog)) == 1
    finally:
        waiting.close()
        session.close()


def test_accepting_resumes_after_the_pause(flaky, caplog):
    server, listener = flaky
    assert server.server.accept_pause.pause == ACCEPT_PAUSE
    session = Control(server.port)
    session.login()
    listener.failures = 3  # three failed tries, then descriptors are free again
    late = Control(server.port, greet=False)  # greeted once accepting has resumed
    try:
        wait_until(lambda: listener.failed >= 1, "accept() to be tried")
        for tries in (1, 2, 3):  # each pause ends, not sooner: then one more try
            loop_turns(server)
            server.clock.advance(ACCEPT_PAUSE - SHORT)
            loop_turns(server)
            assert listener.failed == tries and late.silent()
            server.clock.advance(SHORT)
        assert late.reply()[0] == 220
        assert listener.failed == 3
        late.login()
        late.ok("NOOP", 200)
        session.ok("NOOP", 200)
        assert len(_emfile_records(caplog)) == 1  # once a minute at most
    finally:
        late.close()
        session.close()


@pytest.fixture
def flaky_data(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    """Every passive listener's accept() fails ``failures[0]`` times first."""
    failures = [0]
    made: list[FlakyListener] = []
    real_listen = DataChannel.listen

    def listen(self: DataChannel, ports: Any, allowed_peer: Any) -> int:
        port = real_listen(self, ports, allowed_peer)
        self.listener = FlakyListener(self.listener)  # type: ignore[assignment]
        self.listener.failures = failures[0]
        made.append(self.listener)
        return port

    monkeypatch.setattr(DataChannel, "listen", listen)
    monkeypatch.setattr(data_module, "_OUT_OF_FDS_LOG", RateLimitedLog())  # a fresh minute
    caplog.set_level(logging.INFO)
    with FTPServer(MemoryFS({"/f.txt": b"hi\n"}), users={"user": "pw"},
                   clock=VirtualClock()) as server:
        session = Control(server.port)
        session.login()
        session.ok("TYPE I", 200)
        try:
            yield server, session, failures, made
        finally:
            session.close()


def test_passive_accept_out_of_fds_does_not_spin(flaky_data, monkeypatch, caplog):
    _, session, failures, made = flaky_data
    monkeypatch.setattr(DataChannel, "accept_pause", 3600.0)
    failures[0] = 1_000_000
    data = open_data(*session.pasv())
    try:
        session.ok("RETR f.txt", 150)
        wait_until(lambda: made[0].failed >= 1, "the data accept() to be tried")
        for _ in range(50):
            session.ok("NOOP", 200)  # answered during the transfer
        assert made[0].failed == 1
        assert len(_emfile_records(caplog)) == 1
        session.ok("ABOR", 426)
        assert session.reply()[0] == 226
        session.ok("NOOP", 200)
    finally:
        data.close()


def test_passive_accept_retries_after_the_pause(flaky_data, monkeypatch, caplog):
    server, session, failures, made = flaky_data
    assert DataChannel.accept_pause == ACCEPT_PAUSE
    failures[0] = 3
    with open_data(*session.pasv()) as data:
        session.ok("RETR f.txt", 150)
        wait_until(lambda: made[0].failed >= 1, "the data accept() to be tried")
        for tries in (1, 2, 3):
            loop_turns(server)
            server.clock.advance(ACCEPT_PAUSE - SHORT)
            loop_turns(server)
            assert made[0].failed == tries, "retried before the pause ended"
            server.clock.advance(SHORT)
        assert read_all(data) == b"hi\n"
    assert session.reply()[0] == 226
    assert made[0].failed == 3
    assert len(_emfile_records(caplog)) == 1
