"""The wu-ftpd xferlog writer: field by field, anonymous users, reopen after logrotate."""

from __future__ import annotations

import time

from ftpd.core import events as core
from ftpd.events.bus import EventBus
from ftpd.events.xferlog import XferLog, format_line

from .conftest import ANON, upload

T = 1764079260.25


def stamp(t: float = T) -> str:
    return time.asctime(time.localtime(t))


def test_an_upload_by_a_real_user():
    line = format_line(upload(path="/incoming/q3 report.pdf", time=T))
    assert line == (f"{stamp()} 2 192.0.2.10 1048576 /incoming/q3_report.pdf b _ i r alice "
                    "ftp 0 * c\n")
    assert len(line.split()) == 18  # the 5-word ctime date, then 13 fields


def test_an_aborted_ascii_download_by_an_anonymous_user_logs_the_email():
    event = core.TransferEvent(ANON, T, "download", "/pub/a b\tc", 100, 0.2, "ABOR", "A", 0, 900)
    assert format_line(event) == (f"{stamp()} 1 198.51.100.7 100 /pub/a_b_c a _ o a "
                                  "guest@example.org ftp 0 * i\n")


def test_ctime_format_and_control_characters():
    event = upload(path="/x\ny", duration=65.6)
    fields = format_line(event).split()
    assert fields[5:7] == ["66", "192.0.2.10"]
    assert fields[8] == "/x_y"
    month_day = time.strftime("%b", time.localtime(T))
    assert fields[1] == month_day


def test_an_anonymous_user_without_an_email_is_still_one_field():
    info = core.SessionInfo("s" * 12, "192.0.2.1", "anonymous", "", True)
    assert format_line(upload(info=info)).split()[13] == "anonymous"


def test_the_listener_writes_transfers_only_and_reopens(tmp_path):
    path = tmp_path / "xferlog"
    bus = EventBus()
    xlog = XferLog(str(path))
    xlog.attach(bus)
    try:
        bus.generate("fs.upload", upload())
        bus.generate("fs.listing", core.ListingEvent(ANON, T, "/", "OK"))
        bus.generate("fs.download", upload(direction="download", status="INCOMPLETE"))
        lines = path.read_text().splitlines()
        assert len(lines) == 2
        assert lines[0].endswith(" b _ i r alice ftp 0 * c")
        assert lines[1].endswith(" b _ o r alice ftp 0 * i")
        rotated = tmp_path / "xferlog.1"
        path.rename(rotated)
        bus.generate("fs.upload", upload())  # still the old file until reopen
        xlog.reopen()
        bus.generate("fs.upload", upload(path="/after"))
        assert len(rotated.read_text().splitlines()) == 3
        assert path.read_text().split()[8] == "/after"
    finally:
        xlog.close()
    bus.generate("fs.upload", upload())
    assert len(path.read_text().splitlines()) == 1
    assert bus.names() == []
