"""``resolver``: run a LocalFS test twice, once with the kernel's ``openat2``
(RESOLVE_BENEATH, where this kernel has it) and once with the component walk that
stands in for it elsewhere, so that both ways of confining a path are proven."""

from __future__ import annotations

import pytest

from ftpd.fs import syscalls


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(syscalls, "_openat2_ok", False)
    return request.param
