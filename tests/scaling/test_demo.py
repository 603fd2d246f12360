"""The several-hosts demonstration (issue 12, docs/SCALING.md): SeaweedFS, Redis,
HAProxy with the shipped ``contrib/haproxy/ftpd.cfg`` and three ftpd on 127.0.0.2-4
sharing one ``s3://`` root (``cluster.py``). The tests run in this order on one cluster:

1. a dozen sessions through the balancer upload on one host and download byte for byte
   on another; every server id appears in the Redis stream;
2. Redis stopped (SIGSTOP) slows no session: they keep getting replies; after SIGCONT the
   events sent meanwhile arrive;
3. ``ftpd-eventd`` killed mid-handling: another consumer of the group handles its events;
4. SIGTERM to a host mid-STOR: nothing committed is lost, no partial object or pending
   upload is left, and new sessions go to the other hosts."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sys
import textwrap
import threading

import pytest
from cluster import HAPROXY, HOSTS, PREFIX, STREAM, Cluster
from ftpsupport import DEADLINE, can_bind, sha256, wait_until
from s3support import weed_binary

pytestmark = pytest.mark.skipif(
    not os.access(HAPROXY, os.X_OK) or not all(can_bind(h) for h in HOSTS)
    or weed_binary() is None or not os.access("/usr/bin/redis-server", os.X_OK),
    reason="needs haproxy, redis-server, weed and the 127.0.0.2-4 loopback addresses")

SIZES = [150_000 + 7919 * i for i in range(11)] + [6 * 1024 * 1024 + 1]  # one multipart


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(tmp_path_factory.mktemp("demo"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def entries(cluster: Cluster) -> list[dict[bytes, bytes]]:
    client = cluster.redis.client()
    try:
        return [fields for _, fields in client.entries(STREAM)]
    finally:
        client.close()


def uploads_in_stream(cluster: Cluster) -> set[str]:
    """Paths of the ``S ... OK`` upload events in the stream (token 7 is the path)."""
    found = set()
    for fields in entries(cluster):
        tokens = fields[b"frame"].split(b"\n")[2:]  # after "STR" and the length
        if tokens[0] == b"S" and tokens[10] == b"OK":
            found.add(tokens[6].decode())
    return found


def test_upload_on_one_host_download_on_another(cluster):
    sessions = [cluster.session() for _ in SIZES]  # kept open: leastconn spreads them
    try:
        hosts = [cluster.host_of(ftp) for ftp in sessions]
        assert set(hosts) == {0, 1, 2}, hosts
        payloads = {f"f{i}.bin": os.urandom(size) for i, size in enumerate(SIZES)}
        for ftp, (name, data) in zip(sessions, payloads.items(), strict=True):
            assert ftp.storbinary(f"STOR {name}", io.BytesIO(data)).startswith("226")
        for i, (name, data) in enumerate(payloads.items()):
            # a session of another host than the uploader's
            reader = next(s for s, h in zip(sessions, hosts, strict=True) if h != hosts[i])
            got = bytearray()
            reader.retrbinary(f"RETR {name}", got.extend)
            assert sha256(bytes(got)) == sha256(data), name
    finally:
        for ftp in sessions:
            ftp.quit()
    keys = set(cluster.seaweed.keys(f"{PREFIX}/"))
    assert {f"{PREFIX}/{name}" for name in payloads} <= keys
    wait_until(lambda: {f"/{n}" for n in payloads} <= uploads_in_stream(cluster),
               "every upload event in the stream")
    servers = {fields[b"server"] for fields in entries(cluster)}
    assert servers == {b"ftpd1", b"ftpd2", b"ftpd3"}


def test_redis_stopped_slows_no_session_and_events_flow_after(cluster):
    os.kill(cluster.redis.proc.pid, signal.SIGSTOP)
    try:
        names = []
        for i in range(6):  # each session's every command is answered while it is down
            ftp = cluster.session()
            name = f"paused{i}.txt"
            assert ftp.storbinary(f"STOR {name}", io.BytesIO(b"x" * 1000)).startswith("226")
            assert name in ftp.nlst()
            assert ftp.voidcmd("NOOP").startswith("200")
            ftp.quit()
            names.append(name)
    finally:
        os.kill(cluster.redis.proc.pid, signal.SIGCONT)
    ftp = cluster.session()
    ftp.storbinary("STOR after.txt", io.BytesIO(b"after"))
    ftp.quit()
    wait_until(lambda: {f"/{n}" for n in [*names, "after.txt"]} <= uploads_in_stream(cluster),
               "the events of the pause and after it in the stream", timeout=3 * DEADLINE)


BLOCKING_HOOK = """
    import os, sys, time
    with open(os.path.join(sys.argv[1], f"started-{os.getpid()}"), "w") as f:
        f.write(os.environ.get("FTPD_PATH", "-"))
    deadline = time.monotonic() + 60  # killed by the test long before
    while time.monotonic() < deadline:
        time.sleep(0.05)
