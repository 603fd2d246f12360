"""``ftpd-eventd --redis URL --group NAME`` against a private redis-server: the stream and
group are created when absent and a new group starts at the beginning; every entry is
handled once by one consumer of the group and acknowledged only after its handler or --exec
command succeeded; a consumer killed between reading and acknowledging has its entries
claimed by another after --claim-idle; a failed --exec is retried. Entries are added, and
the group inspected, with the test's own RESP client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, wait_until

from ftpd.events.ncftpd import encode

from .conftest import upload
from .redisserver import RedisServer, running_redis
from .test_server_events import ftpd as server_events_ftpd  # noqa: F401 (a fixture)
from .test_server_events import named, store

STREAM = "events"

RECORDER = """
    import os

    class Recorder:
        def on_event(self, ev):
            with open(os.environ["RECORD"], "a") as f:
                path = getattr(ev, "path", "-")
                f.write(f"{os.environ['CONSUMER']} {ev.server} {ev.name} {path}\\n")
"""

BLOCKING_HOOK = """
    import os, sys, time
    out = sys.argv[1]
    with open(os.path.join(out, "started"), "w") as f:
        f.write(f"{os.getpid()} {os.environ['FTPD_PATH']}")
    deadline = time.monotonic() + 60  # killed by the test long before
    while time.monotonic() < deadline:
        time.sleep(0.05)
"""

FLAKY_HOOK = """
    import os, sys
    out = sys.argv[1]
    with open(os.path.join(out, "attempts"), "a") as f:
        f.write(f"{os.environ['FTPD_PATH']} {os.environ['FTPD_SERVER']}\\n")
    ok = os.path.join(out, "ok")
    if not os.path.exists(ok):
        open(ok, "w").close()
        sys.exit(3)
"""


@pytest.fixture
def ftpd(request):
    """test_server_events's ``ftpd``: start servers with ``ftpd(*args)``, stopped by pid."""
    return request.getfixturevalue("server_events_ftpd")


@pytest.fixture
def redis_server(tmp_path):
    yield from running_redis(tmp_path)


def add(redis: RedisServer, path: str, server: str = "web-1", stream: str = STREAM) -> bytes:
    """XADD one upload message the way the sink does."""
    frame = encode("fs.upload", upload(path=path))
    client = redis.client()
    try:
        return client("XADD", stream, "*", "frame", frame, "server", server, "type", "S")
    finally:
        client.close()


def pending(redis: RedisServer, group: str = "g") -> list:
    """XPENDING's summary: [count, smallest id, largest id, [[consumer, count], ...]]."""
    client = redis.client()
    try:
        return client("XPENDING", STREAM, group)
    finally:
        client.close()


def consumers(redis: RedisServer, group: str = "g") -> list[bytes]:
    client = redis.client()
    try:
        return [dict(zip(c[::2], c[1::2], strict=True))[b"name"]
                for c in client("XINFO", "CONSUMERS", STREAM, group)]
    finally:
        client.close()


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def recorder(tmp_path: Path) -> Path:
    (tmp_path / "recorder.py").write_text(textwrap.dedent(RECORDER))
    return tmp_path / "record.txt"


def consumer(eventd, redis: RedisServer, tmp_path: Path, name: str, *args: str,
             record: Path | None = None):
    daemon = eventd("--redis", f"{redis.url}/{STREAM}", "--group", "g", "--consumer", name,
                    "-v", *args, cwd=tmp_path,
                    env={"RECORD": str(record or tmp_path / "record.txt"), "CONSUMER": name})
    daemon.wait_for(rf"reading redis redis://127\.0\.0\.1:{redis.port}/{STREAM} group g "
                    rf"as {name}$")
    return daemon


