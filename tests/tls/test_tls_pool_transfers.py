"""Issue 11, point 1, under TLS: files without a descriptor (MemoryFS: an ``io.BytesIO``
to read, a raw writer without ``fileno()`` to write) go through the data pool on
protected data connections too, byte for byte and in order, in TYPE I and TYPE A,
with REST."""

from __future__ import annotations

import io
from hashlib import sha256

import pytest
from tlshelpers import quit_quietly, retr, stor, tls_login

from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS
from ftpd.io.chunks import CHUNK
from ftpd.io.tls import TLSManager

BIG = bytes(range(256)) * (3 * CHUNK // 256 + 91)  # several chunks and a ragged tail
TEXT = b"".join(b"line %d of a text file\n" % i for i in range(40_000))


@pytest.fixture
def server(certs):
    fs = MemoryFS({"/big.bin": BIG, "/text.txt": TEXT})
    served = FTPServer(fs, users={"user": "pw"}, tls_mode="explicit", tls_available=True)
    served.server.tls = TLSManager(str(certs.cert), str(certs.key))
    with served:
        yield fs, served


@pytest.fixture
def ftp(server, certs):
    _fs, served = server
    client = tls_login("127.0.0.1", served.port, certs.ca)
    yield client
    quit_quietly(client)


def test_a_bytesio_is_served_byte_for_byte(ftp):
    assert sha256(retr(ftp, "big.bin")).digest() == sha256(BIG).digest()


@pytest.mark.parametrize("rest", [1, CHUNK, len(BIG) - 1])
def test_rest_on_a_bytesio(ftp, rest):
    chunks: list[bytes] = []
    ftp.retrbinary("RETR big.bin", chunks.append, rest=rest)
    assert b"".join(chunks) == BIG[rest:]


def test_type_a_download_from_a_bytesio(ftp):
    lines: list[str] = []
    ftp.retrlines("RETR text.txt", lines.append)
    assert "\n".join(lines).encode() + b"\n" == TEXT


def test_binary_upload_into_a_sink_without_fileno(ftp):
    payload = bytes(reversed(BIG))
    assert stor(ftp, "up.bin", payload).startswith("226")
    assert sha256(retr(ftp, "up.bin")).digest() == sha256(payload).digest()


def test_type_a_upload_into_a_sink_without_fileno(ftp):
    assert ftp.storlines("STOR up.txt", io.BytesIO(TEXT)).startswith("226")
    assert sha256(retr(ftp, "up.txt")).digest() == sha256(TEXT).digest()
