"""The UDP and queue sinks on a running loop: what one iteration produces is queued and
sent at its end, in order and byte for byte, with sendmmsg or (without it) sendto each;
close sends what is queued; failures are dropped and counted one by one as before."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from ftpd.core import events as core
from ftpd.events import mmsg
from ftpd.events.bus import EventBus
from ftpd.events.ncftpd import encode
from ftpd.events.sinks import BATCH_LIMIT, MqueueSink, UdpSink
from ftpd.io.loop import EventLoop

from .conftest import upload

T = 1764079260.0


def sessions(count: int) -> list[tuple[str, object]]:
    """Login, an upload and logout for each of *count* sessions, one after the other."""
    events: list[tuple[str, object]] = []
    for i in range(count):
        info = core.SessionInfo(f"aSW2YAAq{i:03d}A", f"192.0.2.{i % 250}", f"user{i}")
        events += [("session.login", core.LoginEvent(info, T)),
                   ("fs.upload", upload(path=f"/in/{i}.bin", info=info)),
                   ("session.logout", core.LogoutEvent(info, T, 2.0, 0, 0, 1, 1048576, "QUIT"))]
    return events


def in_one_iteration(loop: EventLoop, work: Callable[[], None]) -> None:
    """Run *work* inside one loop iteration; the loop stops at that iteration's end."""
    def step() -> None:
        work()
        loop.stop()

    loop.call_soon(step)
    loop.run()


@pytest.fixture
def loop():
    loop = EventLoop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture(params=["sendmmsg", "sendto"])
def transport(request, monkeypatch):
    """Each test twice: with libc's sendmmsg, and as where there is none."""
    if request.param == "sendto":
        monkeypatch.setattr(mmsg, "open_sender", lambda sock, address: None)
    return request.param


def nothing_waiting(sock: socket.socket) -> bool:
    """No datagram has arrived (a loopback datagram is queued before sendto returns)."""
    sock.setblocking(False)
    try:
        sock.recv(65536)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(5)
    return False


def test_one_iteration_s_messages_go_at_its_end_in_order_byte_for_byte(
        loop, receiver, transport):
    events = sessions(70)  # 210 messages: more than BATCH_LIMIT, so some go early
    assert len(events) > 3 * BATCH_LIMIT
    bus = EventBus()
    sink = UdpSink("127.0.0.1", receiver.getsockname()[1])
    sink.attach(bus)
    sink.start(loop)
    seen_early: list[bool] = []

    def work() -> None:
        for name, data in events[:10]:
            bus.generate(name, data)
        seen_early.append(nothing_waiting(receiver))
        for name, data in events[10:]:
            bus.generate(name, data)

    try:
        in_one_iteration(loop, work)
        got = [receiver.recv(65536) for _ in events]
        assert nothing_waiting(receiver)
    finally:
        sink.close()
    assert seen_early == [True]  # queued until the iteration's end
    assert got == [encode(name, data) for name, data in events]
    assert (sink.sent, sink.dropped) == (len(events), 0)
    assert (sink._mmsg is False) == (transport == "sendto")


def test_close_sends_what_is_queued(loop, receiver, transport):
    events = sessions(4)
    bus = EventBus()
    sink = UdpSink("127.0.0.1", receiver.getsockname()[1])
    sink.attach(bus)
    sink.start(loop)

    def work() -> None:
        for name, data in events:
            bus.generate(name, data)
        sink.close()  # a reload, or the end: before the iteration is over
        bus.generate(*events[0])  # detached: not sent

    in_one_iteration(loop, work)
    assert [receiver.recv(65536) for _ in events] == [encode(n, d) for n, d in events]
    assert nothing_waiting(receiver)
    assert sink.sent == len(events)


def test_without_a_running_loop_each_message_goes_at_once(loop, receiver):
    bus = EventBus()
    sink = UdpSink("127.0.0.1", receiver.getsockname()[1])
    sink.attach(bus)
    sink.start(loop)  # handed over, but not running (after it ended, at shutdown)
    try:
        name, data = sessions(1)[0]
        bus.generate(name, data)
        assert receiver.recv(65536) == encode(name, data)
    finally:
        sink.close()


def test_every_message_of_a_batch_that_cannot_go_is_dropped_and_counted(loop, transport):
    bus = EventBus()
    sink = UdpSink("255.255.255.255", 9)  # no SO_BROADCAST: each send is refused (EACCES)
    sink.attach(bus)
    sink.start(loop)
    events = sessions(3)
    try:
        in_one_iteration(loop, lambda: [bus.generate(n, d) for n, d in events])
        assert (sink.sent, sink.dropped) == (0, len(events))
    finally:
        sink.close()


def test_the_queue_sink_sends_a_batch_in_order(loop, queue_key):
    sysv_ipc = pytest.importorskip("sysv_ipc")
    events = sessions(20)  # 60 messages, well within the default 16 KiB queue
    bus = EventBus()
    sink = MqueueSink(queue_key)
    sink.attach(bus)
    sink.start(loop)
    mq = sysv_ipc.MessageQueue(queue_key)
    seen_early: list[int] = []

    def work() -> None:
        for name, data in events:
            bus.generate(name, data)
        seen_early.append(mq.current_messages)

    try:
        in_one_iteration(loop, work)
        got = [mq.receive(block=False) for _ in events]
        assert mq.current_messages == 0
    finally:
        sink.close()
    assert seen_early == [0]
    assert got == [(encode(name, data) + b"\0", 1) for name, data in events]
    assert sink.sent == len(events)


def test_a_batch_over_ipv6(loop):
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with sock:
        sock.settimeout(5)
        events = sessions(3)
        bus = EventBus()
        sink = UdpSink("::1", sock.getsockname()[1])
        sink.attach(bus)
        sink.start(loop)
        try:
            in_one_iteration(loop, lambda: [bus.generate(n, d) for n, d in events])
            got = [sock.recv(65536) for _ in events]
        finally:
            sink.close()
        assert got == [encode(name, data) for name, data in events]
        assert sink._mmsg  # the sockaddr_in6 it built reached the socket
