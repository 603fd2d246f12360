"""systemd socket activation with systemd-socket-activate(1): Accept=no with one or two
listening sockets, Accept=yes, the inetd protocol, LISTEN_FDNAMES, and sd_notify on a
datagram socket of ours (a path or an abstract name). The contrib unit files are
turned into the equivalent systemd-socket-activate command line."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, free_port, has_ipv6_loopback, read_text, wait_until
from lhelpers import (
    Control,
    NotifySocket,
    assert_all_replies,
    pids_with,
    status_sessions,
    wait_exit,
    wait_for_one,
)
from pamsupport import needs_system_users, pam_service, system_account  # the --pam test

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"

pytestmark = pytest.mark.skipif(not os.path.exists(ACTIVATE),
                                reason="systemd-socket-activate is not installed")

def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section -> key -> values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}: {raw!r} outside a section"
        name, sep, value = line.partition("=")
        assert sep, f"{path}: not a key=value line: {raw!r}"
        current.setdefault(name.strip(), []).append(value.strip())
    return sections


def listen_address(value: str, port: int) -> str:
    """ListenStream= value -> the same kind of address on loopback and *port*."""
    if value.startswith("["):
        return f"[::1]:{port}"
    return f"127.0.0.1:{port}"


class Activation:
    """systemd-socket-activate running a command; its stderr (a file) says what it did."""

    numbers = itertools.count()

    def __init__(self, procs, tmp_path: Path, listen: list[str], command: list[str],
                 options: tuple[str, ...] | list[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.stderr_path = tmp_path / f"activate-{next(self.numbers)}.err"
        argv = [ACTIVATE, *[f"--listen={a}" for a in listen], *options]
        for name, value in (env or {}).items():
            argv.append(f"--setenv={name}={value}")
        for name in ("PYTHONPATH", "COVERAGE_PROCESS_START"):  # the launcher clears the rest
            if name in os.environ and name not in (env or {}):
                argv.append(f"--setenv={name}")
        with open(self.stderr_path, "wb") as err:
            self.proc = procs.start([*argv, *command], stderr=err)
        self.listen = listen
        wait_until(self._listening, f"systemd-socket-activate to listen on {listen}")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-socket-activate exited {self.proc.returncode}: "
                                 f"{self.stderr()}")
        return self.stderr().count("Listening on") == len(self.listen)

    def stderr(self) -> str:
        return read_text(self.stderr_path)

    def child_exits(self) -> list[str]:
        return re.findall(r"Child \d+ died with code (\d+)", self.stderr())


def control(address: str) -> Control:
    host, _, port = address.rpartition(":")
    ctl = Control.connect(host.strip("[]"), int(port))
    code, text = ctl.reply()
    assert code == 220, text
    return ctl


def finish(ctl: Control) -> None:
    ctl.expect("QUIT", 221)
    assert ctl.read_to_eof() == b""
    assert_all_replies(ctl.raw)
    ctl.close()


def contrib_command(unit: Path, ftpd: str, served: Path, *extra: str) -> list[str]:
    exec_start = parse_unit(unit)["Service"]["ExecStart"]
    assert len(exec_start) == 1
    argv = shlex.split(exec_start[0].lstrip("-@:+!"))
    assert argv[0].endswith("/ftpd")
    return [ftpd, *[str(served) if a == "/srv/ftp" else a for a in argv[1:]], *extra]


# -- the shipped units ---------------------------------------------------------------------
def test_contrib_systemd_units():
    sock = parse_unit(CONTRIB / "systemd/ftpd.socket")
    service = parse_unit(CONTRIB / "systemd/ftpd.service")
    assert len(sock["Socket"]["ListenStream"]) == 2  # IPv4 and IPv6 at once
    assert sock["Socket"].get("Accept", ["no"]) == ["no"]
    assert service["Service"]["Type"] == ["notify"]
    assert "ExecReload" in service["Service"]
    exec_start = shlex.split(service["Service"]["ExecStart"][0])
    assert not {"-d", "--daemon", "-l", "--listen", "-I", "-W"} & set(exec_start)
    accept = parse_unit(CONTRIB / "systemd/ftpd-accept.socket")
    instance = parse_unit(CONTRIB / "systemd/ftpd-accept@.service")
    assert accept["Socket"]["Accept"] == ["yes"]
    assert {"MaxConnections", "MaxConnectionsPerSource"} <= set(accept["Socket"])
    assert shlex.split(instance["Service"]["ExecStart"][0])[0].endswith("/ftpd")
    assert "Type" not in instance["Service"] or instance["Service"]["Type"] == ["simple"]
    for name in ("ftpd.service", "ftpd-accept@.service"):
        text = (CONTRIB / "systemd" / name).read_text()
        assert re.search(r"^ExecStart=\S*/ftpd\b", text, re.M), name


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_contrib_systemd_units_verify(tmp_path, ftpd):
    """systemd's own checker on the four units (ftpd's path substituted)."""
    names = ["ftpd.socket", "ftpd.service", "ftpd-accept.socket", "ftpd-accept@.service"]
    for name in names:
        text = (CONTRIB / "systemd" / name).read_text()
        (tmp_path / name).write_text(text.replace("/usr/local/bin/ftpd", ftpd))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *[str(tmp_path / name) for name in names]],
                          capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(path=tmp_path / "notify")
    try:
        yield sock
    finally:
        sock.close()


def test_contrib_accept_no_units_two_sockets_and_notify(procs, tmp_path, served, ftpd,
                                                         notify):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    sock = parse_unit(CONTRIB / "systemd/ftpd.socket")["Socket"]
    port = free_port()
    listen = [listen_address(v, port) for v in sock["ListenStream"]]
    names = ":".join(sock["FileDescriptorName"] * len(listen))
    log = tmp_path / "ftpd.log"
    command = contrib_command(CONTRIB / "systemd/ftpd.service", ftpd, served, "--log", str(log))
    act = Activation(procs, tmp_path, listen, command, [f"--fdname={names}"],
                     {"NOTIFY_SOCKET": notify.address})
    v4 = control(listen[0])  # the first connection starts ftpd (exec'd: same pid)
    notify.wait_for(lambda m: m == "READY=1", "READY=1")
    v6 = control(listen[1])
    assert v6.sock.getpeername()[0] == "::1"
    for ctl in (v4, v6):
        ctl.login()
        ctl.expect("PWD", 257)
    two = notify.wait_for(lambda m: status_sessions(m) == 2, "STATUS= with 2 sessions")
    assert pids_with(str(served)) == [act.proc.pid], "one ftpd serves both sockets"
    finish(v4)
    finish(v6)
    notify.wait_for(lambda m: status_sessions(m) == 0, "STATUS= with 0 sessions", since=two)
    os.kill(act.proc.pid, signal.SIGTERM)
    assert wait_exit(act.proc) == 0
    notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")
    assert "Traceback" not in read_text(log)


def test_listen_fdnames_are_logged(procs, tmp_path, served, ftpd):
    port = free_port()
    listen = [f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}"]
    log = tmp_path / "ftpd.log"
    act = Activation(procs, tmp_path, listen, [ftpd, "-r", str(served), "--log", str(log)],
                     ["--fdname=front:back"])
    finish(control(listen[0]))
    wait_until(lambda: "listening on" in read_text(log), "ftpd to log its sockets")
    os.kill(act.proc.pid, signal.SIGTERM)
    assert wait_exit(act.proc) == 0
    text = read_text(log)
    assert re.search(r"\bfront\b", text) and re.search(r"\bback\b", text), text


def test_accept_no_single_socket_idle_timeout_exits_0(procs, tmp_path, served, ftpd, notify):
    port = free_port()
    act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                     [ftpd, "-r", str(served), "-t", "1", "--log", str(tmp_path / "ftpd.log")],
                     env={"NOTIFY_SOCKET": notify.address})
    ctl = control(f"127.0.0.1:{port}")
    ctl.login()  # (that a client keeps it alive: tests/functional/test_embedding.py)
    finish(ctl)
    idle_since = time.monotonic()
    assert wait_exit(act.proc, 1 + DEADLINE) == 0
    assert time.monotonic() - idle_since >= 0.9, "exited before --idle-timeout passed"
    notify.wait_for(lambda m: m == "READY=1", "READY=1")


def test_notify_on_an_abstract_socket(procs, tmp_path, served, ftpd):
    abstract = NotifySocket(abstract=f"ftpd-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        port = free_port()
        act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                         [ftpd, "-r", str(served), "--log", str(tmp_path / "ftpd.log")],
                         env={"NOTIFY_SOCKET": abstract.address})
        assert abstract.address.startswith("@")
        ctl = control(f"127.0.0.1:{port}")
        abstract.wait_for(lambda m: m == "READY=1", "READY=1")
        abstract.wait_for(lambda m: status_sessions(m) == 1, "STATUS= with 1 session")
        os.kill(act.proc.pid, signal.SIGTERM)
        assert ctl.reply()[0] == 421
        assert wait_exit(act.proc) == 0
        abstract.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")
    finally:
        abstract.close()


@pytest.mark.parametrize("watchdog_pid", [None, "1"], ids=["no-pid", "other-pid"])
def test_watchdog_at_half_the_interval(procs, tmp_path, served, ftpd, notify, watchdog_pid):
    env = {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"}
    if watchdog_pid is not None:
        env["WATCHDOG_PID"] = watchdog_pid  # meant for another process: not ours to feed
    port = free_port()
    act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                     [ftpd, "-r", str(served), "--log", str(tmp_path / "ftpd.log")], env=env)
    finish(control(f"127.0.0.1:{port}"))
    notify.wait_for(lambda m: m == "READY=1", "READY=1")
    if watchdog_pid is None:  # pings go on (their spacing: tests/io, on virtual time)
        notify.wait_for(lambda m: notify.messages.count("WATCHDOG=1") >= 3, "3 pings")
    os.kill(act.proc.pid, signal.SIGTERM)
    assert wait_exit(act.proc) == 0
    notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")  # all it sent is in
    if watchdog_pid is not None:  # the first ping would have come with READY=1
        assert "WATCHDOG=1" not in notify.messages, notify.messages


def test_contrib_accept_yes_units_one_process_per_connection(procs, tmp_path, served, ftpd):
    sock = parse_unit(CONTRIB / "systemd/ftpd-accept.socket")["Socket"]
    assert sock["Accept"] == ["yes"]
    port = free_port()
    listen = [listen_address(v, port) for v in sock["ListenStream"]]
    command = contrib_command(CONTRIB / "systemd/ftpd-accept@.service", ftpd, served,
                              "--log", str(tmp_path / "ftpd.log"))
    act = Activation(procs, tmp_path, listen, command, ["--accept"])
    procs.mark(str(served))
    seen = []
    for _ in range(3):
        ctl = control(listen[0])
        ctl.login()
        pid = wait_for_one(lambda: [p for p in pids_with(str(served)) if p != act.proc.pid],
                           "ftpd for the session")
        assert pid not in seen
        seen.append(pid)
        finish(ctl)
        wait_until(lambda n=len(seen): len(act.child_exits()) == n, "the session's exit")
    assert act.child_exits() == ["0", "0", "0"], act.stderr()
    assert act.proc.poll() is None


def test_accept_yes_with_the_inetd_protocol_and_dash_I(procs, tmp_path, served, ftpd):
    """systemd-socket-activate --inetd puts the connection on stdin/stdout: ftpd -I."""
    port = free_port()
    act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                     [ftpd, "-I", "-v", "-r", str(served)], ["--accept", "--inetd"])
    procs.mark(str(served))
    for i in range(2):
        ctl = control(f"127.0.0.1:{port}")
        ctl.login()
        ctl.expect("NOSUCH", 500)
        finish(ctl)
        wait_until(lambda n=i + 1: len(act.child_exits()) == n, "the session's exit")
    assert act.child_exits() == ["0", "0"], act.stderr()


def test_accept_yes_keeps_logs_away_from_the_client(procs, tmp_path, served, ftpd):
    port = free_port()
    act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                     [ftpd, "-v", "-r", str(served)], ["--accept"])
    procs.mark(str(served))
    ctl = control(f"127.0.0.1:{port}")
    ctl.login()
    for command in ("FOO", "RETR", "CWD /nowhere", "SYST"):
        ctl.cmd(command)
    finish(ctl)
    wait_until(lambda: act.child_exits() == ["0"], "the session's exit")


def test_daemon_refused_under_accept_yes_with_421(procs, tmp_path, served, ftpd):
    port = free_port()
    act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                     [ftpd, "-d", "-r", str(served)], ["--accept"])
    ctl = Control.connect("127.0.0.1", port)
    assert ctl.read_to_eof() == b"421 Service not available\r\n"
    wait_until(lambda: len(act.child_exits()) == 1, "the child's exit")
    assert act.child_exits() == ["2"]


def test_metrics_refused_under_accept_yes_with_421(procs, tmp_path, served, ftpd):
    port = free_port()
    act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                     [ftpd, "-r", str(served), "--metrics", f"127.0.0.1:{free_port()}"],
                     ["--accept"])
    ctl = Control.connect("127.0.0.1", port)
    assert ctl.read_to_eof() == b"421 Service not available\r\n"
    wait_until(lambda: len(act.child_exits()) == 1, "the child's exit")
    assert act.child_exits() == ["2"]
    ours = [line for line in act.stderr().splitlines() if line.startswith("ftpd")]
    assert len(ours) == 1 and "--metrics" in ours[0] and "Accept=yes" in ours[0], ours


def test_daemon_refused_under_accept_no_in_one_line(procs, tmp_path, served, ftpd):
    port = free_port()
    act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                     [ftpd, "--daemon", "-r", str(served)])
    Control.connect("127.0.0.1", port).close()
    assert wait_exit(act.proc) == 2
    ours = [line for line in act.stderr().splitlines() if line.startswith("ftpd")]
    assert len(ours) == 1 and "daemon" in ours[0], act.stderr()


def test_not_activated_when_listen_pid_is_another_process(procs, tmp_path, served, ftpd):
    """LISTEN_PID of another process: the sockets are not ours; ftpd runs standalone."""
    port = free_port()
    env = {**os.environ, "LISTEN_PID": "1", "LISTEN_FDS": "1"}
    log = tmp_path / "ftpd.log"
    proc = procs.start([ftpd, "-l", f"127.0.0.1:{port}", "-r", str(served), "--log", str(log)],
                       env=env, stderr=subprocess.PIPE)
    wait_until(lambda: "listening on" in read_text(log) or proc.poll() is not None,
               "ftpd to start")
    assert proc.poll() is None, proc.stderr.read()
    assert "(standalone)" in read_text(log)
    finish(control(f"127.0.0.1:{port}"))


@needs_system_users
def test_accept_yes_with_pam_the_process_becomes_the_account(procs, tmp_path, served, ftpd):
    """Accept=yes --pam: the per-connection process drops to the account after login."""
    import ftplib
    import io

    port = free_port()
    command = contrib_command(CONTRIB / "systemd/ftpd-accept@.service", ftpd, served,
                              "--log", str(tmp_path / "ftpd.log"))
    with pam_service() as service, system_account() as user:
        act = Activation(procs, tmp_path, [f"127.0.0.1:{port}"],
                         [*command, "--pam", service], ["--accept"])
        procs.mark(str(served))
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", port, timeout=DEADLINE)
        ftp.login(user.name, user.password)
        ftp.storbinary("STOR accept-yes.txt", io.BytesIO(b"a"))
        ftp.quit()
        wait_until(lambda: len(act.child_exits()) == 1, "the session's exit")
        st = (user.home / "accept-yes.txt").stat()
        assert (st.st_uid, st.st_gid) == (user.uid, user.gid)
    assert act.child_exits() == ["0"], act.stderr()


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


@needs_system_users
def test_accept_no_with_pam_session_processes_hold_no_listener(procs, tmp_path, served,
                                                               ftpd, notify):
    """Accept=no --pam: each session is a child of ftpd; systemd's listening sockets
    (inherited as fds 3 and 4) are not passed on to it, and NOTIFY_SOCKET is the parent's alone."""
    port, other = free_port(), free_port()
    log = tmp_path / "ftpd.log"
    act = Activation(procs, tmp_path, [f"127.0.0.1:{port}", f"127.0.0.1:{other}"],
                     [ftpd, "-r", str(served), "--pam", "-v", "--log", str(log)],
                     env={"NOTIFY_SOCKET": notify.address})
    ctl = control(f"127.0.0.1:{port}")  # systemd-socket-activate starts ftpd now
    ctl.login()
    notify.wait_for(lambda m: m == "READY=1", "READY=1")
    line = wait_until(lambda: re.search(r"handed to process (\d+)", read_text(log)),
                      "the session process")
    child = int(line.group(1))
    listeners = {os.readlink(f"/proc/{act.proc.pid}/fd/{fd}") for fd in (3, 4)}
    assert all(name.startswith("socket:") for name in listeners)
    assert not listeners & _socket_inodes(child)
    with open(f"/proc/{child}/environ", "rb") as env:
        assert b"NOTIFY_SOCKET=" not in env.read()
    finish(ctl)
