#!/usr/bin/env python3
"""ftpbench: the same workloads against ftpd, pyftpdlib and vsftpd (when installed).

Every server is started by this script on 127.0.0.1 with a free port, serving one
temporary directory, and stopped by its pid at the end. Repetitions are interleaved
across the servers, and each figure is printed with the ratio ftpd-vs-other, oriented
so that above 1.0 is in ftpd's favour:

  throughput  ftpd / other    (MB/s, 10^6 bytes per second)
  time        other / ftpd    (seconds; logins per second is count / median wall time)
  memory      other / ftpd    (KB per idle logged-in session)
  server CPU  other / ftpd    (seconds of server CPU per GB moved)

Workloads, in this order: ``logins`` (300 concurrent connect+USER+PASS+QUIT from a
selectors-based raw-socket client; again 25 at a time), ``list`` (LIST of a
10,000-entry directory), ``retr`` and ``stor`` (a 512 MiB file with curl and with an
ftplib client), ``tls-retr`` and ``tls-stor`` (the same over explicit FTPS: AUTH TLS,
PROT P, data connections resuming the control connection's TLS session; against a
second instance of each server started with a certificate made at run time by
``trustme``), ``memory`` (1,000 idle logged-in sessions; VmRSS, PSS and USS of the
server's process tree before and after, per session, on a fresh server each round).
``--quick`` shrinks them to a smoke run of about ten seconds. Timings never belong in
the test suite; this is a tool to run by hand (``make bench``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ftplib
import json
import os
import platform
import resource
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
WORKLOADS = ("logins", "list", "retr", "stor", "tls-retr", "tls-stor", "memory")
TRANSFERS = ("retr", "stor", "tls-retr", "tls-stor")
SERVERS = ("ftpd", "pyftpdlib", "vsftpd")
# --baseline [NAME=]DIR: another ftpd source tree (say a `git archive` of an older
# commit), run as the server NAME ("baseline") beside this one: before/after in one run
BASELINES: dict[str, str] = {}
VSFTPD = "/usr/sbin/vsftpd"
BIG = "pub/big.bin"
LISTDIR = "pub/list"
CHUNK = 1 << 20

# The pyftpdlib runner: its default single-process select/epoll loop (FTPServer), an
# anonymous write-enabled user on the data directory plus a named user, quiet logging
# (ftpd runs with -q too), the same listen backlog as ftpd (512) and max_cons 2000.
PYFTPDLIB_RUNNER = r"""
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.log import config_logging
from pyftpdlib.servers import FTPServer

host, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config_logging(level=logging.WARNING)
auth = DummyAuthorizer()
auth.add_anonymous(root, perm="elradfmwMT")
auth.add_user("bench", "bench", root, perm="elradfmwMT")


if len(sys.argv) > 5:  # TLS: explicit FTPS (AUTH TLS, PBSZ, PROT), needs pyOpenSSL
    from pyftpdlib.handlers import TLS_FTPHandler as Base
    Base.certfile, Base.keyfile = sys.argv[4], sys.argv[5]
else:
    Base = FTPHandler


class Handler(Base):
    authorizer = auth


server = FTPServer((host, port), Handler, backlog=512)
server.max_cons = 2000
server.max_cons_per_ip = 0
server.serve_forever(handle_exit=True)
"""


@dataclass
class TLSFiles:
    """A throw-away CA and a server certificate for 127.0.0.1, made by trustme."""
    ca: str
    cert: str
    key: str


def make_tls_files(base: str) -> TLSFiles | str:
    """The files, or why they cannot be made."""
    try:
        import trustme
    except ImportError:
        return f"trustme is not importable by {sys.executable} (pip install trustme)"
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(*(os.path.join(base, n) for n in ("ca.pem", "cert.pem", "key.pem")))
    ca.cert_pem.write_to_path(files.ca)
    with open(files.cert, "wb") as f:
        for blob in leaf.cert_chain_pems:
            f.write(blob.bytes())
    leaf.private_key_pem.write_to_path(files.key)
    os.chmod(files.key, 0o600)  # the servers run as this user (vsftpd reads it as root,
    # before its chroot)
    return files


# -- small helpers ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text.rsplit(")", 1)[1].split()  # fields from 3 (state) on


def process_tree(pid: int) -> list[int]:
    """*pid* and all its descendants (vsftpd forks per session)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo and len(out) < 100_000:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def _kb_field(path: str, name: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def memory_kb(pid: int) -> tuple[int, int, int, int]:
    """(VmRSS, Pss, USS, number of processes), the sizes in KB summed over the server's
    process tree. USS = Private_Clean + Private_Dirty: what no other process shares."""
    pids = process_tree(pid)
    rss = pss = uss = 0
    for p in pids:
        rss += _kb_field(f"/proc/{p}/status", "VmRSS:")
        pss += _kb_field(f"/proc/{p}/smaps_rollup", "Pss:")
        uss += (_kb_field(f"/proc/{p}/smaps_rollup", "Private_Clean:")
                + _kb_field(f"/proc/{p}/smaps_rollup", "Private_Dirty:"))
    return rss, pss, uss, len(pids)


def cpu_seconds(pid: int) -> float:
    """utime+stime (+ reaped children's) of *pid*."""
    try:
        f = _stat_fields(pid)
        ticks = sum(int(x) for x in f[11:15])
    except (OSError, IndexError, ValueError):
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else 0.0


# -- servers -------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    tls: TLSFiles | None = None  # a TLS-enabled instance
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    logfile: str = ""
    skipped: str = ""  # why this server is not in the run

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = 5) -> str:
        try:
            with open(self.logfile, errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-n:])
        except OSError:
            return ""


