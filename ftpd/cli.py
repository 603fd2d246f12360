"""The ``ftpd`` command: options from the settings table, then launch and serve.

Exit codes: 0 after a clean stop, 2 for a usage or configuration error (one line
naming the option or key), 1 for a fatal runtime error (one line, no traceback)."""

from __future__ import annotations

# _signal: the C module behind ``signal``, the same calls without signal.py's enum
# classes (~0.5 ms of every inetd start, before the banner).
import _signal as signal
import os
import sys

from ftpd import __version__
from ftpd.config import SETTINGS, ConfigError, Setting, key, negation
from ftpd.log import DEBUG, INFO, WARNING, get_logger

TYPE_CHECKING = False  # not ``typing``'s: importing it costs ~6 ms per inetd start
if TYPE_CHECKING:
    from typing import Any

log = get_logger("ftpd")

PROG = "ftpd"


def _option(setting: Setting) -> Any:
    import click

    negated = negation(setting)
    long = f"--{setting.name}" + (f"/--{negated}" if negated else "")
    decls = [long] + ([f"-{setting.short}"] if setting.short else [])
    decls.append(key(setting.name))
    if setting.flag:  # None when not given: a flag in the file stands unless negated
        return click.Option(decls, is_flag=True, default=None, help=setting.help)
    if setting.bare is not None:  # an optional value: ``--pam`` alone or ``--pam SERVICE``
        return click.Option(decls, is_flag=False, flag_value=setting.bare, default=None,
                            metavar=setting.metavar, help=setting.help)
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


def fast_parse(argv: list[str]) -> dict[str, Any] | None:
    """The common command line without importing click (~9 ms, paid by every connection
    under inetd no-wait): known options as ``--name value``, ``--name=value``, ``-x value``,
    ``--no-flag`` and flag clusters. Anything else (help, errors, other forms) returns
    None: click parses it, so messages and behaviour stay click's."""
    longs = {f"--{s.name}": s for s in SETTINGS}
    negations = {f"--{negation(s)}": s for s in SETTINGS if negation(s)}
    shorts = {s.short: s for s in SETTINGS if s.short}
    values: dict[str, Any] = {key(s.name): (() if s.multiple else None) for s in SETTINGS}
    args = iter(argv)
    again: list[str] = []  # an argument looked at as a value, to be read as an option

    def take() -> str | None:
        return again.pop() if again else next(args, None)

    while (arg := take()) is not None:
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        setting = longs.get(name)
        if setting is None and name in negations and not eq:
            values[key(negations[name].name)] = False
            continue
        if setting is None and len(arg) == 2 and arg[0] == "-":
            setting = shorts.get(arg[1])
        if setting is None:
            letters = arg[1:]
            if arg[:1] != "-" or not letters or not all(
                    c in shorts and shorts[c].flag for c in letters):
                return None
            for c in letters:
                values[key(shorts[c].name)] = True
            continue
        if setting.flag:
            if eq:
                return None
            values[key(setting.name)] = True
            continue
        value = inline if eq else take()
        if setting.bare is not None and not eq and (value is None or value.startswith("-")):
            if value is not None:  # an optional value left out, as click reads it
                again.append(value)
            value = setting.bare
        if value is None:
            return None
        if setting.multiple:
            values[key(setting.name)] += (value,)
        else:
            values[key(setting.name)] = value
    return values


def parse_args(argv: list[str]) -> dict[str, Any] | int:
    """Raw option values, or an exit code (--help, --version, usage error)."""
    fast = fast_parse(argv)
    if fast is not None:
        return fast
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


STOP_AND_RELOAD = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM})
FLAG_LETTERS = frozenset(s.short for s in SETTINGS if s.flag and s.short)


