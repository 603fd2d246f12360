"""--banner TEXT / --banner-file FILE: the 220 greeting. A newline makes a multi-line
220; the file is read at start-up and on SIGHUP; a missing file is one line and exit 2
(on SIGHUP: one line, and the old banner stays)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from ftpsupport import DEADLINE, RawControl, ftpd_argv, wait_until

from ftpd import app, config


def greeting(server) -> str:
    with RawControl(server.host, server.port, greet=False) as ctl:
        ctl.reply()
        return ctl.received.decode()


def test_banner_text(ftpd_server):
    assert greeting(ftpd_server("--banner", "Welcome to the archive.")) == \
        "220 Welcome to the archive.\r\n"


def test_a_newline_makes_a_multi_line_220(ftpd_server):
    server = ftpd_server("--banner", "Welcome.\nNo uploads.\nBe nice.")
    assert greeting(server) == "220-Welcome.\r\n No uploads.\r\n220 Be nice.\r\n"


def test_banner_file_is_read_at_start_and_on_sighup(ftpd_server, tmp_path):
    banner = tmp_path / "banner.txt"
    banner.write_text("Site one.\r\nRules apply.\n\n")
    server = ftpd_server("--banner-file", str(banner))
    assert greeting(server) == "220-Site one.\r\n220 Rules apply.\r\n"
    banner.write_text("Site two.\n")
    os.kill(server.pid, signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in server.log(), "the reload")
    assert greeting(server) == "220 Site two.\r\n"
    banner.unlink()  # a reload that cannot read it keeps the old banner
    os.kill(server.pid, signal.SIGHUP)
    failed = wait_until(lambda: [line for line in server.log().splitlines()
                                 if "reload failed" in line], "the failed reload")
    assert len(failed) == 1 and "--banner-file" in failed[0]
    assert greeting(server) == "220 Site two.\r\n"


def run_ftpd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(ftpd_argv("-l", "127.0.0.1:0", *args), capture_output=True,
                          text=True, timeout=DEADLINE, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "message"), [
    (["--banner-file", "/nonexistent/banner"],
     "ftpd: error: --banner-file /nonexistent/banner: No such file or directory"),
    (["--banner", "a", "--banner-file", "/etc/hostname"],
     "ftpd: error: --banner and --banner-file exclude each other"),
    (["--banner", "a\rb"], "ftpd: error: --banner: must not contain control characters"),
    (["--banner", " "], "ftpd: error: --banner: must not be empty"),
])
def test_bad_banner_is_one_line_and_exit_2(args, message):
    done = run_ftpd(*args)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(message), done.stderr


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "must not be empty"), (b"caf\xe9\n", "not UTF-8"), (b"a\x1bb", "must not contain control characters"),
])
def test_bad_banner_file_is_one_line_and_exit_2(tmp_path, content, reason):
    banner = tmp_path / "banner"
    banner.write_bytes(content)
    done = run_ftpd("--banner-file", str(banner))
    assert done.returncode == 2
    assert done.stderr == f"ftpd: error: --banner-file {banner}: {reason}\n"


def test_a_toml_multi_line_string_is_a_multi_line_banner(tmp_path):
    conf = tmp_path / "ftpd.toml"
    conf.write_text('banner = """\nWelcome.\nBe nice."""\n')
    settings = config.resolve({"config": str(conf)}, str(tmp_path))
    assert app.read_banner(settings) == "Welcome.\nBe nice."
