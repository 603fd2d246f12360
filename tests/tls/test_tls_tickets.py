"""``ftpd.io.tls_tickets`` in one process, over memory BIOs: a queued ticket leaves
with the next write and gives the client a new session; TLS 1.2, a client side and an
object that is not CPython's ``_ssl`` socket get nothing (and no crash)."""

from __future__ import annotations

import ssl

import pytest
from tlshelpers import client_context

from ftpd.io.tls_tickets import issue_ticket


def _pair(certs, version: ssl.TLSVersion) -> tuple[ssl.SSLObject, ssl.SSLObject, list]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(certs.cert), str(certs.key))
    server_ctx.num_tickets = 0  # as after ftpd's control handshake: none but ours
    client_ctx = client_context(certs.ca, version)
    bios = [ssl.MemoryBIO() for _ in range(4)]  # server in/out, client in/out
    server = server_ctx.wrap_bio(bios[0], bios[1], server_side=True)
    client = client_ctx.wrap_bio(bios[2], bios[3], server_hostname="127.0.0.1")
    for _ in range(10):
        done = 0
        for side in (client, server):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        _pump(bios)
        if done == 2:
            break
    else:
        raise AssertionError("no handshake")
    return server, client, bios


def _pump(bios: list[ssl.MemoryBIO]) -> None:
    bios[2].write(bios[1].read())
    bios[0].write(bios[3].read())


def _read_all(client: ssl.SSLObject) -> bytes:
    try:
        return client.read(4096)
    except ssl.SSLWantReadError:
        return b""


def test_a_ticket_leaves_with_the_next_write(certs):
    server, client, bios = _pair(certs, ssl.TLSVersion.TLSv1_3)
    _read_all(client)
    before = client.session.id
    assert issue_ticket(server)
    server.write(b"226 Transfer complete.\r\n")
    _pump(bios)
    assert _read_all(client) == b"226 Transfer complete.\r\n"
    assert client.session.id != before


def test_tls12_gets_no_ticket(certs):
    server, _, _ = _pair(certs, ssl.TLSVersion.TLSv1_2)
    assert not issue_ticket(server)


def test_a_client_side_gets_no_ticket(certs):
    _, client, _ = _pair(certs, ssl.TLSVersion.TLSv1_3)
    assert not issue_ticket(client)


@pytest.mark.parametrize("inner", [None, object(), ssl.MemoryBIO()])
def test_not_cpythons_ssl_socket(inner):
    class Fake:
        _sslobj = inner

        def version(self) -> str:
            return "TLSv1.3"

    assert not issue_ticket(Fake())