def test_a_group_handles_each_event_once(eventd, redis_server, tmp_path):
    record = recorder(tmp_path)
    for i in range(6):  # before any receiver: no group yet; a new group starts at 0
        add(redis_server, f"/early{i}")
    a = consumer(eventd, redis_server, tmp_path, "a", "--handler", "recorder:Recorder")
    b = consumer(eventd, redis_server, tmp_path, "b", "--handler", "recorder:Recorder")
    for i in range(6):
        add(redis_server, f"/late{i}", server="web-2")
    wait_until(lambda: len(lines(record)) >= 12, "12 events handled")
    assert a.terminate() == 0 and b.terminate() == 0  # acks still queued are sent first
    assert pending(redis_server)[0] == 0
    got = lines(record)
    paths = sorted(line.split()[3] for line in got)
    assert paths == sorted([f"/early{i}" for i in range(6)] + [f"/late{i}" for i in range(6)])
    for line in got:
        who, server, name, path = line.split()
        assert who in ("a", "b") and name == "upload"
        assert server == ("web-1" if path.startswith("/early") else "web-2"), line


def test_from_two_servers_through_redis_to_one_handler(eventd, ftpd, redis_server, tmp_path):
    record = recorder(tmp_path)
    consumer(eventd, redis_server, tmp_path, "h", "--handler", "recorder:Recorder")
    sink = f"{redis_server.url}/{STREAM}"
    for server_id in ("ftp1", "ftp2"):
        server = ftpd(*named(sink, "--server-id", server_id))
        client = server.ftp()
        store(client, f"{server_id}.txt", b"data")
        client.quit()
    # per server: login (on_event: no path), upload, logout
    wait_until(lambda: len(lines(record)) == 6, "six events handled")
    uploads = [line for line in lines(record) if " upload " in line]
    assert uploads == ["h ftp1 upload /ftp1.txt", "h ftp2 upload /ftp2.txt"]


def test_stream_and_group_are_created_when_absent(eventd, redis_server, tmp_path):
    record = recorder(tmp_path)
    consumer(eventd, redis_server, tmp_path, "solo", "--handler", "recorder:Recorder")
    client = redis_server.client()
    try:
        groups = client("XINFO", "GROUPS", STREAM)
    finally:
        client.close()
    info = dict(zip(groups[0][::2], groups[0][1::2], strict=True))
    assert info[b"name"] == b"g" and info[b"last-delivered-id"] == b"0-0", info
    add(redis_server, "/first")
    wait_until(lambda: lines(record) == ["solo web-1 upload /first"], "the event handled")


def test_a_killed_consumers_entries_are_claimed_by_another(eventd, redis_server, tmp_path):
    hook = tmp_path / "block.py"
    hook.write_text(textwrap.dedent(BLOCKING_HOOK))
    out = tmp_path / "out"
    out.mkdir()
    a = consumer(eventd, redis_server, tmp_path, "a", "--exec",
                 f"{sys.executable} {hook} {out}")
    add(redis_server, "/claimed")
    started = wait_until(lambda: (out / "started").exists() and (out / "started").read_text(),
                         "consumer a running the hook")
    hook_pid, path = started.split()
    assert path == "/claimed"
    a.proc.send_signal(signal.SIGKILL)  # read, not acknowledged: a crash
    a.proc.wait(DEADLINE)
    os.kill(int(hook_pid), signal.SIGKILL)
    assert pending(redis_server)[0] == 1 and pending(redis_server)[3] == [[b"a", b"1"]]

    record = recorder(tmp_path)
    b = consumer(eventd, redis_server, tmp_path, "b", "--handler", "recorder:Recorder",
                 "--claim-idle", "1")
    wait_until(lambda: lines(record), "consumer b handling the claimed entry")
    wait_until(lambda: pending(redis_server)[0] == 0, "the entry acknowledged by b")
    assert lines(record) == ["b web-1 upload /claimed"]
    b.wait_for(r"claimed 1 idle entries")
    # a, holding nothing now and reading no more, is removed from the group
    b.wait_for(r"removed consumer a \(gone, nothing pending\)")
    assert consumers(redis_server) == [b"b"]
    assert b.terminate() == 0


