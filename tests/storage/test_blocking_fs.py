"""The storage boundary: the server never calls the filesystem on its event loop. A
filesystem whose every call blocks until the test releases it holds up only the
session that called it; other sessions, of other users and of the same user, are
answered meanwhile. Deterministic: the test releases the call only after the other
sessions' replies, so a server that called it on the loop could not answer them (and
the blocked call would give up after DEADLINE: ``gave_up``)."""

from __future__ import annotations

from ftpsupport import DEADLINE, RawControl, wait_until
from storage_helpers import BlockingFS

from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS


def _login(port: int, user: str, password: str) -> RawControl:
    c = RawControl("127.0.0.1", port)
    c.expect(f"USER {user}", 331)
    c.expect(f"PASS {password}", 230)
    return c


def test_a_blocked_call_holds_up_only_its_own_session():
    fs = BlockingFS(MemoryFS({"/hello.txt": b"hello\n"}))
    with FTPServer(fs, users={"alice": "pw"}) as server:
        with _login(server.port, "alice", "pw") as a:
            a.expect("TYPE I", 200)
            fs.armed = True
            a.send_line("SIZE hello.txt")
            a.send_line("NOOP")  # pipelined: waits behind the SIZE, in order
            assert fs.entered.wait(DEADLINE), "the SIZE never reached the filesystem"
            with _login(server.port, "alice", "pw") as same_user:
                same_user.expect("NOOP", 200)
                same_user.expect("PWD", 257)
            with _login(server.port, "anonymous", "guest@example.com") as other:
                other.expect("NOOP", 200)
            assert not fs.gave_up
            fs.release()
            assert a.reply() == (213, "213 6")
            assert a.reply()[0] == 200
            assert a.cmd("NOOP")[0] == 200
    assert not fs.gave_up
    assert fs.threads and all(name.startswith("ftpd-fs") for name in fs.threads), fs.threads


def test_a_download_through_the_pool_is_byte_for_byte():
    import ftplib
    import io

    payload = bytes(range(256)) * 1000
    fs = BlockingFS(MemoryFS({"/blob": payload}))
    with FTPServer(fs, users={"alice": "pw"}) as server:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=DEADLINE)
        ftp.login("alice", "pw")
        got = io.BytesIO()
        ftp.retrbinary("RETR blob", got.write)
        ftp.storbinary("STOR copy", io.BytesIO(payload))
        ftp.quit()
    assert got.getvalue() == payload
    assert fs.inner.open_read("/copy").read() == payload
    assert all(name.startswith("ftpd-fs") for name in fs.threads), fs.threads


def test_a_file_opened_for_a_client_that_left_meanwhile_is_closed():
    fs = BlockingFS(MemoryFS({"/hello.txt": b"hello\n"}))
    with FTPServer(fs, users={"alice": "pw"}) as server:
        with _login(server.port, "alice", "pw") as a:
            a.expect("TYPE I", 200)
            a.cmd("PASV")
            fs.armed = {"open_read"}
            a.send_line("RETR hello.txt")
            assert fs.entered.wait(DEADLINE)
        # the client has gone while the open (after RETR's stat) is under way
        with _login(server.port, "alice", "pw") as b:
            b.expect("NOOP", 200)
            fs.release()
            assert wait_until(lambda: len(fs.opened) == 1 and fs.opened[0].closed)
            b.expect("NOOP", 200)
    assert not fs.gave_up


def test_virtual_time_does_not_jump_while_a_call_is_out():
    """Under a VirtualClock that jumps to the next timer as soon as the loop is idle, a
    loop waiting for the worker pool is not idle: the control timeout must not fire
    while the filesystem call is under way (it would have answered 421)."""
    from ftpd.io.clock import VirtualClock

    class CountingClock(VirtualClock):
        turns = 0  # loop iterations that asked how long they may wait

        def select_timeout(self, delay):
            self.turns += 1
            return super().select_timeout(delay)

    clock = CountingClock()
    fs = BlockingFS(MemoryFS({"/hello.txt": b"hello\n"}))
    with FTPServer(fs, users={"alice": "pw"}, clock=clock, timeout=300) as server:
        with _login(server.port, "alice", "pw") as a:
            a.expect("TYPE I", 200)
            fs.armed = True
            a.send_line("SIZE hello.txt")
            assert fs.entered.wait(DEADLINE)
            mark = clock.turns
            clock.autojump_threshold = 0  # jump whenever the loop has nothing to do
            assert wait_until(lambda: clock.turns >= mark + 20)  # it went round, waiting
            jumps = clock.jumps
            clock.autojump_threshold = float("inf")
            fs.release()
            assert a.reply() == (213, "213 6")
            assert jumps == 0, "virtual time jumped while a call was out"
