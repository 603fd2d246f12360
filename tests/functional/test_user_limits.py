"""Per-user max-sessions and quota (SPEC §10), on an embedded server whose accounts
carry the limits, over a real local directory; and the same limits from a users file
written by ftpd-passwd, through the real ftpd command."""

from __future__ import annotations

import ftplib
import io
import logging
import os
import subprocess
import sys

import pytest
from limitsupport import Accounts

from ftpd.embed import FTPServer

KIB, MIB = 1 << 10, 1 << 20


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


def serve(root, **limits: dict) -> FTPServer:
    atomic = limits.pop("atomic_uploads", False)
    server = FTPServer(str(root), atomic_uploads=atomic)
    server.server.authorizer = Accounts(str(root), **limits)
    return server


def client(server: FTPServer) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=30)
    ftp.connect("127.0.0.1", server.port)
    return ftp


def login(server: FTPServer, user: str) -> ftplib.FTP:
    ftp = client(server)
    ftp.login(user, "x")
    return ftp


def refused_552(ftp: ftplib.FTP, cmd: str, data: bytes) -> str:
    """Upload *data*; the reply must be 552. The server stops reading at the quota and
    closes the data connection, so the client's send may be cut by a reset."""
    ftp.voidcmd("TYPE I")
    with pytest.raises(ftplib.error_perm) as refused:
        conn = ftp.transfercmd(cmd)
        try:
            conn.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            conn.close()
        ftp.voidresp()
    assert str(refused.value).startswith("552"), refused.value
    return str(refused.value)


def usage(root) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())


# -- max-sessions -------------------------------------------------------------------------
def test_the_session_past_max_sessions_gets_530_and_is_closed(root, caplog):
    caplog.set_level(logging.INFO, logger="ftpd.session")
    with serve(root, alice={"max_sessions": 2}, bob={}) as server:
        first, second = login(server, "alice"), login(server, "alice")
        third = client(server)
        with pytest.raises(ftplib.error_perm, match="^530 .*most sessions allowed"):
            third.login("alice", "x")
        assert third.sock.recv(100) == b""  # closed after the 530, as ProFTPD does
        third.close()
        assert any(r.getMessage().endswith("LOGIN REFUSED user=alice reason=max-sessions "
                                           "from=127.0.0.1") for r in caplog.records)
        others = [login(server, "bob") for _ in range(3)]  # bob has no limit
        anonymous = login(server, "anonymous")
        first.quit()  # a session that ends frees its place
        again = login(server, "alice")
        second.sendcmd("REIN")  # so does one that logs out
        login(server, "alice").quit()
        for ftp in (second, again, anonymous, *others):
            ftp.quit()


def test_a_session_cut_off_without_quit_frees_its_place(root):
    from ftpsupport import wait_until

    with serve(root, alice={"max_sessions": 1}) as server:
        gone = login(server, "alice")
        gone.sock.close()  # no QUIT: the server learns of it by EOF
        gone.file.close()

        def logs_in() -> ftplib.FTP | None:
            ftp = client(server)
            try:
                ftp.login("alice", "x")
            except ftplib.error_perm:
                ftp.close()
                return None
            return ftp

        wait_until(logs_in, "a new login of alice").quit()


# -- quota --------------------------------------------------------------------------------
def test_an_upload_past_the_quota_gets_552_and_keeps_only_what_fit(root):
    (root / "old").write_bytes(b"o" * 100 * KIB)  # measured at login
    with serve(root, alice={"quota": MIB}) as server:
        ftp = login(server, "alice")
        text = refused_552(ftp, "STOR big", os.urandom(2 * MIB))
        assert "Quota exceeded" in text
        assert (root / "big").stat().st_size <= MIB - 100 * KIB
        assert usage(root) <= MIB
        refused_552(ftp, "STOR more", b"m" * KIB)  # nothing left: refused at once
        assert not (root / "more").exists()
        ftp.delete("big")  # the room comes back
        ftp.storbinary("STOR small", io.BytesIO(b"s" * 200 * KIB))
        assert (root / "small").stat().st_size == 200 * KIB
        ftp.quit()


