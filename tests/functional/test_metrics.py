"""``--metrics ADDR``: the real ``ftpd`` serving FTP and Prometheus metrics, scraped with
curl and parsed by prometheus_client's own parser; start-up errors in one line; and
nothing of prometheus_client imported by an ordinary start."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fhelpers import LoopFTP, connect
from ftpsupport import (
    DEADLINE,
    FtpdProcess,
    free_port,
    has_ipv6_loopback,
    listens,
    netloc,
    start_ftpd,
    wait_until,
)

parser = pytest.importorskip("prometheus_client.parser")
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")

USER, PASSWORD = "user", "pw"
BIG = 48 << 20  # sparse: too big to vanish into socket buffers before ABOR
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class MetricsFtpd(FtpdProcess):
    """ftpd serving *root* to USER on one port and its metrics on *metrics_port*."""

    def __init__(self, args: list[str], *, root: Path, metrics_host: str, metrics_port: int,
                 **kw) -> None:
        super().__init__(args, **kw)
        self.root, self.metrics_host, self.metrics_port = root, metrics_host, metrics_port

    def ftp(self) -> ftplib.FTP:
        return connect(self.host, self.port, USER, PASSWORD)

    def scrape(self) -> Samples:
        """``curl -sS http://HOST:PORT/metrics``, parsed: (sample name, labels) -> value."""
        done = subprocess.run(["curl", "-sS", "-g", "--max-time", str(DEADLINE),
                               f"http://{netloc(self.metrics_host, self.metrics_port)}"
                               "/metrics"],
                              capture_output=True, text=True, timeout=DEADLINE * 2)
        assert done.returncode == 0, done.stderr
        samples: Samples = {}
        for family in parser.text_string_to_metric_families(done.stdout):
            for s in family.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
        return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def metrics_server(tmp_path: Path):
    servers: list[MetricsFtpd] = []

    def start(*args: str, metrics_host: str = "127.0.0.1") -> MetricsFtpd:
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)

        def spawn(ports: list[int], attempt: int) -> MetricsFtpd:
            return MetricsFtpd(
                ["-l", f"127.0.0.1:{ports[0]}", "-r", str(root), "-v", "-u", USER, "-P",
                 PASSWORD, "--failed-login-delay", "0", "--shutdown-timeout", "5",
                 "--metrics", netloc(metrics_host, ports[1]), *args],
                root=root, port=ports[0], metrics_host=metrics_host, metrics_port=ports[1],
                log_path=tmp_path / f"ftpd-{attempt}.log")

        server = start_ftpd(spawn, nports=2, probe=listens)  # no probe session to count
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.stop() == 0, server.log()
        assert "Traceback" not in server.log(), server.log()


def sessions_open(server: MetricsFtpd, n: int) -> Samples:
    """A scrape once ftpd_sessions_open is *n* (closing is asynchronous on the server)."""
    found: list[Samples] = []

    def check() -> bool:
        found[:] = [server.scrape()]
        return value(found[0], "ftpd_sessions_open") == n

    wait_until(check, f"ftpd_sessions_open == {n}")
    return found[0]


