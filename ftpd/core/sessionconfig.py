"""What every session of one server shares (``SessionConfig``): policy, limits, the
command table, and what the sans-IO core gets injected from outside."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ftpd.auth.base import Account
from ftpd.core.commands import DEFAULT_TABLE, CommandTable
from ftpd.core.limits import Ledger
from ftpd.core.listing import Hidden, numeric_owners
from ftpd.core.paths import resolve
from ftpd.core.throttle import LoginThrottle
from ftpd.fs.base import FileSystem


def _no_filesystem(account: Account) -> FileSystem:
    raise OSError(38, "no filesystem configured (SessionConfig.fs_factory)")


def _anyone(name: str) -> bool:
    return True


def _urandom_token(nbytes: int) -> str:
    import os

    return os.urandom(nbytes).hex()


class SessionConfig:
    """What every session of one server shares: policy, limits, the command table, and
    what the core gets from outside, injected: ``fs_factory`` (an account's filesystem;
    called in the worker pool), ``owner_names`` (uid, gid -> names for LIST), ``clock``
    and ``token`` (n random bytes as hex: STOU and atomic-upload names). Path policy:
    ``hide`` (``--hide`` patterns) and ``anonymous_upload`` (the drop box, a virtual
    path). Keywords only; ``replace(**changes)`` gives a modified copy."""

    def __init__(self, *, table: CommandTable | None = None,
                 fs_factory: Callable[[Account], FileSystem] = _no_filesystem,
                 owner_names: Callable[[int, int], tuple[str, str]] = numeric_owners,
                 token: Callable[[int], str] = _urandom_token,
                 banner: str = "ftpd ready.", masquerade_address: str | None = None,
                 passive_ports: range | None = None, permit_foreign_addresses: bool = False,
                 max_bad_commands: int = 20, max_login_attempts: int = 3,
                 throttle: LoginThrottle | None = None, atomic_uploads: bool = False,
                 max_listing_entries: int = 200_000, tls_mode: str = "off",
                 tls_anonymous: bool = False, tls_available: bool = False,
                 implicit_tls: bool = False, server_scope: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time, shutting_down: bool = False,
                 max_rate: int = 0, ledger: Ledger | None = None,
                 hide: tuple[str, ...] | list[str] = (),
                 anonymous_upload: str | None = None,
                 listens: Callable[[str], bool] = _anyone) -> None:
        self.table = table if table is not None else _default_table()
        self.fs_factory = fs_factory
        self.owner_names = owner_names
        self.token = token
        self.banner = banner
        self.masquerade_address = masquerade_address
        self.passive_ports = passive_ports
        self.permit_foreign_addresses = permit_foreign_addresses
        self.max_bad_commands = max_bad_commands
        self.max_login_attempts = max_login_attempts
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.atomic_uploads = atomic_uploads
        self.max_listing_entries = max_listing_entries
        self.tls_mode = tls_mode  # off, explicit, required
        self.tls_anonymous = tls_anonymous
        self.tls_available = tls_available
        self.implicit_tls = implicit_tls
        self.server_scope: dict[str, Any] = server_scope if server_scope is not None else {}
        self.clock = clock
        self.shutting_down = shutting_down
        self.max_rate = max_rate  # bytes/s per direction per session (0: unlimited)
        self.ledger = ledger if ledger is not None else Ledger()  # sessions, usage per user
        self.hide = hide
        self.anonymous_upload = anonymous_upload
        self.listens = listens  # whether an event name has listeners (the server's bus)

    @property
    def hide(self) -> tuple[str, ...]:
        """The ``--hide`` patterns; ``hidden`` is their matcher."""
        return self.hidden.patterns

    @hide.setter
    def hide(self, patterns: tuple[str, ...] | list[str]) -> None:
        self.hidden = Hidden(patterns)

    @property
    def anonymous_upload(self) -> str | None:
        """The drop box's virtual path (normalised: ``incoming`` is ``/incoming``)."""
        return self._anonymous_upload

    @anonymous_upload.setter
    def anonymous_upload(self, vdir: str | None) -> None:
        self._anonymous_upload = resolve("/", vdir) if vdir else None

    def replace(self, **changes: Any) -> SessionConfig:
        import copy

        new = copy.copy(self)
        for name, value in changes.items():
            if not hasattr(new, name):
                raise TypeError(f"SessionConfig has no setting {name!r}")
            setattr(new, name, value)
        return new


def _default_table() -> CommandTable:
    import ftpd.core.handlers  # noqa: F401  (registers the built-in commands)

    return DEFAULT_TABLE
