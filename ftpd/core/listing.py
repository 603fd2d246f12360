"""Directory listings: ``ls -l`` lines for LIST, bare names for NLST, RFC 3659 facts
for MLSD/MLST, and the bounded ``*``/``?`` matcher (never ``glob``). Listings are
generators that yield a slice at a time, so a huge directory never stalls the loop."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Iterator
from typing import Any

from ftpd.core.paths import join
from ftpd.fs.base import FileSystem

TEMP_PREFIX = ".ftpd-upload-"  # atomic-upload temporaries: never listed
SLICE = 256  # entries per yielded chunk
MAX_PATTERN = 255
MAX_MATCH_STEPS = 20_000

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIX_MONTHS = 180 * 86400


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


def match(pattern: str, name: str, max_steps: int = MAX_MATCH_STEPS) -> bool:
    """``*`` and ``?`` matching with a hard step limit (False when exceeded)."""
    if len(pattern) > MAX_PATTERN:
        return False
    p = n = 0
    star_p, star_n = -1, 0
    steps = 0
    while n < len(name):
        steps += 1
        if steps > max_steps:
            return False
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == name[n]):
            p += 1
            n += 1
        elif p < len(pattern) and pattern[p] == "*":
            star_p, star_n = p, n
            p += 1
        elif star_p >= 0:
            p = star_p + 1
            star_n += 1
            n = star_n
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def visible(name: str) -> bool:
    return not name.startswith(TEMP_PREFIX)


def _ls_time(mtime: float, now: float) -> str:
    t = time.gmtime(mtime)
    month = _MONTHS[t.tm_mon - 1]
    if abs(now - mtime) < _SIX_MONTHS:
        return f"{month} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}"
    return f"{month} {t.tm_mday:2d}  {t.tm_year}"


def numeric_owners(uid: int, gid: int) -> tuple[str, str]:
    """Owner and group as numbers: the default when no name function is injected
    (``SessionConfig.owner_names``; ``ftpd.fs.owners`` asks the system's databases)."""
    return str(uid), str(gid)


Owners = Callable[[int, int], tuple[str, str]]

_modes: dict[int, str] = {}
_owners: dict[tuple[Owners, int, int], str] = {}
_times: dict[tuple[int, bool], str] = {}


def ls_line(fs: FileSystem, vpath: str, name: str, st: Any, now: float,
            owners: Owners = numeric_owners) -> str:
    mode = _modes.get(st.st_mode)
    if mode is None:
        mode = _modes[st.st_mode] = stat.filemode(st.st_mode)
    key = (owners, st.st_uid, st.st_gid)
    owner = _owners.get(key)
    if owner is None:
        if len(_owners) > 4096:
            _owners.clear()
        user, group = owners(st.st_uid, st.st_gid)
        owner = _owners[key] = f"{user:<8} {group:<8}"
    mtime = int(st.st_mtime)
    tkey = (mtime // 60, abs(now - mtime) < _SIX_MONTHS)
    when = _times.get(tkey)
    if when is None:
        if len(_times) > 4096:
            _times.clear()
        when = _times[tkey] = _ls_time(mtime, now)
    line = f"{mode} {st.st_nlink:3d} {owner} {st.st_size:>10d} {when} {name}"
    if stat.S_ISLNK(st.st_mode):
        try:
            line += " -> " + fs.readlink(vpath)
        except OSError:
            pass
    return line


def _perm_fact(st: Any, perms: str) -> str:
    if stat.S_ISDIR(st.st_mode):
        table = (("e", "e"), ("l", "l"), ("w", "c"), ("m", "m"), ("d", "p"), ("d", "d"),
                 ("f", "f"))
    else:
        table = (("r", "r"), ("w", "w"), ("a", "a"), ("d", "d"), ("f", "f"))
    return "".join(fact for letter, fact in table if letter in perms)


def mlst_facts(name: str, st: Any, perms: str, wanted: list[str], kind: str | None = None) -> str:
    """``fact=value;...; name`` as RFC 3659 wants it."""
    facts = []
    is_dir = stat.S_ISDIR(st.st_mode)
    for fact in wanted:
        if fact == "type":
            facts.append("type=" + (kind or ("dir" if is_dir else "file")))
        elif fact == "size" and not is_dir:
            facts.append(f"size={st.st_size}")
        elif fact == "modify":
            facts.append("modify=" + time.strftime("%Y%m%d%H%M%S", time.gmtime(st.st_mtime)))
        elif fact == "perm":
            facts.append("perm=" + _perm_fact(st, perms))
        elif fact == "unique":
            facts.append(f"unique={st.st_dev:x}g{st.st_ino:x}")
        elif fact == "unix.mode":
            facts.append(f"unix.mode={stat.S_IMODE(st.st_mode):04o}")
    return "".join(f + ";" for f in facts) + " " + name


def entries(fs: FileSystem, vdir: str, pattern: str | None = None) -> list[str]:
    """The visible names in *vdir*, sorted, matching *pattern* if given."""
    names = sorted(n for n in fs.listdir(vdir) if visible(n))
    if pattern is not None:
        names = [n for n in names if match(pattern, n)]
    return names


def _chunks(lines: Iterator[str]) -> Iterator[bytes]:
    buf: list[str] = []
    for line in lines:
        buf.append(line)
        if len(buf) >= SLICE:
            yield ("\r\n".join(buf) + "\r\n").encode("utf-8", "surrogateescape")
            buf.clear()
    if buf:
        yield ("\r\n".join(buf) + "\r\n").encode("utf-8", "surrogateescape")


def list_dir(fs: FileSystem, vdir: str, names: list[str], fmt: str, perms: str = "",
             facts: list[str] | None = None, now: float | None = None, *,
             owners: Owners = numeric_owners) -> Iterator[bytes]:
    """Lines for each name in *vdir*, in slices; entries that vanish are skipped."""
    now = time.time() if now is None else now

    def lines() -> Iterator[str]:
        if fmt == "list" and hasattr(fs, "lstat_entries"):
            for name, st in fs.lstat_entries(vdir, names):
                yield ls_line(fs, join(vdir, name), name, st, now, owners)
            return
        for name in names:
            vpath = join(vdir, name)
            if fmt == "nlst":
                yield name
                continue
            try:
                st = fs.lstat(vpath)
                if fmt == "mlsd" and stat.S_ISLNK(st.st_mode):
                    st = fs.stat(vpath)
            except OSError:
                continue
            if fmt == "list":
                yield ls_line(fs, vpath, name, st, now, owners)
            else:
                yield mlst_facts(name, st, perms, facts or [])

    return _chunks(lines())

