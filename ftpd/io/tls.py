"""FTPS with the standard ``ssl`` module: contexts, TLS 1.2 at least, and session
reuse enforced. The handshakes themselves are the streams' (``Stream.upgrade``: non-
blocking, driven by readiness); this module uses only the connections' public faces.

Each control session gets its own ``SSLContext``: its own session cache and ticket
keys, so a data connection can resume *only* that control connection's session and
``session_reused`` proves whose session it was."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from ftpd.core.actions import Outcome
from ftpd.io.tls_tickets import issue_ticket
from ftpd.log import get_logger

if TYPE_CHECKING:
    from ftpd.io.control import ControlConnection
    from ftpd.io.data import DataChannel
    from ftpd.io.loop import TimerHandle

log = get_logger("ftpd.tls")


class TLSConfigError(ValueError):
    """The certificate or key cannot be used (one line; exit 2)."""


class TLSManager:
    def __init__(self, cert: str, key: str | None = None, reuse_required: bool = True) -> None:
        self.cert, self.key = cert, key or cert
        self.reuse_required = reuse_required
        self._check(cert, key)

    def _check(self, cert: str, key: str | None) -> None:
        """Load once now, so a bad file is one line at start-up naming it."""
        for option, path in (("--tls-cert", cert), ("--tls-key", key)):
            if path is None:
                continue
            try:
                with open(path, "rb") as f:
                    head = f.read(1 << 16)
            except OSError as exc:
                raise TLSConfigError(f"{option} {path}: {exc.strerror}") from None
            if b"-----BEGIN" not in head:
                raise TLSConfigError(f"{option} {path}: not a PEM file")
            if option == "--tls-key" and b"PRIVATE KEY" not in head:
                raise TLSConfigError(f"--tls-key {path}: no private key in it")
        try:
            self.new_context()
        except ssl.SSLError as exc:
            reason = getattr(exc, "reason", "") or ""
            if reason == "KEY_VALUES_MISMATCH":
                text = f"--tls-key {self.key} does not match the certificate in --tls-cert {cert}"
            elif key is None:
                text = (f"--tls-cert {cert}: needs a certificate and its private key "
                        "(or give the key with --tls-key)")
            else:
                text = (f"--tls-cert {cert} / --tls-key {key}: cannot load a certificate "
                        f"and private key ({reason or exc})")
            raise TLSConfigError(text) from None

    def new_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    # -- control connection ----------------------------------------------------------
    def start_control(self, conn: ControlConnection, then: Callable[[], None]) -> None:
        """Wrap the control socket once everything queued before has been written."""
        try:
            conn.tls_context = self.new_context()
        except (OSError, ssl.SSLError) as exc:  # e.g. the certificate vanished since start
            # The client is about to shake hands: a cleartext reply would only confuse it.
            log.error("cannot set up TLS (--tls-cert %s): %s; closing %s", self.cert, exc,
                      conn.peer[0])
            conn.flush()
            conn.close()
            return
        conn.tls_handshaking = True
        deadline = _handshake_deadline(conn)

        def done() -> None:
            if deadline is not None:
                deadline.cancel()
            conn.tls_handshaking = False
            conn.tls = conn.stream.sock
            # The control connection has its tickets; data connections must issue
            # none: clients that only send on them close with tickets unread, and
            # the kernel's RST would cut the end of the upload.
            conn.tls_context.num_tickets = 0
            conn.resume_reading()
            then()
            conn.flush()

        def failed(exc: BaseException) -> None:
            if deadline is not None:
                deadline.cancel()
            log.info("%s: TLS handshake failed: %s", conn.peer[0], exc)
            conn.tls_handshaking = False
            conn.discard_output()
            conn.close()

        def begin() -> None:  # the 234 reply has left in the clear
            if not conn.closed:
                conn.stream.upgrade(conn.tls_context, True, done, failed)

        conn.when_drained(begin)

    # -- data connections ------------------------------------------------------------
    def start_data(self, channel: DataChannel, conn: ControlConnection) -> None:
        stream = channel.stream
        assert stream is not None

        def done() -> None:
            if self.reuse_required and not stream.session_reused:
                log.warning("%s: data connection did not resume the control connection's TLS "
                            "session: refused (--tls-reuse required)", conn.peer[0])
                channel.end(Outcome.TLS_REFUSED)
                return
            # This data connection used up the client's ticket (curl's OpenSSL uses one
            # once): the next reply on the control connection carries a fresh one.
            if conn.tls is not None and not conn.closed:
                issue_ticket(conn.tls)
            channel.start_pumping()

        def failed(exc: BaseException) -> None:
            log.info("%s: data TLS handshake failed: %s", conn.peer[0], exc)
            channel.end(Outcome.TLS_REFUSED)

        # suppress_ragged_eofs=False: an upload cut by a bare FIN (no close_notify) is
        # an incomplete transfer, never a complete one (truncation attack).
        # read_ahead: an upload costs one read(2) per 256 KiB, not two per 16 KiB record
        stream.upgrade(conn.tls_context, True, done, failed, read_ahead=True,
                       suppress_ragged_eofs=False)


def _handshake_deadline(conn: ControlConnection) -> TimerHandle | None:
    """A control handshake gets the control timeout (--timeout), counted from its start
    and not stretched by bytes that trickle in; a stalled one is closed without a word
    (a cleartext 421 would only confuse a client that is mid-handshake), so it cannot
    hold a --max-connections-per-ip slot for good."""
    timeout = conn.server.options.timeout
    if timeout <= 0:
        return None

    def expire() -> None:
        if conn.tls_handshaking and not conn.closed:
            log.info("%s: TLS handshake not done within %gs (--timeout); closing",
                     conn.peer[0], timeout)
            conn.discard_output()
            conn.close()

    return conn.loop.call_later(timeout, expire)
