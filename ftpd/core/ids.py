"""Small pure helpers: session ids and address normalisation."""

from __future__ import annotations

import base64
import binascii
import struct


def server_key(server_id: str) -> int:
    """16 bits standing for *server_id* in session ids: the CRC-32 of its UTF-8 bytes with
    the high and low halves xored together (binascii is already loaded by base64)."""
    crc = binascii.crc32(server_id.encode("utf-8", "surrogateescape"))
    return (crc >> 16) ^ (crc & 0xFFFF)


def session_id(start_time: float, pid: int, counter: int, key: int = 0) -> str:
    """NcFTPd's session-id shape: base64 of a 4-byte start time, 2-byte pid,
    2-byte per-process connection counter and a zero byte (12 characters).

    The pid field is ``(pid XOR key) & 0xFFFF`` with *key* the server's ``server_key``, so
    that processes with the same pid on different hosts (containers all run as pid 1) get
    different ids while processes of one host still never share a pid field."""
    raw = struct.pack(">IHHB", int(start_time) & 0xFFFFFFFF, (pid ^ key) & 0xFFFF,
                      counter & 0xFFFF, 0)
    return base64.b64encode(raw).decode("ascii")


def normalize_host(host: str) -> str:
    """IPv4 clients on a dual-stack socket (``::ffff:a.b.c.d``) are IPv4 everywhere."""
    lowered = host.lower()
    if lowered.startswith("::ffff:") and "." in lowered:
        return lowered[7:]
    return host.split("%", 1)[0] if "%" in host else host


def is_ipv6(host: str) -> bool:
    return ":" in host
