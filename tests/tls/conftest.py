"""Fixtures for the FTPS tests: a test CA and a server certificate for 127.0.0.1,
localhost and ::1 (made with trustme at test time), a few broken PEM files, and the
real ``ftpd`` command started in a subprocess on free ports.

A server is started on ports picked by binding and closing a socket (retried only
when ftpd reports that a port was taken meanwhile), waited for with a deadline, and
stopped by pid in teardown: SIGTERM, a bounded wait, SIGKILL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tlshelpers import TlsFtpd, finish, start_tls


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA certificate clients trust
    cert: Path  # the server certificate chain alone
    key: Path  # its private key alone
    combined: Path  # key and chain in one file (--tls-cert without --tls-key)
    other_key: Path  # a key that does not match cert
    garbage: Path  # not PEM at all
    untrusted_ca: Path  # a CA that did not sign the server certificate


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    import trustme

    d = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost", "::1")
    other = trustme.CA()
    paths = Certs(d / "ca.pem", d / "cert.pem", d / "key.pem", d / "combined.pem",
                  d / "other-key.pem", d / "garbage.pem", d / "untrusted-ca.pem")
    ca.cert_pem.write_to_path(str(paths.ca))
    for i, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(paths.cert), append=i > 0)
    issued.private_key_pem.write_to_path(str(paths.key))
    issued.private_key_and_cert_chain_pem.write_to_path(str(paths.combined))
    other.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(paths.other_key))
    paths.garbage.write_bytes(b"this is not a certificate\n" * 4)
    other.cert_pem.write_to_path(str(paths.untrusted_ca))
    return paths


@pytest.fixture
def ftpd(tmp_path: Path, certs: Certs):
    """Factory: ``ftpd(*extra_args, tls=True, implicit=False, root=..., host=...)``;
    ``tls=True`` adds ``--tls-cert cert.pem --tls-key key.pem``."""
    servers: list[TlsFtpd] = []

    def start(*args: str, tls: bool = True, **kwargs: Any) -> TlsFtpd:
        if tls:
            args = ("--tls-cert", str(certs.cert), "--tls-key", str(certs.key), *args)
        server = start_tls(tmp_path, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    finish(servers)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs):
    """One explicit-FTPS server (with an implicit listener too) for a whole module's
    tests that do not change its state: root holds ``data.bin``."""
    workdir = tmp_path_factory.mktemp("shared")
    root = workdir / "root"
    root.mkdir()
    (root / "data.bin").write_bytes(os.urandom(300_000))
    server = start_tls(workdir, "--tls-cert", str(certs.cert), "--tls-key", str(certs.key),
                       root=root, implicit=True)
    yield server
    finish([server])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private HOME for curl and lftp (no rc files of the machine's user)."""
    h = tmp_path / "home"
    h.mkdir(exist_ok=True)
    return h
