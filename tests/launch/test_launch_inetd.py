"""inetd no-wait (-I) and wait (-W) with the socket handed over on fds 0-2 exactly as
inetd does it, and the error paths: a wrong flag, a bad option, a missing socket."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from ftpsupport import DEADLINE
from lhelpers import Control, assert_all_replies, connected_pair, wait_exit


def test_nowait_serves_one_session_and_exits_0(ftpd, served, inetd_spawn):
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-I", "-r", str(served)], server_side)
    ctl = Control(client)
    assert ctl.reply()[0] == 220
    ctl.login()
    data = ctl.epsv()
    ctl.expect("RETR README.txt", 150)
    body = b""
    while chunk := data.recv(65536):
        body += chunk
    data.close()
    assert ctl.reply()[0] == 226
    assert body == (served / "README.txt").read_bytes()
    ctl.expect("QUIT", 221)
    assert ctl.read_to_eof() == b""
    assert wait_exit(proc) == 0


def test_nowait_exits_0_when_the_client_just_goes_away(ftpd, served, inetd_spawn):
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-I", "-r", str(served)], server_side)
    ctl = Control(client)
    assert ctl.reply()[0] == 220
    ctl.login()
    client.close()
    assert wait_exit(proc) == 0


def test_nowait_every_byte_is_an_ftp_reply_even_verbose_and_after_errors(
        ftpd, served, inetd_spawn):
    """-v logs every command; none of it may reach the client, whose socket is fds 0-2."""
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-I", "-v", "-r", str(served), "--failed-login-delay", "0"],
                       server_side)
    ctl = Control(client)
    commands = ["FOO bar", "RETR", "USER anonymous", "PASS guest@", "HELP", "FEAT",
                "CWD /does/not/exist", "RETR nothing-here", "SIZE README.txt", "STAT",
                "NOOP", "\x01\x02 binary junk", "PWD", "SYST"]
    for command in commands:
        ctl.send(command)
    ctl.send("QUIT")
    raw = ctl.read_to_eof()
    assert_all_replies(raw)
    codes = [int(line[:3]) for line in raw.split(b"\r\n") if line[:3].isdigit()
             and line[3:4] == b" "]
    assert codes[0] == 220 and codes[-1] == 221
    assert 500 in codes and 550 in codes, raw
    assert b"Traceback" not in raw and b"DEBUG" not in raw and b"INFO" not in raw
    assert wait_exit(proc) == 0


def test_nowait_logs_go_to_syslog_not_to_the_client(ftpd, served, inetd_spawn, syslog):
    client, server_side = connected_pair()
    proc = inetd_spawn([*syslog.prefix, ftpd, "-I", "-v", "-r", str(served)], server_side)
    ctl = Control(client)
    assert ctl.reply()[0] == 220
    ctl.login()
    ctl.expect("FOO", 500)
    ctl.expect("QUIT", 221)
    assert ctl.read_to_eof() == b""
    assert_all_replies(ctl.raw)
    assert wait_exit(proc) == 0
    lines = syslog.read()
    assert any("USER anonymous" in line for line in lines), lines
    assert all(line.startswith("<") for line in lines), lines  # syslog framing: <PRI>


def test_wait_mode_accepts_several_clients_then_exits_0_when_idle(ftpd, served, procs):
    """-W: fd 0 is the listening socket; one process serves every client (two at once
    here), then exits 0 once --idle-timeout passes with no client."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        proc = procs.start([ftpd, "-W", "-t", "1", "-r", str(served)], stdin=listener.fileno(),
                           stdout=listener.fileno(), stderr=listener.fileno())
    finally:
        listener.close()
    first, second = Control.connect("127.0.0.1", port), Control.connect("127.0.0.1", port)
    for ctl in (first, second):
        assert ctl.reply()[0] == 220
        ctl.login()
    first.expect("PWD", 257)
    second.expect("PWD", 257)
    second.expect("QUIT", 221)
    second.close()
    # a later client, while the first holds the process (an idle gap of a second
    # under load would end it: that is the idle timeout, tested on virtual time)
    third = Control.connect("127.0.0.1", port)
    assert third.reply()[0] == 220
    third.expect("QUIT", 221)
    third.close()
    assert proc.poll() is None, "one process serves every client of the wait socket"
    first.expect("QUIT", 221)
    first.close()
    last = time.monotonic()
    assert wait_exit(proc, 1 + DEADLINE) == 0
    assert time.monotonic() - last >= 0.9, "exited before --idle-timeout passed"


def test_wait_mode_without_idle_timeout_keeps_serving(ftpd, served, procs):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        proc = procs.start([ftpd, "-W", "-r", str(served)], stdin=listener.fileno(),
                           stdout=listener.fileno(), stderr=listener.fileno())
    finally:
        listener.close()
    ctl = Control.connect("127.0.0.1", port)
    assert ctl.reply()[0] == 220
    ctl.expect("QUIT", 221)
    assert ctl.read_to_eof() == b""  # the session is over on the server's side too
    ctl.close()
    later = Control.connect("127.0.0.1", port)  # no client left: still serving
    assert later.reply()[0] == 220
    later.login()
    later.expect("NOOP", 200)
    later.expect("QUIT", 221)
    later.close()
    assert proc.poll() is None


