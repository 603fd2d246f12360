"""The few S3 requests obstore cannot make, signed here (AWS Signature V4).

obstore (object_store) normalises every key, dropping a trailing ``/``, so it can neither
write nor delete the ``name/`` marker objects that mark an empty directory (SPEC §8, and
the convention the AWS console, rclone and s3fs follow). This module sends those few
requests itself: standard library only, imported with ``ftpd.fs.s3``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from typing import NamedTuple

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class Credentials(NamedTuple):
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(method: str, url: str, headers: dict[str, str], creds: Credentials, region: str,
         payload_sha256: str = EMPTY_SHA256, now: float | None = None) -> dict[str, str]:
    """*headers* plus ``x-amz-date``, ``x-amz-content-sha256``, the session token if any
    and ``Authorization`` for one S3 request to *url* (its path and query already
    percent-encoded)."""
    parts = urllib.parse.urlsplit(url)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    out = {k.lower(): v.strip() for k, v in headers.items()}
    out.setdefault("host", parts.netloc)
    out["x-amz-date"] = stamp
    out["x-amz-content-sha256"] = payload_sha256
    if creds.session_token:
        out["x-amz-security-token"] = creds.session_token
    names = sorted(out)
    query = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical = "\n".join([
        method,
        parts.path or "/",
        "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query),
        "".join(f"{n}:{out[n]}\n" for n in names),
        ";".join(names),
        payload_sha256,
    ])
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + creds.secret_access_key).encode()
    for part in (stamp[:8], region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key_id}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def key_url(base: str, key: str) -> str:
    """*base* (``http://host:port/bucket`` or ``https://bucket.host``) joined with the
    percent-encoded *key*; ``/`` inside the key is kept, as S3 expects."""
    return base.rstrip("/") + "/" + urllib.parse.quote(key, safe="/-_.~")


def request(method: str, url: str, creds: Credentials | None, region: str, *,
            timeout: float, body: bytes = b"",
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send one request, signed unless *creds* is None (a public bucket); (status, body).
    Network failures raise ``OSError`` (``TimeoutError`` for a timeout)."""
    import http.client  # ~25 ms (email parsing); only when a marker is written

    parts = urllib.parse.urlsplit(url)
    all_headers = dict(headers or {}, **{"content-length": str(len(body))})
    if creds is not None:
        all_headers = sign(method, url, all_headers, creds, region,
                           hashlib.sha256(body).hexdigest())
    conn_type = http.client.HTTPSConnection if parts.scheme == "https" else \
        http.client.HTTPConnection
    conn = conn_type(parts.netloc, timeout=timeout)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request(method, target, body=body, headers=all_headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()
