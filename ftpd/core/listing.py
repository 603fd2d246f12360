"""Directory listings: ``ls -l`` lines for LIST, bare names for NLST, RFC 3659 facts
for MLSD/MLST, and the bounded ``*``/``?`` matcher (never ``glob``). Listings are
generators that yield a slice at a time, so a huge directory never stalls the loop."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ftpd.core.errors import FTPError
from ftpd.core.paths import join
from ftpd.fs.base import FileSystem

TEMP_PREFIX = ".ftpd-upload-"  # atomic-upload temporaries: never listed
SLICE = 256  # entries per yielded chunk
MAX_PATTERN = 255
MAX_MATCH_STEPS = 20_000  # one name, when no command budget is given
MATCH_BUDGET = 1_000_000  # steps for one command beyond MATCH_STEPS_PER_CHAR a character
MATCH_STEPS_PER_CHAR = 4
MATCH_SLICE = 10_000  # matching steps per yielded chunk: the loop is never held long

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIX_MONTHS = 180 * 86400


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


class MatchBudget:
    """The steps the ``*``/``?`` matcher may take for one command, over all its names.
    A limit per name is not enough: 2,000 long names at 20,000 steps each blocked the
    loop for seconds. The budget allows a few steps per character listed (what sane
    patterns need) plus a fixed reserve."""

    __slots__ = ("left", "spent")

    def __init__(self, steps: int) -> None:
        self.left, self.spent = steps, 0

    @classmethod
    def for_names(cls, names: list[str]) -> MatchBudget:
        return cls(MATCH_BUDGET + MATCH_STEPS_PER_CHAR * sum(map(len, names)))


def match(pattern: str, name: str, budget: MatchBudget | None = None) -> bool:
    """``*`` and ``?`` matching with a hard step limit: without a *budget*,
    MAX_MATCH_STEPS for this name (False when exceeded); with one, its steps are spent
    and FTPError 550 is raised once it runs out."""
    if len(pattern) > MAX_PATTERN:
        return False
    limit = MAX_MATCH_STEPS if budget is None else budget.left
    ok, steps = _match(pattern, name, limit)
    if budget is not None:
        budget.left -= steps
        budget.spent += steps
        if ok is None:
            raise FTPError(550, "Pattern too costly to match in this directory; "
                                "use a simpler one.")
    return bool(ok)


def _match(pattern: str, name: str, limit: int) -> tuple[bool | None, int]:
    """(matched, steps taken); matched is None when *limit* steps did not suffice."""
    p = n = 0
    star_p, star_n = -1, 0
    steps = 0
    while n < len(name):
        steps += 1
        if steps > limit:
            return None, steps
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
            return False, steps
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern), steps


def visible(name: str) -> bool:
    return not name.startswith(TEMP_PREFIX)


class Hidden:
    """``--hide``: the names (one path component each) matching any of *patterns*, with
    the bounded matcher. A name the matcher cannot decide within MAX_MATCH_STEPS counts
    as hidden: a client must not reach a hidden file by making matching costly. False
    (as a value) when there are no patterns."""

    __slots__ = ("exact", "patterns", "wild")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(patterns)
        self.exact = frozenset(p for p in self.patterns if not has_wildcard(p))
        self.wild = tuple(p for p in self.patterns if has_wildcard(p))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __call__(self, name: str) -> bool:
        if name in self.exact:
            return True
        for pattern in self.wild:
            matched, _ = _match(pattern, name, MAX_MATCH_STEPS)
            if matched is None or matched:
                return True
        return False


NOTHING_HIDDEN = Hidden()


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


def mlst_facts(name: str, st: Any, perms: str, wanted: Sequence[str],
               kind: str | None = None) -> str:
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


def entries(fs: FileSystem, vdir: str, pattern: str | None = None,
            hidden: Hidden = NOTHING_HIDDEN, dots: bool = True) -> list[str]:
    """The names in *vdir* a listing may show, sorted: never an atomic-upload temporary
    nor a *hidden* name, names beginning with ``.`` only with *dots* (``ls -a``). Those
    matching *pattern* if given (at once, under one command's budget; listings match
    lazily instead, see ``list_dir``)."""
    names = sorted(n for n in fs.listdir(vdir)
                   if visible(n) and (dots or n[:1] != ".") and not (hidden and hidden(n)))
    if pattern is not None:
        budget = MatchBudget.for_names(names)
        names = [n for n in names if match(pattern, n, budget)]
    return names


def _batches(names: list[str], pattern: str | None,
             limit: int | None) -> Iterator[list[str]]:
    """*names* in batches of at most SLICE; with a *pattern* only those matching it,
    and a batch also ends after MATCH_SLICE steps of matching, so it may be empty."""
    if pattern is None:
        for i in range(0, len(names), SLICE):
            yield names[i:i + SLICE]
        return
    budget = MatchBudget.for_names(names)
    batch: list[str] = []
    mark, matched = 0, 0
    for name in names:
        if match(pattern, name, budget):
            batch.append(name)
            matched += 1
            if limit is not None and matched > limit:
                raise FTPError(550, f"Directory too large to list (over {limit} entries).")
        if len(batch) >= SLICE or budget.spent - mark >= MATCH_SLICE:
            yield batch
            batch, mark = [], budget.spent
    if batch:
        yield batch


def _lines(fs: FileSystem, vdir: str, names: list[str], fmt: str, perms: str,
           facts: Sequence[str], now: float, prefix: str,
           owners: Owners = numeric_owners) -> list[str]:
    if fmt == "nlst":
        return [prefix + name for name in names]
    if fmt == "list" and hasattr(fs, "lstat_entries"):
        return [ls_line(fs, join(vdir, name), name, st, now, owners)
                for name, st in fs.lstat_entries(vdir, names)]
    out = []
    for name in names:
        vpath = join(vdir, name)
        try:
            st = fs.lstat(vpath)
            if fmt == "mlsd" and stat.S_ISLNK(st.st_mode):
                st = fs.stat(vpath)
        except OSError:  # vanished meanwhile
            continue
        if fmt == "list":
            out.append(ls_line(fs, vpath, name, st, now, owners))
        else:
            out.append(mlst_facts(name, st, perms, facts))
    return out


def list_dir(fs: FileSystem, vdir: str, names: list[str], fmt: str, perms: str = "",
             facts: Sequence[str] | None = None, now: float | None = None, *,
             pattern: str | None = None, prefix: str = "",
             limit: int | None = None, owners: Owners = numeric_owners) -> Iterator[bytes]:
    """Lines for *names* in *vdir* (those matching *pattern*, if given, at most *limit*
    of them), a slice per chunk; entries that vanish are skipped. NLST names carry
    *prefix* (the directory part of a pattern argument, as ``ls dir/*`` prints them).
    A chunk may be empty: a slice of matching found nothing, and the transport serves
    other connections before asking again. Owner names come from *owners*."""
    when = time.time() if now is None else now
    for batch in _batches(names, pattern, limit):
        lines = _lines(fs, vdir, batch, fmt, perms, facts or [], when, prefix, owners)
        yield "".join(line + "\r\n" for line in lines).encode("utf-8", "surrogateescape")
