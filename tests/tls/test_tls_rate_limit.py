"""A rate-limited session over TLS (PROT P): the limiter sits on the encrypted socket
and keeps OpenSSL's retry rule (a refused write is offered again with the same length),
so protected transfers arrive whole, no faster than the limit allows."""

from __future__ import annotations

import os
import time

from tlshelpers import quit_quietly, retr, stor, tls_login

MIB = 1 << 20


def test_limited_protected_retr_and_stor_arrive_whole_and_not_too_fast(ftpd, certs):
    server = ftpd("--max-rate", "1M")
    down, up = os.urandom(2 * MIB), os.urandom(2 * MIB)
    (server.root / "down").write_bytes(down)
    ftp = tls_login(server.host, server.port, certs.ca)
    start = time.monotonic()
    assert retr(ftp, "down") == down
    assert stor(ftp, "up", up).startswith("226")
    seconds = time.monotonic() - start
    assert (server.root / "up").read_bytes() == up
    # 4 MiB at 1 MiB/s, less a quarter second's burst per direction
    assert seconds >= 3.0, f"4 MiB at 1 MiB/s in {seconds:.2f} s"
    quit_quietly(ftp)
