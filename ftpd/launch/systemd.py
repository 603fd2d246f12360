"""systemd socket activation, and sd_notify in every launch mode.

Listening sockets (Accept=no) or one connected socket (Accept=yes) arrive as fds
3.. per LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES; the variables are unset once read so
children never inherit them. ``systemd.daemon`` is used when installed (the
``ftpd[systemd]`` extra); otherwise the same small protocols are spoken directly."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from ftpd.launch.context import Endpoint, LaunchContext

SD_LISTEN_FDS_START = 3
IMPLICIT_TLS_NAME = "ftps"


def activated() -> bool:
    """Whether systemd handed this very process sockets."""
    pid = os.environ.get("LISTEN_PID", "")
    fds = os.environ.get("LISTEN_FDS", "")
    return pid.isdigit() and int(pid) == os.getpid() and fds.isdigit() and int(fds) > 0


def take_fds() -> list[tuple[int, str]]:
    """(fd, name) of each passed socket; unsets the LISTEN_* variables."""
    names = os.environ.get("LISTEN_FDNAMES", "")
    try:
        from systemd import daemon  # type: ignore[import-not-found]

        fds = list(daemon.listen_fds(True))
    except ImportError:
        count = int(os.environ.get("LISTEN_FDS", "0")) if activated() else 0
        fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)
    name_list = names.split(":") if names else []
    return [(fd, name_list[i] if i < len(name_list) else "") for i, fd in enumerate(fds)]


def systemd_context(implicit_names: tuple[str, ...] = (IMPLICIT_TLS_NAME,)) -> LaunchContext:
    ctx = attach_notify(LaunchContext("systemd"))
    for fd, name in take_fds():
        sock = socket.socket(fileno=fd)
        os.set_inheritable(fd, False)
        implicit = name in implicit_names
        ep = Endpoint(sock, implicit_tls=implicit, name=name, inherited=True)
        listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        (ctx.listeners if listening else ctx.connections).append(ep)
    return ctx


def attach_notify(ctx: LaunchContext) -> LaunchContext:
    """Give *ctx* an sd_notify sender whenever NOTIFY_SOCKET is set, whatever the launch
    mode: a ``Type=notify`` service that binds its own ports (standalone, ``-W``, ``-d``)
    stays "activating" until READY=1 arrives."""
    if ctx.notify is None:
        ctx.notify = notifier()
        if ctx.notify is not None:
            ctx.watchdog_usec = _watchdog_usec()
    return ctx


def _watchdog_usec() -> int:
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return 0
    return int(usec)


def notifier() -> Callable[[str], None] | None:
    """A function sending sd_notify messages, or None without NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return None
    if address.startswith("@"):
        address = "\0" + address[1:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    os.set_inheritable(sock.fileno(), False)

    def notify(message: str) -> None:
        try:
            sock.sendto(message.encode("utf-8", "replace"), address)
        except OSError:
            pass  # systemd went away or the socket is full: nothing to do

    return notify
