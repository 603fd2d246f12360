"""RFC 2228/4217 commands and replies: AUTH TLS/SSL, PBSZ, PROT, CCC and FEAT; the
TLS 1.2 minimum; what a broken or silent TLS peer does to a session (nothing to the
server); and two protections a careful FTPS server gives: no cleartext commands
carried over into the protected session, no upload reported complete without TLS
close_notify."""

from __future__ import annotations

import ftplib
import shutil
import socket
import ssl
import warnings

import pytest
from ftpsupport import sha256, wait_until
from tlshelpers import Raw, ReuseFTP_TLS, client_context, quit_quietly, retr, tls_login

TLS_FEATURES = {"AUTH TLS", "PBSZ", "PROT"}


def _feat(host: str, port: int) -> set[str]:
    raw = Raw(host, port)
    try:
        assert raw.reply()[0] == 220
        code, text = raw.cmd("FEAT")
        assert code == 211
        return {line.strip() for line in text.splitlines()[1:-1]}
    finally:
        raw.close()


def test_feat_advertises_tls_with_a_certificate(shared_server):
    assert TLS_FEATURES <= _feat(shared_server.host, shared_server.port)


def test_feat_hides_tls_without_a_certificate(ftpd):
    server = ftpd(tls=False)
    features = _feat(server.host, server.port)
    assert not {f for f in features if f.split()[0] in ("AUTH", "PBSZ", "PROT")}, features
    raw = Raw(server.host, server.port)
    try:
        raw.reply()
        assert raw.cmd("AUTH TLS")[0] == 502
        assert raw.cmd("PBSZ 0")[0] == 503
        assert raw.cmd("NOOP")[0] == 200
    finally:
        raw.close()


@pytest.mark.parametrize("mechanism", ["TLS", "SSL", "tls"])
def test_auth_mechanisms(shared_server, certs, mechanism):
    raw = Raw(shared_server.host, shared_server.port)
    try:
        raw.reply()
        code, text = raw.cmd(f"AUTH {mechanism}")
        assert code == 234, text
        raw.starttls(client_context(certs.ca))
        assert raw.cmd("NOOP")[0] == 200
        assert "Control connection: TLS" in raw.cmd("STAT")[1]
        assert raw.cmd("AUTH TLS")[0] == 503  # already protected
    finally:
        raw.close()


def test_command_sequence_replies(shared_server, certs):
    raw = Raw(shared_server.host, shared_server.port)
    try:
        raw.reply()
        assert raw.cmd("AUTH KERBEROS_V4")[0] == 504
        assert raw.cmd("PBSZ 0")[0] == 503  # before AUTH
        assert raw.cmd("PROT P")[0] == 503
        assert raw.cmd("CCC")[0] == 533  # nothing to clear
        assert raw.cmd("AUTH TLS")[0] == 234
        raw.starttls(client_context(certs.ca))
        assert raw.cmd("PROT P")[0] == 503  # before PBSZ
        assert raw.cmd("PBSZ zero")[0] == 501
        assert raw.cmd("PBSZ 0")[0] == 200
        assert raw.cmd("PROT S")[0] == 536
        assert raw.cmd("PROT E")[0] == 536
        assert raw.cmd("PROT X")[0] == 504
        assert raw.cmd("PROT P")[0] == 200
        assert raw.cmd("PROT C")[0] == 200  # explicit mode: the user's choice
        code, _ = raw.cmd("CCC")
        assert code == 534  # refused: the control connection stays protected
        assert raw.cmd("USER user")[0] == 331  # ... and still speaks TLS
        assert raw.cmd("PASS pw")[0] == 230
        assert raw.cmd("AUTH TLS")[0] == 503
    finally:
        raw.close()


def test_auth_after_login_is_refused(shared_server):
    raw = Raw(shared_server.host, shared_server.port)
    try:
        raw.reply()
        assert raw.cmd("USER user")[0] == 331
        assert raw.cmd("PASS pw")[0] == 230
        assert raw.cmd("AUTH TLS")[0] == 503
        assert raw.cmd("NOOP")[0] == 200
    finally:
        raw.close()


def test_prot_c_gives_clear_data_in_explicit_mode(shared_server, certs):
    ftp = tls_login(shared_server.host, shared_server.port, certs.ca)
    try:
        ftp.prot_c()
        assert "data.bin" in ftp.nlst()
        data = retr(ftp, "data.bin")
        assert sha256(data) == sha256((shared_server.root / "data.bin").read_bytes())
        assert ftp.last_data_reused is None  # nothing was wrapped
    finally:
        quit_quietly(ftp)


def test_anonymous_over_tls(shared_server, certs):
    ftp = tls_login(shared_server.host, shared_server.port, certs.ca,
                    user="anonymous", password="guest@example.org")
    try:
        assert "data.bin" in ftp.nlst()
    finally:
        quit_quietly(ftp)


