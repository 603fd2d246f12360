"""The SigV4 signer for the requests obstore cannot make, and the mapping of store
errors to errnos (no server needed)."""

from __future__ import annotations

import calendar
import errno

import pytest

from ftpd.core.errors import reply_for_oserror
from ftpd.fs import s3sign
from ftpd.fs.s3errors import store_error


def test_signature_matches_the_aws_documented_example():
    """AWS's S3 SigV4 example: GET /test.txt with Range: bytes=0-9 on examplebucket."""
    creds = s3sign.Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    headers = s3sign.sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                          {"Range": "bytes=0-9"}, creds, "us-east-1",
                          now=calendar.timegm((2013, 5, 24, 0, 0, 0)))
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_session_token_is_sent_and_signed():
    creds = s3sign.Credentials("id", "secret", "token")
    headers = s3sign.sign("PUT", "http://127.0.0.1:1/b/k/", {}, creds, "us-east-1")
    assert headers["x-amz-security-token"] == "token"
    assert "x-amz-security-token" in headers["authorization"]


def test_key_url_keeps_slashes_and_encodes_the_rest():
    assert s3sign.key_url("http://h:1/b", "a b/c+d/") == "http://h:1/b/a%20b/c%2Bd/"


class GenericError(Exception):
    pass


def test_store_errors_map_to_errnos_the_core_answers():
    cases = [("Server returned non-2xx status code: 403 Forbidden", errno.EACCES, 550),
             ("Server returned non-2xx status code: 404 Not Found", errno.ENOENT, 550),
             ("Server returned non-2xx status code: 503 Slow Down", None, 451),
             ("HTTP error: error sending request", errno.ETIMEDOUT, 451)]
    for text, code, reply in cases:
        exc = store_error(GenericError(text + "\n\nDebug source: ..."), "LIST", "/x")
        assert code is None or exc.errno == code
        assert reply_for_oserror(exc)[0] == reply
        assert "\n" not in exc.strerror


def test_s3_urls():
    from ftpd.fs.s3 import parse_s3_url

    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://my.bucket-1/some/prefix/") == ("my.bucket-1", "some/prefix")
    for bad in ("http://bucket/x", "s3://", "s3://Upper", "s3://a", "s3://b?x=1",
                "s3://user@bucket", "s3://under_score"):
        with pytest.raises(ValueError, match="s3://"):
            parse_s3_url(bad)


def test_malformed_endpoints_are_refused_before_any_request():
    from ftpd.fs.s3 import S3FS

    for bad in ("not a url", "ftp://host", "http://", "http://host:99999", "http://h/path",
                "http://user@host", "http://ho st:1"):
        with pytest.raises(ValueError, match="endpoint"):
            S3FS("bucket", endpoint=bad, access_key_id="k", secret_access_key="s")
    S3FS("bucket", endpoint="http://127.0.0.1:8333/", access_key_id="k", secret_access_key="s")
    S3FS("bucket", endpoint="https://[::1]:8333", access_key_id="k", secret_access_key="s")


def test_requests_are_signed_unless_anonymous():
    import http.server
    import threading

    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802 (the http.server API)
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    url = s3sign.key_url(f"http://127.0.0.1:{server.server_port}/b", "dir/")
    try:
        assert s3sign.request("PUT", url, None, "us-east-1", timeout=5)[0] == 200
        thread.join(10)
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        creds = s3sign.Credentials("id", "secret")
        assert s3sign.request("PUT", url, creds, "us-east-1", timeout=5)[0] == 200
        thread.join(10)
    finally:
        server.server_close()
    assert "authorization" not in seen[0]
    assert seen[1]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=id/")
