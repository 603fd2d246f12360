"""Assembling a server from resolved settings: authorizers, session policy, limits.
Shared by the CLI (every launch mode) and by SIGHUP reloads."""

from __future__ import annotations

import os
from typing import Any

from ftpd.auth.base import (
    Account,
    AnonymousAuthorizer,
    Authorizer,
    ChainAuthorizer,
    SingleUserAuthorizer,
)
from ftpd.config import Settings
from ftpd.core.session import SessionConfig
from ftpd.core.throttle import LoginThrottle
from ftpd.fs.base import FileSystem
from ftpd.io.server import Server, ServerOptions
from ftpd.launch.context import LaunchContext


class StartupError(Exception):
    """A fatal runtime problem at start-up (exit 1, one line)."""


def serving_root(settings: Settings) -> str:
    root = os.path.abspath(settings.root or os.getcwd())
    if not os.path.isdir(root):
        raise StartupError(f"root directory not found: {root}")
    return root


def build_authorizer(settings: Settings) -> Authorizer:
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
    return ChainAuthorizer(*parts)


def nobody_can_log_in(settings: Settings) -> bool:
    """Anonymous refused and no other user configured: a warning at start-up, since
    every login will fail."""
    return bool(settings.no_anonymous and not settings.username and not settings.users)


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


_FS_CACHE: dict[str, Any] = {}  # home -> LocalFS


def local_fs(account: Account) -> FileSystem:
    """The filesystem of a user's home (the default ``fs_factory``; called in the
    worker pool, at login). One per home, shared by that user's sessions."""
    from ftpd.fs.local import LocalFS

    fs = _FS_CACHE.get(account.home)
    if fs is None or fs.replaced():  # the home was moved or recreated: a fresh handle
        fs = _FS_CACHE[account.home] = LocalFS(account.home)
    return fs


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


def build_session_config(settings: Settings, table: Any = None) -> SessionConfig:
    config = SessionConfig(
        **injected(),
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
        max_rate=settings.max_rate,
    )
    if table is not None:
        config.table = table
    return config


def build_options(settings: Settings) -> ServerOptions:
    return ServerOptions(
        timeout=settings.timeout,
        data_timeout=settings.data_timeout,
        max_connections=settings.max_connections,
        max_connections_per_ip=settings.max_connections_per_ip,
        idle_timeout=settings.idle_timeout,
        shutdown_timeout=settings.shutdown_timeout,
        server_id=settings.server_id,
    )


def build_listeners(settings: Settings, bus: Any) -> list[Any]:
    """NcFTPd sinks and the xferlog: bus listeners opened now, before privileges drop."""
    listeners: list[Any] = []
    if settings.event_sink:  # the codec and sinks cost ~10 ms to import: only when used
        from ftpd.config import ConfigError
        from ftpd.events.sinks import SinkError, install_sinks

        run_as = None
        if settings.run_as:
            from ftpd.launch.daemon import parse_run_as

            run_as = parse_run_as(settings.run_as)[:2]
        try:
            listeners = install_sinks(bus, settings.event_sink, run_as=run_as,
                                      server_id=settings.server_id)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        except (SinkError, OSError) as exc:
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
    if settings.xferlog:
        files.append(("--xferlog", settings.xferlog, os.O_WRONLY | os.O_APPEND))
    return files


def build_server(settings: Settings, launch: LaunchContext,
                 authorizer: Authorizer | None = None, tls: Any = None) -> Server:
    from ftpd.config import ConfigError
    from ftpd.core.session import _default_table
    from ftpd.events.bus import EventBus
    from ftpd.modules import ModuleContext, ModuleError, load_modules

    os.umask(settings.umask)
    bus = EventBus()
    table = _default_table().copy()
    scope: dict[str, Any] = {}
    try:
        load_modules(settings.modules, ModuleContext(table, bus, scope))
    except ModuleError as exc:
        raise ConfigError(str(exc)) from None
    config = build_session_config(settings, table)
    config.server_scope = scope
    server = Server(launch, config, authorizer or build_authorizer(settings),
                    build_options(settings), bus)
    server.tls = tls if tls is not None else build_tls(settings)
    server.event_listeners = build_listeners(settings, bus)
    return server


def apply(server: Server, settings: Settings, authorizer: Authorizer) -> None:
    """Reload: new sessions get the new policy; running ones keep what they have."""
    os.umask(settings.umask)
    new_listeners = build_listeners(settings, server.bus)
    for old in server.event_listeners:
        old.close()
    server.event_listeners = new_listeners
    server.tls = build_tls(settings)
    server.authorizer = authorizer
    old = server.config
    server.config = build_session_config(settings, old.table)
    server.config.server_scope = old.server_scope
    server.config.throttle = old.throttle  # failures so far still count after a reload
    server.config.ledger = old.ledger  # and the sessions and storage of each user
    old.throttle.base_delay = settings.failed_login_delay
    server.options = build_options(settings)
