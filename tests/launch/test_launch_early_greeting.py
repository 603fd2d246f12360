"""inetd no-wait writes the 220 before it builds the server (``ftpd.launch.inetd.greet``):
which modules are loaded when the first byte goes to the client (a sitecustomize records
``sys.modules`` at the first send), that the greeting is the one the session would have
written, and that what can still fail at start-up is checked before it (421, no 220)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lhelpers import Control, connected_pair, wait_exit

RECORD_AT_FIRST_SEND = """
import os, socket, sys

_recorded = []

def _record(send):
    def first(self, *args):
        if not _recorded:
            _recorded.append(True)
            with open(os.environ["RECORD_MODULES"], "w") as f:
                f.write("\\n".join(sorted(sys.modules)))
        return send(self, *args)
    return first

socket.socket.send = _record(socket.socket.send)
socket.socket.sendall = _record(socket.socket.sendall)
"""

# Not needed for the 220: the server, the core, the loop, the session log, logging, and
# the heavier standard modules (typing alone is ~6 ms, signal's enums ~0.5 ms;
# bench/README.md, banner section).
NOT_BEFORE_THE_BANNER = {
    "typing", "logging", "threading", "dataclasses", "tomllib", "click", "base64", "heapq",
    "signal", "ftpd.core.session", "ftpd.core.dispatch", "ftpd.core.handlers",
    "ftpd.io.server", "ftpd.io.loop", "ftpd.io.control", "ftpd.auth.base",
    "ftpd.events.bus", "ftpd.sessionlog", "ftpd.logsetup", "ftpd.modules",
    "ftpd.launch.systemd",
}


def _spawn(inetd_spawn, argv: list[str], tmp_path: Path) -> tuple[Control, object, Path]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(RECORD_AT_FIRST_SEND)
    record = tmp_path / "modules.txt"
    record.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(site), "RECORD_MODULES": str(record)}
    client, server_side = connected_pair()
    proc = inetd_spawn(argv, server_side, env=env)
    return Control(client), proc, record


def _session(ctl: Control, proc) -> bytes:
    """Read the greeting, log in, quit; the greeting's bytes."""
    assert ctl.reply()[0] == 220
    greeting = ctl.raw
    ctl.login()
    ctl.expect("QUIT", 221)
    assert ctl.read_to_eof() == b""
    assert wait_exit(proc) == 0
    return greeting


def test_nowait_greets_before_the_server_is_imported(ftpd, served, inetd_spawn, tmp_path):
    ctl, proc, record = _spawn(inetd_spawn, [ftpd, "-I", "-r", str(served)], tmp_path)
    assert _session(ctl, proc) == b"220 ftpd ready.\r\n"  # one 220: USER came next
    loaded = set(record.read_text().split())
    assert "ftpd.launch.inetd" in loaded
    assert not loaded & NOT_BEFORE_THE_BANNER, sorted(loaded & NOT_BEFORE_THE_BANNER)


def test_a_setting_that_can_fail_later_greets_after_the_server_is_built(
        ftpd, served, inetd_spawn, tmp_path):
    """--xferlog is opened while the server is built: the greeting waits for it."""
    argv = [ftpd, "-I", "-r", str(served), "--xferlog", str(tmp_path / "xferlog")]
    ctl, proc, record = _spawn(inetd_spawn, argv, tmp_path)
    assert _session(ctl, proc) == b"220 ftpd ready.\r\n"
    assert "ftpd.io.server" in record.read_text().split()


@pytest.mark.parametrize("text", ["Welcome\nto the archive\n\nbe nice", "x" * 5000],
                         ids=["multi-line", "too-long-to-greet-early"])
def test_the_early_greeting_is_the_sessions_own(ftpd, served, inetd_spawn, tmp_path, text):
    banner = tmp_path / "banner.txt"
    banner.write_text(text)
    greetings = []
    for late in ([], ["--xferlog", str(tmp_path / "xferlog")]):
        argv = [ftpd, "-I", "-r", str(served), "--banner-file", str(banner), *late]
        ctl, proc, _ = _spawn(inetd_spawn, argv, tmp_path)
        greetings.append(_session(ctl, proc))
    assert greetings[0] == greetings[1]
    assert greetings[0].endswith(b"220 " + text.splitlines()[-1].encode() + b"\r\n")


@pytest.mark.parametrize("case", ["bad-users-file", "missing-banner-file", "unopenable-log"])
def test_what_can_fail_is_checked_before_the_greeting(ftpd, served, inetd_spawn, tmp_path,
                                                      case):
    users = tmp_path / "users.toml"
    users.write_text('[users.bob]\npassword = 7\nhome = "/tmp"\n')
    args = {"bad-users-file": ["--users", str(users)],
            "missing-banner-file": ["--banner-file", str(tmp_path / "absent")],
            "unopenable-log": ["--log", str(tmp_path / "no" / "such" / "dir.log")]}[case]
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-I", "-r", str(served), *args], server_side)
    assert Control(client).read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) in (1, 2)
