#!/usr/bin/env python3
"""eventbench: what the NcFTPd event sinks cost ftpd, and how fast ftpd-eventd consumes.

In one run, against fresh ``ftpd`` servers on free ports on 127.0.0.1 (a new server, and a
new receiver, for every measurement):

* transfer throughput: RETR and STOR of one big file (256 MiB) with curl;
* session rate: N concurrent clients (300) that connect, log in and QUIT at once, in
  several waves (5) one after the other;

each with no sink, with ``--event-sink udp:...`` (an ``ftpd-eventd -p PORT`` draining it),
with ``--event-sink mqueue:KEY`` (an ``ftpd-eventd -k KEY`` draining it), and with a UDP
sink to a socket nobody reads (``udp-nrd``: the sender's own cost, with no receiver
process competing for the CPUs). Each figure is the median of the repetitions (7; the
set-ups interleaved, their order reversed every other repetition, after one untimed
warm-up) and is printed with its spread, its cost against no sink in % (the median of the
differences to the no-sink run of the same repetition; target: under 5 %), ftpd's CPU
time during the workload (schedstat, all threads) and its cost likewise, how many messages
the receiver got of those expected, and the drops the server counted. Files live on
tmpfs (/dev/shm) when it has room, so that disk writeback does not blur STOR.

Then the receiver alone: the messages per second ``ftpd-eventd -k KEY`` parses and
dispatches to a no-op ``--handler``, while a producer process keeps the queue full with
pre-encoded frames (200,000 messages; target: at least 20,000 per second), measured from
the first message handled to the last.

The receivers run a small counting handler (written to the temporary directory) that
reports its count in a file every 0.2 s and stamps the time of the first and the last
expected message. Every process is stopped by pid, the temporary directory removed and
every queue removed, also on Ctrl-C. Timings never belong in the test suite; run by hand:

    python bench/eventbench.py [--quick] [--size MiB] [--clients N] [--waves N]
                               [--reps N] [--messages N]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import platform
import random
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ftpbench import pop_reply  # bench/ is on sys.path: run as a script

HOST = "127.0.0.1"
USER = PASSWORD = "bench"
SINKS = ("none", "udp", "mqueue", "udp-nrd")
# udp-nrd: a UDP sink to a socket the bench holds but never reads (the kernel discards what
# its buffer cannot take, unseen by the sender): the server's own cost of sending, without
# a receiver process competing for the CPUs.
WORKLOADS = ("retr", "stor", "logins", "eventd")
TARGET_COST = 5.0  # %
TARGET_RATE = 20_000  # messages per second

HANDLER = r'''
"""eventbench's receiver handler: counts; reports to $EVENTBENCH_OUT every 0.2 s and at
the $EVENTBENCH_EXPECT-th message, with the monotonic times of the first and that one."""
import os
import threading
import time


class Counter:
    def __init__(self):
        self.n = 0
        self.first = self.last = 0.0
        self.expect = int(os.environ.get("EVENTBENCH_EXPECT") or 0)
        self.out = os.environ["EVENTBENCH_OUT"]
        self._write()
        threading.Thread(target=self._report, daemon=True).start()

    def on_event(self, event):
        self.n += 1
        if self.n == 1:
            self.first = time.monotonic()
        if self.n == self.expect:
            self.last = time.monotonic()
            self._write()

    def _write(self):
        tmp = f"{self.out}.{threading.get_ident()}"
        with open(tmp, "w") as f:
            f.write(f"{self.n} {self.first!r} {self.last!r}\n")
        os.replace(tmp, self.out)

    def _report(self):
        while True:
            time.sleep(0.2)
            self._write()
'''

# The producer for the ftpd-eventd rate: real frames from ftpd's own encoder (a mix of
# every type), encoded once, then sent back to back, blocking whenever the queue is full.
PRODUCER = r'''
import sys
import sysv_ipc
from ftpd.core.events import (ChmodEvent, ListingEvent, LoginEvent, LogoutEvent, PathEvent,
                              RenameEvent, SessionInfo, SymlinkEvent, TransferEvent)
from ftpd.events.ncftpd import encode

key, count = int(sys.argv[1]), int(sys.argv[2])
user = SessionInfo("aSW2YAAqAAEA", "192.0.2.10", "alice")
anon = SessionInfo("aSW2YAAqAAEB", "198.51.100.7", "anonymous", "guest@example.org", True)
t = 1764079260.25
def xfer(kind, info, path):
    return TransferEvent(info, t, kind, path, 1048576, 2.15, "OK", "I", 0, 1048576, "STOR")
events = [
    ("session.login", LoginEvent(user, t)),
    ("fs.upload", xfer("upload", user, "/incoming/report.pdf")),
    ("fs.download", xfer("download", anon, "/pub/releases/ftpd-0.1.0.tar.gz")),
    ("fs.listing", ListingEvent(user, t, "/incoming", "OK")),
    ("fs.mkdir", PathEvent(user, t, "/incoming/2026", "dir")),
    ("fs.rename", RenameEvent(user, t, "/incoming/a.tmp", "/incoming/a.pdf")),
    ("fs.delete", PathEvent(user, t, "/incoming/old.pdf", "file")),
    ("fs.chmod", ChmodEvent(user, t, "/incoming/a.pdf", 0o644)),
    ("fs.symlink", SymlinkEvent(user, t, "/incoming/a.pdf", "/latest.pdf")),
    ("session.logout", LogoutEvent(user, t, 42.0, 1, 1048576, 1, 1048576, "QUIT")),
]
frames = [encode(name, data) + b"\0" for name, data in events]
mq = sysv_ipc.MessageQueue(key)
send = mq.send
for i in range(count):
    send(frames[i % len(frames)], True, 1)
'''


# -- processes, files and queues that are always cleaned up ----------------------------------

class Workspace:
    """A temporary directory, the processes started and the queues made; all removed."""

    def __init__(self, need: int = 0) -> None:
        base = None  # tmpfs when it has room: disk writeback would blur the STOR figures
        with contextlib.suppress(OSError):
            st = os.statvfs("/dev/shm")
            if st.f_bavail * st.f_frsize > need + (1 << 30):
                base = "/dev/shm"
        self.dir = tempfile.mkdtemp(prefix="eventbench-", dir=base)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.keys: list[int] = []
        with open(os.path.join(self.dir, "eventbench_handler.py"), "w") as f:
            f.write(HANDLER)

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def spawn(self, argv: list[str], log: str, env: dict[str, str] | None = None,
              cwd: str | None = None) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env={**os.environ, **(env or {})}, cwd=cwd)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
        """SIGTERM by pid, a bounded wait, then SIGKILL."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        return proc.returncode

    def new_key(self) -> int:
        import sysv_ipc

        rng = random.Random()
        while True:
            key = rng.randint(0x10000000, 0x7FFFFFF0)
            try:
                sysv_ipc.MessageQueue(key)
            except sysv_ipc.ExistentialError:
                self.keys.append(key)
                return key

    def remove_queue(self, key: int) -> None:
        import sysv_ipc

        with contextlib.suppress(sysv_ipc.ExistentialError):
            sysv_ipc.MessageQueue(key).remove()

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        for key in self.keys:
            self.remove_queue(key)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def cpu_seconds(pid: int) -> float:
    """The CPU time of *pid*'s threads: from schedstat (nanoseconds) where there is one,
    else utime+stime (clock ticks)."""
    total, found = 0, False
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
                    found = True
    if found:
        return total / 1e9
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def tail(path: str, n: int = 5) -> str:
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.strip() for line in f.readlines()[-n:])
    except OSError:
        return ""


