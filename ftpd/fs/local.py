"""The local filesystem, confined to a root directory.

Virtual paths map to ``root + vpath``; every operation re-checks the *real* path
(after symlinks) against the root and refuses with EACCES anything outside it.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Iterator
from typing import BinaryIO


class LocalFS:
    """A directory tree on disk, seen as "/"."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(errno.ENOENT, "root directory not found", root)
        self._prefix = self.root.rstrip(os.sep) + os.sep

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self._prefix)

    def real(self, vpath: str, *, follow: bool = True) -> str:
        """The on-disk path for *vpath*, refused if it resolves outside the root.

        With ``follow=False`` the last component itself may be a symlink pointing
        anywhere (it is the link that is acted on: lstat, delete, rename)."""
        # Lexically normalised first, as core.paths.resolve does: ".." stops at "/"
        # (otherwise "/.." with follow=False would pass as root + "/..").
        rel = posixpath.normpath("/" + vpath).lstrip("/")
        if not rel:
            return self.root
        joined = os.path.join(self.root, rel)
        if follow:
            checked = os.path.realpath(joined)
        else:
            head, tail = os.path.split(joined)
            checked = os.path.join(os.path.realpath(head), tail)
        if not self._inside(checked):
            raise PermissionError(errno.EACCES, "Path resolves outside the root", vpath)
        return checked

    def stat(self, vpath: str) -> os.stat_result:
        return os.stat(self.real(vpath))

    def lstat(self, vpath: str) -> os.stat_result:
        return os.lstat(self.real(vpath, follow=False))

    def listdir(self, vpath: str) -> list[str]:
        return os.listdir(self.real(vpath))

    def lstat_entries(self, vdir: str, names: list[str]) -> Iterator[tuple[str, os.stat_result]]:
        """(name, lstat) for entries of one directory: the directory is resolved and
        checked once, each entry is stat'ed relative to it (no per-entry realpath)."""
        fd = os.open(self.real(vdir), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in names:
                try:
                    yield name, os.lstat(name, dir_fd=fd)
                except OSError:
                    continue
        finally:
            os.close(fd)

    def readlink(self, vpath: str) -> str:
        """The link's text; an absolute target inside the root is shown as the virtual
        path, so that listings never reveal where the root lies on disk."""
        target = os.readlink(self.real(vpath, follow=False))
        if os.path.isabs(target) and self._inside(os.path.normpath(target)):
            rel = os.path.relpath(os.path.normpath(target), self.root)
            return "/" if rel == "." else "/" + rel.replace(os.sep, "/")
        return target

    def open_read(self, vpath: str) -> BinaryIO:
        real = self.real(vpath)
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            if os.path.isdir(real):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
            return os.fdopen(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

    def open_write(self, vpath: str, *, offset: int = 0, append: bool = False,
                   exclusive: bool = False) -> BinaryIO:
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        if append:
            flags |= os.O_APPEND
        elif offset == 0:
            flags |= os.O_TRUNC
        if exclusive:
            flags |= os.O_EXCL
        fd = os.open(self.real(vpath), flags, 0o666)
        try:
            if offset and not append:
                os.lseek(fd, offset, os.SEEK_SET)
            return os.fdopen(fd, "wb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

    def mkdir(self, vpath: str) -> None:
        os.mkdir(self.real(vpath), 0o777)

    def rmdir(self, vpath: str) -> None:
        os.rmdir(self.real(vpath, follow=False))

    def remove(self, vpath: str) -> None:
        real = self.real(vpath, follow=False)
        if os.path.isdir(real) and not os.path.islink(real):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
        os.remove(real)

    def rename(self, src: str, dst: str) -> None:
        os.rename(self.real(src, follow=False), self.real(dst, follow=False))

    def chmod(self, vpath: str, mode: int) -> None:
        os.chmod(self.real(vpath), mode)

    def utime(self, vpath: str, mtime: float) -> None:
        os.utime(self.real(vpath), (mtime, mtime))

    def symlink(self, target: str, vlink: str) -> None:
        """*target* is a virtual path; the link stores the real target so that it
        resolves on disk, and only if that target lies inside the root."""
        real_target = self.real(target)
        os.symlink(real_target, self.real(vlink, follow=False))
