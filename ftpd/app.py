"""Assembling a server from resolved settings: authorizers, session policy, limits.
Shared by the CLI (every launch mode) and by SIGHUP reloads."""

from __future__ import annotations

import os
from time import monotonic as _monotonic

TYPE_CHECKING = False  # not ``typing``'s: importing it costs ~6 ms per inetd start
if TYPE_CHECKING:
    from typing import Any

    from ftpd.auth.base import Account, Authorizer
    from ftpd.config import Settings
    from ftpd.core.session import SessionConfig
    from ftpd.fs.base import FileSystem
    from ftpd.io.server import Server, ServerOptions
    from ftpd.launch.context import LaunchContext

# The server, the core and the authorizers are imported by the functions that build them:
# under inetd no-wait (``ftpd.launch.inetd.greet``) the 220 is written before they are.


class StartupError(Exception):
    """A fatal runtime problem at start-up (exit 1, one line)."""


def serving_root(settings: Settings) -> str:
    """The anonymous root: a local directory that exists, or an ``s3://`` URL (checked by
    the first login: the store is not asked at start-up)."""
    from ftpd.config import is_s3_url

    if is_s3_url(settings.root):
        return settings.root
    root = os.path.abspath(settings.root or os.getcwd())
    if not os.path.isdir(root):
        raise StartupError(f"root directory not found: {root}")
    return root


def build_authorizer(settings: Settings) -> Authorizer:
    from ftpd.auth.base import AnonymousAuthorizer, ChainAuthorizer, SingleUserAuthorizer

    root = serving_root(settings)
    parts: list[Any] = []
    if settings.username:
        parts.append(SingleUserAuthorizer(settings.username, settings.password, root))
    if settings.users:
        from ftpd.auth.users import UsersFileAuthorizer, UsersFileError
        from ftpd.config import ConfigError

        try:
            parts.append(UsersFileAuthorizer(settings.users))
        except UsersFileError as exc:
            raise ConfigError(f"--users: {exc}") from None
        except OSError as exc:
            raise StartupError(f"--users {settings.users}: {exc.strerror}") from None
    if not settings.no_anonymous:
        parts.append(AnonymousAuthorizer(root, writable=settings.write))
    if settings.pam:  # after anonymous: "ftp" stays anonymous, without a PAM delay
        parts.append(build_pam_authorizer(settings))
    if uses_s3(settings, parts):
        check_s3(settings)
    return ChainAuthorizer(*parts)


def authorizer_may_fail(settings: Settings) -> bool:
    """A users file, PAM or S3 storage to check: build_authorizer can refuse to start.
    The anonymous and --username authorizers cannot, once the root is checked."""
    from ftpd.config import is_s3_url

    return bool(settings.users or settings.pam or is_s3_url(settings.root))


def uses_s3(settings: Settings, authorizers: list[Any]) -> bool:
    """An ``s3://`` root, or a home in the users file that is one."""
    from ftpd.config import is_s3_url

    if is_s3_url(settings.root):
        return True
    return any(is_s3_url(entry.home) for a in authorizers
               for entry in getattr(a, "users", {}).values())


def check_s3(settings: Settings) -> None:
    """S3 storage configured: the client must be installed, the secret readable."""
    from ftpd.fs.s3setup import INSTALL_HINT, client_missing, s3_options

    if client_missing():
        raise StartupError(INSTALL_HINT)
    try:
        s3_options(settings)
    except OSError as exc:
        raise StartupError(f"--s3-secret-access-key-file {exc.filename}: "
                           f"{exc.strerror}") from None


def storage_factory(settings: Settings) -> Any:
    """Each login's filesystem: LocalFS for a directory home, S3FS for an ``s3://`` one
    (``ftpd.fs.s3setup`` imported only when a login first meets one)."""
    made: list[Any] = []

    def s3(home: str) -> Any:
        if not made:
            from ftpd.fs.s3setup import s3_factory, s3_options

            made.append(s3_factory(s3_options(settings)))
        return made[0](home) if home else None

    if settings.s3_secret_access_key_file:  # read now, before privileges are dropped
        try:
            s3("")
        except OSError as exc:
            raise StartupError(f"--s3-secret-access-key-file {exc.filename}: "
                               f"{exc.strerror}") from None

    def make(account: Any) -> Any:
        if not account.home.startswith("s3://"):
            return local_fs(account)
        return s3(account.home)

    def make_nowait(account: Any) -> Any:
        if not account.home.startswith("s3://"):
            return _local_fs_nowait(account)
        from ftpd.io.nowait import NOT_NOW

        return NOT_NOW

    make.nowait = make_nowait  # type: ignore[attr-defined]
    return make


