"""Event sinks against real transports: a UDP socket on 127.0.0.1 and System V queues."""

from __future__ import annotations

import errno
import logging
import os
import socket

import pytest

from ftpd.core import events as core
from ftpd.events.bus import EventBus
from ftpd.events.ncftpd import ENCODED_EVENTS, decode, encode
from ftpd.events.sinks import (
    MqueueSink,
    SinkError,
    UdpSink,
    install_sinks,
    parse_key,
    parse_sink_spec,
)

from .conftest import ALICE, upload

sysv_ipc = pytest.importorskip("sysv_ipc")
T = 1764079260.0


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


def test_udp_sink_sends_one_datagram_per_event(receiver):
    bus = EventBus()
    sink = UdpSink("127.0.0.1", receiver.getsockname()[1])
    sink.attach(bus)
    try:
        bus.generate("fs.upload", upload())
        bus.generate("session.connect", core.ConnectEvent(ALICE, T))  # no NcFTPd type
        bus.generate("fs.mkdir", core.PathEvent(ALICE, T, "/new", "dir"))
        assert receiver.recv(65536) == encode("fs.upload", upload())
        assert decode(receiver.recv(65536)).path == "/new"
        assert (sink.sent, sink.dropped) == (2, 0)
    finally:
        sink.close()
    bus.generate("fs.upload", upload())  # detached: nothing more is sent
    receiver.setblocking(False)  # (a loopback datagram is queued before sendto returns)
    with pytest.raises(BlockingIOError):
        receiver.recv(65536)


def test_attach_listens_to_exactly_the_encoded_events():
    bus = EventBus()
    sink = UdpSink("127.0.0.1", 9)
    sink.attach(bus)
    try:
        assert sorted(bus.names()) == sorted(ENCODED_EVENTS)
        assert "fs.rmdir" in bus and "session.login-failed" not in bus
    finally:
        sink.close()
    assert bus.names() == []


class _FailingSocket:
    def __init__(self, exc):
        self.exc = exc

    def sendto(self, data, address):
        raise self.exc

    def close(self):
        pass


