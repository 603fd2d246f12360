"""LineFramer: bytes in, command lines out. Each case is fed whole, one byte at a
time, and with trailing data after the last line."""

from __future__ import annotations

import pytest

from ftpd.core.buffer import MAX_LINE, LineFramer, LineTooLong


def feed_whole(data: bytes, framer: LineFramer | None = None) -> list:
    return (framer or LineFramer()).feed(data)


def feed_bytewise(data: bytes, framer: LineFramer | None = None) -> list:
    framer = framer or LineFramer()
    out: list = []
    for i in range(len(data)):
        out += framer.feed(data[i:i + 1])
    return out


def feed_split(data: bytes, framer: LineFramer | None = None) -> list:
    """Every two-way split (on fresh framers), or one split in the middle when
    *framer* is given."""
    if framer is not None:
        half = len(data) // 2
        return framer.feed(data[:half]) + framer.feed(data[half:])
    results = []
    for cut in range(len(data) + 1):
        f = LineFramer()
        results.append(f.feed(data[:cut]) + f.feed(data[cut:]))
    first = results[0]
    assert all(r == first for r in results)
    return first


FEEDERS = [feed_whole, feed_bytewise, feed_split]

CASES = [
    (b"NOOP\r\n", [b"NOOP"]),
    (b"NOOP\n", [b"NOOP"]),
    (b"USER a\r\nPASS b\r\n", [b"USER a", b"PASS b"]),
    (b"USER a\nPASS b\r\nSYST\n", [b"USER a", b"PASS b", b"SYST"]),
    (b"\r\n", [b""]),
    (b"STOR a\rb\r\n", [b"STOR a\rb"]),  # a bare CR inside a line stays
    (b"STOR a\r\r\n", [b"STOR a\r"]),
    # Telnet: IAC IP, IAC DM (Synch) before ABOR, as ftplib and lftp send them
    (b"\xff\xf4\xff\xf2ABOR\r\n", [b"ABOR"]),
    # IAC IAC is a literal 0xFF byte
    (b"STOR \xff\xffname\r\n", [b"STOR \xffname"]),
    # option negotiation: three bytes, all dropped
    (b"\xff\xfb\x01NOOP\r\n", [b"NOOP"]),
    (b"NO\xff\xfd\x03OP\r\n", [b"NOOP"]),
    (b"\xff\xfc\xffNOOP\r\n", [b"NOOP"]),  # the option byte may itself be 0xFF
    (b"\xff\xf1NOOP\r\n", [b"NOOP"]),  # IAC NOP
    # any other 0xFF is data: non-UTF-8 names as ftplib, wget and curl send them
    (b"RETR raw\xff.bin\r\n", [b"RETR raw\xff.bin"]),
    (b"STOR \xff\xfa\x18name\r\n", [b"STOR \xff\xfa\x18name"]),  # not a subnegotiation
    (b"STOR a\xff\xf0\r\n", [b"STOR a\xff\xf0"]),
]


@pytest.mark.parametrize("feeder", FEEDERS)
@pytest.mark.parametrize(("data", "lines"), CASES)
def test_lines(feeder, data, lines):
    assert feeder(data) == lines


@pytest.mark.parametrize("feeder", FEEDERS)
@pytest.mark.parametrize(("data", "lines"), CASES)
def test_trailing_data_is_kept_for_the_next_feed(feeder, data, lines):
    framer = LineFramer()
    assert feeder(data + b"PWD", framer) == lines
    assert framer.feed(b"\r\n") == [b"PWD"]


def test_telnet_command_split_across_feeds():
    f = LineFramer()
    assert f.feed(b"\xff") == []
    assert f.feed(b"\xf4\xff") == []
    assert f.feed(b"\xf2AB") == []
    assert f.feed(b"OR\r\n") == [b"ABOR"]
    assert f.feed(b"X\xff") == []
    assert f.feed(b"\xff\r\n") == [b"X\xff"]
    assert f.feed(b"\xff\xfb") == []
    assert f.feed(b"\x01Y\r\n") == [b"Y"]


@pytest.mark.parametrize("feeder", FEEDERS[:2])
def test_over_long_line_then_intact_line(feeder):
    data = b"A" * (MAX_LINE + 10) + b"\r\nNOOP\r\n"
    out = feeder(data)
    assert len(out) == 2
    assert isinstance(out[0], LineTooLong) and out[0].length >= MAX_LINE
    assert out[1] == b"NOOP"


def test_over_long_line_memory_is_bounded():
    f = LineFramer()
    for _ in range(1000):
        assert f.feed(b"B" * 4096) == []
        assert len(f._buf) <= MAX_LINE
    out = f.feed(b"\nSYST\r\n")
    assert isinstance(out[0], LineTooLong) and out[0].length == 4096 * 1000
    assert out[1] == b"SYST"


def test_limit_boundary():
    f = LineFramer(max_line=8)
    assert f.feed(b"12345678\n") == [b"12345678"]
    out = f.feed(b"123456789\n")
    assert isinstance(out[0], LineTooLong)
    assert f.feed(b"ok\n") == [b"ok"]


@pytest.mark.parametrize("feeder", FEEDERS)
def test_a_line_of_exactly_max_line_bytes_plus_crlf_is_accepted(feeder):
    """The limit counts the command, not its CR LF (nor an LF alone)."""
    line = b"C" * MAX_LINE
    assert feeder(line + b"\r\n" + line + b"\n") == [line, line]
    out = feeder(line + b"C\r\n" + line + b"C\n" + b"NOOP\r\n")
    assert [type(x) for x in out] == [LineTooLong, LineTooLong, bytes]
    assert [x.length for x in out[:2]] == [MAX_LINE + 2, MAX_LINE + 1]


def test_a_bare_cr_counts_inside_the_line():
    f = LineFramer(max_line=8)
    assert f.feed(b"1234567\r\r\n") == [b"1234567\r"]
    assert isinstance(f.feed(b"12345678\r\r\n")[0], LineTooLong)
    assert f.feed(b"12345678\r\n") == [b"12345678"]


def test_split_crlf():
    f = LineFramer()
    assert f.feed(b"NOOP\r") == []
    assert f.feed(b"\n") == [b"NOOP"]


def test_empty_feed():
    f = LineFramer()
    assert f.feed(b"") == []
    assert f.feed(b"NO") == []
    assert f.feed(b"") == []
    assert f.feed(b"OP\n") == [b"NOOP"]