# -- versions ----------------------------------------------------------------------------------
def _handshake(server, certs, low: ssl.TLSVersion, high: ssl.TLSVersion) -> str:
    """AUTH TLS then a handshake limited to [low, high]: the negotiated version."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose
        ctx = client_context(certs.ca)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this OpenSSL offer old versions
        ctx.minimum_version, ctx.maximum_version = low, high
    raw = Raw(server.host, server.port)
    try:
        raw.reply()
        assert raw.cmd("AUTH TLS")[0] == 234
        raw.starttls(ctx)
        version = raw.sock.version()
        assert raw.cmd("NOOP")[0] == 200
        return version
    finally:
        raw.close()


def test_tls11_only_client_is_refused(ftpd, certs):
    server = ftpd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        low, high = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as info:
        _handshake(server, certs, low, high)
    if "NO_PROTOCOLS_AVAILABLE" in str(info.value) or "no protocols" in str(info.value):
        pytest.skip("this OpenSSL cannot offer TLS 1.1 at all")
    # the *server* said no: a protocol_version alert
    assert "PROTOCOL_VERSION" in str(info.value).upper(), info.value
    wait_until(lambda: "unsupported protocol" in server.log().lower(), "the refusal logged")
    # and the server goes on
    assert _handshake(server, certs, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                          (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls12_and_tls13_accepted(shared_server, certs, version, name):
    assert _handshake(shared_server, certs, version, version) == name


# -- broken peers --------------------------------------------------------------------------
def test_garbage_instead_of_a_handshake(ftpd, certs):
    server = ftpd()
    raw = Raw(server.host, server.port)
    try:
        raw.reply()
        assert raw.cmd("AUTH TLS")[0] == 234
        raw.sock.sendall(b"USER user\r\n" + b"\x00\xff" * 100)
        raw.sock.settimeout(5)
        try:
            rest = raw.sock.recv(4096)
            while rest and b"\r\n" not in rest:  # a TLS alert may come first, never a reply
                rest = raw.sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            rest = b""
        assert b"331" not in rest
    finally:
        raw.close()
    ftp = tls_login(server.host, server.port, certs.ca)  # the server is fine
    quit_quietly(ftp)
    wait_until(lambda: "TLS handshake failed" in server.log(), "the failure logged")


def test_client_vanishing_mid_handshake(ftpd, certs):
    server = ftpd()
    for _ in range(3):
        raw = Raw(server.host, server.port)
        raw.reply()
        assert raw.cmd("AUTH TLS")[0] == 234
        raw.sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello
        raw.close()
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        assert ftp.voidcmd("NOOP").startswith("200")
    finally:
        quit_quietly(ftp)


def test_silent_data_connection_times_out(ftpd, certs):
    """PROT P, and the client connects to the data port but never starts TLS: the
    data timeout applies (426), and the control connection is fine throughout."""
    server = ftpd("--data-timeout", "1")
    (server.root / "f.txt").write_bytes(b"abc\n")
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        host, port = ftp.makepasv()
        data = socket.create_connection((host, port), timeout=5)
        try:
            ftp.putcmd("RETR f.txt")
            assert ftp.getline().startswith("150")
            with pytest.raises(ftplib.error_temp, match="^426"):
                ftp.getresp()
        finally:
            data.close()
        assert ftp.voidcmd("NOOP").startswith("200")
        assert retr(ftp, "f.txt") == b"abc\n"
    finally:
        quit_quietly(ftp)


# -- protections ------------------------------------------------------------------------------
def test_cleartext_pipelined_after_auth_is_not_executed(ftpd, certs):
    server = ftpd()
    raw = Raw(server.host, server.port)
    try:
        raw.reply()
        raw.sock.sendall(b"AUTH TLS\r\nUSER injected\r\n")
        assert raw.reply()[0] == 234
        raw.starttls(client_context(certs.ca))
        # the first reply inside TLS must answer our first protected command
        code, text = raw.cmd("NOOP")
        assert code == 200, f"an injected cleartext command was answered in TLS: {code} {text}"
    finally:
        raw.close()


def test_upload_without_close_notify_is_not_complete(ftpd, certs):
    server = ftpd()
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        conn = ftp.transfercmd("STOR cut.bin")
        conn.sendall(b"y" * 50_000)
        # FIN without close_notify: what a forged FIN from the path looks like
        socket.socket.shutdown(conn, socket.SHUT_WR)
        try:
            code = ftp.voidresp()
        except ftplib.Error as exc:
            code = str(exc)
        conn.close()
        assert not code.startswith("226"), code
        assert code[:1] == "4", code
    finally:
        quit_quietly(ftp)


def test_download_ends_with_close_notify(shared_server, certs):
    """ReuseFTP_TLS reads data with suppress_ragged_eofs=False: a server that just
    closed TCP would make recv raise. Several sizes, LIST included."""
    ftp = tls_login(shared_server.host, shared_server.port, certs.ca)
    try:
        assert isinstance(ftp, ReuseFTP_TLS)
        for _ in range(3):
            assert len(retr(ftp, "data.bin")) == 300_000
            lines: list[str] = []
            ftp.retrlines("LIST", lines.append)
            assert lines
    finally:
        quit_quietly(ftp)


def test_certificate_removed_after_start_up(ftpd, certs, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    shutil.copy(certs.cert, cert)
    shutil.copy(certs.key, key)
    server = ftpd("--tls-cert", str(cert), "--tls-key", str(key), tls=False, check_log=False)
    cert.unlink()
    raw = Raw(server.host, server.port)
    try:
        raw.reply()
        raw.sock.settimeout(3)
        code, _ = raw.cmd("AUTH TLS")
        assert code in (234, 421, 431, 534), code
        if code == 234:
            tls = None
            try:  # either the handshake works (the certificate was kept) ...
                tls = client_context(certs.ca).wrap_socket(raw.sock.dup(),
                                                           server_hostname=raw.host)
                tls.sendall(b"NOOP\r\n")
                assert tls.recv(100).startswith(b"200")
            except (ssl.SSLError, OSError):
                # ... or the server closed the connection at once: never a hang
                try:
                    rest = raw.sock.recv(4096)
                except ConnectionResetError:
                    rest = b""
                assert rest == b"", f"the server neither shook hands nor closed: {rest!r}"
            finally:
                if tls is not None:
                    tls.close()
    finally:
        raw.close()
    assert "Traceback" not in server.log(), server.log()
