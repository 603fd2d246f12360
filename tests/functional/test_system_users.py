"""--pam end to end: throwaway accounts log in with their system password, standalone
(each session handed to its own process) and under -I (the process drops to the
account after login). What a session creates is owned by the account; what the
account could not read, the session cannot either; root, ftpusers names and wrong
passwords get 530."""

from __future__ import annotations

import ftplib
import io
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from ftpsupport import DEADLINE, FtpdProcess, ftpd_argv, start_ftpd, stop_pid
from pamsupport import SystemAccount, needs_system_users, pam_service, system_account

pytestmark = needs_system_users


class Accounts(NamedTuple):
    service: str
    user: SystemAccount  # logs in
    other: SystemAccount  # owns a 0600 file inside user's home
    root_alias: SystemAccount  # uid 0 under another name, with a password
    listed: SystemAccount  # in the --ftpusers file
    ftpusers: Path


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounts]:
    tmp = tmp_path_factory.mktemp("pam")
    with pam_service() as service, system_account() as user, system_account() as other, \
            system_account(uid=0) as root_alias, system_account() as listed:
        secret = user.home / "secret.txt"
        secret.write_bytes(b"not for user\n")
        os.chown(secret, other.uid, other.gid)
        secret.chmod(0o600)
        mine = user.home / "mine.txt"
        mine.write_bytes(b"user's own\n")
        os.chown(mine, user.uid, user.gid)
        ftpusers = tmp / "ftpusers"
        ftpusers.write_text(f"# refused\n{listed.name}\n")
        yield Accounts(service, user, other, root_alias, listed, ftpusers)


def server_args(accounts: Accounts, log: Path, anonymous_root: Path | None = None) -> list[str]:
    users = ["-n"] if anonymous_root is None else ["-r", str(anonymous_root)]
    return ["--pam", accounts.service, "--ftpusers", str(accounts.ftpusers), *users,
            "--failed-login-delay", "0", "--max-login-attempts", "5", "--log", str(log),
            "-v"]


class InetdFTP(ftplib.FTP):
    """ftplib on a connection made beforehand (the client end of what inetd hands ftpd)."""

    def attach(self, sock: socket.socket) -> str:
        sock.settimeout(DEADLINE)
        self.sock, self.af = sock, sock.family
        self.file = sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


class Modes:
    """Opens ftplib sessions on ftpd in one launch mode; stops what it started."""

    def __init__(self, mode: str, accounts: Accounts, tmp: Path,
                 anonymous_root: Path | None = None) -> None:
        self.mode, self.accounts, self.tmp = mode, accounts, tmp
        self.log = tmp / "ftpd.log"
        self.args = server_args(accounts, self.log, anonymous_root)
        self.procs: list[subprocess.Popen] = []
        self.server: FtpdProcess | None = None
        if mode == "standalone":
            args = self.args
            self.server = start_ftpd(lambda ports, _: FtpdProcess(
                ["-l", f"127.0.0.1:{ports[0]}", *args], port=ports[0],
                log_path=tmp / "stderr.log"))

    def connect(self) -> ftplib.FTP:
        if self.server is not None:
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", self.server.port, timeout=DEADLINE)
            return ftp
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname(), timeout=DEADLINE)
            served, _ = listener.accept()
        with served:
            self.procs.append(subprocess.Popen(
                ftpd_argv("-I", *self.args),
                stdin=served.fileno(), stdout=served.fileno(), stderr=served.fileno()))
        ftp = InetdFTP()
        ftp.attach(client)
        return ftp

    def login(self, account: SystemAccount, password: str | None = None) -> ftplib.FTP:
        ftp = self.connect()
        ftp.login(account.name, account.password if password is None else password)
        return ftp

    def refused(self, name: str, password: str) -> str:
        """The reply to a login that must fail."""
        ftp = self.connect()
        try:
            with pytest.raises(ftplib.error_perm) as refused:
                ftp.login(name, password)
            return str(refused.value)
        finally:
            ftp.close()

    def stop(self) -> None:
        for proc in self.procs:
            stop_pid(proc)
        if self.server is not None:
            self.server.stop()


