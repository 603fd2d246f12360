"""The session log's lines (ftpd/sessionlog.py): one per fact, the session id first,
client-chosen names and paths escaped so that no field and no line can be forged."""

from __future__ import annotations

import logging
import re

import pytest

from ftpd.core import events as core
from ftpd.events.bus import EventBus
from ftpd.sessionlog import SessionLog, field, login_failed_line, refused_line

T = 1_700_000_000.0
BOB = core.SessionInfo("AAAAAAAAAAAA", "192.0.2.7", "bob")


@pytest.mark.parametrize(("value", "written"), [
    ("bob", "bob"),
    ("/pub/a.txt", "/pub/a.txt"),
    ("é-ü", "é-ü"),
    ("", '""'),
    ("x from=1.2.3.4", '"x from=1.2.3.4"'),
    ('x" from=1.2.3.4 "', '"x\\" from=1.2.3.4 \\""'),
    ("a\\b", '"a\\\\b"'),
    ("a\nb\rc\td", '"a\\nb\\rc\\td"'),
    ("a\x1bb\x00", '"a\\x1bb\\x00"'),
    ("a\u2028b\u00a0c", '"a\\u2028b\\xa0c"'),
    ("caf\udce9", '"caf\\xe9"'),  # a byte that was not UTF-8 (surrogateescape)
])
def test_field_is_bare_only_when_plain(value, written):
    assert field(value) == written


# What a reader of a session-log field may assume: one token, or one quoted string
# whose escapes hide every quote, backslash and space.
FIELD = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^"\s]+)')


@pytest.mark.parametrize("name", ["x from=1.2.3.4", 'x" from=1.2.3.4 "', "\\", '\\"',
                                  "a\nLOGIN FAILED user=a from=1.2.3.4", " ", '"'])
def test_a_forged_name_stays_inside_its_field(name):
    line = login_failed_line(core.LoginFailedEvent(BOB, T, name, 1))
    assert "\n" not in line and "\r" not in line
    m = re.fullmatch(rf"\[AAAAAAAAAAAA\] LOGIN FAILED user=({FIELD.pattern}) from=(\S+)", line)
    assert m is not None, line
    assert m.group(2) == "192.0.2.7"


@pytest.fixture
def records(caplog):
    caplog.set_level(logging.INFO, logger="ftpd.session")
    return caplog


def test_each_fact_is_one_info_line_with_the_session_id(records):
    bus = EventBus()
    SessionLog().attach(bus)
    bus.generate("session.connect", core.ConnectEvent(BOB, T))
    bus.generate("session.login-failed", core.LoginFailedEvent(BOB, T, "x y", 1))
    bus.generate("session.login", core.LoginEvent(BOB, T))
    bus.generate("fs.download", core.TransferEvent(BOB, T, "download", "/a b", 10, 0.25, "OK",
                                                   "I", 0, 10, "RETR"))
    bus.generate("fs.upload", core.TransferEvent(BOB, T, "upload", "/up", 3, 1.0, "ABOR",
                                                 "I", 0, 3, "STOR"))
    bus.generate("session.logout", core.LogoutEvent(BOB, T, 5.0, 1, 10, 0, 3, "QUIT"))
    bus.generate("session.disconnect", core.LogoutEvent(BOB, T, 5.0, 1, 10, 0, 3, "QUIT"))
    assert [r.levelno for r in records.records] == [logging.INFO] * 6
    assert [r.getMessage() for r in records.records] == [
        "[AAAAAAAAAAAA] CONNECT from=192.0.2.7",
        '[AAAAAAAAAAAA] LOGIN FAILED user="x y" from=192.0.2.7',
        "[AAAAAAAAAAAA] LOGIN OK user=bob from=192.0.2.7",
        '[AAAAAAAAAAAA] DOWNLOAD path="/a b" bytes=10 seconds=0.250 status=OK',
        "[AAAAAAAAAAAA] UPLOAD path=/up bytes=3 seconds=1.000 status=ABOR",
        "[AAAAAAAAAAAA] DISCONNECT reason=QUIT files_down=1 bytes_down=10 files_up=0 "
        "bytes_up=3 seconds=5.000",
    ]


def test_close_stops_the_lines(records):
    bus = EventBus()
    log = SessionLog()
    log.attach(bus)
    log.close()
    bus.generate("session.connect", core.ConnectEvent(BOB, T))
    assert records.records == []


def test_refused_line():
    assert refused_line("S", "::1", "deny") == "[S] REFUSED from=::1 reason=deny"


def test_quiet_attaches_no_session_log(monkeypatch):
    """-q writes no INFO line, so the session log does not listen (the bus then has
    nobody for the session events, and they cost nothing to raise)."""
    from ftpd import app, config
    from ftpd import log as ftpd_log

    settings = config.resolve({})
    for level, attached in ((ftpd_log.WARNING, False), (ftpd_log.INFO, True)):
        monkeypatch.setattr(ftpd_log, "_threshold", level)
        bus = EventBus()
        listeners = app.build_listeners(settings, bus)
        assert ("session.login" in bus) is attached
        assert any(isinstance(x, SessionLog) for x in listeners) is attached
        for listener in listeners:
            listener.close()
