"""Rate limits (SPEC §10: ``max-rate`` per user, ``--max-rate`` for everyone else) on
virtual time: the bucket refills only as the loop's clock moves, and with no other timer
(``timeout=0``, ``data_timeout=0``) the clock moves only when a throttled transfer waits.
So "a 4 MiB transfer at 1 MiB/s takes at least 3 s" is a fact about virtual seconds,
deterministic and fast; an unlimited transfer builds no limiter at all."""

from __future__ import annotations

import ftplib
import hashlib
import io
import math
import os
import socket

import pytest
from limitsupport import Accounts

from ftpd.embed import FTPServer
from ftpd.io import ratelimit
from ftpd.io.clock import VirtualClock
from ftpd.io.loop import EventLoop

MIB = 1 << 20
SIZE = 4 * MIB
PAYLOAD = os.urandom(SIZE)


@pytest.fixture
def counted(monkeypatch):
    """Every TokenBucket built, for the test to count."""
    built: list[ratelimit.TokenBucket] = []

    class Counted(ratelimit.TokenBucket):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(ratelimit, "TokenBucket", Counted)
    return built


def serve(tmp_path, max_rate: int = 0, **limits: dict) -> FTPServer:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "big").write_bytes(PAYLOAD)
    clock = VirtualClock(autojump_threshold=0)
    server = FTPServer(str(root), clock=clock, timeout=0, data_timeout=0, max_rate=max_rate)
    server.server.authorizer = Accounts(str(root), **limits)
    return server


def login(server: FTPServer, user: str) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=60)
    ftp.connect("127.0.0.1", server.port)
    ftp.login(user, "x")
    return ftp


def timed_retr(server: FTPServer, ftp: ftplib.FTP) -> tuple[float, bytes]:
    start, chunks = server.clock.time(), []
    ftp.retrbinary("RETR big", chunks.append)
    return server.clock.time() - start, b"".join(chunks)


def timed_stor(server: FTPServer, ftp: ftplib.FTP, name: str) -> float:
    start = server.clock.time()
    ftp.storbinary(f"STOR {name}", io.BytesIO(PAYLOAD))
    return server.clock.time() - start


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_users_max_rate_bounds_retr_and_stor_from_below(tmp_path, counted):
    with serve(tmp_path, slow={"max_rate": MIB}, free={}) as server:
        slow, free = login(server, "slow"), login(server, "free")
        seconds, data = timed_retr(server, slow)
        assert seconds >= 3.0, f"4 MiB at 1 MiB/s in {seconds} virtual seconds"
        assert digest(data) == digest(PAYLOAD)
        seconds = timed_stor(server, slow, "up")
        assert seconds >= 3.0, f"4 MiB up at 1 MiB/s in {seconds} virtual seconds"
        assert digest((tmp_path / "root" / "up").read_bytes()) == digest(PAYLOAD)
        limiters = len(counted)
        assert limiters == 2  # one bucket per direction for the limited session
        _seconds, data = timed_retr(server, free)  # unlimited: completes, builds nothing
        free.storbinary("STOR up2", io.BytesIO(PAYLOAD))
        assert digest(data) == digest(PAYLOAD)
        assert digest((tmp_path / "root" / "up2").read_bytes()) == digest(PAYLOAD)
        assert len(counted) == limiters
        slow.quit()
        free.quit()


def test_the_unlimited_path_builds_no_limiter(tmp_path, counted):
    with serve(tmp_path, free={}) as server:
        ftp = login(server, "free")
        _seconds, data = timed_retr(server, ftp)
        ftp.storbinary("STOR up", io.BytesIO(PAYLOAD))
        ftp.sendcmd("TYPE A")
        ftp.retrbinary("RETR big", lambda chunk: None)
        ftp.quit()
    assert digest(data) == digest(PAYLOAD)
    assert counted == []


def test_anonymous_under_max_rate_is_limited_and_a_user_may_be_exempt(tmp_path, counted):
    with serve(tmp_path, max_rate=MIB, exempt={"max_rate": 0}) as server:
        anonymous = login(server, "anonymous")
        seconds, data = timed_retr(server, anonymous)
        assert seconds >= 3.0, f"4 MiB at --max-rate 1M in {seconds} virtual seconds"
        assert digest(data) == digest(PAYLOAD)
        limiters = len(counted)
        exempt = login(server, "exempt")  # max-rate = 0 in the users file: unlimited
        _seconds, data = timed_retr(server, exempt)
        assert digest(data) == digest(PAYLOAD)
        assert len(counted) == limiters
        anonymous.quit()
        exempt.quit()


