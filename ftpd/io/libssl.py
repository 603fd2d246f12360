"""The few OpenSSL calls the ``ssl`` module does not expose, made through ``ctypes``
from the very libssl ``_ssl`` is linked with, on the ``SSL*`` CPython keeps right after
the socket weakref in its ``_ssl._SSLSocket`` (a layout unchanged since Python 3.0).
The pointer is trusted only if the ``SSL``'s app data, which CPython sets to that same
object, points back at it; otherwise, on another interpreter, or with an older OpenSSL,
every call here answers False and the connection goes on as the ``ssl`` module left it.

- ``new_ticket``: one more TLS 1.3 session ticket (``SSL_new_session_ticket``, 3.0).
- ``read_ahead``: read the socket a large piece at a time, not a record header and
  then its body (``SSL_set_read_ahead``, ``SSL_set_default_read_buffer_len``): an
  upload costs one ``read`` per 256 KiB instead of two per 16 KiB record. Bytes read
  ahead are invisible to ``select`` and to ``SSLSocket.pending()``, so a stream that
  reads ahead asks ``has_pending`` (``SSL_has_pending``) before it waits for readiness."""

from __future__ import annotations

import sys
from typing import Any

READ_AHEAD = 256 << 10  # bytes of ciphertext one read may take

_api: Any = None  # the bound functions (a dict), or False where they cannot be had

# CPython versions whose PySSLSocket begins PyObject_HEAD, Socket (a weakref), SSL *ssl
# (read in their Modules/_ssl.c); on any other the pointer is not even looked at, since the
# check below must dereference it.
_KNOWN_LAYOUT = ((3, 11), (3, 14))


def new_ticket(sock: Any) -> bool:
    """Queue one new session ticket on *sock* (sent with its next write)."""
    api, pointer = _resolve(sock)
    return pointer is not None and api["SSL_new_session_ticket"](pointer) == 1


def read_ahead(sock: Any, size: int = READ_AHEAD) -> bool:
    """Let *sock* read up to *size* bytes of ciphertext per system call."""
    api, pointer = _resolve(sock)
    if pointer is None:
        return False
    api["SSL_set_default_read_buffer_len"](pointer, size)
    api["SSL_set_read_ahead"](pointer, 1)
    return True


def has_pending(sock: Any) -> bool:
    """Whether *sock* holds bytes already read from the socket: decrypted, or records
    read ahead and not yet processed (``SSLSocket.pending()`` counts only the first)."""
    api, pointer = _resolve(sock)
    if pointer is None:
        return bool(sock.pending())
    return api["SSL_has_pending"](pointer) == 1


def _resolve(sock: Any) -> tuple[Any, int | None]:
    global _api
    if _api is None:
        _api = _bind() or False
    if not _api:
        return _api, None
    return _api, _ssl_pointer(_api, getattr(sock, "_sslobj", None))


def _bind() -> Any:
    if sys.implementation.name != "cpython" or not (
            _KNOWN_LAYOUT[0] <= sys.version_info[:2] <= _KNOWN_LAYOUT[1]):
        return None
    try:
        import _ssl
        import ctypes

        lib = ctypes.CDLL(getattr(_ssl, "__file__", None))  # None: _ssl is built in
        p, c_int, size_t = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        signatures = {
            "SSL_new_session_ticket": ([p], c_int),  # OpenSSL 3.0 and later
            "SSL_get_ex_data": ([p, c_int], p),
            "SSL_set_read_ahead": ([p, c_int], None),
            "SSL_set_default_read_buffer_len": ([p, size_t], None),
            "SSL_has_pending": ([p], c_int),
        }
        api: dict[str, Any] = {"ctypes": ctypes, "type": _ssl._SSLSocket}
        for name, (argtypes, restype) in signatures.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, restype
            api[name] = fn
    except (ImportError, OSError, AttributeError):
        return None
    return api


def _ssl_pointer(api: Any, sslobj: Any) -> int | None:
    """The ``SSL*`` inside CPython's ``_ssl._SSLSocket`` *sslobj*, checked."""
    ctypes = api["ctypes"]
    if type(sslobj) is not api["type"]:
        return None
    word = ctypes.sizeof(ctypes.c_void_p)
    offset = object.__basicsize__ + word  # PyObject_HEAD, then the socket weakref
    if type(sslobj).__basicsize__ < offset + word:
        return None
    pointer = ctypes.c_void_p.from_address(id(sslobj) + offset).value
    if not pointer or api["SSL_get_ex_data"](pointer, 0) != id(sslobj):  # app data
        return None
    return pointer
