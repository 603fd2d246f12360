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
