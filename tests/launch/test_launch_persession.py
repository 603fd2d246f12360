"""--pam in standalone mode: every connection is served by a process of its own, and the
parent still enforces the connection caps, reaps children and passes SIGTERM on.
Anonymous sessions suffice here (they too get a process each under --pam)."""

from __future__ import annotations

import ftplib
import os
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, FtpdProcess, RawControl, start_ftpd, wait_until
from pamsupport import needs_system_users

pytestmark = needs_system_users


@pytest.fixture
def pam_server(served: Path, tmp_path: Path):
    started: list[FtpdProcess] = []

    def start(*extra: str) -> FtpdProcess:
        server = start_ftpd(lambda ports, _: FtpdProcess(
            ["-l", f"127.0.0.1:{ports[0]}", "-r", str(served), "--pam", "--log", "stderr",
             "-v", *extra], port=ports[0], log_path=tmp_path / f"ftpd{len(started)}.log"))
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def session_pids(server: FtpdProcess) -> set[int]:
    """The session processes the parent's log says it started and has not reaped."""
    log = server.log()
    handed = {int(word) for line in log.splitlines() if "handed to process" in line
              for word in line.split()[-1:]}
    reaped = {int(line.split("session process ")[1].split()[0])
              for line in log.splitlines() if "session process " in line}
    return handed - reaped


def test_each_session_has_its_own_process(pam_server) -> None:
    server = pam_server()
    wait_until(lambda: "handed to process" in server.log() and not session_pids(server),
               "the start-up probe's session reaped")
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", server.port, timeout=DEADLINE)
    try:
        ftp.login()
        assert ftp.nlst() == sorted(ftp.nlst()) and "README.txt" in ftp.nlst()
        pids = wait_until(lambda: session_pids(server), "a session process")
        (pid,) = pids
        assert pid != server.pid
        with open(f"/proc/{pid}/status") as status:
            parent = [line for line in status if line.startswith("PPid:")][0]
        assert int(parent.split()[1]) == server.pid
    finally:
        ftp.quit()
    wait_until(lambda: not session_pids(server), "the session process reaped")
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), "the child gone (no zombie)")


def test_children_count_against_the_caps_until_they_exit(pam_server) -> None:
    server = pam_server("--max-connections-per-ip", "1")
    wait_until(lambda: "handed to process" in server.log() and not session_pids(server),
               "the start-up probe's session reaped")
    with RawControl("127.0.0.1", server.port) as first:
        assert first.greeting[0] == 220
        with RawControl("127.0.0.1", server.port) as second:
            assert second.greeting == (421, "421 Too many connections from your address.")
        first.send_line("QUIT")
        assert first.reply()[0] == 221
    wait_until(lambda: not session_pids(server), "the first session reaped")
    with RawControl("127.0.0.1", server.port) as third:
        assert third.greeting[0] == 220


def test_sigterm_drains_the_session_processes(pam_server) -> None:
    server = pam_server()
    with RawControl("127.0.0.1", server.port) as idle:
        assert idle.greeting[0] == 220
        wait_until(lambda: session_pids(server), "the session process")
        server.proc.terminate()
        code, text = idle.reply()
        assert (code, "shutting down" in text) == (421, True)
    assert server.proc.wait(DEADLINE) == 0


def test_wait_mode_children_act_as_the_account_and_log_where_the_parent_does(
        ftpd, served, procs, syslog, tmp_path) -> None:
    """-W --pam: fd 0 is the listener; each session is a child that logs to syslog like
    the parent (its stderr is /dev/null) and stores as the account."""
    import io
    import socket

    from pamsupport import pam_service, system_account

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with pam_service() as service, system_account() as user:
        try:
            proc = procs.start([*syslog.prefix, ftpd, "-W", "-r", str(served), "--pam",
                                service, "-n"], stdin=listener.fileno(),
                               stdout=listener.fileno(), stderr=listener.fileno())
        finally:
            listener.close()
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", port, timeout=DEADLINE)
        ftp.login(user.name, user.password)
        ftp.storbinary("STOR w.txt", io.BytesIO(b"w"))
        ftp.quit()
        assert (user.home / "w.txt").stat().st_uid == user.uid
        wait_until(lambda: any(f"session acts as {user.name}" in line
                               for line in syslog.read()), "the child's log line in syslog")
    assert proc.poll() is None


IMPORT_LINE = __import__("re").compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


