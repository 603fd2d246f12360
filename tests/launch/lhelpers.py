"""Helpers for the launch tests: the installed ``ftpd`` entry point, a raw FTP control
client that keeps every byte it received, processes found by a marker in their command
line, and an sd_notify listener. Free ports, bounded waits, stopping by pid and the
control client's reply parsing are ``ftpsupport``'s.

Every wait has a deadline; nothing retries a test."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ftpsupport import DEADLINE, RawControl, listens, wait_for_port, wait_until

REPLY_LINE = re.compile(rb"^\d{3}[ -]")


def ftpd_exe() -> str:
    """The ``ftpd`` console script of the environment running the tests."""
    beside = Path(sys.executable).parent / "ftpd"
    if beside.exists():
        return str(beside)
    found = shutil.which("ftpd")
    assert found, "the ftpd entry point is not installed in this environment"
    return found


def wait_listening(port: int, proc: subprocess.Popen | None = None,
                   timeout: float = DEADLINE) -> None:
    """Wait until something listens on *port*, without connecting (a connection would
    activate a launcher's service)."""
    wait_for_port("127.0.0.1", port, time.monotonic() + timeout, proc, probe=listens)


def connected_pair() -> tuple[socket.socket, socket.socket]:
    """(client, server side) of a real TCP connection on 127.0.0.1: what inetd hands
    a no-wait service is the server side."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=DEADLINE)
        server_side, _ = listener.accept()
    client.settimeout(DEADLINE)
    return client, server_side


# -- processes -------------------------------------------------------------------------
def pids_with(marker: str) -> list[int]:
    """Pids of live (not zombie) processes whose command line contains *marker*."""
    found = []
    encoded = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if encoded in cmdline and state != b"Z":
            found.append(int(entry))
    return sorted(found)


def wait_for_one(find: Callable[[], list[int]], what: str,
                 timeout: float = DEADLINE) -> int:
    """Wait until *find* returns exactly one pid; return it."""
    found: list[int] = []

    def exactly_one() -> bool:
        found[:] = find()
        return len(found) == 1

    wait_until(exactly_one, f"exactly one {what} (found {found})", timeout)
    return found[0]


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL each pid (processes we started, found by their marker)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def proc_status(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def wait_exit(proc: subprocess.Popen, timeout: float = DEADLINE) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{proc.args!r} still running after {timeout}s") from None


def wait_pid_gone(pid: int, timeout: float = DEADLINE) -> None:
    def gone() -> bool:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            return True

    wait_until(gone, f"pid {pid} to exit", timeout)


# -- a raw control connection ------------------------------------------------------------
class Control(RawControl):
    """A control connection on a socket we hold: a reply's text is without the code
    prefixes of its first and last lines, and ``raw`` keeps every byte received."""

    errors = "replace"

    def __init__(self, sock: socket.socket) -> None:
        self.attach(sock)

    @classmethod
    def connect(cls, host: str, port: int) -> Control:
        return cls(socket.create_connection((host, port), timeout=DEADLINE))

    @property
    def raw(self) -> bytes:
        return self.received

    def text(self, lines: list[str]) -> str:
        if len(lines) == 1:
            return lines[0][4:]
        return "\n".join([lines[0][4:], *lines[1:-1], lines[-1][4:]])

    def send(self, command: str) -> None:
        """Send one command line (CRLF added)."""
        self.send_line(command)

    def login(self, user: str = "anonymous", password: str = "guest@example.com") -> None:
        code, text = self.cmd(f"USER {user}")
        if code == 331:
            code, text = self.cmd(f"PASS {password}")
        assert code == 230, f"login as {user}: {code} {text!r}"

    def epsv(self) -> socket.socket:
        """EPSV, and the data connection to the port it names."""
        text = self.expect("EPSV", 229)
        port = int(re.search(r"\(\|\|\|(\d+)\|\)", text).group(1))
        host = self.sock.getpeername()[0]
        return socket.create_connection((host, port), timeout=DEADLINE)

    def read_to_eof(self, timeout: float = DEADLINE) -> bytes:
        """Everything until the server closes (bounded)."""
        self.sock.settimeout(timeout)
        rest, self._buf = self._buf, b""
        while data := self._recv():
            rest += data
        return rest


def assert_all_replies(raw: bytes) -> None:
    """Every byte received is an RFC 959 reply: a line ``DDD `` / ``DDD-`` or a line of a
    multi-line reply, each ended by CRLF."""
    assert raw.endswith(b"\r\n"), f"trailing bytes that are not a reply line: {raw[-80:]!r}"
    multi: bytes | None = None
    for line in raw[:-2].split(b"\r\n"):
        if multi is not None:
            if line.startswith(multi + b" "):
                multi = None
            continue
        assert REPLY_LINE.match(line), f"not an FTP reply line: {line!r} in {raw!r}"
        if line[3:4] == b"-":
            multi = line[:3]
    assert multi is None, f"unterminated multi-line reply in {raw!r}"


# -- sd_notify ------------------------------------------------------------------------
class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path | None = None, abstract: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract is not None:
            self.sock.bind("\0" + abstract)
            self.address = "@" + abstract
        else:
            assert path is not None
            self.sock.bind(str(path))
            self.address = str(path)
        self.messages: list[str] = []

    def _pump(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        self.messages.extend(data.decode("utf-8", "replace").split("\n"))

    def wait_for(self, predicate: Callable[[str], bool], what: str,
                 timeout: float = DEADLINE, since: int = 0) -> int:
        """The index of the first message from *since* on (seen so far or arriving before
        the deadline) that matches."""
        end = time.monotonic() + timeout
        seen = since
        while True:
            for index in range(seen, len(self.messages)):
                if predicate(self.messages[index]):
                    return index
            seen = max(seen, len(self.messages))
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no sd_notify {what} in {self.messages!r}")
            self._pump(min(left, 0.2))

    def close(self) -> None:
        self.sock.close()


def status_sessions(message: str) -> int | None:
    """The session count in an sd_notify ``STATUS=`` message, else None."""
    match = re.fullmatch(r"STATUS=\D*(\d+)\b.*", message)
    return int(match.group(1)) if match else None
