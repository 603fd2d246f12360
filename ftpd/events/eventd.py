"""ftpd-eventd, the command: flags, opening the transport while errors can still reach the
terminal, detaching. What happens to each message is in ftpd.events.receiver."""

from __future__ import annotations

import argparse
import logging
import os
import queue
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from ftpd.events.receiver import Dispatcher, QueueReader, UdpReader, serve

log = logging.getLogger("ftpd.eventd")
PROG = "ftpd-eventd"


# -- command line ----------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line naming the bad flag, exit 2
        sys.stderr.write(f"{PROG}: {message}\n")
        raise SystemExit(2)


def _port(text: str) -> int:
    if text.isdigit() and int(text) < 65536:
        return int(text)
    raise argparse.ArgumentTypeError(f"not a UDP port number: {text!r}")


def _key(text: str) -> int:
    from ftpd.events.sinks import parse_key

    try:
        return parse_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _mode(text: str) -> int:
    try:
        mode = int(text.removeprefix("0o"), 8)
    except ValueError:
        mode = -1
    if 0 <= mode <= 0o777:
        return mode
    raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}")


def _redis_url(text: str) -> Any:
    from ftpd.events.redisurl import parse_url

    try:
        return parse_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if 0 < value < 1e9:
        return value
    raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")


def _name(text: str) -> str:
    if text and text.isprintable() and " " not in text:
        return text
    raise argparse.ArgumentTypeError(f"not a name (printable, no spaces): {text!r}")


def _positive(text: str) -> int:
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Receive ftpd's NcFTPd-format event messages and act "
                "on them (see ftpd-eventd(8)).")
    src = p.add_mutually_exclusive_group()  # required: checked after unknown flags
    src.add_argument("-p", "--port", type=_port, help="receive UDP datagrams on PORT "
                     "(0 picks a free port, logged with -v)")
    src.add_argument("-k", "--key", type=_key, help="read the System V message queue KEY "
                     "(0x78C0FFEE or decimal), creating it if absent")
    src.add_argument("--redis", type=_redis_url, metavar="URL", help="read the Redis stream "
                     "redis://HOST:PORT/STREAM in the consumer group --group")
    p.add_argument("-b", "--bind", metavar="ADDR", help="address to bind with -p "
                   "(default 127.0.0.1)")
    p.add_argument("--perm", type=_mode, default=0o600, metavar="MODE",
                   help="mode of a queue created with -k (default 0600)")
    p.add_argument("--group", type=_name, metavar="NAME", help="with --redis: the consumer "
                   "group (created at the start of the stream if absent)")
    p.add_argument("--consumer", type=_name, metavar="NAME", help="with --redis: this "
                   "consumer's name in the group (default HOST-PID)")
    p.add_argument("--claim-idle", type=_seconds, metavar="SEC", help="with --redis: claim "
                   "entries other consumers left unacknowledged this long (default 60)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every event in one line")
    p.add_argument("-d", "--detach", action="store_true",
                   help="run in the background (logging to syslog)")
    p.add_argument("--pidfile", metavar="PATH", help="write the process id to PATH")
    p.add_argument("--handler", metavar="MODULE:OBJECT",
                   help="call OBJECT's on_upload, on_download, ... methods for each event")
    p.add_argument("--exec", dest="command", metavar="CMD",
                   help="run CMD (no shell) per event with FTPD_* fields in its environment")
    p.add_argument("--workers", type=_positive, default=4, metavar="N",
                   help="commands run at once with --exec (default 4)")
    p.add_argument("--backlog", type=_positive, default=10000, metavar="N",
                   help="events held in memory before reading pauses (default 10000)")
    return p


class UsageError(Exception):
    """A bad flag value found after parsing: exit 2."""


def load_handler(spec: str) -> Any:
    """``MODULE:OBJECT`` to a handler; a class is instantiated once."""
    import importlib

    module_name, sep, attr = spec.partition(":")
    if not (sep and module_name and attr):
        raise UsageError(f"--handler {spec!r}: expected MODULE:OBJECT")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # like python -m: handlers may live beside us
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--handler {spec!r}: {exc}") from None
    if isinstance(obj, type):
        obj = obj()
    if not any(callable(getattr(obj, n, None)) for n in dir(obj) if n.startswith("on_")):
        raise UsageError(f"--handler {spec!r}: no on_<event> method")
    return obj


def parse_command(text: str) -> list[str]:
    import shutil

    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--exec {text!r}: {exc}") from None
    if not argv:
        raise UsageError("--exec: empty command")
    found = shutil.which(argv[0])
    if found is None:
        raise UsageError(f"--exec: command not found or not executable: {argv[0]}")
    argv[0] = os.path.abspath(found) if os.sep in found else found
    return argv


