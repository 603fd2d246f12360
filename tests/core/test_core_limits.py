"""The per-user ledger, the quota writer and the usage walk (core/limits.py)."""

from __future__ import annotations

import io

import pytest

from ftpd.core.errors import FTPError
from ftpd.core.limits import Ledger, QuotaWriter, usage_of
from ftpd.fs.memory import MemoryFS


def test_the_ledger_counts_sessions_and_forgets_usage_with_the_last():
    ledger = Ledger()
    assert ledger.admit("alice", 2) and ledger.admit("alice", 2)
    assert not ledger.admit("alice", 2)
    assert all(ledger.admit("bob", 0) for _ in range(5))  # 0: no limit
    ledger.usage["alice"] = 100
    ledger.grow("alice", 50)
    ledger.grow("alice", -500)  # never below nothing
    assert ledger.usage["alice"] == 0
    ledger.grow("carol", 10)  # not measured: nothing to keep up to date
    assert "carol" not in ledger.usage
    ledger.leave("alice")
    assert ledger.admit("alice", 2)  # a place came free
    ledger.leave("alice")
    ledger.leave("alice")
    assert "alice" not in ledger.sessions and "alice" not in ledger.usage


class Sink(io.BytesIO):
    aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_the_quota_writer_keeps_what_fits_then_refuses_with_552():
    sink = Sink()
    writer = QuotaWriter(sink, room=10, quota=1000)
    assert writer.write(b"12345") == 5
    with pytest.raises(FTPError) as refused:
        writer.write(memoryview(b"abcdefgh"))
    assert refused.value.code == 552 and "Quota exceeded" in refused.value.text
    assert sink.getvalue() == b"12345abcde"  # exactly the room, nothing beyond
    with pytest.raises(FTPError):
        writer.write(b"x")
    assert not hasattr(writer, "fileno")  # no splice(2) past it
    writer.abort()
    assert sink.aborted
    writer.close()
    assert sink.closed


def test_usage_counts_regular_files_under_the_root_without_following_links():
    fs = MemoryFS({"/a": b"x" * 10, "/d/b": b"y" * 20, "/d/e/c": b"z" * 30})
    fs.symlink("/d", "/link")
    assert usage_of(fs) == 60
