"""inetd: fd 0 is the socket. No-wait (``-I``) hands us a connected control socket;
wait (``-W``) a bound, listening one. Fds 0, 1 and 2 are all that socket, so we adopt
a duplicate and point 0-2 at /dev/null before anything can print."""

from __future__ import annotations

import os
import socket

from ftpd.launch.context import Endpoint, LaunchContext


class LaunchError(Exception):
    """The inherited descriptors are not what the flags say (one line; exit 2)."""

    stderr_usable = False  # True when fd 2 is still the caller's (not a client socket)


def adopt_stdin() -> socket.socket:
    """Take fd 0 as a socket (a duplicate), then silence fds 0-2."""
    try:
        fd = os.dup(0)
    except OSError as exc:
        raise LaunchError(f"fd 0 is not usable: {exc.strerror}") from None
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        os.close(fd)  # not a socket: fds 1-2 are the caller's terminal or log, keep them
        error = LaunchError("fd 0 is not a socket: -I/-W need inetd to hand over one")
        error.stderr_usable = True
        raise error from None
    _silence_stdio()
    return sock


def _silence_stdio() -> None:
    # Pointing fd 0 away first would not hurt the duplicate we already hold.
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        if target != null:
            os.dup2(null, target)
    if null > 2:
        os.close(null)


def is_listening(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))


def inetd_context(sock: socket.socket, wait: bool, implicit_tls: bool = False) -> LaunchContext:
    """No-wait or wait mode on an adopted socket; a mismatch is a clear error."""
    listening = is_listening(sock)
    if wait and not listening:
        raise LaunchError("-W (inetd wait) given but fd 0 is a connected socket: use -I "
                          "or 'wait' -> 'nowait' in inetd.conf")
    if not wait and listening:
        raise LaunchError("-I (inetd no-wait) given but fd 0 is a listening socket: use -W "
                          "or 'nowait' -> 'wait' in inetd.conf")
    ep = Endpoint(sock, implicit_tls=implicit_tls, inherited=True)
    if wait:
        return LaunchContext("inetd-wait", listeners=[ep])
    return LaunchContext("inetd", connections=[ep])


def refuse(sock: socket.socket, wait: bool, text: str = "Service not available") -> None:
    """Tell the waiting client 421 (usage/config error in a per-connection mode)."""
    try:
        if wait:  # under inetd the client that started us is already queued
            sock.settimeout(0.5)
            conn, _ = sock.accept()
        else:
            conn = sock
        conn.settimeout(2.0)
        conn.sendall(f"421 {text}\r\n".encode())
        conn.close()
    except OSError:
        pass
