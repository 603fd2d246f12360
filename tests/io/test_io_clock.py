"""The loop's injectable clock (issue 11, point 8): timers run on a ``VirtualClock``
that stands still until a test moves it, or jumps to the next timer when the loop is
idle (autojump), while sockets are still served for real. Every timer of ``ftpd/io``
reads the loop's clock, never ``time`` directly."""

from __future__ import annotations

import math
import re
import socket
import threading
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, RawControl, loop_turns

import ftpd.io
from ftpd.auth.base import ChainAuthorizer
from ftpd.core.session import SessionConfig
from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS
from ftpd.io.clock import RealClock, VirtualClock
from ftpd.io.loop import EventLoop
from ftpd.io.server import Server, ServerOptions
from ftpd.launch.context import Endpoint, LaunchContext
from ftpd.launch.standalone import bind


def test_the_loop_runs_on_real_time_unless_told():
    loop = EventLoop()
    try:
        assert isinstance(loop.clock, RealClock)
        assert loop.time() <= loop.time()  # monotonic
    finally:
        loop.close()


def test_virtual_time_moves_only_when_advanced():
    clock = VirtualClock(start=5.0)
    assert clock.time() == clock.time() == 5.0
    clock.advance(2.5)
    assert clock.time() == 7.5
    assert clock.wall() - clock.time() == VirtualClock(start=5.0).wall() - 5.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_autojump_runs_timers_in_order_at_their_virtual_times():
    clock = VirtualClock(autojump_threshold=0)
    loop = EventLoop(clock)
    fired: list[tuple[str, float]] = []
    loop.call_later(300, lambda: fired.append(("b", clock.time())))
    loop.call_later(20, lambda: fired.append(("a", clock.time())))
    loop.call_later(3600, lambda: (fired.append(("c", clock.time())), loop.stop()))
    try:
        loop.run()  # would take an hour on the real clock
    finally:
        loop.close()
    assert fired == [("a", 20.0), ("b", 300.0), ("c", 3600.0)]
    assert clock.jumps == 3


def test_autojump_serves_ready_sockets_before_jumping():
    clock = VirtualClock(autojump_threshold=0)
    loop = EventLoop(clock)
    left, right = socket.socketpair()
    seen: list[tuple[bytes, float]] = []

    def readable() -> None:
        seen.append((left.recv(100), clock.time()))
        loop.remove_reader(left)

    loop.add_reader(left, readable)
    loop.call_later(60, loop.stop)
    right.sendall(b"ready")
    try:
        loop.run()
    finally:
        loop.close()
        left.close()
        right.close()
    assert seen == [(b"ready", 0.0)]  # read before time jumped to the timer
    assert clock.time() == 60.0


