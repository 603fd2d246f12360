"""fs/digest.file_digest on a file on disk: chunks, a range across chunk boundaries,
and a file shorter than the range asked for."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

from ftpd.fs.digest import CHUNK, file_digest
from ftpd.fs.local import LocalFS


def test_digest_of_a_file_larger_than_a_chunk_and_a_range_across_chunks(tmp_path: Path):
    data = bytes(range(251)) * (3 * CHUNK // 251 + 5)
    (tmp_path / "f").write_bytes(data)
    fs = LocalFS(str(tmp_path))
    assert file_digest(fs, "/f", "MD5") == (hashlib.md5(data).hexdigest(), len(data))
    start, end = CHUNK - 3, 2 * CHUNK + 11
    assert file_digest(fs, "/f", "SHA-1", start, end) == \
        (hashlib.sha1(data[start:end]).hexdigest(), end - start)
    # the file shorter than the range asked: the digest says how much it covers
    assert file_digest(fs, "/f", "CRC32", len(data) - 5, len(data) + 100) == \
        (f"{zlib.crc32(data[-5:]):08x}", 5)