def _every_family(ftp: ftplib.FTP) -> None:
    """A session touching every command family (as test_launch_preload's)."""
    import io

    for line in ("SYST", "FEAT", "HELP", "STAT", "OPTS UTF8 ON", "TYPE I", "NOOP", "PWD"):
        ftp.sendcmd(line)
    ftp.storbinary("STOR up.bin", io.BytesIO(b"x" * 100_000))
    ftp.storbinary("APPE up.bin", io.BytesIO(b"y" * 10))
    ftp.sendcmd("REST 5")
    ftp.retrbinary("RETR up.bin", lambda _b: None)
    ftp.storbinary("STOU", io.BytesIO(b"unique"))
    ftp.retrlines("LIST")
    ftp.retrlines("NLST *.bin")
    ftp.retrlines("MLSD")
    for line in ("TYPE I", "MLST up.bin", "SIZE up.bin", "MDTM up.bin", "MFMT 20200101000000 up.bin",
                 "SITE CHMOD 640 up.bin", "MKD d", "CWD d", "CDUP", "RMD d",
                 "RNFR up.bin", "RNTO moved.bin", "STAT moved.bin", "DELE moved.bin"):
        ftp.sendcmd(line)
    ftp.set_pasv(False)
    ftp.retrlines("LIST")


def test_a_session_imports_nothing_after_becoming_its_account(tmp_path: Path) -> None:
    """The session process imports what serving needs before it drops root: a Python
    under /root (0700) is unreadable to the account. Every import reported (the children
    inherit PYTHONPROFILEIMPORTTIME) after "session acts as" names a module missed."""
    from pamsupport import pam_service, system_account

    with pam_service() as service, system_account() as user:
        server = start_ftpd(lambda ports, _: FtpdProcess(
            ["-l", f"127.0.0.1:{ports[0]}", "--pam", service, "-n", "--log", "stderr",
             "-v", "--atomic-uploads", "--failed-login-delay", "0"], port=ports[0],
            log_path=tmp_path / "ftpd.log",
            env={"PYTHONPROFILEIMPORTTIME": "1"}))
        try:
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", server.port, timeout=DEADLINE)
            ftp.login(user.name, user.password)
            _every_family(ftp)
            ftp.quit()
            wait_until(lambda: not session_pids(server), "the session reaped")
        finally:
            server.stop()
        lines = server.log().splitlines()
    marker = next(i for i, line in enumerate(lines) if "session acts as" in line)
    late = [m.group(1) for line in lines[marker:] if (m := IMPORT_LINE.match(line))]
    assert not late, f"imported after the session became its account: {late}"


def test_after_sighup_new_session_processes_get_the_new_settings(served: Path,
                                                                 tmp_path: Path) -> None:
    import io
    import signal

    conf = tmp_path / "ftpd.toml"
    conf.write_text(f'root = "{served}"\npam = true\nwrite = false\n')
    server = start_ftpd(lambda ports, _: FtpdProcess(
        ["-l", f"127.0.0.1:{ports[0]}", "-c", str(conf), "--log", "stderr"], port=ports[0],
        log_path=tmp_path / "ftpd.log"))
    try:
        def upload(name: str) -> str:
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", server.port, timeout=DEADLINE)
            try:
                ftp.login()
                return ftp.storbinary(f"STOR {name}", io.BytesIO(b"x"))
            except ftplib.error_perm as exc:
                return str(exc)
            finally:
                ftp.close()

        assert upload("before.txt").startswith("550")
        conf.write_text(f'root = "{served}"\npam = true\nwrite = true\n')
        os.kill(server.pid, signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in server.log(), "the reload")
        assert upload("after.txt").startswith("226")
    finally:
        server.stop()
    assert (served / "after.txt").exists() and not (served / "before.txt").exists()


@pytest.mark.parametrize("client", [("203.0.113.7", 40001), None], ids=["proxy", "local"])
def test_a_balancers_header_is_read_once_and_its_client_carried(pam_server, client) -> None:
    """--proxy-protocol with --pam: the parent reads the PROXY header (caps count the
    client it carries); the session process must not wait for a second one, and sees
    the carried address (or, for a LOCAL health check, the balancer's)."""
    from ftpd.io.proxyproto import v2_header

    server = pam_server("--proxy-protocol", "127.0.0.1")
    with RawControl("127.0.0.1", server.port, greet=False) as conn:
        conn.send(v2_header(client, ("198.51.100.1", 21)) + b"USER anonymous\r\n")
        assert conn.reply()[0] == 220
        assert conn.reply()[0] == 331  # the command that came with the header was kept
        conn.send_line("PASS guest@")
        assert conn.reply()[0] == 230
        conn.send_line("STAT")
        code, text = conn.reply()
        assert code == 211
        line = next(line for line in text.splitlines() if "Connected to" in line)
        assert line.endswith(client[0] if client else "127.0.0.1")
