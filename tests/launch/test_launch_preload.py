"""``--run-as``: every module serving imports lazily is in ``daemon.PRELOAD`` and imported
before root is dropped. A server under ``python -X importtime`` (which reports each
module on stderr as its import completes) serves a session that touches every command
family; any import reported after the "running as" line names a module PRELOAD misses."""

from __future__ import annotations

import ftplib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, free_port, wait_for_port, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs root")

IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


def _session(port: int) -> None:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=DEADLINE)
    try:
        ftp.login("nobody-test", "wrong")
    except ftplib.error_perm:
        pass
    ftp.login("alice", "pw")
    for line in ("SYST", "FEAT", "HELP", "HELP SITE CHMOD", "STAT", "OPTS UTF8 ON",
                 "OPTS MLST type;size;", "TYPE I", "NOOP", "PWD", "ALLO 10", "MODE S",
                 "STRU F"):
        ftp.sendcmd(line)
    ftp.storbinary("STOR up.bin", io.BytesIO(b"x" * 100_000))
    ftp.storbinary("APPE up.bin", io.BytesIO(b"y" * 10))
    for line in ("HASH up.bin", "OPTS HASH CRC32", "HASH up.bin", "XMD5 up.bin 0 10"):
        ftp.sendcmd(line)
    ftp.sendcmd("REST 5")
    ftp.retrbinary("RETR up.bin", lambda _b: None)
    ftp.storbinary("STOU", io.BytesIO(b"unique"))
    ftp.retrlines("LIST")
    ftp.retrlines("NLST *.bin")
    ftp.retrlines("MLSD")
    for line in ("TYPE I", "MLST up.bin", "SIZE up.bin", "MDTM up.bin",
                 "MFMT 20200101000000 up.bin", "SITE CHMOD 640 up.bin", "MKD d",
                 "CWD d", "CDUP", "RMD d", "RNFR up.bin", "RNTO moved.bin",
                 "STAT moved.bin", "DELE moved.bin"):
        ftp.sendcmd(line)
    ftp.set_pasv(False)  # PORT: an active connection
    ftp.retrlines("LIST")
    ftp.quit()


def _scrape(port: int) -> None:
    """What Prometheus does: GET /metrics (plain, then gzip and OpenMetrics)."""
    for headers in ([], ["-H", "Accept-Encoding: gzip", "-H",
                         "Accept: application/openmetrics-text; version=1.0.0"]):
        done = subprocess.run(["curl", "-sSf", "-o", "/dev/null", *headers,
                               f"http://127.0.0.1:{port}/metrics"], timeout=DEADLINE)
        assert done.returncode == 0


@pytest.mark.parametrize("metrics", [False, True], ids=["plain", "with-metrics"])
def test_nothing_is_imported_after_the_privilege_drop(tmp_path, metrics):
    if metrics:
        pytest.importorskip("prometheus_client")
        if shutil.which("curl") is None:
            pytest.skip("needs curl")
    root = Path(tempfile.mkdtemp(prefix="ftpd-preload-", dir="/tmp"))
    os.chmod(root, 0o777)
    port, metrics_port = free_port(), free_port()
    err_path = tmp_path / "stderr"
    argv = [sys.executable, "-X", "importtime", "-m", "ftpd", "-l", f"127.0.0.1:{port}",
            "-r", str(root), "-u", "alice", "-P", "pw", "--run-as", "nobody",
            "--log", "stderr", "--atomic-uploads", "--failed-login-delay", "0"]
    if metrics:
        argv += ["--metrics", f"127.0.0.1:{metrics_port}"]
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        wait_for_port("127.0.0.1", port, time.monotonic() + DEADLINE, proc)
        _session(port)
        if metrics:
            _scrape(metrics_port)
        os.kill(proc.pid, signal.SIGHUP)  # a reload after the drop too
        wait_until(lambda: "configuration reloaded" in err_path.read_text(), "the reload")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(DEADLINE)
        shutil.rmtree(root, ignore_errors=True)
    lines = err_path.read_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if "running as nobody" in line)
    late = [m.group(1) for line in lines[marker:] if (m := IMPORT_LINE.match(line))]
    assert not late, f"imported after the privilege drop (add to daemon.PRELOAD): {late}"
    assert proc.returncode == 0