def test_the_bucket_lasts_the_session_so_small_transfers_get_no_fresh_burst(tmp_path):
    with serve(tmp_path, slow={"max_rate": MIB}) as server:
        ftp = login(server, "slow")
        start = server.clock.time()
        for _ in range(4):  # 4 x 1 MiB: the burst (a quarter second's worth) comes once
            chunks: list[bytes] = []
            ftp.voidcmd("TYPE I")
            conn = ftp.transfercmd("RETR big", rest=SIZE - MIB)
            with conn:
                while data := conn.recv(65536):
                    chunks.append(data)
            ftp.voidresp()
            assert b"".join(chunks) == PAYLOAD[-MIB:]
        assert server.clock.time() - start >= 3.0
        ftp.quit()


# -- the loop's hold ----------------------------------------------------------------------
def test_a_held_socket_reports_nothing_until_its_hold_ends():
    clock = VirtualClock()
    loop = EventLoop(clock)
    a, b = socket.socketpair()
    try:
        seen: list[bytes] = []

        def readable() -> None:
            try:
                seen.append(a.recv(10))
            except BlockingIOError:
                pass

        a.setblocking(False)
        loop.add_reader(a, readable)
        loop.hold(a, 1.0)
        b.send(b"x")
        assert not loop.selector.registered(a.fileno())  # select cannot report it
        loop.remove_reader(a)
        loop.add_reader(a, readable)  # noted, not registered, while held
        assert not loop.selector.registered(a.fileno())
        clock.advance(1.0)
        loop._run_once()  # the hold ends: watched again, and its reader runs once
        assert loop.selector.registered(a.fileno())
        assert seen and seen[0] == b"x"
        loop.hold(a, 5.0)
        loop.forget(a)  # forgetting ends the hold: nothing comes back to life
        clock.advance(10.0)
        loop._run_once()
        assert not loop.selector.registered(a.fileno())
        assert seen == [b"x"]
    finally:
        a.close()
        b.close()
        loop.close()


def test_limited_listings_ascii_transfers_and_abor(tmp_path):
    with serve(tmp_path, slow={"max_rate": 256 << 10}) as server:
        ftp = login(server, "slow")
        assert "big" in ftp.nlst()
        ftp.sendcmd("TYPE A")
        lines: list[str] = []
        (tmp_path / "root" / "text").write_bytes(b"line\n" * 100_000)
        start = server.clock.time()
        ftp.retrlines("RETR text", lines.append)
        assert lines == ["line"] * 100_000
        assert server.clock.time() - start >= 1.0  # 600 KB of CRLF text at 256 KiB/s
        ftp.sendcmd("TYPE I")
        server.clock.autojump_threshold = math.inf  # time stands still: the bucket stays empty
        conn = ftp.transfercmd("RETR big")
        assert conn.recv(65536)
        ftp.putcmd("ABOR")  # a held transfer ends at once; the session goes on
        conn.close()
        assert ftp.getmultiline().startswith("426")
        assert ftp.voidresp().startswith("226")
        assert ftp.sendcmd("NOOP").startswith("200")
        ftp.quit()


def test_both_pollers_report_readiness_alike():
    """The epoll poller and the selectors fallback (no epoll: macOS) give the loop the
    same (fd, mask, data) for the same sockets."""
    import socket

    from ftpd.io.poller import EVENT_READ, EVENT_WRITE, EpollPoller, SelectorsPoller

    for poller in (EpollPoller(), SelectorsPoller()):
        a, b = socket.socketpair()
        try:
            poller.register(a, EVENT_READ, "data")
            assert poller.registered(a.fileno()) and poller.select(0) == []
            b.send(b"x")
            assert poller.select(0) == [(a.fileno(), EVENT_READ, "data")]
            poller.modify(a, EVENT_READ | EVENT_WRITE, "both")
            assert poller.select(0) == [(a.fileno(), EVENT_READ | EVENT_WRITE, "both")]
            poller.unregister(a)
            assert not poller.registered(a.fileno()) and poller.select(0) == []
        finally:
            poller.close()
            a.close()
            b.close()
