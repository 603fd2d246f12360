"""Filesystems that misbehave on purpose, wrapped around a MemoryFS: one whose every
call blocks until the test releases it, one whose chosen methods raise."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ftpsupport import DEADLINE

from ftpd.fs.memory import MemoryFS

METHODS = ("stat", "lstat", "listdir", "readlink", "open_read", "open_write", "mkdir",
           "rmdir", "remove", "rename", "chmod", "utime", "symlink")


class Wrapped:
    """Every FileSystem method of *inner*, passed through ``around(name, call)``."""

    def __init__(self, inner: MemoryFS) -> None:
        self.inner = inner

    def around(self, name: str, call: Callable[[], Any]) -> Any:
        return call()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in METHODS:
            return attr
        return lambda *a, **kw: self.around(name, lambda: attr(*a, **kw))


class BlockingFS(Wrapped):
    """Once ``armed``, every call waits until ``release()``: ``entered`` says a call is
    waiting; ``gave_up`` that one waited DEADLINE seconds without a release (the
    server called it on its event loop, so the test could not go on to release it)."""

    def __init__(self, inner: MemoryFS) -> None:
        super().__init__(inner)
        self.armed: bool | set[str] = False  # True: every call; a set: calls of those
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gave_up = False
        self.threads: set[str] = set()
        self.opened: list[Any] = []  # every file object handed out

    def around(self, name: str, call: Callable[[], Any]) -> Any:
        self.threads.add(threading.current_thread().name)
        if self.armed is True or (self.armed and name in self.armed):  # True, or a set
            self.entered.set()
            if not self.gate.wait(DEADLINE):
                self.gave_up = True
        result = call()
        if name.startswith("open_"):
            self.opened.append(result)
        return result

    def release(self) -> None:
        self.armed = False
        self.gate.set()


class FaultyFS(Wrapped):
    """The methods named in ``faults`` raise the exception given for them."""

    def __init__(self, inner: MemoryFS, faults: dict[str, BaseException] | None = None) -> None:
        super().__init__(inner)
        self.faults = dict(faults or {})

    def around(self, name: str, call: Callable[[], Any]) -> Any:
        fault = self.faults.get(name)
        if fault is not None:
            raise fault
        return call()
