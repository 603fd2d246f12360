"""ftpd-eventd as a real subprocess: UDP and message queue, -v, --handler, --exec, malformed
messages, back-pressure, SIGTERM. Every wait has a deadline; every process is killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from ftpsupport import wait_until

from ftpd.core import events as core
from ftpd.events.ncftpd import decode, encode
from ftpd.events.receiver import describe, event_env
from ftpd.events.sinks import MqueueSink

from .conftest import ALICE, ANON, REPO, upload, wait_for_file

T = 1764079260.0


def send_udp(port: int, *frames: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for frame in frames:
            sock.sendto(frame, ("127.0.0.1", port))


def test_event_env_has_every_field():
    env = event_env(decode(encode("fs.upload", upload())))
    assert env == {
        "FTPD_EVENT": "upload", "FTPD_TYPE": "S", "FTPD_TIME": "1764079260",
        "FTPD_USER": "alice", "FTPD_EMAIL": "", "FTPD_HOST": "192.0.2.10",
        "FTPD_SESSION": "aSW2YAAqAAEA", "FTPD_SESSION_ID": "aSW2YAAqAAEA", "FTPD_SERVER": "",
        "FTPD_PATH": "/incoming/report.pdf", "FTPD_BYTES": "1048576", "FTPD_DURATION": "2.150",
        "FTPD_RATE": "476.279", "FTPD_STATUS": "OK", "FTPD_TRANSFER_TYPE": "I",
        "FTPD_OFFSET": "0", "FTPD_FILE_SIZE": "1048576"}
    env = event_env(decode(encode("fs.upload", upload()), server="web1"))
    assert env["FTPD_SERVER"] == "web1" and env["FTPD_PATH"] == "/incoming/report.pdf"
    env = event_env(decode(encode("fs.chmod", core.ChmodEvent(ALICE, T, "/f", 0o755))))
    assert env["FTPD_EVENT"] == "chmod" and env["FTPD_MODE"] == "0755"
    env = event_env(decode(encode("fs.listing", core.ListingEvent(ANON, T, "/", "OK", "", True))))
    assert env["FTPD_RECURSIVE"] == "1" and env["FTPD_EMAIL"] == "guest@example.org"


def test_describe_is_one_readable_line():
    line = describe(decode(encode("fs.upload", upload(path="/in/a b.txt"))))
    assert line.startswith("upload at=2025-11-25T14:01:00Z user=alice host=192.0.2.10 ")
    assert "path='/in/a b.txt' bytes=1048576 " in line and "\n" not in line
    assert "server=" not in line
    line = describe(decode(encode("fs.upload", upload()), server="web1"))
    assert " session=aSW2YAAqAAEA server=web1 path=" in line


@pytest.mark.parametrize("args, word", [
    ([], "-p PORT"),
    (["-p", "1", "-k", "2"], "-k/--key"),
    (["-p", "http"], "-p/--port"),
    (["-p", "70000"], "-p/--port"),
    (["-k", "0xZZ"], "-k/--key"),
    (["-k", "5", "-b", "127.0.0.1"], "-b/--bind"),
    (["-p", "0", "--workers", "0"], "--workers"),
    (["-p", "0", "--backlog", "-1"], "--backlog"),
    (["-p", "0", "--perm", "9"], "--perm"),
    (["-p", "0", "--handler", "nosuchmodule_xyz:H"], "--handler"),
    (["-p", "0", "--handler", "os"], "--handler"),
    (["-p", "0", "--exec", "/nonexistent/cmd"], "--exec"),
    (["-p", "0", "--exec", "'unbalanced"], "--exec"),
    (["-p", "0", "--bogus"], "--bogus"),
])
def test_bad_flags_give_one_line_and_exit_2(args, word):
    done = subprocess.run([sys.executable, "-m", "ftpd.events.eventd", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and word in done.stderr
    assert done.stderr.startswith("ftpd-eventd: ")


def test_a_port_in_use_is_one_line_and_exit_1():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "ftpd.events.eventd", "-p", str(port)],
                              cwd=REPO, capture_output=True, text=True, timeout=10)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in done.stderr


def test_udp_verbose_logs_each_event_and_skips_malformed_ones(eventd):
    daemon = eventd("-p", "0", "-v")
    port = daemon.port()
    send_udp(port, encode("fs.upload", upload()), b"garbage\n",
             encode("fs.rename", core.RenameEvent(ALICE, T, "/a", "/b")))
    daemon.wait_for(r"malformed message skipped .*garbage")
    [hit] = daemon.wait_for(r"upload at=\S+ user=alice host=192\.0\.2\.10 session=aSW2YAAqAAEA "
                            r"path=/incoming/report\.pdf bytes=1048576 ")
    daemon.wait_for(r"rename .* old_path=/a new_path=/b")
    send_udp(port, encode("session.login", core.LoginEvent(ANON, T)))  # it goes on
    daemon.wait_for(r"login .*user=anonymous email=guest@example\.org")
    assert daemon.terminate() == 0
    assert any("stopped: 3 event(s), 1 malformed" in line for line in daemon.lines)


HANDLER = """
    import os

    class Handler:
        def __init__(self):
            self.out = open(os.environ["MARKER"], "a", buffering=1)

        def on_upload(self, ev):
            self.out.write(f"upload {ev.path} {type(ev.bytes).__name__} {ev.time.isoformat()}\\n")

        def on_mkdir(self, ev):
            raise RuntimeError("handler bug")

        def on_event(self, ev):
            self.out.write(f"other {ev.name} {ev.user}\\n")
