"""ftpd.io.proxyread: the header read off a socket on the loop — never a byte past it,
within a deadline, whatever pieces it arrives in — and which peers must send one."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from ftpd.io.loop import EventLoop
from ftpd.io.proxyproto import ProxyHeader, v1_header, v2_header
from ftpd.io.proxyread import ProxyHeaderReader, ProxyNetworks, carried_peer

CLIENT, FRONT = ("203.0.113.7", 40001), ("198.51.100.1", 21)
GUARD = 10.0  # seconds: a test whose reader never finishes fails, it does not hang


@pytest.fixture
def pair() -> Iterator[tuple[EventLoop, socket.socket, socket.socket]]:
    loop = EventLoop()
    server_side, client_side = socket.socketpair()
    yield loop, server_side, client_side
    server_side.close()
    client_side.close()
    loop.close()


def read_header(loop: EventLoop, sock: socket.socket, timeout: float = GUARD,
                feed: list[bytes] | None = None, peer: socket.socket | None = None) -> list:
    """Run a reader on *sock* until it reports; *feed* pieces are sent to *peer* one
    per loop turn meanwhile. Returns what the reader reported (one item)."""
    results: list = []

    def done(header: ProxyHeader | None) -> None:
        results.append(header)
        loop.stop()

    def send_next() -> None:
        if feed:
            assert peer is not None
            peer.sendall(feed.pop(0))
            loop.call_later(0.001, send_next)

    ProxyHeaderReader(loop, sock, "127.0.0.1", done, timeout=timeout)
    guard = loop.call_later(GUARD, loop.stop)
    loop.call_soon(send_next)
    loop.run()
    guard.cancel()
    return results


def test_takes_exactly_the_header_and_leaves_the_command(pair):
    loop, server_side, client_side = pair
    client_side.sendall(v1_header(CLIENT, FRONT) + b"USER anonymous\r\n")
    assert read_header(loop, server_side) == [ProxyHeader(
        1, len(v1_header(CLIENT, FRONT)), CLIENT, FRONT)]
    server_side.setblocking(True)
    server_side.settimeout(GUARD)
    assert server_side.recv(100) == b"USER anonymous\r\n"


@pytest.mark.parametrize("header", [v1_header(CLIENT, FRONT), v2_header(CLIENT, FRONT)],
                         ids=["v1", "v2"])
def test_header_in_single_bytes(pair, header):
    loop, server_side, client_side = pair
    pieces = [bytes([b]) for b in header] + [b"NOOP\r\n"]
    result = read_header(loop, server_side, feed=pieces, peer=client_side)
    assert result[0].client == CLIENT
    client_side.sendall(b"".join(pieces))  # what the loop had not fed yet
    server_side.settimeout(GUARD)
    assert server_side.recv(100) == b"NOOP\r\n"  # nothing of it was taken


def test_a_silent_peer_is_dropped_at_the_deadline(pair, caplog):
    loop, server_side, _ = pair
    assert read_header(loop, server_side, timeout=0.05) == [None]
    assert "no PROXY header in time" in caplog.text


def test_a_half_header_then_silence_is_dropped_at_the_deadline(pair, caplog):
    loop, server_side, client_side = pair
    client_side.sendall(v2_header(CLIENT, FRONT)[:20])
    assert read_header(loop, server_side, timeout=0.05) == [None]
    assert "no PROXY header in time" in caplog.text


def test_garbage_is_dropped_at_once_and_closing_too(pair, caplog):
    loop, server_side, client_side = pair
    client_side.sendall(b"SSH-2.0-OpenSSH\r\n")
    assert read_header(loop, server_side) == [None]
    assert "no PROXY header" in caplog.text
    client_side.close()
    other, peer = socket.socketpair()
    with other, peer:
        peer.sendall(b"PROXY TCP4 1.2")
        peer.close()
        assert read_header(loop, other) == [None]
    assert "closed within the PROXY header" in caplog.text


def test_local_header_means_the_real_peer(pair):
    loop, server_side, client_side = pair
    client_side.sendall(v2_header(None))
    header = read_header(loop, server_side)[0]
    assert header.client is None
    assert carried_peer(header, ("127.0.0.1", 5555)) == ("127.0.0.1", 5555)
    assert carried_peer(ProxyHeader(2, 28, CLIENT, FRONT), ("127.0.0.1", 1)) == CLIENT


def test_networks():
    nets = ProxyNetworks(["10.0.0.0/24", "192.0.2.7", "2001:db8::/32"])
    assert "10.0.0.200" in nets and "192.0.2.7" in nets and "2001:db8::5" in nets
    assert "::ffff:10.0.0.1" in nets  # an IPv4 balancer on a dual-stack socket
    assert "10.0.1.1" not in nets and "192.0.2.8" not in nets and "::1" not in nets
    assert "not an address" not in nets
    assert not ProxyNetworks([]) and nets
