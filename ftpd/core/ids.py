"""Small pure helpers: session ids and address normalisation."""

from __future__ import annotations

import base64
import struct


def session_id(start_time: float, pid: int, counter: int) -> str:
    """NcFTPd's session-id shape: base64 of a 4-byte start time, 2-byte pid,
    2-byte per-process connection counter and a zero byte (12 characters)."""
    raw = struct.pack(">IHHB", int(start_time) & 0xFFFFFFFF, pid & 0xFFFF, counter & 0xFFFF, 0)
    return base64.b64encode(raw).decode("ascii")


def normalize_host(host: str) -> str:
    """IPv4 clients on a dual-stack socket (``::ffff:a.b.c.d``) are IPv4 everywhere."""
    lowered = host.lower()
    if lowered.startswith("::ffff:") and "." in lowered:
        return lowered[7:]
    return host.split("%", 1)[0] if "%" in host else host


def is_ipv6(host: str) -> bool:
    return ":" in host
