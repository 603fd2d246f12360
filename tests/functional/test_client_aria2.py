"""aria2c against the real ftpd: a segmented download over four connections at once
(``-x4 -s4``: four sessions, each RETR after a REST at its own piece) and ``-c``
resuming a partial file (REST at its size: only the rest is sent). Plain FTP only:
aria2 speaks no FTPS. Every file is compared by SHA-256."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from clientsupport import PASSWORD, USER, client_env, output, run_client
from ftpsupport import netloc, read_text, sha256

ARIA2C = shutil.which("aria2c")
pytestmark = pytest.mark.skipif(ARIA2C is None, reason="aria2c is not installed (apt: aria2)")

MiB = 1024 * 1024
# aria2c reads the 150 and a 226 that came right behind it in one recv, then waits for
# the socket to say more (the 226 sits in its buffer): 20 s lost, whatever the server.
# It cannot happen when the part a connection reads to the end is larger than what the
# kernel buffers for a reader that has not started (about 4 MiB on loopback): the 226
# then leaves only after aria2c has read data, so after it has parsed the 150. Hence
# large pieces, one per connection, and a resumed tail of about 9 MiB.
PIECE = 8 * MiB
SEGMENTED_SIZE = 4 * PIECE
RESUME_SIZE = 12 * MiB + 4321
SESSION_COMMAND = re.compile(r"DEBUG \[(\S+)\] (REST|RETR) ?(\S*)")


def aria2c(server, dest: Path, home: Path, *args: str):
    home.mkdir(exist_ok=True)
    url = f"ftp://{USER}:{PASSWORD}@{netloc(server.host, server.port)}/big.bin"
    argv = [ARIA2C, "--no-conf", "--console-log-level=warn", "--summary-interval=0",
            "--download-result=hide", "--file-allocation=none", "--max-tries=1",
            "--connect-timeout=10", "--timeout=20", "--ftp-pasv=true",
            "-d", str(dest), *args, url]
    proc = run_client(argv, client_env(home))
    assert proc.returncode == 0, output(proc)
    return proc


def retr_offsets(log: str) -> dict[str, int]:
    """Session id -> the REST offset its RETR started from (0 without REST)."""
    rest: dict[str, int] = {}
    offsets: dict[str, int] = {}
    for sid, verb, arg in SESSION_COMMAND.findall(log):
        if verb == "REST":
            rest[sid] = int(arg)
        else:
            offsets[sid] = rest.pop(sid, 0)
    return offsets


def test_aria2_segmented_download_on_four_connections(client_ftpd, tmp_path):
    server = client_ftpd("plain")
    data = os.urandom(SEGMENTED_SIZE)
    (server.root / "big.bin").write_bytes(data)
    dest = tmp_path / "dest"
    # A cap on aria2c's own speed keeps the first connection from finishing its piece
    # (and taking the next) before the other three have logged in.
    aria2c(server, dest, tmp_path / "home", "-x4", "-s4", f"-k{PIECE // MiB}M",
           f"--piece-length={PIECE // MiB}M", "--max-overall-download-limit=16M")
    assert sha256(dest / "big.bin") == sha256(data)
    offsets = retr_offsets(server.log())
    assert sorted(offsets.values()) == [0, PIECE, 2 * PIECE, 3 * PIECE], offsets


def test_aria2_continues_a_partial_download(client_ftpd, tmp_path):
    server = client_ftpd("plain", "--xferlog", str(tmp_path / "xferlog"))
    data = os.urandom(RESUME_SIZE)
    (server.root / "big.bin").write_bytes(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    have = 3 * MiB  # whole pieces: aria2c resumes from a piece boundary (1 MiB)
    (dest / "big.bin").write_bytes(data[:have])  # what an earlier, cut download left
    aria2c(server, dest, tmp_path / "home", "-c", "-x1", "-s1")
    assert sha256(dest / "big.bin") == sha256(data)
    assert list(retr_offsets(server.log()).values()) == [have]
    # the server sent only the rest (xferlog's 8th field: bytes transferred)
    lines = [ln.split() for ln in read_text(tmp_path / "xferlog").splitlines()]
    assert [int(fields[7]) for fields in lines] == [RESUME_SIZE - have], lines
