"""``--event-sink redis://HOST:PORT/STREAM`` (SPEC §9): the real ftpd appends each message to
a stream of a private redis-server, the fields ``frame``, ``server`` and ``type`` byte for
byte; sessions keep their pace while Redis is paused or gone; what the queue cannot hold is
dropped, counted and logged; after Redis comes back on the same port, events flow again.

Frames are checked against EVENTS.md with the helpers of test_server_events (rebuilt there
independently of ftpd's encoder); the stream is read with the test's own RESP client."""

from __future__ import annotations

import ftplib
import logging
import re
import socket
import subprocess
import sys
import time

import pytest
from ftpsupport import DEADLINE, RawControl, read_text, stop_pid, wait_until

from ftpd.config import ConfigError, resolve
from ftpd.events.ncftpd import encode
from ftpd.events.redis import RedisSink
from ftpd.events.redisurl import parse_url
from ftpd.io.loop import EventLoop

from .conftest import upload
from .redisserver import RedisServer, running_redis
from .test_server_events import (
    HOST,
    PASSWORD,
    USER,
    Expect,
    logout,
    named,
    reload,
    store,
    transfer,
)
from .test_server_events import ftpd as server_events_ftpd  # noqa: F401 (a fixture)

STREAM = "ftpd-events"


@pytest.fixture
def ftpd(request):
    """test_server_events's ``ftpd``: start servers with ``ftpd(*args)``, stopped by pid."""
    return request.getfixturevalue("server_events_ftpd")


@pytest.fixture
def redis_server(tmp_path):
    yield from running_redis(tmp_path)


def entries(redis: RedisServer, stream: str = STREAM) -> list:
    client = redis.client()
    try:
        return client.entries(stream)
    finally:
        client.close()


def wait_entries(redis: RedisServer, count: int, stream: str = STREAM) -> list:
    return wait_until(lambda: (lambda found: found if len(found) >= count else None)(
        entries(redis, stream)), f"{count} entries in {stream}")


def check_entry(entry, server_id: bytes, ex: Expect, letter: bytes, *rest) -> None:
    """An entry's fields are exactly frame, server, type, in that order."""
    _entry_id, fields = entry
    assert list(fields) == [b"frame", b"server", b"type"], fields
    assert fields[b"server"] == server_id and fields[b"type"] == letter, fields
    ex.check(fields[b"frame"], letter, *rest)


# -- the stream entries ----------------------------------------------------------------------

def test_events_arrive_in_the_stream_byte_exact(ftpd, redis_server):
    sink = f"{redis_server.url}/{STREAM}"
    server = ftpd(*named(sink, "--server-id", "web-1"))
    client = server.ftp()
    client.mkd("incoming")
    store(client, "incoming/a.txt", b"x" * 100)
    client.quit()
    found = wait_entries(redis_server, 4)
    assert len(found) == 4
    ex = Expect(server.pid, server.started, server_id="web-1")
    check_entry(found[0], b"web-1", ex, b"I")
    check_entry(found[1], b"web-1", ex, b"M", b"/incoming")
    check_entry(found[2], b"web-1", ex, b"S", *transfer(b"/incoming/a.txt", 100))
    check_entry(found[3], b"web-1", ex, b"O", *logout(0, 0, 1, 100, b"QUIT"))
    # the server id is in the log too: a column after the time
    assert re.search(rf"^\S+ \S+ web-1 ftpd\[{server.pid}\] INFO listening on ",
                     server.log(), re.M), server.log()


def stream_info(redis: RedisServer) -> dict:
    client = redis.client()
    try:
        info = client("XINFO", "STREAM", STREAM)
    except RuntimeError:  # no such key yet
        return {}
    finally:
        client.close()
    return dict(zip(info[::2], info[1::2], strict=True))


def test_maxlen_trims_the_stream_approximately(ftpd, redis_server):
    server = ftpd(*named(f"{redis_server.url}/{STREAM}?maxlen=1"))
    for _ in range(60):  # 120 messages: Redis trims whole nodes of 100 entries
        server.ftp().quit()
    info = wait_until(lambda: (lambda i: i if i.get(b"entries-added") == 120 else None)(
        stream_info(redis_server)), "120 entries added")
    assert info[b"length"] < 120, info


def test_default_server_id_is_the_host_name(ftpd, redis_server):
    server = ftpd(*named(f"{redis_server.url}/{STREAM}"))
    server.ftp().quit()
    found = wait_entries(redis_server, 2)
    host = socket.gethostname().encode()
    ex = Expect(server.pid, server.started)
    check_entry(found[0], host, ex, b"I")
    check_entry(found[1], host, ex, b"O", *logout(0, 0, 0, 0, b"QUIT"))


