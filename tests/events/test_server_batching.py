"""End-to-end, the real ``ftpd``: the sinks send what a loop iteration produced at its end,
before the loop waits again; so a message is out before the next reply, every session's
messages arrive in order, and what is emitted as the server stops still goes."""

from __future__ import annotations

import os
import signal

import pytest
from ftpsupport import RawControl, wait_until

from ftpd.events.ncftpd import decode

from .test_server_events import (  # noqa: F401  (ftpd and udp are fixtures)
    HOST,
    PASSWORD,
    USER,
    Expect,
    ftpd,
    logout,
    named,
    queue_take,
    udp,
)


def test_the_login_message_is_out_before_the_next_reply(ftpd, udp):  # noqa: F811
    server = ftpd(*named(udp.spec))
    with RawControl(HOST, server.port) as c:
        c.login(USER, PASSWORD)
        c.expect("NOOP", 200)  # a later iteration: the login's was sent at its end
        udp.sock.setblocking(False)
        first = udp.sock.recv(65536)  # no wait: a loopback datagram is there at once
        c.expect("QUIT", 221)
    udp.sock.settimeout(5)
    Expect(server.pid, server.started).check(first, b"I")


def test_every_message_of_many_sessions_arrives_in_session_order(ftpd, udp):  # noqa: F811
    server = ftpd(*named(udp.spec))
    clients = [RawControl(HOST, server.port) for _ in range(30)]
    try:
        for c in clients:  # interleaved: logins of all, then all QUIT
            c.send_line(f"USER {USER}")
        for c in clients:
            assert c.reply()[0] == 331
            c.send_line(f"PASS {PASSWORD}")
        for c in clients:
            assert c.reply()[0] == 230
            c.send_line("QUIT")
        for c in clients:
            assert c.reply()[0] == 221
    finally:
        for c in clients:
            c.close()
    msgs = udp.take(2 * len(clients))
    udp.nothing_more(server)
    by_session: dict[bytes, list[bytes]] = {}
    for msg in msgs:
        ex = Expect(server.pid, server.started)
        letter = msg[8:9]
        if letter == b"I":
            toks = ex.check(msg, b"I")
        else:
            toks = ex.check(msg, b"O", *logout(0, 0, 0, 0, b"QUIT"))
        by_session.setdefault(toks[5], []).append(letter)
    assert len(by_session) == len(clients)
    assert all(letters == [b"I", b"O"] for letters in by_session.values()), by_session


@pytest.mark.parametrize("kind", ["udp", "mqueue"])
def test_messages_emitted_as_the_server_stops_are_sent(ftpd, udp, queue_key, kind):  # noqa: F811
    """SIGTERM: every idle session gets 421 and its logout (SHUTDOWN) at once, the last
    ones as the loop ends: none is left in the queue."""
    import sysv_ipc

    spec = udp.spec if kind == "udp" else f"mqueue:{queue_key:#x}"
    server = ftpd(*named(spec))
    clients = [RawControl(HOST, server.port) for _ in range(20)]
    try:
        for c in clients:
            c.login(USER, PASSWORD)
        os.kill(server.pid, signal.SIGTERM)
        for c in clients:
            assert c.reply()[0] == 421
        wait_until(lambda: server.proc.poll() is not None, "ftpd to exit")
    finally:
        for c in clients:
            c.close()
    if kind == "udp":
        msgs = udp.take(2 * len(clients))
    else:
        msgs = [m[:-1] for m, _ in queue_take(sysv_ipc.MessageQueue(queue_key), 2 * len(clients))]
    names = [decode(m).name for m in msgs]
    assert names == ["login"] * len(clients) + ["logout"] * len(clients)
    for msg in msgs[len(clients):]:
        Expect(server.pid, server.started).check(msg, b"O", *logout(0, 0, 0, 0, b"SHUTDOWN"))
