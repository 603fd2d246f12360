"""The one settings table. Every option has one entry (name, type, default, help,
validation); the click options, the TOML ``--config`` loader, ``--help`` and the man
page all follow from it. The command line wins over the file."""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Callable

TYPE_CHECKING = False  # not ``typing``'s: importing it costs ~6 ms per inetd start
if TYPE_CHECKING:
    from typing import Any


class ConfigError(ValueError):
    """A bad option or config key: one line naming it (exit 2)."""


# -- value parsers: str (from the command line) or TOML value -> typed value ---------------
def _number(cast: Callable[[Any], Any], low: float | None = 0) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            number = cast(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if low is not None and number < low:
            raise ValueError(f"must be at least {low}")
        return number

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _address(value: Any) -> tuple[str, int]:
    from ftpd.launch.standalone import parse_address

    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return parse_address(_str(value))


def _metrics_address(value: Any) -> tuple[str, int]:
    """Like --listen, but a bare PORT is loopback: metrics are for the operator."""
    from ftpd.launch.standalone import parse_address

    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return parse_address(_str(value), default_host="127.0.0.1")


MAX_WORKERS = 64


def _workers(value: Any) -> int:
    number = _number(int, 1)(value)
    if number > MAX_WORKERS:
        raise ValueError(f"must be at most {MAX_WORKERS}")
    return number


def _port_range(value: Any) -> range:
    low, sep, high = _str(value).partition("-")
    if not (sep and low.isdigit() and high.isdigit()):
        raise ValueError(f"expected LOW-HIGH, got {value!r}")
    lo, hi = int(low), int(high)
    if not 1024 <= lo <= hi <= 65535:
        raise ValueError("ports must satisfy 1024 <= LOW <= HIGH <= 65535")
    return range(lo, hi + 1)


def _ip(value: Any) -> str:
    import ipaddress

    return str(ipaddress.ip_address(_str(value)))


def _network(value: Any) -> Any:
    from ftpd.access import parse_network

    return parse_network(_str(value))


def check_banner(value: Any) -> str:
    text = _str(value)
    if not text.strip():
        raise ValueError("must not be empty")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in text):
        raise ValueError("must not contain control characters")
    return text


def _umask(value: Any) -> int:
    # A TOML integer is ambiguous (22 is not 022, 0o22 is not visibly octal): refused.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('write it as a quoted octal string, e.g. umask = "022"')
    try:
        number = int(_str(value), 8)
    except ValueError:
        raise ValueError(f"expected an octal mode like 022, got {value!r}") from None
    if not 0 <= number <= 0o777:
        raise ValueError("must be between 000 and 777")
    return number


def _server_id(value: Any) -> str:
    text = _str(value)
    if not 0 < len(text) <= 64 or not text.isprintable() or any(c.isspace() for c in text):
        raise ValueError(f"expected 1 to 64 printable characters without spaces, got {value!r}")
    return text


def _drop_box(value: Any) -> str:
    """A virtual directory below the anonymous root: ``incoming`` is ``/incoming``."""
    from ftpd.core.paths import resolve

    text = _str(value)
    if "\0" in text:
        raise ValueError("contains a NUL byte")
    vdir = resolve("/", text)
    if vdir == "/":
        raise ValueError("must be a directory below the root, e.g. /incoming")
    return vdir


def _name_pattern(value: Any) -> str:
    """One path component, ``*`` and ``?`` allowed (the bounded matcher's limit)."""
    from ftpd.core.listing import MAX_PATTERN

    text = _str(value)
    if not text or text in (".", "..") or "/" in text or "\0" in text:
        raise ValueError(f"expected a file name pattern without '/', got {value!r}")
    if len(text) > MAX_PATTERN:
        raise ValueError(f"longer than {MAX_PATTERN} characters")
    return text


def _size(value: Any) -> int:
    from ftpd.sizes import parse_size

    return parse_size(value)


def _part_size(value: Any) -> int:
    """A size (``8M``, ``8MiB``, bytes; ``ftpd.sizes``); S3's floor of 5 MiB."""
    number = _size(value)
    if number < 5 << 20:
        raise ValueError("must be at least 5M (S3's smallest part)")
    return number


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if _str(value) not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    parse.choices = choices  # type: ignore[attr-defined]
    return parse


def _pam_service(value: Any) -> str | None:
    """``--pam`` alone (or ``pam = true``) is the service ``ftpd``; false turns it off."""
    if isinstance(value, bool):
        return "ftpd" if value else None
    text = _str(value)
    if not text or "/" in text or text.startswith(".") or not text.isprintable():
        raise ValueError(f"expected a PAM service name (a file of /etc/pam.d), got {value!r}")
    return text


