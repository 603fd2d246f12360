"""sendmmsg(2) from libc through ctypes: several datagrams to one address in one system
call (Python's socket module has sendmsg but no sendmmsg). Imported only when a UDP sink
has a batch to send; ``open_sender`` is None where libc has no sendmmsg (not Linux)."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from typing import Any

SLOT = 1008  # room for one frame: the 8-byte header and a body of at most 999 bytes
CAPACITY = 64  # frames per system call


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.c_void_p), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _sockaddr(family: int, address: tuple[Any, ...]) -> bytes:
    """struct sockaddr_in / sockaddr_in6 for a ``getaddrinfo`` address."""
    host = address[0].partition("%")[0]  # fe80::1%eth0: the scope is address[3]
    port = struct.pack("!H", address[1])
    if family == socket.AF_INET:
        return struct.pack("=H", family) + port + socket.inet_pton(family, host) + bytes(8)
    return (struct.pack("=H", family) + port + struct.pack("!I", address[2])
            + socket.inet_pton(family, host) + struct.pack("=I", address[3]))


class MmsgSender:
    """Sends a list of frames from *sock* to *address* with as few sendmmsg calls as the
    kernel takes; the frames are copied into fixed slots, each described once."""

    def __init__(self, call: Any, sock: socket.socket, address: tuple[Any, ...]) -> None:
        self._call, self._fd = call, sock.fileno()
        self._name = ctypes.create_string_buffer(_sockaddr(sock.family, address))
        self._data = ctypes.create_string_buffer(SLOT * CAPACITY)
        self._view = memoryview(self._data).cast("B")
        self._iov = (_Iovec * CAPACITY)()
        # the iovecs as size_t pairs: an item assignment is cheaper than a ctypes field
        self._iov_words = memoryview(self._iov).cast("B").cast("N")
        self._msgs = (_Mmsghdr * CAPACITY)()
        base = ctypes.addressof(self._data)
        for i in range(CAPACITY):
            self._iov[i].iov_base = base + i * SLOT
            hdr = self._msgs[i].msg_hdr
            hdr.msg_name = ctypes.addressof(self._name)
            hdr.msg_namelen = len(self._name.raw) - 1  # create_string_buffer adds a NUL
            hdr.msg_iov = ctypes.addressof(self._iov[i])
            hdr.msg_iovlen = 1

    def send(self, frames: list[bytes]) -> int:
        """Send the first CAPACITY *frames* (each at most SLOT bytes) in one system call;
        returns how many went, in order (at least one). Raises the OSError of the first
        frame when not even that one could be sent."""
        view, words = self._view, self._iov_words
        count = min(len(frames), CAPACITY)
        for i in range(count):
            frame = frames[i]
            start, size = i * SLOT, len(frame)
            view[start:start + size] = frame
            words[2 * i + 1] = size  # iov_len
        while True:
            sent = self._call(self._fd, self._msgs, count, 0)
            if sent > 0:
                return sent
            err = ctypes.get_errno() if sent < 0 else errno.EAGAIN
            if err != errno.EINTR:  # interrupted: nothing was sent, so try again
                raise OSError(err, os.strerror(err))


def open_sender(sock: socket.socket, address: tuple[Any, ...]) -> MmsgSender | None:
    """A sender for *sock*, or None when libc has no sendmmsg."""
    if ctypes.sizeof(_Iovec) != 2 * ctypes.sizeof(ctypes.c_size_t):
        return None  # an ABI where an iovec is not two words: sendto each
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    call.restype = ctypes.c_int
    return MmsgSender(call, sock, address)
