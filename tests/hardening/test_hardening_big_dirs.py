"""Big directories against an embedded server (issue 10, points 5 and 8): a pattern that
backtracks over 2,000 long names is refused with 550 within one budget for the command
(it blocked the loop for 7 s), and a STAT listing too big for one reply is refused
instead of closing the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hhelpers import Control, read_all

from ftpd.core import listing
from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS

BOMB = "*" + "a" * 120 + "b"


def _tree() -> MemoryFS:
    fs = MemoryFS({"/small/x.txt": b"x", "/small/y.log": b"y"})
    fs.mkdir("/bomb")
    for i in range(2000):
        fs.open_write("/bomb/" + "a" * 200 + f"{i:04d}").close()
    fs.mkdir("/wide")
    for i in range(50_000):  # about 110 bytes a line in LIST form: over 5 MB
        fs.open_write(f"/wide/{'w' * 60}{i:06d}").close()
    return fs


@pytest.fixture(scope="module")
def server() -> Iterator[FTPServer]:
    with FTPServer(_tree(), users={"user": "pw"}) as served:
        yield served


@pytest.fixture
def session(server: FTPServer) -> Iterator[Control]:
    c = Control(server.port)
    c.login()
    yield c
    c.close()


def test_nlst_pattern_bomb_is_refused_within_one_budget(session, monkeypatch):
    steps = [0]
    real = listing._match

    def counting(pattern: str, name: str, limit: int):
        ok, n = real(pattern, name, limit)
        steps[0] += n
        return ok, n

    monkeypatch.setattr(listing, "_match", counting)
    data = session.data()
    session.ok(f"NLST bomb/{BOMB}", 150)
    assert read_all(data) == b""
    code, text = session.reply()
    assert code == 550 and "Pattern too costly" in text, text
    names = 2000 * 204
    assert steps[0] <= listing.MATCH_BUDGET + listing.MATCH_STEPS_PER_CHAR * names + 1
    session.ok("NOOP", 200)  # the session goes on


def test_nlst_pattern_with_a_directory_part_gives_paths(session):
    data = session.data()
    session.ok("NLST small/*.txt", 150)
    assert read_all(data) == b"small/x.txt\r\n"
    assert session.reply()[0] == 226
    session.ok("CWD small", 250)
    data = session.data()
    session.ok("NLST *.log", 150)
    assert read_all(data) == b"y.log\r\n"
    assert session.reply()[0] == 226


def test_stat_of_a_directory_too_big_for_a_reply(session):
    code, text = session.cmd("STAT /wide")
    assert code == 550 and "too large" in text, text
    session.ok("NOOP", 200)  # not closed
    assert session.cmd("STAT /small")[0] == 213
