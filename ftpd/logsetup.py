"""Where logs go: stderr, syslog, the systemd journal, or a file (reopened on SIGHUP).
Under inetd fds 0-2 are the client's socket, so ``auto`` never picks stderr there.
Imported by ``ftpd.log`` only when the first record is actually written."""

from __future__ import annotations

import logging
import os
import socket
import stat
import sys

FORMAT = "%(asctime)s {server} ftpd[%(process)d] %(levelname)s %(message)s"


def formats(server_id: str | None) -> tuple[str, str]:
    """(stderr and file format, syslog and journal prefix) for --server-id *server_id*:
    a column after the time in our own lines; syslog and the journal record the host name
    themselves, so there the id leads the message only when it is not the host name."""
    server = (server_id or os.uname().nodename).replace("%", "%%")
    prefix = "" if server_id in (None, os.uname().nodename) else f"[{server}] "
    return FORMAT.format(server=server), prefix


class JournalHandler(logging.Handler):
    """The journal's native protocol (what ``systemd.journal`` speaks), on its socket."""

    PATH = "/run/systemd/journal/socket"
    _PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                 logging.CRITICAL: 2}

    def __init__(self, server_id: str = "") -> None:
        super().__init__()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.extra = f"FTPD_SERVER_ID={server_id}\n" if server_id else ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record).replace("\n", " ")
            prio = self._PRIORITY.get(record.levelno, 6)
            data = (f"MESSAGE={msg}\nPRIORITY={prio}\nSYSLOG_IDENTIFIER=ftpd\n"
                    f"{self.extra}").encode("utf-8", "replace")
            self.sock.sendto(data, self.PATH)
        except OSError:
            pass


def _fd_is_socket(fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


def _journal_stream_is_stderr() -> bool:
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def choose(where: str, *, under_systemd: bool, stderr_is_client: bool) -> str:
    """Resolve ``auto`` to a concrete destination."""
    if where != "auto":
        return where
    if _journal_stream_is_stderr() or (under_systemd and os.path.exists(JournalHandler.PATH)):
        return "journal"
    if stderr_is_client or _fd_is_socket(2):
        return "syslog"
    return "stderr"


def setup(where: str, level: int, *, under_systemd: bool = False,
          stderr_is_client: bool = False, server_id: str | None = None) -> logging.Handler:
    """Install one handler on the ``ftpd`` logger tree; returns it (for reopen)."""
    target = choose(where, under_systemd=under_systemd, stderr_is_client=stderr_is_client)
    line_format, prefix = formats(server_id)
    handler: logging.Handler
    if target == "stderr":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(line_format))
    elif target == "syslog":
        from logging.handlers import SysLogHandler

        address = "/dev/log" if os.path.exists("/dev/log") else ("localhost", 514)
        try:
            handler = SysLogHandler(address=address, facility=SysLogHandler.LOG_FTP)
        except OSError:
            handler = logging.NullHandler()
        handler.setFormatter(logging.Formatter(f"ftpd[%(process)d]: {prefix}%(message)s"))
    elif target == "journal":
        handler = JournalHandler(server_id or "")
        handler.setFormatter(logging.Formatter(f"{prefix}%(message)s"))
    else:
        from logging.handlers import WatchedFileHandler

        handler = WatchedFileHandler(target)
        handler.setFormatter(logging.Formatter(line_format))
    root = logging.getLogger("ftpd")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler


def reopen(handler: logging.Handler) -> None:
    """After logrotate: reopen a log file (SIGHUP)."""
    reopen_file = getattr(handler, "reopenIfNeeded", None)
    if reopen_file is not None:
        reopen_file()
