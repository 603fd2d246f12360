"""Standalone binding: ``-l 0.0.0.0:P -l [::]:P`` (the README's two-socket example) binds,
the IPv6 wildcard made IPv6-only beside an IPv4 address on its port and dual-stack when
alone; addresses in messages are written ``[::]:P``."""

from __future__ import annotations

import socket

import pytest
from ftpsupport import FtpdProcess, free_port, has_ipv6_loopback, start_ftpd
from lhelpers import Control

from ftpd.launch.standalone import format_address, standalone_context

needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1)")


def v6only(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)


def close(ctx) -> None:
    for ep in ctx.listeners:
        ep.sock.close()


def test_format_address() -> None:
    assert format_address("0.0.0.0", 21) == "0.0.0.0:21"
    assert format_address("::", 21) == "[::]:21"
    assert format_address("::1", 2121) == "[::1]:2121"


@needs_ipv6
@pytest.mark.parametrize("order", ["v4-first", "v6-first"])
def test_ipv6_wildcard_beside_ipv4_wildcard_is_ipv6_only(order: str) -> None:
    port = free_port("::")
    pair = [("0.0.0.0", port), ("::", port)]
    ctx = standalone_context(pair if order == "v4-first" else pair[::-1])
    try:
        families = {ep.sock.family: ep.sock for ep in ctx.listeners}
        assert set(families) == {socket.AF_INET, socket.AF_INET6}
        assert v6only(families[socket.AF_INET6]) == 1
        for host in ("127.0.0.1", "::1"):  # both accept, each on its own socket
            with socket.create_connection((host, port), timeout=5):
                pass
    finally:
        close(ctx)


@needs_ipv6
def test_ipv6_wildcard_alone_stays_dual_stack() -> None:
    port = free_port("::")
    ctx = standalone_context([("::", port)])
    try:
        assert v6only(ctx.listeners[0].sock) == 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        close(ctx)


@needs_ipv6
def test_ipv6_wildcard_beside_an_ipv4_loopback_on_its_port() -> None:
    port = free_port("::")
    ctx = standalone_context([("127.0.0.1", port)], implicit=[("::", port)])
    try:
        assert v6only(ctx.listeners[1].sock) == 1
    finally:
        close(ctx)


@needs_ipv6
def test_cannot_listen_names_an_ipv6_address_in_brackets() -> None:
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=rf"cannot listen on \[::1\]:{port}: "):
            standalone_context([("::1", port)])


@needs_ipv6
def test_readme_two_socket_example_serves_both_families(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()

    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        port = ports[0]
        return FtpdProcess(["-l", str(port), "-l", f"[::]:{port}", "-r", str(root)],
                           port=port, log_path=tmp_path / f"ftpd-{attempt}.log")

    server = start_ftpd(spawn)
    try:
        for host in ("127.0.0.1", "::1"):
            ctl = Control.connect(host, server.port)
            assert ctl.reply()[0] == 220
            ctl.expect("QUIT", 221)
            ctl.close()
    finally:
        assert server.stop() == 0
    log = server.log()
    assert f"listening on 0.0.0.0:{server.port} (standalone)" in log, log
    assert f"listening on [::]:{server.port} (standalone)" in log, log
    assert "Traceback" not in log