def early_mode(argv: list[str]) -> str | None:
    """inetd modes must be known before click parses anything: fds 0-2 are the
    client's socket and a usage message written there would reach it."""
    for arg in argv:
        if arg == "--":
            break
        if arg in ("-I", "--inetd"):
            return "inetd"
        if arg in ("-W", "--inetd-wait"):
            return "inetd-wait"
        letters = arg[1:]
        if arg.startswith("-") and not arg.startswith("--") and letters and \
                set(letters) <= FLAG_LETTERS:
            if "I" in letters:
                return "inetd"
            if "W" in letters:
                return "inetd-wait"
    return None


def fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def syslog_error(message: str) -> None:
    import syslog

    syslog.openlog(PROG, syslog.LOG_PID, getattr(syslog, "LOG_FTP", 11 << 3))
    syslog.syslog(syslog.LOG_ERR, message)


def early_log(argv: list[str]) -> str | None:
    """The ``--log`` value on the command line, read before parsing: a usage error under
    inetd is reported there when it names a file."""
    found = None
    for arg, following in zip(argv, [*argv[1:], None], strict=True):
        if arg == "--":
            break
        if arg == "--log":
            found = following
        elif arg.startswith("--log="):
            found = arg[len("--log="):]
    return found


def log_error_to_file(path: str, message: str) -> bool:
    """Append one error line to the --log FILE; False when it cannot be opened."""
    from ftpd import log as ftpd_log
    from ftpd.config import LOG_DESTINATIONS

    if not path or path in LOG_DESTINATIONS:
        return False
    try:
        ftpd_log.configure(path, INFO)
        ftpd_log.install()
    except OSError:
        return False
    log.error("%s", message)
    return True


class Inherited:
    """Sockets a launcher handed us, taken before anything else happens."""

    def __init__(self, argv: list[str]) -> None:
        self.mode = early_mode(argv)
        self.sock: Any = None
        self.context: Any = None
        self.log_to = early_log(argv)  # where report() writes, when it is a file
        if self.mode is not None:
            from ftpd.launch.inetd import adopt_stdin

            self.sock = adopt_stdin()
            return
        from ftpd.launch import systemd

        if systemd.activated():
            self.mode = "systemd"
            self.context = systemd.systemd_context()

    def report(self, message: str, code: int) -> int:
        """One line to where the operator looks; 421 to a waiting client."""
        if self.mode is None:
            return fail(message, code)
        if not log_error_to_file(self.log_to or "", message):
            syslog_error(message)
        from ftpd.launch.inetd import is_listening, refuse

        if self.sock is not None:
            refuse(self.sock, wait=is_listening(self.sock))
        elif self.context is not None:
            print(f"{PROG}: {message}", file=sys.stderr)  # the journal, under systemd
            for ep in self.context.connections:
                refuse(ep.sock, wait=False)
        return code

    def launch_context(self, settings: Any) -> Any:
        from ftpd.launch.inetd import inetd_context

        if self.mode in ("inetd", "inetd-wait"):
            return inetd_context(self.sock, wait=self.mode == "inetd-wait",
                                 implicit_tls=settings.implicit)
        return self.context


def run(argv: list[str]) -> int:
    from ftpd.launch.inetd import LaunchError

    cwd = os.getcwd()
    # Until the loop's handlers are installed, signals wait (a SIGHUP right after the
    # port opens must not kill us); Server.serve() unblocks them.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_AND_RELOAD)
    try:
        inherited = Inherited(argv)
    except LaunchError as exc:
        if not log_error_to_file(early_log(argv) or "", str(exc)):
            syslog_error(str(exc))
        if exc.stderr_usable:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        raw = parse_args(argv)
        if isinstance(raw, int):
            return raw
        from ftpd.config import resolve

        settings = resolve(raw, cwd)
        inherited.log_to = settings.log
        if settings.daemon and inherited.mode is not None:
            raise ConfigError("--daemon cannot be used under inetd or socket activation: "
                              "the launcher manages the process")
        from ftpd.app import build_tls

        tls = build_tls(settings)
        launch = inherited.launch_context(settings)
        if launch is None and settings.launchd_socket:
            from ftpd.launch.launchd import launchd_context

            launch = launchd_context(settings.launchd_socket)
        if settings.metrics and launch is not None and launch.per_connection:
            raise ConfigError("--metrics cannot be used under inetd no-wait or Accept=yes: "
                              "a process per connection has nothing to aggregate")
        if settings.workers > 1 and launch is not None and launch.per_connection:
            raise ConfigError("--workers cannot be used under inetd no-wait or Accept=yes: "
                              "a process per connection has no listening socket to share")
    except (ConfigError, LaunchError) as exc:
        return inherited.report(f"error: {exc}", 2)
    return serve(settings, raw, launch, inherited, tls, cwd)


