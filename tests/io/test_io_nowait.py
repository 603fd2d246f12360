"""A call the core asks for that can be answered from memory (``fn.nowait``) skips the
worker pool: a login on a filesystem already opened costs no thread round trip. One
that cannot (``NOT_NOW``, or no ``nowait``) still runs in the pool, off the loop."""

from __future__ import annotations

import ftplib
import os

from ftpsupport import DEADLINE

from ftpd import app
from ftpd.auth.base import Account
from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS
from ftpd.io.nowait import NOT_NOW, answer_now


def _login(server: FTPServer) -> str:
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", server.port, timeout=DEADLINE)
        return ftp.login()


def _fs_with(name: str) -> MemoryFS:
    return MemoryFS({f"/{name}": b"x"})


def test_a_factory_answered_now_never_starts_the_pool():
    with FTPServer(_fs_with("a.txt")) as server:
        assert _login(server).startswith("230")
        assert server.server._fs_pool is None  # the login asked no worker


def _counted(fs: MemoryFS, calls: list[str], nowait: bool) -> object:
    def factory(account: Account) -> MemoryFS:
        calls.append("pool")
        return fs

    if nowait:
        factory.nowait = lambda account: calls.append("nowait") or NOT_NOW
    return factory


def test_not_now_and_no_nowait_go_through_the_pool():
    for nowait in (True, False):
        calls: list[str] = []
        fs = _fs_with("b.txt")
        with FTPServer(fs, fs_factory=_counted(fs, calls, nowait)) as server:
            assert _login(server).startswith("230")
            assert server.server._fs_pool._threads  # the real call ran in a worker
        assert calls == (["nowait", "pool"] if nowait else ["pool"])


def test_answer_now_without_nowait_is_not_now():
    assert answer_now(len, ((),)) is NOT_NOW
    assert answer_now(_counted(MemoryFS(), [], False), (None,)) is NOT_NOW


def test_local_homes_are_answered_from_memory_only_while_recently_checked(
        tmp_path, monkeypatch):
    """A burst of logins looks at the disk once per FS_RECHECK seconds; after that the
    pool checks again, so a recreated home is seen by the next login."""
    now = [1000.0]
    monkeypatch.setattr(app, "_monotonic", lambda: now[0])
    monkeypatch.setattr(app, "_FS_CACHE", {})
    home = tmp_path / "home"
    home.mkdir()
    account = Account("alice", str(home), "elr")
    assert app.local_fs.nowait(account) is NOT_NOW  # never opened: the pool opens it
    first = app.local_fs(account)
    now[0] += app.FS_RECHECK / 2
    assert app.local_fs.nowait(account) is first
    os.rename(home, tmp_path / "home.bak")
    home.mkdir()
    now[0] += app.FS_RECHECK
    assert app.local_fs.nowait(account) is NOT_NOW  # too old: looked at again
    fresh = app.local_fs(account)
    assert fresh is not first
    assert app.local_fs.nowait(account) is fresh
