"""ftpd-passwd run as a real process: what lands in the file, what it prints, how it exits."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ftpd.auth.base import Account
from ftpd.auth.users import UsersFileAuthorizer, load_users

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None):
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    child_env.pop("FTPD_USERS", None)
    child_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "ftpd.passwd", *args], input=stdin,
                          capture_output=True, text=True, env=child_env, timeout=60,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


@pytest.fixture
def users(tmp_path) -> str:
    return str(tmp_path / "users.toml")


def one_error_line(result, code: int) -> str:
    assert result.returncode == code, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ftpd-passwd: ")
    return lines[0]


def test_full_life_cycle(users, tmp_path):
    home = tmp_path / "alice"
    home.mkdir()
    r = run("-f", users, "add", "alice", "--home", str(home), "--perm", "elrw",
            "--password", "first-Secret")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600

    r = run("-f", users, "add", "bob", "--home", "/srv/ftp/bob/", "--password-stdin",
            stdin="bobs-Secret\n")
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr  # /srv/ftp/bob does not exist

    r = run("-f", users, "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"alice\t{home}\telrw", "bob\t/srv/ftp/bob\telr"]
    assert "scrypt" not in r.stdout

    text = Path(users).read_text()
    assert "first-Secret" not in text and "bobs-Secret" not in text
    assert text.count('password = "scrypt$') == 2

    auth = UsersFileAuthorizer(users)
    assert auth.authenticate("alice", "first-Secret") == Account("alice", str(home), "elrw")
    assert auth.authenticate("bob", "bobs-Secret") is not None

    r = run("-f", users, "passwd", "alice", "--password", "second-Secret")
    assert r.returncode == 0, r.stderr
    assert "second-Secret" not in Path(users).read_text()
    auth.reload()
    assert auth.authenticate("alice", "first-Secret") is None
    assert auth.authenticate("alice", "second-Secret") == Account("alice", str(home), "elrw")

    r = run("-f", users, "del", "bob")
    assert r.returncode == 0, r.stderr
    assert list(load_users(users)) == ["alice"]
    auth.reload()
    assert auth.authenticate("bob", "bobs-Secret") is None


def test_file_from_environment(users):
    r = run("add", "carol", "--home", "/c", "--password", "pw", env={"FTPD_USERS": users})
    assert r.returncode == 0, r.stderr
    assert run("list", env={"FTPD_USERS": users}).stdout == "carol\t/c\telr\n"


def test_existing_user_refused_unless_force(users):
    assert run("-f", users, "add", "alice", "--home", "/a", "--password", "one").returncode == 0
    line = one_error_line(run("-f", users, "add", "alice", "--home", "/b", "--password", "two"), 1)
    assert "already exists" in line and "--force" in line
    assert UsersFileAuthorizer(users).authenticate("alice", "one") is not None
    r = run("-f", users, "add", "alice", "--home", "/b", "--perm", "e", "--password", "two",
            "--force")
    assert r.returncode == 0, r.stderr
    assert UsersFileAuthorizer(users).authenticate("alice", "two") == Account("alice", "/b", "e")


def test_password_stdin_strips_only_the_line_end(users):
    r = run("-f", users, "add", "dave", "--home", "/d", "--password-stdin", stdin=" sp ace \r\n")
    assert r.returncode == 0, r.stderr
    assert UsersFileAuthorizer(users).authenticate("dave", " sp ace ") is not None


@pytest.mark.parametrize("args, code, needle", [
    (["--bogus"], 2, "--bogus"),
    (["add", "x", "--home", "/x", "--bogus"], 2, "--bogus"),
    (["add", "x"], 2, "--home"),
    (["add"], 2, "NAME"),
    (["frobnicate"], 2, "frobnicate"),
    (["add", "x", "--home", "relative", "--password", "p"], 2, "--home: must be an absolute"),
    (["add", "x", "--home", "/x", "--perm", "elrz", "--password", "p"], 2,
     "--perm: unknown permission letter 'z'"),
    (["add", "x", "--home", "/x", "--password", "p", "--password-stdin"], 2,
     "mutually exclusive"),
    (["add", "x", "--home", "/x", "--password", ""], 2, "empty password"),
    (["add", "x", "--home", "/x"], 2, "no password given"),   # stdin is not a terminal
    (["add", " x", "--home", "/x", "--password", "p"], 2, "white space"),
    (["del", "nobody"], 1, "no such user: 'nobody'"),
    (["passwd", "nobody", "--password", "p"], 1, "no such user: 'nobody'"),
])
def test_errors_are_one_line_with_the_right_exit_code(users, args, code, needle):
    run("-f", users, "add", "alice", "--home", "/a", "--password", "pw")
    before = Path(users).read_bytes()
    line = one_error_line(run("-f", users, *args), code)
    assert needle in line
    assert Path(users).read_bytes() == before


def test_missing_file_is_a_runtime_error(tmp_path):
    line = one_error_line(run("-f", str(tmp_path / "none.toml"), "list"), 1)
    assert "none.toml" in line


def test_missing_directory_is_a_runtime_error(tmp_path):
    path = str(tmp_path / "no" / "such" / "users.toml")
    line = one_error_line(run("-f", path, "add", "a", "--home", "/a", "--password", "p"), 1)
    assert str(tmp_path / "no") in line


def test_bad_file_is_a_config_error_and_is_left_alone(users):
    Path(users).write_text('[users.alice]\npassword = "plain"\nhome = "/a"\nperm = "elr"\n')
    for args in (["list"], ["add", "b", "--home", "/b", "--password", "p"], ["del", "alice"]):
        line = one_error_line(run("-f", users, *args), 2)
        assert "users.alice.password" in line
    assert "plain" in Path(users).read_text()


def test_help_and_version():
    r = run("--help")
    assert r.returncode == 0
    for word in ("add", "del", "list", "passwd", "--file", "FTPD_USERS"):
        assert word in r.stdout
    r = run("add", "--help")
    assert r.returncode == 0 and "--password-stdin" in r.stdout and "--force" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("ftpd-passwd, version ")


def _on_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run ftpd-passwd with a pseudo-terminal as its controlling terminal, typing *answers*
    at each prompt; returns (exit status, everything it wrote)."""
    import pty
    import select
    import termios
    import time

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [sys.executable, "-m", "ftpd.passwd", *args], env)
    output, answered, deadline = b"", 0, time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            # Answer a prompt only once getpass has turned echo off, or the answer would
            # be echoed (and flushed away).
            if (answered < len(answers) and output.count(b"assword") > answered
                    and not termios.tcgetattr(fd)[3] & termios.ECHO):
                os.write(fd, answers[answered].encode() + b"\n")
                answered += 1
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_prompts_twice_on_a_terminal(users):
    code, out = _on_terminal(["-f", users, "add", "erin", "--home", "/e"],
                             ["typed-Secret", "typed-Secret"])
    assert code == 0, out
    assert "Password for erin" in out and "Repeat password" in out
    assert "typed-Secret" not in out  # hidden input is not echoed
    assert UsersFileAuthorizer(users).authenticate("erin", "typed-Secret") is not None

    code, out = _on_terminal(["-f", users, "passwd", "erin"], ["new-Secret", "new-Secret"])
    assert code == 0, out
    auth = UsersFileAuthorizer(users)
    assert auth.authenticate("erin", "typed-Secret") is None
    assert auth.authenticate("erin", "new-Secret") is not None