def configure_logging(settings: Any, mode: str | None, level: int) -> str:
    """Where the log goes (returned: session processes under --pam log there too)."""
    from ftpd import log as ftpd_log
    from ftpd.config import LOG_DESTINATIONS

    log_where = "syslog" if settings.daemon and settings.log == "auto" else settings.log
    ftpd_log.configure(log_where, level, under_systemd=mode == "systemd",
                       stderr_is_client=mode in ("inetd", "inetd-wait"),
                       server_id=settings.server_id)
    if settings.log not in LOG_DESTINATIONS or settings.run_as or settings.daemon:
        ftpd_log.install()  # open a log file now: as root, and failing at start-up
    return log_where


def greet_early(settings: Any, launch: Any) -> str | None:
    """inetd no-wait: the 220 before the server is built (``ftpd.launch.inetd.greet``);
    the banner written, or None when it was not."""
    from ftpd import app
    from ftpd.launch.inetd import greet

    banner = app.read_banner(settings)
    return banner if greet(launch, banner, settings.timeout) else None


def serve(settings: Any, raw: dict[str, Any], launch: Any, inherited: Any,
          tls: Any = None, cwd: str = "/", on_reload: Any = None) -> int:
    from ftpd import app
    from ftpd.launch.inetd import greets_early

    level = DEBUG if settings.verbose else (WARNING if settings.quiet else INFO)
    daemon_context = None
    server = None
    try:
        app.serving_root(settings)
        early = greets_early(settings, launch)  # then an authorizer that cannot fail waits
        authorizer = (app.build_authorizer(settings)
                      if not early or app.authorizer_may_fail(settings) else None)
        if launch is None:
            from ftpd.launch.standalone import standalone_context

            launch = standalone_context(settings.listen, settings.implicit_listen)
        if settings.daemon:
            from ftpd.launch.daemon import detach

            keep = [ep.sock.fileno() for ep in launch.listeners]
            daemon_context = detach(keep, settings.pidfile)
        log_where = configure_logging(settings, inherited.mode, level)
        banner = greet_early(settings, launch) if early else None
        from ftpd.launch.systemd import attach_notify

        attach_notify(launch)  # after detaching: the daemon closes what it does not keep
        for warning in app.startup_warnings(settings):
            log.warning("%s", warning)
        if settings.workers <= 1:
            server = start_server(settings, launch, authorizer, tls, log_where, inherited.mode,
                                  banner)
    except Exception as exc:
        code = startup_failure(exc, inherited)
        if code is None:
            raise
        return code
    try:
        if server is None:
            return supervise(settings, raw, launch, inherited, cwd, log_where)
        server.on_reload = on_reload or (lambda: reload(server, raw, settings, cwd))
        log_sockets(launch, raw, server.addresses)
        try:
            server.serve()
        finally:
            if server.metrics is not None:
                server.metrics.close()
    finally:
        if daemon_context is not None:
            daemon_context.close()
    return 0


def startup_failure(exc: Exception, inherited: Any) -> int | None:
    """Report a start-up error in one line; its exit code (None: not one of ours)."""
    from ftpd import app
    from ftpd.launch.daemon import PrivilegeError

    if isinstance(exc, ConfigError):
        return inherited.report(f"error: {exc}", 2)
    if isinstance(exc, app.StartupError | PrivilegeError):
        return inherited.report(str(exc), 1)
    if isinstance(exc, OSError):
        return inherited.report(exc.strerror or str(exc), 1)
    return None


