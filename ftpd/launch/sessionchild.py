"""The child side of ``ftpd.launch.persession``: serve the connection on fd 0 with the
settings read from the pipe named on the command line, as ``ftpd -I`` does (the same
``cli.serve`` path, a per-connection context), logging where the parent logs.

Run as ``python -m ftpd.launch.sessionchild FD`` by the parent only."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import sys
from typing import Any

from ftpd.log import get_logger

log = get_logger("ftpd")


class HandedOver:
    """What ``cli.serve`` needs of how it was started: where to log, how to refuse."""

    def __init__(self, sock: socket.socket, launched_by: str | None) -> None:
        self.sock = sock
        self.mode = launched_by  # the parent's: its log goes to the journal, syslog, ...

    def report(self, message: str, code: int) -> int:
        from ftpd.cli import syslog_error
        from ftpd.launch.inetd import refuse

        if self.mode in (None, "systemd"):
            print(f"ftpd: {message}", file=sys.stderr)  # the parent's stderr: its log
        else:  # under inetd the parent's stderr is /dev/null
            syslog_error(message)
        refuse(self.sock, wait=False)
        return code


def read_order(fd: int) -> dict[str, Any]:
    with open(fd, "rb") as pipe:
        return pickle.load(pipe)  # noqa: S301 (from our own root parent, through a pipe)


def take_socket() -> socket.socket:
    """fd 0 as the control socket; fd 0 itself then points at /dev/null (fds 1 and 2
    stay the parent's: its log)."""
    sock = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return sock


def main(argv: list[str]) -> int:
    from ftpd import cli
    from ftpd.config import Settings
    from ftpd.launch.context import Endpoint, LaunchContext

    signal.pthread_sigmask(signal.SIG_BLOCK, cli.STOP_AND_RELOAD)
    order = read_order(int(argv[0]))
    sock = take_socket()
    settings = Settings(order["settings"])
    settings.update(inetd=True, inetd_wait=False, daemon=False, pidfile=None,
                    launchd_socket=None, idle_timeout=0.0, log=order["log"])
    inherited = HandedOver(sock, order["launched_by"])
    launch = LaunchContext("inetd", connections=[
        Endpoint(sock, implicit_tls=order["implicit_tls"], inherited=True,
                 client=order["client"])])
    try:
        from ftpd.app import build_tls
        from ftpd.config import ConfigError

        tls = build_tls(settings)
    except ConfigError as exc:
        return inherited.report(f"error: {exc}", 2)
    return cli.serve(settings, {}, launch, inherited, tls, on_reload=reopen_logs)


def reopen_logs() -> None:
    """SIGHUP (logrotate): the session keeps its settings; the log is opened again."""
    from ftpd import log as ftpd_log

    ftpd_log.reopen()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
