"""The ``ftpd`` command: options from the settings table, then launch and serve.

Exit codes: 0 after a clean stop, 2 for a usage or configuration error (one line
naming the option or key), 1 for a fatal runtime error (one line, no traceback)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from ftpd import __version__
from ftpd.config import SETTINGS, ConfigError, Setting, key

PROG = "ftpd"


def _option(setting: Setting) -> Any:
    import click

    decls = [f"--{setting.name}"] + ([f"-{setting.short}"] if setting.short else [])
    decls.append(key(setting.name))
    if setting.flag:
        return click.Option(decls, is_flag=True, default=None, help=setting.help)
    return click.Option(decls, multiple=setting.multiple, default=None,
                        metavar=setting.metavar, help=setting.help, show_envvar=False)


def build_command() -> Any:
    import click

    params = [_option(s) for s in SETTINGS]
    params.append(click.Option(["--version"], is_flag=True, expose_value=False,
                               is_eager=True, callback=_print_version,
                               help="Show the version and exit."))
    return click.Command(PROG, params=params, callback=lambda **kw: kw,
                         help="A standalone FTP daemon: serve --root to FTP clients.",
                         context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})


def _print_version(ctx: Any, param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        print(f"{PROG} {__version__}")
        ctx.exit(0)


def parse_args(argv: list[str]) -> dict[str, Any] | int:
    """Raw option values, or an exit code (--help, --version, usage error)."""
    import click

    command = build_command()
    try:
        return command.main(argv, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        raise ConfigError(exc.format_message()) from None
    except click.Abort:
        return 1


def fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def run(argv: list[str]) -> int:
    from ftpd.app import StartupError

    try:
        raw = parse_args(argv)
        if isinstance(raw, int):
            return raw
        from ftpd.config import resolve

        settings = resolve(raw)
    except ConfigError as exc:
        return fail(f"error: {exc}", 2)
    from ftpd import log as ftpd_log

    level = logging.DEBUG if settings.verbose else (
        logging.WARNING if settings.quiet else logging.INFO)
    ftpd_log.setup(settings.log, level)
    try:
        from ftpd.app import build_server
        from ftpd.launch.standalone import standalone_context

        build_check = settings  # validate the root before binding anything
        from ftpd.app import serving_root

        serving_root(build_check)
        launch = standalone_context(settings.listen)
        server = build_server(settings, launch)
    except StartupError as exc:
        return fail(str(exc), 1)
    except OSError as exc:
        return fail(exc.strerror or str(exc), 1)
    for host, port in server.addresses:
        logging.getLogger("ftpd").info("listening on %s port %d", host, port)
    server.serve()
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(sys.argv[1:] if argv is None else argv))
