"""Support shared by the test folders: free ports, bounded waits, the real ``ftpd``
command in a subprocess (started on a free port, waited for, stopped by pid) and a raw
control connection that reads RFC 959 replies.

Imported as ``ftpsupport``: ``tests/conftest.py`` puts this directory on ``sys.path``.
What is particular to one folder (its fixtures, its server's defaults, its teardown
checks) stays in that folder, built on these pieces.

Every wait has a deadline; every loop has a bound on its count."""

from __future__ import annotations

import ftplib
import hashlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

DEADLINE = 10.0  # seconds: the longest any single wait in the tests may take
BIND_ATTEMPTS = 5  # starts on a fresh port when one was taken between pick and bind

Probe = Callable[[str, int], bool]


# -- addresses and ports --------------------------------------------------------------------
def family_of(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def netloc(host: str, port: int) -> str:
    """``host:port``, or ``[host]:port`` for an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on *host* (the caller copes with a race)."""
    with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_range(count: int, hosts: Iterable[str]) -> range:
    """*count* consecutive ports that were free a moment ago on every one of *hosts*
    (a balancer's address and its hosts', say); bounded in attempts."""
    hosts = list(hosts)
    for _ in range(200):
        low = free_port(hosts[0])
        ports = range(low, low + count)
        if ports[-1] > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for host in hosts:
                for port in ports:
                    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
                    socks.append(sock)
                    sock.bind((host, port))
            return ports
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("no free range of ports")


def can_bind(host: str) -> bool:
    """A TCP socket can be bound on *host* here (say 127.0.0.2, another loopback)."""
    try:
        with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


def has_ipv6_loopback() -> bool:
    return socket.has_ipv6 and can_bind("::1")


def listening_ports() -> set[int]:
    """Ports in LISTEN state, read from /proc/net/tcp and tcp6 (looking never connects,
    so it never activates a socket-activated service)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue
    return ports


# -- probes: is something there? ---------------------------------------------------------
def accepts(host: str, port: int, timeout: float = 1.0) -> bool:
    """A TCP connection to *host*:*port* is accepted (and closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listens(_host: str, port: int) -> bool:
    """Something listens on *port* (from /proc: no connection is made)."""
    return port in listening_ports()


def _session(host: str, port: int, greeting: bool) -> bool:
    """Connect; if *greeting*, read a 220 first; send QUIT and read until the server
    closes, so that the session is gone from the server's books when this returns."""
    try:
        with socket.create_connection((host, port), timeout=DEADLINE) as s:
            if greeting and not s.recv(4096).startswith(b"220"):
                return False
            s.sendall(b"QUIT\r\n")
            for _ in range(100_000):
                if not s.recv(4096):
                    break
        return True
    except OSError:
        return False


def quits(host: str, port: int) -> bool:
    """A session that sends QUIT at once and reads until the server closes (so that it
    no longer counts against connection caps)."""
    return _session(host, port, greeting=False)


def greets(host: str, port: int) -> bool:
    """A session that reads a 220 greeting, then QUITs likewise (a session that never
    logs in leaves no trace in the event sinks)."""
    return _session(host, port, greeting=True)


# -- bounded waits ----------------------------------------------------------------------
def wait_until(predicate: Callable[[], Any], what: str = "condition",
               timeout: float = DEADLINE, interval: float = 0.02) -> Any:
    """Poll *predicate* until it returns something true, and return that; at most
    *timeout* seconds, then AssertionError naming *what*."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout:.3g}s waiting for {what}")
        time.sleep(interval)


def loop_turns(server: Any, turns: int = 2) -> None:
    """Wait until the loop of an in-process server (``ftpd.embed.FTPServer``) has gone
    round *turns* times. Whatever a client sent before the call has then been read and
    handled (two turns: the first may have begun just before the bytes arrived), and
    every timer due at the current virtual time has run, so any reply it caused is
    already in the client's socket: "nothing yet" is a fact, not a race."""
    loop = getattr(server, "server", server).loop  # an FTPServer, or its Server
    for _ in range(turns):
        done = threading.Event()
        loop.call_soon_threadsafe(done.set)
        assert done.wait(DEADLINE), "the server's loop did not come round"


class ProcessExited(AssertionError):
    """The process a wait was for exited first."""

    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__(f"{proc.args!r} exited with {proc.returncode}")
        self.proc = proc


def wait_for_port(host: str, port: int, deadline: float,
                  proc: subprocess.Popen | None = None, probe: Probe = accepts) -> None:
    """Wait until *probe* (by default: a connection is accepted) succeeds on *host*:*port*.
    *deadline* is a ``time.monotonic()`` value (so that waits for several ports share
    one): AssertionError when it passes, ProcessExited at once if *proc* exits first."""
    def ready() -> bool:
        if proc is not None and proc.poll() is not None:
            raise ProcessExited(proc)
        return probe(host, port)

    wait_until(ready, f"a listener on {netloc(host, port)}",
               max(0.0, deadline - time.monotonic()))


# -- processes --------------------------------------------------------------------------
def stop_pid(proc: subprocess.Popen, sig: int = signal.SIGTERM,
             timeout: float = DEADLINE) -> int | None:
    """Send *sig* to *proc*'s pid, wait at most *timeout* seconds, then SIGKILL and wait
    again; returns the exit status."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
            proc.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    return proc.returncode


def read_text(path: Path) -> str:
    """A log file's text so far ("" while it does not exist)."""
    try:
        return path.read_text("utf-8", "replace")
    except FileNotFoundError:
        return ""


def sha256(data: bytes | str | Path) -> str:
    """The hex digest of *data*, or of the file it names."""
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    with open(data, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ftpd_argv(*args: str) -> list[str]:
    """The ``ftpd`` command of the Python running the tests."""
    return [sys.executable, "-m", "ftpd", *args]


class FtpdProcess:
    """``python -m ftpd ARGS`` in a subprocess listening on *host*:*port*: stdin is
    /dev/null, stderr (and stdout, unless *stdout* is given) goes to *log_path*, and
    *env* (if any) is added to the environment. Stopped by pid: ``stop()``."""

    def __init__(self, args: Iterable[str], *, port: int, log_path: Path,
                 host: str = "127.0.0.1", env: dict[str, str] | None = None,
                 stdout: int | None = None) -> None:
        self.host, self.port, self.log_path = host, port, log_path
        self.argv = ftpd_argv(*args)
        self.stopped = False
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log if stdout is None else stdout,
                stderr=log, env=None if env is None else {**os.environ, **env})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return read_text(self.log_path)

    def errors(self) -> str:
        """What ftpd said, for start-up failures."""
        return self.log()

    def wait_ready(self, ports: Iterable[int] | None = None, probe: Probe = accepts,
                   timeout: float = DEADLINE) -> bool:
        """True once *probe* succeeds on every port (by default the one port), False if
        ftpd exits first; at the deadline it is stopped and AssertionError raised."""
        deadline = time.monotonic() + timeout
        try:
            for port in [self.port] if ports is None else ports:
                wait_for_port(self.host, port, deadline, self.proc, probe)
        except ProcessExited:
            return False
        except AssertionError:
            self.stop()
            raise
        return True

    def stop(self, timeout: float = DEADLINE) -> int:
        """SIGTERM, a bounded wait, SIGKILL if needed (once); returns the exit status."""
        if not self.stopped:
            self.stopped = True
            stop_pid(self.proc, timeout=timeout)
        return self.proc.returncode


FtpdT = TypeVar("FtpdT", bound=FtpdProcess)


def start_ftpd(spawn: Callable[[list[int], int], FtpdT], *, host: str = "127.0.0.1",
               nports: int = 1, probe: Probe = accepts, race: str = "cannot listen",
               attempts: int = BIND_ATTEMPTS) -> FtpdT:
    """``spawn(ports, attempt)`` starts ftpd on *nports* ports just found free on *host*;
    this waits until *probe* succeeds on each. Should ftpd exit instead, saying *race*
    (a port was taken between the pick and its bind), it is started again on fresh ports,
    *attempts* times at most; any other exit is an AssertionError with what it said."""
    for attempt in range(attempts):
        ports = [free_port(host) for _ in range(nports)]
        server = spawn(ports, attempt)
        if server.wait_ready(ports, probe):
            return server
        if race not in server.errors():  # a real failure, not a port race
            raise AssertionError(f"ftpd exited with {server.proc.returncode}: {server.errors()}")
    raise AssertionError(f"ftpd could not bind {nports} free port(s) in {attempts} attempts")


# -- a raw control connection -----------------------------------------------------------
class MalformedReply(AssertionError):
    pass


class RawControl:
    """A control connection spoken byte for byte. ``reply()`` reads one whole RFC 959
    reply (``NNN text``, or ``NNN-`` ... ``NNN text``) and returns its code and text, by
    default all its lines joined by newlines. Kept as they arrive: every byte in
    ``received``, every line in ``transcript``, every reply in ``replies``.

    Subclasses choose: ``first_line`` (the pattern a reply must begin with), ``strict``
    (a line not ended by CRLF is a MalformedReply, else a lone LF ends it too),
    ``errors`` (how bytes that are not UTF-8 are decoded) and ``text()``."""

    first_line = re.compile(r"^(\d{3})([ -])", re.ASCII)
    strict = False
    errors = "surrogateescape"
    MAX_READS = 100_000  # a bound on recv calls for one line, and on lines for one reply

    def __init__(self, host: str, port: int, timeout: float = DEADLINE,
                 greet: bool = True) -> None:
        self.host = host
        self.attach(socket.create_connection((host, port), timeout=timeout), timeout)
        self.greeting = self.reply() if greet else None

    def attach(self, sock: socket.socket, timeout: float = DEADLINE) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self._buf = b""
        self.received = b""
        self.transcript: list[str] = []
        self.replies: list[tuple[int, str]] = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawControl:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        self.received += data
        return data

    def send(self, data: bytes, flags: int = 0) -> None:
        self.sock.sendall(data, flags)

    def send_line(self, line: str | bytes) -> None:
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        self.sock.sendall(line + b"\r\n")

    def cmd(self, line: str | bytes, timeout: float | None = None) -> tuple[int, str]:
        self.send_line(line)
        return self.reply(timeout)

    def _line(self) -> str:
        for _ in range(self.MAX_READS):
            if b"\n" in self._buf:
                break
            chunk = self._recv()
            if not chunk:
                raise EOFError(f"connection closed; pending {self._buf!r}")
            self._buf += chunk
        else:
            raise MalformedReply(f"no end of line in {self.MAX_READS} reads: {self._buf[:80]!r}")
        raw, _, self._buf = self._buf.partition(b"\n")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        elif self.strict:
            raise MalformedReply(f"reply line not ended by CRLF: {raw!r}")
        line = raw.decode("utf-8", self.errors)
        self.transcript.append(line)
        return line

    def reply(self, timeout: float | None = None) -> tuple[int, str]:
        """One whole reply: (code, ``text(lines)``), within *timeout* (default: the
        connection's)."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        first = self._line()
        m = self.first_line.match(first)
        if m is None:
            raise MalformedReply(f"bad first reply line {first!r}")
        lines = [first]
        if m.group(2) == "-":
            end = m.group(1) + " "
            for _ in range(self.MAX_READS):
                line = self._line()
                lines.append(line)
                if line.startswith(end):
                    break
            else:
                raise MalformedReply(f"multi-line reply {first!r} never ended")
        code, text = int(m.group(1)), self.text(lines)
        self.replies.append((code, text))
        return code, text

    def text(self, lines: list[str]) -> str:
        """A reply's text from its lines: here, all of them as they came."""
        return "\n".join(lines)

    def expect(self, line: str | bytes, code: int | tuple[int, ...]) -> str:
        """Send *line*; its reply must have *code* (or one of them); returns the text."""
        got, text = self.cmd(line)
        codes = code if isinstance(code, tuple) else (code,)
        assert got in codes, f"{line!r}: expected {code}, got {got} {text!r}"
        return text

    def login(self, user: str = "user", password: str = "pw") -> None:
        self.expect(f"USER {user}", 331)
        self.expect(f"PASS {password}", 230)

    def pasv(self) -> tuple[str, int]:
        return ftplib.parse227(self.expect("PASV", 227))

    def epsv(self) -> tuple[str, int]:
        return ftplib.parse229(self.expect("EPSV", 229), self.sock.getpeername())

    def silent(self) -> bool:
        """Nothing from the server is waiting to be read, right now (no wait: after
        ``loop_turns`` on an embedded server, whatever it sent has arrived)."""
        if self._buf:
            return False
        readable, _, _ = select.select([self.sock], [], [], 0)
        return not readable

    def wait_closed(self, timeout: float = DEADLINE) -> bool:
        """True once the server closed the connection, within *timeout*; whatever it sent
        until then is kept in the buffer (read it with ``reply``)."""
        deadline = time.monotonic() + timeout
        try:
            for _ in range(self.MAX_READS):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(max(0.01, left))
                try:
                    chunk = self._recv()
                except TimeoutError:
                    return False
                except ConnectionResetError:
                    return True
                if not chunk:
                    return True
                self._buf += chunk
            return False
        finally:
            self.sock.settimeout(self.timeout)
