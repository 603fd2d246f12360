"""A control connection's TLS handshake (after AUTH TLS, or on an implicit listener)
has the control timeout (--timeout) as its deadline: a stalled one is closed with
nothing written, and its --max-connections-per-ip slot is free again."""

from __future__ import annotations

import socket
import ssl
import time

from ftpsupport import DEADLINE, wait_until
from tlshelpers import Raw, client_context, quit_quietly, tls_login

TIMEOUT = "1"  # seconds: --timeout, small so the tests are quick


def _client_hello_start(certs) -> bytes:
    """The first bytes of a real ClientHello: the server reads them and waits for more."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(certs.ca).wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert len(hello) > 100
    return hello[:100]


def _wait_closed(sock: socket.socket) -> bytes:
    """Poll until the server closes *sock*; returns whatever it wrote meanwhile."""
    sock.settimeout(0.05)
    received = bytearray()

    def closed() -> bool:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        if not chunk:
            return True
        received.extend(chunk)
        return False

    wait_until(closed, "the server closes the stalled handshake", timeout=DEADLINE)
    return bytes(received)


def _stall_after_auth(server, certs) -> Raw:
    raw = Raw(server.host, server.port)
    assert raw.reply()[0] == 220
    assert raw.cmd("AUTH TLS")[0] == 234
    raw.sock.sendall(_client_hello_start(certs))
    return raw


def test_stalled_handshake_after_auth_tls_is_closed_silently(ftpd, certs):
    server = ftpd("--timeout", TIMEOUT)
    start = time.monotonic()
    raw = _stall_after_auth(server, certs)
    try:
        assert _wait_closed(raw.sock) == b""  # no cleartext 421, no TLS record
    finally:
        raw.close()
    assert time.monotonic() - start >= 0.5  # the deadline, not an instant refusal
    wait_until(lambda: "TLS handshake not done within" in server.log(), "the close logged")


def test_silent_client_on_the_implicit_port_is_closed(ftpd, certs):
    server = ftpd("--timeout", TIMEOUT, implicit=True)
    with socket.create_connection((server.host, server.implicit_port), timeout=DEADLINE) as sock:
        assert _wait_closed(sock) == b""


def test_stalled_handshakes_do_not_lock_an_address_out(ftpd, certs):
    """Two stalled handshakes fill --max-connections-per-ip 2; once the deadline has
    closed them, the address logs in again."""
    server = ftpd("--timeout", TIMEOUT, "--max-connections-per-ip", "2", implicit=True)
    stalled = _stall_after_auth(server, certs)
    implicit = socket.create_connection((server.host, server.implicit_port), timeout=DEADLINE)
    try:
        third = Raw(server.host, server.port)  # the cap is reached meanwhile
        try:
            assert third.reply()[0] == 421
        finally:
            third.close()
        assert _wait_closed(stalled.sock) == b""
        assert _wait_closed(implicit) == b""
    finally:
        stalled.close()
        implicit.close()
    # closed by the server, so counted out before it closed them: no wait needed
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        assert ftp.voidcmd("NOOP").startswith("200")
    finally:
        quit_quietly(ftp)
