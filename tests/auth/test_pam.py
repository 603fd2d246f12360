"""The PAM authorizer against the real PAM stack, with throwaway accounts; becoming an
account (in a separate process: a process becomes someone only once); the --pam and
--ftpusers settings."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pamsupport import needs_system_users, pam_service, system_account

from ftpd import app, cli
from ftpd.auth.base import Account
from ftpd.config import ConfigError, resolve


# -- settings -------------------------------------------------------------------------------
def test_pam_alone_means_the_ftpd_service_on_both_parsers() -> None:
    command = cli.build_command()
    for argv, service in ((["--pam"], "ftpd"), (["--pam", "svc"], "svc"),
                          (["--pam", "-n"], "ftpd"), (["--pam=svc", "-n"], "svc")):
        by_click = command.main(argv, prog_name="ftpd", standalone_mode=False)
        fast = cli.fast_parse(argv)
        assert fast is not None
        assert by_click["pam"] == fast["pam"] == service, argv
        assert by_click["no_anonymous"] == fast["no_anonymous"]


def test_pam_in_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    conf = tmp_path / "ftpd.toml"
    conf.write_text('pam = true\nftpusers = "deny.txt"\n')
    settings = resolve({"config": str(conf)}, cwd=str(tmp_path))
    assert settings.pam == "ftpd"
    assert settings.ftpusers == str(tmp_path / "deny.txt")
    conf.write_text('pam = "other"\n')
    assert resolve({"config": str(conf)}, cwd=str(tmp_path)).pam == "other"
    conf.write_text('pam = "../etc/x"\n')
    with pytest.raises(ConfigError, match="pam"):
        resolve({"config": str(conf)}, cwd=str(tmp_path))


@pytest.mark.parametrize(("cli_values", "euid", "message"), [
    ({"pam": "ftpd"}, 1000, "--pam needs root"),
    ({"pam": "ftpd", "run_as": "nobody"}, 0, "--pam and --run-as exclude each other"),
    ({"ftpusers": "/etc/ftpusers"}, 0, "--ftpusers needs --pam"),
    ({"pam": "ftpd", "metrics": "9102"}, 0, "--pam and --metrics exclude each other"),
])
def test_pam_setting_rules(cli_values: dict, euid: int, message: str,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    with pytest.raises(ConfigError, match=message):
        resolve(cli_values)


def test_pam_counts_as_a_way_to_log_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert app.nobody_can_log_in(resolve({"no_anonymous": True}))
    assert not app.nobody_can_log_in(resolve({"no_anonymous": True, "pam": "ftpd"}))


def test_account_without_system_ids_is_as_before() -> None:
    account = Account("alice", "/srv/alice", "elr")
    assert account.system is None
    assert account[:6] == ("alice", "/srv/alice", "elr", False, "", None)
    assert (account.max_rate, account.max_sessions, account.quota) == (None, 0, 0)


def test_ftpusers_file_format(tmp_path: Path) -> None:
    pytest.importorskip("pam")
    from ftpd.auth.pam import PamAuthorizer

    listed = tmp_path / "ftpusers"
    listed.write_text("# comment\n  daemon \nbin # trailing\n\n")
    authorizer = PamAuthorizer("ftpd", str(listed))
    assert authorizer.ftpusers == {"daemon", "bin"}
    assert authorizer.refused("daemon") == "listed in ftpusers"
    assert authorizer.refused("root") == "root may not log in"


# -- the real PAM stack ------------------------------------------------------------------
@needs_system_users
def test_pam_authorizer_accepts_the_password_and_carries_the_ids(tmp_path: Path) -> None:
    from ftpd.auth.pam import PamAuthorizer

    with pam_service() as service, system_account() as user:
        authorizer = PamAuthorizer(service)
        account = authorizer.authenticate(user.name, user.password)
        assert account is not None
        assert account.username == user.name and account.home == str(user.home)
        uid, gid, groups = account.system
        assert (uid, gid) == (user.uid, user.gid) and user.gid in groups
        assert not account.anonymous
        assert authorizer.authenticate(user.name, user.password + "x") is None
        assert authorizer.authenticate(user.name + "-nobody", user.password) is None


@needs_system_users
def test_pam_authorizer_refuses_root_even_with_its_password(tmp_path: Path) -> None:
    from ftpd.auth.pam import PamAuthorizer

    with pam_service() as service, system_account(uid=0) as alias:
        assert PamAuthorizer(service).authenticate(alias.name, alias.password) is None


@needs_system_users
def test_pam_authorizer_refuses_ftpusers_names(tmp_path: Path) -> None:
    from ftpd.auth.pam import PamAuthorizer

    with pam_service() as service, system_account() as user:
        listed = tmp_path / "ftpusers"
        listed.write_text(f"{user.name}\n")
        assert PamAuthorizer(service, str(listed)).authenticate(user.name, user.password) \
            is None
        assert PamAuthorizer(service).authenticate(user.name, user.password) is not None


BECOME = textwrap.dedent("""
    import os, sys
    from ftpd.io.become import BecomeError, become
    uid, gid = int(sys.argv[1]), int(sys.argv[2])
    try:
        become(uid, gid, (gid,))
    except BecomeError as exc:
        print("refused:", exc)
        sys.exit(0)
    print(os.getresuid(), os.getresgid(), os.getgroups())
""")


@needs_system_users
def test_become_drops_every_id_for_good() -> None:
    with system_account() as user:
        out = subprocess.run([sys.executable, "-c", BECOME, str(user.uid), str(user.gid)],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    ids = (user.uid,) * 3, (user.gid,) * 3, [user.gid]
    assert out.strip() == " ".join(str(i) for i in ids)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_become_refuses_root() -> None:
    out = subprocess.run([sys.executable, "-c", BECOME, "0", "0"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "refused: refusing to become root"


class SystemAccountAuthorizer:
    """Says yes to one system account (as PamAuthorizer would) without PAM."""

    cheap = True

    def __init__(self, home: str) -> None:
        self.home = home

    def authenticate(self, username: str, password: str) -> Account | None:
        if username == "local" and password == "pw":
            return Account("local", self.home, "elr", system=(65534, 65534, (65534,)))
        return None


def test_a_shared_process_refuses_a_system_account_and_closes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A process serving several sessions cannot become one account: 530, then closed,
    and the process keeps its identity."""
    import ftplib

    from ftpd.embed import FTPServer

    caplog.set_level(logging.INFO)
    before = os.getresuid()
    with FTPServer(str(tmp_path)) as server:
        server.server.authorizer = SystemAccountAuthorizer(str(tmp_path))
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=10)
        with pytest.raises(ftplib.error_perm, match="^530"):
            ftp.login("local", "pw")
        assert ftp.file.readline() == ""  # closed by the server, nothing after the 530
        ftp.close()
    assert os.getresuid() == before
    assert any(r.getMessage().endswith("LOGIN FAILED user=local from=127.0.0.1")
               for r in caplog.records)


@pytest.mark.skipif(os.geteuid() != 0, reason="--pam is refused before this without root")
def test_pam_without_python_pam_is_one_line_and_exit_2(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "pam"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(shadow.parent), os.environ.get("PYTHONPATH")) if p)}
    result = subprocess.run([sys.executable, "-m", "ftpd", "--pam", "-l", "127.0.0.1:0",
                             "-r", str(tmp_path)], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    assert result.stderr == "ftpd: error: --pam needs python-pam: pip install 'ftpd[pam]'\n"
