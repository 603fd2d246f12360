"""Shared by every test folder: this directory on ``sys.path``, so that each folder's
helpers and tests can ``import ftpsupport`` (the folders are not packages)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
