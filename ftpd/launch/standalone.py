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


def bind(host: str, port: int, backlog: int = 512) -> socket.socket:
    """A listening socket; ``::`` is dual-stack (IPv4 clients appear v4-mapped)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and addr[0] in ("::", "::0"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def standalone_context(addresses: list[tuple[str, int]],
                       implicit: list[tuple[str, int]] | None = None) -> LaunchContext:
    """Bind every address (OSError names the one that failed)."""
    ctx = LaunchContext("standalone")
    try:
        for tls, group in ((False, addresses), (True, implicit or [])):
            for host, port in group:
                try:
                    ctx.listeners.append(Endpoint(bind(host, port), implicit_tls=tls))
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") \
                        from None
    except OSError:
        for ep in ctx.listeners:
            ep.sock.close()
        raise
    return ctx
