"""Helpers for the FTPS tests: ftplib clients that resume the control connection's TLS
session (or someone else's), an implicit-FTPS ftplib client, runners for curl and lftp,
and ftpd on free ports with an implicit listener if asked. Free ports, bounded waits,
the ftpd subprocess and the raw control client are ``ftpsupport``'s.

Every wait has a deadline; nothing retries a test."""

from __future__ import annotations

import ftplib
import os
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftpsupport import DEADLINE, FtpdProcess, RawControl, netloc, start_ftpd

CLIENT_TIMEOUT = 20.0  # seconds: curl and lftp runs
USER, PASSWORD = "user", "pw"


def client_context(ca: Path, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A verifying client context trusting the test CA; *version* pins the maximum."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if version is not None:
        ctx.maximum_version = version
    return ctx


# -- ftpd in a subprocess -------------------------------------------------------------------
class TlsFtpd(FtpdProcess):
    """A running ``ftpd`` subprocess: ``port`` is the explicit (plain or AUTH TLS)
    listener, ``implicit_port`` the implicit-FTPS one if any."""

    def __init__(self, args: list[str], *, implicit_port: int | None, root: Path,
                 check_log: bool = True, **kwargs: Any) -> None:
        super().__init__(args, **kwargs)
        self.implicit_port, self.root, self.check_log = implicit_port, root, check_log

    def url(self, path: str = "", scheme: str = "ftp", implicit: bool = False) -> str:
        port = self.implicit_port if implicit else self.port
        assert port is not None
        return f"{scheme}://{USER}:{PASSWORD}@{netloc(self.host, port)}/{path.lstrip('/')}"


def start_tls(workdir: Path, *args: str, root: Path | None = None, host: str = "127.0.0.1",
              implicit: bool = False, user: bool = True, check_log: bool = True) -> TlsFtpd:
    """``python -m ftpd -l HOST:PORT [--implicit-listen HOST:PORT2] -r ROOT -u user -P pw
    ARGS``, waited for until every listener accepts."""
    if root is None:
        root = workdir / "root"
        root.mkdir(exist_ok=True)

    def spawn(ports: list[int], attempt: int) -> TlsFtpd:
        port, implicit_port = ports[0], (ports[1] if implicit else None)
        argv = ["-l", netloc(host, port), "-r", str(root), "-v",
                "--failed-login-delay", "0", "--log", "stderr"]
        if implicit_port is not None:
            argv += ["--implicit-listen", netloc(host, implicit_port)]
        if user:
            argv += ["-u", USER, "-P", PASSWORD]
        return TlsFtpd([*argv, *args], implicit_port=implicit_port, root=root,
                       check_log=check_log, host=host, port=port,
                       log_path=workdir / f"ftpd-{port}-{attempt}.log")

    return start_ftpd(spawn, host=host, nports=2 if implicit else 1)


def finish(servers: list[TlsFtpd]) -> None:
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
class Raw(RawControl):
    """A bare control connection (the greeting is the test's to read): send lines, read
    whole replies, their text without the code prefixes; ``starttls`` wraps the socket
    in place (after the 234)."""

    errors = "replace"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, greet=False)

    def text(self, lines: list[str]) -> str:
        code = lines[0][:3]
        return "\n".join([lines[0][4:], *(ln[4:] if ln[:3] == code else ln for ln in lines[1:])])

    def starttls(self, ctx: ssl.SSLContext) -> None:
        assert not self._buf, f"cleartext bytes after the 234: {self._buf!r}"
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host)
