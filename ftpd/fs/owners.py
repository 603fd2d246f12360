"""Owner and group names for ``ls -l`` lines, from the system's user and group
databases (``pwd``/``grp``), cached. Injected into the core as
``SessionConfig.owner_names`` (the core itself only knows numbers); called from the
worker pool, where a slow NSS look-up (LDAP, NIS) blocks nobody else."""

from __future__ import annotations

_cache: dict[tuple[int, int], tuple[str, str]] = {}


def owner_names(uid: int, gid: int) -> tuple[str, str]:
    """(user name, group name) for *uid*/*gid*; the number when there is no name."""
    names = _cache.get((uid, gid))
    if names is None:
        if len(_cache) > 4096:
            _cache.clear()
        names = _cache[uid, gid] = (_user(uid), _group(gid))
    return names


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def _group(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (KeyError, ImportError):
        return str(gid)
