"""The PROXY protocol parser (ftpd.io.proxyproto): valid, invalid, partial and
oversized v1 and v2 headers, fed whole and byte by byte, with the bytes after the
header left for the session."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpd.io.proxyproto import (
    V1_MAX,
    V2_MAX,
    V2_SIGNATURE,
    ProxyError,
    ProxyHeader,
    parse,
    v1_header,
    v2_header,
    wanted,
)

CLIENT4, SERVER4 = ("203.0.113.7", 51234), ("198.51.100.1", 21)
CLIENT6, SERVER6 = ("2001:db8::7", 40000), ("2001:db8::1", 2121)
TRAILER = b"USER anonymous\r\n"


def feed_bytewise(data: bytes) -> tuple[ProxyHeader, int]:
    """Parse growing prefixes, as a reader that receives one byte at a time; returns
    the header and the prefix length at which it was complete."""
    for n in range(len(data) + 1):
        header = parse(data[:n])
        if header is not None:
            return header, n
    raise AssertionError("never complete")


@pytest.mark.parametrize("header, client, server, version", [
    (v1_header(CLIENT4, SERVER4), CLIENT4, SERVER4, 1),
    (v1_header(CLIENT6, SERVER6), CLIENT6, SERVER6, 1),
    (v2_header(CLIENT4, SERVER4), CLIENT4, SERVER4, 2),
    (v2_header(CLIENT6, SERVER6), CLIENT6, SERVER6, 2),
])
def test_valid_headers_whole_and_byte_by_byte(header, client, server, version):
    whole = parse(header + TRAILER)
    assert whole == ProxyHeader(version, len(header), client, server)
    assert (header + TRAILER)[whole.consumed:] == TRAILER  # the first command stays
    bytewise, complete_at = feed_bytewise(header + TRAILER)
    assert bytewise == whole
    assert complete_at == len(header)  # not one byte of the command was needed


def test_v1_literal_from_the_spec():
    line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    assert parse(line + b"GET /") == ProxyHeader(
        1, len(line), ("192.168.0.1", 56324), ("192.168.0.11", 443))


def test_v1_unknown_and_v2_local_carry_no_address():
    assert parse(b"PROXY UNKNOWN\r\n") == ProxyHeader(1, 15, None, None)
    unknown = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"
    assert parse(unknown) == ProxyHeader(1, len(unknown), None, None)
    local = v2_header(None)
    assert parse(local + TRAILER) == ProxyHeader(2, 16, None, None)
    unspec = V2_SIGNATURE + b"\x21\x00\x00\x00"  # PROXY with family UNSPEC
    assert parse(unspec) == ProxyHeader(2, 16, None, None)


def test_v2_tlvs_are_skipped():
    tlv = b"\x04\x00\x03abc"  # PP2_TYPE_NOOP
    header = v2_header(CLIENT4, SERVER4, tlvs=tlv)
    assert parse(header + TRAILER) == ProxyHeader(2, len(header), CLIENT4, SERVER4)


def test_ipv4_mapped_clients_are_ipv4():
    header = parse(v2_header(("::ffff:10.1.2.3", 1000), ("::1", 21)))
    assert header.client == ("10.1.2.3", 1000)
    line = parse(b"PROXY TCP6 ::ffff:10.1.2.3 ::1 1000 21\r\n")
    assert line.client == ("10.1.2.3", 1000)


@pytest.mark.parametrize("data", [
    b"USER anonymous\r\n",  # an FTP client, not a balancer
    b"GET / HTTP/1.0\r\n",
    b"PROXY\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",  # LF only
    b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",  # a field missing
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",  # one too many
    b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",  # two spaces
    b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",  # leading zero
    b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",  # family mismatch
    b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
    b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",  # a scope is no client address
    b"PROXY TCP4 1.2.3.4 5.6.7.\xe9 1 2\r\n",
    b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",  # the keyword is upper case
    V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12),  # version 1 in a v2 header
    V2_SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12),  # command 2
    V2_SIGNATURE + b"\x21\x12\x00\x0c" + bytes(12),  # UDP
    V2_SIGNATURE + b"\x21\x31\x00\xd8" + bytes(216),  # AF_UNIX
    V2_SIGNATURE + b"\x21\x11\x00\x08" + bytes(8),  # address block too short
    V2_SIGNATURE + b"\x21\x21\x00\x0c" + bytes(12),  # IPv6 block too short
])
def test_invalid_headers(data):
    with pytest.raises(ProxyError):
        parse(data)


@pytest.mark.parametrize("data", [
    b"USER",  # a plain command is refused before its line ends
    b"\r\n\r\nX",  # not the v2 signature after all
    b"PROXX",
])
def test_invalid_prefixes_are_refused_early(data):
    with pytest.raises(ProxyError):
        parse(data)


def test_oversized_v1_is_refused_at_the_limit():
    line = b"PROXY UNKNOWN " + b"x" * (V1_MAX - 16) + b"\r\n"
    assert len(line) == V1_MAX and parse(line) is not None  # 107 bytes: the longest
    too_long = b"PROXY UNKNOWN " + b"x" * V1_MAX
    assert parse(too_long[:V1_MAX - 1]) is None
    with pytest.raises(ProxyError):
        parse(too_long)


def test_oversized_v2_is_refused_from_its_length_field():
    head = V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", V2_MAX)
    with pytest.raises(ProxyError):
        parse(head)  # known too long before the rest arrives


@pytest.mark.parametrize("header", [
    v1_header(CLIENT4, SERVER4), v2_header(CLIENT6, SERVER6), v2_header(None),
])
def test_every_proper_prefix_is_incomplete(header):
    for n in range(len(header)):
        assert parse(header[:n]) is None, n


@pytest.mark.parametrize("header", [
    v1_header(CLIENT6, SERVER6), v2_header(CLIENT4, SERVER4, tlvs=b"\x04\x00\x01z"),
])
def test_wanted_never_reaches_past_a_v2_header(header):
    """A reader asking for wanted() bytes at a time stops exactly at a v2 header's end;
    a v1 line has no length, so the reader peeks and parse() says where it ends."""
    got = b""
    for _ in range(len(header) + 1):
        if parse(got) is not None:
            break
        step = wanted(got)
        assert step > 0
        if got.startswith(V2_SIGNATURE):
            assert len(got) + step <= len(header)
        got += header[len(got):len(got) + step]
    assert parse(got).consumed == len(header)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data):
    try:
        header = parse(data)
    except ProxyError:
        return
    assert header is None or 0 < header.consumed <= len(data)


def test_wanted_within_the_fixed_part_of_v2():
    header = v2_header(CLIENT4, SERVER4)
    assert wanted(b"") == 16
    for n in range(16):
        assert wanted(header[:n]) == 16 - n
    assert wanted(header[:16]) == len(header) - 16
    assert wanted(b"PROXY ") == V1_MAX - 6
