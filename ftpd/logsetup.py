"""Where logs go: stderr, syslog, the systemd journal, or a file (reopened on SIGHUP).
Under inetd fds 0-2 are the client's socket, so ``auto`` never picks stderr there.
A missing journal or syslog socket falls back (journal, syslog, stderr) with one warning.
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


SYSLOG_PATHS = ("/dev/log", "/var/run/syslog")  # Linux and the BSDs; macOS


class Formats:
    """The line formats for one --server-id: a column after the time in our own lines
    (stderr, file); a prefix for syslog and the journal (see ``formats``)."""

    def __init__(self, server_id: str | None) -> None:
        self.server_id = server_id or ""
        self.line, self.prefix = formats(server_id)


def _syslog_path() -> str | None:
    return next((p for p in SYSLOG_PATHS if os.path.exists(p)), None)


def _syslog_handler(fmt: Formats) -> logging.Handler | None:
    from logging.handlers import SysLogHandler

    path = _syslog_path()
    if path is None:
        return None
    try:
        handler = SysLogHandler(address=path, facility=SysLogHandler.LOG_FTP)
    except OSError:  # a socket nobody reads
        return None
    handler.setFormatter(logging.Formatter(f"ftpd[%(process)d]: {fmt.prefix}%(message)s"))
    return handler


def _stderr_handler(fmt: Formats) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt.line))
    return handler


def _handler(target: str, fmt: Formats) -> tuple[logging.Handler, str | None]:
    """The handler for *target*, or the next that works and why: logs never vanish
    into a missing socket (a container without syslog or journald)."""
    if target == "journal":
        if os.path.exists(JournalHandler.PATH):
            handler: logging.Handler = JournalHandler(fmt.server_id)
            handler.setFormatter(logging.Formatter(f"{fmt.prefix}%(message)s"))
            return handler, None
        syslog = _syslog_handler(fmt)
        if syslog is not None:
            return syslog, f"no {JournalHandler.PATH}: logging to syslog"
        return (_stderr_handler(fmt),
                f"no {JournalHandler.PATH} nor syslog socket: logging to stderr")
    if target == "syslog":
        syslog = _syslog_handler(fmt)
        if syslog is not None:
            return syslog, None
        return _stderr_handler(fmt), f"no syslog socket ({SYSLOG_PATHS[0]}): logging to stderr"
    if target == "stderr":
        return _stderr_handler(fmt), None
    from logging.handlers import WatchedFileHandler

    handler = WatchedFileHandler(target)
    handler.setFormatter(logging.Formatter(fmt.line))
    return handler, None


def setup(where: str, level: int, *, under_systemd: bool = False,
          stderr_is_client: bool = False, server_id: str | None = None) -> logging.Handler:
    """Install one handler on the ``ftpd`` logger tree; returns it (for reopen). When
    the destination is missing, the fallback says so in one warning line."""
    target = choose(where, under_systemd=under_systemd, stderr_is_client=stderr_is_client)
    handler, fallback = _handler(target, Formats(server_id))
    # Less work per record (the logging HOWTO's "Optimization"): our formats write no
    # caller, thread or multiprocessing names, and the session log writes a few records
    # per session at the default level.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger("ftpd")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    if fallback is not None:
        root.warning("--log %s: %s", where, fallback)
    return handler


def reopen(handler: logging.Handler) -> None:
    """After logrotate: reopen a log file (SIGHUP)."""
    reopen_file = getattr(handler, "reopenIfNeeded", None)
    if reopen_file is not None:
        reopen_file()