def test_scraped_counters_match_what_clients_did(metrics_server, tmp_path):
    xferlog = tmp_path / "xfer.log"  # says how many bytes the aborted download moved
    server = metrics_server("--xferlog", str(xferlog))
    payload, upload = os.urandom(70_001), os.urandom(123_457)
    (server.root / "a.bin").write_bytes(payload)
    with open(server.root / "big.bin", "wb") as f:
        f.truncate(BIG)
    before = sessions_open(server, 0)
    assert value(before, "ftpd_logins_total", result="ok") == 0
    assert value(before, "ftpd_logins_total", result="failed") == 0

    ftp = server.ftp()  # login ok
    got = bytearray()
    ftp.retrbinary("RETR a.bin", got.extend)
    assert bytes(got) == payload
    ftp.storbinary("STOR up.bin", io.BytesIO(upload))
    assert sorted(ftp.nlst()) == ["a.bin", "big.bin", "up.bin"]  # listings: no transfers
    lines: list[str] = []
    ftp.dir(lines.append)
    assert len(lines) == 3
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.retrbinary("RETR missing.bin", got.extend)
    bad = LoopFTP(timeout=DEADLINE)
    bad.connect(server.host, server.port)
    with pytest.raises(ftplib.error_perm, match="^530"):
        bad.login(USER, "wrong")
    aborter = connect(server.host, server.port, USER, PASSWORD)  # login ok
    during = sessions_open(server, 3)
    assert delta(during, before, "ftpd_sessions_total") == 3
    aborter.voidcmd("TYPE I")
    conn = aborter.transfercmd("RETR big.bin")
    assert len(conn.recv(65536)) > 0
    assert aborter.abort().startswith("426")
    assert aborter.getresp().startswith("226")
    conn.close()
    for client in (ftp, bad, aborter):
        client.quit()
    after = sessions_open(server, 0)

    # xferlog fields: the time (5 of them), seconds, host, bytes, path, ...
    [aborted] = [fields for fields in map(str.split, xferlog.read_text().splitlines())
                 if fields[8] == "/big.bin"]
    aborted_bytes = int(aborted[7])
    assert 0 < aborted_bytes < BIG
    counts = {
        ("ftpd_sessions_total", ()): 3,
        ("ftpd_logins_total", (("result", "ok"),)): 2,
        ("ftpd_logins_total", (("result", "failed"),)): 1,
        ("ftpd_transfer_bytes_total", (("direction", "down"),)): len(payload) + aborted_bytes,
        ("ftpd_transfer_bytes_total", (("direction", "up"),)): len(upload),
        ("ftpd_transfer_files_total", (("direction", "down"),)): 1,
        ("ftpd_transfer_files_total", (("direction", "up"),)): 1,
        ("ftpd_transfers_total", (("direction", "down"), ("status", "OK"))): 1,
        ("ftpd_transfers_total", (("direction", "down"), ("status", "NOENT"))): 1,
        ("ftpd_transfers_total", (("direction", "down"), ("status", "ABOR"))): 1,
        ("ftpd_transfers_total", (("direction", "up"), ("status", "OK"))): 1,
        ("ftpd_storage_call_seconds_count", (("op", "mount"),)): 2,  # one per login
        ("ftpd_storage_call_seconds_count", (("op", "open_write"),)): 1,
        ("ftpd_storage_call_seconds_count", (("op", "lstat_entries"),)): 1,  # the LIST
    }
    for (name, labels), expected in counts.items():
        assert delta(after, before, name, **dict(labels)) == expected, (name, labels)
    transfers = {k: v for k, v in after.items() if k[0] == "ftpd_transfers_total"}
    assert sum(transfers.values()) == 4  # no other status
    for (name, labels), count in after.items():  # every histogram is whole
        if name == "ftpd_storage_call_seconds_count":
            assert after[("ftpd_storage_call_seconds_bucket",
                          labels | {("le", "+Inf")})] == count
            assert after[("ftpd_storage_call_seconds_sum", labels)] >= 0
    assert value(after, "ftpd_storage_call_seconds_count", op="open_read") >= 2



@pytest.fixture
def full_queue():
    """The key of a new System V message queue, filled up: every send to it fails."""
    sysv_ipc = pytest.importorskip("sysv_ipc")
    for key in range(0x5E770000, 0x5E770000 + 1000):
        try:
            mq = sysv_ipc.MessageQueue(key, sysv_ipc.IPC_CREX, mode=0o600)
            break
        except sysv_ipc.ExistentialError:
            continue
    else:
        pytest.skip("no free System V queue key")
    try:
        filled = 0
        for size in (1000, 1):  # big messages, then the last few bytes
            while True:
                try:
                    mq.send(b"x" * size, block=False, type=7)
                except sysv_ipc.BusyError:
                    break
                filled += 1
                assert filled < 100_000
        yield key
    finally:
        mq.remove()


def test_event_sink_drops_are_read_at_scrape_time(metrics_server, full_queue):
    server = metrics_server("--event-sink", f"mqueue:{full_queue:#x}")
    sink = {"sink": f"mqueue:{full_queue:#x}"}
    assert value(sessions_open(server, 0), "ftpd_event_sink_dropped_total", **sink) == 0
    ftp = server.ftp()  # the login message: dropped
    ftp.voidcmd("MKD made")  # another
    ftp.quit()  # and the logout
    after = sessions_open(server, 0)
    assert value(after, "ftpd_event_sink_dropped_total", **sink) == 3
    os.kill(server.pid, signal.SIGHUP)  # the sink is closed and opened afresh
    wait_until(lambda: "configuration reloaded" in server.log(), "the reload")
    server.ftp().quit()  # a login and a logout, dropped by the new sink
    after = sessions_open(server, 0)
    assert value(after, "ftpd_event_sink_dropped_total", **sink) == 5  # never back


