"""Support for the real-client matrix (rclone, aria2c, basic-ftp, aioftp): a test CA
and server certificate (trustme), ftpd started plain, with explicit FTPS (AUTH TLS) or
with an implicit-FTPS listener as well, a test tree with awkward names, and a bounded
runner for client commands.

Every wait has a deadline; nothing retries a test."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fhelpers import tree_digest
from ftpsupport import FtpdProcess, netloc, start_ftpd

USER, PASSWORD = "user", "pw"
CLIENT_TIMEOUT = 60.0  # seconds: one client run (a whole tree, several connections)
MODES = ("plain", "explicit", "implicit")


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA certificate clients trust
    cert: Path  # the server certificate chain
    key: Path  # its private key


def make_certs(directory: Path) -> Certs:
    """A fresh CA and a certificate for 127.0.0.1, localhost and ::1 signed by it."""
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost", "::1")
    certs = Certs(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(certs.ca))
    for i, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(certs.cert), append=i > 0)
    issued.private_key_pem.write_to_path(str(certs.key))
    return certs


class ClientFtpd(FtpdProcess):
    """ftpd serving *root*; ``port`` is the plain/AUTH TLS listener, ``implicit_port``
    the implicit-FTPS one (when started with ``mode="implicit"``). ``client_port`` is
    the one a client of *mode* connects to."""

    def __init__(self, args: list[str], *, root: Path, mode: str,
                 implicit_port: int | None, **kwargs) -> None:
        super().__init__(args, **kwargs)
        self.root, self.mode, self.implicit_port = root, mode, implicit_port

    @property
    def client_port(self) -> int:
        if self.mode == "implicit":
            assert self.implicit_port is not None
            return self.implicit_port
        return self.port

    def finish(self) -> list[str]:
        """Stop by pid; what went wrong (a bad exit status, a traceback in the log)."""
        problems = []
        was_running = not self.stopped and self.alive()
        status = self.stop()
        if was_running and status != 0:
            problems.append(f"ftpd exited with {status} after SIGTERM:\n{self.log()}")
        if "Traceback" in self.log():
            problems.append(f"a traceback in the ftpd log:\n{self.log()}")
        return problems


def start_client_server(workdir: Path, mode: str, certs: Certs | None, *args: str,
                        root: Path | None = None, host: str = "127.0.0.1") -> ClientFtpd:
    """``python -m ftpd -l HOST:PORT -r ROOT -u user -P pw -v`` (commands logged, for the
    tests that check what a client sent), with ``--tls-cert``/``--tls-key`` unless *mode*
    is ``plain`` and ``--implicit-listen HOST:PORT2`` when it is ``implicit``."""
    assert mode in MODES, mode
    if root is None:
        root = workdir / "root"
        root.mkdir(exist_ok=True)
    tls: list[str] = []
    if mode != "plain":
        assert certs is not None
        tls = ["--tls-cert", str(certs.cert), "--tls-key", str(certs.key)]

    def spawn(ports: list[int], attempt: int) -> ClientFtpd:
        implicit_port = ports[1] if mode == "implicit" else None
        argv = ["-l", netloc(host, ports[0]), "-r", str(root), "-u", USER, "-P", PASSWORD,
                "-v", "--log", "stderr", "--failed-login-delay", "0",
                "--shutdown-timeout", "5", *tls]
        if implicit_port is not None:
            argv += ["--implicit-listen", netloc(host, implicit_port)]
        return ClientFtpd([*argv, *args], root=root, mode=mode, implicit_port=implicit_port,
                          host=host, port=ports[0],
                          log_path=workdir / f"ftpd-{mode}-{ports[0]}-{attempt}.log")

    return start_ftpd(spawn, host=host, nports=2 if mode == "implicit" else 1)


# -- test data --------------------------------------------------------------------------
def make_tree(root: Path) -> dict[bytes, str]:
    """Files with spaces, non-ASCII names and empty files, in nested folders; returns
    relative path -> sha256 of every file."""
    files = {
        "a.txt": b"plain\n",
        "with space.txt": b"spaces in the name\n",
        "caf\u00e9 \u65e5\u672c.bin": os.urandom(70_000),
        "empty": b"",
        "sub/nested.bin": os.urandom(400_000),
        "sub/empty too.txt": b"",
        "sub/dir with space/\u00fcber \u00e9t\u00e9.txt": "\u00fcber\r\n".encode() * 50,
        "sub/deeper/z.bin": os.urandom(1_100_000),
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tree_digest(root)


# -- running clients -----------------------------------------------------------------------
def client_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a client: a private HOME, UTF-8, no proxies."""
    env = {**os.environ, "HOME": str(home), "LC_ALL": "C.UTF-8", **extra}
    for proxy in ("ftp_proxy", "FTP_PROXY", "all_proxy", "ALL_PROXY", "http_proxy",
                  "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(proxy, None)
    return env


def run_client(argv: list[str], env: dict[str, str], cwd: Path | None = None,
               timeout: float = CLIENT_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a client command, bounded in time, with no stdin; output captured as text."""
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          errors="replace", stdin=subprocess.DEVNULL, timeout=timeout)


def output(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