def test_udp_errors_are_dropped_counted_and_logged_once_a_minute(caplog):
    sink = UdpSink("127.0.0.1", 9)
    assert sink._sock.getblocking() is False  # a full buffer is a drop, never a wait
    sink._sock.close()
    sink._sock = _FailingSocket(BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable"))
    frame = encode("fs.upload", upload())
    with caplog.at_level(logging.WARNING, logger="ftpd.events"):
        assert [sink.send(frame) for _ in range(5)] == [False] * 5
        sink._sock = _FailingSocket(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        assert sink.send(frame) is False
        assert sink.dropped == 6 and sink.sent == 0
        assert len(caplog.records) == 1  # the first drop; the rest wait for the minute
        sink.close()  # ... or for close, which reports what is left
    assert len(caplog.records) == 2
    assert "dropped 5 message(s) (6 in all)" in caplog.records[1].getMessage()


def test_udp_spec_with_an_ipv6_address():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sink = parse_sink_spec("udp:[::1]:9")
    except SinkError:
        pytest.skip("IPv6 is disabled here")
    try:
        assert isinstance(sink, UdpSink) and sink.address[0] == "::1"
        assert sink.description == "udp:[::1]:9"
    finally:
        sink.close()


@pytest.mark.parametrize("spec, part", [
    ("nothing", "nothing"),
    ("tcp:host:1", "'tcp'"),
    ("udp:host", "udp:HOST:PORT"),
    ("udp::21", "udp:HOST:PORT"),
    ("udp:host:0", "'0'"),
    ("udp:host:65536", "'65536'"),
    ("udp:host:http", "'http'"),
    ("udp:::1:21", "[::1]"),
    ("udp:[::1:21", "'[::1'"),
    ("mqueue:", "''"),
    ("mqueue:0xZZ", "'0xZZ'"),
    ("mqueue:0", "'0'"),
    ("mqueue:0x100000000", "'0x100000000'"),
    ("mqueue:0x78C0FFEE,perm=999", "'999'"),
    ("mqueue:0x78C0FFEE,perm=01000", "'01000'"),
    ("mqueue:0x78C0FFEE,mode=0600", "'mode=0600'"),
])
def test_bad_specs_name_the_bad_part(spec, part):
    with pytest.raises(ValueError) as info:
        parse_sink_spec(spec)
    assert part in str(info.value) and not isinstance(info.value, OSError)


def test_parse_key():
    assert parse_key("0x78C0FFEE") == 0x78C0FFEE
    assert parse_key("0X78c0ffee") == 0x78C0FFEE
    assert parse_key("2025") == 2025


def test_an_unresolvable_udp_host_is_a_sink_error():
    with pytest.raises(SinkError) as info:
        UdpSink("no-such-host.invalid", 9)
    assert "no-such-host.invalid" in str(info.value)
    assert isinstance(info.value, OSError)


def test_mqueue_sink_creates_the_queue_0600_and_sends_mtype_1_with_a_nul(queue_key):
    bus = EventBus()
    sink = parse_sink_spec(f"mqueue:{queue_key:#x}")
    assert isinstance(sink, MqueueSink) and sink.created
    sink.attach(bus)
    try:
        mq = sysv_ipc.MessageQueue(queue_key)
        assert mq.mode & 0o777 == 0o600
        bus.generate("fs.upload", upload())
        bus.generate("transfer.abort", core.AbortEvent(ALICE, T, "/x", "RETR"))
        message, mtype = mq.receive(block=False)
        assert mtype == 1
        assert message == encode("fs.upload", upload()) + b"\0"
        assert decode(message).path == "/incoming/report.pdf"
        assert mq.current_messages == 0
        assert sink.sent == 1
    finally:
        sink.close()


def test_mqueue_perm_option_and_decimal_key(queue_key):
    sink = parse_sink_spec(f"mqueue:{queue_key},perm=0620")
    try:
        assert sysv_ipc.MessageQueue(queue_key).mode & 0o777 == 0o620
    finally:
        sink.close()


def test_mqueue_sink_opens_an_existing_queue(queue_key):
    sysv_ipc.MessageQueue(queue_key, sysv_ipc.IPC_CREX, mode=0o640)
    sink = MqueueSink(queue_key)
    try:
        assert not sink.created
        assert sink.send(encode("fs.upload", upload()))
        assert sysv_ipc.MessageQueue(queue_key).mode & 0o777 == 0o640  # left as it was
    finally:
        sink.close()


def test_a_full_queue_drops_promptly_and_counts(queue_key, caplog):
    mq = sysv_ipc.MessageQueue(queue_key, sysv_ipc.IPC_CREX, mode=0o600)
    filled = 0
    for size in (1000, 1):  # big messages, then the last few bytes
        while True:
            try:
                mq.send(b"x" * size, block=False, type=7)
            except sysv_ipc.BusyError:
                break
            filled += 1
            assert filled < 100000
    bus = EventBus()
    sink = MqueueSink(queue_key)
    sink.attach(bus)
    try:
        with caplog.at_level(logging.WARNING, logger="ftpd.events"):
            bus.generate("fs.upload", upload())  # a blocking send would wait forever:
            assert sink.send(encode("fs.upload", upload())) is False  # nobody reads mq
        assert sink.dropped == 2 and sink.sent == 0
        assert mq.current_messages == filled
        [record] = caplog.records
        assert "kernel.msgmnb" in record.getMessage()
    finally:
        sink.close()


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand queues over")


@root_only
def test_a_queue_we_create_is_handed_to_the_run_as_user(queue_key):
    sink = MqueueSink(queue_key, owner_uid=65534, owner_gid=65534)
    try:
        mq = sysv_ipc.MessageQueue(queue_key)
        assert (mq.uid, mq.gid) == (65534, 65534)
        assert mq.mode & 0o777 == 0o600
    finally:
        sink.close()


@root_only
def test_an_existing_queue_the_run_as_user_cannot_write_is_a_sink_error(queue_key):
    sysv_ipc.MessageQueue(queue_key, sysv_ipc.IPC_CREX, mode=0o600)  # root's, 0600
    with pytest.raises(SinkError) as info:
        MqueueSink(queue_key, owner_uid=65534, owner_gid=65534)
    message = str(info.value)
    assert "\n" not in message and "not writable by uid 65534" in message


def test_install_sinks_attaches_every_sink(receiver, queue_key):
    bus = EventBus()
    specs = [f"udp:127.0.0.1:{receiver.getsockname()[1]}", f"mqueue:{queue_key:#x}"]
    sinks = install_sinks(bus, specs)
    try:
        bus.generate("session.login", core.LoginEvent(ALICE, T))
        frame = encode("session.login", core.LoginEvent(ALICE, T))
        assert receiver.recv(65536) == frame
        assert sysv_ipc.MessageQueue(queue_key).receive(block=False) == (frame + b"\0", 1)
    finally:
        for sink in sinks:
            sink.close()


@root_only
def test_install_sinks_hands_queues_to_run_as(queue_key):
    sinks = install_sinks(EventBus(), [f"mqueue:{queue_key}"], run_as=(4321, 4322))
    try:
        mq = sysv_ipc.MessageQueue(queue_key)
        assert (mq.uid, mq.gid) == (4321, 4322)
    finally:
        for sink in sinks:
            sink.close()


def test_install_sinks_fails_as_a_whole(receiver):
    bus = EventBus()
    with pytest.raises(ValueError):
        install_sinks(bus, [f"udp:127.0.0.1:{receiver.getsockname()[1]}", "udp:bad"])
    assert bus.names() == []
