"""--metrics and the launch modes: refused in one line where every connection is its own
process (inetd no-wait), and nothing of it imported by an ordinary start, which every
inetd no-wait connection pays for."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from ftpsupport import DEADLINE, free_port, read_text, stop_pid, wait_until
from lhelpers import Control, connected_pair, wait_exit, wait_listening, wait_pid_gone

# ftpd's own main(), writing the names of every module imported when the process ends.
RECORD_MODULES = """import atexit, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
from ftpd.cli import main
main()
"""
METRICS_MODULES = ("ftpd.metrics", "prometheus_client")


def recorder(record) -> list[str]:
    return [sys.executable, "-c", RECORD_MODULES, str(record)]


def modules_in(record) -> set[str]:
    return set(record.read_text().split())


def test_nowait_start_imports_nothing_of_metrics(served, inetd_spawn, tmp_path):
    record = tmp_path / "modules.txt"
    client, server_side = connected_pair()
    proc = inetd_spawn([*recorder(record), "-I", "-r", str(served)], server_side)
    ctl = Control(client)
    assert ctl.reply()[0] == 220
    ctl.login("anonymous", "guest@example.org")
    ctl.expect("QUIT", 221)
    assert wait_exit(proc) == 0
    found = modules_in(record)
    assert "ftpd.cli" in found and "ftpd.io.server" in found  # the record is complete
    assert not found & set(METRICS_MODULES)


@pytest.mark.parametrize("metrics", [False, True], ids=["ordinary", "with-metrics"])
def test_standalone_imports_metrics_only_when_configured(served, procs, tmp_path, metrics):
    record, port = tmp_path / "modules.txt", free_port()
    args = ["-l", f"127.0.0.1:{port}", "-r", str(served)]
    if metrics:
        args += ["--metrics", f"127.0.0.1:{free_port()}"]
    log = tmp_path / "ftpd.log"
    proc = procs.start([*recorder(record), *args, "--log", str(log)])
    wait_until(lambda: "listening on" in (log.read_text() if log.exists() else ""),
               "ftpd to listen")
    stop_pid(proc, signal.SIGTERM)
    assert proc.returncode == 0, log.read_text()
    found = modules_in(record)
    assert "ftpd.io.server" in found
    assert all((name in found) == metrics for name in METRICS_MODULES), found


def test_metrics_refused_under_nowait_in_one_line(served, inetd_spawn, tmp_path):
    log = tmp_path / "ftpd.log"
    client, server_side = connected_pair()
    proc = inetd_spawn([sys.executable, "-m", "ftpd", "-I", "--log",
                        str(log), "-r", str(served), "--metrics", "127.0.0.1:9102"],
                       server_side)
    assert Control(client).read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) == 2
    [line] = log.read_text().splitlines()
    assert "--metrics" in line and "inetd no-wait" in line, line


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_metrics_served_by_the_detached_daemon(served, procs, tmp_path, ftpd):
    """The HTTP thread starts after -d forks (a thread does not survive a fork)."""
    pytest.importorskip("prometheus_client")
    port, metrics_port = free_port(), free_port()
    pidfile, log = tmp_path / "ftpd.pid", tmp_path / "ftpd.log"
    procs.mark(f"127.0.0.1:{port}")  # whatever happens, the daemon goes
    launcher = procs.start([ftpd, "-d", "--pidfile", str(pidfile), "-l", f"127.0.0.1:{port}",
                            "-r", str(served), "--log", str(log), "--metrics",
                            f"127.0.0.1:{metrics_port}"])
    assert wait_exit(launcher) == 0
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(),
               "the daemon's pidfile")
    pid = int(pidfile.read_text().split()[0])
    wait_listening(port)
    wait_listening(metrics_port)
    ctl = Control.connect("127.0.0.1", port)
    assert ctl.reply()[0] == 220
    ctl.login("anonymous", "guest@example.org")
    ctl.expect("QUIT", 221)
    ctl.close()
    scraped = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{metrics_port}/metrics"],
                             capture_output=True, text=True, timeout=DEADLINE)
    assert 'ftpd_logins_total{result="ok"} 1.0' in scraped.stdout.splitlines(), scraped
    os.kill(pid, signal.SIGTERM)
    wait_pid_gone(pid)
    assert "Traceback" not in read_text(log)
