"""session.disconnect: every session that began raises it once when it ends, logged in
or not, with its reason and totals (the session log's DISCONNECT line)."""

from __future__ import annotations

from ftpd.core import actions as A


def disconnects(driver):
    return [e.data for e in driver.events if e.name == "session.disconnect"]


def test_quit_before_login_is_a_disconnect(ftp):
    ftp.send("QUIT")
    [event] = disconnects(ftp)
    assert event.reason == "QUIT" and event.session.user == ""
    assert "session.logout" not in ftp.event_names()


def test_eof_before_login_is_a_disconnect(ftp):
    ftp.process(ftp.session.connection_lost())
    assert [e.reason for e in disconnects(ftp)] == ["EOF"]


def test_too_many_failed_logins_is_a_disconnect(make):
    d = make(max_login_attempts=2)
    for _ in range(2):
        d.send("USER alice")
        d.send("PASS wrong")
    assert isinstance(d.log[-1], A.Close)
    assert [e.reason for e in disconnects(d)] == ["ERROR"]


def test_a_logged_in_disconnect_carries_the_totals(alice):
    alice.dialogue(["PASV", "RETR hello.txt"])
    alice.send("QUIT")
    [event] = disconnects(alice)
    assert (event.reason, event.files_down, event.bytes_down) == ("QUIT", 1, 12)
    assert event.session.user == "alice"
    assert alice.event_names()[-1] == "session.logout"  # the NcFTPd logout stays last


def test_timeout_is_a_disconnect(ftp):
    ftp.process(ftp.session.timeout())
    ftp.process(ftp.session.connection_lost())  # the transport closes: no second event
    assert [e.reason for e in disconnects(ftp)] == ["TIMEOUT"]
