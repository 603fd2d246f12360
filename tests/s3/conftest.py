"""Fixtures of the end-to-end S3 tests: the SeaweedFS server they share (started once per
session, stopped by pid) and ``s3ftpd``, an ftpd process whose root is a fresh prefix of
its bucket (``-r s3://ftpd/PREFIX``), with the credentials in ``AWS_*``."""

from __future__ import annotations

import itertools
import os

import pytest
from s3ftpd import start_s3ftpd
from s3support import running_seaweed

_prefixes = itertools.count(1)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    yield from running_seaweed(tmp_path_factory)


@pytest.fixture
def s3ftpd(seaweed, tmp_path):
    """(ftpd process, the key prefix its root is) on a prefix no other test uses."""
    prefix = f"e{next(_prefixes)}-{os.getpid()}"
    server = start_s3ftpd(tmp_path, seaweed.endpoint, f"s3://{seaweed.bucket}/{prefix}")
    try:
        yield server, prefix
    finally:
        server.stop()
