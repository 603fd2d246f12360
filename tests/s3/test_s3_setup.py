"""Wiring an ``s3://`` root: the S3 settings, the lean ordinary start, a missing client,
credentials from a file, users' homes in a bucket, an unreachable store, and
``--atomic-uploads`` implied."""

from __future__ import annotations

import ftplib
import io
import os
import socket
import subprocess
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, FtpdProcess, RawControl, free_port, ftpd_argv, start_ftpd
from s3ftpd import s3_env, start_s3ftpd
from s3support import ACCESS_KEY, SECRET_KEY

from ftpd.auth.users import hash_password
from ftpd.config import ConfigError, resolve


@pytest.mark.parametrize(("raw", "size"), [("8M", 8 << 20), ("5MiB", 5 << 20),
                                           ("6291456", 6 << 20), ("1G", 1 << 30)])
def test_part_size_takes_sizes(raw, size, tmp_path):
    assert resolve({"s3_part_size": raw}, cwd=str(tmp_path)).s3_part_size == size


@pytest.mark.parametrize("raw", ["4M", "lots", "8X", "-8M"])
def test_part_size_below_five_mib_or_malformed_is_one_line(raw, tmp_path):
    with pytest.raises(ConfigError, match="^--s3-part-size: "):
        resolve({"s3_part_size": raw}, cwd=str(tmp_path))


def test_s3_root_is_kept_as_a_url_and_checked(tmp_path):
    settings = resolve({"root": "s3://bucket/some/prefix"}, cwd=str(tmp_path))
    assert settings.root == "s3://bucket/some/prefix"
    assert settings.s3_region == "us-east-1" and settings.s3_part_size == 8 << 20
    with pytest.raises(ConfigError, match="^--root .*not a valid S3 bucket name"):
        resolve({"root": "s3://Bad_Bucket/x"}, cwd=str(tmp_path))


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(ftpd_argv(*args), capture_output=True, text=True,
                          timeout=DEADLINE, stdin=subprocess.DEVNULL, **kw)


def test_bad_s3_flags_exit_2_in_one_line():
    for args in (["-r", "s3://Bad_Bucket"], ["-r", "s3://b0b/x", "--s3-part-size", "1M"]):
        proc = run(args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


RECORD_MODULES = """
import atexit, os, sys
def record():
    with open(os.environ["RECORD_MODULES"], "w") as f:
        f.write(" ".join(m for m in sys.modules
                         if m == "obstore" or m.startswith(("obstore.", "ftpd.fs.s3"))))
atexit.register(record)
"""


def test_an_ordinary_start_imports_no_s3_client(tmp_path):
    """A real start, login, listing and idle exit: neither obstore nor ftpd.fs.s3*
    (a sitecustomize records the modules at exit)."""
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "pub.txt").write_text("x")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(RECORD_MODULES)
    record = tmp_path / "modules.txt"
    env = {"PYTHONPATH": str(tmp_path / "site"), "RECORD_MODULES": str(record)}

    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        return FtpdProcess(["-l", f"127.0.0.1:{ports[0]}", "-r", str(tmp_path / "pub"),
                            "--idle-timeout", "1"], port=ports[0], env=env,
                           log_path=tmp_path / f"lean{attempt}.log")

    server = start_ftpd(spawn)
    ftp = ftplib.FTP(timeout=DEADLINE)
    ftp.connect("127.0.0.1", server.port)
    ftp.login()
    assert ftp.nlst() == ["pub.txt"]
    ftp.quit()
    assert server.proc.wait(DEADLINE) == 0, server.log()
    assert record.read_text() == ""


