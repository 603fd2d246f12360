"""Logs never vanish: ``--log syslog``, ``journal`` or ``auto`` with no socket to send to
falls back (journal, then syslog, then stderr) and says so in one warning line."""

from __future__ import annotations

import logging
import socket

import pytest

from ftpd import logsetup
from ftpd.log import INFO


@pytest.fixture
def no_log_sockets(monkeypatch, tmp_path):
    """Neither /dev/log nor the journal's socket exists."""
    monkeypatch.setattr(logsetup, "SYSLOG_PATHS", (str(tmp_path / "no-dev-log"),))
    monkeypatch.setattr(logsetup.JournalHandler, "PATH", str(tmp_path / "no-journal"))
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)


@pytest.mark.parametrize("where", ["syslog", "journal", "auto"])
def test_missing_syslog_falls_back_to_stderr_with_one_warning(where, no_log_sockets,
                                                              ftpd_logger, capsys):
    handler = logsetup.setup(where, INFO, under_systemd=True, stderr_is_client=True)
    assert isinstance(handler, logging.StreamHandler)
    logging.getLogger("ftpd.test").info("after the fallback")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert "WARNING" in lines[0] and f"--log {where}:" in lines[0]
    assert "logging to stderr" in lines[0]
    assert lines[1].endswith("INFO after the fallback")


def test_missing_journal_falls_back_to_syslog(no_log_sockets, monkeypatch, tmp_path,
                                              ftpd_logger, capsys):
    dev_log = tmp_path / "log"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(dev_log))
    receiver.settimeout(5)
    monkeypatch.setattr(logsetup, "SYSLOG_PATHS", (str(dev_log),))
    try:
        logsetup.setup("journal", INFO)
        logging.getLogger("ftpd.test").info("to syslog")
        first = receiver.recv(4096).decode()
        second = receiver.recv(4096).decode()
    finally:
        receiver.close()
    assert "--log journal:" in first and "logging to syslog" in first
    assert "to syslog" in second
    assert capsys.readouterr().err == ""


def test_present_syslog_is_used_without_a_warning(monkeypatch, tmp_path, ftpd_logger, capsys):
    dev_log = tmp_path / "log"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(dev_log))
    receiver.settimeout(5)
    monkeypatch.setattr(logsetup, "SYSLOG_PATHS", (str(dev_log),))
    try:
        logsetup.setup("syslog", INFO)
        logging.getLogger("ftpd.test").info("only line")
        got = receiver.recv(4096).decode()
    finally:
        receiver.close()
    assert got.endswith("only line\x00") or got.endswith("only line")
    assert "WARNING" not in got and capsys.readouterr().err == ""
