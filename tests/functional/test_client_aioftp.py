"""The aioftp client (asyncio, from the test extras) against the real ftpd: a recursive
MLSD listing and MLST stat of a tree with spaces, non-ASCII names and empty files;
upload, download and append streams, a download from an offset (REST); a 10 MiB round
trip. Every file is compared by SHA-256.

Plain FTP only: over TLS aioftp (0.28) shakes hands on a passive data connection
before it sends the transfer command, while ftpd, like ProFTPD, starts TLS there only
for that command, so each waits for the other (the clients' side of jlaffaye/ftp#282)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path, PurePosixPath

import aioftp
from clientsupport import PASSWORD, USER, make_tree
from fhelpers import tree_digest
from ftpsupport import sha256

CLIENT_TIMEOUT = 60.0  # seconds: one whole client session
MiB = 1024 * 1024


def run(server, session) -> object:
    """Run ``session(client)`` on a logged-in aioftp client, bounded in time."""

    async def main() -> object:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            client = aioftp.Client(socket_timeout=20, connection_timeout=10)
            await client.connect(server.host, server.port)
            try:
                await client.login(USER, PASSWORD)
                return await session(client)
            finally:
                await client.quit()

    return asyncio.run(main())


def local_entries(root: Path) -> dict[str, tuple[str, int | None]]:
    """Relative path -> (type, size for files) of everything under *root*."""
    return {p.relative_to(root).as_posix(): ("dir", None) if p.is_dir()
            else ("file", p.stat().st_size) for p in root.rglob("*")}


def test_aioftp_recursive_mlsd_listing_and_stat(client_ftpd):
    server = client_ftpd("plain")
    tree = server.root / "tree"
    make_tree(tree)

    async def session(client):
        listed = {}
        async for path, info in client.list("/tree", recursive=True):
            size = int(info["size"]) if info["type"] == "file" else None
            listed[path.relative_to("/tree").as_posix()] = (info["type"], size)
        stats = {name: await client.stat(f"/tree/{name}")
                 for name in ("sub/dir with space", "caf\u00e9 \u65e5\u672c.bin", "empty")}
        return listed, stats

    listed, stats = run(server, session)
    assert listed == local_entries(tree)
    assert stats["sub/dir with space"]["type"] == "dir"
    assert stats["caf\u00e9 \u65e5\u672c.bin"]["type"] == "file"
    assert int(stats["caf\u00e9 \u65e5\u672c.bin"]["size"]) == 70_000
    assert int(stats["empty"]["size"]) == 0
    assert "] MLSD /tree" in server.log() and "] MLST /tree/empty" in server.log()


def test_aioftp_streams_10_mib_round_trip(client_ftpd):
    server = client_ftpd("plain")
    data = os.urandom(10 * MiB + 123)
    tail = os.urandom(54321)
    offset = 7 * MiB + 5

    async def session(client):
        async with client.upload_stream("big.bin") as stream:
            for start in range(0, len(data), 300_001):  # blocks that straddle buffers
                await stream.write(data[start:start + 300_001])
        async with client.append_stream("big.bin") as stream:
            await stream.write(tail)
        whole, part = hashlib.sha256(), hashlib.sha256()
        async with client.download_stream("big.bin") as stream:
            async for block in stream.iter_by_block():
                whole.update(block)
        async with client.download_stream("big.bin", offset=offset) as stream:
            async for block in stream.iter_by_block():
                part.update(block)
        size = int((await client.stat(PurePosixPath("big.bin")))["size"])
        return whole.hexdigest(), part.hexdigest(), size

    whole, part, size = run(server, session)
    assert sha256(server.root / "big.bin") == sha256(data + tail)
    assert whole == sha256(data + tail)
    assert part == sha256((data + tail)[offset:])
    assert size == len(data) + len(tail)
    assert f"] REST {offset}" in server.log()


def test_aioftp_path_upload_and_download(client_ftpd, tmp_path):
    """``upload``/``download`` of local files and folders, the way most code uses it."""
    server = client_ftpd("plain")
    src = tmp_path / "src"
    make_tree(src)

    async def session(client):
        await client.upload(src, "/up", write_into=True)
        await client.download("/up", tmp_path / "down", write_into=True)

    run(server, session)

    assert tree_digest(server.root / "up") == tree_digest(src)
    assert tree_digest(tmp_path / "down") == tree_digest(src)
