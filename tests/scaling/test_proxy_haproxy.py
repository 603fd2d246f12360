"""The shipped ``contrib/haproxy/ftpd.cfg``, run as it is by a real HAProxy (Debian's
/usr/sbin/haproxy, started here in the foreground and stopped by pid) in front of two
ftpd processes: ftplib through the balancer logs in, lists and downloads byte for
byte in passive mode on each host, and each ftpd logs the client's own address.

On loopback: HAProxy listens on 127.0.0.1, the two ftpd on 127.0.0.2 and 127.0.0.3
(so a passive port can be the same number on the balancer and on its host), and
HAProxy's connections to them come from 127.0.0.1, the one --proxy-protocol address."""

from __future__ import annotations

import ftplib
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from ftpsupport import (
    DEADLINE,
    FtpdProcess,
    can_bind,
    free_port,
    free_port_range,
    sha256,
    start_ftpd,
    stop_pid,
    wait_until,
)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CONFIG = Path(__file__).resolve().parents[2] / "contrib" / "haproxy" / "ftpd.cfg"
FRONT = "127.0.0.1"
HOSTS = ("127.0.0.2", "127.0.0.3")
PASSIVE_COUNT = 4
PAYLOAD = os.urandom(300_000)

pytestmark = pytest.mark.skipif(
    not os.access(HAPROXY, os.X_OK) or not all(can_bind(h) for h in HOSTS),
    reason="needs haproxy and the 127.0.0.2/127.0.0.3 loopback addresses")


def free_range(count: int) -> range:
    """*count* consecutive ports free on the balancer's and both hosts' addresses."""
    return free_port_range(count, (FRONT, *HOSTS))


def start_host(tmp_path: Path, index: int, passive: range) -> FtpdProcess:
    host = HOSTS[index]
    root = tmp_path / f"root{index}"
    root.mkdir()
    (root / "file.bin").write_bytes(PAYLOAD)

    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        argv = ["-l", f"{host}:{ports[0]}", "-r", str(root), "-u", "user", "-P", "pw",
                "-v", "--failed-login-delay", "0", "--shutdown-timeout", "5",
                "--proxy-protocol", FRONT, "--masquerade-address", FRONT,
                "--passive-ports", f"{passive[0]}-{passive[-1]}"]
        return FtpdProcess(argv, host=host, port=ports[0],
                           log_path=tmp_path / f"ftpd{index}-{attempt}.log")

    return start_ftpd(spawn, host=host)


@pytest.fixture
def balanced(tmp_path: Path):
    ranges = [free_range(PASSIVE_COUNT) for _ in HOSTS]
    hosts = []
    proc = None
    try:
        for index, passive in enumerate(ranges):
            hosts.append(start_host(tmp_path, index, passive))
        control = free_port(FRONT)
        env = {**os.environ, "FTPD_FRONT": FRONT, "FTPD_CONTROL_PORT": str(control)}
        for number, (server, passive) in enumerate(zip(hosts, ranges, strict=True), 1):
            env[f"FTPD{number}_ADDR"] = server.host
            env[f"FTPD{number}_PORT"] = str(server.port)
            env[f"FTPD{number}_PASSIVE"] = f"{passive[0]}-{passive[-1]}"
        log_path = tmp_path / "haproxy.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([HAPROXY, "-db", "-f", str(CONFIG)], env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    cwd=tmp_path)
        wait_until(lambda: greets_through(control) or proc.poll() is not None,
                   "haproxy forwarding to ftpd", timeout=DEADLINE)
        assert proc.poll() is None, log_path.read_text()
        yield control, hosts, log_path
    finally:
        if proc is not None:
            stop_pid(proc)
        for server in hosts:
            server.stop()


def greets_through(port: int) -> bool:
    try:
        with socket.create_connection((FRONT, port), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(3) == b"220"
    except OSError:
        return False


def session(port: int) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=DEADLINE)
    ftp.connect(FRONT, port)
    ftp.login("user", "pw")
    return ftp


def host_of(ftp: ftplib.FTP, hosts: list[FtpdProcess]) -> int:
    """Which ftpd serves *ftp*: the one that logged its client port as the carried
    address (HAProxy chose it)."""
    line = f"127.0.0.1:{ftp.sock.getsockname()[1]} via balancer 127.0.0.1 (PROXY v2)"
    found: list[int] = []

    def logged() -> bool:
        found[:] = [i for i, server in enumerate(hosts) if line in server.log()]
        return bool(found)

    wait_until(logged, f"{line!r} in an ftpd log")
    assert len(found) == 1, found
    return found[0]


def test_sessions_through_haproxy_on_both_hosts(balanced):
    control, hosts, _ = balanced
    sessions: list[ftplib.FTP] = []
    served: set[int] = set()
    try:
        # sessions stay open, so leastconn sends the next one to the other host
        for _ in range(6):
            sessions.append(session(control))
            served.add(host_of(sessions[-1], hosts))
            if len(served) == len(hosts):
                break
        assert served == {0, 1}
        for ftp in sessions:
            assert ftp.nlst() == ["file.bin"]
            got = bytearray()
            ftp.retrbinary("RETR file.bin", got.extend)  # passive, through the host's range
            assert sha256(bytes(got)) == sha256(PAYLOAD)
            assert "Connected to 127.0.0.1" in ftp.sendcmd("STAT")
    finally:
        for ftp in sessions:
            ftp.quit()


def test_health_checks_speak_ftp_with_a_local_header(balanced):
    _, hosts, haproxy_log = balanced
    for number, server in enumerate(hosts, 1):
        wait_until(lambda n=number: f"Health check for server ftp_control/ftpd{n} succeeded"
                   in haproxy_log.read_text(), f"ftpd{number} checked")
        # the check's LOCAL header is served as the balancer itself, not dropped
        assert "PROXY v2 health check (no address)" in server.log()
        assert "dropped: no PROXY header" not in server.log()


def test_a_host_that_stops_is_taken_out_and_the_other_serves(balanced):
    control, hosts, haproxy_log = balanced
    hosts[1].stop()
    wait_until(lambda: "ftp_control/ftpd2 is DOWN" in haproxy_log.read_text(),
               "haproxy noticing the stopped host", timeout=3 * DEADLINE)
    for _ in range(3):  # every new session now lands on the host that is left
        ftp = session(control)
        try:
            assert host_of(ftp, hosts[:1]) == 0
            got = bytearray()
            ftp.retrbinary("RETR file.bin", got.extend)
            assert bytes(got) == PAYLOAD
        finally:
            ftp.quit()
