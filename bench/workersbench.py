#!/usr/bin/env python3
"""workersbench: aggregate RETR throughput of 8 concurrent clients, ftpd --workers 1
against --workers 2, plain and over TLS (explicit FTPS, PROT P, data sessions resumed).

Both servers run at once on 127.0.0.1 (free ports), serving one temporary directory
with a certificate made at run time by ``trustme``; rounds are interleaved (ABBA, so a
drift in the machine's load hits both alike) and medians printed with the ratio
workers-2 / workers-1. Each run: 8 client threads log in (the control dialogue through
ftplib), then RETR the file again and again, reading the data socket with
``recv_into`` a reused 1 MiB buffer (TLS: ``ssl`` with the control connection's session
resumed; ``ssl`` releases the GIL while it decrypts, so the threads decrypt in
parallel). Bytes are counted as they arrive; the rate is taken over a fixed window
after a warm-up, so a straggler does not skew it. Beside each rate: CPU seconds per GB
of the server's processes and of this client, and how the sessions fell on the
workers (from each worker's CONNECT log lines). Timings never belong in the tests;
run by hand: ``.venv/bin/python bench/workersbench.py``. See bench/README.md."""

from __future__ import annotations

import argparse
import ftplib
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HOST = "127.0.0.1"
FILE = "big.bin"
BUF = 1 << 20
CLIENTS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_cert(base: str) -> tuple[str, str]:
    """(CA file, server certificate and key file) for 127.0.0.1."""
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert(HOST)
    ca_path, pem = os.path.join(base, "ca.pem"), os.path.join(base, "server.pem")
    ca.cert_pem.write_to_path(ca_path)
    leaf.private_key_and_cert_chain_pem.write_to_path(pem)
    return ca_path, pem


class Server:
    def __init__(self, workers: int, root: str, pem: str, base: str) -> None:
        self.workers, self.port = workers, free_port()
        self.log = os.path.join(base, f"ftpd-w{workers}.log")
        argv = [sys.executable, "-m", "ftpd", "-r", root, "-l", f"{HOST}:{self.port}",
                "--workers", str(workers), "--tls-cert", pem, "--log", self.log,
                "--max-connections", "64"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        for _ in range(500):
            if self.proc.poll() is not None:
                raise RuntimeError(f"ftpd --workers {workers} exited {self.proc.returncode}")
            ready = workers == 1 or read(self.log).count(" serving (pid ") >= workers
            try:
                if ready:
                    socket.create_connection((HOST, self.port), 1).close()
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("ftpd did not start")

    def tree(self) -> list[int]:
        kids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if stat_fields(int(entry))[1] == str(self.proc.pid):
                        kids.append(int(entry))
                except OSError:
                    pass
        return [self.proc.pid, *kids]

    def cpu(self) -> float:
        """CPU seconds of the server's processes (workers included) so far."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.tree():
            try:
                fields = stat_fields(pid)
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class ReuseFTP_TLS(ftplib.FTP_TLS):
    """Protected data connections resume the control connection's TLS session."""

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)  # type: ignore[attr-defined]
        return conn, size


class Sink:
    """Where a cheap client's data goes: spliced through a pipe into /dev/null, so the
    bytes never reach user space (the kernel moves page references)."""

    def __init__(self) -> None:
        import fcntl

        self.r, self.w = os.pipe()
        try:
            fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, BUF)
        except OSError:
            pass
        self.null = os.open(os.devnull, os.O_WRONLY)

    def drain(self, sock: socket.socket, count: Any) -> None:
        """Move everything *sock* delivers until EOF; ``count(n)`` per piece."""
        sock.setblocking(True)  # splice(2) waits in the kernel (a timeout is O_NONBLOCK)
        fd = sock.fileno()
        while n := os.splice(fd, self.w, BUF):
            count(n)
            left = n
            while left:
                left -= os.splice(self.r, self.null, left)

    def close(self) -> None:
        for fd in (self.r, self.w, self.null):
            os.close(fd)


