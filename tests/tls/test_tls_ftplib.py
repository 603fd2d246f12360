"""Session reuse with ftplib: a data connection must resume the control connection's
*own* TLS session (--tls-reuse required, the default). ``ReuseFTP_TLS`` passes the
control session (or another one) to ``wrap_socket``; plain ``FTP_TLS`` resumes
nothing and is refused with 425 unless --tls-reuse optional."""

from __future__ import annotations

import ftplib
import os
import ssl

import pytest
from ftpsupport import has_ipv6_loopback, sha256
from tlshelpers import (
    ImplicitFTP,
    client_context,
    expect_refused,
    quit_quietly,
    retr,
    stor,
    tls_login,
)

VERSIONS = [pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
            pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3")]


def _roundtrip(ftp: ftplib.FTP, root, name: str = "up.bin") -> None:
    """LIST, NLST, RETR and STOR over protected data connections, checked by hash."""
    payload = os.urandom(250_000)
    (root / "down.bin").write_bytes(payload)
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    assert any(line.endswith(" down.bin") for line in lines), lines
    assert "down.bin" in ftp.nlst()
    assert sha256(retr(ftp, "down.bin")) == sha256(payload)
    upload = os.urandom(180_000)
    assert stor(ftp, name, upload).startswith("226")
    assert sha256((root / name).read_bytes()) == sha256(upload)


@pytest.mark.parametrize("version", VERSIONS)
def test_reuse_retr_stor_list(ftpd, certs, version):
    server = ftpd()
    ftp = tls_login(server.host, server.port, certs.ca, version=version)
    try:
        assert ftp.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                      ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        _roundtrip(ftp, server.root)
        assert ftp.last_data_reused is True
        assert ftp.voidcmd("NOOP").startswith("200")
    finally:
        quit_quietly(ftp)
    assert "did not resume" not in server.log()


def test_reuse_active_mode(ftpd, certs):
    """PORT: the server connects, the client is still the TLS client and resumes."""
    server = ftpd()
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        ftp.set_pasv(False)
        _roundtrip(ftp, server.root)
        assert ftp.last_data_reused is True
    finally:
        quit_quietly(ftp)


def test_reuse_ipv6(ftpd, certs):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server = ftpd(host="::1")
    ftp = tls_login("::1", server.port, certs.ca)
    try:
        _roundtrip(ftp, server.root)
    finally:
        quit_quietly(ftp)


def test_many_transfers_resume_the_same_session(ftpd, certs):
    server = ftpd()
    (server.root / "f.txt").write_bytes(b"abc\n")
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        for _ in range(8):
            assert retr(ftp, "f.txt") == b"abc\n"
            assert ftp.last_data_reused is True
    finally:
        quit_quietly(ftp)


# -- clients that do not resume ------------------------------------------------------------
def test_plain_ftp_tls_is_refused_by_default(ftpd, certs):
    server = ftpd()
    (server.root / "f.txt").write_bytes(b"abc\n")
    ftp = tls_login(server.host, server.port, certs.ca, cls=ftplib.FTP_TLS)
    try:
        for attempt in (lambda: ftp.nlst(), lambda: retr(ftp, "f.txt"),
                        lambda: stor(ftp, "new.txt", b"data\n")):
            expect_refused(ftp, attempt)
        # the session goes on
        assert ftp.voidcmd("NOOP").startswith("200")
        assert ftp.sendcmd("PWD").startswith("257")
    finally:
        quit_quietly(ftp)
    assert not (server.root / "new.txt").exists() or \
        (server.root / "new.txt").read_bytes() == b""
    assert "did not resume the control connection's TLS session" in server.log()


def test_plain_ftp_tls_accepted_with_reuse_optional(ftpd, certs):
    server = ftpd("--tls-reuse", "optional")
    ftp = tls_login(server.host, server.port, certs.ca, cls=ftplib.FTP_TLS)
    try:
        _roundtrip(ftp, server.root)
    finally:
        quit_quietly(ftp)


def test_reuse_optional_still_accepts_resuming_clients(ftpd, certs):
    server = ftpd("--tls-reuse", "optional")
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        _roundtrip(ftp, server.root)
        assert ftp.last_data_reused is True
    finally:
        quit_quietly(ftp)


# -- whose session: per-session contexts --------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
def test_another_control_sessions_ticket_is_refused(ftpd, certs, version):
    """A and B are two control sessions on one server. A data connection of A that
    presents B's session (ID or ticket) is refused: 425 on A. A's own works, before and
    after."""
    server = ftpd()
    (server.root / "f.txt").write_bytes(b"abc\n")
    ctx = client_context(certs.ca, version)
    a = tls_login(server.host, server.port, certs.ca, context=ctx)
    b = tls_login(server.host, server.port, certs.ca, context=ctx)
    try:
        assert retr(a, "f.txt") == b"abc\n" and a.last_data_reused is True
        assert retr(b, "f.txt") == b"abc\n" and b.last_data_reused is True
        assert b.sock.session is not None and b.sock.session.id != a.sock.session.id

        a.data_session = b.sock.session
        a.last_data_reused = None
        expect_refused(a, a.nlst)
        # the server did not resume B's session for A (None: the handshake itself failed)
        assert a.last_data_reused in (False, None)
        expect_refused(a, lambda: stor(a, "stolen.txt", b"x"))

        a.data_session = None
        assert retr(a, "f.txt") == b"abc\n" and a.last_data_reused is True
        # and B is unaffected
        assert retr(b, "f.txt") == b"abc\n"
    finally:
        quit_quietly(a)
        quit_quietly(b)
    # refused by the reuse check, not by a failed handshake
    assert server.log().count("did not resume the control connection's TLS session") == 2


def test_a_closed_sessions_ticket_is_refused(ftpd, certs):
    """The session of a control connection that has ended does not open data
    connections for a new one."""
    server = ftpd()
    (server.root / "f.txt").write_bytes(b"abc\n")
    ctx = client_context(certs.ca)
    old = tls_login(server.host, server.port, certs.ca, context=ctx)
    assert retr(old, "f.txt") == b"abc\n"
    stale = old.sock.session
    quit_quietly(old)
    new = tls_login(server.host, server.port, certs.ca, context=ctx)
    try:
        new.data_session = stale
        expect_refused(new, lambda: retr(new, "f.txt"))
        new.data_session = None
        assert retr(new, "f.txt") == b"abc\n"
    finally:
        quit_quietly(new)


# -- implicit FTPS with ftplib ---------------------------------------------------------------
def test_implicit_ftplib(ftpd, certs):
    server = ftpd(implicit=True)
    ftp = ImplicitFTP(context=client_context(certs.ca), timeout=10)
    try:
        assert ftp.connect(server.host, server.implicit_port).startswith("220")
        assert isinstance(ftp.sock, ssl.SSLSocket)
        ftp.login("user", "pw")
        _roundtrip(ftp, server.root)
        assert ftp.last_data_reused is True
        # already protected: a second AUTH is out of sequence
        with pytest.raises(ftplib.error_perm, match="^503"):
            ftp.sendcmd("AUTH TLS")
        # PBSZ/PROT are accepted (clients send them anyway)
        assert ftp.sendcmd("PBSZ 0").startswith("200")
        assert ftp.sendcmd("PROT P").startswith("200")
    finally:
        quit_quietly(ftp)


def test_implicit_data_connections_must_resume_too(ftpd, certs):
    server = ftpd(implicit=True)
    (server.root / "f.txt").write_bytes(b"abc\n")
    ctx = client_context(certs.ca)
    ftp = ImplicitFTP(context=ctx, timeout=10)
    other = ImplicitFTP(context=ctx, timeout=10)
    try:
        ftp.connect(server.host, server.implicit_port)
        ftp.login("user", "pw")
        assert retr(ftp, "f.txt") == b"abc\n"
        other.connect(server.host, server.implicit_port)
        other.login("user", "pw")
        assert retr(other, "f.txt") == b"abc\n"
        ftp.data_session = other.sock.session
        expect_refused(ftp, lambda: retr(ftp, "f.txt"))
        ftp.data_session = None
        assert retr(ftp, "f.txt") == b"abc\n"
    finally:
        quit_quietly(ftp)
        quit_quietly(other)


def test_explicit_port_still_speaks_clear_next_to_implicit(ftpd, certs):
    server = ftpd(implicit=True)
    ftp = ftplib.FTP()
    try:
        assert ftp.connect(server.host, server.port, timeout=10).startswith("220")
        ftp.login("user", "pw")
        assert ftp.sendcmd("NOOP").startswith("200")
    finally:
        quit_quietly(ftp)


def test_tls12_session_id_resumption_without_tickets(ftpd, certs):
    """A TLS 1.2 client that refuses tickets resumes by session ID from the control
    connection's own cache; another session's ID is not in that cache."""
    server = ftpd()
    (server.root / "f.txt").write_bytes(b"abc\n")
    ctx = client_context(certs.ca, ssl.TLSVersion.TLSv1_2)
    ctx.options |= ssl.OP_NO_TICKET
    a = tls_login(server.host, server.port, certs.ca, context=ctx)
    b = tls_login(server.host, server.port, certs.ca, context=ctx)
    try:
        assert retr(a, "f.txt") == b"abc\n" and a.last_data_reused is True
        assert not a.sock.session.has_ticket
        a.data_session = b.sock.session
        expect_refused(a, lambda: retr(a, "f.txt"))
        a.data_session = None
        assert retr(a, "f.txt") == b"abc\n"
    finally:
        quit_quietly(a)
        quit_quietly(b)


def test_concurrent_protected_sessions(ftpd, certs):
    """Handshakes and transfers of several sessions at once, all on one event loop."""
    from concurrent.futures import ThreadPoolExecutor

    server = ftpd()
    payload = os.urandom(4 * 1024 * 1024)
    (server.root / "big.bin").write_bytes(payload)

    def one(i: int) -> tuple[str, str]:
        ftp = tls_login(server.host, server.port, certs.ca)
        try:
            got = retr(ftp, "big.bin")
            upload = os.urandom(300_000) + bytes([i])
            stor(ftp, f"u{i}.bin", upload)
            assert ftp.last_data_reused is True
            return sha256(got), sha256(upload)
        finally:
            quit_quietly(ftp)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    for i, (down, up) in enumerate(results):
        assert down == sha256(payload)
        assert sha256((server.root / f"u{i}.bin").read_bytes()) == up
