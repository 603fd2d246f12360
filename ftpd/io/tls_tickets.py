"""A fresh TLS 1.3 session ticket on a live control connection.

OpenSSL clients such as curl use a TLS 1.3 ticket once: the data connection that
resumes the control session consumes the client's cached ticket, and the next data
connection can resume nothing (a full handshake, refused under ``--tls-reuse
required``). Data connections cannot hand out tickets of their own: a client that only
uploads closes with them unread (or arriving just after its close) and the kernel's
reset cuts the end of the upload. So the control connection mints one more ticket
after each protected data connection; it leaves with the next reply (the 226), which
the client reads before it opens its next data connection. ProFTPD does the same.

The ``ssl`` module does not expose ``SSL_new_session_ticket`` (OpenSSL 3.0): it is
called through ``ftpd.io.libssl``; where that cannot be done, nothing is sent and
clients fall back to what their first ticket allows."""

from __future__ import annotations

from typing import Any

from ftpd.io.libssl import new_ticket


def issue_ticket(sock: Any) -> bool:
    """Queue one new session ticket on *sock*, a server-side TLS 1.3 ``SSLSocket``;
    it is sent with the next write. False when that cannot be done here."""
    try:
        if sock.version() != "TLSv1.3":
            return False  # TLS 1.2 clients keep reusing the session they have
    except (OSError, ValueError, AttributeError):
        return False
    return new_ticket(sock)
