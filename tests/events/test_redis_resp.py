"""The RESP2 codec both Redis ends use: commands as arrays of bulk strings, replies parsed
from whatever bytes have arrived (one at a time, split anywhere), errors kept in place."""

from __future__ import annotations

import pytest

from ftpd.events.resp import ProtocolError, ReplyParser, RespError, command

REPLIES = (b"+OK\r\n-ERR wrong number of arguments\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n"
           b"*2\r\n$3\r\nabc\r\n*1\r\n:-7\r\n*-1\r\n$0\r\n\r\n")


def parse_all(parser: ReplyParser) -> list:
    out = []
    while True:
        found, value = parser.pop_reply()
        if not found:
            return out
        out.append(value)


def check(replies: list) -> None:
    ok, err, num, text, nil, nested, nil_array, empty = replies
    assert ok == "OK" and num == 42 and text == b"he\r\no" and nil is None
    assert isinstance(err, RespError) and err.code == "ERR"
    assert str(err) == "ERR wrong number of arguments"
    assert nested == [b"abc", [-7]] and nil_array is None and empty == b""


def test_command_is_an_array_of_bulk_strings():
    assert command("XADD", "s", 5, b"a\r\nb") == (
        b"*4\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n5\r\n$4\r\na\r\nb\r\n")
    assert command("SET", "k", "é") == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\xc3\xa9\r\n"


def test_replies_all_at_once():
    parser = ReplyParser()
    parser.feed(REPLIES)
    check(parse_all(parser))
    assert parser.buffered == 0


def test_replies_one_byte_at_a_time():
    parser = ReplyParser()
    got: list = []
    for i in range(len(REPLIES)):
        parser.feed(REPLIES[i:i + 1])
        got += parse_all(parser)
    check(got)


def test_a_reply_split_anywhere_is_returned_once_complete():
    for cut in range(1, len(REPLIES)):
        parser = ReplyParser()
        parser.feed(REPLIES[:cut])
        first = parse_all(parser)
        parser.feed(REPLIES[cut:])
        check(first + parse_all(parser))


@pytest.mark.parametrize("data", [b"?what\r\n", b":12x\r\n", b"$3\r\nabcde\r\n",
                                  b"*x\r\n", b"$99999999999\r\n"])
def test_bytes_that_are_not_resp_raise(data):
    parser = ReplyParser()
    parser.feed(data)
    with pytest.raises(ProtocolError):
        parser.pop_reply()


def test_an_endless_line_is_refused():
    parser = ReplyParser()
    parser.feed(b"+" + b"x" * 70000)
    with pytest.raises(ProtocolError, match="too long"):
        parser.pop_reply()
