"""Faults become replies: whatever a filesystem call raises reaches the client (550
for an OSError, 451 for anything else), is logged once, and the session goes on."""

from __future__ import annotations

import errno
import logging

import pytest
from ftpsupport import RawControl
from storage_helpers import FaultyFS

from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS

FAULTS = [
    pytest.param(OSError(errno.EIO, "Input/output error"), 550, id="OSError"),
    pytest.param(RuntimeError("the plugin has a bug"), 451, id="Exception"),
]
CALLS = [
    pytest.param("open_read", ["PASV"], "RETR hello.txt", id="open"),
    pytest.param("listdir", ["PASV"], "NLST", id="listdir"),
    pytest.param("stat", [], "SIZE hello.txt", id="stat"),
    pytest.param("stat", ["PASV"], "LIST", id="stat-list"),
    pytest.param("listdir", [], "STAT /", id="listdir-stat"),
    pytest.param("open_write", ["PASV"], "STOR new.txt", id="open-write"),
    pytest.param("mkdir", [], "MKD d", id="mkdir"),
    pytest.param("stat", [], "CWD /", id="stat-cwd"),
]


@pytest.mark.parametrize("fault,code", FAULTS)
@pytest.mark.parametrize("method,before,command", CALLS)
def test_a_fault_is_a_reply_and_one_log_line(method, before, command, fault, code, caplog):
    fs = FaultyFS(MemoryFS({"/hello.txt": b"hello\n"}))
    caplog.set_level(logging.WARNING, logger="ftpd")
    with FTPServer(fs, users={"alice": "pw"}) as server:
        with RawControl("127.0.0.1", server.port) as c:
            c.expect("USER alice", 331)
            c.expect("PASS pw", 230)
            c.expect("TYPE I", 200)
            for line in before:
                c.cmd(line)
            fs.faults[method] = fault
            got, text = c.cmd(command)
            fs.faults.clear()
            assert got == code, text
            assert c.cmd("NOOP")[0] == 200
            assert c.cmd("SIZE hello.txt") == (213, "213 6")
    verb = command.split()[0]
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert verb in lines[0].getMessage()


class _BadCloseWriter:
    """A writer whose close() (where an upload is committed) raises *fault*."""

    def __init__(self, fault: BaseException) -> None:
        self.fault = fault

    def write(self, data):
        return len(data)

    def close(self):
        raise self.fault


@pytest.mark.parametrize("fault,code", [
    pytest.param(OSError(28, "No space left on device"), 452, id="ENOSPC"),
    pytest.param(RuntimeError("the plugin's commit failed"), 451, id="Exception"),
])
def test_an_upload_whose_close_fails_gets_that_reply_and_the_session_goes_on(fault, code):
    import ftplib
    import io

    class Store(MemoryFS):
        def open_write(self, vpath, **kw):
            return _BadCloseWriter(fault)

    with FTPServer(Store(), users={"alice": "pw"}) as server:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=10)
        ftp.login("alice", "pw")
        with pytest.raises(ftplib.Error, match=f"^{code}"):
            ftp.storbinary("STOR x", io.BytesIO(b"data"))
        assert ftp.voidcmd("NOOP").startswith("200")
        ftp.quit()
