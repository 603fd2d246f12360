"""inetd: fd 0 is the socket. No-wait (``-I``) hands us a connected control socket;
wait (``-W``) a bound, listening one. Fds 0, 1 and 2 are all that socket, so we adopt
a duplicate and point 0-2 at /dev/null before anything can print."""

from __future__ import annotations

import os
import socket

from ftpd.launch.context import Endpoint, LaunchContext

TYPE_CHECKING = False  # not ``typing``'s: importing it costs ~6 ms per inetd start
if TYPE_CHECKING:
    from ftpd.config import Settings


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


# Settings that can still turn the client away, or fail, once the server is being built;
# or that need the connection before a greeting (a PROXY header, a TLS handshake).
GREETS_LATE = ("implicit", "proxy_protocol", "allow", "deny", "modules", "event_sink",
               "xferlog", "run_as", "s3_secret_access_key_file", "metrics")
EARLY_BANNER_BYTES = 4096  # taken by any socket buffer at once: the write cannot block


def greets_early(settings: Settings, launch: LaunchContext | None) -> bool:
    """Whether inetd no-wait can write the 220 before the server is built: its modules
    (the core, the session, the loop, the session log) are ~25 ms of the time to the
    banner, and nothing in a configuration without ``GREETS_LATE`` settings can refuse
    the client once the authorizer, the log and the banner are checked (``ftpd.cli``
    does those first)."""
    if launch is None or launch.mode != "inetd" or len(launch.connections) != 1:
        return False
    if launch.connections[0].implicit_tls:  # a --pam session child of --implicit-listen too
        return False
    return not any(settings[name] for name in GREETS_LATE)


def greet(launch: LaunchContext, banner: str, timeout: float) -> bool:
    """Write the 220 on inetd no-wait's connection now and mark it greeted (the session
    starts without a greeting of its own). The bytes are the session's own reply. False,
    with nothing marked, when the banner is too long to be written at once or the client
    is gone (the server then meets the connection as it would have)."""
    from ftpd.core.replies import Reply

    data = Reply.of(220, *banner.split("\n")).encode()
    ep = launch.connections[0]
    if len(data) > EARLY_BANNER_BYTES:
        return False
    try:
        ep.sock.settimeout(timeout or None)
        ep.sock.sendall(data)
    except OSError:
        return False
    finally:
        ep.sock.settimeout(None)
    launch.connections[0] = ep._replace(greeted=True)
    return True
