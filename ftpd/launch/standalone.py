"""Standalone: bind our own listening sockets from ``-l`` addresses."""

from __future__ import annotations

import socket

from ftpd.launch.context import Endpoint, LaunchContext

DEFAULT_PORT = 2121


def parse_address(text: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[V6]:PORT`` to (host, port); ValueError if malformed."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address {text!r}: expected [V6]:PORT")
        port_text = rest[1:] if rest else str(DEFAULT_PORT)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.isdigit():
        host, port_text = default_host, text
    elif ":" in text:
        raise ValueError(f"bad address {text!r}: write IPv6 addresses as [V6]:PORT")
    else:
        host, port_text = text, str(DEFAULT_PORT)
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bad port in {text!r}: expected 0-65535")
    return host or default_host, int(port_text)


def format_address(host: str, port: int) -> str:
    """The inverse of parse_address, for messages: ``0.0.0.0:21``, ``[::]:21``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolve(host: str, port: int) -> tuple[int, tuple]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    return family, addr


def bind(host: str, port: int, backlog: int = 512, v6only: bool = False) -> socket.socket:
    """A listening socket; ``::`` is dual-stack (IPv4 clients appear v4-mapped) unless
    *v6only*."""
    family, addr = _resolve(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and addr[0] in ("::", "::0"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind(addr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _ipv4_ports(addresses: list[tuple[str, int]]) -> set[int]:
    """Ports also asked for on IPv4: a dual-stack ``[::]`` there would take the IPv4
    side too and collide (``-l 0.0.0.0:21 -l [::]:21``), so that ``[::]`` is IPv6-only."""
    ports = set()
    for host, port in addresses:
        try:
            if _resolve(host, port)[0] == socket.AF_INET:
                ports.add(port)
        except OSError:
            pass  # bind says so, naming the address
    return ports


def standalone_context(addresses: list[tuple[str, int]],
                       implicit: list[tuple[str, int]] | None = None) -> LaunchContext:
    """Bind every address (OSError names the one that failed)."""
    ctx = LaunchContext("standalone")
    v4_ports = _ipv4_ports(addresses + (implicit or []))
    try:
        for tls, group in ((False, addresses), (True, implicit or [])):
            for host, port in group:
                try:
                    sock = bind(host, port, v6only=port in v4_ports and port != 0)
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on {format_address(host, port)}: "
                                  f"{exc.strerror}") from None
                ctx.listeners.append(Endpoint(sock, implicit_tls=tls))
    except OSError:
        for ep in ctx.listeners:
            ep.sock.close()
        raise
    return ctx
