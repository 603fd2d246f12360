"""Built-in command handlers, grouped by concern. Importing this package registers
them in ``core.commands.DEFAULT_TABLE``."""

from ftpd.core.handlers import checksums, dirlist, files, info, login, nav, tls, transfer  # noqa: F401
