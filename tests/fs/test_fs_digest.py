"""fs/digest.file_digest on a file on disk: several slices, a range across slice and
chunk boundaries, and a file shorter than the range asked for."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

from ftpd.fs.digest import CHUNK, SLICE, file_digest
from ftpd.fs.local import LocalFS


def test_digest_of_a_file_of_several_slices_and_a_range_across_them(tmp_path: Path):
    data = bytes(range(251)) * (2 * SLICE // 251 + 5)  # over two slices
    (tmp_path / "f").write_bytes(data)
    fs = LocalFS(str(tmp_path))
    assert file_digest(fs, "/f", "MD5") == (hashlib.md5(data).hexdigest(), len(data))
    start, end = SLICE - 3, SLICE + CHUNK + 11  # across slices and chunks
    assert file_digest(fs, "/f", "SHA-1", start, end) == \
        (hashlib.sha1(data[start:end]).hexdigest(), end - start)
    # the file shorter than the range asked: the digest says how much it covers
    assert file_digest(fs, "/f", "CRC32", len(data) - 5, len(data) + 100) == \
        (f"{zlib.crc32(data[-5:]):08x}", 5)
