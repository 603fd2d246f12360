"""The PROXY protocol (HAProxy's doc/proxy-protocol.txt), versions 1 and 2, as a pure
parser: bytes in, the client address a load balancer carried out. No I/O here; the
reader that feeds it from a socket is ``ftpd.io.proxyread``.

A header is parsed from the start of a buffer; the result says how many bytes it
used, so whatever followed it (the client's first command, a TLS ClientHello) stays
for the session."""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the whole line, CRLF included (spec 2.1)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/protocol, length
V2_MAX = V2_FIXED + 1024  # addresses and TLVs: HAProxy's own are far below this
_V2_ADDRESS_SIZE = {0x11: 12, 0x21: 36}  # TCP over IPv4, TCP over IPv6
READ_LIMIT = V1_MAX  # the most a reader may ask for before it knows the version


class ProxyError(ValueError):
    """Not a valid PROXY header (the connection is dropped without a reply)."""


class ProxyHeader(NamedTuple):
    """A complete header. *client* and *server* are ``(host, port)`` as the balancer
    saw them, or None for a header that carries no address (v2 LOCAL, the balancer's
    own health check; v1 UNKNOWN; v2 UNSPEC): the real peer is used then."""

    version: int
    consumed: int  # bytes of the buffer the header used
    client: tuple[str, int] | None
    server: tuple[str, int] | None


def parse(data: bytes | bytearray | memoryview) -> ProxyHeader | None:
    """The header at the start of *data*; None while more bytes are needed.
    ProxyError as soon as the bytes cannot begin a valid header."""
    data = bytes(data[:V2_MAX])
    if len(data) < len(V2_SIGNATURE) and V2_SIGNATURE.startswith(data):
        return None  # nothing yet, or the start of a v2 signature
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if data.startswith(V1_PREFIX) or V1_PREFIX.startswith(data):
        return _parse_v1(data)
    raise ProxyError("no PROXY header")


def wanted(data: bytes | bytearray) -> int:
    """The most bytes worth asking for next: for v2, exactly what is left of the header
    (its fixed part, then its length field's count); for v1, what is left of the
    107-byte limit — a line has no length, so the reader peeks that much and takes
    only up to the CRLF that ``parse`` finds."""
    if V2_SIGNATURE.startswith(bytes(data[:len(V2_SIGNATURE)])):  # v2, or nothing yet
        if len(data) < V2_FIXED:
            return V2_FIXED - len(data)  # the fixed part belongs to any v2 header
        return max(0, V2_FIXED + struct.unpack_from("!H", data, 14)[0] - len(data))
    return max(0, V1_MAX - len(data))


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or b"\n" in data[:V1_MAX]:
            raise ProxyError("v1 header too long or not ended by CRLF")
        return None
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyError("v1 header is not ASCII") from None
    fields = line.split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return ProxyHeader(1, end + 2, None, None)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyError(f"bad v1 header {line[:60]!r}")
    version = 4 if fields[1] == "TCP4" else 6
    client = (_v1_address(fields[2], version), _v1_port(fields[4]))
    server = (_v1_address(fields[3], version), _v1_port(fields[5]))
    return ProxyHeader(1, end + 2, client, server)


def _v1_address(text: str, version: int) -> str:
    try:
        if "%" in text:  # a scope names an interface of the balancer, not an address
            raise ValueError(text)
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyError(f"bad v1 address {text[:45]!r}") from None
    if address.version != version:
        raise ProxyError(f"v1 address {text!r} is not IPv{version}")
    return _host(address)


def _host(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """IPv4 clients of a dual-stack balancer (``::ffff:a.b.c.d``) are IPv4 here too."""
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _v1_port(text: str) -> int:
    if not (text.isdigit() and text.isascii() and len(text) <= 5) or int(text) > 65535:
        raise ProxyError(f"bad v1 port {text[:10]!r}")
    if len(text) > 1 and text[0] == "0":
        raise ProxyError(f"v1 port {text!r} has a leading zero")
    return int(text)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < V2_FIXED:
        return None
    version_command, family_protocol, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProxyError(f"v2 header with version {version_command >> 4}")
    command = version_command & 0x0F
    if command > 1:
        raise ProxyError(f"v2 header with unknown command {command}")
    total = V2_FIXED + length
    if total > V2_MAX:
        raise ProxyError(f"v2 header of {total} bytes (at most {V2_MAX})")
    if len(data) < total:
        return None
    if command == 0 or family_protocol == 0:  # LOCAL, or PROXY with UNSPEC: real peer
        return ProxyHeader(2, total, None, None)
    size = _V2_ADDRESS_SIZE.get(family_protocol)
    if size is None:
        raise ProxyError(f"v2 header for family/protocol {family_protocol:#04x} (TCP only)")
    if length < size:
        raise ProxyError(f"v2 address block of {length} bytes (needs {size})")
    width = 4 if size == 12 else 16
    block = data[V2_FIXED:V2_FIXED + size]
    src = ipaddress.ip_address(block[:width])
    dst = ipaddress.ip_address(block[width:2 * width])
    sport, dport = struct.unpack_from("!HH", block, 2 * width)
    return ProxyHeader(2, total, (_host(src), sport), (_host(dst), dport))


def v1_header(client: tuple[str, int], server: tuple[str, int]) -> bytes:
    """A v1 header (what ``send-proxy`` sends): for tests and tools."""
    family = "TCP6" if ":" in client[0] else "TCP4"
    return f"PROXY {family} {client[0]} {server[0]} {client[1]} {server[1]}\r\n".encode()


def v2_header(client: tuple[str, int] | None, server: tuple[str, int] | None = None,
              tlvs: bytes = b"") -> bytes:
    """A v2 header (what ``send-proxy-v2`` sends); *client* None is the LOCAL command."""
    if client is None:
        return V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x00, len(tlvs)) + tlvs
    server = server or ("0.0.0.0" if ":" not in client[0] else "::", 0)
    src, dst = ipaddress.ip_address(client[0]), ipaddress.ip_address(server[0])
    family = 0x11 if src.version == 4 else 0x21
    block = src.packed + dst.packed + struct.pack("!HH", client[1], server[1]) + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, family, len(block)) + block
