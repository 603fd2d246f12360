"""Resolving names beneath a directory handle, never outside it.

``Beneath`` holds one fd on the root. Every path is resolved from that fd: by the
kernel (``openat2`` with ``RESOLVE_BENEATH``) where it can, else (no openat2, or a path
the kernel refuses: an absolute symlink, ``..`` out of the root) by a walk, one
component at a time with ``O_NOFOLLOW``, that reads each symlink itself and follows it
only while it stays inside: a relative target from the directory it sits in (``..``
never above the root), an absolute one only when its text starts with the root's real
path. Each step holds an fd on the directory it came through, so a local user swapping
a directory for a symlink between a check and an open gains nothing: there is no
check-then-open, only opens relative to fds already inside."""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from ftpd.fs.syscalls import openat2_beneath

O_PATH = getattr(os, "O_PATH", 0)
DIR_FLAGS = (O_PATH or os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
MAX_SYMLINKS = 40
# what an O_NOFOLLOW open of a symlink fails with (ELOOP; ENOTDIR with O_DIRECTORY;
# EMLINK on FreeBSD)
_LINK_ERRNOS = frozenset((errno.ELOOP, errno.ENOTDIR, errno.EMLINK))
_KERNEL_REFUSED = frozenset((errno.EXDEV, errno.EAGAIN, errno.ELOOP))

T = TypeVar("T")


def outside(path: str) -> PermissionError:
    return PermissionError(errno.EACCES, "Path resolves outside the root", path)


class Beneath:
    """One root directory, opened once; ``open`` and ``parent`` resolve beneath it."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._prefix = root.rstrip("/") + "/"
        self.fd = -1
        self.fd = os.open(root, DIR_FLAGS)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        # a LocalFS dropped from the cache, its sessions gone (os may be gone at exit)
        if self.fd >= 0:
            _close(self.fd)
            self.fd = -1

    def inside_text(self, target: str) -> str | None:
        """An absolute symlink target's path relative to the root, if it names one."""
        if target == self.root or target.startswith(self._prefix):
            return target[len(self._prefix):] if target != self.root else ""
        return None

    def open(self, rel: str, flags: int, mode: int = 0o777) -> int:
        """An fd for *rel* (relative to the root, "" the root itself), symlinks in
        every component followed while they stay inside; EACCES if one leads out."""
        try:
            fd = openat2_beneath(self.fd, rel or ".", flags, mode)
        except OSError as exc:
            if exc.errno not in _KERNEL_REFUSED:
                raise
            fd = None
        if fd is not None:
            return fd
        return self.walk(rel, lambda d, name: _open_final(d, name, flags, mode))

    def parent(self, rel: str) -> tuple[int, str]:
        """(fd of the directory holding *rel*'s last component, that name): to act on
        the name itself. The root has no parent: ("" as the name, an fd on the root)."""
        head, _, name = rel.rpartition("/")
        return self.open(head, DIR_FLAGS), name

    def final(self, rel: str) -> tuple[int, str]:
        """Like ``parent``, but a symlink as the last component is followed too: the
        directory fd and name of what *rel* finally names (never a symlink)."""
        return self.walk(rel, _final_entry)

    def walk(self, rel: str, last: Callable[[int, str], T]) -> T:
        """Resolve *rel* component by component; ``last(dir_fd, name)`` acts on the
        final one (failing as an ``O_NOFOLLOW`` open would, if it is a symlink)."""
        pending = deque(p for p in rel.split("/") if p)
        stack = [self.fd]
        links = 0
        try:
            while True:
                if not pending:
                    return last(stack[-1], ".")
                name = pending.popleft()
                if name == ".":
                    continue
                if name == "..":
                    if len(stack) == 1:
                        raise outside(rel)
                    os.close(stack.pop())
                    continue
                try:
                    if not pending:
                        return last(stack[-1], name)
                    stack.append(os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=stack[-1]))
                    continue
                except OSError as exc:
                    if exc.errno not in _LINK_ERRNOS:
                        raise
                    target = _link_text(stack[-1], name, exc)
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), rel)
                if target.startswith("/"):
                    inside = self.inside_text(target)
                    if inside is None:
                        raise outside(rel)
                    while len(stack) > 1:
                        os.close(stack.pop())
                    target = inside
                pending.extendleft(reversed([p for p in target.split("/") if p]))
        finally:
            for fd in stack[1:]:
                os.close(fd)


def _link_text(dir_fd: int, name: str, failure: OSError) -> str:
    """The symlink *name*'s target, or *failure* re-raised if it is no symlink."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        raise failure from None


def _open_final(dir_fd: int, name: str, flags: int, mode: int) -> int:
    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    if flags & O_PATH and not flags & os.O_DIRECTORY:  # O_PATH|O_NOFOLLOW opens a link
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
    return fd


def _final_entry(dir_fd: int, name: str) -> tuple[int, str]:
    if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
    return os.dup(dir_fd), name
