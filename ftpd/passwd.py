"""``ftpd-passwd``: manage the virtual-users file; only scrypt hashes ever reach the disk.

Every change is read-modify-write under a lock on the file's directory and lands with an
atomic rename, so a server reloading on SIGHUP sees the old file or the new one.
Errors are one line on stderr: exit 2 for usage or configuration, 1 at run time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import click

from ftpd import __version__
from ftpd.auth.base import ALL_PERMS, READ_PERMS
from ftpd.auth.users import (
    LIMIT_KEYS,
    UserEntry,
    UsersFileError,
    check_home,
    check_limit,
    check_perm,
    check_username,
    hash_password,
    load_users,
    save_users,
)

PROG = "ftpd-passwd"
DEFAULT_FILE = "/etc/ftpd/users.toml"


class RuntimeFailure(click.ClickException):
    """A well-formed request the current state refuses (no such user, cannot write): exit 1."""

    exit_code = 1


class ConfigError(click.ClickException):
    """A bad argument value or a bad users file: exit 2, like a usage error."""

    exit_code = 2


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Serialise concurrent ftpd-passwd runs: the file itself is replaced, so lock its
    directory instead."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        raise RuntimeFailure(f"{directory}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a filesystem without flock: carry on unlocked rather than refuse
        yield
    finally:
        os.close(fd)


def _load(path: str, *, missing_ok: bool) -> dict[str, UserEntry]:
    try:
        return load_users(path, missing_ok=missing_ok)
    except UsersFileError as exc:
        if not os.access(path, os.R_OK):  # missing or unreadable: a run-time failure
            raise RuntimeFailure(str(exc)) from None
        raise ConfigError(str(exc)) from None


def _save(path: str, users: dict[str, UserEntry]) -> None:
    try:
        save_users(path, users)
    except OSError as exc:
        raise RuntimeFailure(f"{path}: cannot write: {exc.strerror or exc}") from None


def _read_password(name: str, password: str | None, from_stdin: bool) -> str:
    """The new password from exactly one source: the option, stdin, or a twice-typed prompt."""
    if password is not None and from_stdin:
        raise click.UsageError("--password and --password-stdin are mutually exclusive")
    if from_stdin:
        # Bytes, decoded as the server decodes the control connection.
        line = sys.stdin.buffer.readline().decode("utf-8", "surrogateescape")
        password = line.removesuffix("\n").removesuffix("\r")
    elif password is None:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "no password given: use --password, --password-stdin or run on a terminal")
        password = click.prompt(f"Password for {name}", hide_input=True,
                                confirmation_prompt="Repeat password", err=True)
    if not password:
        raise ConfigError("empty password refused")
    if any(c in password for c in "\r\n\0"):
        raise ConfigError("password must not contain CR, LF or NUL (FTP cannot send them)")
    return password


def _check_name(name: str) -> None:
    problem = check_username(name)
    if problem:
        raise ConfigError(f"{name!r}: {problem}")


def _require_user(name: str, users: dict[str, UserEntry]) -> None:
    if name not in users:
        raise RuntimeFailure(f"no such user: {name!r}")


def _refuse_existing(name: str, users: dict[str, UserEntry], force: bool) -> None:
    if name in users and not force:
        raise RuntimeFailure(f"user {name!r} already exists (use --force to replace it)")


password_option = click.option(
    "--password", "password", metavar="PW",
    help="The password (visible to other local users in ps; prefer the prompt or stdin).")
stdin_option = click.option(
    "--password-stdin", "password_stdin", is_flag=True,
    help="Read the password from the first line of standard input.")


def limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--max-rate, --max-sessions, --quota: a value sets the limit, ``none`` clears it."""
    helps = {"max-rate": "Bytes per second, each direction, per session (1M, 512K, ...; "
                         "0: unlimited even under ftpd --max-rate).",
             "max-sessions": "Concurrent sessions of this user.",
             "quota": "Bytes of storage under the home (10G, 500M, ...)."}
    for key in reversed(LIMIT_KEYS):
        command = click.option(f"--{key}", key.replace("-", "_"), metavar="N|none",
                               help=helps[key] + " none: no limit.")(command)
    return command


def _limits(given: dict[str, str | None]) -> dict[str, int | None]:
    """The limits the options set (None: cleared); those not given are left out."""
    changes: dict[str, int | None] = {}
    for key in LIMIT_KEYS:
        text = given.get(key.replace("-", "_"))
        if text is None:
            continue
        field = key.replace("-", "_")
        if text.strip().lower() == "none":
            changes[field] = None
            continue
        value: object = int(text) if key == "max-sessions" and text.isdigit() else text
        number, problem = check_limit(key, value)
        if problem:
            raise ConfigError(f"--{key}: {problem}")
        changes[field] = number
    return changes


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--file", "path", metavar="FILE", envvar="FTPD_USERS",
              default=DEFAULT_FILE, show_default=True, show_envvar=True,
              help="The virtual-users file (TOML).")
