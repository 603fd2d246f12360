"""Aborted and incomplete transfers are reported honestly: the NcFTPd event's status
token (ABOR, INCOMPLETE, OK) and the xferlog completion field (``i`` or ``c``)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from ftpsupport import wait_until
from hhelpers import Control, UdpEvents, read_all, reset_close

BIG = 256 << 20


def _xferlog(path: Path, count: int) -> list[list[str]]:
    """The first *count* xferlog lines, split into their fields (18 of them)."""
    def lines() -> list[str]:
        return path.read_text().splitlines() if path.exists() else []
    wait_until(lambda: len(lines()) >= count, f"{count} xferlog line(s)", timeout=3.0)
    out = [line.split() for line in lines()]
    for fields in out:
        assert len(fields) == 18, fields
    return out


def _abor(c: Control) -> None:
    """ABOR the way Telnet-aware clients send it: IAC IP, IAC DM as urgent data."""
    c.send(b"\xff\xf4\xff", 0)
    c.send(b"\xf2", socket.MSG_OOB)
    c.send(b"ABOR\r\n")


@pytest.fixture
def served(ftpd, tmp_path):
    events = UdpEvents()
    xferlog = tmp_path / "xferlog"
    server = ftpd("--event-sink", events.spec, "--xferlog", str(xferlog))
    with open(server.root / "big.bin", "wb") as f:
        f.truncate(BIG)
    (server.root / "small.txt").write_bytes(b"all of it\n")
    yield server, events, xferlog
    events.close()


def test_abor_during_download_is_reported_as_abor_and_incomplete(served):
    server, events, xferlog = served
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        data = c.data()
        with data:
            c.ok("RETR big.bin", 150)
            got = 0
            for _ in range(1000):  # some of it, not all
                got += len(data.recv(65536))
                if got >= 256 * 1024:
                    break
            _abor(c)
            code, text = c.reply()
            assert code == 426, text
            code, text = c.reply()
            assert code == 226, text
            try:
                read_all(data, limit=BIG)  # the server closed the data connection
            except ConnectionResetError:
                pass
        c.ok("NOOP", 200)
        data = c.data()
        with data:
            c.ok("RETR small.txt", 150)
            assert read_all(data) == b"all of it\n"
        assert c.reply()[0] == 226
    (aborted, _), (complete, _) = events.wait_transfers("R", 2)
    assert (aborted.path, aborted.status) == ("/big.bin", "ABOR"), aborted
    assert 0 < aborted.bytes < BIG
    assert (complete.path, complete.status, complete.bytes) == ("/small.txt", "OK", 10)
    first, second = _xferlog(xferlog, 2)
    assert (first[8], first[11], first[17]) == ("/big.bin", "o", "i"), first
    assert int(first[7]) < BIG
    assert (second[8], second[7], second[11], second[17]) == ("/small.txt", "10", "o", "c")


def test_abor_during_upload_is_reported(served):
    server, events, xferlog = served
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        data = c.data()
        with data:
            c.ok("STOR up.bin", 150)
            data.sendall(b"u" * 100_000)
            path = server.root / "up.bin"
            wait_until(lambda: path.exists() and path.stat().st_size >= 100_000,
                       "the bytes on disk")
            _abor(c)
            assert c.reply()[0] == 426
            assert c.reply()[0] == 226
        c.ok("NOOP", 200)
    ((event, _),) = events.wait_transfers("S", 1)
    assert (event.path, event.status, event.bytes) == ("/up.bin", "ABOR", 100_000)
    (line,) = _xferlog(xferlog, 1)
    assert (line[8], line[7], line[11], line[17]) == ("/up.bin", "100000", "i", "i"), line


def test_reset_download_is_reported_incomplete(served):
    server, events, xferlog = served
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        data = c.data(rcvbuf=8192)
        c.ok("RETR big.bin", 150)
        data.recv(4096)  # the transfer is under way
        reset_close(data)
        code, text = c.reply()
        assert code == 426, text
        c.ok("NOOP", 200)
    ((event, _),) = events.wait_transfers("R", 1)
    assert (event.path, event.status) == ("/big.bin", "INCOMPLETE"), event
    (line,) = _xferlog(xferlog, 1)
    assert (line[8], line[11], line[17]) == ("/big.bin", "o", "i"), line


def test_abor_without_transfer_is_225(served):
    server, events, _ = served
    with server.control(login=True) as c:
        c.pasv()
        c.ok("ABOR", 225)
        c.ok("ABOR", 225)
        c.ok("NOOP", 200)
    # the logout event comes after any the session raised before it (one socket, in order)
    wait_until(lambda: any(toks[0] == "O" for toks, _ in list(events.frames)),
               "the logout event")
    assert events.transfers("R") == [] and events.transfers("S") == []
