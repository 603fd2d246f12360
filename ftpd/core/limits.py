"""Per-user limits the sessions of one server share: how many sessions each user has
open (``max-sessions``) and how much storage their home holds (``quota``).

The ledger lives in ``SessionConfig`` (kept across a SIGHUP, like the login throttle)
and is touched only on the loop. A home's usage is measured off the loop (``usage_of``,
in the worker pool) when a user's first session logs in, then kept up to date as that
user's uploads and deletions complete, and forgotten when their last session ends (so
changes made behind the server's back count from the next login). Concurrent sessions
of one user share the figure: an upload may use the room that was left when it began,
so two uploads running at once can together pass the quota by what the other wrote
meanwhile; the next upload is then refused."""

from __future__ import annotations

import stat
from typing import Any

from ftpd.core.errors import FTPError
from ftpd.core.paths import join
from ftpd.fs.base import FileSystem


class Ledger:
    """Sessions logged in and storage used, by user name."""

    __slots__ = ("sessions", "usage")

    def __init__(self) -> None:
        self.sessions: dict[str, int] = {}
        self.usage: dict[str, int] = {}  # bytes under the home, for users with a quota

    def admit(self, name: str, most: int) -> bool:
        """Count one more session of *name*, unless it has *most* (0: no limit) already."""
        count = self.sessions.get(name, 0)
        if most and count >= most:
            return False
        self.sessions[name] = count + 1
        return True

    def leave(self, name: str) -> None:
        """A session of *name* ended (or logged out); the last one forgets the usage."""
        count = self.sessions.get(name, 0) - 1
        if count > 0:
            self.sessions[name] = count
        else:
            self.sessions.pop(name, None)
            self.usage.pop(name, None)

    def grow(self, name: str, delta: int) -> None:
        """The storage of *name* changed by *delta* bytes (an upload, a deletion)."""
        if name in self.usage:
            self.usage[name] = max(0, self.usage[name] + delta)


# -- in the worker pool -------------------------------------------------------------
def usage_of(fs: FileSystem) -> int:
    """The bytes of the regular files under the root: symbolic links are not followed
    and a directory that cannot be read counts as empty."""
    total, todo = 0, ["/"]
    while todo:
        directory = todo.pop()
        try:
            names = fs.listdir(directory)
        except OSError:
            continue
        for name, st in _lstats(fs, directory, names):
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
            elif stat.S_ISDIR(st.st_mode):
                todo.append(join(directory, name))
    return total


def _lstats(fs: FileSystem, directory: str, names: list[str]) -> Any:
    entries = getattr(fs, "lstat_entries", None)
    if entries is not None:
        yield from entries(directory, names)
        return
    for name in names:
        try:
            yield name, fs.lstat(join(directory, name))
        except OSError:
            continue


class QuotaWriter:
    """An upload's file that takes at most *room* bytes: the write that would pass it
    writes what fits, then raises ``552`` (the transfer ends there, keeping nothing
    beyond the quota). It has no ``fileno``, so the pool-fed pump writes through it
    (never splice(2) past it); everything else is the file's own (``close``, ``abort``)."""

    def __init__(self, f: Any, room: int, quota: int) -> None:
        self._f, self.room, self.quota = f, room, quota

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(view) > self.room:
            self._write_all(view[:self.room])
            self.room = 0
            raise FTPError(552, f"Quota exceeded ({self.quota} bytes); the upload was "
                                "stopped at the quota.")
        written = self._f.write(view)
        if written is not None:
            self.room -= written
        return written

    def _write_all(self, view: memoryview) -> None:
        while view:
            written = self._f.write(view)
            view = view[written or len(view):]

    def __getattr__(self, name: str) -> Any:
        if name == "fileno":
            raise AttributeError(name)
        return getattr(self._f, name)