def test_an_error_reply_is_a_counted_drop(ftpd, redis_server):
    client = redis_server.client()
    client("SET", STREAM, "not a stream")
    client.close()
    server = ftpd(*named(f"{redis_server.url}/{STREAM}"))
    server.ftp().quit()
    wait_until(lambda: "WRONGTYPE" in server.log(), "the refused XADD logged")
    assert re.search(r"dropped 1 message\(s\) \(1 in all\): Redis refused XADD: WRONGTYPE",
                     server.log()), server.log()
    assert server.stop() == 0
    assert "dropped 1 message(s) (2 in all): Redis refused XADD: WRONGTYPE" in server.log()


def test_sighup_replaces_the_sink_and_the_new_one_sends(ftpd, redis_server):
    server = ftpd(*named(f"{redis_server.url}/{STREAM}", "--server-id", "hup-1"))
    client = server.ftp()
    reload(server)
    reload(server)
    store(client, "after.txt", b"x")
    client.quit()
    found = wait_entries(redis_server, 3)
    ex = Expect(server.pid, server.started, server_id="hup-1")
    check_entry(found[0], b"hup-1", ex, b"I")
    check_entry(found[1], b"hup-1", ex, b"S", *transfer(b"/after.txt", 1))
    check_entry(found[2], b"hup-1", ex, b"O", *logout(0, 0, 1, 1, b"QUIT"))
    assert server.stop() == 0
    assert len(entries(redis_server)) == 3  # each message once: old sinks are closed
    assert "dropped" not in server.log(), server.log()


# -- Redis paused, gone, back ----------------------------------------------------------------

def session_of(entry) -> bytes:
    return entry[1][b"frame"].split(b"\n")[7]


def login_logout(port: int) -> None:
    """One whole session (two messages), every reply awaited with the tests' deadline."""
    with RawControl(HOST, port) as ctl:
        ctl.expect(f"USER {USER}", 331)
        ctl.expect(f"PASS {PASSWORD}", 230)
        ctl.expect("NOOP", 200)
        ctl.expect("QUIT", 221)


def test_sessions_keep_their_pace_while_redis_is_away(ftpd, redis_server):
    server = ftpd(*named(f"{redis_server.url}/{STREAM}?queue=4"))
    with RawControl(HOST, server.port) as long_lived:
        long_lived.expect(f"USER {USER}", 331)
        long_lived.expect(f"PASS {PASSWORD}", 230)
        first_session = session_of(wait_entries(redis_server, 1)[0])

        # paused: Redis's kernel still accepts bytes, Redis never answers; a client that
        # waited for a reply would hang every session here, ours must not
        redis_server.pause()
        for _ in range(5):  # 10 messages: the queue holds 4
            login_logout(server.port)
            long_lived.expect("NOOP", 200)
        wait_until(lambda: "dropped" in server.log(), "the first drop logged")
        assert re.search(r"dropped 1 message\(s\) \(1 in all\): queue full \(4 messages\)",
                         server.log()), server.log()

        # gone: connections are refused while we go on
        redis_server.stop()
        for _ in range(3):  # 6 more messages, all dropped
            login_logout(server.port)
            long_lived.expect("NOOP", 200)
        wait_until(lambda: "retrying" in server.log(), "the lost connection logged")

        # back on the same port (empty: no persistence): the sink reconnects by itself and
        # delivers what it had queued (the first paused sessions' messages, in order)
        redis_server.start()
        wait_until(lambda: "Redis answers again" in server.log(), "the reconnection")
        delivered = entries(redis_server)
        # (the first login's message comes again only if its reply was still on its way
        # when Redis was paused: it then also held one of the queue's four places)
        queued = [e for e in delivered if session_of(e) != first_session]
        assert [e[1][b"type"] for e in queued] in ([b"I", b"O", b"I", b"O"],
                                                   [b"I", b"O", b"I"]), delivered
        login_logout(server.port)
        found = wait_entries(redis_server, len(delivered) + 2)
        long_lived.expect("NOOP", 200)
    new = found[len(delivered):]
    assert [e[1][b"type"] for e in new] == [b"I", b"O"], found
    assert session_of(new[0]) == session_of(new[1])
    assert all(session_of(new[0]) != session_of(e) for e in delivered)
    assert server.stop() == 0
    # every message of the paused and gone phases was either delivered later or dropped
    totals = re.findall(r"dropped \d+ message\(s\) \((\d+) in all\)", server.log())
    assert int(totals[-1]) + len(queued) == 16, server.log()