def test_with_atomic_uploads_nothing_of_an_upload_past_the_quota_is_kept(root):
    (root / "keep").write_bytes(b"k" * 300 * KIB)
    with serve(root, alice={"quota": MIB}, atomic_uploads=True) as server:
        ftp = login(server, "alice")
        refused_552(ftp, "STOR keep", os.urandom(2 * MIB))
        assert (root / "keep").read_bytes() == b"k" * 300 * KIB  # the old file stays
        assert sorted(p.name for p in root.iterdir()) == ["keep"]  # no temporary left
        ftp.storbinary("STOR small", io.BytesIO(b"s" * 100 * KIB))
        assert (root / "small").stat().st_size == 100 * KIB
        ftp.quit()


def test_rest_stor_and_appe_count_only_the_growth(root):
    (root / "f").write_bytes(b"a" * 900 * KIB)
    with serve(root, alice={"quota": MIB}) as server:
        ftp = login(server, "alice")
        ftp.voidcmd("TYPE I")
        # rewrites 500 KiB and adds 100 KiB: 1000 KiB in all, under the 1024 KiB quota
        ftp.storbinary("STOR f", io.BytesIO(b"b" * 600 * KIB), rest=400 * KIB)
        assert (root / "f").stat().st_size == 1000 * KIB
        refused_552(ftp, "APPE f", b"c" * 100 * KIB)  # 100 KiB more than the 24 KiB left
        assert (root / "f").stat().st_size == MIB
        # a plain STOR replacing the file may use the room the old one frees
        ftp.storbinary("STOR f", io.BytesIO(b"d" * 1000 * KIB))
        assert (root / "f").stat().st_size == 1000 * KIB
        ftp.quit()


def test_sessions_of_one_user_share_the_usage(root):
    with serve(root, alice={"quota": MIB}) as server:
        first, second = login(server, "alice"), login(server, "alice")
        first.storbinary("STOR a", io.BytesIO(b"a" * 800 * KIB))
        refused_552(second, "STOR b", b"b" * 300 * KIB)  # the other session's 800 KiB count
        assert usage(root) <= MIB
        first.quit()
        second.quit()


# -- from the users file, through the real ftpd ---------------------------------------------
def test_limits_from_a_users_file_written_by_ftpd_passwd(tmp_path, ftpd_server):
    home = tmp_path / "carol"
    home.mkdir()
    users = tmp_path / "users.toml"
    done = subprocess.run(
        [sys.executable, "-m", "ftpd.passwd", "-f", str(users), "add", "carol", "--home",
         str(home), "--perm", "elradfmw", "--password", "pw", "--quota", "1M",
         "--max-sessions", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    server = ftpd_server("--users", str(users), user=None)
    ftp = server.ftp("carol", "pw")
    with pytest.raises(ftplib.error_perm, match="^530"):
        server.ftp("carol", "pw")
    refused_552(ftp, "STOR big", os.urandom(2 * MIB))
    assert (home / "big").stat().st_size <= MIB
    ftp.quit()


# -- --max-rate through the real ftpd (real time: a lower bound only) -------------------------
def test_anonymous_under_max_rate_takes_at_least_what_the_rate_allows(ftpd_server):
    import time

    server = ftpd_server("--max-rate", "512K", user=None)
    data = os.urandom(MIB)
    (server.root / "f").write_bytes(data)
    ftp = server.ftp("anonymous", "guest@")
    start, chunks = time.monotonic(), []
    ftp.retrbinary("RETR f", chunks.append)
    seconds = time.monotonic() - start
    assert b"".join(chunks) == data
    # the bucket holds a quarter second's worth: the rest needs (1M - 128K) / 512K s
    assert seconds >= 1.75, f"1 MiB at 512 KiB/s in {seconds:.2f} s"
    ftp.quit()


@pytest.mark.parametrize("value", ["fast", "-1", "1.5M"])
def test_a_bad_max_rate_is_one_line_and_exit_2(value):
    done = subprocess.run([sys.executable, "-m", "ftpd", "--max-rate", value],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "max-rate" in done.stderr


def test_a_bad_limit_in_the_users_file_stops_start_up_with_exit_2(tmp_path):
    users = tmp_path / "users.toml"
    done = subprocess.run(
        [sys.executable, "-m", "ftpd.passwd", "-f", str(users), "add", "carol", "--home",
         str(tmp_path), "--password", "pw"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with open(users, "a") as f:
        f.write('quota = "lots"\n')
    done = subprocess.run([sys.executable, "-m", "ftpd", "--users", str(users), "-l",
                           "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "users.carol.quota" in done.stderr
