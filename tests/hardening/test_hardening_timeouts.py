"""Control idle timeout (slowloris included) and the stalled data connection timeout,
in-process on virtual time (``ftpd.io.clock.VirtualClock``): the production timeouts of
300 s are kept, and cost no real time. "Not before the timeout" is checked by moving
the clock to just short of it (``loop_turns`` then proves the server had its chance to
speak); "at the timeout" by moving it the rest of the way, or letting the clock jump
to the next timer. That the command-line flags reach these timers is checked apart."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from ftpsupport import loop_turns
from hhelpers import PASSWORD, USER, Control, read_all

from ftpd.app import build_options, build_session_config
from ftpd.cli import parse_args
from ftpd.config import resolve
from ftpd.embed import FTPServer
from ftpd.io.clock import VirtualClock

TIMEOUT = 300.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FTPServer, VirtualClock, Path]]:
    """An embedded server on *tmp_path/root*, its timers on a virtual clock; each test
    sets the timeouts it is about through ``server.server.options``."""
    root = tmp_path / "root"
    root.mkdir()
    clock = VirtualClock()
    with FTPServer(str(root), users={USER: PASSWORD}, anonymous=False, clock=clock,
                   timeout=0, data_timeout=0) as server:
        yield server, clock, root


def test_idle_control_connection_gets_421_and_is_closed(served):
    server, clock, _ = served
    server.server.options.timeout = TIMEOUT
    with Control(server.port) as c:
        c.login()
        c.ok("NOOP", 200)
        clock.advance(TIMEOUT - 1)
        loop_turns(server)
        assert c.silent(), "cut before the timeout"
        clock.advance(1)
        code, text = c.reply()
        assert code == 421, text
        assert c.closed()
    with Control(server.port) as other:  # the server goes on
        other.login()
        other.ok("NOOP", 200)


def test_slowloris_partial_line_is_cut_at_the_timeout(served):
    server, clock, _ = served
    server.server.options.timeout = TIMEOUT
    with Control(server.port) as c:
        for byte in b"NOOPNOOP":  # never a whole line: a byte every 30 s does not count
            c.send(bytes([byte]))
            loop_turns(server)
            assert c.silent()
            clock.advance(TIMEOUT / 10)
        clock.advance(TIMEOUT - 1 - clock.time())  # 299 s since the greeting
        loop_turns(server)
        assert c.silent(), "cut before the timeout"
        clock.advance(1)
        assert c.closed()
        replies = c.pending_replies()
        assert replies and replies[-1][0] == 421, replies


def _cut_by_data_timeout(server: FTPServer, clock: VirtualClock, c: Control) -> None:
    """The transfer is running, its client silent: not cut 1 s short of the data
    timeout; cut (426) once virtual time jumps on, no sooner than the timeout."""
    started = clock.time()
    clock.advance(TIMEOUT - 1)
    loop_turns(server)
    assert c.silent(), "cut before the data timeout"
    clock.autojump_threshold = 0  # to the data timer, at once in real time
    try:
        code, text = c.reply()
    finally:
        clock.autojump_threshold = math.inf  # no timer is left to jump to anyway
    assert code == 426, text
    assert clock.time() - started >= TIMEOUT


def test_stalled_download_is_cut_by_data_timeout(served):
    server, clock, root = served
    server.server.options.data_timeout = TIMEOUT
    with open(root / "big.bin", "wb") as f:  # sparse: far more than the socket buffers hold
        f.truncate(256 << 20)
    (root / "small.txt").write_bytes(b"small file\n")
    with Control(server.port) as c:
        c.login()
        c.ok("TYPE I", 200)
        with c.data(rcvbuf=4096):
            c.ok("RETR big.bin", 150)  # and the client never reads
            _cut_by_data_timeout(server, clock, c)
        # the control connection keeps working, data transfers too
        c.ok("NOOP", 200)
        with c.data() as data:
            c.ok("RETR small.txt", 150)
            assert read_all(data) == b"small file\n"
        code, text = c.reply()
        assert code == 226, text


def test_stalled_upload_is_cut_by_data_timeout(served):
    server, clock, root = served
    server.server.options.data_timeout = TIMEOUT
    with Control(server.port) as c:
        c.login()
        c.ok("TYPE I", 200)
        with c.data() as data:
            c.ok("STOR up.bin", 150)
            data.sendall(b"x" * 1000)  # and nothing more, ever
            _cut_by_data_timeout(server, clock, c)
        c.ok("NOOP", 200)
        assert (root / "up.bin").read_bytes() == b"x" * 1000


def test_a_data_connection_never_opened_is_given_up_at_the_data_timeout(served):
    server, clock, root = served
    server.server.options.data_timeout = TIMEOUT
    (root / "f.txt").write_bytes(b"f")
    with Control(server.port) as c:
        c.login()
        c.pasv()  # and never connect
        started = clock.time()
        c.ok("RETR f.txt", 150)
        clock.advance(TIMEOUT - 1)
        loop_turns(server)
        assert c.silent(), "gave up before the data timeout"
        clock.autojump_threshold = 0
        try:
            code, text = c.reply()
        finally:
            clock.autojump_threshold = math.inf
        assert code in (425, 426), text
        assert clock.time() - started >= TIMEOUT
        c.ok("NOOP", 200)


def test_idle_timeout_spares_a_running_transfer(served):
    server, clock, root = served
    server.server.options.timeout = TIMEOUT
    size = 48 << 20  # sparse: more than the socket buffers hold
    with open(root / "big.bin", "wb") as f:
        f.truncate(size)
    with Control(server.port) as c:
        c.login()
        c.ok("TYPE I", 200)
        with c.data(rcvbuf=4096) as data:
            c.ok("RETR big.bin", 150)
            received = len(data.recv(1 << 16))
            clock.advance(3 * TIMEOUT)  # the reader pauses for three control timeouts
            loop_turns(server)
            assert c.silent(), "the server spoke during the transfer"
            received += len(read_all(data))
        assert received == size
        code, text = c.reply()
        assert code == 226, text
        clock.advance(TIMEOUT)  # then the idle timeout applies again
        code, text = c.reply()
        assert code == 421, text


def test_the_timeout_flags_reach_the_timers():
    settings = resolve(parse_args(["-r", "/", "--timeout", "7", "--data-timeout", "9",
                                   "--idle-timeout", "11", "--shutdown-timeout", "13",
                                   "--failed-login-delay", "0.5"]))
    options = build_options(settings)
    assert (options.timeout, options.data_timeout) == (7.0, 9.0)
    assert (options.idle_timeout, options.shutdown_timeout) == (11.0, 13.0)
    assert build_session_config(settings).throttle.base_delay == 0.5
