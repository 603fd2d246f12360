"""Two Linux system calls the ``os`` module has no binding for, through ctypes, each
probed once: ``openat2`` (open a path with ``RESOLVE_BENEATH``: the kernel refuses to
leave the directory) and ``renameat2`` (rename with ``RENAME_NOREPLACE``). Imported only
by ``LocalFS``; on other systems, or kernels without them, callers fall back."""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
RENAME_NOREPLACE = 1
_SYS_OPENAT2 = 437  # the same number on every architecture that has it (asm-generic)
_UNSUPPORTED = (errno.ENOSYS, errno.EPERM, errno.E2BIG, errno.EINVAL)

_libc: Any = None
_openat2_ok: bool | None = None if sys.platform.startswith("linux") else False


def _load() -> Any:
    """libc through ctypes, or None where ctypes cannot load (then callers fall back)."""
    global _libc
    if _libc is None:
        try:
            import ctypes
        except ImportError:
            return None

        class OpenHow(ctypes.Structure):
            _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                        ("resolve", ctypes.c_uint64)]

        try:
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
        libc.syscall.restype = ctypes.c_long
        libc.OpenHow, libc.ctypes = OpenHow, ctypes
        _libc = libc
    return _libc


def _openat2(dir_fd: int, path: str, flags: int, mode: int) -> int:
    libc = _load()
    ct = libc.ctypes
    how = libc.OpenHow(flags, mode if flags & os.O_CREAT else 0,
                       RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    fd = libc.syscall(ct.c_long(_SYS_OPENAT2), ct.c_int(dir_fd), os.fsencode(path),
                      ct.byref(how), ct.c_size_t(ct.sizeof(how)))
    if fd < 0:
        code = ct.get_errno()
        raise OSError(code, os.strerror(code), path)
    return int(fd)


def openat2_beneath(dir_fd: int, path: str, flags: int, mode: int = 0) -> int | None:
    """``openat2(dir_fd, path, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)``, or
    None when this system has no openat2 (the caller walks instead). Errors raise
    ``OSError``; EXDEV means the path, or an absolute symlink in it, leads out."""
    global _openat2_ok
    if _openat2_ok is False or _load() is None:
        return None
    if _openat2_ok is None:
        try:
            os.close(_openat2(dir_fd, ".", getattr(os, "O_PATH", 0) | os.O_CLOEXEC, 0))
            _openat2_ok = True
        except (OSError, AttributeError) as exc:
            if isinstance(exc, OSError) and exc.errno not in _UNSUPPORTED:
                raise
            _openat2_ok = False
            return None
    return _openat2(dir_fd, path, flags | os.O_CLOEXEC, mode)


def rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """Rename *src* to *dst* (each relative to a directory fd) unless *dst* exists
    (EEXIST): ``renameat2(RENAME_NOREPLACE)`` where the kernel and filesystem have
    it, else a hard link and an unlink (link refuses an existing name too)."""
    libc = _load() if sys.platform.startswith("linux") else None
    func = getattr(libc, "renameat2", None)
    if func is not None:
        if func(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), RENAME_NOREPLACE) == 0:
            return
        code = libc.ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), dst)
    os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    os.unlink(src, dir_fd=src_fd)
