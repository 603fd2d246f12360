"""launchd (macOS): ask for a named socket from the job's Sockets dictionary with
``launch_activate_socket`` (libSystem, through ctypes). inetdCompatibility jobs use
-I/-W instead."""

from __future__ import annotations

import socket
import sys

from ftpd.launch.context import Endpoint, LaunchContext
from ftpd.launch.inetd import LaunchError


def launchd_context(name: str) -> LaunchContext:
    if sys.platform != "darwin":
        raise LaunchError("--launchd-socket works only under launchd on macOS; "
                          "use -I/-W (inetdCompatibility) or plain -l elsewhere")
    import ctypes

    libc = ctypes.CDLL("/usr/lib/libSystem.B.dylib", use_errno=True)
    fds = ctypes.POINTER(ctypes.c_int)()
    count = ctypes.c_size_t(0)
    err = libc.launch_activate_socket(name.encode(), ctypes.byref(fds), ctypes.byref(count))
    if err != 0:
        raise LaunchError(f"--launchd-socket {name}: launch_activate_socket failed "
                          f"(error {err}); is the socket named in the job's plist?")
    ctx = LaunchContext("launchd")
    for i in range(count.value):
        ctx.listeners.append(Endpoint(socket.socket(fileno=fds[i]), name=name, inherited=True))
    libc.free(fds)
    return ctx