"""


def test_handler_methods_get_typed_events_and_failures_are_logged(eventd, tmp_path):
    (tmp_path / "evhandler.py").write_text(textwrap.dedent(HANDLER))
    marker = tmp_path / "marker"
    daemon = eventd("-p", "0", "-v", "--handler", "evhandler:Handler",
                    env={"PYTHONPATH": str(tmp_path), "MARKER": str(marker)})
    port = daemon.port()
    send_udp(port, encode("fs.upload", upload()),
             encode("fs.mkdir", core.PathEvent(ALICE, T, "/m", "dir")),
             encode("session.logout", core.LogoutEvent(ALICE, T, 5, 0, 0, 1, 5, "QUIT")))
    text = wait_for_file(marker, lines=2)
    assert text.splitlines() == ["upload /incoming/report.pdf int 2025-11-25T14:01:00+00:00",
                                 "other logout alice"]
    daemon.wait_for(r"handler failed on mkdir event")
    daemon.wait_for(r"RuntimeError: handler bug")
    assert daemon.terminate() == 0


EXEC_SCRIPT = """
    import json, os, sys
    env = {k: v for k, v in os.environ.items() if k.startswith("FTPD_")}
    out = os.path.join(os.environ["OUTDIR"], env["FTPD_EVENT"] + env["FTPD_TIME"])
    with open(out + ".tmp", "w") as f:
        json.dump({"argv": sys.argv[1:], "env": env}, f)
    os.rename(out + ".tmp", out + ".json")
"""


def test_exec_runs_the_command_with_the_fields_in_its_environment(eventd, tmp_path):
    script = tmp_path / "hook.py"
    script.write_text(textwrap.dedent(EXEC_SCRIPT))
    outdir = tmp_path / "out"
    outdir.mkdir()
    daemon = eventd("-p", "0", "-v", "--exec", f"{sys.executable} {script} 'two words' x",
                    "--workers", "2", env={"OUTDIR": str(outdir), "FTPD_STALE": "gone"})
    port = daemon.port()
    send_udp(port, encode("fs.upload", upload()),
             encode("fs.delete", core.PathEvent(ALICE, T + 1, "/$(rm -rf x); `id`", "file")))
    upload_out = outdir / "upload1764079260.json"
    delete_out = outdir / "delete1764079261.json"
    wait_until(lambda: upload_out.exists() and delete_out.exists(), what="both commands")
    got = json.loads(upload_out.read_text())
    assert got["argv"] == ["two words", "x"]
    assert got["env"]["FTPD_PATH"] == "/incoming/report.pdf"
    assert got["env"]["FTPD_BYTES"] == "1048576" and got["env"]["FTPD_USER"] == "alice"
    assert got["env"]["FTPD_HOST"] == "192.0.2.10"
    assert got["env"]["FTPD_SESSION"] == "aSW2YAAqAAEA"
    assert "FTPD_STALE" not in got["env"]
    deleted = json.loads(delete_out.read_text())["env"]
    assert deleted["FTPD_PATH"] == "/$(rm -rf x); `id`" and deleted["FTPD_KIND"] == "file"
    assert daemon.terminate() == 0


SLOW_SCRIPT = """
    import os, sys, time
    open(sys.argv[1] + ".started", "w").close()
    deadline = time.monotonic() + 10
    while not os.path.exists(sys.argv[1] + ".go") and time.monotonic() < deadline:
        time.sleep(0.01)
    open(sys.argv[1] + ".done", "w").close()