def build_pam_authorizer(settings: Settings) -> Authorizer:
    from ftpd.auth.pam import PamAuthorizer, PamUnavailable, default_ftpusers
    from ftpd.config import ConfigError

    ftpusers = settings.ftpusers or default_ftpusers()
    try:
        return PamAuthorizer(settings.pam, ftpusers)
    except PamUnavailable as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"--ftpusers {ftpusers}: {exc.strerror}") from None


def nobody_can_log_in(settings: Settings) -> bool:
    """Anonymous refused and no other user configured: a warning at start-up, since
    every login will fail."""
    return bool(settings.no_anonymous and not settings.username and not settings.users
                and not settings.pam)


def missing_drop_box(settings: Settings) -> str | None:
    """The real directory --anonymous-upload names, if it is not one (anonymous cannot
    create it). An ``s3://`` root is not asked at start-up."""
    from ftpd.config import is_s3_url

    root = serving_root(settings)
    if not settings.anonymous_upload or is_s3_url(root):
        return None
    path = os.path.join(root, settings.anonymous_upload.lstrip("/"))
    return None if os.path.isdir(path) else path


def startup_warnings(settings: Settings) -> list[str]:
    """Settings that work, but not as the operator probably meant: logged at start-up."""
    warnings = []
    if nobody_can_log_in(settings):
        warnings.append("--no-anonymous without --username, --users or --pam: nobody can "
                        "log in")
    drop_box = missing_drop_box(settings)
    if drop_box:
        warnings.append(f"--anonymous-upload: {drop_box} is not a directory: anonymous "
                        "uploads will fail")
    return warnings


def build_tls(settings: Settings) -> Any:
    """The TLS manager, or None; a bad certificate or key is a configuration error."""
    if not settings.tls_cert or settings.tls == "off":
        return None
    from ftpd.config import ConfigError
    from ftpd.io.tls import TLSConfigError, TLSManager

    try:
        return TLSManager(settings.tls_cert, settings.tls_key,
                          reuse_required=settings.tls_reuse == "required")
    except TLSConfigError as exc:
        raise ConfigError(str(exc)) from None


_FS_CACHE: dict[str, tuple[Any, float]] = {}  # home -> (LocalFS, when last checked)
FS_RECHECK = 1.0  # seconds a home's handle is trusted without looking at the disk


def local_fs(account: Account) -> FileSystem:
    """The filesystem of a user's home (the default ``fs_factory``; called in the
    worker pool, at login). One per home, shared by that user's sessions."""
    from ftpd.fs.local import LocalFS

    entry = _FS_CACHE.get(account.home)
    fs = entry[0] if entry is not None else None
    if fs is None or fs.replaced():  # the home was moved or recreated: a fresh handle
        fs = LocalFS(account.home)
    _FS_CACHE[account.home] = (fs, _monotonic())
    return fs


def _local_fs_nowait(account: Account) -> Any:
    """The home's handle from memory when it was checked in the last ``FS_RECHECK``
    seconds (a burst of logins checks the disk once a second, not once a login);
    else ``NOT_NOW``: ``local_fs`` in the pool looks."""
    entry = _FS_CACHE.get(account.home)
    if entry is not None and _monotonic() - entry[1] < FS_RECHECK:
        return entry[0]
    from ftpd.io.nowait import NOT_NOW

    return NOT_NOW


local_fs.nowait = _local_fs_nowait  # type: ignore[attr-defined]  # see ftpd.io.nowait


def secret_token(nbytes: int) -> str:
    """Unpredictable names (STOU, atomic-upload temporaries); ``secrets`` is imported
    on first use, not on every inetd start."""
    import secrets

    return secrets.token_hex(nbytes)


def injected() -> dict[str, Any]:
    """What the sans-IO core gets from outside: the filesystem of each login, owner
    names for LIST, randomness and the clock."""
    import time

    from ftpd.fs.owners import owner_names

    return {"fs_factory": local_fs, "owner_names": owner_names, "token": secret_token,
            "clock": time.time}


