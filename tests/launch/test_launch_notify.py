"""sd_notify without socket activation: a ``Type=notify`` service may let ftpd bind its
own port (standalone), hand it a listening socket (``-W``) or have it detach (``-d``);
whenever NOTIFY_SOCKET is set, systemd hears READY=1, STATUS=, STOPPING=1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest
from ftpsupport import free_port, read_text, wait_until
from lhelpers import Control, NotifySocket, status_sessions, wait_exit, wait_pid_gone


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(path=tmp_path / "notify")
    try:
        yield sock
    finally:
        sock.close()


def session_seen(notify: NotifySocket, port: int) -> None:
    """A client logs in: READY=1 came first, then a STATUS= counting it."""
    ready = notify.wait_for(lambda m: m == "READY=1", "READY=1")
    ctl = Control.connect("127.0.0.1", port)
    assert ctl.reply()[0] == 220
    ctl.login()
    notify.wait_for(lambda m: status_sessions(m) == 1, "STATUS= with 1 session", since=ready)
    ctl.expect("QUIT", 221)
    ctl.close()


def test_standalone_notifies_ready_status_and_stopping(procs, tmp_path, served, ftpd, notify):
    port = free_port()
    log = tmp_path / "ftpd.log"
    proc = procs.start([ftpd, "-l", f"127.0.0.1:{port}", "-r", str(served), "--log", str(log)],
                       env={**os.environ, "NOTIFY_SOCKET": notify.address})
    session_seen(notify, port)
    os.kill(proc.pid, signal.SIGTERM)
    assert wait_exit(proc) == 0
    notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")
    assert "Traceback" not in read_text(log)


def test_standalone_feeds_the_watchdog(procs, tmp_path, served, ftpd, notify):
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"}
    proc = procs.start([ftpd, "-l", f"127.0.0.1:{port}", "-r", str(served), "--log",
                        str(tmp_path / "ftpd.log")], env=env)
    ready = notify.wait_for(lambda m: m == "READY=1", "READY=1")
    notify.wait_for(lambda m: m == "WATCHDOG=1", "WATCHDOG=1", since=ready)
    os.kill(proc.pid, signal.SIGTERM)
    assert wait_exit(proc) == 0


def test_inetd_wait_notifies_ready(procs, tmp_path, served, ftpd, notify):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        proc = procs.start([ftpd, "-W", "-r", str(served), "--log", str(tmp_path / "ftpd.log")],
                           stdin=listener.fileno(),
                           env={**os.environ, "NOTIFY_SOCKET": notify.address})
    finally:
        listener.close()
    session_seen(notify, port)
    os.kill(proc.pid, signal.SIGTERM)
    assert wait_exit(proc) == 0
    notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")


def test_daemon_notifies_ready_after_detaching(procs, tmp_path, served, ftpd, notify):
    port = free_port()
    pidfile = tmp_path / "ftpd.pid"
    procs.mark(f"127.0.0.1:{port}")  # the daemon is not our child
    launcher = procs.start([ftpd, "-d", "--pidfile", str(pidfile), "-l", f"127.0.0.1:{port}",
                            "-r", str(served), "--log", str(tmp_path / "ftpd.log")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ, "NOTIFY_SOCKET": notify.address})
    out, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 0, err
    session_seen(notify, port)
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), "the pidfile")
    pid = int(pidfile.read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    wait_pid_gone(pid)
    notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")
