"""FTPS under --pam: each session's process (standalone hands every connection to one)
does the TLS itself, implicit from the first byte or after AUTH TLS."""

from __future__ import annotations

import ftplib
import io
import ssl

from pamsupport import needs_system_users
from tlshelpers import ImplicitFTP, ReuseFTP_TLS, client_context, quit_quietly

pytestmark = needs_system_users


def _upload_and_back(ftp: ftplib.FTP_TLS) -> None:
    ftp.prot_p()
    ftp.storbinary("STOR pam-tls.bin", io.BytesIO(b"z" * 70_000))
    got = io.BytesIO()
    ftp.retrbinary("RETR pam-tls.bin", got.write)
    assert got.getvalue() == b"z" * 70_000


def test_implicit_ftps_in_a_session_process(ftpd, certs):
    server = ftpd("--pam", implicit=True)
    ftp = ImplicitFTP(context=client_context(certs.ca), timeout=10)
    try:
        assert ftp.connect(server.host, server.implicit_port).startswith("220")
        assert isinstance(ftp.sock, ssl.SSLSocket)
        ftp.login("user", "pw")
        _upload_and_back(ftp)
    finally:
        quit_quietly(ftp)


def test_explicit_ftps_in_a_session_process(ftpd, certs):
    server = ftpd("--pam")
    ftp = ReuseFTP_TLS(context=client_context(certs.ca), timeout=10)
    try:
        ftp.connect(server.host, server.port)
        ftp.auth()
        ftp.login("user", "pw")
        _upload_and_back(ftp)
    finally:
        quit_quietly(ftp)