@pytest.fixture(params=["standalone", "inetd"])
def ftpd(request: Any, accounts: Accounts, tmp_path: Path) -> Iterator[Modes]:
    modes = Modes(request.param, accounts, tmp_path)
    try:
        yield modes
    finally:
        modes.stop()


def test_uploads_are_owned_by_the_account(ftpd: Modes, accounts: Accounts) -> None:
    user = accounts.user
    ftp = ftpd.login(user)
    try:
        assert ftp.pwd() == "/"
        assert {"secret.txt", "mine.txt"} <= set(ftp.nlst())
        ftp.storbinary(f"STOR uploaded-{ftpd.mode}.txt", io.BytesIO(b"from ftp\n"))
        ftp.mkd(f"made-{ftpd.mode}")
    finally:
        ftp.quit()
    for name in (f"uploaded-{ftpd.mode}.txt", f"made-{ftpd.mode}"):
        st = (user.home / name).stat()
        assert (st.st_uid, st.st_gid) == (user.uid, user.gid), name
    assert (user.home / f"uploaded-{ftpd.mode}.txt").read_bytes() == b"from ftp\n"


def test_what_the_account_cannot_read_gets_550(ftpd: Modes, accounts: Accounts) -> None:
    ftp = ftpd.login(accounts.user)
    try:
        own = io.BytesIO()
        ftp.retrbinary("RETR mine.txt", own.write)
        assert own.getvalue() == b"user's own\n"
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.retrbinary("RETR secret.txt", io.BytesIO().write)
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.storbinary("APPE secret.txt", io.BytesIO(b"more"))
    finally:
        ftp.quit()
    assert (accounts.user.home / "secret.txt").read_bytes() == b"not for user\n"


def test_root_is_refused_even_with_its_password(ftpd: Modes, accounts: Accounts) -> None:
    alias = accounts.root_alias
    assert ftpd.refused(alias.name, alias.password).startswith("530")
    assert ftpd.refused("root", "anything").startswith("530")


def test_ftpusers_names_are_refused(ftpd: Modes, accounts: Accounts) -> None:
    listed = accounts.listed
    assert ftpd.refused(listed.name, listed.password).startswith("530")


def test_a_wrong_password_is_refused(ftpd: Modes, accounts: Accounts) -> None:
    user = accounts.user
    assert ftpd.refused(user.name, user.password + "-wrong").startswith("530")


def test_concurrent_sessions_each_act_as_their_account(accounts: Accounts,
                                                       tmp_path: Path) -> None:
    modes = Modes("standalone", accounts, tmp_path)
    try:
        first, second = modes.login(accounts.user), modes.login(accounts.other)
        try:
            first.storbinary("STOR by-user.txt", io.BytesIO(b"1"))
            second.storbinary("STOR by-other.txt", io.BytesIO(b"2"))
        finally:
            first.quit()
            second.quit()
    finally:
        modes.stop()
    for account, name in ((accounts.user, "by-user.txt"), (accounts.other, "by-other.txt")):
        assert (account.home / name).stat().st_uid == account.uid


@pytest.mark.parametrize("mode", ["standalone", "inetd"])
def test_after_rein_the_process_serves_no_other_account(mode: str, accounts: Accounts,
                                                        tmp_path: Path) -> None:
    """The session's process became the first account for good: after REIN it takes that
    account again, and refuses any other, anonymous included (530, closed), rather than
    serve it with the first one's rights."""
    modes = Modes(mode, accounts, tmp_path, anonymous_root=tmp_path)
    try:
        ftp = modes.login(accounts.user)
        try:
            assert ftp.sendcmd("REIN").startswith("220")
            ftp.login(accounts.user.name, accounts.user.password)
            assert ftp.pwd() == "/"
            assert ftp.sendcmd("REIN").startswith("220")
            with pytest.raises(ftplib.error_perm, match="^530"):
                ftp.login("anonymous", "guest@")
            assert ftp.file.readline() == ""  # closed after the 530
        finally:
            ftp.close()
    finally:
        modes.stop()