# -- the receiver (ftpd-eventd with the counting handler) ------------------------------------

class Receiver:
    def __init__(self, ws: Workspace, kind: str, expect: int = 0) -> None:
        self.ws = ws
        self.count_path = ws.path(f"count-{time.monotonic_ns()}")
        self.log = self.count_path + ".log"
        self.key = 0
        if kind == "udp":
            port = free_port(socket.SOCK_DGRAM)
            args = ["-p", str(port)]
            self.spec = f"udp:{HOST}:{port}"
        else:
            self.key = ws.new_key()
            args = ["-k", f"{self.key:#x}"]
            self.spec = f"mqueue:{self.key:#x}"
        env = {"EVENTBENCH_OUT": self.count_path, "EVENTBENCH_EXPECT": str(expect)}
        self.proc = ws.spawn([sys.executable, "-m", "ftpd.events.eventd", *args,
                              "--handler", "eventbench_handler:Counter"], self.log, env,
                             cwd=ws.dir)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ftpd-eventd exited {self.proc.returncode}: "
                                   f"{tail(self.log)}")
            if not os.path.exists(self.count_path):
                return False
            return udp_port_taken(port) if kind == "udp" else self._queue_exists()

        wait_for(ready, 30, f"ftpd-eventd {' '.join(args)}")

    def _queue_exists(self) -> bool:
        import sysv_ipc

        try:
            sysv_ipc.MessageQueue(self.key)
        except sysv_ipc.ExistentialError:
            return False
        return True

    def read(self) -> tuple[int, float, float]:
        """(messages handled, monotonic time of the first, of the expected last or 0)."""
        try:
            with open(self.count_path) as f:
                n, first, last = f.read().split()
            return int(n), float(first), float(last)
        except (OSError, ValueError):
            return 0, 0.0, 0.0

    def settle(self, expect: int, timeout: float = 15.0) -> int:
        """Wait until *expect* messages were handled, or the count has stopped moving."""
        end = time.monotonic() + timeout
        last, still = -1, time.monotonic()
        while time.monotonic() < end:
            n = self.read()[0]
            if n >= expect:
                return n
            if n != last:
                last, still = n, time.monotonic()
            elif time.monotonic() - still > 1.5:
                return n
            time.sleep(0.05)
        return self.read()[0]

    def close(self) -> None:
        self.ws.stop(self.proc)
        if self.key:
            self.ws.remove_queue(self.key)


