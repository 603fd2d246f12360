"""The shipped launcher files (SPEC §7): all there, the launchd plists parsed and checked
(no launchd here to run them), and the per-connection files saying whose limits apply.
The inetd, xinetd and systemd files are run by real launchers in the other modules."""

from __future__ import annotations

import plistlib
import re
from pathlib import Path

import pytest

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"

SHIPPED = [
    "inetd/inetd.conf",
    "inetd/xinetd.d/ftpd",
    "systemd/ftpd.socket",
    "systemd/ftpd.service",
    "systemd/ftpd-accept.socket",
    "systemd/ftpd-accept@.service",
]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_exists(name):
    text = (CONTRIB / name).read_text()
    assert text.strip() and "\t\n" not in text and not text.endswith("\n\n")
    if not name.endswith(".socket"):
        assert "/usr/local/bin/ftpd" in text  # the path to adjust


def plists() -> dict[str, dict]:
    found = {}
    for path in sorted((CONTRIB / "launchd").glob("*.plist")):
        with open(path, "rb") as f:
            found[path.name] = plistlib.load(f)
    return found


def by_kind() -> dict[str, dict]:
    """The three plists by what they do: inetd no-wait, inetd wait, native sockets."""
    kinds: dict[str, dict] = {}
    for name, plist in plists().items():
        args = plist["ProgramArguments"]
        if "-I" in args:
            kinds.setdefault("nowait", plist)
        elif "-W" in args:
            kinds.setdefault("wait", plist)
        elif "--launchd-socket" in args:
            kinds.setdefault("sockets", plist)
        else:
            raise AssertionError(f"{name}: neither -I, -W nor --launchd-socket")
    return kinds


def test_three_launchd_plists_with_distinct_labels():
    found = plists()
    assert len(found) == 3, sorted(found)
    labels = [p["Label"] for p in found.values()]
    assert len(set(labels)) == 3
    for name, plist in found.items():
        assert re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", plist["Label"]), name
        assert name == plist["Label"] + ".plist", "launchd wants the file named by label"
        assert plist["ProgramArguments"][0].endswith("/ftpd"), name
        assert "Program" not in plist or plist["Program"].endswith("/ftpd")
    assert set(by_kind()) == {"nowait", "wait", "sockets"}


def test_launchd_nowait_plist():
    plist = by_kind()["nowait"]
    assert plist["inetdCompatibility"] == {"Wait": False}
    assert "-W" not in plist["ProgramArguments"]
    assert "--launchd-socket" not in plist["ProgramArguments"]
    listeners = list(plist["Sockets"].values())
    assert len(listeners) == 1 and listeners[0]["SockServiceName"] in ("ftp", "21")


def test_launchd_wait_plist_gives_the_socket_back_when_idle():
    plist = by_kind()["wait"]
    args = plist["ProgramArguments"]
    assert plist["inetdCompatibility"] == {"Wait": True}
    assert "-I" not in args
    flag = "-t" if "-t" in args else "--idle-timeout"
    assert float(args[args.index(flag) + 1]) > 0
    assert len(plist["Sockets"]) == 1


def test_launchd_native_sockets_plist_names_its_socket():
    plist = by_kind()["sockets"]
    args = plist["ProgramArguments"]
    assert "inetdCompatibility" not in plist
    name = args[args.index("--launchd-socket") + 1]
    assert name in plist["Sockets"], "--launchd-socket must name a key of Sockets"
    assert plist["Sockets"][name]["SockServiceName"] in ("ftp", "21")
    assert not {"-I", "-W", "-d", "--daemon"} & set(args), "launchd manages the process"


def test_no_plist_asks_ftpd_to_detach():
    for name, plist in plists().items():
        assert not {"-d", "--daemon"} & set(plist["ProgramArguments"]), name
        assert plist.get("KeepAlive", False) is False, f"{name}: started on demand"


@pytest.mark.parametrize("name, limits", [
    ("inetd/xinetd.d/ftpd", ["instances", "per_source"]),
    ("systemd/ftpd-accept.socket", ["MaxConnections", "MaxConnectionsPerSource"]),
    ("systemd/ftpd-accept@.service", ["MaxConnections", "MaxConnectionsPerSource"]),
    ("inetd/inetd.conf", ["--max-connections", "max-child"]),
])
def test_per_connection_files_say_the_limits_are_the_launchers(name, limits):
    comments = "\n".join(line for line in (CONTRIB / name).read_text().splitlines()
                         if line.lstrip().startswith("#"))
    for limit in limits:
        assert limit in comments, f"{name}: say in a comment that {limit} is the launcher's"
    assert "--max-connections" in comments or "max-connections" in comments.lower()
