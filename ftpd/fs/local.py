"""The local filesystem, confined to a root directory.

Nothing is resolved through a path string from the root: ``Beneath`` holds an fd on
the root and opens every path relative to it (``openat2`` with ``RESOLVE_BENEATH``, or
a walk that follows symlinks itself only while they stay inside), and each operation
acts on the last component relative to the fd of its parent directory. A path whose
real location is outside the root is refused with EACCES, even while a local user
swaps directories for symlinks under it.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from typing import BinaryIO

from ftpd.fs.beneath import DIR_FLAGS, O_PATH, Beneath


def _rel(vpath: str) -> str:
    """The virtual path relative to the root, lexically normalised as
    ``core.paths.resolve`` does: ``..`` stops at "/"."""
    return posixpath.normpath("/" + vpath).lstrip("/")


def _err(code: int, vpath: str) -> OSError:
    return OSError(code, os.strerror(code), vpath)


class LocalFS:
    """A directory tree on disk, seen as "/"."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(errno.ENOENT, "root directory not found", root)
        self._at = Beneath(self.root)

    def close(self) -> None:
        """Release the fd on the root (the instance is unusable afterwards)."""
        self._at.close()

    def replaced(self) -> bool:
        """True when the root's path no longer names the directory we hold (moved away,
        deleted, recreated): a new login should get a new LocalFS, not the old tree."""
        try:
            now, held = os.stat(self.root), os.stat(self._at.fd)
        except OSError:
            return True
        return (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino)

    def _open(self, vpath: str, flags: int, mode: int = 0o777) -> int:
        return self._at.open(_rel(vpath), flags | os.O_CLOEXEC, mode)

    def _parent(self, vpath: str, root_errno: int) -> tuple[int, str]:
        fd, name = self._at.parent(_rel(vpath))
        if not name:
            os.close(fd)
            raise _err(root_errno, vpath)
        return fd, name

    def stat(self, vpath: str) -> os.stat_result:
        if O_PATH:
            fd = self._open(vpath, O_PATH)
            try:
                return os.stat(fd)
            finally:
                os.close(fd)
        fd, name = self._at.final(_rel(vpath))
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def lstat(self, vpath: str) -> os.stat_result:
        fd, name = self._at.parent(_rel(vpath))
        try:
            return os.stat(name or ".", dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def listdir(self, vpath: str) -> list[str]:
        fd = self._open(vpath, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def lstat_entries(self, vdir: str, names: list[str]) -> Iterator[tuple[str, os.stat_result]]:
        """(name, lstat) for entries of one directory: the directory is resolved
        once, each entry is stat'ed relative to it."""
        fd = self._open(vdir, DIR_FLAGS)
        try:
            for name in names:
                try:
                    yield name, os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
        finally:
            os.close(fd)

    def readlink(self, vpath: str) -> str:
        """The link's text; an absolute target inside the root is shown as the virtual
        path, so that listings never reveal where the root lies on disk."""
        fd, name = self._parent(vpath, errno.EINVAL)
        try:
            target = os.readlink(name, dir_fd=fd)
        finally:
            os.close(fd)
        inside = self._at.inside_text(posixpath.normpath(target)) \
            if target.startswith("/") else None
        return target if inside is None else "/" + inside

    def _open_file(self, vpath: str, flags: int) -> int:
        """Open a regular file; O_NONBLOCK so that a FIFO put there meanwhile cannot
        block the loop (it is refused, like anything but a regular file)."""
        fd = self._open(vpath, flags | os.O_NONBLOCK, 0o666)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise _err(errno.EISDIR, vpath)
            if not stat.S_ISREG(mode):
                raise PermissionError(errno.EACCES, "Not a regular file", vpath)
            os.set_blocking(fd, True)
            return fd
        except BaseException:
            os.close(fd)
            raise

    def open_read(self, vpath: str) -> BinaryIO:
        return os.fdopen(self._open_file(vpath, os.O_RDONLY), "rb", buffering=0)

    def open_write(self, vpath: str, *, offset: int = 0, append: bool = False,
                   exclusive: bool = False) -> BinaryIO:
        flags = os.O_WRONLY | os.O_CREAT
        if append:
            flags |= os.O_APPEND
        elif offset == 0:
            flags |= os.O_TRUNC
        if exclusive:
            flags |= os.O_EXCL
        fd = self._open_file(vpath, flags)
        try:
            if offset and not append:
                os.lseek(fd, offset, os.SEEK_SET)
            return os.fdopen(fd, "wb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

    def mkdir(self, vpath: str) -> None:
        fd, name = self._parent(vpath, errno.EEXIST)
        try:
            os.mkdir(name, 0o777, dir_fd=fd)
        finally:
            os.close(fd)

    def rmdir(self, vpath: str) -> None:
        fd, name = self._parent(vpath, errno.EBUSY)
        try:
            os.rmdir(name, dir_fd=fd)
        finally:
            os.close(fd)

    def remove(self, vpath: str) -> None:
        fd, name = self._parent(vpath, errno.EISDIR)
        try:
            if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                raise _err(errno.EISDIR, vpath)
            os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)

    def rename(self, src: str, dst: str, *, replace: bool = True) -> None:
        sfd, sname = self._parent(src, errno.EBUSY)
        try:
            dfd, dname = self._parent(dst, errno.EBUSY)
            try:
                if replace:
                    os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
                else:
                    from ftpd.fs.syscalls import rename_noreplace

                    rename_noreplace(sfd, sname, dfd, dname)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def chmod(self, vpath: str, mode: int) -> None:
        fd, name = self._at.final(_rel(vpath))
        try:
            os.chmod(name, mode, dir_fd=fd, follow_symlinks=False)
        except (ValueError, NotImplementedError):  # it became a symlink meanwhile
            raise _err(errno.ELOOP, vpath) from None
        finally:
            os.close(fd)

    def utime(self, vpath: str, mtime: float) -> None:
        fd, name = self._at.final(_rel(vpath))
        try:
            os.utime(name, (mtime, mtime), dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def symlink(self, target: str, vlink: str) -> None:
        """*target* is a virtual path; the link stores its absolute path on disk (the
        resolver follows absolute links that stay inside the root), and only if the
        target does not lead out of the root."""
        rel = _rel(target)
        try:
            os.close(self._open(target, DIR_FLAGS & ~os.O_DIRECTORY))
        except FileNotFoundError:
            pass
        fd, name = self._parent(vlink, errno.EEXIST)
        try:
            os.symlink(posixpath.join(self.root, rel) if rel else self.root, name, dir_fd=fd)
        finally:
            os.close(fd)
