"""Byte counts as people write them: ``"10G"``, ``"1M"``, ``"512K"`` or a plain integer.

Suffixes K, M, G, T are powers of 1024 (``"1M"`` is 1048576), as ``ls -h`` and
``du -h`` count; one grammar for ``--max-rate``, the users file and ``ftpd-passwd``."""

from __future__ import annotations

from typing import Any

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: Any) -> int:
    """The number of bytes *value* names (an int, or a string of digits with an optional
    K/M/G/T suffix); ValueError saying what is expected otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 1M, 10G or a number of bytes")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip().upper().removesuffix("B").removesuffix("I")
        digits, unit = (text[:-1], text[-1]) if text[-1:] in UNITS and text[-1:] else (text, "")
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"expected a size like 1M, 10G or a number of bytes, got {value!r}")
        number = int(digits) * UNITS[unit]
    else:
        raise ValueError(f"expected a size like 1M, 10G or a number of bytes, got {value!r}")
    if number < 0:
        raise ValueError("must not be negative")
    return number


def format_size(number: int) -> str | int:
    """The shortest exact form: ``"10G"`` for 10 GiB, the integer itself otherwise."""
    for unit in ("T", "G", "M", "K"):
        if number and number % UNITS[unit] == 0:
            return f"{number // UNITS[unit]}{unit}"
    return number
