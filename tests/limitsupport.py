"""An authorizer for the per-user limit tests (tests/functional and tests/io): accounts by
name with any password, each with the limits the test gives it, plus anonymous."""

from __future__ import annotations

from typing import Any

from ftpd.auth.base import ALL_PERMS, Account


class Accounts:
    """Accounts by name, any password (the limits are what is under test)."""

    cheap = True

    def __init__(self, home: str, **limits: dict[str, Any]) -> None:
        self.home, self.limits = home, limits

    def authenticate(self, username: str, password: str) -> Account | None:
        if username in ("anonymous", "ftp"):
            return Account("anonymous", self.home, "elr", anonymous=True)
        if username not in self.limits:
            return None
        return Account(username, self.home, ALL_PERMS, **self.limits[username])
