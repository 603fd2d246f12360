"""What the loop needs of ``selectors``, leaner: register, modify, unregister and select
over ``select.epoll`` with one dict from fd to the caller's data. ``selectors`` makes a
``SelectorKey`` per registration and looks one up per event; a login pays for three of
those round trips, and ``select`` hands out ``(fd, mask, data)`` tuples directly. Where
there is no epoll (launchd on macOS), the same interface over ``selectors``."""

from __future__ import annotations

import math
import select
import selectors
from typing import Any

EVENT_READ, EVENT_WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
Ready = list[tuple[int, int, Any]]


def _fd(fileobj: Any) -> int:
    return fileobj if isinstance(fileobj, int) else fileobj.fileno()


class EpollPoller:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._data: dict[int, Any] = {}
        self._flags = {EVENT_READ: select.EPOLLIN, EVENT_WRITE: select.EPOLLOUT,
                       EVENT_READ | EVENT_WRITE: select.EPOLLIN | select.EPOLLOUT}

    def register(self, fileobj: Any, mask: int, data: Any) -> None:
        fd = _fd(fileobj)
        if fd in self._data:
            raise KeyError(f"{fileobj!r} (fd {fd}) is already registered")
        self._epoll.register(fd, self._flags[mask])
        self._data[fd] = data

    def modify(self, fileobj: Any, mask: int, data: Any) -> None:
        fd = _fd(fileobj)
        if fd not in self._data:
            raise KeyError(f"{fileobj!r} (fd {fd}) is not registered")
        self._epoll.modify(fd, self._flags[mask])
        self._data[fd] = data

    def unregister(self, fileobj: Any) -> None:
        fd = _fd(fileobj)
        del self._data[fd]  # KeyError when not registered, as selectors says
        try:
            self._epoll.unregister(fd)
        except OSError:  # closed already: the kernel dropped it from the set
            pass

    def registered(self, fd: int) -> bool:
        return fd in self._data

    def select(self, timeout: float | None) -> Ready:
        """Ready ``(fd, mask, data)``; *timeout* None waits, rounded up to a millisecond
        as ``selectors`` does (epoll would otherwise return early and spin)."""
        wait = -1.0 if timeout is None else (0.0 if timeout <= 0 else math.ceil(timeout * 1e3) * 1e-3)
        try:
            events = self._epoll.poll(wait, max(len(self._data), 1))
        except InterruptedError:
            return []
        data, ready = self._data, []
        for fd, flags in events:
            item = data.get(fd)
            if item is not None:
                mask = (EVENT_WRITE if flags & ~select.EPOLLIN else 0) | \
                       (EVENT_READ if flags & ~select.EPOLLOUT else 0)
                ready.append((fd, mask, item))
        return ready

    def close(self) -> None:
        self._epoll.close()
        self._data.clear()


class SelectorsPoller:
    """The same interface over ``selectors.DefaultSelector`` (kqueue, poll, select)."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def register(self, fileobj: Any, mask: int, data: Any) -> None:
        self._selector.register(fileobj, mask, data)

    def modify(self, fileobj: Any, mask: int, data: Any) -> None:
        self._selector.modify(fileobj, mask, data)

    def unregister(self, fileobj: Any) -> None:
        self._selector.unregister(fileobj)

    def registered(self, fd: int) -> bool:
        return fd in self._selector.get_map()

    def select(self, timeout: float | None) -> Ready:
        return [(key.fd, mask, key.data) for key, mask in self._selector.select(timeout)]

    def close(self) -> None:
        self._selector.close()


def make_poller() -> EpollPoller | SelectorsPoller:
    return EpollPoller() if hasattr(select, "epoll") else SelectorsPoller()
