"""An in-memory filesystem, for embedding and for tests of the core. Thread-safe: the
server calls a filesystem from its worker pool, several sessions at once."""

from __future__ import annotations

import errno
import functools
import io
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from ftpd.core.paths import resolve


class _Node:
    __slots__ = ("mode", "mtime", "ino")
    _next_ino = 1

    def __init__(self, mode: int) -> None:
        self.mode = mode
        self.mtime = time.time()
        _Node._next_ino += 1
        self.ino = _Node._next_ino


class _Dir(_Node):
    __slots__ = ("children",)

    def __init__(self) -> None:
        super().__init__(stat.S_IFDIR | 0o755)
        self.children: dict[str, _Node] = {}


class _File(_Node):
    __slots__ = ("data",)

    def __init__(self) -> None:
        super().__init__(stat.S_IFREG | 0o644)
        self.data = bytearray()


class _Link(_Node):
    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        super().__init__(stat.S_IFLNK | 0o777)
        self.target = target


class _Writer(io.RawIOBase):
    """Writes straight into a memory file's bytearray."""

    def __init__(self, node: _File, pos: int, append: bool) -> None:
        self._node, self._pos, self._append = node, pos, append

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        data = self._node.data
        pos = len(data) if self._append else self._pos
        n = len(b)
        if pos > len(data):
            data.extend(b"\0" * (pos - len(data)))
        data[pos:pos + n] = b
        self._pos = pos + n
        self._node.mtime = time.time()
        return n


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """One operation at a time: a check and its change (an exclusive create, a rename
    that must not replace) are one step for every other thread."""
    @functools.wraps(method)
    def run(self: MemoryFS, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


class MemoryFS:
    """A tree of directories and byte strings held in memory."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self._lock = threading.RLock()
        self._root = _Dir()
        for path, data in (files or {}).items():
            self.makedirs(os.path.dirname(resolve("/", path)))
            with self.open_write(resolve("/", path)) as f:
                f.write(data)

    # -- lookup ------------------------------------------------------------------
    def _walk(self, vpath: str, follow: bool = True, depth: int = 0) -> _Node:
        if depth > 16:
            raise _err(errno.ELOOP, vpath)
        node: _Node = self._root
        parts = [p for p in vpath.split("/") if p]
        for i, part in enumerate(parts):
            if not isinstance(node, _Dir):
                raise _err(errno.ENOTDIR, vpath)
            child = node.children.get(part)
            if child is None:
                raise _err(errno.ENOENT, vpath)
            last = i == len(parts) - 1
            if isinstance(child, _Link) and (follow or not last):
                child = self._walk(child.target, True, depth + 1)
            node = child
        return node

    def _parent(self, vpath: str, root_errno: int = errno.EBUSY) -> tuple[_Dir, str]:
        if not vpath.strip("/"):  # the root has no parent: fail as the OS would
            raise _err(root_errno, vpath)
        head, name = vpath.rstrip("/").rsplit("/", 1)
        parent = self._walk(head or "/")
        if not isinstance(parent, _Dir):
            raise _err(errno.ENOTDIR, vpath)
        if not name:
            raise _err(errno.EINVAL, vpath)
        return parent, name

    @staticmethod
    def _stat(node: _Node) -> os.stat_result:
        size = len(node.data) if isinstance(node, _File) else (
            len(node.target) if isinstance(node, _Link) else 4096)
        nlink = 2 if isinstance(node, _Dir) else 1
        return os.stat_result((node.mode, node.ino, 1, nlink, 0, 0, size,
                               int(node.mtime), node.mtime, node.mtime))

    # -- the FileSystem interface -------------------------------------------------
    @_locked
    def stat(self, vpath: str) -> os.stat_result:
        return self._stat(self._walk(vpath))

    @_locked
    def lstat(self, vpath: str) -> os.stat_result:
        return self._stat(self._walk(vpath, follow=False))

    @_locked
    def listdir(self, vpath: str) -> list[str]:
        node = self._walk(vpath)
        if not isinstance(node, _Dir):
            raise _err(errno.ENOTDIR, vpath)
        return list(node.children)

    @_locked
    def readlink(self, vpath: str) -> str:
        node = self._walk(vpath, follow=False)
        if not isinstance(node, _Link):
            raise _err(errno.EINVAL, vpath)
        return node.target

    @_locked
    def open_read(self, vpath: str) -> BinaryIO:
        node = self._walk(vpath)
        if isinstance(node, _Dir):
            raise _err(errno.EISDIR, vpath)
        assert isinstance(node, _File)
        return io.BytesIO(bytes(node.data))

    @_locked
    def open_write(self, vpath: str, *, offset: int = 0, append: bool = False,
                   exclusive: bool = False) -> BinaryIO:
        parent, name = self._parent(vpath, errno.EISDIR)
        node = parent.children.get(name)
        if isinstance(node, _Link):
            node = self._walk(vpath)
        if node is not None and exclusive:
            raise _err(errno.EEXIST, vpath)
        if isinstance(node, _Dir):
            raise _err(errno.EISDIR, vpath)
        if node is None:
            node = parent.children[name] = _File()
        assert isinstance(node, _File)
        if not append and offset == 0:
            node.data.clear()
        # unbuffered, like LocalFS: what was written is visible at once
        return _Writer(node, offset, append)  # type: ignore[return-value]

    @_locked
    def mkdir(self, vpath: str) -> None:
        parent, name = self._parent(vpath, errno.EEXIST)
        if name in parent.children:
            raise _err(errno.EEXIST, vpath)
        parent.children[name] = _Dir()

    @_locked
    def makedirs(self, vpath: str) -> None:
        node = self._root
        for part in [p for p in vpath.split("/") if p]:
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Dir()
            if not isinstance(child, _Dir):
                raise _err(errno.ENOTDIR, vpath)
            node = child

    @_locked
    def rmdir(self, vpath: str) -> None:
        parent, name = self._parent(vpath)
        node = parent.children.get(name)
        if node is None:
            raise _err(errno.ENOENT, vpath)
        if not isinstance(node, _Dir):
            raise _err(errno.ENOTDIR, vpath)
        if node.children:
            raise _err(errno.ENOTEMPTY, vpath)
        del parent.children[name]

    @_locked
    def remove(self, vpath: str) -> None:
        parent, name = self._parent(vpath, errno.EISDIR)
        node = parent.children.get(name)
        if node is None:
            raise _err(errno.ENOENT, vpath)
        if isinstance(node, _Dir):
            raise _err(errno.EISDIR, vpath)
        del parent.children[name]

    @_locked
    def rename(self, src: str, dst: str, *, replace: bool = True) -> None:
        sparent, sname = self._parent(src)
        node = sparent.children.get(sname)
        if node is None:
            raise _err(errno.ENOENT, src)
        dparent, dname = self._parent(dst)
        if isinstance(node, _Dir) and (dst + "/").startswith(src.rstrip("/") + "/"):
            raise _err(errno.EINVAL, dst)
        existing = dparent.children.get(dname)
        if existing is not None and not replace:
            raise _err(errno.EEXIST, dst)
        if isinstance(existing, _Dir) and not isinstance(node, _Dir):
            raise _err(errno.EISDIR, dst)
        if existing is not None and not isinstance(existing, _Dir) and isinstance(node, _Dir):
            raise _err(errno.ENOTDIR, dst)
        if isinstance(existing, _Dir) and existing.children:
            raise _err(errno.ENOTEMPTY, dst)
        del sparent.children[sname]
        dparent.children[dname] = node

    @_locked
    def chmod(self, vpath: str, mode: int) -> None:
        node = self._walk(vpath)
        node.mode = stat.S_IFMT(node.mode) | (mode & 0o7777)

    @_locked
    def utime(self, vpath: str, mtime: float) -> None:
        self._walk(vpath).mtime = mtime

    @_locked
    def symlink(self, target: str, vlink: str) -> None:
        parent, name = self._parent(vlink, errno.EEXIST)
        if name in parent.children:
            raise _err(errno.EEXIST, vlink)
        parent.children[name] = _Link(target)