def test_metrics_on_ipv6_loopback(metrics_server):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server = metrics_server(metrics_host="::1")
    server.ftp().quit()
    assert value(sessions_open(server, 0), "ftpd_sessions_total") == 1
    assert f"metrics on http://[::1]:{server.metrics_port}/metrics" in server.log()


def ftpd_once(*args: str, wrapper: str | None = None) -> subprocess.CompletedProcess:
    """``ftpd ARGS`` (optionally under ``python -c WRAPPER``), expected to stop at once."""
    head = [sys.executable, "-c", wrapper] if wrapper else [sys.executable, "-m", "ftpd"]
    return subprocess.run([*head, *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_metrics_port_taken_is_a_startup_error_in_one_line(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = ftpd_once("-l", f"127.0.0.1:{free_port()}", "-r", str(tmp_path),
                         "--metrics", f"127.0.0.1:{port}")
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("ftpd: --metrics 127.0.0.1:") and "cannot listen" in line, line


@pytest.mark.parametrize("address", ["127.0.0.1:http", "::1:9102", "[::1]:70000"])
def test_bad_metrics_address_is_a_usage_error_naming_the_option(tmp_path, address):
    done = ftpd_once("-l", f"127.0.0.1:{free_port()}", "-r", str(tmp_path), "--metrics",
                     address)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "--metrics" in line, line


def test_missing_prometheus_client_names_the_extra(tmp_path):
    hide = ("import sys; sys.modules['prometheus_client'] = None\n"
            "from ftpd.cli import main; main()")
    done = ftpd_once("-l", f"127.0.0.1:{free_port()}", "-r", str(tmp_path), "--metrics",
                     f"127.0.0.1:{free_port()}", wrapper=hide)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert "prometheus_client" in line and "ftpd[metrics]" in line, line


# -- the timed filesystem, alone -------------------------------------------------------------
def test_timed_filesystem_times_calls_and_forwards_the_rest(tmp_path):
    from ftpd.fs.local import LocalFS
    from ftpd.fs.memory import MemoryFS
    from ftpd.metrics import TimedFileSystem

    seen: list[str] = []
    (tmp_path / "a").write_bytes(b"x")
    local = TimedFileSystem(LocalFS(str(tmp_path)), lambda op, s: seen.append(op))
    assert local.stat("/a").st_size == 1
    with pytest.raises(FileNotFoundError):
        local.stat("/missing")  # a failing call is timed too
    assert [name for name, _ in local.lstat_entries("/", ["a"])] == ["a"]
    assert seen == ["stat", "stat", "lstat_entries"]  # a whole listing: one observation
    assert local.replaced() is False  # not a storage call: forwarded, untimed
    memory = TimedFileSystem(MemoryFS(), lambda op, s: seen.append(op))
    assert not hasattr(memory, "lstat_entries")  # MemoryFS has none: the listing knows


def test_storage_calls_stay_timed_after_a_reload(metrics_server):
    server = metrics_server()
    os.kill(server.pid, signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in server.log(), "the reload")
    ftp = server.ftp()
    ftp.voidcmd("MKD after-reload")
    ftp.quit()
    after = sessions_open(server, 0)
    assert value(after, "ftpd_storage_call_seconds_count", op="mount") == 1
    assert value(after, "ftpd_storage_call_seconds_count", op="mkdir") == 1
    assert value(after, "ftpd_logins_total", result="ok") == 1  # the bus still listened


@pytest.mark.parametrize("written, address", [
    ("metrics = 9102", ("127.0.0.1", 9102)),  # a bare port: loopback, not every interface
    ('metrics = "9102"', ("127.0.0.1", 9102)),
    ('metrics = "0.0.0.0:9102"', ("0.0.0.0", 9102)),
    ('metrics = "[::1]:9102"', ("::1", 9102)),
])
def test_metrics_key_in_the_config_file(tmp_path, written, address):
    from ftpd.config import resolve

    config = tmp_path / "ftpd.conf"
    config.write_text(written + "\n")
    assert resolve({"config": str(config)}, str(tmp_path)).metrics == address
