"""Starting ftpd on an ``s3://`` root for the end-to-end S3 tests (a module of its own:
``conftest`` is a name every test folder has)."""

from __future__ import annotations

from pathlib import Path

from ftpsupport import FtpdProcess, start_ftpd
from s3support import ACCESS_KEY, SECRET_KEY


def s3_env() -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


def start_s3ftpd(tmp_path: Path, endpoint: str, root: str, *extra: str,
                 env: dict[str, str] | None = None) -> FtpdProcess:
    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        argv = ["-l", f"127.0.0.1:{ports[0]}", "-r", root, "--s3-endpoint", endpoint,
                "-u", "user", "-P", "pw", "--failed-login-delay", "0", "-v", *extra]
        return FtpdProcess(argv, port=ports[0], log_path=tmp_path / f"ftpd-{attempt}.log",
                           env=s3_env() if env is None else env)

    return start_ftpd(spawn)
