"""Time from connect to the 220 banner under ``systemd-socket-activate -a`` (a new
process per connection, as under inetd no-wait), for ftpd and for a bare Python
script that takes the socket and writes a banner. Prints medians and the ratio.

    python bench/banner.py [--runs 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BARE = """import os, socket
s = socket.socket(fileno=3)
s.sendall(b"220 bare ready\\r\\n")
s.recv(64)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} never opened")


def measure(command: list[str], runs: int) -> list[float]:
    port = free_port()
    activator = shutil.which("systemd-socket-activate")
    if activator is None:
        raise SystemExit("systemd-socket-activate not found (Debian package: systemd)")
    proc = subprocess.Popen([activator, "-a", "-l", f"127.0.0.1:{port}", *command],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    try:
        time.sleep(0.3)
        for _ in range(runs):
            start = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                data = b""
                while not data.endswith(b"\r\n"):
                    chunk = c.recv(256)
                    if not chunk:
                        break
                    data += chunk
                times.append(time.perf_counter() - start)
                c.sendall(b"QUIT\r\n")
                c.recv(256)
            time.sleep(0.02)  # let the previous child exit
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    # Measure what an installed package runs: compiled bytecode (pip compiles at install;
    # an editable tree edited since its last import, or PYTHONDONTWRITEBYTECODE, would
    # make every process compile from source).
    import compileall

    import ftpd

    compileall.compile_dir(os.path.dirname(ftpd.__file__), quiet=1)
    root = tempfile.mkdtemp()
    bare = os.path.join(root, "bare.py")
    with open(bare, "w") as f:
        f.write(BARE)
    ftpd = os.path.join(os.path.dirname(sys.executable), "ftpd")
    results = {
        "bare python": measure([sys.executable, bare], args.runs),
        "ftpd": measure([ftpd, "-r", root], args.runs),  # default logging: auto, lazy
    }
    for name, times in results.items():
        print(f"{name:12s} median {statistics.median(times) * 1000:7.1f} ms   "
              f"min {min(times) * 1000:7.1f} ms   ({len(times)} runs)")
    ratio = statistics.median(results["ftpd"]) / statistics.median(results["bare python"])
    print(f"ratio ftpd/bare: {ratio:.2f} (target <= 1.3)")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
