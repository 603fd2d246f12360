"""The distributions: ``python -m build`` makes an sdist, then a wheel from that sdist
(so the sdist must be complete). Both carry the LICENSE, the man pages, contrib/, docs/
and SECURITY.md; the wheel installs the man pages under share/man and the rest under
share/doc/ftpd; the metadata has an SPDX license and setuptools warns of nothing about
it. Built without isolation from this environment's setuptools and build (the test
extras), on a copy of the tree, so nothing is written into the checkout."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_TREES = ("contrib", "docs", "man")
SHIPPED_FILES = ("LICENSE", "SECURITY.md", "README.md")
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                              "*.pyc", ".pytest_cache", ".ruff_cache", ".hypothesis", "results")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("build") is None,
                                reason="the build package (test extras) is not installed")


def shipped_sources() -> list[str]:
    """Every file of the trees that must ship, relative to the root."""
    files = [str(p.relative_to(ROOT)) for tree in SHIPPED_TREES
             for p in sorted((ROOT / tree).rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    assert files, "nothing found under contrib/, docs/, man/"
    return files + list(SHIPPED_FILES)


def data_path(source: str) -> str:
    """Where the wheel installs a shipped file, relative to the prefix."""
    path = Path(source)
    if path.parts[0] == "man":
        return f"share/man/man{path.suffix[1:]}/{path.name}"
    return f"share/doc/ftpd/{source}"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    """(sdist, wheel, what the build printed)."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    out = work / "dist"
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(out), str(source)], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return sdist, wheel, printed


def test_sdist_carries_license_man_contrib_docs_and_security(built) -> None:
    sdist, _, _ = built
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {name.removeprefix(f"{top}/") for name in tar.getnames()}
    missing = [f for f in [*shipped_sources(), "pyproject.toml", "MANIFEST.in"]
               if f not in names]
    assert not missing, f"not in the sdist: {missing}"
    assert any(n.startswith("tests/") for n in names), "the sdist has no tests"


def test_wheel_installs_man_pages_under_share_man_and_docs_under_share_doc(built) -> None:
    _, wheel, _ = built
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        (data,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".data")}
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        metadata = whl.read(f"{info}/METADATA").decode()
    missing = [f for f in shipped_sources() if f"{data}/data/{data_path(f)}" not in names]
    assert not missing, (f"not in the wheel's data (add them to "
                         f"[tool.setuptools.data-files] in pyproject.toml): {missing}")
    assert f"{data}/data/share/man/man8/ftpd.8" in names
    assert f"{data}/data/share/man/man5/ftpd.conf.5" in names
    assert f"{info}/licenses/LICENSE" in names
    assert "ftpd/cli.py" in names
    assert re.search(r"^License-Expression: MIT$", metadata, re.MULTILINE), metadata
    assert not re.search(r"^License: ", metadata, re.MULTILINE)


def test_build_warns_of_nothing_about_the_license(built) -> None:
    _, _, printed = built
    complaints = [line for line in printed.splitlines()
                  if "license" in line.lower() and "deprecat" in line.lower()]
    assert not complaints, printed


def test_license_file_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted" in text
