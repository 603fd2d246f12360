"""--tls required: non-anonymous logins and their data must be protected. A cleartext
USER for such a user gets 530; anonymous may stay in the clear unless
--tls-anonymous; for a protected user PROT C gets 534 and a transfer without PROT P
gets 521."""

from __future__ import annotations

import ftplib
import shutil

import pytest
from tlshelpers import (
    USER,
    Raw,
    client_context,
    curl,
    finish,
    quit_quietly,
    retr,
    start_tls,
    tls_login,
)


@pytest.fixture(scope="module")
def required(tmp_path_factory, certs):
    workdir = tmp_path_factory.mktemp("required")
    root = workdir / "root"
    root.mkdir()
    (root / "f.txt").write_bytes(b"abc\n")
    server = start_tls(workdir, "--tls-cert", str(certs.cert), "--tls-key", str(certs.key),
                       "--tls", "required", root=root)
    yield server
    finish([server])


def test_cleartext_user_is_refused_with_a_clear_text(required):
    raw = Raw(required.host, required.port)
    try:
        assert raw.reply()[0] == 220
        code, text = raw.cmd(f"USER {USER}")
        assert code == 530
        assert "TLS" in text and "AUTH" in text, text
        assert raw.cmd("PASS pw")[0] == 503  # no USER was accepted
        # the same session can still do it properly
        assert raw.cmd("AUTH TLS")[0] == 234
    finally:
        raw.close()


def test_cleartext_user_then_auth_tls_in_the_same_session(required, certs):
    raw = Raw(required.host, required.port)
    try:
        raw.reply()
        assert raw.cmd(f"USER {USER}")[0] == 530
        assert raw.cmd("AUTH TLS")[0] == 234
        raw.starttls(client_context(certs.ca))
        assert raw.cmd(f"USER {USER}")[0] == 331
        assert raw.cmd("PASS pw")[0] == 230
    finally:
        raw.close()


def test_ftplib_cleartext_login_refused(required):
    ftp = ftplib.FTP()
    try:
        ftp.connect(required.host, required.port, timeout=10)
        with pytest.raises(ftplib.error_perm, match="^530"):
            ftp.login(USER, "pw")
    finally:
        ftp.close()


def test_protected_login_and_data(required, certs):
    ftp = tls_login(required.host, required.port, certs.ca)
    try:
        assert retr(ftp, "f.txt") == b"abc\n"
        assert ftp.last_data_reused is True
    finally:
        quit_quietly(ftp)


def test_anonymous_may_stay_in_the_clear(required):
    ftp = ftplib.FTP()
    try:
        ftp.connect(required.host, required.port, timeout=10)
        assert ftp.login("anonymous", "guest@example.org").startswith("230")
        assert "f.txt" in ftp.nlst()
        assert retr(ftp, "f.txt") == b"abc\n"
    finally:
        quit_quietly(ftp)


def test_anonymous_over_tls_may_choose_prot_c(required, certs):
    ftp = tls_login(required.host, required.port, certs.ca, user="anonymous",
                    password="guest@example.org")
    try:
        assert ftp.sendcmd("PROT C").startswith("200")
        ftp.prot_c()
        assert "f.txt" in ftp.nlst()
    finally:
        quit_quietly(ftp)


def test_prot_c_refused_for_a_protected_user(required, certs):
    ftp = tls_login(required.host, required.port, certs.ca)
    try:
        with pytest.raises(ftplib.error_perm, match="^534"):
            ftp.sendcmd("PROT C")
        # still protected afterwards
        assert retr(ftp, "f.txt") == b"abc\n"
    finally:
        quit_quietly(ftp)


@pytest.mark.parametrize("pbsz", [False, True], ids=["no-pbsz", "pbsz-only"])
def test_transfer_without_prot_p_gets_521(required, certs, pbsz):
    ftp = tls_login(required.host, required.port, certs.ca, prot_p=False)
    try:
        if pbsz:
            assert ftp.sendcmd("PBSZ 0").startswith("200")
        with pytest.raises(ftplib.error_perm, match="^521"):
            ftp.nlst()
        with pytest.raises(ftplib.error_perm, match="^521"):
            retr(ftp, "f.txt")
    finally:
        quit_quietly(ftp)


def test_tls_anonymous_refuses_anonymous_in_the_clear(ftpd, certs):
    server = ftpd("--tls", "required", "--tls-anonymous")
    for name in ("anonymous", "ftp"):
        raw = Raw(server.host, server.port)
        try:
            raw.reply()
            code, text = raw.cmd(f"USER {name}")
            assert code == 530, (name, code, text)
            assert "TLS" in text
        finally:
            raw.close()
    ftp = tls_login(server.host, server.port, certs.ca, user="anonymous",
                    password="guest@example.org")
    try:
        assert ftp.nlst() == []
    finally:
        quit_quietly(ftp)


def test_explicit_mode_allows_cleartext_logins(ftpd):
    """Only `required` refuses: the default (explicit, certificate given) offers TLS
    without demanding it."""
    server = ftpd()
    ftp = ftplib.FTP()
    try:
        ftp.connect(server.host, server.port, timeout=10)
        assert ftp.login(USER, "pw").startswith("230")
        assert ftp.nlst() == []
    finally:
        quit_quietly(ftp)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_under_required(required, certs, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    ok = curl(["--ssl-reqd", required.url("f.txt")], certs.ca, tmp_path, home)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == b"abc\n"
    clear = curl([required.url("f.txt")], certs.ca, tmp_path, home)
    assert clear.returncode == 67, clear  # CURLE_LOGIN_DENIED