"""

RECORDER = """
    import os

    class Recorder:
        def on_event(self, ev):
            with open(os.environ["RECORD"], "a") as f:
                f.write(f"{ev.server} {ev.name} {getattr(ev, 'path', '-')}\\n")
"""


def eventd(cluster: Cluster, name: str, *args: str):
    from events.conftest import Eventd

    daemon = Eventd(["--redis", f"{cluster.redis.url}/{STREAM}", "--group", "demo",
                     "--consumer", name, "-v", *args], cwd=cluster.workdir,
                    env={"RECORD": str(cluster.workdir / "record.txt"),
                         "PYTHONPATH": str(cluster.workdir)})
    daemon.wait_for(rf"group demo as {name}$")
    return daemon


def test_killed_eventd_has_its_events_handled_by_another(cluster):
    hook = cluster.workdir / "block.py"
    hook.write_text(textwrap.dedent(BLOCKING_HOOK))
    (cluster.workdir / "recorder.py").write_text(textwrap.dedent(RECORDER))
    out = cluster.workdir / "hooks"
    out.mkdir()
    a = eventd(cluster, "a", "--exec", f"{sys.executable} {hook} {out}", "--workers", "1")
    b = None
    try:
        started = wait_until(lambda: list(out.glob("started-*")), "consumer a running a hook")
        path = started[0].read_text()
        a.proc.send_signal(signal.SIGKILL)  # read, not acknowledged: a crash
        a.proc.wait(DEADLINE)
        for f in out.glob("started-*"):  # its hooks (one may have ended already)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(f.name.split("-")[1]), signal.SIGKILL)
        record = cluster.workdir / "record.txt"
        b = eventd(cluster, "b", "--handler", "recorder:Recorder", "--claim-idle", "1")
        wait_until(lambda: record.exists() and any(line.endswith(f" {path}") for line
                                                   in record.read_text().splitlines()),
                   f"consumer b handling {path}, which a had read", timeout=2 * DEADLINE)
        b.wait_for(r"claimed \d+ idle entries")
        total = len(entries(cluster))
        wait_until(lambda: len(record.read_text().splitlines()) >= total,
                   "every event of the stream handled by b")
    finally:
        a.kill()
        if b is not None:
            assert b.terminate() == 0


def test_sigterm_mid_stor_loses_nothing_and_new_sessions_go_elsewhere(cluster):
    ftp = cluster.session()
    victim = cluster.host_of(ftp)
    committed = os.urandom(300_000)
    ftp.storbinary("STOR committed.bin", io.BytesIO(committed))
    big = os.urandom(12 * 1024 * 1024)
    ftp.sendcmd("PASV")  # ftplib's transfercmd, split so the upload can be cut in two
    data = ftp.transfercmd("STOR cut.bin")
    half = len(big) // 2
    data.sendall(big[:half])
    cluster.hosts[victim].proc.send_signal(signal.SIGTERM)
    rest = threading.Thread(target=lambda: (data.sendall(big[half:]),
                                            data.shutdown(socket.SHUT_WR)))
    rest.start()
    rest.join(3 * DEADLINE)
    data.close()
    try:
        reply = ftp.voidresp()
    except Exception as exc:  # the drain may end the transfer: then nothing is left
        reply = str(exc)
    cluster.hosts[victim].proc.wait(3 * DEADLINE)
    keys = cluster.seaweed.keys(f"{PREFIX}/")
    if reply.startswith("226"):
        status, body = cluster.seaweed.request("GET", key=f"{PREFIX}/cut.bin")
        assert status == 200 and sha256(body) == sha256(big)
    else:
        assert f"{PREFIX}/cut.bin" not in keys, reply
    assert cluster.seaweed.pending_uploads() == []
    status, body = cluster.seaweed.request("GET", key=f"{PREFIX}/committed.bin")
    assert status == 200 and body == committed
    wait_until(lambda: f"ftp_control/ftpd{victim + 1} is DOWN" in
               cluster.haproxy_log.read_text(), "haproxy noticing the stopped host",
               timeout=3 * DEADLINE)
    for _ in range(4):
        other = cluster.session()
        assert cluster.host_of(other) != victim
        got = bytearray()
        other.retrbinary("RETR committed.bin", got.extend)
        assert bytes(got) == committed
        other.quit()