class Setting(namedtuple("Setting", (
        "name", "parse", "default", "help", "short", "flag", "multiple", "metavar", "env",
        "in_file", "section", "bare"),
        defaults=(None, False, False, None, None, True, "Serving", None))):
    """One option. ``name``: the long option and TOML key; ``parse``: raw value -> typed
    value (ValueError when bad); ``in_file``: may appear in the TOML file; ``bare``: not
    None when the value may be left out (``--pam`` alone means this). A
    ``collections.namedtuple``, not a ``typing.NamedTuple``: ``typing`` is kept off the
    ``ftpd -I`` start-up path."""

    __slots__ = ()


S = Setting
SETTINGS: list[Setting] = [
    S("listen", _address, [("0.0.0.0", 2121)], "Listen on PORT, HOST:PORT or [V6]:PORT "
      "(repeatable; default 0.0.0.0:2121).", short="l", multiple=True, metavar="ADDR"),
    S("root", _str, None, "Directory or s3://BUCKET[/PREFIX] served to anonymous users "
      "(default: the current directory).", short="r", metavar="DIR"),
    S("write", _bool, False, "Anonymous users may also write.", short="w", flag=True,
      section="Users"),
    S("no-anonymous", _bool, False, "Refuse anonymous logins.", short="n", flag=True,
      section="Users"),
    S("anonymous-upload", _drop_box, None, "A drop box: anonymous users may upload new "
      "files into DIR (a path inside --root, taken from it), nothing else there (no "
      "overwrite, download, listing, delete or rename).", metavar="DIR", section="Users"),
    S("username", _str, None, "One extra full-rights user rooted at --root.", short="u",
      metavar="NAME", section="Users"),
    S("password", _str, None, "Password for --username (or set FTPD_PASSWORD).", short="P",
      metavar="PW", env="FTPD_PASSWORD", section="Users"),
    S("users", _str, None, "Virtual-users file (TOML; see ftpd-passwd(8)).", metavar="FILE",
      section="Users"),
    S("pam", _pam_service, None, "Local accounts log in with their system password, "
      "checked by PAM service SERVICE (default ftpd); each session runs as its account, "
      "rooted at its home (needs root and the ftpd[pam] extra).", metavar="[SERVICE]",
      bare="ftpd", section="Users"),
    S("ftpusers", _str, None, "With --pam: the names in FILE may not log in (default "
      "/etc/ftpusers when it exists); root never may.", metavar="FILE", section="Users"),
    S("idle-timeout", _number(float), 0.0, "Exit 0 after SEC seconds with no client "
      "connected (0 = never).", short="t", metavar="SEC", section="Launching"),
    S("timeout", _number(float), 300.0, "Control connection idle timeout: 421, then close.",
      metavar="SEC", section="Limits"),
    S("data-timeout", _number(float), 300.0, "Stalled data connection timeout.",
      metavar="SEC", section="Limits"),
    S("banner", check_banner, None, "Text of the 220 greeting; a newline in it makes a "
      "multi-line 220.", metavar="TEXT"),
    S("banner-file", _str, None, "Read the 220 greeting from FILE (at start-up and on "
      "SIGHUP); one reply line per line.", metavar="FILE"),
    S("passive-ports", _port_range, None, "Passive data ports to use, e.g. 50000-50100.",
      metavar="LOW-HIGH"),
    S("masquerade-address", _ip, None, "Address announced in PASV replies (behind NAT).",
      metavar="IP"),
    S("proxy-protocol", _network, [], "Connections from this address or CIDR (a load "
      "balancer) must begin with a PROXY v1/v2 header; the client it names is the peer "
      "(repeatable).", multiple=True, metavar="ADDR"),
    S("max-connections", _number(int, 1), 512, "Connections served at once; over the cap: "
      "421 and close.", metavar="N", section="Limits"),
    S("max-connections-per-ip", _number(int), 0, "Connections from one address (0 = "
      "unlimited).", metavar="N", section="Limits"),
    S("max-rate", _size, 0, "Bytes per second, each direction, per session, for anonymous "
      "users and users without a max-rate of their own: 512K, 1M (K/M/G are powers of 1024; "
      "0 = unlimited).", metavar="BYTES", section="Limits"),
    S("allow", _network, [], "Accept clients in this address or CIDR (repeatable); once "
      "one is given, others are refused.", multiple=True, metavar="NET", section="Limits"),
    S("deny", _network, [], "Refuse clients in this address or CIDR with 421 (repeatable); "
      "the most specific --allow or --deny wins.", multiple=True, metavar="NET",
      section="Limits"),
    S("max-bad-commands", _number(int, 1), 20, "Consecutive unknown or malformed commands "
      "before 421 and close.", metavar="N", section="Limits"),
    S("s3-endpoint", _str, None, "S3 service for s3:// roots and homes, e.g. "
      "http://127.0.0.1:8333 (default: AWS S3).", metavar="URL", section="S3 storage"),
    S("s3-region", _str, "us-east-1", "S3 region.", metavar="NAME", section="S3 storage"),
    S("s3-part-size", _part_size, 8 << 20, "Part size of multipart uploads (at least 5M; "
      "default 8M).", metavar="SIZE", section="S3 storage"),
    S("s3-access-key-id", _str, None, "S3 access key id (default: AWS_ACCESS_KEY_ID).",
      metavar="ID", section="S3 storage"),
    S("s3-secret-access-key-file", _str, None, "File holding the S3 secret access key "
      "(default: AWS_SECRET_ACCESS_KEY).", metavar="FILE", section="S3 storage"),
    S("umask", _umask, 0o022, "Umask for created files and directories (octal).",
      metavar="MODE"),
    S("failed-login-delay", _number(float), 1.0, "Pause before a 530, doubling per failure "
      "from the same address, capped at 8 s.", metavar="SEC", section="Limits"),
    S("max-login-attempts", _number(int, 1), 3, "Failed logins before the session is closed.",
      metavar="N", section="Limits"),
    S("shutdown-timeout", _number(float), 60.0, "Longest graceful drain on SIGTERM before "
      "remaining sessions are closed.", metavar="SEC", section="Launching"),
    S("hide", _name_pattern, [], "Names matching PATTERN (* and ?, e.g. .git or *.part) "
      "are never listed and are refused for every command, as if missing (repeatable).",
      multiple=True, metavar="PATTERN"),
    S("atomic-uploads", _bool, False, "STOR writes to a hidden temporary name and renames "
      "it on success.", flag=True),
    S("permit-foreign-addresses", _bool, False, "Allow PORT/EPRT to another address than "
      "the client's (FXP).", flag=True, section="Limits"),
    S("inetd", _bool, False, "inetd no-wait: fd 0 is the connected control socket; serve it "
      "and exit when it closes.", short="I", flag=True, in_file=False, section="Launching"),
    S("inetd-wait", _bool, False, "inetd wait: fd 0 is a listening socket; accept on it (with "
      "--idle-timeout to give it back).", short="W", flag=True, in_file=False,
      section="Launching"),
    S("launchd-socket", _str, None, "macOS: serve the named socket of the launchd job "
      "(launch_activate_socket).", metavar="NAME", section="Launching"),
    S("workers", _workers, 1, "Serve with N processes, each its own loop on the same "
      "listening sockets (standalone, -W, systemd Accept=no); the caps, --idle-timeout, "
      "SIGTERM and SIGHUP apply to them all.", metavar="N", section="Launching"),
    S("daemon", _bool, False, "Detach into the background (python-daemon).", short="d",
      flag=True, section="Launching"),
    S("pidfile", _str, None, "With --daemon: write and lock this pid file (removed on exit).",
      metavar="FILE", section="Launching"),
    S("run-as", _str, None, "Drop root to USER[:GROUP] once the sockets are bound.",
      metavar="USER[:GROUP]", section="Launching"),
    S("tls-cert", _str, None, "Certificate chain (PEM) for FTPS.", metavar="FILE",
      section="TLS"),
    S("tls-key", _str, None, "Private key (PEM) for FTPS (default: the certificate file).",
      metavar="FILE", section="TLS"),
    S("tls", _choice("off", "explicit", "required"), None, "FTPS mode: off, explicit (AUTH "
      "TLS offered) or required (non-anonymous logins and their data must be protected); "
      "default explicit once a certificate is given.", metavar="MODE", section="TLS"),
    S("tls-anonymous", _bool, False, "With --tls required: anonymous users must use TLS "
      "too.", flag=True, section="TLS"),
    S("tls-reuse", _choice("required", "optional"), "required", "A protected data connection "
      "must resume the control connection's TLS session (required), or need not (optional, "
      "for clients that cannot).", metavar="POLICY", section="TLS"),
    S("implicit-listen", _address, [], "Implicit FTPS (TLS from the first byte) on this "
      "address (repeatable).", multiple=True, metavar="ADDR", section="TLS"),
    S("implicit", _bool, False, "Under -I/-W: the inherited socket speaks implicit FTPS.",
      flag=True, section="TLS"),
    S("event-sink", _str, [], "Send NcFTPd-format events to udp:HOST:PORT, "
      "mqueue:KEY[,perm=MODE] or redis://HOST:PORT/STREAM[?maxlen=N] (repeatable).",
      multiple=True, metavar="SPEC", section="Events"),
    S("server-id", _server_id, None, "This server's name in the log, in events sent to "
      "Redis and mixed into session ids (default: the host name).", metavar="NAME",
      section="Events"),
    S("xferlog", _str, None, "Write one wu-ftpd/ProFTPD xferlog line per transfer.",
      metavar="FILE", section="Events"),
    S("metrics", _metrics_address, None, "Serve Prometheus metrics over HTTP on HOST:PORT or "
      "[V6]:PORT (PORT alone: 127.0.0.1); needs ftpd[metrics].", metavar="ADDR",
      section="Events"),
    S("log", _str, "auto", "Where logs go: auto, stderr, syslog, journal or a FILE.",
      metavar="WHERE", section="Logging"),
    S("verbose", _bool, False, "Log more (each command).", short="v", flag=True,
      section="Logging"),
    S("quiet", _bool, False, "Log warnings and errors only.", short="q", flag=True,
      section="Logging"),
    S("config", _str, None, "TOML config file: a key per long option; the command line "
      "wins.", short="c", metavar="FILE", in_file=False),
]
BY_NAME = {s.name: s for s in SETTINGS}


