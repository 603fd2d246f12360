"""Several protected transfers on one control connection under ``--tls-reuse
required`` (the default): curl's OpenSSL uses a TLS 1.3 ticket once, so every data
connection needs a fresh one, which the control connection hands out after each data
connection (with its next reply). Uploads stay whole: data connections still issue no
tickets. Contents are compared by SHA-256; the server log shows one login
and no refused data connection."""

from __future__ import annotations

import os
import shutil

import pytest
from ftpsupport import sha256
from tlshelpers import curl, lftp, quit_quietly, retr, stor, tls_login

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
needs_lftp = pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")

UPLOAD_SIZE = 200_000  # the size at which a reset-cut upload shows nearly every time
ROUNDS = 6


def _one_session_no_refusal(server) -> None:
    log = server.log()
    assert log.count("] USER ") == 1, "the client did not keep one control connection"
    assert "did not resume" not in log


def _payloads(server, tmp_path, names: list[str]) -> dict[str, bytes]:
    """Random contents: the server's copy for downloads, the client's for uploads."""
    payloads = {}
    for name in names:
        payloads[name] = os.urandom(UPLOAD_SIZE)
        where = server.root if name.startswith("srv") else tmp_path
        (where / name).write_bytes(payloads[name])
    return payloads


def _assert_same(path, data: bytes) -> None:
    got = path.read_bytes()
    assert (len(got), sha256(got)) == (len(data), sha256(data)), f"{path.name} damaged"


@needs_curl
def test_curl_three_downloads_on_one_connection(ftpd, certs, tmp_path, home):
    server = ftpd()
    files = _payloads(server, tmp_path, ["srv-a.bin", "srv-b.bin", "srv-c.bin"])
    args = ["--ssl-reqd"]
    for name in files:
        args += ["-o", f"got-{name}", server.url(name)]
    result = curl(args, certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    for name, data in files.items():
        _assert_same(tmp_path / f"got-{name}", data)
    _one_session_no_refusal(server)


@needs_curl
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_curl_several_uploads_on_one_connection(ftpd, certs, tmp_path, home, implicit):
    server = ftpd(implicit=implicit)
    files = _payloads(server, tmp_path, [f"up{i}.bin" for i in range(ROUNDS)])
    scheme, args = ("ftps", []) if implicit else ("ftp", ["--ssl-reqd"])
    for name in files:
        args += ["-T", name, server.url(name, scheme, implicit)]
    result = curl(args, certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr  # every upload got its 226
    for name, data in files.items():
        _assert_same(server.root / name, data)
    _one_session_no_refusal(server)


@needs_curl
def test_curl_mixed_uploads_and_downloads_on_one_connection(ftpd, certs, tmp_path, home):
    """-T, -T, -o, -T, -o: ``--next`` keeps curl's connection, each group binds its
    own -T or -o to its URL."""
    server = ftpd()
    files = _payloads(server, tmp_path, ["up1.bin", "up2.bin", "srv-x.bin", "up3.bin",
                                         "srv-y.bin"])
    args: list[str] = []
    for name in files:
        if args:
            args.append("--next")
        side = ["-o", f"got-{name}"] if name.startswith("srv") else ["-T", name]
        args += ["--ssl-reqd", "--cacert", str(certs.ca), *side, server.url(name)]
    result = curl(args, certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    for name, data in files.items():
        _assert_same(tmp_path / f"got-{name}" if name.startswith("srv") else server.root / name,
                     data)
    _one_session_no_refusal(server)


@needs_curl
def test_curl_upload_upload_download_as_written_in_the_issue(ftpd, certs, tmp_path, home):
    """``-T a URL1 -T b URL2 -o x URL3``, word for word: curl binds ``-o x`` to the
    first URL (an upload, so x stays empty) and writes URL3 to stdout."""
    server = ftpd()
    files = _payloads(server, tmp_path, ["a.bin", "b.bin", "srv-3.bin"])
    result = curl(["--ssl-reqd", "-T", "a.bin", server.url("a.bin"), "-T", "b.bin",
                   server.url("b.bin"), "-o", "x", server.url("srv-3.bin")],
                  certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert sha256(result.stdout) == sha256(files["srv-3.bin"])
    for name in ("a.bin", "b.bin"):
        _assert_same(server.root / name, files[name])
    _one_session_no_refusal(server)


@needs_lftp
def test_lftp_several_files_in_one_session(ftpd, certs, tmp_path, home):
    server = ftpd()
    files = _payloads(server, tmp_path, ["up1.bin", "srv-a.bin", "up2.bin", "srv-b.bin",
                                         "up3.bin"])
    commands = [f"get {n} -o got-{n}" if n.startswith("srv") else f"put {n}" for n in files]
    result = lftp(server.url(""), [*commands, "ls"], certs.ca, tmp_path, home)
    assert result.returncode == 0, result.stderr
    for name, data in files.items():
        _assert_same(tmp_path / f"got-{name}" if name.startswith("srv") else server.root / name,
                     data)
    _one_session_no_refusal(server)


def test_each_data_connection_brings_a_fresh_ticket_on_control(ftpd, certs):
    """Like curl, use every ticket once: the control connection's newest session is a
    new one after each transfer, and each resumes."""
    server = ftpd()
    (server.root / "f.bin").write_bytes(b"x" * 5000)
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        used = set()
        for i in range(4):
            session = ftp.sock.session
            assert session.id not in used, f"transfer {i}: no fresh ticket on control"
            used.add(session.id)
            if i % 2:
                assert retr(ftp, "f.bin") == b"x" * 5000
            else:
                assert stor(ftp, f"u{i}.bin", b"y" * 5000).startswith("226")
            assert ftp.last_data_reused
            ftp.voidcmd("NOOP")  # the ticket came with the 226; read past it
    finally:
        quit_quietly(ftp)
