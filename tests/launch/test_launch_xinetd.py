"""ftpd under a real xinetd, configured from the shipped contrib files (paths, port and
user substituted): no-wait runs one process per session, wait runs one process for
many sessions until --idle-timeout hands the socket back to xinetd."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import time
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, free_port, read_text, wait_until
from lhelpers import (
    Control,
    assert_all_replies,
    pids_with,
    wait_for_one,
    wait_listening,
    wait_pid_gone,
)

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
XINETD = shutil.which("xinetd") or "/usr/sbin/xinetd"

pytestmark = pytest.mark.skipif(not os.path.exists(XINETD), reason="xinetd is not installed")


def xinetd_services(text: str) -> dict[str, str]:
    """The ``service`` blocks of an xinetd file, by their ``id``."""
    blocks = re.findall(r"^service\s+\S+\s*\{.*?^\}", text, re.S | re.M)
    found = {}
    for block in blocks:
        ident = re.search(r"^\s*id\s*=\s*(\S+)", block, re.M)
        found[ident.group(1) if ident else block.split()[1]] = block
    return found


def attributes(block: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^\s*(\w+)\s*[+-]?=\s*(.*)$", block, re.M)}


def for_test(block: str, ftpd: str, root: Path, port: int, log: Path,
             extra_args: str = "") -> str:
    """A contrib service block made runnable here: our ftpd and root, a free port on
    127.0.0.1 (an UNLISTED service, since /etc/services says ftp is 21), the current
    user, a short idle timeout, a high cps so that sequential sessions are not throttled,
    and a service log that records each server's exit status."""
    me = pwd.getpwuid(os.getuid()).pw_name
    block = re.sub(r"^(\s*server\s*=\s*).*$", lambda m: m.group(1) + ftpd, block, flags=re.M)
    block = re.sub(r"^(\s*user\s*=\s*).*$", lambda m: m.group(1) + me, block, flags=re.M)
    block = re.sub(r"^\s*group\s*=.*\n", "", block, flags=re.M)
    block = re.sub(r"^(\s*disable\s*=\s*).*$", r"\1no", block, flags=re.M)
    block = re.sub(r"^(\s*cps\s*=\s*).*$", r"\g<1>1000 1", block, flags=re.M)
    block = re.sub(r"^\s*log_on_(success|failure).*\n", "", block, flags=re.M)
    block = block.replace("/srv/ftp", str(root))
    block = re.sub(r"(-t|--idle-timeout)\s+\d+", r"\1 1", block)
    if extra_args:
        block = re.sub(r"^(\s*server_args\s*=.*)$", lambda m: f"{m.group(1)} {extra_args}",
                       block, flags=re.M)
    extra = (f"\ttype\t\t= UNLISTED\n\tport\t\t= {port}\n\tbind\t\t= 127.0.0.1\n"
             f"\tlog_type\t= FILE {log}\n\tlog_on_success\t= PID EXIT\n"
             f"\tlog_on_failure\t= HOST\n")
    return block.replace("{", "{\n" + extra, 1)


class Xinetd:
    def __init__(self, procs, tmp_path: Path, block: str) -> None:
        self.conf = tmp_path / "xinetd.conf"
        self.conf.write_text(block + "\n")
        self.log = tmp_path / "xinetd.log"
        self.service_log = tmp_path / "service.log"
        self.proc = procs.start([XINETD, "-dontfork", "-f", str(self.conf), "-filelog",
                                 str(self.log)])

    def exits(self) -> list[str]:
        """The exit statuses xinetd logged for its servers."""
        return re.findall(r"EXIT: \S+ status=(\d+)", read_text(self.service_log))


def start_xinetd(procs, tmp_path: Path, served: Path, ftpd: str, service_id: str,
                 extra_args: str = "") -> tuple[Xinetd, int]:
    text = (CONTRIB / "inetd/xinetd.d/ftpd").read_text()
    port = free_port()
    block = for_test(xinetd_services(text)[service_id], ftpd, served, port,
                     tmp_path / "service.log", extra_args)
    procs.mark(str(served))  # wait-mode servers outlive xinetd: found by their --root
    xinetd = Xinetd(procs, tmp_path, block)
    wait_listening(port, xinetd.proc)
    return xinetd, port


