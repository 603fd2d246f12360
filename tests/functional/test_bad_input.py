"""Bad input over a raw socket never kills a session or the server, and the ``ftpd``
command's usage errors are one line on stderr with the documented exit codes."""

from __future__ import annotations

import random
import socket
import subprocess

import pytest
from ftpsupport import DEADLINE, RawControl, free_port, ftpd_argv


def assert_clean(c: RawControl) -> None:
    """No traceback, no internal error, and every line looks like a reply."""
    text = "\n".join(c.transcript)
    assert "Traceback" not in text and "File \"" not in text
    for line in c.transcript:
        if line[:3].isdigit() and line[3:4] in (" ", "-"):
            assert not line.startswith("451"), line
        else:
            assert line.startswith(" "), line  # a continuation line


@pytest.fixture
def server(ftpd_server):
    return ftpd_server()


def test_overlong_line(server):
    with RawControl(server.host, server.port) as c:
        code, text = c.cmd(b"NOOP " + b"x" * 5000)
        assert code == 500 and "too long" in text.lower()
        assert c.cmd("NOOP")[0] == 200
        code, _ = c.cmd(b"USER " + b"y" * 100_000)  # far over the limit, in many reads
        assert code == 500
        c.login()
        assert c.cmd("PWD")[0] == 257
        assert_clean(c)


def test_nul_bytes(server):
    with RawControl(server.host, server.port) as c:
        c.login()
        code, text = c.cmd(b"CWD a\x00b")
        assert code == 501 and "NUL" in text
        assert c.cmd(b"RETR \x00")[0] == 501
        assert 500 <= c.cmd(b"\x00")[0] <= 501
        assert 500 <= c.cmd(b"NO\x00OP")[0] <= 501
        assert c.cmd("NOOP")[0] == 200
        assert_clean(c)


def test_unknown_and_malformed_commands(server):
    with RawControl(server.host, server.port) as c:
        assert c.cmd("FROB")[0] == 500
        assert c.cmd("")[0] == 500
        assert c.cmd("   ")[0] == 500
        assert c.cmd("ÇWD /")[0] == 500  # a verb that is not ASCII
        assert c.cmd("USER")[0] == 501  # missing argument
        assert c.cmd("PWD")[0] == 530  # not logged in
        c.login()
        for cmd in ("RETR", "STOR", "MKD", "CWD", "DELE", "RNFR", "SIZE", "MDTM", "TYPE",
                    "MODE", "STRU", "PORT", "EPRT", "REST", "SITE CHMOD", "SITE CHMOD 644"):
            code, text = c.cmd(cmd)
            assert code == 501, (cmd, text)
            assert c.cmd("NOOP")[0] == 200  # (stay under the bad-command limit)
        for bad in ("PORT 1,2,3", "PORT a,b,c,d,e,f", "PORT 127,0,0,1,999,1",
                    "PORT 127,0,0,1,-1,1", "PORT 127.0.0.1:2000", "EPRT garbage",
                    "EPRT |1|not-an-ip|2000|", "EPRT |1|127.0.0.1|99999|",
                    "EPRT |2|127.0.0.1|2000|", "REST -1", "MFMT 2020 x"):
            code, text = c.cmd(bad)
            assert code == 501, (bad, text)
            assert c.cmd("NOOP")[0] == 200
        assert c.cmd("EPRT |3|127.0.0.1|2000|")[0] == 522
        assert c.cmd("PWD")[0] == 257  # the session goes on
        assert_clean(c)


def test_pipelined_commands(server):
    with RawControl(server.host, server.port) as c:
        c.send(b"USER user\r\nPASS pw\r\nNOOP\r\nPWD\r\nSYST\r\n")
        assert [c.reply()[0] for _ in range(5)] == [331, 230, 200, 257, 215]
        # one byte at a time, LF alone as the line end
        for b in b"NOOP\n":
            c.send(bytes([b]))
        assert c.reply()[0] == 200
        assert_clean(c)


def test_default_limit_of_bad_commands(server):
    with RawControl(server.host, server.port) as c:
        for _ in range(19):
            assert c.cmd("BOGUS")[0] == 500
        assert c.cmd("NOOP")[0] == 200  # a good command resets the count
        for _ in range(19):
            assert c.cmd("BOGUS")[0] == 500
        c.send(b"BOGUS\r\n")
        assert c.reply()[0] == 500
        code, text = c.reply()
        assert code == 421, text
        assert c.wait_closed()
        assert_clean(c)
    with RawControl(server.host, server.port) as c:  # the server goes on
        assert c.cmd("NOOP")[0] == 200