# -- the server ------------------------------------------------------------------------------

class Ftpd:
    def __init__(self, ws: Workspace, root: str, sink: str | None, tree: str = "") -> None:
        """*tree*: run the ftpd package found in that directory (on PYTHONPATH) instead."""
        self.ws = ws
        for _attempt in range(5):
            self.port = free_port()
            self.log = ws.path(f"ftpd-{time.monotonic_ns()}.log")
            argv = [sys.executable, "-m", "ftpd", "-l", f"{HOST}:{self.port}", "-r", root,
                    "-n", "-u", USER, "-P", PASSWORD, "--max-connections", "4000",
                    "--failed-login-delay", "0", "-q", "--log", self.log]
            if sink:
                argv += ["--event-sink", sink]
            env = {"PYTHONPATH": tree} if tree else None  # and not the cwd's package:
            self.proc = ws.spawn(argv, self.log + ".err", env, cwd=ws.dir)
            if wait_for(self._ready, 30, f"ftpd on port {self.port}") == "up":
                return
            if "in use" not in tail(self.log) + tail(self.log + ".err"):
                break
        raise RuntimeError(f"ftpd did not start: {tail(self.log)} {tail(self.log + '.err')}")

    def _ready(self) -> str | None:
        if self.proc.poll() is not None:
            return "exited"
        try:
            with socket.create_connection((HOST, self.port), timeout=5) as s:
                if s.recv(1024).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")  # no login: no event
                    while s.recv(1024):
                        pass
                    return "up"
        except OSError:
            pass
        return None

    def stop(self) -> int:
        """Stop it; the event messages it counted as dropped (it logs them at the end)."""
        self.ws.stop(self.proc)
        drops = 0
        with contextlib.suppress(OSError), open(self.log, errors="replace") as f:
            for m in re.finditer(r"dropped \d+ message\(s\) \((\d+) in all\)", f.read()):
                drops = max(drops, int(m.group(1)))
        return drops


# -- workloads -------------------------------------------------------------------------------

