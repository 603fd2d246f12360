"""FTPS on inherited sockets: systemd socket activation (a socket named ``ftps`` in
LISTEN_FDNAMES is implicit, the others plain/explicit; Accept=no and Accept=yes),
inetd no-wait (``-I --implicit`` and ``-I`` with AUTH TLS, the socket on fds 0-2),
inetd wait (``-W --implicit``) and ``systemd-socket-activate -a --inetd``."""

from __future__ import annotations

import ftplib
import os
import re
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from ftpsupport import (
    DEADLINE,
    free_port,
    ftpd_argv,
    listening_ports,
    sha256,
    stop_pid,
    wait_until,
)
from tlshelpers import (
    USER,
    ImplicitFTP,
    ReuseFTP_TLS,
    client_context,
    quit_quietly,
    retr,
    stor,
    tls_login,
)

ACTIVATE = shutil.which("systemd-socket-activate")
needs_activate = pytest.mark.skipif(ACTIVATE is None,
                                    reason="systemd-socket-activate is not installed")


def _server_args(root: Path, certs, log: Path) -> list[str]:
    return ["-r", str(root), "-u", USER, "-P", "pw", "--failed-login-delay", "0", "-v",
            "--tls-cert", str(certs.cert), "--tls-key", str(certs.key), "--log", str(log)]


def _exercise(ftp: ftplib.FTP, root: Path) -> None:
    """Log in, list, download and upload over protected data connections."""
    payload = os.urandom(100_000)
    (root / "down.bin").write_bytes(payload)
    ftp.login(USER, "pw")
    assert "down.bin" in ftp.nlst()
    assert sha256(retr(ftp, "down.bin")) == sha256(payload)
    upload = os.urandom(20_000)
    assert stor(ftp, "up.bin", upload).startswith("226")
    assert sha256((root / "up.bin").read_bytes()) == sha256(upload)


def _implicit_client(certs, host: str, port: int) -> ImplicitFTP:
    ftp = ImplicitFTP(context=client_context(certs.ca), timeout=DEADLINE)
    assert ftp.connect(host, port).startswith("220")
    return ftp


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


