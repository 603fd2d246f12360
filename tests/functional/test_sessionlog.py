"""The session log of a real ftpd (``--log FILE``): one line per fact, and the shipped
fail2ban filter, run by Debian's ``fail2ban-regex``, counts exactly the refused logins,
all from the client's real address, whatever names the client chose."""

from __future__ import annotations

import configparser
import ftplib
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ftpsupport import read_text, wait_until

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "fail2ban"
FILTER = CONTRIB / "filter.d" / "ftpd.conf"
JAIL = CONTRIB / "jail.d" / "ftpd.conf"

# Names an attacker might send to get someone else banned, or to hide its own failures.
FORGED = ["x from=1.2.3.4", 'x" from=1.2.3.4 "', "a LOGIN FAILED user=a from=1.2.3.4",
          "z\\", "tab\there"]


def fail2ban_regex(log: Path, what: str = "ip") -> list[str]:
    """What ``fail2ban-regex -o WHAT LOG FILTER`` prints: one entry per match."""
    exe = shutil.which("fail2ban-regex")
    if exe is None:
        pytest.skip("fail2ban-regex not installed (Debian package fail2ban)")
    done = subprocess.run([exe, "-o", what, str(log), str(FILTER)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def refused(server, names: list[str]) -> int:
    """One session that fails to log in with each name (the server closes after its
    --max-login-attempts); returns how many 530s it got."""
    ftp = server.ftp(user=None)
    count = 0
    try:
        for name in names:
            with pytest.raises(ftplib.error_perm, match="530"):
                ftp.login(name, "wrong")
            count += 1
    finally:
        ftp.close()
    return count


def session_lines(log: str, sid: str) -> list[str]:
    return [line.split(" INFO ", 1)[1] for line in log.splitlines()
            if f" INFO [{sid}] " in line]


def sids(log: Path) -> list[str]:
    return re.findall(r" INFO \[(\S+)\] CONNECT ", read_text(log))


def wait_new_session(log: Path, before: list[str]) -> tuple[str, str]:
    """The session that began after *before* (the start-up probe's), once it has ended:
    (its id, the log's text)."""
    sid = wait_until(lambda: [s for s in sids(log) if s not in before], "a new session")[0]
    wait_until(lambda: f"[{sid}] DISCONNECT " in read_text(log), "its DISCONNECT line")
    return sid, read_text(log)


def test_fail2ban_counts_exactly_the_refused_logins(ftpd_server, tmp_path):
    log = tmp_path / "session.log"
    server = ftpd_server("--log", str(log), "--max-login-attempts", "10")
    (server.root / "f.txt").write_bytes(b"0123456789")
    refusals = 0
    for round_ in range(3):
        refusals += refused(server, ["bob", "nobody"][: round_ + 1])
        ftp = server.ftp()  # a successful login in between
        ftp.retrbinary("RETR f.txt", lambda _: None)
        ftp.storbinary("STOR up.txt", io.BytesIO(b"abc"))
        ftp.quit()
    refusals += refused(server, FORGED)
    last = wait_until(lambda: re.search(r'\[(\S+)\] LOGIN FAILED user="tab\\there"',
                                        read_text(log)), "the last refusal").group(1)
    wait_until(lambda: f"[{last}] DISCONNECT" in read_text(log), "its DISCONNECT line")
    text = read_text(log)
    assert len(re.findall(r" INFO \[\S+\] LOGIN FAILED ", text)) == refusals == 5 + len(FORGED)
    assert len(re.findall(r" INFO \[\S+\] LOGIN OK ", text)) == 3
    assert fail2ban_regex(log) == ["127.0.0.1"] * refusals
    assert "1.2.3.4" not in fail2ban_regex(log, "ip")


def test_one_line_per_fact_in_a_session(ftpd_server, tmp_path):
    log = tmp_path / "session.log"
    server = ftpd_server("--log", str(log))
    before = sids(log)
    (server.root / "a b.txt").write_bytes(b"0123456789")
    ftp = server.ftp(user=None)
    with pytest.raises(ftplib.error_perm):
        ftp.login("user", "wrong")
    ftp.login(server.user, server.password)
    ftp.retrbinary("RETR a b.txt", lambda _: None)
    ftp.storbinary("STOR up.txt", io.BytesIO(b"abc"))
    with pytest.raises(ftplib.error_perm):
        ftp.retrbinary("RETR missing", lambda _: None)
    ftp.quit()
    sid, text = wait_new_session(log, before)
    lines = [re.sub(r"seconds=\d+\.\d{3}", "seconds=S", line)
             for line in session_lines(text, sid)]
    assert lines == [
        f"[{sid}] CONNECT from=127.0.0.1",
        f"[{sid}] LOGIN FAILED user=user from=127.0.0.1",
        f"[{sid}] LOGIN OK user=user from=127.0.0.1",
        f'[{sid}] DOWNLOAD path="/a b.txt" bytes=10 seconds=S status=OK',
        f"[{sid}] UPLOAD path=/up.txt bytes=3 seconds=S status=OK",
        f"[{sid}] DOWNLOAD path=/missing bytes=0 seconds=S status=NOENT",
        f"[{sid}] DISCONNECT reason=QUIT files_down=1 bytes_down=10 files_up=1 bytes_up=3 "
        "seconds=S",
    ]


def test_a_session_that_never_logs_in_is_logged(ftpd_server, tmp_path):
    log = tmp_path / "session.log"
    server = ftpd_server("--log", str(log))
    before = sids(log)
    server.ftp(user=None).close()
    sid, text = wait_new_session(log, before)
    assert [line.split(" files_down")[0] for line in session_lines(text, sid)] == [
        f"[{sid}] CONNECT from=127.0.0.1", f"[{sid}] DISCONNECT reason=EOF"]


def test_the_jail_names_the_shipped_filter_and_a_log_path():
    jail = configparser.ConfigParser(interpolation=None)
    assert jail.read(JAIL) == [str(JAIL)]
    [name] = jail.sections()
    section = jail[name]
    assert section.getboolean("enabled")
    assert (CONTRIB / "filter.d" / f"{section['filter']}.conf") == FILTER and FILTER.exists()
    assert section["logpath"].startswith("/")
    filt = configparser.ConfigParser(interpolation=None)
    filt.read(FILTER)
    assert "<HOST>" in filt["Definition"]["failregex"]
