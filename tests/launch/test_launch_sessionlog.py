"""The session log is the same text in every log destination: a ``--log FILE``, syslog
(under ``-I``, where it is the default) and the journal; the fail2ban filter reads the
syslog form as rsyslog writes it, as it reads the file form."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from lhelpers import Control, connected_pair, wait_exit

from ftpd import logsetup
from ftpd.core import events as core
from ftpd.events.bus import EventBus
from ftpd.log import INFO
from ftpd.sessionlog import SessionLog

FILTER = Path(__file__).resolve().parents[2] / "contrib" / "fail2ban" / "filter.d" / "ftpd.conf"
NAMES = ["bob", "x from=1.2.3.4"]  # refused: no such users
SESSION_LINE = re.compile(r"\[\S+\] (?:CONNECT|LOGIN|DOWNLOAD|UPLOAD|DISCONNECT) ")


def dialogue(ctl: Control) -> None:
    assert ctl.reply()[0] == 220
    for name in NAMES:
        ctl.expect(f"USER {name}", 331)
        ctl.expect("PASS wrong", 530)
    ctl.login()
    ctl.expect("QUIT", 221)
    assert ctl.read_to_eof() == b""


def normalized(messages: list[str]) -> list[str]:
    """Session-log messages without what differs between two runs (id, durations)."""
    return [re.sub(r"seconds=\S+", "seconds=S", re.sub(r"^\[\S+\]", "[SID]", m))
            for m in messages if SESSION_LINE.match(m)]


def run_inetd(ftpd, served, inetd_spawn, *args: str, prefix: tuple[str, ...] = ()) -> None:
    client, server_side = connected_pair()
    proc = inetd_spawn([*prefix, ftpd, "-I", "-r", str(served), "--failed-login-delay", "0",
                        "--max-login-attempts", "5", *args], server_side)
    dialogue(Control(client))
    assert wait_exit(proc) == 0


@pytest.mark.parametrize("server_id", [[], ["--server-id", "ftp1"]], ids=["host", "server-id"])
def test_syslog_and_file_get_the_same_lines(ftpd, served, inetd_spawn, syslog, tmp_path,
                                            server_id):
    run_inetd(ftpd, served, inetd_spawn, *server_id, prefix=tuple(syslog.prefix))
    datagrams = [d for d in syslog.read() if "ftpd[" in d]
    assert datagrams and all(re.match(r"<\d+>ftpd\[\d+\]: ", d) for d in datagrams), datagrams
    lead = "[ftp1] " if server_id else ""  # syslog records the host; another id leads
    assert all(d.split(": ", 1)[1].startswith(lead) for d in datagrams)
    from_syslog = [d.split(": ", 1)[1][len(lead):] for d in datagrams]

    log = tmp_path / "ftpd.log"
    run_inetd(ftpd, served, inetd_spawn, *server_id, "--log", str(log))
    from_file = [line.split(" INFO ", 1)[1] for line in log.read_text().splitlines()
                 if " INFO " in line]
    assert normalized(from_syslog) == normalized(from_file)
    assert normalized(from_file) == [
        "[SID] CONNECT from=127.0.0.1",
        "[SID] LOGIN FAILED user=bob from=127.0.0.1",
        '[SID] LOGIN FAILED user="x from=1.2.3.4" from=127.0.0.1',
        "[SID] LOGIN OK user=anonymous from=127.0.0.1",
        "[SID] DISCONNECT reason=QUIT files_down=0 bytes_down=0 files_up=0 bytes_up=0 "
        "seconds=S",
    ]

    # What rsyslog writes for them (RSYSLOG_TraditionalFileFormat), for fail2ban.
    stamp = time.strftime("%b %e %H:%M:%S")
    as_written = tmp_path / "syslog"
    as_written.write_text("".join(f"{stamp} testhost {d.split('>', 1)[1]}\n"
                                  for d in datagrams))
    exe = shutil.which("fail2ban-regex")
    if exe is None:
        pytest.skip("fail2ban-regex not installed (Debian package fail2ban)")
    done = subprocess.run([exe, "-o", "ip", str(as_written), str(FILTER)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["127.0.0.1"] * len(NAMES)


@pytest.fixture
def journal(monkeypatch, tmp_path, ftpd_logger):
    """A journal socket of our own (the ``ftpd`` logger is restored afterwards)."""
    path = tmp_path / "journal"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    monkeypatch.setattr(logsetup.JournalHandler, "PATH", str(path))
    try:
        yield receiver
    finally:
        receiver.close()


def test_the_journal_gets_the_same_message(journal):
    logsetup.setup("journal", INFO)
    bus = EventBus()
    SessionLog().attach(bus)
    info = core.SessionInfo("AAAAAAAAAAAA", "192.0.2.7")
    bus.generate("session.login-failed", core.LoginFailedEvent(info, 0.0, "x from=1.2.3.4", 1))
    fields = dict(line.split("=", 1) for line in journal.recv(4096).decode().splitlines())
    assert fields["MESSAGE"] == ('[AAAAAAAAAAAA] LOGIN FAILED user="x from=1.2.3.4" '
                                 "from=192.0.2.7")
    assert fields["SYSLOG_IDENTIFIER"] == "ftpd" and fields["PRIORITY"] == "6"