def test_password_stdin_non_utf8_bytes(users):
    child_env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "ftpd.passwd", "-f", users, "add", "fay",
                        "--home", "/f", "--password-stdin"], input=b"caf\xe9\n",
                       capture_output=True, env=child_env, timeout=60)
    assert r.returncode == 0, r.stderr
    # What the server hands the authorizer after decoding PASS with surrogateescape:
    pw = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert UsersFileAuthorizer(users).authenticate("fay", pw) is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
@pytest.mark.parametrize("command", [["add", "carol", "--home", "/srv/carol", "--password", "pw-1"],
                                     ["passwd", "alice", "--password", "pw-2"],
                                     ["del", "alice"]])
def test_rewrite_keeps_the_owner_group_and_mode(users, command):
    """A users file root:nogroup 0640, read by a server --run-as nobody:nogroup, stays
    so after every rewrite (SIGHUP can still reload it)."""
    import grp
    import pwd

    r = run("-f", users, "add", "alice", "--home", "/srv/alice", "--password", "pw-0")
    assert r.returncode == 0, r.stderr
    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    os.chown(users, uid, gid)
    os.chmod(users, 0o640)
    r = run("-f", users, *command)
    assert r.returncode == 0, r.stderr
    st = os.stat(users)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o640)


def test_limits_are_set_changed_and_cleared(users):
    r = run("-f", users, "add", "carol", "--home", "/srv/c", "--password", "pw",
            "--max-rate", "1M", "--max-sessions", "2", "--quota", "10G")
    assert r.returncode == 0, r.stderr
    entry = load_users(users)["carol"]
    assert (entry.max_rate, entry.max_sessions, entry.quota) == (1 << 20, 2, 10 << 30)
    assert run("-f", users, "list").stdout.splitlines() == [
        "carol\t/srv/c\telr\tmax-rate=1M\tmax-sessions=2\tquota=10G"]
    r = run("-f", users, "mod", "carol", "--quota", "none", "--max-rate", "512K",
            "--perm", "elrw")
    assert r.returncode == 0, r.stderr
    after = load_users(users)["carol"]
    assert (after.max_rate, after.max_sessions, after.quota, after.perm) == (
        512 << 10, 2, None, "elrw")
    assert after.password == entry.password  # mod keeps the password
    r = run("-f", users, "passwd", "carol", "--password", "new")
    assert r.returncode == 0, r.stderr
    assert load_users(users)["carol"].max_sessions == 2  # passwd keeps the limits


@pytest.mark.parametrize("args, needle", [
    (["--max-rate", "fast"], "--max-rate: expected a size like 1M"),
    (["--quota", "0"], "--quota: must be at least 1"),
    (["--max-sessions", "two"], "--max-sessions: must be an integer"),
    ([], "nothing to change"),
])
def test_mod_refuses_bad_limits_in_one_line(users, args, needle):
    assert run("-f", users, "add", "dave", "--home", "/d", "--password", "pw").returncode == 0
    before = open(users).read()
    assert needle in one_error_line(run("-f", users, "mod", "dave", *args), 2)
    assert open(users).read() == before


def test_mod_of_a_missing_user_is_a_runtime_error(users):
    assert run("-f", users, "add", "dave", "--home", "/d", "--password", "pw").returncode == 0
    assert "no such user" in one_error_line(run("-f", users, "mod", "eve", "--quota", "1G"), 1)


def test_an_s3_home_is_kept_as_written(users):
    r = run("-f", users, "add", "carol", "--home", "s3://ftp-bucket/homes/carol",
            "--password", "carols-Secret")
    assert r.returncode == 0 and r.stderr == "", r.stderr  # no "not a directory" warning
    assert run("-f", users, "list").stdout.splitlines() == [
        "carol\ts3://ftp-bucket/homes/carol\telr"]
    line = one_error_line(run("-f", users, "add", "dave", "--home", "s3://Bad_Bucket/x",
                              "--password", "daves-Secret"), 2)
    assert "--home" in line and "not a valid S3 bucket name" in line