def open_udp(addr: str, port: int) -> Any:
    import socket

    infos = socket.getaddrinfo(addr, port, 0, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE)
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    except OSError:
        pass
    try:
        sock.bind(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock


def open_queue(key: int, perm: int) -> Any:
    import sysv_ipc

    try:
        with open("/proc/sys/kernel/msgmax") as f:
            size = max(int(f.read()), 8192)
    except (OSError, ValueError):
        size = 65536
    try:  # create it, or open it asking only to read
        return sysv_ipc.MessageQueue(key, sysv_ipc.IPC_CREX, mode=perm, max_message_size=size)
    except sysv_ipc.ExistentialError:
        return sysv_ipc.MessageQueue(key, 0, mode=0o400, max_message_size=size)


def _open_fds() -> set[int]:
    """File descriptors open now (the listing's own, closed again by then, left out)."""
    for where in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(where)
        except OSError:
            continue
        fds = set()
        for name in names:
            try:
                os.fstat(int(name))
            except (OSError, ValueError):
                continue
            fds.add(int(name))
        return fds
    return set()


def _check_pidfile(path: str) -> None:
    """Remove a stale pid file; refuse to start when its process is alive."""
    try:
        with open(path) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pid = 0
    if pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pid = 0
        except PermissionError:
            pass
        if pid:
            raise OSError(f"already running (pid {pid})")
    if os.path.exists(path):
        os.unlink(path)


def _setup_logging(verbose: bool, syslog: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    handler: logging.Handler
    if syslog:
        from logging.handlers import SysLogHandler

        if os.path.exists("/dev/log"):
            handler = SysLogHandler("/dev/log", SysLogHandler.LOG_DAEMON)
        else:
            handler = logging.NullHandler()
        handler.setFormatter(logging.Formatter(f"{PROG}[%(process)d]: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s {PROG}[%(process)d]: %(message)s", "%Y-%m-%d %H:%M:%S"))
    for name in ("ftpd.eventd", "ftpd.events"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def _check_source(args: argparse.Namespace) -> None:
    """Flags that only go with one transport."""
    if args.port is None and args.key is None and args.redis is None:
        raise UsageError("one of -p PORT (UDP), -k KEY (message queue) or --redis URL "
                         "is required")
    if args.bind is not None and args.port is None:
        raise UsageError("-b/--bind: only with -p")
    if args.redis is not None and not args.group:
        raise UsageError("--redis needs --group NAME")
    for flag in ("group", "consumer", "claim_idle"):
        if getattr(args, flag) is not None and args.redis is None:
            raise UsageError(f"--{flag.replace('_', '-')}: only with --redis")


class Source:
    """The opened transport: where it is (for the log), the fds -d must keep, its reader."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sock = self.mq = self.redis = None
        if args.port is not None:
            self.sock = open_udp(args.bind or "127.0.0.1", args.port)
            host, port = self.sock.getsockname()[:2]
            self.where = f"udp [{host}]:{port}" if ":" in host else f"udp {host}:{port}"
        elif args.redis is not None:
            from ftpd.events.redisconsumer import default_consumer, open_group

            self.redis = open_group(args.redis, args.group)
            args.consumer = args.consumer or default_consumer()
            self.where = f"redis {args.redis} group {args.group} as {args.consumer}"
        else:
            self.mq = open_queue(args.key, args.perm)
            self.where = f"message queue {args.key:#x} (id {self.mq.id})"

    @staticmethod
    def describe(args: argparse.Namespace) -> str:
        """What could not be opened, for the error line."""
        if args.port is not None:
            return f"udp {args.bind or '127.0.0.1'}:{args.port}"
        if args.redis is not None:
            return f"redis {args.redis}"
        return f"message queue {args.key:#x}"

    def fds(self) -> set[int]:
        return {s.fileno() for s in (self.sock, self.redis and self.redis.sock)
                if s is not None}

    def reader(self, backlog: queue.Queue[Any]) -> Any:
        if self.sock is not None:
            return UdpReader(self.sock, backlog)
        if self.redis is not None:
            from ftpd.events.redisconsumer import RedisReader

            args = self.args
            return RedisReader(args.redis, args.group, args.consumer,
                               args.claim_idle or 60.0, backlog, self.redis)
        return QueueReader(self.mq, backlog)


def main(argv: Sequence[str] | None = None) -> None:
    """The ftpd-eventd console script."""
    args = build_parser().parse_args(argv)
    try:
        _check_source(args)
        before = _open_fds()
        handler = load_handler(args.handler) if args.handler else None
        handler_fds = _open_fds() - before  # files the handler opened: kept by -d
        command = parse_command(args.command) if args.command else None
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        raise SystemExit(2) from None
    _setup_logging(args.verbose, syslog=False)
    try:  # open everything that can fail while we still have a terminal
        source = Source(args)
    except Exception as exc:  # OSError, RespError, sysv_ipc errors
        what = Source.describe(args)
        sys.stderr.write(f"{PROG}: {what}: {getattr(exc, 'strerror', None) or exc}\n")
        raise SystemExit(1) from None
    if args.pidfile:
        args.pidfile = os.path.abspath(args.pidfile)
        try:
            _check_pidfile(args.pidfile)
        except OSError as exc:
            sys.stderr.write(f"{PROG}: --pidfile {args.pidfile}: {exc.strerror or exc}\n")
            raise SystemExit(1) from None

    def run() -> int:
        reader = source.reader(queue.Queue(args.backlog))
        return serve(reader, Dispatcher(handler, command, args.workers, args.verbose),
                     source.where)

    pidfile = None
    if args.pidfile:
        from daemon.pidfile import TimeoutPIDLockFile

        pidfile = TimeoutPIDLockFile(args.pidfile, 0)
    if args.detach:
        import daemon

        context = daemon.DaemonContext(umask=0o022, pidfile=pidfile, signal_map={},
                                       files_preserve=sorted(handler_fds | source.fds()))
        with context:
            _setup_logging(args.verbose, syslog=True)
            status = run()
    elif pidfile is not None:
        with pidfile:
            status = run()
    else:
        status = run()
    raise SystemExit(status)


if __name__ == "__main__":
    main()