DEFAULT_BANNER = "ftpd ready."
MAX_BANNER_BYTES = 16 * 1024


def read_banner(settings: Settings) -> str:
    """The 220 greeting: --banner, --banner-file (read now: at start-up and on SIGHUP),
    or the default. A missing, unreadable or unusable file is a configuration error."""
    from ftpd.config import ConfigError, check_banner

    if settings.banner is not None:
        return settings.banner
    path = settings.banner_file
    if not path:
        return DEFAULT_BANNER
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BANNER_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"--banner-file {path}: {exc.strerror}") from None
    if len(data) > MAX_BANNER_BYTES:
        raise ConfigError(f"--banner-file {path}: longer than {MAX_BANNER_BYTES} bytes")
    try:
        text = "\n".join(data.decode("utf-8").splitlines()).rstrip("\n")
        return check_banner(text)
    except ValueError as exc:  # UnicodeDecodeError included
        reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise ConfigError(f"--banner-file {path}: {reason}") from None


def build_access(settings: Settings) -> Any:
    """The --allow/--deny rules, or None when there are none (nothing to check)."""
    if not settings.allow and not settings.deny:
        return None
    from ftpd.access import AccessRules

    return AccessRules(settings.allow, settings.deny)


def build_session_config(settings: Settings, table: Any = None,
                         banner: str | None = None) -> SessionConfig:
    from ftpd.core.session import SessionConfig
    from ftpd.core.throttle import LoginThrottle

    config = SessionConfig(
        **{**injected(), "fs_factory": storage_factory(settings)},
        banner=read_banner(settings) if banner is None else banner,
        tls_mode=settings.tls,
        tls_available=bool(settings.tls_cert) and settings.tls != "off",
        tls_anonymous=settings.tls_anonymous,
        masquerade_address=settings.masquerade_address,
        passive_ports=settings.passive_ports,
        permit_foreign_addresses=settings.permit_foreign_addresses,
        max_bad_commands=settings.max_bad_commands,
        max_login_attempts=settings.max_login_attempts,
        throttle=LoginThrottle(base_delay=settings.failed_login_delay),
        atomic_uploads=settings.atomic_uploads,
        hide=tuple(settings.hide),
        anonymous_upload=settings.anonymous_upload,
        max_rate=settings.max_rate,
    )
    if table is not None:
        config.table = table
    return config


def build_options(settings: Settings) -> ServerOptions:
    from ftpd.io.server import ServerOptions

    proxy_networks = None
    if settings.proxy_protocol:  # ipaddress only when a balancer is configured
        from ftpd.io.proxyread import ProxyNetworks

        proxy_networks = ProxyNetworks(settings.proxy_protocol)
    return ServerOptions(
        timeout=settings.timeout,
        data_timeout=settings.data_timeout,
        max_connections=settings.max_connections,
        max_connections_per_ip=settings.max_connections_per_ip,
        idle_timeout=settings.idle_timeout,
        shutdown_timeout=settings.shutdown_timeout,
        proxy_networks=proxy_networks,
        server_id=settings.server_id,
        access=build_access(settings),
    )


def build_listeners(settings: Settings, bus: Any) -> list[Any]:
    """The session log, NcFTPd sinks and the xferlog: bus listeners opened now, before
    privileges drop."""
    from ftpd.log import INFO, passes
    from ftpd.sessionlog import SessionLog

    session_log = SessionLog()
    listeners: list[Any] = []
    if passes(INFO):  # -q: not a line would be written: no listener
        session_log.attach(bus)
        listeners.append(session_log)
    if settings.event_sink:  # the codec and sinks cost ~10 ms to import: only when used
        from ftpd.config import ConfigError
        from ftpd.events.sinks import SinkError, install_sinks

        run_as = None
        if settings.run_as:
            from ftpd.launch.daemon import parse_run_as

            run_as = parse_run_as(settings.run_as)[:2]
        try:
            listeners += install_sinks(bus, settings.event_sink, run_as=run_as,
                                       server_id=settings.server_id)
        except ValueError as exc:
            session_log.close()
            raise ConfigError(str(exc)) from None
        except (SinkError, OSError) as exc:
            session_log.close()
            raise StartupError(str(exc)) from None
    if settings.xferlog:
        from ftpd.events.xferlog import XferLog

        created = not os.path.exists(settings.xferlog)
        try:
            xferlog = XferLog(settings.xferlog)
            if created and settings.run_as and os.geteuid() == 0:
                from ftpd.launch.daemon import parse_run_as

                os.chown(settings.xferlog, *parse_run_as(settings.run_as)[:2])
        except OSError as exc:
            for listener in listeners:
                listener.close()
            raise StartupError(f"--xferlog {settings.xferlog}: {exc.strerror}") from None
        xferlog.attach(bus)
        listeners.append(xferlog)
    return listeners


