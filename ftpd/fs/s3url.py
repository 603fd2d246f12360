"""``s3://BUCKET[/PREFIX]`` URLs, checked without importing the S3 client: the settings
and the users file validate roots and homes with this alone (lean start-up)."""

from __future__ import annotations


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` -> (bucket, prefix); ValueError naming what is wrong."""
    import re
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "s3" or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{url!r}: expected s3://BUCKET[/PREFIX]")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", parts.netloc):
        raise ValueError(f"{url!r}: {parts.netloc!r} is not a valid S3 bucket name")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError(f"{url!r}: must not contain control characters")
    return parts.netloc, parts.path.strip("/")
