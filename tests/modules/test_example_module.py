"""The example module from docs/MODULES.md, loaded through the real CLI's config file."""

from __future__ import annotations

import ftplib
import io
import os
import re
import subprocess
from pathlib import Path

import pytest
from ftpsupport import FtpdProcess, free_port, ftpd_argv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "upload_guard.py"
MAX_FILES_PER_DIR = 1000  # as in the example


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "root"
    served.mkdir()
    config = tmp_path / "ftpd.toml"
    config.write_text('modules = ["upload_guard"]\nwrite = true\n')
    port = free_port()
    ftpd = FtpdProcess(["-c", str(config), "-r", str(served), "-l", f"127.0.0.1:{port}",
                        "--log", str(tmp_path / "log")], port=port,
                       log_path=tmp_path / "ftpd.out",
                       env={"PYTHONPATH": os.pathsep.join([str(EXAMPLE.parent), str(ROOT)])})
    try:
        assert ftpd.wait_ready(), f"ftpd exited: {ftpd.log()}"
        yield port, served
    finally:
        ftpd.stop()


def test_docs_show_the_shipped_example():
    assert f"MAX_FILES_PER_DIR = {MAX_FILES_PER_DIR}\n" in EXAMPLE.read_text()
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
    full = served / "full"  # the generator PRE hook lists the directory off the loop
    full.mkdir()
    for i in range(MAX_FILES_PER_DIR):
        (full / f"f{i}").touch()
    with pytest.raises(ftplib.error_perm, match=f"^552 /full already holds {MAX_FILES_PER_DIR}"):
        ftp.storbinary("STOR full/one.txt", io.BytesIO(b"x"))
    assert not (full / "one.txt").exists()
    assert ftp.sendcmd("SITE UPLOADS") == "200 1 upload(s) since the server started."
    assert "UPLOADS" in ftp.sendcmd("SITE HELP")
    ftp.quit()


def test_unknown_module_is_a_config_error(tmp_path):
    config = tmp_path / "ftpd.toml"
    config.write_text('modules = ["no_such_module_here"]\n')
    proc = subprocess.run(ftpd_argv("-c", str(config), "-r", str(tmp_path), "-l", "127.0.0.1:0"),
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_module_here" in lines[0]


def _run_with_module(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    """The real ``ftpd`` with a config loading ``badmod`` (*source*) from a temporary
    directory on PYTHONPATH."""
    moddir = tmp_path / "mods"
    moddir.mkdir()
    (moddir / "badmod.py").write_text(source)
    config = tmp_path / "ftpd.toml"
    config.write_text('modules = ["badmod"]\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(moddir), str(ROOT)])}
    return subprocess.run(ftpd_argv("-c", str(config), "-r", str(tmp_path), "-l", "127.0.0.1:0"),
                          capture_output=True, text=True, timeout=20, env=env)


@pytest.mark.parametrize(("source", "says"), [
    ("def setup(ftpd):\n    raise RuntimeError('no licence key\\nsee the docs')\n",
     "RuntimeError: no licence key see the docs"),
    ("def setup(ftpd):\n    {}['missing']\n", "KeyError: 'missing'"),
    ("def setup(ftpd):\n    ftpd.command('X-MD5')(lambda s, cmd: None)\n", "X-MD5"),
    ("raise ImportError('broken at import')\n", "broken at import"),
])
def test_module_whose_setup_raises_is_one_line_and_exit_2(tmp_path, source, says):
    proc = _run_with_module(tmp_path, source)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "badmod" in lines[0] and says in lines[0]
    assert "Traceback" not in proc.stderr
