"""Assembling a server from resolved settings: authorizers, session policy, limits.
Shared by the CLI (every launch mode) and by SIGHUP reloads."""

from __future__ import annotations

import logging
import os
from typing import Any

from ftpd.auth.base import (
    AnonymousAuthorizer,
    Authorizer,
    ChainAuthorizer,
    SingleUserAuthorizer,
)
from ftpd.config import Settings
from ftpd.core.session import SessionConfig
from ftpd.core.throttle import LoginThrottle
from ftpd.io.server import Server, ServerOptions
from ftpd.launch.context import LaunchContext

log = logging.getLogger("ftpd")


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

        try:
            parts.append(UsersFileAuthorizer(settings.users))
        except (OSError, UsersFileError) as exc:
            raise StartupError(f"--users: {exc}") from None
    if not settings.no_anonymous:
        parts.append(AnonymousAuthorizer(root, writable=settings.write))
    return ChainAuthorizer(*parts)


def build_session_config(settings: Settings, table: Any = None) -> SessionConfig:
    config = SessionConfig(
        masquerade_address=settings.masquerade_address,
        passive_ports=settings.passive_ports,
        permit_foreign_addresses=settings.permit_foreign_addresses,
        max_bad_commands=settings.max_bad_commands,
        max_login_attempts=settings.max_login_attempts,
        throttle=LoginThrottle(base_delay=settings.failed_login_delay),
        atomic_uploads=settings.atomic_uploads,
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
    )


def build_server(settings: Settings, launch: LaunchContext,
                 authorizer: Authorizer | None = None) -> Server:
    os.umask(settings.umask)
    return Server(launch, build_session_config(settings),
                  authorizer or build_authorizer(settings), build_options(settings))


def apply(server: Server, settings: Settings, authorizer: Authorizer) -> None:
    """Reload: new sessions get the new policy; running ones keep what they have."""
    os.umask(settings.umask)
    server.authorizer = authorizer
    server.config = build_session_config(settings, server.config.table)
    server.options = build_options(settings)