def start_server(settings: Any, launch: Any, authorizer: Any, tls: Any, log_where: str,
                 mode: str | None, banner: str | None = None) -> Any:
    """The server, built and ready to serve (privileges dropped with --run-as); *banner*:
    the 220 already sent (inetd no-wait greets before building it)."""
    from ftpd import app

    server = app.build_server(settings, launch, authorizer, tls, banner)
    if settings.pam and not launch.per_connection:  # a process per session
        from ftpd.launch.persession import attach

        attach(server, settings, log_where, mode)
    if settings.run_as:
        from ftpd.launch.daemon import check_run_as_access, drop_privileges, preload

        if not launch.per_connection:  # one client per process: no SIGHUP to come
            check_run_as_access(settings.run_as, app.reload_files(settings))
        preload(server)
        drop_privileges(settings.run_as)
        log.info("running as %s", settings.run_as)
    return server


def supervise(settings: Any, raw: dict[str, Any], launch: Any, inherited: Any, cwd: str,
              log_where: str) -> int:
    """--workers N: the supervisor; each worker builds and serves its own server."""
    from ftpd.config import resolve
    from ftpd.launch import workers

    def worker(current: Any, context: Any, seats: Any, ready: Any) -> int:
        from ftpd import app

        try:
            server = start_server(current, context, app.build_authorizer(current), None,
                                  log_where, inherited.mode)
        except Exception as exc:
            code = startup_failure(exc, inherited)
            if code is None:
                raise
            return code
        workers.become_worker(server, seats)
        server.on_reload = lambda: reload(server, raw, current, cwd)
        ready()
        server.serve()
        return 0

    addresses = [ep.sock.getsockname()[:2] for ep in launch.listeners]
    return workers.supervise(settings, launch, worker, lambda: resolve(raw, cwd),
                             lambda: log_sockets(launch, raw, addresses))


def log_sockets(launch: Any, raw: dict[str, Any], addresses: list[tuple[str, int]]) -> None:
    """What we serve: inherited sockets, ignored -l, and the addresses listened on."""
    note = log.debug if launch.per_connection else log.info  # once per connection: quiet
    for ep in launch.listeners + launch.connections:
        if ep.inherited:
            note("%s socket fd %d%s: %s%s", launch.mode, ep.sock.fileno(),
                 f" ({ep.name})" if ep.name else "",
                 "listening" if ep in launch.listeners else "connection",
                 ", implicit TLS" if ep.implicit_tls else "")
    if launch.mode != "standalone" and (raw.get("listen") or raw.get("implicit_listen")):
        log.warning("-l/--implicit-listen ignored: the sockets come from %s", launch.mode)
    if addresses:
        from ftpd.launch.standalone import format_address

        for host, port in addresses:
            log.info("listening on %s (%s)", format_address(host, port), launch.mode)


def reload(server: Any, raw: dict[str, Any], old: Any, cwd: str) -> None:
    """SIGHUP: re-read the config and users file; sessions keep their rights."""
    from ftpd import app
    from ftpd import log as ftpd_log
    from ftpd.config import resolve

    settings = resolve(raw, cwd)  # ConfigError: logged by the server, old config stays
    authorizer = app.build_authorizer(settings)
    fixed = ("listen", "implicit_listen", "modules", "run_as", "daemon", "metrics", "pam")
    if old.workers <= 1:  # with workers the supervisor says it, once
        fixed += ("workers",)
    for name in fixed:
        if settings[name] != old[name]:
            log.warning("%s changed: restart to apply", name.replace("_", "-"))
    app.apply(server, settings, authorizer)
    ftpd_log.reopen()
    log.info("configuration reloaded")


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(sys.argv[1:] if argv is None else argv))