def curl(args: list[str]) -> float:
    """Run curl; the transfer's own time (time_total), in seconds."""
    done = subprocess.run(["curl", "-sS", "--fail", "-u", f"{USER}:{PASSWORD}",
                           "-w", "%{time_total}", *args], capture_output=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"curl {' '.join(args)}: exit {done.returncode}: "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return float(done.stdout.decode().strip().splitlines()[-1])


def retr(server: Ftpd, ctx: dict[str, Any]) -> float:
    seconds = curl(["-o", "/dev/null", f"ftp://{HOST}:{server.port}/big.bin"])
    return ctx["size"] / seconds / 1e6


def stor(server: Ftpd, ctx: dict[str, Any]) -> float:
    seconds = curl(["-T", ctx["source"], f"ftp://{HOST}:{server.port}/up.bin"])
    target = os.path.join(ctx["root"], "up.bin")
    if os.path.getsize(target) != ctx["size"]:
        raise RuntimeError("STOR: the uploaded file has the wrong size")
    os.unlink(target)
    return ctx["size"] / seconds / 1e6


def logins(server: Ftpd, ctx: dict[str, Any]) -> float:
    """*waves* times *clients* sessions at once (connect, USER, PASS, QUIT), one wave after
    the other; sessions per second over all of them."""
    t0 = time.perf_counter()
    for _ in range(ctx["waves"]):
        _wave(server, ctx["clients"])
    return ctx["clients"] * ctx["waves"] / (time.perf_counter() - t0)


def _wave(server: Ftpd, count: int) -> None:
    script = {(b"banner", 220): (b"USER " + USER.encode(), b"user"),
              (b"user", 331): (b"PASS " + PASSWORD.encode(), b"pass"),
              (b"pass", 230): (b"QUIT", b"quit")}
    sel = selectors.DefaultSelector()
    socks = []
    t0 = time.perf_counter()
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((HOST, server.port))
        if err not in (0, errno.EINPROGRESS):
            raise RuntimeError(f"connect: {os.strerror(err)}")
        sel.register(s, selectors.EVENT_READ, [b"banner", bytearray()])
        socks.append(s)
    done = failed = 0
    deadline = t0 + 120
    try:
        while done + failed < count:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"logins: {count - done - failed} sessions timed out")
            for key, _ in sel.select(timeout=1.0):
                s, st = key.fileobj, key.data
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    if st[0] == b"quit":
                        done += 1
                    else:
                        failed += 1
                    continue
                st[1] += data
                while (code := pop_reply(st[1])) is not None:
                    if st[0] == b"quit" and code == 221:
                        continue  # the server closes next
                    step = script.get((st[0], code))
                    if step is None:
                        raise RuntimeError(f"logins: reply {code} in state {st[0]!r}")
                    s.send(step[0] + b"\r\n")
                    st[0] = step[1]
    finally:
        sel.close()
        for s in socks:
            s.close()
    if failed:
        raise RuntimeError(f"logins: {failed} of {count} sessions failed")


@dataclass
class Result:
    values: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # ftpd's, during the workload
    delivered: int = 0
    expected: int = 0
    drops: int = 0


def measure(ws: Workspace, sink: str, workload: Callable[[Ftpd, dict[str, Any]], float],
            per_run: int, ctx: dict[str, Any], result: Result, tree: str = "") -> None:
    """One measurement on a fresh server (and receiver); *tree* as for Ftpd."""
    receiver = Receiver(ws, sink) if sink in ("udp", "mqueue") else None
    blackhole = None
    spec = receiver.spec if receiver else None
    if sink == "udp-nrd":
        blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        blackhole.bind((HOST, 0))
        spec = f"udp:{HOST}:{blackhole.getsockname()[1]}"
    try:
        server = Ftpd(ws, ctx["root"], spec, tree)
    except BaseException:
        if receiver is not None:
            receiver.close()
        if blackhole is not None:
            blackhole.close()
        raise
    try:
        before = cpu_seconds(server.proc.pid)
        result.values.append(workload(server, ctx))
        result.cpu.append(cpu_seconds(server.proc.pid) - before)
    finally:
        result.drops += server.stop()
        if receiver is not None:
            result.delivered += receiver.settle(per_run)
            result.expected += per_run
            receiver.close()
        if blackhole is not None:
            blackhole.close()