@click.version_option(__version__, prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context, path: str) -> None:
    """Manage the ftpd virtual-users file (see ftpd-passwd(8))."""
    ctx.obj = path


@cli.command()
@click.argument("name")
@click.option("--home", required=True, metavar="DIR", help="Absolute path of the user's root, or s3://BUCKET[/PREFIX].")
@click.option("--perm", default=READ_PERMS, show_default=True, metavar="LETTERS",
              help=f"Permission letters, from {ALL_PERMS}.")
@password_option
@stdin_option
@click.option("--force", is_flag=True, help="Replace the user if it already exists.")
@limit_options
@click.pass_obj
def add(path: str, name: str, home: str, perm: str, password: str | None,
        password_stdin: bool, force: bool, **limits: str | None) -> None:
    """Add user NAME (the password is prompted for twice unless given)."""
    _check_name(name)
    changes = _limits(limits)
    problem = check_home(home)
    if problem:
        raise ConfigError(f"--home: {problem}")
    problem = check_perm(perm)
    if problem:
        raise ConfigError(f"--perm: {problem}")
    is_url = home.startswith("s3://")  # a prefix in a bucket: kept as written
    home = home if is_url else os.path.normpath(home)
    # Refuse before prompting, hash outside the lock, then check again under it.
    _refuse_existing(name, _load(path, missing_ok=True), force)
    hashed = hash_password(_read_password(name, password, password_stdin))
    with _locked(path):
        users = _load(path, missing_ok=True)
        _refuse_existing(name, users, force)
        users[name] = replace(UserEntry(hashed, home, perm), **changes)
        _save(path, users)
    if not is_url and not os.path.isdir(home):
        click.echo(f"{PROG}: warning: home {home} is not a directory (yet)", err=True)


@cli.command("del")
@click.argument("name")
@click.pass_obj
def delete(path: str, name: str) -> None:
    """Delete user NAME."""
    with _locked(path):
        users = _load(path, missing_ok=False)
        _require_user(name, users)
        del users[name]
        _save(path, users)


@cli.command("list")
@click.pass_obj
def list_(path: str) -> None:
    """List users: name, home, permissions and the limits set (key=value), tab-separated
    (never the hash)."""
    from ftpd.sizes import format_size

    for name, entry in sorted(_load(path, missing_ok=False).items()):
        limits = [f"{key}={value if key == 'max-sessions' else format_size(value)}"
                  for key, value in entry.limits().items()]
        click.echo("\t".join([name, entry.home, entry.perm, *limits]))


@cli.command()
@click.argument("name")
@password_option
@stdin_option
@click.pass_obj
def passwd(path: str, name: str, password: str | None, password_stdin: bool) -> None:
    """Change the password of user NAME."""
    _require_user(name, _load(path, missing_ok=False))
    hashed = hash_password(_read_password(name, password, password_stdin))
    with _locked(path):
        users = _load(path, missing_ok=False)
        _require_user(name, users)
        users[name] = replace(users[name], password=hashed)
        _save(path, users)


@cli.command()
@click.argument("name")
@click.option("--home", metavar="DIR", help="A new absolute path for the user's root.")
@click.option("--perm", metavar="LETTERS", help=f"New permission letters, from {ALL_PERMS}.")
@limit_options
@click.pass_obj
def mod(path: str, name: str, home: str | None, perm: str | None,
        **limits: str | None) -> None:
    """Change the home, permissions or limits of user NAME (the password: passwd)."""
    changes: dict[str, Any] = _limits(limits)
    if home is not None:
        problem = check_home(home)
        if problem:
            raise ConfigError(f"--home: {problem}")
        changes["home"] = os.path.normpath(home)
    if perm is not None:
        problem = check_perm(perm)
        if problem:
            raise ConfigError(f"--perm: {problem}")
        changes["perm"] = perm
    if not changes:
        raise click.UsageError("nothing to change: give --home, --perm or a limit")
    with _locked(path):
        users = _load(path, missing_ok=False)
        _require_user(name, users)
        users[name] = replace(users[name], **changes)
        _save(path, users)


def _fail(message: str, code: int) -> None:
    click.echo(f"{PROG}: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click in non-standalone mode so every error is one line, not a usage
    block."""
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    try:
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.UsageError as exc:
        if no_args is not None and isinstance(exc, no_args):
            click.echo(exc.format_message(), err=True)
            sys.exit(2)
        where = exc.ctx.command_path if exc.ctx is not None else PROG
        prefix = f"{where.removeprefix(PROG).strip()}: " if where != PROG else ""
        _fail(prefix + exc.format_message(), 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except (click.Abort, EOFError, KeyboardInterrupt):
        _fail("aborted", 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