def test_advance_from_another_thread_wakes_a_loop_blocked_on_virtual_time():
    clock = VirtualClock()
    loop = EventLoop(clock)
    fired = threading.Event()
    reached: list[float] = []
    loop.call_later(300, lambda: (reached.append(clock.time()), fired.set(), loop.stop()))
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        turned = threading.Event()
        clock.advance(299.0)
        loop.call_soon_threadsafe(turned.set)  # the loop has looked at 299 s: not yet
        assert turned.wait(DEADLINE)
        assert not fired.is_set() and reached == []
        clock.advance(1.0)
        assert fired.wait(DEADLINE)
        assert reached == [300.0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(DEADLINE)
        loop.close()
    assert not clock._wakers, "a closed loop is no longer woken by the clock"


def test_an_embedded_300s_control_timeout_on_virtual_time():
    clock = VirtualClock()
    with FTPServer(MemoryFS({}), users={"u": "p"}, clock=clock, timeout=300) as server:
        assert server.clock is clock
        with RawControl("127.0.0.1", server.port) as c:
            c.login("u", "p")
            clock.advance(299.0)
            loop_turns(server)
            assert c.silent(), "cut before the timeout"
            assert c.cmd("NOOP")[0] == 200  # a whole command: the 300 s start again
            clock.advance(299.0)
            loop_turns(server)
            assert c.silent(), "the NOOP did not count as activity"
            clock.advance(1.0)
            code, text = c.reply()
            assert code == 421, text
            assert c.wait_closed()
    assert clock.time() == 599.0


def test_the_sessions_clock_is_tied_to_the_virtual_clock():
    clock = VirtualClock(epoch=1_000_000.0)
    times: list[float] = []
    with FTPServer(MemoryFS({}), users={"u": "p"}, clock=clock) as server:
        server.bus.register("session.login", lambda data, name: times.append(data.time))
        clock.advance(42.0)
        with RawControl("127.0.0.1", server.port) as c:
            c.login("u", "p")
            loop_turns(server)  # the event follows the reply
    assert times == [1_000_042.0]  # the epoch plus the virtual time of the login


def test_autojump_can_be_switched_on_while_serving():
    clock = VirtualClock()
    with FTPServer(MemoryFS({}), users={"u": "p"}, clock=clock, timeout=900) as server:
        with RawControl("127.0.0.1", server.port) as c:
            c.login("u", "p")
            loop_turns(server)
            assert c.silent()
            clock.autojump_threshold = 0
            assert c.reply()[0] == 421  # at once in real time, 900 s in virtual time
            assert clock.time() >= 900.0
            clock.autojump_threshold = math.inf


def test_shutdown_timeout_on_virtual_time(tmp_path):
    """A graceful stop waits for a running transfer, --shutdown-timeout long at most."""
    with open(tmp_path / "big.bin", "wb") as f:  # sparse: more than socket buffers hold
        f.truncate(64 << 20)
    clock = VirtualClock()
    server = FTPServer(str(tmp_path), users={"u": "p"}, clock=clock, timeout=0,
                       data_timeout=0, shutdown_timeout=60).start()
    assert server._thread is not None
    with RawControl("127.0.0.1", server.port) as c:
        c.login("u", "p")
        c.expect("TYPE I", 200)
        host, port = c.pasv()
        with socket.create_connection((host, port), timeout=DEADLINE) as data:
            data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.expect("RETR big.bin", 150)  # and never read: it cannot finish
            server.server.stop()
            loop_turns(server)
            clock.advance(60 - 1 / 16)
            loop_turns(server)
            assert server._thread.is_alive() and c.silent(), "stopped before the timeout"
            clock.advance(1 / 16)
            server._thread.join(DEADLINE)
            assert not server._thread.is_alive()
            assert c.wait_closed()


def test_watchdog_pings_at_half_the_interval_on_virtual_time():
    """WATCHDOG_USEC=500000: a ping at start, then one every 0.25 s, none in between."""
    clock = VirtualClock()
    sent: list[tuple[str, float]] = []
    launch = LaunchContext("systemd", listeners=[Endpoint(bind("127.0.0.1", 0))],
                           notify=lambda m: sent.append((m, clock.time())),
                           watchdog_usec=500_000)
    server = Server(launch, SessionConfig(), ChainAuthorizer(), ServerOptions(), clock=clock)
    thread = threading.Thread(target=server.serve)
    thread.start()

    def pings() -> list[float]:
        return [when for message, when in list(sent) if message == "WATCHDOG=1"]

    try:
        assert server.wait_started()
        assert pings() == [0.0]
        for n in range(1, 6):
            clock.advance(0.25 - 1 / 16)
            loop_turns(server)
            assert len(pings()) == n, "pinged before half the interval"
            clock.advance(1 / 16)
            loop_turns(server)
            assert len(pings()) == n + 1
        assert pings() == [0.25 * n for n in range(6)]
    finally:
        server.stop()
        thread.join(DEADLINE)
    assert not thread.is_alive()
    assert ("READY=1", 0.0) in sent


TIME_READS = re.compile(r"\btime\.(monotonic|perf_counter|sleep)\(|\bfrom time import\b")


def test_io_timers_read_the_loops_clock_only():
    io_dir = Path(ftpd.io.__file__).parent
    files = [*io_dir.glob("*.py"), io_dir.parent / "embed.py"]
    offenders = [f"{path.name}:{n}: {line.strip()}"
                 for path in files if path.name != "clock.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if TIME_READS.search(line)]
    assert len(files) >= 8
    assert offenders == []
