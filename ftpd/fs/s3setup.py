"""From settings to ``S3FS``es: the options every ``s3://`` root and home share, the check
that the optional client is installed, and the per-login filesystem factory.

Imported only when an ``s3://`` root or home is configured (or a login meets one after a
reload), so an ordinary start loads neither this nor the S3 client."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, NamedTuple

INSTALL_HINT = "s3:// storage needs the S3 client: pip install 'ftpd[s3]'"


class S3Options(NamedTuple):
    endpoint: str | None
    region: str
    part_size: int
    access_key_id: str | None
    secret_access_key: str | None


def client_missing() -> bool:
    """Whether obstore (the extra ``ftpd[s3]``) cannot be imported."""
    try:
        import obstore  # noqa: F401
    except ImportError:
        return True
    return False


def read_secret(path: str) -> str:
    """The secret access key kept in *path* (its first line; OSError if unreadable)."""
    with open(path, encoding="utf-8") as f:
        secret = f.readline().strip()
    if not secret:
        raise OSError(errno.EINVAL, "the file is empty", path)
    return secret


def s3_options(settings: Any) -> S3Options:
    """The S3 settings; credentials left None fall back to ``AWS_*`` in S3FS."""
    secret = None
    if settings.s3_secret_access_key_file:
        secret = read_secret(settings.s3_secret_access_key_file)
    return S3Options(settings.s3_endpoint, settings.s3_region, settings.s3_part_size,
                     settings.s3_access_key_id, secret)


def s3_factory(options: S3Options) -> Callable[[str], Any]:
    """home URL -> its S3FS, made once and shared by every login with that home (an
    ``S3Store`` is safe to share between threads). A missing client is an OSError, so
    that login answers it like any home that is not available."""
    cache: dict[str, Any] = {}

    def make(home: str) -> Any:
        fs = cache.get(home)
        if fs is None:
            try:
                from ftpd.fs.s3 import S3FS
                fs = S3FS.from_url(home, endpoint=options.endpoint, region=options.region,
                                   part_size=options.part_size,
                                   access_key_id=options.access_key_id,
                                   secret_access_key=options.secret_access_key)
            except ImportError:
                from ftpd.fs.s3errors import log

                log.error("%s", INSTALL_HINT)
                raise OSError(errno.ENOSYS, "S3 client not installed", home) from None
            except ValueError as exc:
                raise OSError(errno.EINVAL, str(exc), home) from None
            cache[home] = fs
        return fs

    return make