def test_max_bad_commands_option(ftpd_server):
    server = ftpd_server("--max-bad-commands", "3")
    with RawControl(server.host, server.port) as c:
        c.send(b"A1\r\nUSER\r\nTYPE\r\n")  # unknown verb, then missing arguments
        assert c.reply()[0] == 500
        assert c.reply()[0] == 501
        assert c.reply()[0] == 501
        assert c.reply()[0] == 421
        assert c.wait_closed()


def test_random_garbage_never_breaks_a_session(ftpd_server):
    server = ftpd_server("--max-bad-commands", "100000")
    rng = random.Random(959)
    alphabet = bytes(b for b in range(1, 255) if b not in (10, 13))  # no IAC: not Telnet
    with RawControl(server.host, server.port) as c:
        c.login()
        for i in range(300):
            verb = rng.choice([b"", b"RETR ", b"CWD ", b"LIST ", b"SITE ", b"PORT ", b"MLST ",
                               b"OPTS ", b"TYPE ", b"STAT ", b"HELP ", b"X"])
            line = verb + bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
            if verb in (b"RETR ", b"LIST "):
                line = b"NOOP " + line  # no data connection is set up: keep it a command
            code, _ = c.cmd(line)
            assert 200 <= code < 600, (i, line)
        assert c.cmd("NOOP")[0] == 200
        assert_clean(c)


def test_connection_dropped_mid_command(server):
    for junk in (b"RETR half-a-line", b"USER x\r\nPA", b"\xff\xf4"):
        with socket.create_connection((server.host, server.port), timeout=DEADLINE) as s:
            s.recv(1024)
            s.sendall(junk)
    with RawControl(server.host, server.port) as c:
        assert c.cmd("NOOP")[0] == 200


# -- the command line ------------------------------------------------------------------
def ftpd_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(ftpd_argv(*args), capture_output=True, text=True, timeout=DEADLINE,
                          cwd=cwd, stdin=subprocess.DEVNULL)


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    return lines[0]


def test_cli_unknown_flag(tmp_path):
    proc = ftpd_cli("--bogus-flag", "-r", str(tmp_path))
    assert proc.returncode == 2
    assert "--bogus-flag" in one_line(proc)


@pytest.mark.parametrize("args, names", [
    (["--timeout", "abc"], "--timeout"),
    (["--max-bad-commands", "0"], "--max-bad-commands"),
    (["--umask", "999"], "--umask"),
    (["--passive-ports", "60000-50000"], "--passive-ports"),
    (["--masquerade-address", "not-an-ip"], "--masquerade-address"),
    (["-l", "127.0.0.1:70000"], "--listen"),
    (["-u", "someone"], "--username"),
])
def test_cli_bad_values(tmp_path, args, names):
    proc = ftpd_cli("-r", str(tmp_path), *args)
    assert proc.returncode == 2
    assert names in one_line(proc)


def test_cli_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    proc = ftpd_cli("-l", f"127.0.0.1:{free_port('127.0.0.1')}", "-r", str(missing))
    assert proc.returncode == 1
    assert str(missing) in one_line(proc)


def test_cli_port_in_use(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = ftpd_cli("-l", f"127.0.0.1:{port}", "-r", str(tmp_path))
    assert proc.returncode == 1
    assert str(port) in one_line(proc)


def test_cli_bad_config_key(tmp_path):
    config = tmp_path / "ftpd.toml"
    config.write_text('no-such-key = 1\n')
    proc = ftpd_cli("-c", str(config), "-r", str(tmp_path))
    assert proc.returncode == 2
    assert "no-such-key" in one_line(proc)


def test_cli_help_and_version():
    proc = ftpd_cli("--help")
    assert proc.returncode == 0 and "--root" in proc.stdout and proc.stderr == ""
    proc = ftpd_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("ftpd ")


def test_a_failing_session_entry_point_closes_that_session_with_421(monkeypatch):
    """A bug (or an import that fails after privileges were dropped) inside a session
    entry point must not leave the client hanging: 421 and close; others go on."""
    import ftplib as _ftplib

    from ftpd.core.session import Session
    from ftpd.embed import FTPServer
    from ftpd.fs.memory import MemoryFS

    def broken(self, result=None):
        raise ImportError("cannot import after dropping root")

    monkeypatch.setattr(Session, "answer", broken)
    with FTPServer(MemoryFS()) as server:
        ftp = _ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=10)
        ftp.sendcmd("USER anonymous")
        with pytest.raises(_ftplib.error_temp, match="^421"):
            ftp.sendcmd("PASS x")
        other = _ftplib.FTP()
        other.connect("127.0.0.1", server.port, timeout=10)
        assert other.sendcmd("NOOP").startswith("200")
        other.close()
