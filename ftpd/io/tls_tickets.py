"""A fresh TLS 1.3 session ticket on a live control connection.

OpenSSL clients such as curl use a TLS 1.3 ticket once: the data connection that
resumes the control session consumes the client's cached ticket, and the next data
connection can resume nothing (a full handshake, refused under ``--tls-reuse
required``). Data connections cannot hand out tickets of their own: a client that only
uploads closes with them unread (or arriving just after its close) and the kernel's
reset cuts the end of the upload. So the control connection mints one more ticket
after each protected data connection; it leaves with the next reply (the 226), which
the client reads before it opens its next data connection. ProFTPD does the same.

The ``ssl`` module does not expose ``SSL_new_session_ticket`` (OpenSSL 3.0), so it is
called through ``ctypes`` from the very libssl ``_ssl`` is linked with, on the ``SSL*``
CPython keeps right after the socket weakref in its ``_ssl._SSLSocket`` (a layout
unchanged since Python 3.0). The pointer is trusted only if the ``SSL``'s app data,
which CPython sets to that same object, points back at it; otherwise, on another
interpreter, or with an older OpenSSL, nothing is sent and clients fall back to what
their first ticket allows."""

from __future__ import annotations

import sys
from typing import Any

_api: Any = None  # (ctypes, SSL_new_session_ticket, SSL_get_ex_data, _SSLSocket), or False


def issue_ticket(sock: Any) -> bool:
    """Queue one new session ticket on *sock*, a server-side TLS 1.3 ``SSLSocket``;
    it is sent with the next write. False when that cannot be done here."""
    api = _load()
    if not api:
        return False
    try:
        if sock.version() != "TLSv1.3":
            return False  # TLS 1.2 clients keep reusing the session they have
    except (OSError, ValueError):
        return False
    pointer = _ssl_pointer(api, getattr(sock, "_sslobj", None))
    if pointer is None:
        return False
    return api[1](pointer) == 1


def _load() -> Any:
    global _api
    if _api is None:
        _api = _bind() or False
    return _api


# CPython versions whose PySSLSocket begins PyObject_HEAD, Socket (a weakref), SSL *ssl
# (read in their Modules/_ssl.c); on any other the pointer is not even looked at, since the
# check below must dereference it.
_KNOWN_LAYOUT = ((3, 11), (3, 14))


def _bind() -> Any:
    if sys.implementation.name != "cpython" or not (
            _KNOWN_LAYOUT[0] <= sys.version_info[:2] <= _KNOWN_LAYOUT[1]):
        return None
    try:
        import _ssl
        import ctypes

        lib = ctypes.CDLL(getattr(_ssl, "__file__", None))  # None: _ssl is built in
        new_ticket = lib.SSL_new_session_ticket  # OpenSSL 3.0 and later
        get_ex_data = lib.SSL_get_ex_data
        socket_type = _ssl._SSLSocket
    except (ImportError, OSError, AttributeError):
        return None
    new_ticket.argtypes, new_ticket.restype = [ctypes.c_void_p], ctypes.c_int
    get_ex_data.argtypes, get_ex_data.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_void_p
    return ctypes, new_ticket, get_ex_data, socket_type


def _ssl_pointer(api: Any, sslobj: Any) -> int | None:
    """The ``SSL*`` inside CPython's ``_ssl._SSLSocket`` *sslobj*, checked."""
    ctypes, _, get_ex_data, socket_type = api
    if type(sslobj) is not socket_type:
        return None
    word = ctypes.sizeof(ctypes.c_void_p)
    offset = object.__basicsize__ + word  # PyObject_HEAD, then the socket weakref
    if type(sslobj).__basicsize__ < offset + word:
        return None
    pointer = ctypes.c_void_p.from_address(id(sslobj) + offset).value
    if not pointer or get_ex_data(pointer, 0) != id(sslobj):  # app data is the object
        return None
    return pointer
