"""basic-ftp (Node.js) against the real ftpd, through ``basicftp_client.js``: list,
upload, download, ``uploadFromDir``/``downloadToDir`` of a tree with spaces, non-ASCII
names and empty files, rename and remove, over plain FTP, explicit FTPS (``secure:
true``) and implicit FTPS (``secure: "implicit"``), verifying the server against the
test CA. Each client run is one control connection carrying many transfers, so under
TLS every data connection resumes that connection's session. Every file is compared
by SHA-256.

basic-ftp is installed by ``make test`` (npm, into .cache/npm); the tests skip only
where node itself is missing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from clientsupport import MODES, PASSWORD, USER, client_env, make_tree, output, run_client
from fhelpers import tree_digest
from ftpsupport import sha256

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / ".cache" / "npm" / "node_modules"
SCRIPT = Path(__file__).resolve().parent / "basicftp_client.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

SECURE = {"plain": False, "explicit": True, "implicit": "implicit"}
SESSION_COMMAND = re.compile(r"DEBUG \[(\S+)\] (USER|RETR|STOR) ")


@pytest.fixture(scope="module", autouse=True)
def basic_ftp() -> None:
    if not (NODE_MODULES / "basic-ftp" / "package.json").is_file():
        pytest.fail(f"basic-ftp is not installed in {NODE_MODULES}: run `make test` "
                    "(or `make .cache/npm/.installed`)")


def basicftp(server, certs, home: Path, steps: list[list]) -> list:
    """Run *steps* on one basic-ftp client; their results in order."""
    spec = {"host": server.host, "port": server.client_port, "user": USER,
            "password": PASSWORD, "secure": SECURE[server.mode], "ca": str(certs.ca),
            "steps": steps}
    home.mkdir(exist_ok=True)
    proc = run_client([NODE, str(SCRIPT), json.dumps(spec)],
                      client_env(home, NODE_PATH=str(NODE_MODULES)))
    assert proc.returncode == 0, output(proc)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["step"] for line in lines] == list(range(len(steps))), output(proc)
    return [line["result"] for line in lines]


def commands_by_session(log: str) -> dict[str, list[str]]:
    sessions: dict[str, list[str]] = {}
    for sid, verb in SESSION_COMMAND.findall(log):
        sessions.setdefault(sid, []).append(verb)
    return sessions


def without_empty_files(src: Path) -> list[Path]:
    """Move the tree's empty files out of *src*; returns their relative paths.

    Node.js (v20 here) ends an empty upload over TLS with a bare FIN: ``end()`` right
    after the handshake, while its Finished is still being written, leaves the
    close_notify behind. ftpd counts an upload without close_notify as cut short
    (426), so under TLS the empty files reach the server another way and come back
    through ``downloadToDir``."""
    empty = [p.relative_to(src) for p in sorted(src.rglob("*")) if p.is_file()
             and p.stat().st_size == 0]
    for rel in empty:
        (src / rel).unlink()
    return empty


@pytest.mark.parametrize("mode", MODES)
def test_basicftp_all_operations_on_one_connection(client_ftpd, client_certs, tmp_path, mode):
    server = client_ftpd(mode)
    src = tmp_path / "src"
    expected = make_tree(src)
    empty = without_empty_files(src) if mode != "plain" else []
    uploaded = tree_digest(src)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    got, down = tmp_path / "got.bin", tmp_path / "down"
    renamed = "/renamed \u00fc.bin"

    results = basicftp(server, client_certs, tmp_path / "home", [
        ["uploadFrom", str(big), "/big.bin"],
        ["ensureDir", "/tree"],
        ["cd", "/"],
        ["uploadFromDir", str(src), "/tree"],
        ["list", "/tree"],
        ["downloadTo", str(got), "/big.bin"],
        ["size", "/big.bin"],
        ["rename", "/big.bin", renamed],
        ["size", renamed],
    ])
    assert tree_digest(server.root / "tree") == uploaded
    for rel in empty:
        (server.root / "tree" / rel).write_bytes(b"")
    results += basicftp(server, client_certs, tmp_path / "home", [
        ["downloadToDir", str(down), "/tree"],
        ["remove", renamed],
        ["list", "/"],
    ])

    assert tree_digest(down) == expected
    assert sha256(got) == sha256(big)
    assert results[8] == big.stat().st_size
    listed = {(e["name"], e["type"], e["size"] if e["type"] == "file" else None)
              for e in results[4]}
    top = {p.name: p for p in src.iterdir()}
    assert listed == {(name, "dir" if p.is_dir() else "file",
                       None if p.is_dir() else p.stat().st_size) for name, p in top.items()}
    assert results[6] == big.stat().st_size
    assert [(e["name"], e["type"]) for e in results[11]] == [("tree", "dir")]
    assert not (server.root / renamed.lstrip("/")).exists()
    if mode != "plain":  # data connections were protected too
        assert "] PROT P" in server.log()

    # two control connections carried every transfer: the uploads, then the downloads
    sessions = list(commands_by_session(server.log()).values())
    assert len(sessions) == 2, sessions
    assert sessions[0].count("STOR") == 1 + len(uploaded)
    assert sessions[0].count("RETR") == 1
    assert sessions[1].count("RETR") == len(expected)


def test_basicftp_reports_a_refused_transfer(client_ftpd, client_certs, tmp_path):
    """A failure reaches the client as the server's reply (the runner would hide
    nothing): downloading a file that is not there is a 550."""
    server = client_ftpd("plain")
    spec = {"host": server.host, "port": server.port, "user": USER, "password": PASSWORD,
            "secure": False, "ca": None,
            "steps": [["downloadTo", str(tmp_path / "x"), "/missing.bin"]]}
    proc = subprocess.run([NODE, str(SCRIPT), json.dumps(spec)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env=client_env(tmp_path, NODE_PATH=str(NODE_MODULES)))
    assert proc.returncode == 1, output(proc)
    error = json.loads(proc.stdout.splitlines()[-1])
    assert error["code"] == 550, error