# -- error paths ------------------------------------------------------------------------
def test_wait_flag_on_a_connected_socket_is_a_clear_error(ftpd, served, inetd_spawn):
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-W", "-r", str(served)], server_side)
    ctl = Control(client)
    assert ctl.read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) == 2


def test_wrong_flag_is_logged_to_syslog_in_one_line(ftpd, served, inetd_spawn, syslog):
    client, server_side = connected_pair()
    proc = inetd_spawn([*syslog.prefix, ftpd, "-W", "-r", str(served)], server_side)
    client.settimeout(DEADLINE)
    assert wait_exit(proc) == 2
    client.close()
    lines = [line for line in syslog.read() if "ftpd" in line]
    assert len(lines) == 1, lines
    assert "-W" in lines[0] and "connected" in lines[0], lines


def test_nowait_flag_on_a_listening_socket_is_a_clear_error(ftpd, served, procs, syslog):
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        proc = procs.start([*syslog.prefix, ftpd, "-I", "-r", str(served)],
                           stdin=listener.fileno(), stdout=listener.fileno(),
                           stderr=listener.fileno())
    finally:
        listener.close()
    assert wait_exit(proc) == 2  # no hang on a listening socket
    lines = [line for line in syslog.read() if "ftpd" in line]
    assert len(lines) == 1, lines
    assert "-I" in lines[0] and "listening" in lines[0], lines


def test_nowait_without_a_socket_says_so_on_stderr(ftpd, served, procs):
    proc = procs.start([ftpd, "-I", "-r", str(served)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2
    assert out == b""
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "socket" in lines[0], err


@pytest.mark.parametrize("args, status", [
    (["--no-such-option"], 2),
    (["--timeout", "soon"], 2),
    (["-d"], 2),
    (["--daemon", "--pidfile", "/tmp/ftpd-never.pid"], 2),
    (["--username", "bob"], 2),  # no password
    (["-r", "/nonexistent/ftpd-root"], 1),  # a runtime error, not a usage error
], ids=["unknown-option", "bad-value", "daemon", "daemon-pidfile", "user-no-password",
        "missing-root"])
def test_errors_under_nowait_give_the_client_421(ftpd, served, inetd_spawn, args, status):
    client, server_side = connected_pair()
    argv = [ftpd, "-I", "-r", str(served), *args] if "-r" not in args else [ftpd, "-I", *args]
    proc = inetd_spawn(argv, server_side)
    assert Control(client).read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) == status


@pytest.mark.parametrize("args, named", [(["--timeout", "soon"], "--timeout"),
                                         (["-d"], "--daemon")], ids=["bad-value", "daemon"])
def test_config_error_under_nowait_goes_to_syslog_in_one_line(ftpd, served, inetd_spawn,
                                                               syslog, args, named):
    client, server_side = connected_pair()
    proc = inetd_spawn([*syslog.prefix, ftpd, "-I", "-r", str(served), *args], server_side)
    assert Control(client).read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) == 2
    lines = [line for line in syslog.read() if "ftpd" in line]
    assert len(lines) == 1 and named in lines[0], lines


@pytest.mark.parametrize("args", [["--max-connections", "none"], ["-d"]],
                         ids=["bad-value", "daemon"])
def test_config_error_under_wait_gives_the_waiting_client_421(ftpd, served, procs, args):
    listener = socket.create_server(("127.0.0.1", 0))
    client = Control.connect(*listener.getsockname()[:2])  # queued: inetd saw it arrive
    try:
        proc = procs.start([ftpd, "-W", "-r", str(served), *args],
                           stdin=listener.fileno(), stdout=listener.fileno(),
                           stderr=listener.fileno())
    finally:
        listener.close()
    assert client.read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) == 2


@pytest.mark.parametrize("args, named", [
    (["--no-such-option"], "--no-such-option"),
    (["--timeout", "soon"], "--timeout"),
    (["-c", "BAD_CONFIG"], "no-such-key"),
    (["-r", "/nonexistent/ftpd-root"], "/nonexistent/ftpd-root"),
], ids=["unknown-option", "bad-value", "bad-config-key", "missing-root"])
def test_startup_error_under_nowait_goes_to_the_log_file(ftpd, served, inetd_spawn, tmp_path,
                                                         args, named):
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("no-such-key = 1\n")
    log = tmp_path / "ftpd.log"
    client, server_side = socket.socketpair()
    args = [str(bad_config) if a == "BAD_CONFIG" else a for a in args]
    argv = [ftpd, "-I", "--log", str(log), *args] + (["-r", str(served)] if "-r" not in args
                                                     else [])
    proc = inetd_spawn(argv, server_side)
    assert Control(client).read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) in (1, 2)
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "ERROR" in lines[0] and named in lines[0], lines


def test_wrong_inetd_flag_goes_to_the_log_file(ftpd, served, procs, tmp_path):
    log = tmp_path / "ftpd.log"
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        proc = procs.start([ftpd, "-I", "--log", str(log), "-r", str(served)],
                           stdin=listener.fileno(), stdout=listener.fileno(),
                           stderr=listener.fileno())
    finally:
        listener.close()
    assert wait_exit(proc) == 2
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "-I (inetd no-wait)" in lines[0], lines