def server_command(name: str, port: int, root: str, base: str,
                   tls: TLSFiles | None = None) -> list[str]:
    if name == "ftpd" or name in BASELINES:
        cmd = [sys.executable, "-m", "ftpd", "-l", f"{HOST}:{port}", "-r", root, "-w",
               "-u", "bench", "-P", "bench", "--max-connections", "2000", "-q"]
        if tls:  # explicit FTPS (AUTH TLS offered), data sessions must be resumed
            cmd += ["--tls-cert", tls.cert, "--tls-key", tls.key]
        return cmd
    if name == "pyftpdlib":
        cmd = [sys.executable, "-c", PYFTPDLIB_RUNNER, HOST, str(port), root]
        return cmd + [tls.cert, tls.key] if tls else cmd
    if name == "vsftpd":
        conf = os.path.join(base, "vsftpd-tls.conf" if tls else "vsftpd.conf")
        lines = [
            "listen=YES", "listen_ipv6=NO", f"listen_address={HOST}", f"listen_port={port}",
            "background=NO", "anonymous_enable=YES", "local_enable=NO", f"anon_root={root}",
            "write_enable=YES", "anon_upload_enable=YES", "anon_mkdir_write_enable=YES",
            "anon_other_write_enable=YES", "anon_umask=022", "seccomp_sandbox=NO",
            "pasv_enable=YES", "pasv_min_port=61000", "pasv_max_port=61999",
            "connect_from_port_20=NO", "xferlog_enable=NO", "dirmessage_enable=NO",
            "max_clients=0", "max_per_ip=0", "idle_session_timeout=600",
        ]
        if os.geteuid() != 0:  # no chroot or user switch without root
            lines.append("run_as_launching_user=YES")
        if tls:  # explicit FTPS for anonymous users too; data sessions must be resumed
            lines += [
                "ssl_enable=YES", f"rsa_cert_file={tls.cert}",
                f"rsa_private_key_file={tls.key}", "allow_anon_ssl=YES",
                "force_anon_logins_ssl=NO", "force_anon_data_ssl=NO",
                "require_ssl_reuse=YES", "ssl_tlsv1=YES", "ssl_sslv2=NO", "ssl_sslv3=NO",
                "ssl_ciphers=HIGH",
            ]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return [VSFTPD, conf]
    raise ValueError(name)


def availability(name: str, tls: bool = False) -> str:
    """Empty when *name* can be run here, else the reason it cannot."""
    if name == "vsftpd" and not os.access(VSFTPD, os.X_OK):
        return f"{VSFTPD} not installed"
    if name in BASELINES and not os.path.isfile(os.path.join(BASELINES[name], "ftpd",
                                                             "__main__.py")):
        return f"--baseline {BASELINES[name]!r} has no ftpd/__main__.py"
    if name in ("ftpd", "pyftpdlib"):
        mods = ["ftpd"] if name == "ftpd" else ["pyftpdlib"]
        if name == "pyftpdlib" and tls:
            mods.append("OpenSSL")  # pyftpdlib's TLS_FTPHandler is built on pyOpenSSL
        for mod in mods:
            r = subprocess.run([sys.executable, "-c", f"import {mod}"],
                               capture_output=True, timeout=30)
            if r.returncode:
                hint = " (pyOpenSSL: pip install pyopenssl)" if mod == "OpenSSL" else ""
                return f"{mod} is not importable by {sys.executable}{hint}"
    return ""


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> str:
    """Empty once the server greets with 220; else why not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode}"
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                greeting = s.recv(1024)
                if greeting.startswith(b"220"):
                    with contextlib.suppress(OSError):
                        s.sendall(b"QUIT\r\n")
                        s.recv(1024)
                    return ""
                last = f"greeting {greeting[:60]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    return f"not ready after {timeout:.0f} s ({last})"


def start_server(name: str, root: str, base: str, tls: TLSFiles | None = None) -> Server:
    srv = Server(name, tls)
    reason = availability(name, tls is not None)
    if reason:
        srv.skipped = reason
        return srv
    srv.port = free_port()
    srv.logfile = os.path.join(base, f"{name}{'-tls' if tls else ''}.log")
    cmd = server_command(name, srv.port, root, base, tls)
    env, cwd = None, None
    if name in BASELINES:  # `python -m` puts the working directory first on the path
        cwd = BASELINES[name]
        env = dict(os.environ, PYTHONPATH=cwd)
    with open(srv.logfile, "wb") as log:
        srv.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, env=env, cwd=cwd)
    reason = wait_ready(srv.port, srv.proc)
    if reason:
        srv.skipped = f"{reason}; log: {srv.log_tail()}"
        stop_server(srv)
    return srv


def stop_server(srv: Server) -> None:
    """SIGTERM the server's own process group (created for it), then SIGKILL if needed."""
    proc = srv.proc
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)  # pgid == pid: start_new_session=True
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        # vsftpd's per-session children share the group; make sure none survive
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        break
    srv.proc = None


