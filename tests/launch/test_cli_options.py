"""Command-line forms: every flag that may be in the config file has its ``--no-X``
(understood by the fast path and by click alike) to turn a true value in the file off;
``umask`` in the file is a quoted octal string; ``-n`` alone warns that nobody can log
in."""

from __future__ import annotations

import subprocess

import pytest
from ftpsupport import DEADLINE, FtpdProcess, start_ftpd
from lhelpers import ftpd_exe

from ftpd import cli, config


def click_parse(argv: list[str]) -> dict:
    return cli.build_command().main(argv, prog_name="ftpd", standalone_mode=False)


FLAGS = [s for s in config.SETTINGS if s.flag and s.in_file]


def test_every_file_flag_has_a_negation() -> None:
    names = {s.name for s in config.SETTINGS}
    for s in FLAGS:
        negated = config.negation(s)
        assert negated and negated not in names, s.name
    assert config.negation(config.BY_NAME["no-anonymous"]) == "anonymous"
    assert config.negation(config.BY_NAME["write"]) == "no-write"
    assert config.negation(config.BY_NAME["inetd"]) is None


@pytest.mark.parametrize("setting", FLAGS, ids=[s.name for s in FLAGS])
def test_negation_parses_alike_on_both_paths(setting) -> None:
    argv = ["-l", "2121", f"--{config.negation(setting)}"]
    fast = cli.fast_parse(argv)
    assert fast is not None, "the fast path gave up on a --no-X form"
    assert fast[config.key(setting.name)] is False
    assert fast == click_parse(argv)


@pytest.mark.parametrize("argv", [[], ["-w"], ["--write"], ["-wn"], ["--no-write", "-w"],
                                  ["-w", "--no-write"], ["--anonymous", "-v"]])
def test_flags_parse_alike_on_both_paths(argv) -> None:
    assert cli.fast_parse(argv) == click_parse(argv)


def test_negation_with_a_value_goes_to_click() -> None:
    assert cli.fast_parse(["--no-write=1"]) is None


@pytest.mark.parametrize("argv, expected", [
    ([], {"write": True, "no_anonymous": True, "atomic_uploads": True}),
    (["--no-write"], {"write": False, "no_anonymous": True, "atomic_uploads": True}),
    (["--anonymous", "--no-atomic-uploads"],
     {"write": True, "no_anonymous": False, "atomic_uploads": False}),
])
def test_negation_turns_a_true_flag_in_the_file_off(tmp_path, argv, expected) -> None:
    path = tmp_path / "ftpd.toml"
    path.write_text("write = true\nno-anonymous = true\natomic-uploads = true\n"
                    "username = \"u\"\npassword = \"p\"\n")
    settings = config.resolve(cli.fast_parse(["-c", str(path), *argv]), str(tmp_path))
    assert {name: settings[name] for name in expected} == expected


def run_ftpd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ftpd_exe(), *args], capture_output=True, text=True,
                          timeout=DEADLINE, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("value", ["22", "0o022"])
def test_integer_umask_in_the_file_is_refused_in_one_line(tmp_path, value) -> None:
    path = tmp_path / "ftpd.toml"
    path.write_text(f"umask = {value}\n")
    done = run_ftpd("-c", str(path), "-r", str(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert 'umask: write it as a quoted octal string, e.g. umask = "022"' in lines[0]


def test_quoted_umask_in_the_file_is_octal(tmp_path) -> None:
    path = tmp_path / "ftpd.toml"
    path.write_text('umask = "027"\n')
    assert config.load_file(str(path))["umask"] == 0o027


@pytest.mark.parametrize("args, warned", [(["-n"], True),
                                          (["-n", "-u", "u", "-P", "p"], False),
                                          ([], False)], ids=["alone", "with-user", "anon"])
def test_no_anonymous_without_users_warns_once(tmp_path, args, warned) -> None:
    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        return FtpdProcess(["-l", f"127.0.0.1:{ports[0]}", "-r", str(tmp_path), *args],
                           port=ports[0], log_path=tmp_path / f"ftpd-{attempt}.log")

    server = start_ftpd(spawn)
    assert server.stop() == 0
    lines = [line for line in server.log().splitlines() if "nobody can log in" in line]
    assert len(lines) == (1 if warned else 0), server.log()
    if warned:
        assert "WARNING" in lines[0]
