"""``--workers 2`` in the other launch modes: systemd Accept=no (systemd-socket-activate,
the real binary: READY=1 from the supervisor once both workers are up) and inetd wait
(``-W``) share the inherited sockets; ``-I`` and Accept=yes, a process per connection,
refuse it in one line with exit 2, as do ``--metrics`` and ``--pam`` beside it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess

import pytest
from ftpsupport import DEADLINE, free_port, read_text, wait_until
from lhelpers import Control, NotifySocket, connected_pair, wait_exit, wait_pid_gone
from workerhelp import children, quit_all, spread_sessions, wait_workers

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
needs_activate = pytest.mark.skipif(not os.path.exists(ACTIVATE),
                                    reason="systemd-socket-activate is not installed")


def activate(procs, tmp_path, port: int, command: list[str], *options: str,
             env: dict[str, str] | None = None) -> tuple[subprocess.Popen, object]:
    err = tmp_path / "activate.err"
    argv = [ACTIVATE, f"--listen=127.0.0.1:{port}", *options]
    for name, value in (env or {}).items():
        argv.append(f"--setenv={name}={value}")
    if "PYTHONPATH" in os.environ:
        argv.append("--setenv=PYTHONPATH")
    with open(err, "wb") as f:
        proc = procs.start([*argv, *command], stderr=f)
    wait_until(lambda: proc.poll() is None and "Listening on" in read_text(err),
               "systemd-socket-activate to listen")
    return proc, err


@needs_activate
def test_systemd_accept_no_with_two_workers(procs, tmp_path, served, ftpd):
    notify = NotifySocket(path=tmp_path / "notify")
    try:
        port = free_port()
        log = tmp_path / "ftpd.log"
        proc, _ = activate(procs, tmp_path, port,
                           [ftpd, "-r", str(served), "--workers", "2", "--log", str(log)],
                           env={"NOTIFY_SOCKET": notify.address})
        first = Control.connect("127.0.0.1", port)  # starts ftpd (exec'd: the same pid)
        assert first.reply()[0] == 220
        notify.wait_for(lambda m: m == "READY=1", "READY=1")
        assert read_text(log).count(" serving (pid ") == 2  # READY=1 once both are up
        pids = wait_workers(proc.pid, 2, log)
        sessions = spread_sessions(port, pids, 3)
        for ctl, _ in sessions:
            ctl.login()
        quit_all([*sessions, (first, 0)])
        os.kill(proc.pid, signal.SIGTERM)
        assert wait_exit(proc) == 0
        notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")
        for pid in pids:
            wait_pid_gone(pid)
        assert "Traceback" not in read_text(log)
    finally:
        notify.close()


@needs_activate
def test_systemd_accept_yes_refuses_workers_in_one_line(procs, tmp_path, served, ftpd):
    port = free_port()
    proc, err = activate(procs, tmp_path, port,
                         [ftpd, "-r", str(served), "--workers", "2"], "--accept")
    ctl = Control.connect("127.0.0.1", port)
    assert ctl.read_to_eof() == b"421 Service not available\r\n"
    wait_until(lambda: "died with code" in read_text(err), "the child's exit")
    assert "died with code 2" in read_text(err)
    ours = [line for line in read_text(err).splitlines() if line.startswith("ftpd")]
    assert len(ours) == 1 and "--workers" in ours[0] and "Accept=yes" in ours[0], ours


def test_dash_I_refuses_workers_in_one_line(ftpd, served, inetd_spawn, tmp_path):
    log = tmp_path / "ftpd.log"
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-I", "-r", str(served), "--workers", "2", "--log", str(log)],
                       server_side)
    assert Control(client).read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) == 2
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "--workers" in lines[0] and "-I" in lines[0], lines


def test_inetd_wait_with_two_workers(ftpd, served, procs, tmp_path):
    log = tmp_path / "ftpd.log"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        proc = procs.start([ftpd, "-W", "-t", "1", "--workers", "2", "-r", str(served),
                            "--log", str(log)], stdin=listener.fileno(),
                           stdout=listener.fileno(), stderr=listener.fileno())
    finally:
        listener.close()
    pids = wait_workers(proc.pid, 2, log)
    sessions = spread_sessions(port, pids, 2)
    for ctl, _ in sessions:
        ctl.login()
        ctl.expect("PWD", 257)
    quit_all(sessions)
    assert wait_exit(proc, 1 + DEADLINE) == 0  # --idle-timeout gives the socket back
    for pid in pids:
        wait_pid_gone(pid)


@pytest.mark.parametrize("args, named", [
    (["--metrics", "0"], "--metrics"),
    (["--workers", "0"], "--workers"),
    (["--workers", "65"], "--workers"),
], ids=["metrics", "zero", "too-many"])
def test_what_workers_cannot_share_is_refused_in_one_line(ftpd, served, args, named):
    argv = [ftpd, "-r", str(served), "-l", f"127.0.0.1:{free_port()}", "--workers", "2",
            *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and named in lines[0], lines


def test_pam_with_workers_is_refused_in_one_line(ftpd, served, tmp_path):
    config = tmp_path / "ftpd.toml"
    config.write_text("workers = 3\npam = true\n")
    done = subprocess.run([ftpd, "-r", str(served), "-c", str(config)], capture_output=True,
                          text=True, timeout=DEADLINE, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "--workers" in lines[0] and "--pam" in lines[0], lines


def test_a_worker_that_cannot_start_says_so_once(ftpd, served, tmp_path):
    """A start-up error met by each worker (an unwritable xferlog) is said once, by the
    first, and is the supervisor's exit code; no worker is left behind."""
    argv = [ftpd, "-r", str(served), "-l", f"127.0.0.1:{free_port()}", "--workers", "2",
            "--xferlog", str(tmp_path / "missing" / "xferlog")]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 1
    lines = err.splitlines()
    assert len(lines) == 1 and "--xferlog" in lines[0], lines
    assert children(proc.pid) == []
