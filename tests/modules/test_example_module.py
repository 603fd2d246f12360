"""The example module from docs/MODULES.md, loaded through the real CLI's config file."""

from __future__ import annotations

import ftplib
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "upload_guard.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "root"
    served.mkdir()
    config = tmp_path / "ftpd.toml"
    config.write_text('modules = ["upload_guard"]\nwrite = true\n')
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLE.parent), str(ROOT)]))
    proc = subprocess.Popen([sys.executable, "-m", "ftpd", "-c", str(config), "-r", str(served),
                             "-l", f"127.0.0.1:{port}", "--log", str(tmp_path / "log")],
                            env=env)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, "ftpd exited"
            time.sleep(0.05)
    try:
        yield port, served
    finally:
        proc.terminate()
        proc.wait(10)


def test_docs_show_the_shipped_example():
    doc = (ROOT / "docs" / "MODULES.md").read_text()
    block = re.search(r"```python\n(.*?)```", doc, re.S)
    assert block and block.group(1) == EXAMPLE.read_text()


def test_example_module_hooks_site_command_and_events(server):
    port, served = server
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=10)
    ftp.login()
    with pytest.raises(ftplib.error_perm, match="^553 .*exe"):
        ftp.storbinary("STOR tool.exe", io.BytesIO(b"MZ"))
    assert not (served / "tool.exe").exists()
    reply = ftp.storbinary("STOR notes.txt", io.BytesIO(b"hello"))
    assert reply.startswith("226-") and "Checked by upload_guard." in reply
    assert (served / "notes.txt").read_bytes() == b"hello"
    assert ftp.sendcmd("SITE UPLOADS") == "200 1 upload(s) since the server started."
    assert "UPLOADS" in ftp.sendcmd("SITE HELP")
    ftp.quit()


def test_unknown_module_is_a_config_error(tmp_path):
    config = tmp_path / "ftpd.toml"
    config.write_text('modules = ["no_such_module_here"]\n')
    proc = subprocess.run([sys.executable, "-m", "ftpd", "-c", str(config), "-r", str(tmp_path),
                           "-l", "127.0.0.1:0"], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_module_here" in lines[0]