def eventd_rate(ws: Workspace, count: int) -> tuple[float, float, int]:
    """(messages/s from the first handled to the last, seconds, messages handled)."""
    receiver = Receiver(ws, "mqueue", expect=count)
    producer = ws.spawn([sys.executable, "-c", PRODUCER, str(receiver.key), str(count)],
                        ws.path("producer.log"))
    try:
        def finished() -> bool:
            n, _first, last = receiver.read()
            if producer.poll() not in (None, 0):
                raise RuntimeError(f"producer exited {producer.returncode}: "
                                   f"{tail(ws.path('producer.log'))}")
            if receiver.proc.poll() is not None:
                raise RuntimeError(f"ftpd-eventd exited: {tail(receiver.log)}")
            return n >= count and last > 0

        wait_for(finished, max(120.0, count / 1000), f"{count} messages handled")
        n, first, last = receiver.read()
        producer.wait(30)
    finally:
        ws.stop(producer)
        receiver.close()
    return (count - 1) / (last - first), last - first, n


# -- the run ---------------------------------------------------------------------------------

def run_workload(ws: Workspace, title: str, unit: str,
                 workload: Callable[[Ftpd, dict[str, Any]], float], per_run: int,
                 ctx: dict[str, Any], reps: int, trees: dict[str, str]) -> None:
    """Every sink set-up of every tree, interleaved, *reps* times; one line each."""
    setups = [(tree, sink) for tree in trees for sink in SINKS]
    results = {setup: Result() for setup in setups}
    measure(ws, "none", workload, per_run, ctx, Result())  # warm-up, not counted
    for rep in range(reps):
        for tree, sink in setups if rep % 2 == 0 else reversed(setups):
            measure(ws, sink, workload, per_run, ctx, results[tree, sink], tree)
    for tree, sink in setups:
        r, base = results[tree, sink], results[tree, "none"]
        value = statistics.median(r.values)
        cost = cpu_cost = per_message = "-"
        if sink != "none":  # paired with the no-sink run of the same repetition: less drift
            pct = statistics.median((n - v) / n * 100 for n, v in zip(
                base.values, r.values, strict=True))
            cost = f"{pct:+.1f} %" + ("" if pct < TARGET_COST else " !")
            pct = statistics.median((v - n) / n * 100 for n, v in zip(
                base.cpu, r.cpu, strict=True))
            cpu_cost = f"{pct:+.1f} %" + ("" if pct < TARGET_COST else " !")
            extra = statistics.median(v - n for n, v in zip(base.cpu, r.cpu, strict=True))
            per_message = f"{extra / per_run * 1e6:.1f}"
        got = f"{r.delivered}/{r.expected}" if r.expected else "-"
        drops = str(r.drops) if sink != "none" else "-"
        spread = f"{min(r.values):.0f}-{max(r.values):.0f}"
        label = f"{sink}" if len(trees) == 1 else f"{trees[tree]} {sink}"
        print(f"  {title:<28} {label:<12} {value:>9.1f} {unit:<6} {spread:>11} {cost:>9} "
              f"{statistics.median(r.cpu) * 1000:>8.0f} {cpu_cost:>9} {per_message:>7} "
              f"{got:>13} {drops:>6}", flush=True)