def test_redis_sink_under_inetd_nowait(tmp_path, redis_server):
    """inetd no-wait: the process ends with its session, its logout message queued just
    before the loop stops; it still reaches Redis."""
    root = tmp_path / "root"
    root.mkdir()
    log_path = tmp_path / "inetd.log"
    with socket.create_server((HOST, 0)) as listener:
        client_sock = socket.create_connection(listener.getsockname(), timeout=DEADLINE)
        conn, _ = listener.accept()
    started = time.time()
    with conn:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ftpd", "-I", "-r", str(root), "--log", str(log_path),
             *named(f"{redis_server.url}/{STREAM}", "--server-id", "inetd-1")],
            stdin=conn, stdout=conn, stderr=conn, close_fds=True)
    try:
        client = ftplib.FTP(timeout=DEADLINE)
        client.sock, client.af, client.host = client_sock, client_sock.family, HOST
        client.file = client_sock.makefile("r", encoding=client.encoding)
        assert client.getresp().startswith("220")
        client.login(USER, PASSWORD)
        client.quit()
        assert proc.wait(DEADLINE) == 0, read_text(log_path)
        client.close()
        found = entries(redis_server)  # the process has exited: all there is, is there
        ex = Expect(proc.pid, started, server_id="inetd-1")
        assert len(found) == 2, found
        check_entry(found[0], b"inetd-1", ex, b"I")
        check_entry(found[1], b"inetd-1", ex, b"O", *logout(0, 0, 0, 0, b"QUIT"))
    finally:
        stop_pid(proc)
        client_sock.close()


# -- the sink on a loop of the test's own ----------------------------------------------------

def unit_sink(redis: RedisServer, **query: int) -> RedisSink:
    url = parse_url(f"{redis.url}/{STREAM}" + "".join(
        f"{'?' if i == 0 else '&'}{k}={v}" for i, (k, v) in enumerate(query.items())))
    return RedisSink(url, "unit")


def test_close_after_the_loop_sends_what_is_still_queued(redis_server):
    frames = [encode("fs.upload", upload(path=f"/f{i}")) for i in range(3)]
    loop = EventLoop()
    try:
        sink = unit_sink(redis_server)
        sink.start(loop)  # connecting; the loop never runs, so nothing is written yet
        assert all(sink.send(frame) for frame in frames)
        assert sink.queued == 3 and entries(redis_server) == []
        sink.close()  # as at exit: the loop has ended
    finally:
        loop.close()
    assert [e[1][b"frame"] for e in entries(redis_server)] == frames
    assert (sink.sent, sink.dropped) == (3, 0)


def test_close_with_redis_gone_counts_the_rest_as_dropped(redis_server, caplog):
    redis_server.stop()
    loop = EventLoop()
    try:
        sink = unit_sink(redis_server, queue=2)
        sink.start(loop)
        results = [sink.send(encode("fs.upload", upload(path=f"/f{i}"))) for i in range(3)]
        with caplog.at_level(logging.WARNING, "ftpd.events"):
            sink.close()
    finally:
        loop.close()
    assert results == [True, True, False]
    assert (sink.sent, sink.dropped) == (0, 3)
    assert "dropped 2 message(s) (3 in all): not delivered before the sink closed" \
        in caplog.text, caplog.text
    assert not sink.send(b"STR\n  2\nX\n")  # closed: counted, never raised
    assert sink.dropped == 4


# -- the URL ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, words", [
    ("redis://", "no stream"),
    ("redis://127.0.0.1:6379", "no stream"),
    ("redis://127.0.0.1:6379/", "bad stream name"),
    ("redis://127.0.0.1:0/s", "bad port"),
    ("redis://127.0.0.1:http/s", "bad port"),
    ("redis://::1:6379/s", "write an IPv6 address as [::1:6379]"),
    ("redis://[::1/s", "bad IPv6 address"),
    ("redis://:6379/s", "no host"),
    ("redis://u:pw@127.0.0.1/s", "passwords are not supported"),
    ("redis://127.0.0.1/s?maxlen=0", "maxlen must be a positive number"),
    ("redis://127.0.0.1/s?queue=x", "queue must be a positive number"),
    ("redis://127.0.0.1/s?count=3", "unknown option 'count=3'"),
    ("redis:127.0.0.1/s", "expected redis://HOST:PORT/STREAM"),
])
def test_bad_redis_sink_is_one_line_exit_2(tmp_path, spec, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        resolve({"event_sink": (spec,)}, str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "ftpd", "-r", str(tmp_path),
                           "--event-sink", spec], capture_output=True, text=True,
                          timeout=DEADLINE)
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
    assert done.stderr.startswith("ftpd: error: --event-sink "), done.stderr


def test_good_redis_sinks_resolve(tmp_path):
    for spec in ("redis://127.0.0.1:6379/s", "redis://localhost/s?maxlen=5&queue=2",
                 "redis://[::1]:7000/a:b/c"):
        assert resolve({"event_sink": (spec,)}, str(tmp_path)).event_sink == [spec]


def test_unresolvable_redis_host_is_a_startup_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ftpd", "-r", str(tmp_path), "-l",
                           "127.0.0.1:0", "--event-sink", "redis://no-such-host.invalid/s"],
                          capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 1, done
    assert "cannot resolve 'no-such-host.invalid'" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("value", ["", "two words", "x" * 65, "tab\there"])
def test_bad_server_id_is_one_line_exit_2(tmp_path, value):
    done = subprocess.run([sys.executable, "-m", "ftpd", "-r", str(tmp_path),
                           "--server-id", value], capture_output=True, text=True,
                          timeout=DEADLINE)
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "--server-id" in done.stderr, done.stderr