def negation(setting: Setting) -> str | None:
    """The long option that turns a flag off again, over a true value in the config
    file: ``--no-write``, and ``--anonymous`` for ``--no-anonymous``. Flags that cannot
    be in the file (``-I``, ``-W``) have none."""
    if not setting.flag or not setting.in_file:
        return None
    return setting.name[3:] if setting.name.startswith("no-") else f"no-{setting.name}"


def key(name: str) -> str:
    """The Python attribute name of a setting."""
    return name.replace("-", "_")


class Settings(dict):
    """Resolved settings; attribute access by the option name with ``_``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _parse(setting: Setting, value: Any, where: str) -> Any:
    try:
        if setting.multiple:
            values = value if isinstance(value, list | tuple) else [value]
            return [setting.parse(v) for v in values]
        return setting.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_file(path: str) -> dict[str, Any]:
    """Read and validate a TOML config file: unknown keys and bad values are errors."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in EXTRA_KEYS:
            values[key(name)] = EXTRA_KEYS[name](value, f"{path}: {name}")
            continue
        setting = BY_NAME.get(name)
        if setting is None or not setting.in_file:
            raise ConfigError(f"{path}: unknown key {name!r}")
        values[key(name)] = _parse(setting, value, f"{path}: {name}")
    return values


def _modules(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of module names")
    return value


EXTRA_KEYS: dict[str, Callable[[Any, str], Any]] = {"modules": _modules}


PATH_SETTINGS = ("root", "users", "ftpusers", "banner_file", "s3_secret_access_key_file",
                 "xferlog", "tls_cert", "tls_key", "pidfile", "config")
LOG_DESTINATIONS = ("auto", "stderr", "syslog", "journal")  # anything else is a file


def is_s3_url(value: Any) -> bool:
    """An object-store root or home (``s3://BUCKET[/PREFIX]``) rather than a directory."""
    return isinstance(value, str) and value.startswith("s3://")


def _absolute(settings: Settings, cwd: str) -> None:
    """Relative paths are relative to where ftpd was started, not to where it is now:
    a daemon runs in /, and a SIGHUP reload must find the same files."""
    if settings.root is None:
        settings["root"] = cwd
    for name in PATH_SETTINGS:
        value = settings.get(name)
        if isinstance(value, str) and value and not os.path.isabs(value) \
                and not is_s3_url(value):
            settings[name] = os.path.join(cwd, value)
    if settings.log not in LOG_DESTINATIONS and not os.path.isabs(settings.log):
        settings["log"] = os.path.join(cwd, settings.log)


def resolve(cli: dict[str, Any], cwd: str | None = None) -> Settings:
    """Merge defaults, the config file and the command line (which wins).

    *cli* maps attribute names to raw command-line values, None (or an empty tuple)
    where the option was not given. Relative paths are taken from *cwd* (default: the
    current directory)."""
    cwd = cwd or os.getcwd()
    settings = Settings({key(s.name): s.default for s in SETTINGS})
    settings["modules"] = []
    config_path = cli.get("config")
    if config_path:
        settings.update(load_file(os.path.join(cwd, config_path)))
    for s in SETTINGS:
        raw = cli.get(key(s.name))
        if raw is None or (s.multiple and not raw):
            if s.env and os.environ.get(s.env) and settings[key(s.name)] is None:
                settings[key(s.name)] = _parse(s, os.environ[s.env], s.env)
            continue
        settings[key(s.name)] = _parse(s, list(raw) if s.multiple else raw, f"--{s.name}")
    _absolute(settings, cwd)
    check(settings)
    return settings


def _check_sink(spec: str) -> None:
    """Validate an --event-sink spec's syntax without opening it."""
    scheme, sep, rest = spec.partition(":")
    if scheme == "redis":
        from ftpd.events.redisurl import parse_url

        try:
            parse_url(spec)
        except ValueError as exc:
            raise ConfigError(f"--event-sink {exc}") from None
        return
    if scheme not in ("udp", "mqueue") or not sep or not rest:
        raise ConfigError(f"--event-sink {spec!r}: expected udp:HOST:PORT, "
                          "mqueue:KEY[,perm=MODE] or redis://HOST:PORT/STREAM")


def _check_s3_root(url: str) -> None:
    """The URL's syntax, without importing the S3 client."""
    from ftpd.fs.s3url import parse_s3_url

    try:
        parse_s3_url(url)
    except ValueError as exc:
        raise ConfigError(f"--root {exc}") from None


def _check_pam(settings: Settings) -> None:
    """--pam switches each session to its account: only root can."""
    if settings.ftpusers and not settings.pam:
        raise ConfigError("--ftpusers needs --pam")
    if not settings.pam:
        return
    if settings.run_as:
        raise ConfigError("--pam and --run-as exclude each other: --pam needs root to "
                          "become each account")
    if settings.get("metrics"):
        raise ConfigError("--pam and --metrics exclude each other: each session runs in a "
                          "process of its own, which the metrics do not see")
    if os.geteuid() != 0:
        raise ConfigError("--pam needs root (to check passwords and become each account)")


def _check_workers(settings: Settings) -> None:
    """--workers above 1: what cannot be shared between worker processes."""
    if settings.workers <= 1:
        return
    if settings.inetd:
        raise ConfigError("--workers cannot be used with -I (inetd no-wait): a process per "
                          "connection has no listening socket to share")
    if settings.pam:
        raise ConfigError("--workers and --pam exclude each other: --pam already serves "
                          "each session in a process of its own")
    if settings.get("metrics"):
        raise ConfigError("--workers and --metrics exclude each other: each worker has its "
                          "own registry, and the endpoint would show one worker's")


def check(settings: Settings) -> None:
    """Rules between settings."""
    if settings.username and not settings.password:
        raise ConfigError("--username needs --password (or FTPD_PASSWORD)")
    if settings.password and not settings.username:
        raise ConfigError("--password needs --username")
    if settings.anonymous_upload and settings.no_anonymous:
        raise ConfigError("--anonymous-upload needs anonymous logins (not --no-anonymous)")
    if settings.verbose and settings.quiet:
        raise ConfigError("--verbose and --quiet exclude each other")
    for spec in settings.event_sink:
        _check_sink(spec)
    if settings.server_id is None:
        settings["server_id"] = os.uname().nodename
    if settings.tls is None:
        settings["tls"] = "explicit" if settings.tls_cert else "off"
    if settings.tls != "off" and not settings.tls_cert:
        raise ConfigError(f"--tls {settings.tls} needs --tls-cert")
    if (settings.implicit_listen or settings.implicit) and not settings.tls_cert:
        raise ConfigError("implicit FTPS needs --tls-cert")
    if (settings.implicit_listen or settings.implicit) and settings.tls == "off":
        raise ConfigError("implicit FTPS cannot be used with --tls off")
    if settings.banner is not None and settings.banner_file:
        raise ConfigError("--banner and --banner-file exclude each other")
    if settings.inetd and settings.inetd_wait:
        raise ConfigError("--inetd and --inetd-wait exclude each other")
    _check_pam(settings)
    _check_workers(settings)
    if settings.pidfile and not settings.daemon:
        raise ConfigError("--pidfile needs --daemon")
    if is_s3_url(settings.root):
        _check_s3_root(settings.root)
    if settings.run_as:
        from ftpd.launch.daemon import parse_run_as

        try:
            parse_run_as(settings.run_as)
        except ValueError as exc:
            raise ConfigError(f"--run-as: {exc}") from None
