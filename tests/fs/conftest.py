"""Fixtures of the filesystem tests: ``resolver`` runs a LocalFS test twice, once with the
kernel's ``openat2`` (RESOLVE_BENEATH, where this kernel has it) and once with the
component walk that stands in for it elsewhere, so that both ways of confining a path are
proven; ``seaweed`` is the SeaweedFS server the S3 tests share (started once per session,
stopped by pid), and ``s3fs`` an ``S3FS`` on a fresh prefix of its bucket for each test."""

from __future__ import annotations

import itertools
import os

import pytest
from s3support import make_s3fs, running_seaweed

from ftpd.fs import syscalls

_prefixes = itertools.count(1)


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(syscalls, "_openat2_ok", False)
    return request.param


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    yield from running_seaweed(tmp_path_factory)


@pytest.fixture
def s3fs(seaweed):
    """An empty S3FS rooted at its own prefix, so that tests never see each other."""
    prefix = f"t{next(_prefixes)}-{os.getpid()}"
    fs = make_s3fs(seaweed, prefix)
    fs.test_prefix = prefix
    return fs