# -- systemd ---------------------------------------------------------------------------------
class Activator:
    """systemd-socket-activate running ftpd; its stderr (a file) says what it did."""

    def __init__(self, tmp_path: Path, listen: list[str], args: list[str], ports: list[int]):
        self.err = tmp_path / "activate.err"
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen([ACTIVATE, *listen, *args], stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        wait_until(lambda: self.proc.poll() is not None or set(ports) <= listening_ports(),
                   f"systemd-socket-activate to listen on {ports}")
        assert self.proc.poll() is None, self.stderr()

    def stderr(self) -> str:
        return self.err.read_text("utf-8", "replace")


@pytest.fixture
def activate(tmp_path: Path):
    started: list[Activator] = []

    def start(listen: list[str], args: list[str], ports: list[int]) -> Activator:
        a = Activator(tmp_path, listen, args, ports)
        started.append(a)
        return a

    yield start
    for a in started:
        stop_pid(a.proc)


@needs_activate
def test_systemd_ftps_named_socket_is_implicit(activate, certs, root, tmp_path):
    implicit_port, plain_port = free_port(), free_port()
    log = tmp_path / "ftpd.log"
    act = activate(["-l", f"127.0.0.1:{implicit_port}", "-l", f"127.0.0.1:{plain_port}",
                    "--fdname=ftps:ftp"],
                   ftpd_argv(*_server_args(root, certs, log)), [implicit_port, plain_port])
    # the ftps socket: TLS from the first byte
    ftp = _implicit_client(certs, "127.0.0.1", implicit_port)
    try:
        _exercise(ftp, root)
        assert ftp.last_data_reused is True
    finally:
        quit_quietly(ftp)
    # the other one: a cleartext 220, AUTH TLS on demand
    plain = ftplib.FTP()
    try:
        assert plain.connect("127.0.0.1", plain_port, timeout=DEADLINE).startswith("220")
        assert plain.sendcmd("FEAT").count("AUTH TLS") == 1
    finally:
        quit_quietly(plain)
    explicit = tls_login("127.0.0.1", plain_port, certs.ca)
    try:
        assert retr(explicit, "down.bin")
    finally:
        quit_quietly(explicit)
    text = log.read_text()
    assert "(systemd)" in text and "Traceback" not in text
    assert stop_pid(act.proc) == 0, act.stderr() + text


@needs_activate
def test_systemd_accept_yes_ftps_connection_is_implicit(activate, certs, root, tmp_path):
    port = free_port()
    log = tmp_path / "ftpd.log"
    act = activate(["-a", "-l", f"127.0.0.1:{port}", "--fdname=ftps"],
                   ftpd_argv(*_server_args(root, certs, log)), [port])
    ftp = _implicit_client(certs, "127.0.0.1", port)
    try:
        _exercise(ftp, root)
    finally:
        quit_quietly(ftp)
    wait_until(lambda: re.search(r"Child \d+ died with code 0", act.stderr()),
               "the per-connection ftpd to exit 0")
    assert "Traceback" not in log.read_text()


@needs_activate
def test_systemd_activate_inetd_implicit(activate, certs, root, tmp_path):
    """systemd-socket-activate -a --inetd: the connection on stdin/stdout; ftpd -I
    --implicit speaks TLS on it from the first byte."""
    port = free_port()
    log = tmp_path / "ftpd.log"
    act = activate(["-a", "--inetd", "-l", f"127.0.0.1:{port}"],
                   ftpd_argv("-I", "--implicit", *_server_args(root, certs, log)), [port])
    for _ in range(2):  # one process per connection, each its own TLS server
        ftp = _implicit_client(certs, "127.0.0.1", port)
        try:
            _exercise(ftp, root)
            assert ftp.last_data_reused is True
        finally:
            quit_quietly(ftp)
    wait_until(lambda: len(re.findall(r"Child \d+ died with code 0", act.stderr())) == 2,
               "both per-connection ftpd processes to exit 0")
    assert "Traceback" not in log.read_text()


# -- inetd, by hand: the socket on fds 0-2 ------------------------------------------------------
def _inetd(argv: list[str]) -> tuple[socket.socket, subprocess.Popen]:
    """Connect a client to a one-shot listener and start *argv* with the accepted
    socket as stdin, stdout and stderr (what inetd does for a nowait service)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=DEADLINE)
        conn, _ = listener.accept()
    with conn:
        proc = subprocess.Popen(argv, stdin=conn, stdout=conn, stderr=conn, close_fds=True)
    return client, proc


def _wrap_client(ftp_cls, certs, sock: socket.socket, implicit: bool):
    """An ftplib client on an already connected socket."""
    ftp = ftp_cls(context=client_context(certs.ca), timeout=DEADLINE)
    ftp.host, ftp.port = sock.getpeername()[:2]
    ftp.af = sock.family
    ftp.sock = ftp.context.wrap_socket(sock, server_hostname=ftp.host) if implicit else sock
    ftp.file = ftp.sock.makefile("r", encoding=ftp.encoding)
    ftp.welcome = ftp.getresp()
    if implicit:
        ftp._prot_p = True
    return ftp


def test_inetd_nowait_implicit(certs, root, tmp_path):
    log = tmp_path / "ftpd.log"
    client, proc = _inetd(ftpd_argv("-I", "--implicit", *_server_args(root, certs, log)))
    try:
        ftp = _wrap_client(ImplicitFTP, certs, client, implicit=True)
        assert ftp.welcome.startswith("220")
        assert isinstance(ftp.sock, ssl.SSLSocket)
        _exercise(ftp, root)
        assert ftp.last_data_reused is True
        assert ftp.quit().startswith("221")
        assert proc.wait(DEADLINE) == 0
    finally:
        client.close()
        stop_pid(proc)
    assert "Traceback" not in log.read_text()


def test_inetd_nowait_explicit_auth_tls(certs, root, tmp_path):
    log = tmp_path / "ftpd.log"
    client, proc = _inetd(ftpd_argv("-I", *_server_args(root, certs, log)))
    try:
        ftp = _wrap_client(ReuseFTP_TLS, certs, client, implicit=False)
        assert ftp.welcome.startswith("220")
        assert ftp.auth().startswith("234")
        ftp.prot_p()
        _exercise(ftp, root)
        assert ftp.last_data_reused is True
        assert ftp.quit().startswith("221")
        assert proc.wait(DEADLINE) == 0
    finally:
        client.close()
        stop_pid(proc)


def test_inetd_nowait_implicit_refuses_a_plain_client(certs, root, tmp_path):
    """A client that does not start TLS gets nothing readable in the clear, and the
    process still ends (the handshake fails when the client goes)."""
    log = tmp_path / "ftpd.log"
    client, proc = _inetd(ftpd_argv("-I", "--implicit", *_server_args(root, certs, log)))
    try:
        client.sendall(b"USER user\r\n")
        client.settimeout(5)
        try:
            got = client.recv(4096)
        except (ConnectionResetError, TimeoutError):
            got = b""
        assert not got.startswith(b"220") and b"331" not in got
        client.close()
        assert proc.wait(DEADLINE) == 0
    finally:
        client.close()
        stop_pid(proc)


def test_inetd_wait_implicit(certs, root, tmp_path):
    """-W --implicit: fd 0 is a listening socket; each accepted connection is implicit."""
    log = tmp_path / "ftpd.log"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    with listener:
        proc = subprocess.Popen(
            ftpd_argv("-W", "--implicit", "-t", "30", *_server_args(root, certs, log)),
            stdin=listener, stdout=listener, stderr=listener, close_fds=True)
    try:
        for _ in range(2):
            ftp = _implicit_client(certs, "127.0.0.1", port)
            try:
                _exercise(ftp, root)
            finally:
                quit_quietly(ftp)
    finally:
        assert stop_pid(proc) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_inetd_implicit_with_a_missing_certificate(root, tmp_path):
    """Under -I a configuration error goes to syslog, the client gets 421 (in the
    clear: no TLS without a certificate) and ftpd exits 2."""
    client, proc = _inetd(ftpd_argv("-I", "--implicit", "-r", str(root),
                                    "--tls-cert", str(tmp_path / "missing.pem")))
    try:
        client.settimeout(DEADLINE)
        data = b""
        while b"\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"421"), data
        assert proc.wait(DEADLINE) == 2
    finally:
        client.close()
        stop_pid(proc)