"""


def test_sigterm_lets_running_commands_finish_and_exits_0(eventd, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(SLOW_SCRIPT))
    base = tmp_path / "cmd"
    daemon = eventd("-p", "0", "-v", "--exec", f"{sys.executable} {script} {base}")
    send_udp(daemon.port(), encode("fs.upload", upload()))
    wait_until(lambda: (tmp_path / "cmd.started").exists(), what="the command to start")
    daemon.proc.send_signal(15)
    daemon.wait_for(r"signal 15: stopping")
    assert daemon.proc.poll() is None  # still waiting for the command
    (tmp_path / "cmd.go").touch()
    assert daemon.proc.wait(10) == 0
    assert (tmp_path / "cmd.done").exists()


def test_message_queue_events_waiting_before_start_are_read(eventd, queue_key):
    sink = MqueueSink(queue_key)
    try:
        assert sink.send(encode("fs.upload", upload()))
        sink._mq.send(b"STR\n999\nbroken\0", block=False, type=5)  # any mtype is read
        daemon = eventd("-k", hex(queue_key), "-v")
        daemon.wait_for(rf"reading message queue {queue_key:#x}")
        daemon.wait_for(r"upload at=\S+ user=alice")
        daemon.wait_for(r"malformed message skipped")
        assert sink.send(encode("fs.mkdir", core.PathEvent(ALICE, T, "/later", "dir")))
        daemon.wait_for(r"mkdir .*path=/later")
        assert daemon.terminate() == 0
        sink.send(encode("session.login", core.LoginEvent(ALICE, T)))
        assert sink._mq.current_messages == 1  # left for the next run
    finally:
        sink.close()


BLOCKING_HANDLER = """
    import os, time

    class Handler:
        def on_event(self, ev):
            deadline = time.monotonic() + 10
            while not os.path.exists(os.environ["GO"]) and time.monotonic() < deadline:
                time.sleep(0.01)
            with open(os.environ["MARKER"], "a") as f:
                f.write(ev.path + "\\n")
"""


def test_a_full_backlog_stops_reading_and_nothing_is_dropped(eventd, queue_key, tmp_path):
    (tmp_path / "blocker.py").write_text(textwrap.dedent(BLOCKING_HANDLER))
    go, marker = tmp_path / "go", tmp_path / "marker"
    sink = MqueueSink(queue_key)
    try:
        for i in range(10):
            assert sink.send(encode("fs.mkdir", core.PathEvent(ALICE, T, f"/d{i}", "dir")))
        daemon = eventd("-k", str(queue_key), "--backlog", "2", "--handler", "blocker:Handler",
                        env={"PYTHONPATH": str(tmp_path), "GO": str(go), "MARKER": str(marker)})
        # one in the handler, two in the backlog, one waiting to be put: six stay queued
        wait_until(lambda: sink._mq.current_messages == 6, what="reading to pause")
        go.touch()
        text = wait_for_file(marker, lines=10)
        assert text.split() == [f"/d{i}" for i in range(10)]
        assert sink._mq.current_messages == 0
        assert daemon.terminate() == 0
    finally:
        sink.close()


def test_detach_with_a_pidfile_keeps_the_handlers_files(tmp_path, queue_key):
    (tmp_path / "evhandler.py").write_text(textwrap.dedent(HANDLER))
    marker, pidfile = tmp_path / "marker", tmp_path / "eventd.pid"
    args = [sys.executable, "-m", "ftpd.events.eventd", "-k", str(queue_key), "-d",
            "--pidfile", str(pidfile), "--handler", "evhandler:Handler"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}", "MARKER": str(marker)}
    pid = None
    try:
        assert subprocess.run(args, env=env, timeout=10).returncode == 0
        pid = int(wait_for_file(pidfile).split()[0])
        sink = MqueueSink(queue_key)
        sink.send(encode("session.login", core.LoginEvent(ALICE, T)))
        assert wait_for_file(marker) == "other login alice\n"  # opened before detaching
        again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=10)
        assert again.returncode == 1
        assert again.stderr == f"ftpd-eventd: --pidfile {pidfile}: already running (pid {pid})\n"
    finally:
        if pid is None and pidfile.exists():
            pid = int(pidfile.read_text().split()[0])
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pidfile.exists(), what="the pid file to go")


def test_a_stale_pidfile_is_replaced(eventd, tmp_path):
    pidfile = tmp_path / "eventd.pid"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(10)
    pidfile.write_text(f"{dead.pid}\n")
    daemon = eventd("-p", "0", "-v", "--pidfile", str(pidfile))
    daemon.port()
    assert int(pidfile.read_text()) == daemon.proc.pid
    assert daemon.terminate() == 0
    assert not pidfile.exists()
