"""Helpers for the FTPS tests: bounded waits, free ports, ftplib clients that resume
the control connection's TLS session (or someone else's), an implicit-FTPS ftplib
client, and runners for curl and lftp.

Every wait has a deadline; nothing retries a test."""

from __future__ import annotations

import ftplib
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEADLINE = 10.0  # seconds: the longest any single wait may take
CLIENT_TIMEOUT = 20.0  # seconds: curl and lftp runs
USER, PASSWORD = "user", "pw"
BIND_ATTEMPTS = 5


def family_of(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on *host*."""
    with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def wait_until(predicate: Callable[[], object], what: str, timeout: float = DEADLINE,
               interval: float = 0.02) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def listening_ports() -> set[int]:
    """Ports in LISTEN state, read from /proc (looking never connects, so it never
    activates a socket-activated service)."""
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


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def client_context(ca: Path, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A verifying client context trusting the test CA; *version* pins the maximum."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if version is not None:
        ctx.maximum_version = version
    return ctx


# -- ftpd in a subprocess -------------------------------------------------------------------
@dataclass
class FtpdProcess:
    """A running ``ftpd`` subprocess."""

    proc: subprocess.Popen
    host: str
    port: int  # the explicit (plain or AUTH TLS) listener
    implicit_port: int | None
    root: Path
    log_path: Path
    check_log: bool = True
    stopped: bool = field(default=False)

    def url(self, path: str = "", scheme: str = "ftp", implicit: bool = False) -> str:
        port = self.implicit_port if implicit else self.port
        assert port is not None
        return f"{scheme}://{USER}:{PASSWORD}@{netloc(self.host, port)}/{path.lstrip('/')}"

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def stop(self) -> int:
        if not self.stopped:
            self.stopped = True
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(DEADLINE)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(DEADLINE)
        return self.proc.returncode


def _accepting(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def ftpd_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "ftpd", *args]


def start_ftpd(workdir: Path, *args: str, root: Path | None = None, host: str = "127.0.0.1",
               implicit: bool = False, user: bool = True, check_log: bool = True) -> FtpdProcess:
    """``python -m ftpd -l HOST:PORT [--implicit-listen HOST:PORT2] -r ROOT -u user -P pw
    ARGS``, waited for until every listener accepts."""
    if root is None:
        root = workdir / "root"
        root.mkdir(exist_ok=True)
    for attempt in range(BIND_ATTEMPTS):
        port = free_port(host)
        implicit_port = free_port(host) if implicit else None
        argv = ftpd_argv("-l", netloc(host, port), "-r", str(root), "-v",
                         "--failed-login-delay", "0", "--log", "stderr")
        if implicit_port is not None:
            argv += ["--implicit-listen", netloc(host, implicit_port)]
        if user:
            argv += ["-u", USER, "-P", PASSWORD]
        argv += list(args)
        log_path = workdir / f"ftpd-{port}-{attempt}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        server = FtpdProcess(proc, host, port, implicit_port, root, log_path, check_log)
        ports = [p for p in (port, implicit_port) if p is not None]

        def ready(proc: subprocess.Popen = proc, ports: list[int] = ports) -> bool:
            return proc.poll() is not None or all(_accepting(host, p) for p in ports)

        try:
            wait_until(ready, f"ftpd to listen on {ports}")
        except AssertionError:
            server.stop()
            raise
        if proc.poll() is None:
            return server
        if "cannot listen" not in server.log():  # a real failure, not a port race
            raise AssertionError(f"ftpd exited with {proc.returncode}: {server.log()}")
    raise AssertionError(f"ftpd could not bind free ports in {BIND_ATTEMPTS} attempts")


def finish(servers: list[FtpdProcess]) -> None:
    problems = []
    for server in servers:
        was_running = not server.stopped and server.proc.poll() is None
        status = server.stop()
        if was_running and status != 0:
            problems.append(f"ftpd exited with {status} after SIGTERM:\n{server.log()}")
        if server.check_log and "Traceback" in server.log():
            problems.append(f"a traceback in the ftpd log:\n{server.log()}")
    assert not problems, "\n".join(problems)


# -- ftplib clients ----------------------------------------------------------------------
class ReuseFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose protected data connections resume a TLS session: the control
    connection's own by default, or ``data_session`` when set (someone else's).

    Data sockets are wrapped with ``suppress_ragged_eofs=False``, so a data connection
    the server closes without TLS close_notify raises instead of looking complete."""

    data_session: ssl.SSLSession | None = None
    last_data_reused: bool | None = None

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = self.data_session if self.data_session is not None else self.sock.session
            try:
                conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                                session=session, suppress_ragged_eofs=False)
            except BaseException:
                conn.close()
                raise
            self.last_data_reused = conn.session_reused
        return conn, size


