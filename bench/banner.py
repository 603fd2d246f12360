"""Time from connect to the 220 banner under inetd no-wait (``ftpd -I``: a new process per
connection, the connected socket as fds 0 and 1), for ftpd installed from a wheel and for
a bare Python script, run by the same interpreter, that takes the socket and writes a
banner. Prints medians and the ratio.

    python bench/banner.py [--runs 40] [--no-editable] [--keep DIR]

Run it with the dev venv's Python (it needs ``pip`` and ``setuptools``): it builds a wheel
of this tree (``pip wheel --no-deps --no-build-isolation``), installs it with its runtime
dependencies into a fresh ``python -m venv`` whose pip is upgraded first, as the
Makefile's is (pip compiles the bytecode, as for any operator), and times that venv's
``ftpd`` console script (what inetd runs), ``python -m ftpd``, and the console script an
older pip writes (pip 23.2's imports ``re``). The editable dev venv is timed too, as a
second pair of rows (its ``.pth`` entries differ from an installed one). The children
get a minimal environment (no PYTHON* variables), as under inetd.
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
s = socket.socket(fileno=0)
s.sendall(b"220 bare ready\\r\\n")
s.recv(64)
"""
# The console script pip 23.2 (the one ``python3.11 -m venv`` bundles) writes; pip 26
# writes the same without ``re``, which costs ~1.5 ms before anything of ftpd's runs.
OLD_PIP_WRAPPER = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from ftpd.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""
TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What inetd gives its children: no PYTHON* variables from this shell (here
# PYTHONDONTWRITEBYTECODE and PYTHONUNBUFFERED are set).
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install(root: str) -> str:
    """A fresh venv with ftpd installed from a wheel of TREE; returns its bin directory."""
    dist, venv = os.path.join(root, "dist"), os.path.join(root, "venv")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", dist, TREE], check=True)
    (wheel,) = (os.path.join(dist, n) for n in os.listdir(dist) if n.endswith(".whl"))
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    bindir = os.path.join(venv, "bin")
    pip = [os.path.join(bindir, "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)  # as the Makefile's venv
    subprocess.run([*pip, wheel], check=True)
    with open(os.path.join(bindir, "ftpd-old-pip"), "w") as f:
        f.write(OLD_PIP_WRAPPER.format(python=os.path.join(bindir, "python")))
    os.chmod(os.path.join(bindir, "ftpd-old-pip"), 0o755)
    return bindir


class Activator:
    """``systemd-socket-activate --inetd -a``: a new *command* per connection."""

    def __init__(self, command: list[str]) -> None:
        activator = shutil.which("systemd-socket-activate")
        if activator is None:
            raise SystemExit("systemd-socket-activate not found (Debian package: systemd)")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [activator, "--inetd", "-a", "-l", f"127.0.0.1:{self.port}", *command],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"port {self.port} never opened")

    def banner_time(self) -> float:
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = c.recv(256)
                if not chunk:
                    raise RuntimeError(f"no banner from port {self.port}: {data!r}")
                data += chunk
            elapsed = time.perf_counter() - start
            if not data.startswith(b"220"):
                raise RuntimeError(f"not a banner: {data!r}")
            c.sendall(b"QUIT\r\n")
            while c.recv(256):  # to the end: the session is over
                pass
        self.wait_children_gone(time.monotonic() + 10)
        return elapsed

    def wait_children_gone(self, deadline: float) -> None:
        """Until the child has exited: ftpd builds its server after the 220, and its exit
        must not overlap the next measurement."""
        children = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"
        while time.monotonic() < deadline:
            with open(children) as f:
                if not f.read().strip():
                    return
            time.sleep(0.002)
        raise RuntimeError("the child did not exit")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def measure(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Each round connects to every command once, in turn (interleaved: a load change
    hits every row alike), each after the previous child has exited; one warm-up round
    is not counted."""
    activators = {name: Activator(cmd) for name, cmd in commands.items()}
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for a in activators.values():
            a.wait_ready(time.monotonic() + 10)
        for round_ in range(runs + 1):
            for name, a in activators.items():
                elapsed = a.banner_time()
                if round_:
                    times[name].append(elapsed)
                time.sleep(0.01)
    finally:
        for a in activators.values():
            a.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--no-editable", action="store_true",
                        help="leave out the dev venv's rows")
    parser.add_argument("--keep", metavar="DIR",
                        help="build the venv in DIR and keep it (reused when present)")
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="ftpd-banner-")
    os.makedirs(root, exist_ok=True)
    try:
        venv_bin = os.path.join(root, "venv", "bin")
        if not (args.keep and os.path.exists(os.path.join(venv_bin, "ftpd"))):
            venv_bin = install(root)
        serve = os.path.join(root, "pub")
        os.makedirs(serve, exist_ok=True)
        bare = os.path.join(root, "bare.py")
        with open(bare, "w") as f:
            f.write(BARE)
        python = os.path.join(venv_bin, "python")
        commands = {
            "bare python": [python, bare],
            "ftpd -I (console script)": [os.path.join(venv_bin, "ftpd"), "-I", "-r", serve],
            "python -m ftpd -I": [python, "-m", "ftpd", "-I", "-r", serve],
            "ftpd -I (pip 23.2's script)": [os.path.join(venv_bin, "ftpd-old-pip"), "-I",
                                            "-r", serve],
        }
        if not args.no_editable:
            dev = os.path.dirname(sys.executable)
            commands["bare python (dev venv)"] = [sys.executable, bare]
            commands["ftpd -I (dev venv, editable)"] = [os.path.join(dev, "ftpd"), "-I",
                                                         "-r", serve]
        results = measure(commands, args.runs)
        print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
        for name, times in results.items():
            print(f"{name:30s} median {statistics.median(times) * 1000:6.1f} ms   "
                  f"min {min(times) * 1000:6.1f} ms   ({len(times)} runs)")
        bare_median = statistics.median(results["bare python"])
        for name in ("ftpd -I (console script)", "python -m ftpd -I",
                     "ftpd -I (pip 23.2's script)"):
            ratio = statistics.median(results[name]) / bare_median
            print(f"ratio {name:28s} / bare: {ratio:.2f} (target <= 1.3)")
        if not args.no_editable:
            ratio = (statistics.median(results["ftpd -I (dev venv, editable)"])
                     / statistics.median(results["bare python (dev venv)"]))
            print(f"ratio dev venv ftpd / bare: {ratio:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
