"""The virtual-users file: TOML, scrypt hashes only, validated whole before it is used.

A bad file never replaces a good one: loading either yields every user or raises
``UsersFileError`` with one line naming the file, the user and the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ftpd.auth.base import ALL_PERMS, Account

SCHEME = "scrypt"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32

# Limits on what a stored hash may ask of us, so a typo cannot stall a worker or eat memory.
_MAX_N = 2**20
_MAX_R = 64
_MAX_P = 16
_MAXMEM = 2**28  # bytes scrypt may use; 128*r*(n+p+2) must fit

USER_KEYS = ("password", "home", "perm")
LIMIT_KEYS = ("max-rate", "max-sessions", "quota")  # optional; see UserEntry

# Verified when the user does not exist, so a miss costs as much as a wrong password.
_DUMMY_HASH = ("scrypt$16384$8$1$IkI+bWgBw36Oc5WVT2KK3w==$"
               "tN/jKaOG6HGLC0fXSPUvix4UtWB6kDaplzVreCTFLs8=")


class UsersFileError(ValueError):
    """The users file cannot be used; the message is one line naming file, user and key."""


@dataclass(frozen=True)
class UserEntry:
    """One ``[users.NAME]`` table: an scrypt hash, an absolute home, permission letters,
    and optional limits (None: not set). ``max_rate`` is bytes per second per direction
    per session (0: unlimited, even under ``--max-rate``); ``max_sessions`` concurrent
    sessions; ``quota`` bytes of storage under the home."""

    password: str
    home: str
    perm: str = "elr"
    max_rate: int | None = None
    max_sessions: int | None = None
    quota: int | None = None

    def limits(self) -> dict[str, int]:
        """The limits that are set, by users-file key."""
        values = {"max-rate": self.max_rate, "max-sessions": self.max_sessions,
                  "quota": self.quota}
        return {key: value for key, value in values.items() if value is not None}


# ---------------------------------------------------------------- passwords


def _encode_pw(pw: str) -> bytes:
    # The control connection decodes with surrogateescape; undo it to get the client's bytes.
    return pw.encode("utf-8", "surrogateescape")


def hash_password(pw: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """An ``scrypt$n$r$p$salt$hash`` string: the parameters travel with the hash so they
    can be raised later without invalidating old entries."""
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.scrypt(_encode_pw(pw), salt=salt, n=n, r=r, p=p,
                            dklen=HASH_BYTES, maxmem=_MAXMEM)
    return "$".join((SCHEME, str(n), str(r), str(p),
                     base64.b64encode(salt).decode("ascii"),
                     base64.b64encode(digest).decode("ascii")))


def _parse_hash(encoded: object) -> tuple[int, int, int, bytes, bytes] | None:
    """(n, r, p, salt, digest) of a well-formed hash within our limits, else None."""
    if not isinstance(encoded, str):
        return None
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    if not all(part.isascii() and part.isdigit() for part in parts[1:4]):
        return None
    n, r, p = (int(part) for part in parts[1:4])
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if 128 * r * (n + p + 2) > _MAXMEM:
        return None
    try:
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def verify_password(pw: str, encoded: str) -> bool:
    """True only if *pw* matches *encoded*; a malformed or unknown hash is simply False."""
    parsed = _parse_hash(encoded)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    try:
        candidate = hashlib.scrypt(_encode_pw(pw), salt=salt, n=n, r=r, p=p,
                                   dklen=len(digest), maxmem=_MAXMEM)
    except (ValueError, MemoryError, OverflowError):
        return False
    return hmac.compare_digest(candidate, digest)


# ---------------------------------------------------------------- validation


def check_username(name: object) -> str | None:
    """Why *name* cannot be a user name, or None if it can."""
    if not isinstance(name, str) or not name:
        return "user name must be a non-empty string"
    if name != name.strip():
        return "user name must not start or end with white space"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "user name must not contain control characters"
    if len(name) > 255:
        return "user name is longer than 255 characters"
    return None


def check_home(home: object) -> str | None:
    """Why *home* cannot be a home directory, or None if it can."""
    if not isinstance(home, str):
        return f"must be a string, not {_toml_type(home)}"
    if home.startswith("s3://"):  # a prefix in a bucket (SPEC 8); checked without obstore
        from ftpd.fs.s3url import parse_s3_url

        try:
            parse_s3_url(home)
        except ValueError as exc:
            return str(exc)
        return None
    if not os.path.isabs(home):
        return f"must be an absolute path or s3://BUCKET[/PREFIX], not {home!r}"
    if any(ord(c) < 32 or ord(c) == 127 for c in home):
        return "must not contain control characters"
    return None


def check_perm(perm: object) -> str | None:
    """Why *perm* is not a string of known permission letters, or None."""
    if not isinstance(perm, str):
        return f"must be a string, not {_toml_type(perm)}"
    for letter in perm:
        if letter not in ALL_PERMS:
            return f"unknown permission letter {letter!r} (known: {ALL_PERMS})"
    return None


def check_limit(key: str, value: object) -> tuple[int | None, str | None]:
    """(the value of limit *key*, None) or (None, why it cannot be one). ``max-rate`` and
    ``quota`` are sizes (``"1M"``, ``"10G"``: K/M/G/T are powers of 1024, or an integer
    of bytes); ``max-sessions`` an integer. Only ``max-rate`` may be 0 (unlimited)."""
    from ftpd.sizes import parse_size

    if key == "max-sessions":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"must be an integer, not {_toml_type(value)}"
        number = value
    else:
        try:
            number = parse_size(value)
        except ValueError as exc:
            return None, str(exc)
    if number < (0 if key == "max-rate" else 1):
        return None, "must be at least " + ("0" if key == "max-rate" else "1")
    return number, None


def _toml_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string",
             dict: "table", list: "array"}
    return names.get(type(value), type(value).__name__)


def _entry(where: str, name: str, table: object) -> UserEntry:
    if not isinstance(table, dict):
        raise UsersFileError(f"{where}: users.{name}: must be a table, not {_toml_type(table)}")
    problem = check_username(name)
    if problem:
        raise UsersFileError(f"{where}: users.{name!r}: {problem}")
    for key in table:
        if key not in USER_KEYS + LIMIT_KEYS:
            raise UsersFileError(f"{where}: users.{name}.{key}: unknown key "
                                 f"(known: {', '.join(USER_KEYS + LIMIT_KEYS)})")
    for key in USER_KEYS:
        if key not in table:
            raise UsersFileError(f"{where}: users.{name}.{key}: missing")
    password, home, perm = table["password"], table["home"], table["perm"]
    if not isinstance(password, str):
        raise UsersFileError(f"{where}: users.{name}.password: must be a string, "
                             f"not {_toml_type(password)}")
    if not password.startswith(SCHEME + "$"):
        raise UsersFileError(f"{where}: users.{name}.password: must be an scrypt hash "
                             "(scrypt$...), as ftpd-passwd writes; never a plain password")
    if _parse_hash(password) is None:
        raise UsersFileError(f"{where}: users.{name}.password: malformed scrypt hash")
    for key, problem in (("home", check_home(home)), ("perm", check_perm(perm))):
        if problem:
            raise UsersFileError(f"{where}: users.{name}.{key}: {problem}")
    limits: dict[str, int | None] = {}
    for key in LIMIT_KEYS:
        if key in table:
            limits[key], problem = check_limit(key, table[key])
            if problem:
                raise UsersFileError(f"{where}: users.{name}.{key}: {problem}")
    return UserEntry(password, home, perm, limits.get("max-rate"), limits.get("max-sessions"),
                     limits.get("quota"))


def parse_users(text: str, where: str = "<users>") -> dict[str, UserEntry]:
    """Validate TOML *text*; *where* names the file in error messages."""
    import tomllib  # lazily: start-up time matters and most servers have no users file

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"{where}: {exc}") from None
    for key in doc:
        if key != "users":
            raise UsersFileError(f"{where}: {key}: unknown key (expected [users.NAME] tables)")
    tables = doc.get("users", {})
    if not isinstance(tables, dict):
        raise UsersFileError(f"{where}: users: must be a table, not {_toml_type(tables)}")
    return {name: _entry(where, name, table) for name, table in tables.items()}


def load_users(path: str | os.PathLike[str], *, missing_ok: bool = False) -> dict[str, UserEntry]:
    """Read and validate the users file. A missing file is an error unless *missing_ok*
    (then it holds no users), so a typo in ``--users`` is never silently an empty list."""
    where = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise UsersFileError(f"{where}: no such file") from None
    except OSError as exc:
        raise UsersFileError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsersFileError(f"{where}: not UTF-8 (byte {exc.start})") from None
    return parse_users(text, where)


# ---------------------------------------------------------------- saving


def dump_users(users: Mapping[str, UserEntry]) -> str:
    """The TOML text for *users*; refuses anything that is not an scrypt hash."""
    import tomli_w

    from ftpd.sizes import format_size

    tables: dict[str, dict[str, str | int]] = {}
    for name in sorted(users):
        entry = users[name]
        if _parse_hash(entry.password) is None:
            raise ValueError(f"users.{name}.password: not an scrypt hash; refusing to write it")
        tables[name] = {"password": entry.password, "home": entry.home, "perm": entry.perm}
        for key, value in entry.limits().items():
            tables[name][key] = value if key == "max-sessions" else format_size(value)
    return tomli_w.dumps({"users": tables})


def save_users(path: str | os.PathLike[str], users: Mapping[str, UserEntry]) -> None:
    """Write *users* atomically: readers (a reloading server) see the old file or the new
    one, never half of one. A new file is mode 0600; an existing file keeps its owner,
    group (when we may set them) and its owner and group permission bits, so a server
    running ``--run-as`` an account that reads it through its group still can after the
    rewrite. Permission bits for others are dropped: the file holds password hashes."""
    import tempfile  # lazily, like tomllib: only ftpd-passwd writes

    data = dump_users(users).encode("utf-8")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    fd, tmp = tempfile.mkstemp(prefix=".users.", suffix=".tmp", dir=directory)
    try:
        if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, old.st_uid, old.st_gid)
            except PermissionError:
                pass
        os.fchmod(fd, 0o600 if old is None else old.st_mode & 0o770)
        with open(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)  # make the rename itself durable
    except OSError:
        pass
    finally:
        os.close(dfd)


# ---------------------------------------------------------------- the authorizer


class UsersFileAuthorizer:
    """Authenticates against the users file; ``reload()`` swaps in a new file only if valid.

    Readers take one reference to the current dict and never see it change, so concurrent
    ``authenticate`` calls from worker threads need no lock while ``reload`` swaps it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._users: dict[str, UserEntry] = load_users(path)

    @property
    def users(self) -> Mapping[str, UserEntry]:
        """The users as last loaded (read-only)."""
        return MappingProxyType(self._users)

    def reload(self) -> None:
        """Re-read the file; on UsersFileError the old users stay in force."""
        self._users = load_users(self.path)

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account, or None; always pays for one scrypt so timing hides who exists."""
        entry = self._users.get(username)
        if entry is None:
            verify_password(password, _DUMMY_HASH)
            return None
        if not verify_password(password, entry.password):
            return None
        return Account(username, entry.home, entry.perm, max_rate=entry.max_rate,
                       max_sessions=entry.max_sessions or 0, quota=entry.quota or 0)