def wait_tree_settles(srv: Server, nprocs: int, timeout: float = 30.0) -> None:
    """After closing sessions: wait (bounded) until per-session processes have exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(process_tree(srv.pid)) > nprocs:
        time.sleep(0.1)


# -- raw-socket session client (selectors) ----------------------------------------------
class _Sess:
    __slots__ = ("sock", "state", "buf")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.state, self.buf = sock, "banner", bytearray()


def pop_reply(buf: bytearray) -> int | None:
    """The code of the first complete (possibly multi-line) reply in *buf*, removed."""
    pos, code = 0, None
    for _ in range(10_000):
        nl = buf.find(b"\n", pos)
        if nl < 0:
            return None
        line = bytes(buf[pos:nl])
        pos = nl + 1
        if code is None:
            code = line[:3]
            if line[3:4] != b"-":
                break
        elif line[:3] == code and line[3:4] == b" ":
            break
    del buf[:pos]
    return int(code) if code and code.isdigit() else -1


@dataclass
class SessionRun:
    wall: float = 0.0
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    held: list[socket.socket] = field(default_factory=list)


def run_sessions(port: int, count: int, window: int, hold: bool,
                 timeout: float = 120.0) -> SessionRun:
    """*count* anonymous sessions, at most *window* in progress at once: connect, USER,
    PASS, then QUIT (or, with *hold*, stay logged in and idle; their sockets are returned).
    """
    sel = selectors.DefaultSelector()
    res = SessionRun()
    started = active = 0
    t0 = time.perf_counter()
    deadline = t0 + timeout

    def end(st: _Sess, error: str | None) -> None:
        nonlocal active
        sel.unregister(st.sock)
        active -= 1
        if error is None:
            res.ok += 1
            if hold and st.state == "idle":
                res.held.append(st.sock)
                return
        else:
            res.failed += 1
            res.errors[error] += 1
        st.sock.close()

    def send(st: _Sess, line: bytes, state: str) -> None:
        st.sock.send(line)  # a few bytes on an empty socket buffer: never partial
        st.state = state

    while res.ok + res.failed < count and time.perf_counter() < deadline:
        while started < count and active < window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((HOST, port))
            started += 1
            if err not in (0, errno.EINPROGRESS):
                s.close()
                res.failed += 1
                res.errors[f"connect: {os.strerror(err)}"] += 1
                continue
            sel.register(s, selectors.EVENT_READ, _Sess(s))
            active += 1
        for key, _ in sel.select(timeout=max(0.0, min(1.0, deadline - time.perf_counter()))):
            st: _Sess = key.data
            try:
                data = st.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                end(st, f"{st.state}: {exc.strerror}")
                continue
            if not data:
                end(st, None if st.state == "quit" else f"{st.state}: closed by server")
                continue
            st.buf += data
            try:
                while (code := pop_reply(st.buf)) is not None:
                    if st.state == "banner" and code == 220:
                        send(st, b"USER anonymous\r\n", "user")
                    elif st.state == "banner" and code == 120:
                        pass
                    elif st.state == "user" and code == 331:
                        send(st, b"PASS bench@example.com\r\n", "pass")
                    elif st.state in ("user", "pass") and code == 230:
                        if hold:
                            st.state = "idle"
                            end(st, None)
                        else:
                            send(st, b"QUIT\r\n", "quit")
                    elif st.state == "quit" and code == 221:
                        end(st, None)
                    else:
                        end(st, f"{st.state}: unexpected reply {code}")
                    if st.state == "idle" or st.sock.fileno() < 0:
                        break  # this session is over
            except OSError as exc:
                end(st, f"{st.state}: {exc.strerror}")
    res.wall = time.perf_counter() - t0
    if started < count:
        res.failed += count - started
        res.errors["not started: timeout"] += count - started
    for key in list(sel.get_map().values()):  # timed out
        res.failed += 1
        res.errors[f"{key.data.state}: timeout"] += 1
        key.fileobj.close()  # type: ignore[union-attr]
    sel.close()
    return res


def close_held(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.send(b"QUIT\r\n")
        s.close()


# -- workloads ------------------------------------------------------------------------
@dataclass
class Config:
    size_mib: int
    logins: int
    idle: int
    entries: int
    reps: int
    list_reps: int
    mem_rounds: int


def ftp_login(port: int, timeout: float = 60.0) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=timeout)
    ftp.connect(HOST, port)
    ftp.login("anonymous", "bench@example.com")
    ftp.voidcmd("TYPE I")
    return ftp


def curl_transfer(srv: Server, direction: str, local: str, remote: str,
                  timeout: float) -> tuple[int, float, str]:
    """(bytes moved, seconds of the transfer phase) by curl's own clock, and ""."""
    url = f"ftp://{HOST}:{srv.port}/{remote}"
    fmt = "%{size_download} %{size_upload} %{time_pretransfer} %{time_total}"
    cmd = ["curl", "-sS", "--max-time", str(int(timeout)), "-w", fmt]
    if srv.tls:  # explicit FTPS: AUTH TLS, then PBSZ 0 and PROT P; curl resumes the
        # control connection's session on the data connections by itself
        cmd += ["--ssl-reqd", "--cacert", srv.tls.ca]
    cmd += ["-o", os.devnull, url] if direction == "retr" else ["-T", local, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
    if r.returncode:
        raise RuntimeError(f"curl exit {r.returncode}: {r.stderr.strip()[:200]}")
    down, up, pre, total = r.stdout.split()
    nbytes = int(float(down if direction == "retr" else up))
    return nbytes, float(total) - float(pre), ""


class ReuseFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose protected data connections resume the control connection's TLS
    session (as tests/tls does; vsftpd's require_ssl_reuse and ftpd insist on it).
    ``last`` describes the last data connection: protocol, cipher, session resumed."""

    last = ""

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            try:
                conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                                session=self.sock.session)  # type: ignore[attr-defined]
            except BaseException:
                conn.close()
                raise
            cipher = conn.cipher()
            self.last = (f"{conn.version()} {cipher[0] if cipher else '?'}, data session "
                         f"{'resumed' if conn.session_reused else 'NOT resumed'}")
        return conn, size


def ftps_login(srv: Server, timeout: float) -> ReuseFTP_TLS:
    assert srv.tls is not None
    ctx = ssl.create_default_context(cafile=srv.tls.ca)
    ftp = ReuseFTP_TLS(context=ctx, timeout=timeout)
    ftp.connect(HOST, srv.port)
    ftp.login("anonymous", "bench@example.com")  # AUTH TLS first (FTP_TLS.login)
    ftp.prot_p()  # PBSZ 0, PROT P
    ftp.voidcmd("TYPE I")
    return ftp


def ftplib_transfer(srv: Server, direction: str, local: str, remote: str,
                    timeout: float) -> tuple[int, float, str]:
    """(bytes moved, seconds, a note on the TLS data connection or "").
    ftplib for the dialogue; the data socket is pumped with recv_into a reused
    1 MiB buffer (RETR) or socket.sendfile (STOR), so the client stays cheap. Over TLS,
    STOR writes 1 MiB pieces read into one buffer (socket.sendfile would fall back to
    8 KiB sends), and both directions end with the TLS close_notify (unwrap), as
    ftplib's own retrbinary/storbinary do: without it the upload is incomplete."""
    ftp = ftps_login(srv, timeout) if srv.tls else ftp_login(srv.port, timeout)
    try:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        nbytes = 0
        t0 = time.perf_counter()
        if direction == "retr":
            with ftp.transfercmd(f"RETR /{remote}") as conn:
                while n := conn.recv_into(view):
                    nbytes += n
                if isinstance(conn, ssl.SSLSocket):
                    with contextlib.suppress(OSError):  # the server may be gone already
                        conn.unwrap()
        elif srv.tls:
            with ftp.transfercmd(f"STOR /{remote}") as conn, open(local, "rb") as f:
                while n := f.readinto(buf):
                    conn.sendall(view[:n])
                    nbytes += n
                assert isinstance(conn, ssl.SSLSocket)
                conn.unwrap()
        else:
            with ftp.transfercmd(f"STOR /{remote}") as conn, open(local, "rb") as f:
                nbytes = conn.sendfile(f)
        ftp.voidresp()
        secs = time.perf_counter() - t0
        return nbytes, secs, ftp.last if isinstance(ftp, ReuseFTP_TLS) else ""
    finally:
        with contextlib.suppress(OSError, ftplib.Error):
            ftp.quit()
        ftp.close()


def warm_up(source: str, scratch: int) -> None:
    """Make each run start from the same memory state. On this kind of VM (virtio-balloon
    free page reporting, DAMON pageout) the page cache of an idle file is evicted and
    freed memory goes back to the host within seconds, so the first touch is slow again:
    read the source file whole, and before a STOR write and delete *scratch* bytes, so
    the upload gets pages already backed (measured: a cold 512 MiB write takes 0.5-2 s,
    the same write just after this 0.1-0.25 s)."""
    fd = os.open(source, os.O_RDONLY)
    try:
        while os.read(fd, CHUNK):
            pass
    finally:
        os.close(fd)
    if scratch:
        path = os.path.join(os.path.dirname(source), ".ftpbench-scratch")
        block = b"\xa5" * CHUNK
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(scratch // CHUNK + 1):
                os.write(fd, block)
        finally:
            os.close(fd)
            os.unlink(path)


def do_transfer(srv: Server, client: str, direction: str, root: str,
                cfg: Config) -> tuple[float, float | None]:
    """(MB/s, server CPU seconds per GB) of one transfer. The CPU time is the server
    process's utime+stime, in clock ticks of 10 ms; None for vsftpd, whose work happens
    in per-session processes that are not all waited for, so it never reaches the
    listener's accounts."""
    size = cfg.size_mib << 20
    timeout = max(60.0, size / 20e6)  # never slower than 20 MB/s
    local = os.path.join(root, BIG)
    remote = BIG if direction == "retr" else f"pub/up-{srv.name}.bin"
    what = f"{'tls-' if srv.tls else ''}{direction}"
    fn = curl_transfer if client == "curl" else ftplib_transfer
    warm_up(local, size if direction == "stor" else 0)
    cpu0 = cpu_seconds(srv.pid)
    try:
        nbytes, secs, note = fn(srv, direction, local, remote, timeout)
        cpu = cpu_seconds(srv.pid) - cpu0
        if direction == "stor":
            on_disk = os.path.getsize(os.path.join(root, remote))
            if on_disk != size:
                raise RuntimeError(f"uploaded {on_disk} bytes, expected {size}")
    finally:
        if direction == "stor":
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, remote))
    if nbytes != size:
        raise RuntimeError(f"moved {nbytes} bytes, expected {size}")
    rate = mbps(nbytes, secs)
    line = f"    {srv.name:<10} {what:<8} {client:<6} {rate:9.1f} MB/s  {secs:6.3f} s"
    note = f"  ({note})" if note else ""
    if srv.name == "vsftpd":
        print(line + note, flush=True)
        return rate, None
    cpu_per_gb = cpu / (nbytes / 1e9)
    print(f"{line}  server CPU {cpu:5.2f} s = {cpu_per_gb:.2f} s/GB{note}", flush=True)
    return rate, cpu_per_gb


def do_logins(srv: Server, cfg: Config, window: int) -> float:
    """Wall time of cfg.logins connect+login+quit sessions, *window* in flight at once."""
    # a session without its banner after 15 s counts as lost (any real client gives up)
    res = run_sessions(srv.port, cfg.logins, window=window, hold=False, timeout=15)
    if res.failed:
        raise RuntimeError(f"{res.failed}/{cfg.logins} sessions failed: "
                           f"{dict(res.errors.most_common(3))}")
    rate = cfg.logins / res.wall
    print(f"    {srv.name:<10} {cfg.logins} logins, {window:>3} in flight: {res.wall:.3f} s = "
          f"{rate:6.0f}/s", flush=True)
    return res.wall


def do_memory(srv: Server, cfg: Config) -> tuple[float, float, float]:
    """KB per idle logged-in session: (VmRSS, PSS, USS) after minus before, / cfg.idle."""
    warm = run_sessions(srv.port, 5, window=5, hold=False, timeout=30)
    if warm.failed:
        raise RuntimeError(f"warm-up sessions failed: {dict(warm.errors)}")
    time.sleep(0.5)
    base_procs = len(process_tree(srv.pid))
    before = memory_kb(srv.pid)
    # 25 at a time: under vsftpd's listen backlog (32), whose overflow strands handshakes
    res = run_sessions(srv.port, cfg.idle, window=25, hold=True, timeout=120)
    try:
        if res.failed:
            raise RuntimeError(f"{res.failed}/{cfg.idle} sessions failed: "
                               f"{dict(res.errors.most_common(3))}")
        time.sleep(1.0)
        after = memory_kb(srv.pid)
    finally:
        close_held(res.held)
        wait_tree_settles(srv, base_procs)
    rss, pss, uss = ((a - b) / cfg.idle for a, b in zip(after[:3], before[:3], strict=True))
    print(f"    {srv.name:<10} {cfg.idle} idle sessions: VmRSS {before[0] / 1024:.1f} -> "
          f"{after[0] / 1024:.1f} MiB = {rss:.1f} KB/session; PSS {pss:.1f}, USS {uss:.1f} "
          f"KB/session ({after[3]} processes)", flush=True)
    return rss, pss, uss


def do_list(srv: Server, cfg: Config, note: str = "") -> float:
    """Seconds for one LIST of the big directory, from the command to the 226."""
    ftp = ftp_login(srv.port)
    try:
        t0 = time.perf_counter()
        chunks = []
        with ftp.transfercmd(f"LIST /{LISTDIR}") as conn:
            while data := conn.recv(1 << 16):
                chunks.append(data)
        ftp.voidresp()
        elapsed = time.perf_counter() - t0
    finally:
        with contextlib.suppress(OSError, ftplib.Error):
            ftp.quit()
        ftp.close()
    listing = b"".join(chunks)
    names = sum(1 for line in listing.splitlines() if line.rstrip().endswith(b".dat"))
    if names != cfg.entries:
        raise RuntimeError(f"LIST gave {names} entries, expected {cfg.entries}")
    print(f"    {srv.name:<10} LIST {cfg.entries} entries: {elapsed * 1000:7.1f} ms "
          f"({len(listing)} bytes){note}", flush=True)
    return elapsed


# -- fixtures -------------------------------------------------------------------------
def make_fixtures(root: str, cfg: Config, workloads: list[str]) -> None:
    os.chmod(os.path.dirname(root), 0o755)
    os.makedirs(os.path.join(root, "pub"))
    os.chmod(root, 0o755)  # vsftpd chroots anonymous here: must not be writable by it
    os.chmod(os.path.join(root, "pub"), 0o777)  # anonymous uploads land in pub/
    if set(TRANSFERS) & set(workloads):
        block = os.urandom(CHUNK)
        with open(os.path.join(root, BIG), "wb") as f:
            for _ in range(cfg.size_mib):
                f.write(block)
        os.chmod(os.path.join(root, BIG), 0o644)
    if "list" in workloads:
        d = os.path.join(root, LISTDIR)
        os.makedirs(d)
        os.chmod(d, 0o755)
        for i in range(cfg.entries):
            with open(os.path.join(d, f"entry-{i:05d}.dat"), "wb") as f:
                f.write(b"x" * (i % 4096))
    os.sync()  # nothing dirty left to be written back during the measurements


# -- the run --------------------------------------------------------------------------
# (key, label, unit, higher-is-better, workload)
METRICS = [
    ("retr_curl", "RETR curl", "MB/s", True, "retr"),
    ("retr_ftplib", "RETR ftplib", "MB/s", True, "retr"),
    ("stor_curl", "STOR curl", "MB/s", True, "stor"),
    ("stor_ftplib", "STOR ftplib", "MB/s", True, "stor"),
    ("retr_curl_cpu", "RETR curl, server CPU", "s/GB", False, "retr"),
    ("retr_ftplib_cpu", "RETR ftplib, server CPU", "s/GB", False, "retr"),
    ("stor_curl_cpu", "STOR curl, server CPU", "s/GB", False, "stor"),
    ("stor_ftplib_cpu", "STOR ftplib, server CPU", "s/GB", False, "stor"),
    ("tls_retr_curl", "TLS RETR curl", "MB/s", True, "tls-retr"),
    ("tls_retr_ftplib", "TLS RETR ftplib", "MB/s", True, "tls-retr"),
    ("tls_stor_curl", "TLS STOR curl", "MB/s", True, "tls-stor"),
    ("tls_stor_ftplib", "TLS STOR ftplib", "MB/s", True, "tls-stor"),
    ("tls_retr_curl_cpu", "TLS RETR curl, server CPU", "s/GB", False, "tls-retr"),
    ("tls_retr_ftplib_cpu", "TLS RETR ftplib, server CPU", "s/GB", False,
     "tls-retr"),
    ("tls_stor_curl_cpu", "TLS STOR curl, server CPU", "s/GB", False, "tls-stor"),
    ("tls_stor_ftplib_cpu", "TLS STOR ftplib, server CPU", "s/GB", False,
     "tls-stor"),
    ("login_wall", "{logins} logins at once", "s", False, "logins"),
    ("login_rate", "{logins} logins at once", "logins/s", True, "logins"),
    ("login25_rate", "{logins} logins, 25 at once", "logins/s", True, "logins"),
    ("mem_rss", "idle session, VmRSS", "KB", False, "memory"),
    ("mem_pss", "idle session, PSS", "KB", False, "memory"),
    ("mem_uss", "idle session, USS", "KB", False, "memory"),
    ("list_s", "LIST {entries} entries", "s", False, "list"),
]
HIGHER = {m[0]: m[3] for m in METRICS}


def ratio(key: str, ftpd: float | None, other: float | None) -> float | None:
    if not ftpd or not other:  # missing, or 0 (below the 10 ms resolution of CPU ticks)
        return None
    if HIGHER[key]:
        return ftpd / other if other > 0 else None
    return other / ftpd if ftpd > 0 else None


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def _cpu_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # all, idle + iowait


def machine_busy(interval: float = 0.2) -> float:
    """Fraction of all CPUs busy over *interval* (whoever is using them)."""
    t0, i0 = _cpu_ticks()
    time.sleep(interval)
    t1, i1 = _cpu_ticks()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


class Quiet:
    """Before each timed run, wait (bounded) until the machine is quiet: anything else
    running then -- another process, the kernel tearing down vsftpd's per-session
    namespaces -- would be measured as the server's time."""

    def __init__(self, threshold: float = 0.25, max_wait: float = 10.0) -> None:
        self.threshold, self.max_wait = threshold, max_wait
        self.runs = self.noisy = 0
        self.waited = 0.0

    def __call__(self) -> None:
        t0 = time.monotonic()
        self.runs += 1
        while self.max_wait > 0 and machine_busy() > self.threshold:
            if time.monotonic() - t0 > self.max_wait:
                self.noisy += 1
                break
        self.waited += time.monotonic() - t0


@dataclass
class Run:
    cfg: Config
    quiet: Quiet
    samples: dict[str, dict[str, list[float]]]
    errors: dict[str, dict[str, str]]

    def attempt(self, srv: Server, key: str, fn: Any, *a: Any) -> Any:
        """One timed run; a failure is reported and ends that figure for that server."""
        if key in self.errors[srv.name]:
            return None
        self.quiet()
        try:
            value = fn(*a)
        except Exception as exc:  # report and go on with the other servers
            self.errors[srv.name][key] = f"{type(exc).__name__}: {exc}"
            print(f"    {srv.name:<10} {key}: FAILED: {self.errors[srv.name][key]}", flush=True)
            return None
        return value

    def add(self, srv: Server, key: str, value: float) -> None:
        self.samples[srv.name].setdefault(key, []).append(value)


def shared_phases(r: Run, servers: list[Server], workloads: list[str], root: str) -> None:
    """logins, list, retr, stor against the shared servers, repetitions interleaved."""
    cfg = r.cfg
    for w in workloads:
        if w == "memory":
            continue
        print(f"[{w}]", flush=True)
        if w == "logins":
            # all at once (the issue's figure), then 25 in flight: below vsftpd's listen
            # backlog of 32, so its per-login cost shows without lost handshakes
            for window, key in ((cfg.logins, "login"), (25, "login25")):
                for _ in range(cfg.reps):
                    for srv in servers:
                        wall = r.attempt(srv, key, do_logins, srv, cfg, window)
                        if wall:
                            r.add(srv, f"{key}_wall", wall)
                            r.add(srv, f"{key}_rate", cfg.logins / wall)
        elif w == "list":
            for srv in servers:  # warm-up: directory caches, lazy imports
                r.attempt(srv, "list_s", do_list, srv, cfg, " warm-up, not counted")
            for _ in range(cfg.list_reps):
                for srv in servers:
                    secs = r.attempt(srv, "list_s", do_list, srv, cfg)
                    if secs:
                        r.add(srv, "list_s", secs)
        elif w in TRANSFERS:
            direction = w.rsplit("-", 1)[-1]
            for client in ("curl", "ftplib"):
                key = f"{w.replace('-', '_')}_{client}"
                if client == "curl" and not shutil.which("curl"):
                    for srv in servers:
                        r.errors[srv.name][key] = "curl not installed"
                    continue
                for _ in range(cfg.reps):
                    for srv in servers:
                        got = r.attempt(srv, key, do_transfer, srv, client, direction,
                                        root, cfg)
                        if got:
                            r.add(srv, key, got[0])
                            if got[1] is not None:
                                r.add(srv, f"{key}_cpu", got[1])


def memory_phase(r: Run, names: list[str], root: str, base: str,
                 skipped: dict[str, str]) -> None:
    """Each server fresh, alone: memory freed by earlier workloads would be reused by
    the new sessions and hide their cost."""
    print("[memory]", flush=True)
    for name in names:
        if name in skipped:
            continue
        for _ in range(r.cfg.mem_rounds):
            srv = start_server(name, root, base)
            try:
                if srv.skipped:
                    print(f"  {name}: SKIPPED: {srv.skipped}", flush=True)
                    r.errors[name]["memory"] = srv.skipped
                    break
                got = r.attempt(srv, "memory", do_memory, srv, r.cfg)
                if not got:
                    break
                for key, value in zip(("mem_rss", "mem_pss", "mem_uss"), got, strict=True):
                    r.add(srv, key, value)
            finally:
                stop_server(srv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        cfg = Config(size_mib=args.size or 32, logins=50, idle=100, entries=1000,
                     reps=2, list_reps=3, mem_rounds=1)
    else:
        cfg = Config(size_mib=args.size or 512, logins=300, idle=1000, entries=10_000,
                     reps=5, list_reps=5, mem_rounds=3)
    if args.reps:
        cfg.reps = cfg.list_reps = args.reps
    workloads = list(args.only or WORKLOADS)
    names = args.servers
    raise_nofile(2 * cfg.idle + 4096)  # children (the servers) inherit it
    settle = args.settle if args.settle is not None else (0.0 if args.quick else 10.0)
    r = Run(cfg, Quiet(max_wait=settle),
            {n: {} for n in names}, {n: {} for n in names})
    skipped: dict[str, str] = {}
    tls_skipped: dict[str, str] = {}
    base = tempfile.mkdtemp(prefix="ftpbench-")
    root = os.path.join(base, "root")
    servers: list[Server] = []
    t_start = time.monotonic()
    plain = [w for w in workloads if w != "memory" and not w.startswith("tls-")]
    tls_work = [w for w in workloads if w.startswith("tls-")]

    def start_all(tls: TLSFiles | None, why: dict[str, str]) -> None:
        for name in names:
            if name in skipped:  # not runnable at all here
                why[name] = skipped[name]
                continue
            srv = start_server(name, root, base, tls)
            label = f"{name}{' (TLS)' if tls else ''}"
            if srv.skipped:
                print(f"  {label}: SKIPPED: {srv.skipped}", flush=True)
                why[name] = srv.skipped
            else:
                print(f"  {label}: pid {srv.pid} on {HOST}:{srv.port}", flush=True)
                servers.append(srv)

    try:
        os.makedirs(root)
        print(f"fixtures in {base}: {cfg}", flush=True)
        make_fixtures(root, cfg, workloads)
        if plain:
            start_all(None, skipped)
            shared_phases(r, servers, plain, root)
            for srv in servers:
                stop_server(srv)
            servers.clear()
        if tls_work:
            # a second instance of each server, with a certificate: the plain workloads
            # above run on servers without one, as before
            files = make_tls_files(base)
            if isinstance(files, str):
                print(f"  TLS workloads SKIPPED: {files}", flush=True)
                for name in names:
                    tls_skipped[name] = files
            else:
                start_all(files, tls_skipped)
                shared_phases(r, servers, tls_work, root)
            for srv in servers:
                stop_server(srv)
            servers.clear()
        if "memory" in workloads:
            memory_phase(r, names, root, base, skipped)
    finally:
        for srv in servers:
            stop_server(srv)
        shutil.rmtree(base, ignore_errors=True)
    summary: dict[str, dict[str, Any]] = {n: {} for n in names}
    for n, per_key in r.samples.items():
        for key, values in per_key.items():
            if values and _error_key(key) not in r.errors[n]:  # one failed run voids it
                best = max(values) if HIGHER.get(key, False) else min(values)
                summary[n][key] = {"median": statistics.median(values), "best": best,
                                   "runs": values}
        for key in ("login", "login25"):  # a rate is the count over the median wall time
            if f"{key}_wall" in summary[n]:
                wall = summary[n][f"{key}_wall"]
                summary[n][f"{key}_rate"].update(median=cfg.logins / wall["median"],
                                                 best=cfg.logins / wall["best"])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "kernel": platform.release()},
        "ftpd_revision": ftpd_revision(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "config": cfg.__dict__,
        "elapsed_s": round(time.monotonic() - t_start, 1),
        "quiet": {"runs": r.quiet.runs, "noisy": r.quiet.noisy,
                  "waited_s": round(r.quiet.waited, 1)},
        "results": summary, "errors": r.errors, "skipped": skipped,
        "tls_skipped": tls_skipped, "workloads": workloads,
    }


def _error_key(sample_key: str) -> str:
    """The name a failure is filed under for a figure: login_wall -> login, mem_pss -> memory."""
    if sample_key.startswith("login") or sample_key.endswith("_cpu"):
        return sample_key.rsplit("_", 1)[0]
    return "memory" if sample_key.startswith("mem_") else sample_key


def report(out: dict[str, Any]) -> None:
    cfg = out["config"]
    work = out["workloads"]
    has_plain = any(not w.startswith("tls-") for w in work)
    has_tls = any(w.startswith("tls-") for w in work)
    names = [n for n in out["results"]  # left out: skipped for everything asked for
             if (has_plain and n not in out["skipped"])
             or (has_tls and n not in out["tls_skipped"])]
    others = [n for n in names if n != "ftpd"]
    print()
    print(f"ftpbench {out['date']}  nproc={out['machine']['nproc']}  "
          f"python {out['machine']['python']}  ftpd {out['ftpd_revision'] or '?'}  "
          f"({out['elapsed_s']} s)")
    print(f"  file {cfg['size_mib']} MiB, {cfg['logins']} concurrent logins, "
          f"{cfg['idle']} idle sessions, LIST of {cfg['entries']} entries")
    print(f"  runs per figure: {cfg['reps']} (LIST {cfg['list_reps']}; memory: "
          f"{cfg['mem_rounds']} fresh server(s) each)")
    for which in ("median", "best"):
        print(f"\n  {which} of the runs" + (" (ratios from these)" if which == "median" else ""))
        head = f"  {'metric':<30}{'unit':<10}" + "".join(f"{n:>12}" for n in names)
        head += "".join(f"{'vs ' + n:>15}" for n in others)
        print(head)
        print("  " + "-" * (len(head) - 2))
        for key, label, unit, _, workload in METRICS:
            if workload not in out["workloads"]:
                continue
            row = f"  {label.format(**cfg):<30}{unit:<10}"
            vals = {n: out["results"][n].get(key, {}).get(which) for n in names}
            for n in names:
                cell = "FAILED" if _error_key(key) in out["errors"][n] else "n/a"
                if n in out["tls_skipped" if key.startswith("tls_") else "skipped"]:
                    cell = "skipped"
                row += f"{cell if vals[n] is None else _fmt(vals[n]):>12}"
            for n in others:
                q = ratio(key, vals.get("ftpd"), vals[n])
                row += f"{'-' if q is None else f'{q:.2f}x':>15}"
            print(row)
    print("  (ratio > 1.0 = ftpd better: throughput ftpd/other, times and memory other/ftpd)")
    q = out["quiet"]
    print(f"  {q['runs']} timed runs; waited {q['waited_s']} s in all for a quiet machine; "
          f"{q['noisy']} run(s) started while it was still busy")
    for n, reason in out["skipped"].items():
        print(f"  {n} skipped: {reason}")
    for n, reason in out["tls_skipped"].items():
        if n not in out["skipped"]:
            print(f"  {n} with TLS skipped: {reason}")
    for n, errs in out["errors"].items():
        for key, msg in errs.items():
            print(f"  {n} {key} failed: {msg}")


def ftpd_revision() -> str:
    """The checkout's commit (``+dirty`` with local changes), or "" outside git."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "ftpd"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return rev + ("+dirty" if rev and dirty else "")


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.4f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, metavar="MiB", help="transfer file size (default 512)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 32 MiB, 50 logins, 100 idle sessions, 1000 entries")
    p.add_argument("--only", metavar="NAME[,NAME]", type=_names(WORKLOADS),
                   help="workloads to run: " + ",".join(WORKLOADS))
    p.add_argument("--servers", metavar="A,B", type=_names(SERVERS), default=list(SERVERS),
                   help="servers to compare (default: ftpd,pyftpdlib,vsftpd)")
    p.add_argument("--settle", type=float, metavar="SEC",
                   help="before each timed run, wait up to SEC for the machine's CPUs to be "
                        "under 25%% busy (default 10; 0 with --quick; 0 = never wait)")
    p.add_argument("--reps", type=int, metavar="N",
                   help="runs per figure (default 5, LIST 5; 2 and 3 with --quick)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--baseline", metavar="[NAME=]DIR", action="append", default=[],
                   help="also run the ftpd of the source tree DIR (an older commit, say) "
                        "as the server NAME (default 'baseline'); repeatable")
    args = p.parse_args(argv)
    if args.size is not None and args.size <= 0:
        p.error("--size must be positive")
    if args.reps is not None and args.reps <= 0:
        p.error("--reps must be positive")
    if "ftpd" not in args.servers:
        args.servers.insert(0, "ftpd")  # every ratio is against ftpd
    for i, spec in enumerate(args.baseline):
        name, _, where = spec.rpartition("=")
        name = name or "baseline"
        if name in SERVERS or name in BASELINES:
            p.error(f"--baseline {spec}: the name {name!r} is taken")
        BASELINES[name] = os.path.abspath(where)
        args.servers.insert(1 + i, name)
    out = run(args)
    report(out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


def _names(allowed: tuple[str, ...]) -> Any:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad) or 'empty list'}; choose from {','.join(allowed)}")
        return [n for n in allowed if n in names]  # canonical order
    return parse


if __name__ == "__main__":
    sys.exit(main())