def test_missing_client_is_one_line_and_exit_1(tmp_path):
    (tmp_path / "obstore.py").write_text("raise ImportError('no obstore here')\n")
    proc = run(["-r", "s3://bucket/p", "-l", f"127.0.0.1:{free_port()}"],
               env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'ftpd[s3]'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreadable_secret_file_is_exit_1(tmp_path):
    proc = run(["-r", "s3://bucket/p", "--s3-access-key-id", "k",
                "--s3-secret-access-key-file", str(tmp_path / "absent"),
                "-l", f"127.0.0.1:{free_port()}"])
    assert proc.returncode == 1 and "--s3-secret-access-key-file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_credentials_from_the_config_keys(seaweed, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(SECRET_KEY + "\n")
    config = tmp_path / "ftpd.toml"
    config.write_text(f's3-access-key-id = "{ACCESS_KEY}"\n'
                      f's3-secret-access-key-file = "{secret}"\ns3-part-size = "5M"\n')
    server = start_s3ftpd(tmp_path, seaweed.endpoint, "s3://ftpd/keys", "-c", str(config),
                          env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    try:
        ftp = ftplib.FTP(timeout=DEADLINE)
        ftp.connect("127.0.0.1", server.port)
        ftp.login("user", "pw")
        ftp.storbinary("STOR k.txt", io.BytesIO(b"signed"))
        ftp.quit()
    finally:
        server.stop()
    status, body = seaweed.request("GET", key="keys/k.txt")
    assert (status, body) == (200, b"signed")


def test_users_homes_are_prefixes_in_the_bucket(seaweed, tmp_path):
    users = tmp_path / "users.toml"
    users.write_text(f'[users.alice]\npassword = "{hash_password("apw")}"\n'
                     f'home = "s3://{seaweed.bucket}/homes/alice"\nperm = "elradfmw"\n')
    status, _ = seaweed.request("PUT", key="homes/alice/hello.txt", body=b"hi alice")
    assert status == 200

    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        argv = ["-l", f"127.0.0.1:{ports[0]}", "-r", str(tmp_path), "-n", "--users",
                str(users), "--s3-endpoint", seaweed.endpoint, "--failed-login-delay", "0"]
        return FtpdProcess(argv, port=ports[0], log_path=tmp_path / f"u{attempt}.log",
                           env=s3_env())

    server = start_ftpd(spawn)
    try:
        ftp = ftplib.FTP(timeout=DEADLINE)
        ftp.connect("127.0.0.1", server.port)
        ftp.login("alice", "apw")
        assert ftp.nlst() == ["hello.txt"]
        got = bytearray()
        ftp.retrbinary("RETR hello.txt", got.extend)
        assert bytes(got) == b"hi alice"
        ftp.quit()
    finally:
        server.stop()


def test_unreachable_endpoint_answers_451_not_a_hang(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    server = start_s3ftpd(tmp_path, dead, "s3://ftpd/p")
    try:
        with RawControl("127.0.0.1", server.port, timeout=3 * DEADLINE) as ctl:
            ctl.login("user", "pw")
            for cmd in ("CWD sub", "SIZE f", "MKD d"):
                code, text = ctl.cmd(cmd)
                assert code in (421, 451), (cmd, code, text)
            assert ctl.cmd("NOOP")[0] == 200
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_atomic_uploads_are_implied_no_temporary_object(seaweed, tmp_path):
    server = start_s3ftpd(tmp_path, seaweed.endpoint, "s3://ftpd/atomic", "--atomic-uploads")
    try:
        ftp = ftplib.FTP(timeout=DEADLINE)
        ftp.connect("127.0.0.1", server.port)
        ftp.login("user", "pw")
        ftp.storbinary("STOR a.bin", io.BytesIO(b"whole"))
        ftp.quit()
    finally:
        server.stop()
    assert seaweed.keys("atomic/") == ["atomic/a.bin"]
    assert "not atomic" not in server.log()  # no temporary renamed (a copy and a delete)


def test_endpoint_that_never_answers_gets_451_not_a_hang(tmp_path):
    with socket.socket() as silent:  # connections are accepted by the kernel, never served
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        server = start_s3ftpd(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}",
                              "s3://ftpd/p")
        try:
            with RawControl("127.0.0.1", server.port, timeout=4 * DEADLINE) as ctl:
                ctl.login("user", "pw")
                code, text = ctl.cmd("CWD sub")
                assert code in (421, 451), (code, text)
        finally:
            server.stop()
    assert "Traceback" not in server.log()


def test_no_such_bucket_is_550_and_one_log_line(seaweed, tmp_path):
    server = start_s3ftpd(tmp_path, seaweed.endpoint, "s3://no-such-bucket/p")
    try:
        with RawControl("127.0.0.1", server.port) as ctl:
            ctl.login("user", "pw")
            code, _ = ctl.cmd("MKD d")
            assert code == 550
    finally:
        server.stop()
    failures = [line for line in server.log().splitlines() if "s3 " in line and "failed" in line]
    assert len(failures) == 1 and "Traceback" not in server.log(), server.log()


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs root")
def test_secret_file_is_read_before_privileges_drop(seaweed, tmp_path):
    """A secret the --run-as user cannot read is refused at start (a SIGHUP reads it
    again); one it can read signs requests after the drop."""
    import pwd
    import shutil
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="ftpd-s3secret-", dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        secret = shared / "secret"
        secret.write_text(SECRET_KEY + "\n")
        os.chmod(secret, 0o600)  # root's alone
        args = ["--s3-access-key-id", ACCESS_KEY, "--s3-secret-access-key-file", str(secret),
                "--run-as", "nobody"]
        proc = run(["-r", "s3://ftpd/runas", "--s3-endpoint", seaweed.endpoint, *args,
                    "-l", f"127.0.0.1:{free_port()}"])
        assert proc.returncode == 2 and "--s3-secret-access-key-file" in proc.stderr
        os.chown(secret, pwd.getpwnam("nobody").pw_uid, -1)
        server = start_s3ftpd(tmp_path, seaweed.endpoint, "s3://ftpd/runas", *args,
                              env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
        try:
            ftp = ftplib.FTP(timeout=DEADLINE)
            ftp.connect("127.0.0.1", server.port)
            ftp.login("user", "pw")
            ftp.storbinary("STOR r.txt", io.BytesIO(b"as nobody"))
            ftp.quit()
        finally:
            server.stop()
        assert seaweed.request("GET", key="runas/r.txt") == (200, b"as nobody")
    finally:
        shutil.rmtree(shared, ignore_errors=True)
