"""Start-up validation of the TLS settings: a certificate or key that cannot be used,
and TLS modes that need a certificate, stop ftpd before it serves anything: exit 2
and one line on stderr naming the option (and the file) and what is wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, free_port, ftpd_argv
from tlshelpers import Raw, quit_quietly, tls_login


def _start(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    argv = ftpd_argv("-l", f"127.0.0.1:{free_port()}", "-r", str(root), *args)
    return subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=DEADLINE, text=True)


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


def _case(certs, tmp_path: Path, name: str) -> tuple[list[str], Path, str]:
    """(arguments, the offending file, the option that names it)"""
    missing = tmp_path / "missing.pem"
    return {
        "missing-cert": (["--tls-cert", str(missing)], missing, "--tls-cert"),
        "missing-key": (["--tls-cert", str(certs.cert), "--tls-key", str(missing)], missing,
                        "--tls-key"),
        "garbage-cert": (["--tls-cert", str(certs.garbage)], certs.garbage, "--tls-cert"),
        "garbage-key": (["--tls-cert", str(certs.cert), "--tls-key", str(certs.garbage)],
                        certs.garbage, "--tls-key"),
        "cert-without-key": (["--tls-cert", str(certs.cert)], certs.cert, "--tls-cert"),
    }[name]


@pytest.mark.parametrize("name", ["missing-cert", "missing-key", "garbage-cert", "garbage-key",
                                  "cert-without-key"])
def test_unusable_file_names_the_option_and_the_file(certs, tmp_path, name):
    args, path, option = _case(certs, tmp_path, name)
    line = _one_line(_start(tmp_path, *args))
    assert line.startswith("ftpd: ")
    assert option in line, line
    assert str(path) in line, line


@pytest.mark.parametrize("name", ["missing-cert", "missing-key", "garbage-cert",
                                  "garbage-key", "cert-without-key"])
def test_unusable_file_is_exit_2_in_one_line(certs, tmp_path, name):
    """What already holds: exit 2, a single line naming the option, no traceback."""
    args, _, option = _case(certs, tmp_path, name)
    line = _one_line(_start(tmp_path, *args))
    assert option in line, line


def test_key_not_matching_the_certificate(certs, tmp_path):
    line = _one_line(_start(tmp_path, "--tls-cert", str(certs.cert),
                            "--tls-key", str(certs.other_key)))
    assert "--tls-key" in line and "match" in line.lower(), line


@pytest.mark.parametrize("args,words", [
    (["--tls", "required"], ["--tls required", "--tls-cert"]),
    (["--tls", "explicit"], ["--tls explicit", "--tls-cert"]),
    (["--implicit-listen", "127.0.0.1:1"], ["implicit", "--tls-cert"]),
    (["--implicit"], ["implicit", "--tls-cert"]),
    (["--tls-anonymous", "--tls", "required"], ["--tls-cert"]),
])
def test_modes_that_need_a_certificate(tmp_path, args, words):
    line = _one_line(_start(tmp_path, *args))
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("args,option", [
    (["--tls", "sometimes"], "--tls"),
    (["--tls-reuse", "maybe"], "--tls-reuse"),
])
def test_bad_choices(certs, tmp_path, args, option):
    line = _one_line(_start(tmp_path, "--tls-cert", str(certs.cert), "--tls-key",
                            str(certs.key), *args))
    assert option in line, line


def test_combined_pem_needs_no_tls_key(ftpd, certs):
    """Key and chain in one --tls-cert file: ftpd starts and AUTH TLS works."""
    server = ftpd("--tls-cert", str(certs.combined), tls=False)
    ftp = tls_login(server.host, server.port, certs.ca)
    try:
        assert ftp.nlst() == []
    finally:
        quit_quietly(ftp)


def test_tls_off_with_a_certificate_offers_no_tls(ftpd, certs):
    server = ftpd("--tls", "off")
    raw = Raw(server.host, server.port)
    try:
        raw.reply()
        code, text = raw.cmd("FEAT")
        assert "AUTH TLS" not in text
        assert raw.cmd("AUTH TLS")[0] == 502
    finally:
        raw.close()
