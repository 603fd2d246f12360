"""MemoryFS is called from the worker pool, by several sessions at once: each of its
operations runs under its lock, so a check and its change are one step."""

from __future__ import annotations

from ftpd.fs.memory import MemoryFS


class Watched(MemoryFS):
    """Notes, on every path look-up, whether the operation holds the lock."""

    def __init__(self, *args, **kwargs) -> None:
        self.held: list[bool] = []
        super().__init__(*args, **kwargs)

    def _walk(self, vpath, follow=True, depth=0):
        self.held.append(self._lock._is_owned())
        return super()._walk(vpath, follow, depth)


def test_every_operation_runs_under_the_lock():
    fs = Watched({"/a/f": b"data"})
    fs.held.clear()
    fs.stat("/a/f")
    fs.lstat("/a")
    fs.listdir("/a")
    fs.open_read("/a/f").close()
    fs.open_write("/a/g", exclusive=True).close()
    fs.mkdir("/b")
    fs.makedirs("/c/d")
    fs.symlink("/a/f", "/a/l")
    fs.readlink("/a/l")
    fs.chmod("/a/f", 0o600)
    fs.utime("/a/f", 0.0)
    fs.rename("/a/g", "/b/g", replace=False)
    fs.remove("/b/g")
    fs.rmdir("/c/d")
    assert fs.held and all(fs.held)
    assert not fs._lock._is_owned()
