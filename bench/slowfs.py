#!/usr/bin/env python3
"""slowfs: does a slow filesystem slow anybody else down? (issue 11)

A server (a subprocess: ``slowfs.py --serve``) on a MemoryFS whose every call sleeps
``--delay`` seconds (200 ms by default): every public filesystem method, and every
``read()``/``write()`` of the file objects it returns (which have no ``fileno()``, so
transfers go through the data pool). Meanwhile ``--sessions`` clients (10) each LIST a
directory and RETR a 1 MiB file in a loop, and one more session sends NOOPs and times
the round trips; p50/p99/max of those are printed (target: p99 < 50 ms). Timings never
belong in the test suite; this is a tool to run by hand. See bench/README.md.
"""

from __future__ import annotations

import argparse
import ftplib
import io
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HOST = "127.0.0.1"
USER = PASSWORD = "bench"
MIB = 1 << 20


def slow_fs(delay: float, files_only: bool = False) -> Any:
    """A MemoryFS whose public methods, and whose files' read/write, sleep *delay*
    (*files_only*: only the files' calls; the metadata calls answer at once)."""
    from ftpd.fs.memory import MemoryFS

    class SlowFile(io.RawIOBase):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def readable(self) -> bool:
            return True

        def writable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:  # type: ignore[override]
            time.sleep(delay)
            return self._inner.read(size)

        def write(self, b: Any) -> int:  # type: ignore[override]
            time.sleep(delay)
            return self._inner.write(b)

        def seek(self, offset: int, whence: int = 0) -> int:
            time.sleep(delay)
            return self._inner.seek(offset, whence)

        def close(self) -> None:
            self._inner.close()
            super().close()

    class SlowFS(MemoryFS):
        slow = False

        def __getattribute__(self, name: str) -> Any:
            attr = super().__getattribute__(name)
            if name.startswith("_") or not callable(attr) or not object.__getattribute__(
                    self, "slow"):
                return attr

            def slowly(*args: Any, **kwargs: Any) -> Any:
                if not files_only:
                    time.sleep(delay)
                result = attr(*args, **kwargs)
                return SlowFile(result) if isinstance(result, io.IOBase) else result

            return slowly

    files = {"/pub/big.bin": os.urandom(MIB)}
    files.update({f"/pub/f{i:02d}.txt": b"x" * i for i in range(20)})
    fs = SlowFS(files)
    fs.slow = True
    return fs


def serve(delay: float, files_only: bool) -> None:
    """The server side: print the port, serve until stdin closes."""
    from ftpd.embed import FTPServer

    with FTPServer(slow_fs(delay, files_only), users={USER: PASSWORD}) as server:
        print(server.port, flush=True)
        sys.stdin.read()


def loader(port: int, stop: threading.Event, counts: list[int], errors: list[str]) -> None:
    try:
        ftp = ftplib.FTP()
        ftp.connect(HOST, port, timeout=60)
        ftp.login(USER, PASSWORD)
        for _ in range(100_000):
            if stop.is_set():
                break
            ftp.retrlines("LIST pub", lambda line: None)
            got = bytearray()
            ftp.retrbinary("RETR pub/big.bin", got.extend, blocksize=1 << 16)
            if len(got) != MIB:
                errors.append(f"RETR returned {len(got)} bytes")
            counts[0] += 1
        ftp.quit()
    except Exception as exc:  # reported, not raised: the run goes on
        errors.append(repr(exc))


def probe(port: int, seconds: float, interval: float) -> list[float]:
    ftp = ftplib.FTP()
    ftp.connect(HOST, port, timeout=60)
    ftp.login(USER, PASSWORD)
    rtts: list[float] = []
    deadline = time.monotonic() + seconds
    for _ in range(1_000_000):
        if time.monotonic() >= deadline:
            break
        start = time.perf_counter()
        ftp.voidcmd("NOOP")
        rtts.append(time.perf_counter() - start)
        time.sleep(interval)
    ftp.quit()
    return rtts


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run(args: argparse.Namespace) -> int:
    command = [sys.executable, __file__, "--serve", "--delay", str(args.delay)]
    if args.files_only:
        command.append("--files-only")
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        stop, errors, counts = threading.Event(), [], [0]
        loaders = [threading.Thread(target=loader, args=(port, stop, counts, errors))
                   for _ in range(args.sessions)]
        for t in loaders:
            t.start()
        rtts = probe(port, args.seconds, args.interval)
        stop.set()
        for t in loaders:
            t.join(120)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    ms = [r * 1000 for r in rtts]
    which = "file read/write/seek" if args.files_only else "filesystem"
    print(f"slowfs: every {which} call sleeps {args.delay * 1000:.0f} ms; {args.sessions} "
          f"sessions LIST + RETR 1 MiB for {args.seconds:g} s ({counts[0]} rounds done)")
    print(f"NOOP round trips of another session: n={len(ms)} "
          f"p50={statistics.median(ms):.1f} ms p99={percentile(ms, 99):.1f} ms "
          f"max={max(ms):.1f} ms (target p99 < 50 ms)")
    for error in errors[:5]:
        print("loader error:", error)
    return 1 if errors else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--delay", type=float, default=0.2, metavar="SEC",
                   help="sleep of every filesystem call (default 0.2)")
    p.add_argument("--sessions", type=int, default=10, help="loading sessions (default 10)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to probe (default 20)")
    p.add_argument("--interval", type=float, default=0.02, metavar="SEC",
                   help="pause between NOOPs (default 0.02)")
    p.add_argument("--files-only", action="store_true",
                   help="only the file objects' calls are slow, not the metadata calls")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.delay, args.files_only)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