def servers(served: Path, xinetd: Xinetd) -> list[int]:
    return [pid for pid in pids_with(str(served)) if pid != xinetd.proc.pid]


def one_server(served: Path, xinetd: Xinetd) -> int:
    return wait_for_one(lambda: servers(served, xinetd), "ftpd serving")


def session(port: int) -> Control:
    ctl = Control.connect("127.0.0.1", port)
    code, text = ctl.reply()
    assert code == 220, text
    ctl.login()
    return ctl


def finish(ctl: Control) -> None:
    ctl.expect("QUIT", 221)
    assert ctl.read_to_eof() == b""
    assert_all_replies(ctl.raw)
    ctl.close()


def test_contrib_xinetd_file_has_both_services():
    services = xinetd_services((CONTRIB / "inetd/xinetd.d/ftpd").read_text())
    nowait, wait = attributes(services["ftp-nowait"]), attributes(services["ftp-wait"])
    assert nowait["wait"] == "no" and "-I" in shlex.split(nowait["server_args"])
    assert wait["wait"] == "yes" and "-W" in shlex.split(wait["server_args"])
    assert {"-t", "--idle-timeout"} & set(shlex.split(wait["server_args"]))
    for attrs in (nowait, wait):
        assert attrs["socket_type"] == "stream" and attrs["protocol"] == "tcp"
        assert attrs["server"].endswith("/ftpd")
    # per-connection mode: the limits are xinetd's
    assert "instances" in nowait and "per_source" in nowait


def test_xinetd_nowait_one_fresh_process_per_session(procs, tmp_path, served, ftpd):
    xinetd, port = start_xinetd(procs, tmp_path, served, ftpd, "ftp-nowait")
    seen = []
    for _ in range(10):
        ctl = session(port)
        pid = one_server(served, xinetd)
        assert pid not in seen
        seen.append(pid)
        ctl.expect("CWD pub", 250)
        ctl.expect("TYPE I", 200)
        assert ctl.expect("SIZE data.bin", 213) == str(256 * 64)
        finish(ctl)
        wait_pid_gone(pid)
    wait_until(lambda: len(xinetd.exits()) == 10, "xinetd to log 10 server exits")
    assert xinetd.exits() == ["0"] * 10, read_text(xinetd.service_log)


def test_xinetd_nowait_sessions_at_once(procs, tmp_path, served, ftpd):
    xinetd, port = start_xinetd(procs, tmp_path, served, ftpd, "ftp-nowait")
    controls = [session(port) for _ in range(3)]
    wait_until(lambda: len(servers(served, xinetd)) == 3, "three ftpd processes")
    for ctl in controls:
        ctl.expect("PWD", 257)
        finish(ctl)
    wait_until(lambda: not servers(served, xinetd), "every ftpd to exit")


def test_xinetd_wait_one_process_then_idle_exit(procs, tmp_path, served, ftpd):
    xinetd, port = start_xinetd(procs, tmp_path, served, ftpd, "ftp-wait")
    first = session(port)
    pid = one_server(served, xinetd)
    second = session(port)  # at the same time, same process
    assert servers(served, xinetd) == [pid]
    second.expect("PWD", 257)
    finish(second)
    for _ in range(3):  # one after the other, while the first holds the process (an
        ctl = session(port)  # idle second between them would end it, under load)
        assert servers(served, xinetd) == [pid]
        finish(ctl)
    first.expect("PWD", 257)
    finish(first)
    idle_since = time.monotonic()
    wait_pid_gone(pid, 1 + DEADLINE)
    assert time.monotonic() - idle_since >= 0.9, "exited before --idle-timeout passed"
    wait_until(lambda: xinetd.exits() == ["0"], "xinetd to log the exit status")
    # xinetd listens again; the next client starts a fresh server
    ctl = session(port)
    fresh = one_server(served, xinetd)
    assert fresh != pid
    finish(ctl)
    wait_pid_gone(fresh, 1 + DEADLINE)
    wait_until(lambda: xinetd.exits() == ["0", "0"], "xinetd to log the second exit")


