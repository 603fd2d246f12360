"""The core's small pure pieces on their own: TYPE A transforms, the bounded
pattern matcher, ls/MLSx formatting, the login throttle, errno mapping, ids."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from ftpd.core import listing
from ftpd.core.errors import FTPError, reply_for_oserror
from ftpd.core.ids import is_ipv6, normalize_host, session_id
from ftpd.core.listing import MAX_PATTERN, ls_line, match, mlst_facts
from ftpd.core.paths import basename, join, parent, resolve
from ftpd.core.textmode import FromNetwork, ToNetwork
from ftpd.core.throttle import LoginThrottle
from ftpd.fs.memory import MemoryFS


# -- TYPE A -----------------------------------------------------------------------------------
def _run(transform, data: bytes, size: int) -> bytes:
    out = b"".join(transform(data[i:i + size]) for i in range(0, len(data), size))
    return out + transform.flush()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_to_network(size):
    assert _run(ToNetwork(), b"a\nb\r\nc\n\n", size) == b"a\r\nb\r\nc\r\n\r\n"
    assert _run(ToNetwork(), b"\r\n\r\n", size) == b"\r\n\r\n"
    assert _run(ToNetwork(), b"bare\rcr", size) == b"bare\rcr"
    assert _run(ToNetwork(), b"end\r", size) == b"end\r"
    assert _run(ToNetwork(), b"", size) == b""


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_from_network(size):
    assert _run(FromNetwork(), b"a\r\nb\r\n\r\nc", size) == b"a\nb\n\nc"
    assert _run(FromNetwork(), b"bare\rcr\r", size) == b"bare\rcr\r"
    assert _run(FromNetwork(), b"\r\r\n", size) == b"\r\n"
    assert _run(FromNetwork(), b"lf only\n", size) == b"lf only\n"


def test_from_network_holds_a_split_cr():
    t = FromNetwork()
    assert t(b"abc\r") == b"abc"
    assert t(b"\ndef") == b"\ndef"
    assert t(b"x\r") == b"x"
    assert t(b"y") == b"\ry"
    assert t(b"\r") == b""
    assert t.flush() == b"\r"
    assert t.flush() == b""


def test_round_trip():
    data = b"one\ntwo\n\nthree"
    assert _run(FromNetwork(), _run(ToNetwork(), data, 3), 2) == data


# -- pattern matching ------------------------------------------------------------------------
@pytest.mark.parametrize(("pattern", "name", "ok"), [
    ("*", "anything", True), ("*", "", True), ("?", "a", True), ("?", "", False),
    ("*.txt", "a.txt", True), ("*.txt", "a.txt.gz", False), ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "aXXbYY", False), ("?.log", "c.log", True), ("?.log", "cc.log", False),
    ("a**b", "ab", True), ("[ab]", "a", False), ("[ab]", "[ab]", True),
    ("caf\udce9*", "caf\udce9.txt", True),
])
def test_match(pattern, name, ok):
    assert match(pattern, name) is ok


def test_match_is_bounded():
    pattern = "*a" * 100 + "b"
    name = "a" * 5000
    assert match(pattern, name) is False
    budget = listing.MatchBudget(listing.MAX_MATCH_STEPS)  # counted, not timed
    assert match(pattern, name, budget) is False
    assert budget.spent <= listing.MAX_MATCH_STEPS  # (past it, 550: see below)
    assert match("a" * (MAX_PATTERN + 1), "a" * (MAX_PATTERN + 1)) is False


# -- listings ----------------------------------------------------------------------------------
def _st(mode, size=5, mtime=0.0):
    return os.stat_result((mode, 7, 3, 1, 0, 0, size, int(mtime), mtime, mtime))


def test_ls_line_recent_and_old():
    fs = MemoryFS()
    now = 1_700_000_000.0
    recent = ls_line(fs, "/f", "f", _st(stat.S_IFREG | 0o644, 42, now - 3600), now)
    assert recent.startswith("-rw-r--r--   1 ")
    assert recent.endswith(" f")
    assert " 42 Nov 14 21:13 f" in recent
    old = ls_line(fs, "/f", "f", _st(stat.S_IFREG | 0o600, 1, now - 400 * 86400), now)
    assert old.endswith(" 1 Oct 10  2022 f")
    d = ls_line(fs, "/d", "d", _st(stat.S_IFDIR | 0o755, 4096, now), now)
    assert d.startswith("drwxr-xr-x")


def test_mlst_facts():
    st = _st(stat.S_IFREG | 0o640, 9, 0)
    line = mlst_facts("f", st, "elr", ["type", "size", "modify", "perm", "unique", "unix.mode"])
    assert line == "type=file;size=9;modify=19700101000000;perm=r;unique=3g7;unix.mode=0640; f"
    d = mlst_facts("d", _st(stat.S_IFDIR | 0o755), "elradfmw", ["type", "size", "perm"])
    assert d == "type=dir;perm=elcmpdf; d"  # no size fact for a directory
    assert mlst_facts("n", st, "", []) == " n"


# -- paths ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cwd", "arg", "out"), [
    ("/", "a", "/a"), ("/a", "b", "/a/b"), ("/a", "/b", "/b"), ("/a/b", "..", "/a"),
    ("/", "/../..", "/"), ("/a", "../../..", "/"), ("/", "a//b/./c/", "/a/b/c"),
    ("/a", "", "/a"), ("/", "...", "/..."), ("/", "a/../../b", "/b"),
])
def test_resolve(cwd, arg, out):
    assert resolve(cwd, arg) == out


def test_resolve_refuses_nul():
    with pytest.raises(FTPError) as info:
        resolve("/", "a\0b")
    assert info.value.code == 501


def test_path_helpers():
    assert parent("/a/b") == "/a" and parent("/a") == "/" and parent("/") == "/"
    assert basename("/a/b") == "b" and basename("/") == ""
    assert join("/", "x") == "/x" and join("/a", "x") == "/a/x"


# -- login throttle ---------------------------------------------------------------------------
def test_throttle_doubles_caps_and_forgets():
    t = LoginThrottle()
    assert [t.failed("h", 0) for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    assert t.failed("other", 0) == 1
    assert t.failed("h", 0 + 601) == 1  # more than 10 minutes since the last failure
    t.succeeded("h", "")
    assert t.failed("h", 700) == 1


def test_throttle_success_forgets_only_that_names_failures():
    t = LoginThrottle()
    assert [t.failed("h", 0, "alice"), t.failed("h", 0, "bob")] == [1, 2]
    t.succeeded("h", "anonymous")  # nothing failed for anonymous: nothing forgotten
    t.succeeded("other", "alice")  # another address: nothing forgotten here
    assert t.failed("h", 0, "alice") == 4
    t.succeeded("h", "alice")  # alice's two failures go, bob's one stays
    assert t.failed("h", 0, "carol") == 2
    t.succeeded("h", "bob")
    t.succeeded("h", "carol")
    assert "h" not in t._failures
    assert t.failed("h", 0, "alice") == 1


def test_throttle_names_per_address_are_bounded_and_still_count():
    t = LoginThrottle(base_delay=1, cap=10**6)
    for i in range(100):
        t.failed("h", 0, f"user{i}" + "x" * 2000)
    names, _ = t._failures["h"]
    assert len(names) <= 17
    assert sum(names.values()) == 100
    t.succeeded("h", "user0" + "x" * 2000)  # long forgotten one by one: still counts
    assert sum(t._failures["h"][0].values()) == 100


def test_throttle_survives_many_failures():
    t = LoginThrottle(cap=8)
    assert [t.failed("h", 0) for _ in range(2000)][-1] == 8


def test_throttle_memory_is_bounded():
    t = LoginThrottle(max_addresses=10)
    for i in range(100):
        t.failed(f"10.0.0.{i}", 0)
    assert len(t._failures) == 10


def test_throttle_custom_base():
    t = LoginThrottle(base_delay=0.5, cap=3)
    assert [t.failed("h", 0) for _ in range(5)] == [0.5, 1, 2, 3, 3]


# -- errors and ids --------------------------------------------------------------------------
def test_errno_replies():
    assert reply_for_oserror(OSError(errno.ENOENT, "x"))[0] == 550
    assert reply_for_oserror(OSError(errno.EACCES, "x"))[0] == 550
    assert reply_for_oserror(OSError(errno.ENOSPC, "x"))[0] == 452
    assert reply_for_oserror(OSError(errno.EDQUOT, "x"))[0] == 552
    assert reply_for_oserror(OSError(errno.EFBIG, "x"))[0] == 552
    assert reply_for_oserror(OSError(errno.EIO, "Input/output error")) == (
        550, "Input/output error")
    assert reply_for_oserror(OSError("no errno"))[0] == 550


def test_ids():
    sid = session_id(1_700_000_000, 1234, 7)
    assert len(sid) == 12
    assert sid != session_id(1_700_000_000, 1234, 8)
    assert normalize_host("::ffff:192.0.2.1") == "192.0.2.1"
    assert normalize_host("::FFFF:192.0.2.1") == "192.0.2.1"
    assert normalize_host("fe80::1%eth0") == "fe80::1"
    assert normalize_host("192.0.2.1") == "192.0.2.1"
    assert is_ipv6("::1") and not is_ipv6("127.0.0.1")


# -- the matching budget of one command (issue 10, point 5) ------------------------------------
BOMB = "*" + "a" * 120 + "b"  # backtracks over every position of every long name


def _bomb_names(count: int = 2000) -> list[str]:
    return ["a" * 200 + f"{i:04d}" for i in range(count)]


def test_match_budget_is_shared_by_all_names_of_a_command():
    names = _bomb_names()
    budget = listing.MatchBudget.for_names(names)
    allowed = budget.left
    with pytest.raises(FTPError) as info:
        for name in names:
            listing.match(BOMB, name, budget)
    assert info.value.code == 550
    # the whole command stopped within its budget (plus the one name that ran it out)
    assert allowed < budget.spent <= allowed + listing.MAX_MATCH_STEPS


def test_match_budget_leaves_ordinary_patterns_alone():
    names = [f"file{i:05d}.txt" for i in range(20_000)] + ["x" * 250 + ".log"]
    budget = listing.MatchBudget.for_names(names)
    assert sum(listing.match("*.txt", n, budget) for n in names) == 20_000
    assert listing.match("*.log", names[-1], budget)


def test_listing_matches_a_bounded_slice_per_chunk(monkeypatch):
    """Every chunk the listing generator yields costs at most MATCH_SLICE steps plus one
    name's: the loop serves others between slices, counted, not timed."""
    steps: list[int] = []
    real = listing._match

    def counting(pattern: str, name: str, limit: int):
        ok, n = real(pattern, name, limit)
        steps.append(n)
        return ok, n

    monkeypatch.setattr(listing, "_match", counting)
    fs = MemoryFS()
    names = _bomb_names(300)
    chunks = listing.list_dir(fs, "/", names, "nlst", pattern=BOMB)
    per_chunk = []
    with pytest.raises(FTPError):
        for chunk in chunks:
            assert chunk == b""  # nothing matches: every chunk is a "nothing yet"
            per_chunk.append(sum(steps))
            steps.clear()
    assert len(per_chunk) > 10
    worst_name = len(names[0]) * 121
    assert max(per_chunk) <= listing.MATCH_SLICE + worst_name
