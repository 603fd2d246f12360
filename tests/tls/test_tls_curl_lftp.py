"""Explicit and implicit FTPS with real clients: curl (which resumes the control
connection's TLS session on its data connections) and lftp, both verifying the
server certificate against the test CA; contents compared by SHA-256."""

from __future__ import annotations

import os
import shutil
import socket

import pytest
from ftpsupport import sha256
from tlshelpers import curl, lftp

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]
needs_lftp = pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")

# Uploads used to be cut short by a TCP reset over unread TLS 1.3 tickets: several rounds.
UPLOAD_SIZE = 200_000  # the size at which the truncation shows nearly every time
UPLOAD_ROUNDS = 6


def test_curl_explicit_list(shared_server, certs, tmp_path, home):
    result = curl(["--ssl-reqd", shared_server.url("")], certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert b"data.bin" in result.stdout
    # LIST output is ls -l style: the size column is there
    line = next(ln for ln in result.stdout.splitlines() if ln.endswith(b"data.bin"))
    assert b" 300000 " in line


def test_curl_explicit_download(shared_server, certs, tmp_path, home):
    expected = (shared_server.root / "data.bin").read_bytes()
    out = tmp_path / "got.bin"
    result = curl(["--ssl-reqd", "-o", str(out), shared_server.url("data.bin")],
                  certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert sha256(out.read_bytes()) == sha256(expected)


def test_curl_explicit_reuses_the_session(shared_server, certs, tmp_path, home):
    """curl -v says so when the data connection resumes the control session."""
    result = curl(["-v", "--ssl-reqd", "-o", os.devnull, shared_server.url("data.bin")],
                  certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert b"SSL re-using session ID" in result.stderr
    assert b"< 226" in result.stderr


def test_curl_refuses_an_untrusted_server(shared_server, certs, tmp_path, home):
    """The fixture really verifies: against another CA curl fails (exit 60)."""
    result = curl(["--ssl-reqd", shared_server.url("")], certs.untrusted_ca, tmp_path, home)
    assert result.returncode == 60, result


def _curl_uploads(server, certs, tmp_path, home, implicit: bool) -> None:
    scheme = "ftps" if implicit else "ftp"
    flags = [] if implicit else ["--ssl-reqd"]
    for i in range(UPLOAD_ROUNDS):
        data = os.urandom(UPLOAD_SIZE)
        src = tmp_path / f"up{i}.bin"
        src.write_bytes(data)
        result = curl([*flags, "-T", str(src), server.url(f"up{i}.bin", scheme, implicit)],
                      certs.ca, tmp_path, home)
        assert result.returncode == 0, result.stderr
        got = (server.root / f"up{i}.bin").read_bytes()
        assert (len(got), sha256(got)) == (len(data), sha256(data)), f"upload {i} damaged"


def test_curl_explicit_upload(ftpd, certs, tmp_path, home):
    server = ftpd()
    _curl_uploads(server, certs, tmp_path, home, implicit=False)


def test_curl_implicit_list_and_download(shared_server, certs, tmp_path, home):
    result = curl([shared_server.url("", "ftps", implicit=True)], certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert b"data.bin" in result.stdout
    out = tmp_path / "got.bin"
    result = curl(["-o", str(out), shared_server.url("data.bin", "ftps", implicit=True)],
                  certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert sha256(out.read_bytes()) == sha256((shared_server.root / "data.bin").read_bytes())


def test_curl_implicit_upload(ftpd, certs, tmp_path, home):
    server = ftpd(implicit=True)
    _curl_uploads(server, certs, tmp_path, home, implicit=True)


def test_implicit_port_does_not_speak_clear(shared_server):
    """A cleartext client on the implicit port: no 220, and its command is not
    answered (the server waits for a ClientHello, gets garbage, and closes)."""
    with socket.create_connection((shared_server.host, shared_server.implicit_port),
                                  timeout=5) as sock:
        sock.sendall(b"USER user\r\n")
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    assert not received.startswith(b"220") and b"331" not in received, received


# -- lftp ------------------------------------------------------------------------------
@needs_lftp
def test_lftp_explicit_ls_and_get(shared_server, certs, tmp_path, home):
    result = lftp(shared_server.url(""), ["ls", "get data.bin -o got.bin"],
                  certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert b"data.bin" in result.stdout
    expected = (shared_server.root / "data.bin").read_bytes()
    assert sha256((tmp_path / "got.bin").read_bytes()) == sha256(expected)


def _lftp_puts(server, certs, tmp_path, home, url: str) -> None:
    payloads = {}
    for i in range(UPLOAD_ROUNDS):
        payloads[f"put{i}.bin"] = os.urandom(UPLOAD_SIZE)
        (tmp_path / f"put{i}.bin").write_bytes(payloads[f"put{i}.bin"])
    result = lftp(url, [f"put {name}" for name in payloads], certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    for name, data in payloads.items():
        got = (server.root / name).read_bytes()
        assert (len(got), sha256(got)) == (len(data), sha256(data)), f"{name} damaged"


@needs_lftp
def test_lftp_explicit_put(ftpd, certs, tmp_path, home):
    server = ftpd()
    _lftp_puts(server, certs, tmp_path, home, server.url(""))


@needs_lftp
def test_lftp_implicit_ls_and_get(shared_server, certs, tmp_path, home):
    result = lftp(shared_server.url("", "ftps", implicit=True), ["ls", "get data.bin -o g.bin"],
                  certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert b"data.bin" in result.stdout
    expected = (shared_server.root / "data.bin").read_bytes()
    assert sha256((tmp_path / "g.bin").read_bytes()) == sha256(expected)


@needs_lftp
def test_lftp_refuses_an_untrusted_server(shared_server, certs, tmp_path, home):
    result = lftp(shared_server.url(""), ["ls"], certs.untrusted_ca, tmp_path, home)
    assert result.returncode != 0
    assert b"data.bin" not in result.stdout


@needs_lftp
def test_lftp_under_tls_reuse_required_logs_no_refusal(ftpd, certs, tmp_path, home):
    """lftp resumes the session on every data connection: the server never had to
    refuse one (several listings and downloads in one session)."""
    server = ftpd()
    (server.root / "a.txt").write_bytes(b"hello\n")
    result = lftp(server.url(""), ["ls", "get a.txt -o a.txt", "cls -1", "get a.txt -o b.txt",
                                   "ls"], certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.txt").read_bytes() == b"hello\n"
    assert (tmp_path / "b.txt").read_bytes() == b"hello\n"
    assert "did not resume" not in server.log()