def make_file(path: str, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[:left])
            left -= len(block)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small run: 32 MiB, 100 clients, 20,000 messages, 1 repetition")
    p.add_argument("--size", type=int, metavar="MiB", help="transfer size (default 256)")
    p.add_argument("--clients", type=int, metavar="N", help="concurrent sessions (300)")
    p.add_argument("--waves", type=int, metavar="N",
                   help="waves of concurrent sessions per login measurement (5)")
    p.add_argument("--reps", type=int, metavar="N", help="repetitions per figure (7)")
    p.add_argument("--only", metavar="LIST", default=",".join(WORKLOADS),
                   help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--messages", type=int, metavar="N",
                   help="messages for the ftpd-eventd rate (200,000)")
    p.add_argument("--baseline", metavar="DIR",
                   help="also measure the ftpd package in DIR (on PYTHONPATH), interleaved "
                        "with this tree's, e.g. an older commit's `git archive`")
    args = p.parse_args(argv)
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    if not only or set(only) - set(WORKLOADS):
        p.error(f"--only: choose from {','.join(WORKLOADS)}")
    size_mib = args.size or (32 if args.quick else 256)
    clients = args.clients or (100 if args.quick else 300)
    waves = args.waves or (2 if args.quick else 5)
    reps = args.reps or (1 if args.quick else 7)
    messages = args.messages or (20_000 if args.quick else 200_000)
    if shutil.which("curl") is None:
        print("eventbench: curl is needed for the transfers", file=sys.stderr)
        return 1
    try:
        import sysv_ipc  # noqa: F401
    except ImportError:
        print("eventbench: sysv_ipc is needed (pip install sysv_ipc)", file=sys.stderr)
        return 1

    size = size_mib << 20
    ws = Workspace(need=3 * size)
    try:
        root = ws.path("root")
        os.mkdir(root)
        make_file(os.path.join(root, "big.bin"), size)
        source = ws.path("source.bin")
        make_file(source, size)
        ctx = {"root": root, "size": size, "source": source, "clients": clients,
               "waves": waves}
        with open("/proc/sys/kernel/msgmnb") as f:
            msgmnb = f.read().strip()
        print(f"eventbench: {platform.platform()}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, kernel.msgmnb "
              f"{msgmnb}, files in {os.path.dirname(ws.dir)}")
        print(f"  {reps} repetition(s) per figure (median), interleaved after one untimed "
              "warm-up; fresh server and receiver (ftpd-eventd + counting handler) per "
              f"measurement; logins: {waves} waves of {clients} concurrent sessions")
        workloads = [w for w in [
            ("retr", f"RETR {size_mib} MiB (curl)", "MB/s", retr, 3),
            ("stor", f"STOR {size_mib} MiB (curl)", "MB/s", stor, 3),
            ("logins", f"{clients} clients login+quit", "sess/s", logins, 2 * clients * waves),
        ] if w[0] in only]
        header = (f"  {'workload':<28} {'sink':<12} {'median':>16} {'min-max':>11} {'cost':>9} "
                  f"{'CPU ms':>8} {'CPU cost':>9} {'us/msg':>7} {'delivered':>13} {'drops':>6}")
        print(header)
        print("  " + "-" * (len(header) - 2))
        trees = {"": "this"}
        if args.baseline:
            trees[os.path.abspath(args.baseline)] = "base"
        for _name, title, unit, workload, per_run in workloads:
            run_workload(ws, title, unit, workload, per_run, ctx, reps, trees)
        if "eventd" in only:
            rates = []
            for _rep in range(max(1, min(reps, 3))):
                rate, seconds, handled = eventd_rate(ws, messages)
                rates.append(rate)
                print(f"  ftpd-eventd -k KEY, no-op --handler: {handled:,} messages in "
                      f"{seconds:.2f} s = {rate:,.0f} msg/s", flush=True)
            verdict = "ok" if statistics.median(rates) >= TARGET_RATE else "below target"
            print(f"  ftpd-eventd median: {statistics.median(rates):,.0f} msg/s "
                  f"(target >= {TARGET_RATE:,}: {verdict})")
        print(f"  cost = how much slower than no sink, in %: the median over the repetitions of "
              "each one's difference to the no-sink run of the same repetition (target < "
              f"{TARGET_COST:.0f} %; "
              "'!' marks a miss); CPU ms = the server's CPU time during the workload "
              "(median), CPU cost = its paired difference to no sink; us/msg = that difference "
              "per message sent, in microseconds of CPU; delivered = messages the receiver handled / expected; drops = "
              "what the server counted")
    finally:
        ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
