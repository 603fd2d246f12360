"""Signals and lifetime in the foreground (standalone) mode: graceful stop on SIGTERM and
SIGINT (idle sessions 421, a running transfer finishes with 226 then 421), a second
signal stops at once, --shutdown-timeout, SIGHUP reloads, --idle-timeout."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, free_port, read_text, wait_until
from lhelpers import Control, assert_all_replies, ftpd_exe, wait_exit, wait_listening

BIG = 32 * 1024 * 1024


class Standalone:
    """``ftpd -l 127.0.0.1:PORT -r ROOT --log FILE -v ARGS`` in the foreground."""

    def __init__(self, procs, tmp_path: Path, root: Path, *args: str,
                 probe: bool = True) -> None:
        self.port = free_port()
        self.log = tmp_path / f"ftpd-{self.port}.log"
        self.err = tmp_path / f"ftpd-{self.port}.err"
        with open(self.err, "wb") as err:
            self.proc = procs.start([ftpd_exe(), "-l", f"127.0.0.1:{self.port}", "-r", str(root),
                                     "--log", str(self.log), "-v", "--failed-login-delay",
                                     "0", *args], stderr=err)
        wait_listening(self.port, self.proc)
        if probe:
            # the socket is bound before the signal handlers are in place; a greeting
            # means the loop runs, and they are
            ctl = self.control(login=False)
            ctl.expect("QUIT", 221)
            ctl.close()

    def control(self, login: bool = True, **kwargs) -> Control:
        ctl = Control.connect("127.0.0.1", self.port)
        code, text = ctl.reply()
        assert code == 220, text
        if login:
            ctl.login(**kwargs)
        return ctl

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def logged(self, text: str) -> bool:
        return text in read_text(self.log)

    def wait_logged(self, text: str, count: int = 1) -> None:
        wait_until(lambda: read_text(self.log).count(text) >= count,
                   f"{text!r} in the ftpd log")


@pytest.fixture
def big_root(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "big"
    root.mkdir()
    data = os.urandom(BIG)
    (root / "big.bin").write_bytes(data)
    (root / "small.txt").write_bytes(b"small\r\n")
    return root, hashlib.sha256(data).hexdigest()


def slow_reader(ctl: Control, name: str) -> socket.socket:
    """Start RETR *name* on a data connection with a small receive window."""
    ctl.expect("TYPE I", 200)
    text = ctl.expect("EPSV", 229)
    port = int(text.split("|||")[1].split("|")[0])
    data = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    data.settimeout(DEADLINE)
    data.connect(("127.0.0.1", port))
    ctl.expect(f"RETR {name}", 150)
    return data


def test_sigterm_during_a_download_finishes_it_then_421(procs, tmp_path, big_root):
    root, digest = big_root
    server = Standalone(procs, tmp_path, root)
    idle = server.control()
    busy = server.control()
    data = slow_reader(busy, "big.bin")
    sha = hashlib.sha256()
    received = 0
    signalled_at = None
    while chunk := data.recv(256 * 1024):
        sha.update(chunk)
        received += len(chunk)
        if signalled_at is None and received >= 2 * 1024 * 1024:
            server.signal(signal.SIGTERM)
            signalled_at = received
            # the idle session is told at once, while the transfer goes on
            assert idle.reply() == (421, "Server shutting down.")
            assert idle.read_to_eof() == b""
            server.wait_logged("stop signal")
            with pytest.raises(ConnectionRefusedError):  # no longer accepting
                socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    data.close()
    assert signalled_at is not None and signalled_at < BIG // 2
    assert received == BIG and sha.hexdigest() == digest
    code, _ = busy.reply()
    assert code == 226
    code, text = busy.reply()
    assert code == 421, text
    assert busy.read_to_eof() == b""
    assert_all_replies(busy.raw)
    assert wait_exit(server.proc) == 0
    assert "Traceback" not in read_text(server.log)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_stop_signal_gives_idle_sessions_421_and_exits_0(procs, tmp_path, served, sig):
    server = Standalone(procs, tmp_path, served)
    logged_in = server.control()
    greeted = server.control(login=False)
    server.signal(sig)
    for ctl in (logged_in, greeted):
        code, text = ctl.reply()
        assert code == 421, text
        assert ctl.read_to_eof() == b""
        assert_all_replies(ctl.raw)
    assert wait_exit(server.proc) == 0
    assert server.proc.returncode == 0


def test_stop_signal_with_no_session_exits_0_at_once(procs, tmp_path, served):
    # "at once": within the deadline of a wait, where draining would take an hour
    server = Standalone(procs, tmp_path, served, "--shutdown-timeout", "3600")
    server.signal(signal.SIGTERM)
    assert wait_exit(server.proc) == 0


def test_second_signal_stops_at_once(procs, tmp_path, big_root):
    root, _ = big_root
    server = Standalone(procs, tmp_path, root, "--shutdown-timeout", "3600")
    stuck = server.control()
    data = slow_reader(stuck, "big.bin")  # never read: the transfer cannot finish
    try:
        server.signal(signal.SIGTERM)
        server.wait_logged("stop signal")
        assert server.proc.poll() is None  # draining: waits for the transfer (an hour)
        server.signal(signal.SIGTERM)
        server.wait_logged("second stop signal")
        assert wait_exit(server.proc) == 0  # within a wait's deadline, not the hour
    finally:
        data.close()


def test_shutdown_timeout_closes_a_stuck_session(procs, tmp_path, big_root):
    root, _ = big_root
    server = Standalone(procs, tmp_path, root, "--shutdown-timeout", "1")
    stuck = server.control()
    data = slow_reader(stuck, "big.bin")
    try:
        start = time.monotonic()
        server.signal(signal.SIGTERM)
        assert wait_exit(server.proc) == 0
        assert time.monotonic() - start >= 1.0, "closed before --shutdown-timeout"
        stuck.read_to_eof()  # closed, whatever it said last
        assert_all_replies(stuck.raw)
    finally:
        data.close()


# -- SIGHUP ------------------------------------------------------------------------------
def write_users(path: Path, password: str, home: Path) -> None:
    from ftpd.auth.users import UserEntry, hash_password, save_users

    save_users(path, {"alice": UserEntry(hash_password(password, n=2**4), str(home),
                                         "elradfmw")})


def test_sighup_reloads_the_users_file_sessions_untouched(procs, tmp_path, served):
    users = tmp_path / "users.toml"
    write_users(users, "old-secret", served)
    server = Standalone(procs, tmp_path, served, "--users", str(users), "-n")
    session = server.control(user="alice", password="old-secret")
    session.expect("CWD pub", 250)
    write_users(users, "new-secret", served)
    server.signal(signal.SIGHUP)
    server.wait_logged("configuration reloaded")
    session.expect("PWD", 257)  # the logged-in session goes on
    session.expect("TYPE I", 200)
    assert session.expect("SIZE data.bin", 213) == str(256 * 64)
    fresh = server.control(login=False)
    fresh.expect("USER alice", 331)
    fresh.expect("PASS old-secret", 530)
    fresh.close()
    server.control(user="alice", password="new-secret").close()
    session.expect("QUIT", 221)
    assert server.proc.poll() is None


def _logged_by_one_reload(server: Standalone, before: str, restore) -> list[str]:
    """The lines a failed reload logged: *restore()* writes good files again, and a
    second SIGHUP's success line closes what the first one could have logged (signals
    are handled one after the other on the loop): no pause that hopes it was enough."""
    restore()
    server.signal(signal.SIGHUP)
    server.wait_logged("configuration reloaded")
    added = read_text(server.log)[len(before):].splitlines()
    end = next(i for i, line in enumerate(added) if "configuration reloaded" in line)
    return added[:end]


def test_sighup_with_a_broken_config_keeps_the_old_one(procs, tmp_path, served):
    config = tmp_path / "ftpd.toml"
    config.write_text("max-bad-commands = 2\n")
    server = Standalone(procs, tmp_path, served, "-c", str(config))
    before = read_text(server.log)
    config.write_text("max-bad-commands = 'lots'\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: str(config) in read_text(server.log)[len(before):],
               "a log line naming the broken config")
    assert server.proc.poll() is None
    # the old configuration still applies: the second bad command closes the session
    ctl = server.control()
    ctl.send("XYZZY")
    ctl.send("XYZZY")
    assert [ctl.reply()[0] for _ in range(3)] == [500, 500, 421]
    assert ctl.read_to_eof() == b""
    added = _logged_by_one_reload(server, before, lambda: config.write_text(
        "max-bad-commands = 3\n"))
    assert len([line for line in added if str(config) in line]) == 1, added
    assert "Traceback" not in read_text(server.log)
    assert server.proc.poll() is None


def test_sighup_with_a_broken_users_file_keeps_the_old_users(procs, tmp_path, served):
    users = tmp_path / "users.toml"
    write_users(users, "secret", served)
    server = Standalone(procs, tmp_path, served, "--users", str(users), "-n")
    before = read_text(server.log)
    users.write_text("[alice]\npassword = 'plain text is refused'\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: str(users) in read_text(server.log)[len(before):],
               "a log line naming the broken users file")
    server.control(user="alice", password="secret").close()  # the old users still apply
    added = _logged_by_one_reload(server, before, lambda: write_users(users, "newer", served))
    assert len([line for line in added if str(users) in line]) == 1, added
    server.control(user="alice", password="newer").close()
    assert server.proc.poll() is None


# -- --idle-timeout --------------------------------------------------------------------------
def test_idle_timeout_standalone_exits_0_once_idle(procs, tmp_path, served):
    """That a connected client keeps it alive is tested on virtual time
    (tests/functional/test_embedding.py): here, only that it exits, and not too soon."""
    server = Standalone(procs, tmp_path, served, "-t", "1")
    ctl = server.control()
    ctl.expect("NOOP", 200)
    ctl.expect("QUIT", 221)
    ctl.close()
    idle_since = time.monotonic()
    assert wait_exit(server.proc, 1 + DEADLINE) == 0
    assert time.monotonic() - idle_since >= 0.9, "exited before --idle-timeout passed"


def test_idle_timeout_standalone_with_no_client_at_all(procs, tmp_path, served):
    start = time.monotonic()
    server = Standalone(procs, tmp_path, served, "-t", "0.5", probe=False)
    assert wait_exit(server.proc, 1 + DEADLINE) == 0
    assert time.monotonic() - start >= 0.5
    assert server.logged("idle")
