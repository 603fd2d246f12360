"""Fixtures for the core tests; the driver itself lives in ``core_driver``."""

from __future__ import annotations

from typing import Any

import pytest
from core_driver import Driver, FakeClock

from ftpd.fs.memory import MemoryFS


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memfs() -> MemoryFS:
    fs = MemoryFS({
        "/hello.txt": b"hello world\n",
        "/bin.dat": bytes(range(256)) * 4,
        "/pub/readme": b"line1\nline2\n",
        "/pub/a.txt": b"A",
        "/pub/b.txt": b"BB",
        "/pub/c.log": b"CCC",
    })
    fs.mkdir("/empty")
    return fs


@pytest.fixture
def make(memfs, clock):
    """make(**kw) -> a fresh Driver on the shared memfs and clock."""

    def factory(**kw: Any) -> Driver:
        kw.setdefault("fs", memfs)
        kw.setdefault("clock", clock)
        return Driver(**kw)

    return factory


@pytest.fixture
def ftp(make) -> Driver:
    """A fresh, not logged-in session (greeting already received)."""
    return make()


@pytest.fixture
def alice(make) -> Driver:
    """Logged in as the full-rights user, TYPE I."""
    d = make()
    d.login()
    d.send("TYPE I")
    return d


@pytest.fixture
def anon(make) -> Driver:
    """Logged in anonymously (read-only)."""
    d = make()
    d.login("anonymous", "guest@example.com")
    return d