def test_a_failed_exec_is_not_acknowledged_and_is_retried(eventd, redis_server, tmp_path):
    hook = tmp_path / "flaky.py"
    hook.write_text(textwrap.dedent(FLAKY_HOOK))
    out = tmp_path / "out"
    out.mkdir()
    daemon = consumer(eventd, redis_server, tmp_path, "c", "--exec",
                      f"{sys.executable} {hook} {out}", "--claim-idle", "1")
    add(redis_server, "/retry", server="web-9")
    daemon.wait_for(r"--exec \S+: exit status 3 on upload event")
    daemon.wait_for(r"not acknowledged; handled again after --claim-idle")
    wait_until(lambda: len(lines(out / "attempts")) >= 2, "the second attempt")
    wait_until(lambda: pending(redis_server)[0] == 0, "acknowledged after it succeeded")
    assert lines(out / "attempts") == ["/retry web-9", "/retry web-9"]
    assert daemon.terminate() == 0


def test_malformed_entries_are_logged_and_acknowledged(eventd, redis_server, tmp_path):
    record = recorder(tmp_path)
    client = redis_server.client()
    try:
        client("XADD", STREAM, "*", "frame", b"STR\n  9\nnot this", "server", "x", "type", "?")
        client("XADD", STREAM, "*", "something", "else")
    finally:
        client.close()
    daemon = consumer(eventd, redis_server, tmp_path, "m", "--handler", "recorder:Recorder")
    add(redis_server, "/good")
    wait_until(lambda: lines(record) == ["m web-1 upload /good"], "the good event")
    daemon.wait_for(r"malformed message skipped", count=2)
    wait_until(lambda: pending(redis_server)[0] == 0, "all three acknowledged")


def test_consumer_survives_a_redis_restart(eventd, redis_server, tmp_path):
    record = recorder(tmp_path)
    daemon = consumer(eventd, redis_server, tmp_path, "r", "--handler", "recorder:Recorder")
    add(redis_server, "/before")
    wait_until(lambda: lines(record) == ["r web-1 upload /before"], "the first event")
    redis_server.stop()
    daemon.wait_for(r"retrying$")
    redis_server.start()  # empty: the consumer creates the group again
    add(redis_server, "/after")
    wait_until(lambda: len(lines(record)) == 2, "the event after the restart")
    assert lines(record)[1] == "r web-1 upload /after"
    daemon.wait_for(r"reading again")
    assert daemon.terminate() == 0


@pytest.mark.parametrize("args, words", [
    (["--redis", "redis://127.0.0.1:1/s"], "--redis needs --group NAME"),
    (["-p", "0", "--group", "g"], "--group: only with --redis"),
    (["-p", "0", "--claim-idle", "5"], "--claim-idle: only with --redis"),
    (["-k", "5", "--consumer", "c"], "--consumer: only with --redis"),
    (["--redis", "redis://127.0.0.1:1"], "argument --redis: 'redis://127.0.0.1:1': no stream"),
    (["--redis", "redis://127.0.0.1:1/s", "--group", "g", "--claim-idle", "0"],
     "argument --claim-idle: not a positive number of seconds: '0'"),
    (["--redis", "redis://127.0.0.1:1/s", "--group", "two words"], "argument --group"),
    (["-p", "0", "--redis", "redis://127.0.0.1:1/s"], "not allowed with argument"),
])
def test_bad_redis_flags_are_one_line_exit_2(args, words):
    done = subprocess.run([sys.executable, "-m", "ftpd.events.eventd", *args],
                          capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr


def test_unreachable_redis_is_one_line_exit_1(redis_server):
    port = redis_server.port
    redis_server.stop()
    done = subprocess.run([sys.executable, "-m", "ftpd.events.eventd", "--redis",
                           f"redis://127.0.0.1:{port}/s", "--group", "g"],
                          capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 1, done
    assert done.stderr == (f"ftpd-eventd: redis redis://127.0.0.1:{port}/s: "
                           "Connection refused\n"), done.stderr
