"""Detaching (-d/--daemon with --pidfile), dropping root (--run-as), and --launchd-socket
away from macOS."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, free_port, read_text, wait_until
from lhelpers import Control, pids_with, proc_status, wait_listening, wait_pid_gone


def session(port: int) -> None:
    ctl = Control.connect("127.0.0.1", port)
    assert ctl.reply()[0] == 220
    ctl.login()
    ctl.expect("PWD", 257)
    ctl.expect("QUIT", 221)
    ctl.close()


def read_pid(path: Path) -> int:
    return int(path.read_text().split()[0])


class Daemonized:
    """``ftpd -d --pidfile P``; the daemon is not our child: stopped by its pid."""

    def __init__(self, procs, tmp_path: Path, served: Path, ftpd: str, pidfile: Path,
                 *args: str) -> None:
        self.port = free_port()
        self.pidfile = pidfile
        self.log = tmp_path / f"daemon-{self.port}.log"
        procs.mark(f"127.0.0.1:{self.port}")  # whatever happens, the daemon goes
        self.launcher = procs.start([ftpd, "-d", "--pidfile", str(pidfile), "-l",
                                     f"127.0.0.1:{self.port}", "-r", str(served), "--log",
                                     str(self.log), *args],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # the launcher returns (within a wait's deadline) while the daemon goes on
        self.out, self.err = self.launcher.communicate(timeout=DEADLINE)


def test_daemon_detaches_writes_the_pidfile_and_removes_it(procs, tmp_path, served, ftpd):
    pidfile = tmp_path / "ftpd.pid"
    daemon = Daemonized(procs, tmp_path, served, ftpd, pidfile)
    assert daemon.launcher.returncode == 0, daemon.err
    assert daemon.out == b"" and daemon.err == b""
    wait_until(pidfile.exists, "the pidfile")
    wait_until(lambda: pidfile.read_text().strip().isdigit(), "a pid in the pidfile")
    pid = read_pid(pidfile)
    assert pid != daemon.launcher.pid
    assert pids_with(f"127.0.0.1:{daemon.port}") == [pid]
    assert proc_status(pid, "PPid") != str(os.getpid()), "not detached from its parent"
    wait_listening(daemon.port)
    session(daemon.port)
    assert os.getsid(pid) != os.getsid(0), "still in the launching shell's session"
    os.kill(pid, signal.SIGTERM)
    wait_pid_gone(pid)
    assert not pidfile.exists(), "the pidfile outlived the daemon"
    assert "Traceback" not in read_text(daemon.log)


def test_daemon_refuses_a_pidfile_held_by_a_running_daemon(procs, tmp_path, served, ftpd):
    pidfile = tmp_path / "ftpd.pid"
    first = Daemonized(procs, tmp_path, served, ftpd, pidfile)
    assert first.launcher.returncode == 0
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(),
               "the first daemon's pidfile")
    pid = read_pid(pidfile)
    try:
        second = Daemonized(procs, tmp_path, served, ftpd, pidfile)
        assert second.launcher.returncode == 1, "a second daemon on a held pidfile"
        lines = second.err.decode().splitlines()
        assert len(lines) == 1 and "--pidfile" in lines[0] and str(pid) in lines[0], lines
        assert read_pid(pidfile) == pid
        assert pids_with(f"127.0.0.1:{second.port}") == []
        session(first.port)
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_pid_gone(pid)


def test_daemon_replaces_a_stale_pidfile(procs, tmp_path, served, ftpd):
    gone = subprocess.Popen(["true"])
    gone.wait(DEADLINE)
    pidfile = tmp_path / "ftpd.pid"
    pidfile.write_text(f"{gone.pid}\n")  # left behind by a daemon that was killed
    daemon = Daemonized(procs, tmp_path, served, ftpd, pidfile)
    assert daemon.launcher.returncode == 0, daemon.err
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit()
               and read_pid(pidfile) != gone.pid, "the daemon's own pid in the pidfile")
    pid = read_pid(pidfile)
    wait_listening(daemon.port)
    session(daemon.port)
    os.kill(pid, signal.SIGTERM)
    wait_pid_gone(pid)
    assert not pidfile.exists()


def test_pidfile_without_daemon_is_a_usage_error(ftpd, served, procs, tmp_path):
    proc = procs.start([ftpd, "--pidfile", str(tmp_path / "x.pid"), "-r", str(served),
                        "-l", f"127.0.0.1:{free_port()}"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "--pidfile" in lines[0], err
    assert not (tmp_path / "x.pid").exists()


# -- --run-as -------------------------------------------------------------------------------
@pytest.fixture
def world_readable_root():
    """Served files that nobody can read: under /tmp, not under pytest's 0700 tmp dir."""
    root = Path(tempfile.mkdtemp(prefix="ftpd-runas-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        (root / "hello.txt").write_bytes(b"hello\r\n")
        os.chmod(root / "hello.txt", 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs root")
def test_run_as_drops_root_after_binding(procs, ftpd, world_readable_root):
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="ftpd-runas-log-", dir="/tmp"))
    try:
        os.chmod(log_dir, 0o777)
        log = log_dir / "ftpd.log"
        proc = procs.start([ftpd, "-l", f"127.0.0.1:{port}", "-r", str(world_readable_root),
                            "--run-as", "nobody", "--log", str(log)])
        wait_listening(port, proc)
        ctl = Control.connect("127.0.0.1", port)
        assert ctl.reply()[0] == 220  # the loop runs: privileges are dropped by now
        uids = proc_status(proc.pid, "Uid").split()
        gids = proc_status(proc.pid, "Gid").split()
        assert uids == [str(nobody.pw_uid)] * 4, uids
        assert gids == [str(nobody.pw_gid)] * 4, gids
        assert proc_status(proc.pid, "Groups") in ("", str(nobody.pw_gid))
        ctl.expect("NOOP", 200)
        ctl.expect("QUIT", 221)
        ctl.close()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(DEADLINE) == 0
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs root")
def test_run_as_still_serves_sessions(procs, ftpd, world_readable_root):
    port = free_port()
    proc = procs.start([ftpd, "-l", f"127.0.0.1:{port}", "-r", str(world_readable_root),
                        "--run-as", "nobody", "--log", "syslog"])
    wait_listening(port, proc)
    ctl = Control.connect("127.0.0.1", port)
    ctl.sock.settimeout(2.0)  # every reply here is immediate
    assert ctl.reply()[0] == 220
    ctl.login()
    ctl.expect("TYPE I", 200)
    assert ctl.expect("SIZE hello.txt", 213) == "7"
    data = ctl.epsv()
    ctl.expect("RETR hello.txt", 150)
    body = b""
    while chunk := data.recv(65536):
        body += chunk
    data.close()
    assert body == b"hello\r\n"
    assert ctl.reply()[0] == 226
    data = ctl.epsv()
    ctl.expect("LIST", 150)
    listing = b""
    while chunk := data.recv(65536):
        listing += chunk
    data.close()
    assert b"hello.txt" in listing
    assert ctl.reply()[0] == 226
    ctl.expect("QUIT", 221)
    ctl.close()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(DEADLINE) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs root")
def test_run_as_unknown_user_is_a_usage_error(procs, ftpd, served):
    proc = procs.start([ftpd, "-l", f"127.0.0.1:{free_port()}", "-r", str(served),
                        "--run-as", "no-such-user-ftpd-test"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "--run-as" in lines[0], err


@pytest.fixture
def runas_dir():
    """A 0755 directory under /tmp (pytest's own tmp dir is 0700: nobody sees in)."""
    path = Path(tempfile.mkdtemp(prefix="ftpd-runas-files-", dir="/tmp"))
    try:
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _users_file(path: Path, home: Path, *names: str) -> None:
    from ftpd.auth.users import UserEntry, hash_password, save_users

    save_users(path, {n: UserEntry(hash_password(f"{n}-pw", n=2**4), str(home), "elr")
                      for n in names})


def _start_error(procs, ftpd: str, root: Path, *args: str) -> str:
    proc = procs.start([ftpd, "-l", f"127.0.0.1:{free_port()}", "-r", str(root),
                        "--run-as", "nobody", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2, err
    lines = err.decode().splitlines()
    assert out == b"" and len(lines) == 1, err
    return lines[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs root")
def test_run_as_with_a_users_file_it_cannot_read_is_a_start_up_error(
        procs, ftpd, world_readable_root, runas_dir):
    users = runas_dir / "users.toml"
    _users_file(users, world_readable_root, "alice")  # root:root 0600
    line = _start_error(procs, ftpd, world_readable_root, "--users", str(users))
    assert f"--users {users}" in line and "nobody" in line
    assert f"chmod g+r {users}" in line and "chgrp nogroup" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs root")
def test_run_as_with_an_xferlog_it_cannot_append_to_is_a_start_up_error(
        procs, ftpd, world_readable_root, runas_dir):
    xferlog = runas_dir / "xferlog"
    xferlog.write_text("")
    os.chmod(xferlog, 0o644)  # root's
    line = _start_error(procs, ftpd, world_readable_root, "--xferlog", str(xferlog))
    assert f"--xferlog {xferlog}" in line and f"chown nobody:nogroup {xferlog}" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs root")
def test_run_as_sighup_reloads_what_ftpd_passwd_wrote(procs, ftpd, world_readable_root,
                                                      runas_dir):
    """root:nogroup 0640, as an operator sets it up for --run-as nobody: ftpd-passwd
    rewrites it, SIGHUP reloads it; an xferlog we create is the account's."""
    import grp

    users, xferlog = runas_dir / "users.toml", runas_dir / "xferlog"
    _users_file(users, world_readable_root, "alice")
    os.chown(users, 0, grp.getgrnam("nogroup").gr_gid)
    os.chmod(users, 0o640)
    log = runas_dir / "ftpd.log"
    port = free_port()
    proc = procs.start([ftpd, "-l", f"127.0.0.1:{port}", "-r", str(world_readable_root),
                        "--run-as", "nobody", "--users", str(users), "-n", "--log", str(log),
                        "--xferlog", str(xferlog), "--failed-login-delay", "0"])
    wait_listening(port, proc)
    wait_until(lambda: "listening on" in read_text(log), "start-up done")
    assert os.stat(xferlog).st_uid == pwd.getpwnam("nobody").pw_uid
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    subprocess.run([sys.executable, "-m", "ftpd.passwd", "-f", str(users), "add", "bob",
                    "--home", str(world_readable_root), "--password", "bob-pw"],
                   check=True, env=env, timeout=DEADLINE, capture_output=True)
    os.kill(proc.pid, signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in read_text(log), "the reload")
    ctl = Control.connect("127.0.0.1", port)
    assert ctl.reply()[0] == 220
    ctl.login("bob", "bob-pw")
    ctl.expect("QUIT", 221)
    ctl.close()
    assert "Traceback" not in read_text(log)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(DEADLINE) == 0


# -- launchd ---------------------------------------------------------------------------------
@pytest.mark.skipif(sys.platform == "darwin", reason="the error is for systems without launchd")
def test_launchd_socket_elsewhere_than_macos_is_one_clear_line(procs, ftpd, served):
    proc = procs.start([ftpd, "--launchd-socket", "Listeners", "-r", str(served)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2
    assert out == b""
    lines = err.decode().splitlines()
    assert len(lines) == 1, err
    assert "launchd" in lines[0] and "macOS" in lines[0], lines