def reload_files(settings: Settings) -> list[tuple[str, str, int]]:
    """The files a SIGHUP opens again, with how: (option, path, open flags)."""
    files = []
    if settings.users:
        files.append(("--users", settings.users, os.O_RDONLY))
    if settings.s3_secret_access_key_file:
        files.append(("--s3-secret-access-key-file", settings.s3_secret_access_key_file,
                      os.O_RDONLY))
    if settings.banner_file:
        files.append(("--banner-file", settings.banner_file, os.O_RDONLY))
    if settings.xferlog:
        files.append(("--xferlog", settings.xferlog, os.O_WRONLY | os.O_APPEND))
    return files


def build_server(settings: Settings, launch: LaunchContext,
                 authorizer: Authorizer | None = None, tls: Any = None,
                 banner: str | None = None) -> Server:
    """*banner*: the greeting read already (inetd no-wait wrote it before this)."""
    from ftpd.config import ConfigError
    from ftpd.core.sessionconfig import _default_table
    from ftpd.events.bus import EventBus
    from ftpd.io.server import Server
    from ftpd.modules import ModuleContext, ModuleError, load_modules

    os.umask(settings.umask)
    bus = EventBus()
    table = _default_table().copy()
    scope: dict[str, Any] = {}
    try:
        load_modules(settings.modules, ModuleContext(table, bus, scope))
    except ModuleError as exc:
        raise ConfigError(str(exc)) from None
    config = build_session_config(settings, table, banner)
    config.server_scope = scope
    server = Server(launch, config, authorizer or build_authorizer(settings),
                    build_options(settings), bus)
    server.tls = tls if tls is not None else build_tls(settings)
    server.event_listeners = build_listeners(settings, bus)
    server.metrics = build_metrics(settings, server)
    time_storage_calls(server)
    if uses_s3(settings, getattr(server.authorizer, "authorizers", [])):
        server.preload = S3_MODULES  # imported lazily by logins: before --run-as drops root
    return server


S3_MODULES = ("ftpd.fs.s3setup", "ftpd.fs.s3", "obstore", "obstore.store")


def build_metrics(settings: Settings, server: Server) -> Any:
    """--metrics: the registry fed by *server*'s bus, its HTTP port bound now (before
    privileges drop); None when not configured (prometheus_client is not imported)."""
    if not settings.metrics:
        return None
    from ftpd.metrics import MetricsError, start_metrics

    try:
        return start_metrics(server, settings.metrics)
    except MetricsError as exc:
        raise StartupError(str(exc)) from None


def time_storage_calls(server: Server) -> None:
    """With --metrics, every login's filesystem reports the duration of its calls."""
    if server.metrics is not None:
        server.config.fs_factory = server.metrics.timed_factory(server.config.fs_factory)


def apply(server: Server, settings: Settings, authorizer: Authorizer) -> None:
    """Reload: new sessions get the new policy; running ones keep what they have."""
    banner = read_banner(settings)  # a bad --banner-file fails before anything changes
    os.umask(settings.umask)
    new_listeners = build_listeners(settings, server.bus)
    old_listeners = server.event_listeners
    for listener in old_listeners:
        listener.close()
    server.event_listeners = new_listeners
    if server.metrics is not None:  # the closed sinks' drops still count
        server.metrics.live.sinks_replaced(old_listeners, new_listeners)
    server.tls = build_tls(settings)
    server.authorizer = authorizer
    old = server.config
    server.config = build_session_config(settings, old.table, banner)
    server.config.server_scope = old.server_scope
    server.config.throttle = old.throttle  # failures so far still count after a reload
    server.config.ledger = old.ledger  # and the sessions and storage of each user
    time_storage_calls(server)
    old.throttle.base_delay = settings.failed_login_delay
    server.options = build_options(settings)
    if server.spawner is not None:  # --pam: new session processes get the new settings
        server.spawner.settings = settings