def test_xinetd_wait_sigterm_leaves_queued_clients_to_the_next_server(procs, tmp_path,
                                                                      served, ftpd):
    """Draining under -W stops accepting at once; a client arriving meanwhile stays in
    the inherited socket's queue and is served by the next ftpd xinetd starts."""
    (served / "big.bin").write_bytes(os.urandom(16 * 1024 * 1024))
    log = tmp_path / "ftpd.log"
    xinetd, port = start_xinetd(procs, tmp_path, served, ftpd, "ftp-wait",
                                f"--log {log} -v")
    busy = session(port)
    pid = one_server(served, xinetd)
    busy.expect("TYPE I", 200)
    data = busy.epsv()  # never read: the transfer cannot finish on its own
    busy.expect("RETR big.bin", 150)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: "stop signal" in read_text(log), "ftpd to start draining")
    queued = Control.connect("127.0.0.1", port)
    for _ in range(2):  # the draining server's loop goes round: had it accepted the
        busy.expect("NOOP", 200)  # queued client, the greeting would be there by now
    assert queued.silent(), "a client was accepted while draining"
    assert servers(served, xinetd) == [pid]
    data.close()  # the transfer ends (aborted), then the session is told 421
    codes = [busy.reply()[0], busy.reply()[0]]
    assert codes[0] in (426, 451) and codes[1] == 421, codes
    wait_pid_gone(pid)
    assert queued.reply()[0] == 220
    assert servers(served, xinetd) not in ([], [pid])
    finish(queued)
    wait_until(lambda: xinetd.exits()[:1] == ["0"], "xinetd to log the drained exit")


# -- the classic inetd.conf lines, run by xinetd -------------------------------------------
def inetd_conf_lines() -> dict[str, list[str]]:
    """The ftp lines of contrib/inetd/inetd.conf (commented alternatives included), by
    their wait field, split into fields."""
    lines = {}
    for line in (CONTRIB / "inetd/inetd.conf").read_text().splitlines():
        fields = line.lstrip("#").split()
        if len(fields) >= 7 and fields[1:3] == ["stream", "tcp"]:
            lines[fields[3].split("/")[0].split(".")[0]] = fields
    return lines


def test_contrib_inetd_conf_has_nowait_and_wait_lines():
    lines = inetd_conf_lines()
    assert set(lines) == {"nowait", "wait"}
    nowait, wait = lines["nowait"], lines["wait"]
    assert nowait[5].endswith("/ftpd") and nowait[6] == "ftpd" and "-I" in nowait[7:]
    assert wait[5].endswith("/ftpd") and wait[6] == "ftpd" and "-W" in wait[7:]
    assert {"-t", "--idle-timeout"} & set(wait[7:])


@pytest.mark.parametrize("mode", ["nowait", "wait"])
def test_contrib_inetd_conf_line_served_by_xinetd(procs, tmp_path, served, ftpd, mode):
    """The inetd.conf line's server and arguments, as an equivalent xinetd service."""
    fields = inetd_conf_lines()[mode]
    block = ("service ftp\n{\n\tsocket_type\t= stream\n\tprotocol\t= tcp\n"
             f"\twait\t\t= {'no' if mode == 'nowait' else 'yes'}\n\tuser\t\t= {fields[4]}\n"
             f"\tserver\t\t= {fields[5]}\n\tserver_args\t= {' '.join(fields[7:])}\n}}")
    port = free_port()
    procs.mark(str(served))
    xinetd = Xinetd(procs, tmp_path, for_test(block, ftpd, served, port,
                                              tmp_path / "service.log"))
    wait_listening(port, xinetd.proc)
    pids = []
    for _ in range(2):
        ctl = session(port)
        pids.append(one_server(served, xinetd))
        finish(ctl)
        if mode == "nowait":
            wait_pid_gone(pids[-1])
    if mode == "nowait":
        assert pids[0] != pids[1]
    else:
        assert pids[0] == pids[1]
        wait_pid_gone(pids[0], 1 + DEADLINE)
    wait_until(lambda: xinetd.exits() == ["0"] * (2 if mode == "nowait" else 1),
               "xinetd to log the exit statuses")