class ImplicitFTP(ReuseFTP_TLS):
    """Implicit FTPS: the socket is wrapped right after connecting, before the
    welcome is read; data connections are protected (PROT P is the default) and
    resume the control connection's session."""

    def connect(self, host: str = "", port: int = 0, timeout: float = -999,
                source_address: Any = None) -> str:
        if host:
            self.host = host
        if port:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        self.sock = socket.create_connection((self.host, self.port), self.timeout)
        self.af = self.sock.family
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        self._prot_p = True
        return self.welcome


def tls_login(host: str, port: int, ca: Path, user: str = "user", password: str = "pw",
              cls: type[ftplib.FTP_TLS] = ReuseFTP_TLS, version: ssl.TLSVersion | None = None,
              prot_p: bool = True, context: ssl.SSLContext | None = None) -> ftplib.FTP_TLS:
    """AUTH TLS, login, PBSZ 0 and PROT P. After login the client has read replies
    over TLS, so a TLS 1.3 session ticket has arrived and ``sock.session`` resumes.
    Clients that are to swap sessions must share one *context* (Python insists)."""
    if context is None:
        context = client_context(ca, version)
    ftp = cls(context=context, timeout=DEADLINE)
    ftp.connect(host, port)
    ftp.auth()
    ftp.login(user, password)
    if prot_p:
        ftp.prot_p()
    return ftp


def retr(ftp: ftplib.FTP, name: str) -> bytes:
    chunks: list[bytes] = []
    ftp.retrbinary(f"RETR {name}", chunks.append)
    return b"".join(chunks)


def stor(ftp: ftplib.FTP, name: str, data: bytes) -> str:
    import io

    return ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def expect_refused(ftp: ftplib.FTP, transfer: Callable[[], object], code: str = "425") -> None:
    """*transfer* must fail with *code* on the control connection. The client may
    see the refusal first on the data connection (the server closes it right after
    the handshake): then the reply is still to be read."""
    try:
        transfer()
    except ftplib.error_temp as exc:
        assert str(exc).startswith(code), exc
        return
    except (OSError, EOFError):
        pass
    else:
        raise AssertionError("the transfer was not refused")
    try:
        reply = ftp.getresp()
    except ftplib.error_temp as exc:
        reply = str(exc)
    assert reply.startswith(code), reply


def quit_quietly(ftp: ftplib.FTP) -> None:
    try:
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        ftp.close()


# -- command-line clients -----------------------------------------------------------------
def run_client(argv: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    """Run curl or lftp with a private HOME (no user rc files), bounded in time."""
    env = {**os.environ, "HOME": str(home), "LC_ALL": "C"}
    for proxy in ("ftp_proxy", "FTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(proxy, None)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=CLIENT_TIMEOUT)


def curl(args: list[str], ca: Path, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    """``curl -q -sS --cacert CA --max-time ... ARGS``."""
    argv = ["curl", "-q", "-sS", "--cacert", str(ca), "--max-time", str(CLIENT_TIMEOUT - 5)]
    return run_client(argv + args, cwd, home)


def lftp(url: str, commands: list[str], ca: Path, cwd: Path,
         home: Path) -> subprocess.CompletedProcess:
    """lftp forced to protect control and data, verifying the server against CA."""
    script = "; ".join([
        "set cmd:fail-exit yes",
        "set net:max-retries 1",
        "set net:timeout 10",
        "set net:reconnect-interval-base 1",
        "set ftp:ssl-force true",
        "set ftp:ssl-protect-data true",
        f"set ssl:ca-file {ca}",
        "set ssl:verify-certificate yes",
        "set xfer:clobber on",
        f"open {url}",
        *commands,
    ])
    return run_client(["lftp", "-c", script], cwd, home)


# -- a raw control connection ---------------------------------------------------------------
class Raw:
    """A bare control connection: send lines, read whole replies; ``starttls`` wraps
    the socket in place (after the 234)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.sock: socket.socket = socket.create_connection((host, port), timeout=DEADLINE)
        self._buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"connection closed; pending {self._buf!r}")
            self._buf += data
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def reply(self) -> tuple[int, str]:
        first = self._line()
        code = int(first[:3])
        lines = [first[4:]]
        if first[3:4] == b"-":
            while True:
                line = self._line()
                lines.append(line[4:] if line[:3] == first[:3] else line)
                if line[:3] == first[:3] and line[3:4] == b" ":
                    break
        return code, b"\n".join(lines).decode("utf-8", "replace")

    def cmd(self, line: str) -> tuple[int, str]:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def starttls(self, ctx: ssl.SSLContext) -> None:
        assert not self._buf, f"cleartext bytes after the 234: {self._buf!r}"
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host)

    def close(self) -> None:
        self.sock.close()
