"""A filesystem plugin that raises in the middle of a transfer (issue 10, point 3): the
data channel ends that one transfer with 426 and one logged traceback, the session goes
on, and nothing stays armed that would call the failing code again (the loop used to
spin at 100 % CPU, logging the same traceback hundreds of thousands of times).

"No spinning" is proved by counting: how often the failing method was called, and how
many log records the failure produced."""

from __future__ import annotations

import io
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hhelpers import Control, open_data

from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS


class PluginBug(RuntimeError):
    """What a buggy plugin raises (not an OSError: nothing maps it to a reply)."""


class FailingReader(io.RawIOBase):
    """Yields one chunk, then raises on every further read()."""

    def __init__(self, counter: list[int]) -> None:
        self.counter = counter
        self.first = True

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        self.counter[0] += 1
        if self.first:
            self.first = False
            return b"x" * 1000
        raise PluginBug("read() failed")


class FailingWriter(io.RawIOBase):
    def __init__(self, counter: list[int]) -> None:
        self.counter = counter

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:  # type: ignore[override]
        self.counter[0] += 1
        raise PluginBug("write() failed")


class BuggyFS(MemoryFS):
    """MemoryFS whose ``bad*`` files fail on read/write and whose ``/big`` directory
    fails to lstat its third entry."""

    def __init__(self) -> None:
        files = {"/good.txt": b"fine\n"}
        files.update({f"/big/f{i:02d}": b"." for i in range(10)})
        super().__init__(files)
        self.reads, self.writes, self.lstats = [0], [0], [0]

    def open_read(self, vpath: str) -> Any:
        if os.path.basename(vpath).startswith("bad"):
            return FailingReader(self.reads)
        return super().open_read(vpath)

    def open_write(self, vpath: str, **kwargs: Any) -> Any:
        if os.path.basename(vpath).startswith("bad"):
            return FailingWriter(self.writes)
        return super().open_write(vpath, **kwargs)

    def stat(self, vpath: str) -> os.stat_result:
        if os.path.basename(vpath).startswith("bad"):
            return super().stat("/good.txt")
        return super().stat(vpath)

    def lstat(self, vpath: str) -> os.stat_result:
        if vpath.startswith("/big/"):
            self.lstats[0] += 1
            if vpath == "/big/f02":
                raise PluginBug("lstat() failed")
        return super().lstat(vpath)


@pytest.fixture
def served(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[BuggyFS, FTPServer]]:
    caplog.set_level(logging.INFO)
    fs = BuggyFS()
    with FTPServer(fs, users={"user": "pw"}) as server:
        yield fs, server


def _drain(sock: socket.socket) -> bytes:
    got = bytearray()
    for _ in range(10_000):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    sock.close()
    return bytes(got)


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], PluginBug)]


def _run(server: FTPServer, command: str, payload: bytes | None = None) -> tuple[Control, bytes]:
    c = Control(server.port)
    c.login()
    c.expect("TYPE I", 200)
    data = c.data()
    c.expect(command, 150)
    if payload is None:
        got = _drain(data)
    else:
        try:
            data.sendall(payload)
        except OSError:
            pass  # the server may close its end first
        data.close()
        got = b""
    return c, got


def test_read_raising_ends_the_download_once(served, caplog):
    fs, server = served
    c, got = _run(server, "RETR bad.bin")
    code, text = c.reply()
    assert code == 426, text
    assert got == b"x" * 1000  # what came before the failure, then the end
    c.expect("NOOP", 200)  # the session goes on
    c.expect("RETR good.txt", 425)  # no data connection prepared: a normal reply
    assert fs.reads[0] == 2  # the good chunk and the failing one: never called again
    assert len(_tracebacks(caplog)) == 1
    c.close()


def test_write_raising_ends_the_upload_once(served, caplog):
    fs, server = served
    c, _ = _run(server, "STOR bad.bin", b"y" * 100_000)
    code, text = c.reply()
    assert code == 426, text
    c.expect("NOOP", 200)
    assert fs.writes[0] == 1
    assert len(_tracebacks(caplog)) == 1
    c.close()


def test_listing_generator_raising_ends_the_listing(served, caplog):
    fs, server = served
    c, got = _run(server, "LIST big")
    code, text = c.reply()
    assert code == 426, text  # never 226 for a listing cut short
    assert b"f09" not in got
    c.expect("NOOP", 200)
    assert fs.lstats[0] == 3  # f00, f01, then f02 raised: nothing after it
    assert len(_tracebacks(caplog)) == 1
    # a good transfer on the same session still works afterwards
    data = c.data()
    c.expect("RETR good.txt", 150)
    assert _drain(data) == b"fine\n"
    assert c.reply()[0] == 226
    c.close()


def test_other_sessions_are_served_meanwhile(served):
    _fs, server = served
    c, _ = _run(server, "RETR bad.bin")
    assert c.reply()[0] == 426
    other = Control(server.port)
    other.login()
    other.expect("TYPE I", 200)
    other.expect("NOOP", 200)
    host, port = other.pasv()
    data = open_data(host, port)
    other.expect("RETR good.txt", 150)
    assert _drain(data) == b"fine\n"
    assert other.reply()[0] == 226
    other.close()
    c.close()