def raw_tls_handshake(sock: socket.socket, ctx: ssl.SSLContext, session: Any) -> int:
    """A TLS handshake (resuming *session*) over memory BIOs, leaving *sock* a plain
    socket: the server's records are then counted, never decrypted (what the server
    does is unchanged; the client costs what a plain one does). The ciphertext bytes
    that came with the handshake's end are returned."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=HOST, session=session)
    for _ in range(1000):
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                sock.sendall(outgoing.read())
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the TLS handshake") from None
            incoming.write(data)
    if outgoing.pending:
        sock.sendall(outgoing.read())
    if not tls.session_reused:
        raise RuntimeError("the data connection did not resume the TLS session")
    return incoming.pending


class Client(threading.Thread):
    """One session: log in, then RETR the file until told to stop, counting bytes."""

    def __init__(self, port: int, ca: str | None, logged_in: threading.Barrier,
                 stop: threading.Event, cheap: bool) -> None:
        super().__init__(daemon=True)
        self.port, self.ca, self.logged_in, self.stop = port, ca, logged_in, stop
        self.cheap = cheap
        self.bytes = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            if self.ca:
                ftp: ftplib.FTP = ReuseFTP_TLS(context=ssl.create_default_context(cafile=self.ca),
                                               timeout=60)
            else:
                ftp = ftplib.FTP(timeout=60)
            ftp.connect(HOST, self.port)
            ftp.login("anonymous", "bench@example.com")
            if self.ca:
                ftp.prot_p()  # type: ignore[attr-defined]
            ftp.voidcmd("TYPE I")
            self.logged_in.wait(60)
            if self.cheap:
                self.cheap_loop(ftp)
            else:
                self.reading_loop(ftp)
            ftp.quit()
        except Exception as exc:  # reported by the run
            self.error = f"{type(exc).__name__}: {exc}"
            try:
                self.logged_in.abort()
            except threading.BrokenBarrierError:
                pass


    def reading_loop(self, ftp: ftplib.FTP) -> None:
        """A real client: every byte read into a reused buffer (and decrypted)."""
        view = memoryview(bytearray(BUF))
        while not self.stop.is_set():
            conn = ftp.transfercmd(f"RETR {FILE}")
            recv_into = conn.recv_into
            while n := recv_into(view):
                self.bytes += n
            conn.close()
            ftp.voidresp()

    def cheap_loop(self, ftp: ftplib.FTP) -> None:
        """The cheapest client: spliced to /dev/null; over TLS, records not decrypted."""
        sink = Sink()
        try:
            while not self.stop.is_set():
                conn = ftplib.FTP.ntransfercmd(ftp, f"RETR {FILE}")[0]  # no TLS wrapping
                if self.ca:
                    self.bytes += raw_tls_handshake(conn, ftp.context,  # type: ignore[attr-defined]
                                                    ftp.sock.session)  # type: ignore[union-attr]
                sink.drain(conn, self.add)
                conn.close()
                ftp.voidresp()
        finally:
            sink.close()

    def add(self, n: int) -> None:
        self.bytes += n


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sessions_per_worker(server: Server, since: int) -> list[int]:
    """CONNECT lines per process in the server's log after offset *since*."""
    counts: dict[str, int] = {}
    for pid in re.findall(r"ftpd\[(\d+)\] INFO \[[^\]]+\] CONNECT", read(server.log)[since:]):
        counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True)


def one_run(server: Server, tls: bool, ca: str, warmup: float, window: float,
            cheap: bool) -> dict[str, Any]:
    since = len(read(server.log))
    stop = threading.Event()
    barrier = threading.Barrier(CLIENTS + 1)
    clients = [Client(server.port, ca if tls else None, barrier, stop, cheap)
               for _ in range(CLIENTS)]
    for c in clients:
        c.start()
    barrier.wait(60)
    time.sleep(warmup)
    b0, s0, c0, t0 = sum(c.bytes for c in clients), server.cpu(), client_cpu(), time.monotonic()
    time.sleep(window)
    b1, s1, c1, t1 = sum(c.bytes for c in clients), server.cpu(), client_cpu(), time.monotonic()
    stop.set()
    for c in clients:
        c.join(120)
    errors = [c.error for c in clients if c.error]
    if errors:
        raise RuntimeError(f"client failed: {errors[0]}")
    gb = (b1 - b0) / 1e9
    return {"mbps": (b1 - b0) / 1e6 / (t1 - t0), "server_cpu_per_gb": (s1 - s0) / gb,
            "client_cpu_per_gb": (c1 - c0) / gb, "spread": sessions_per_worker(server, since)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=64, help="file size (MiB)")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=4.0)
    parser.add_argument("--modes", default="plain,tls")
    parser.add_argument("--client", choices=("cheap", "reading"), default="cheap",
                        help="cheap: spliced to /dev/null, TLS records counted, not "
                        "decrypted; reading: recv_into a buffer, decrypting")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="workersbench-")
    root = os.path.join(base, "root")
    os.mkdir(root)
    with open(os.path.join(root, FILE), "wb") as f:
        block = os.urandom(BUF)
        for _ in range(args.size_mb):
            f.write(block)
    ca, pem = make_cert(base)
    servers = {w: Server(w, root, pem, base) for w in (1, 2)}
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        print(f"load: {os.getloadavg()}, {os.cpu_count()} cpus, {CLIENTS} {args.client} "
              f"clients, {args.size_mb} MiB file")
        for r in range(args.rounds):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            for mode in args.modes.split(","):
                for w in order:
                    res = one_run(servers[w], mode == "tls", ca, args.warmup, args.window,
                                  args.client == "cheap")
                    results.setdefault((mode, w), []).append(res)
                    print(f"round {r} {mode:5} workers={w}: {res['mbps']:8.1f} MB/s  "
                          f"server {res['server_cpu_per_gb']:.2f} s/GB  client "
                          f"{res['client_cpu_per_gb']:.2f} s/GB  sessions {res['spread']}",
                          flush=True)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(base, ignore_errors=True)
    print("\nmedians (MB/s; CPU s per GB: server, client)")
    for mode in args.modes.split(","):
        med = {w: statistics.median(x["mbps"] for x in results[(mode, w)]) for w in (1, 2)}
        cpu = {w: (statistics.median(x["server_cpu_per_gb"] for x in results[(mode, w)]),
                   statistics.median(x["client_cpu_per_gb"] for x in results[(mode, w)]))
               for w in (1, 2)}
        print(f"{mode:5} workers=1 {med[1]:8.1f}  ({cpu[1][0]:.2f}, {cpu[1][1]:.2f})   "
              f"workers=2 {med[2]:8.1f}  ({cpu[2][0]:.2f}, {cpu[2][1]:.2f})   "
              f"ratio {med[2] / med[1]:.2f}x")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
