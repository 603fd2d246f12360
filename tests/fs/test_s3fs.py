"""S3FS against a real S3 server (SeaweedFS, started by the tests): every row of the
SPEC §8 table at the FileSystem level, objects checked with direct S3 requests."""

from __future__ import annotations

import errno
import gc
import logging
import socket
import stat

import obstore
import pytest
from s3support import ACCESS_KEY, READER_KEY, READER_SECRET, SECRET_KEY, make_s3fs

from ftpd.core.errors import reply_for_oserror

MiB = 1024 * 1024


def key(fs, path: str) -> str:
    return f"{fs.test_prefix}/{path}"


def put(fs, path: str, data: bytes) -> None:
    obstore.put(fs.store, key(fs, path), data)


def get(fs, path: str) -> bytes:
    return bytes(obstore.get(fs.store, key(fs, path)).bytes())


def write(fs, path, data, **kw):
    with fs.open_write(path, **kw) as f:
        f.write(data)


def read(fs, path):
    with fs.open_read(path) as f:
        return f.read()


def errno_of(fn, *args, **kw):
    with pytest.raises(OSError) as info:
        fn(*args, **kw)
    return info.value


# -- CWD, LIST, NLST, MLSD, MLST, SIZE, MDTM -------------------------------------------------
def test_directories_are_common_prefixes_or_markers(s3fs, seaweed):
    put(s3fs, "implicit/f", b"x")  # a directory only through a key below it
    s3fs.mkdir("/marked")
    assert key(s3fs, "marked/") in seaweed.keys(s3fs.test_prefix)
    assert sorted(s3fs.listdir("/")) == ["implicit", "marked"]
    assert s3fs.listdir("/marked") == []
    assert stat.S_ISDIR(s3fs.stat("/implicit").st_mode)
    assert stat.S_ISDIR(s3fs.stat("/marked").st_mode)
    assert stat.S_ISDIR(s3fs.stat("/").st_mode)
    assert errno_of(s3fs.stat, "/nothere").errno == errno.ENOENT
    assert errno_of(s3fs.listdir, "/nothere").errno == errno.ENOENT
    assert errno_of(s3fs.listdir, "/implicit/f").errno == errno.ENOTDIR
    assert errno_of(s3fs.stat, "/implicit/f/below").errno == errno.ENOTDIR


def test_size_and_mtime_from_head(s3fs):
    put(s3fs, "f.bin", b"0123456789")
    st = s3fs.stat("/f.bin")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 10
    meta = obstore.head(s3fs.store, key(s3fs, "f.bin"))
    assert st.st_mtime == meta["last_modified"].timestamp()
    assert s3fs.lstat("/f.bin") == st


def test_listing_is_paginated(s3fs):
    names = [f"n{i:04d}" for i in range(1100)]  # more than one 1000-key page
    for name in names:
        put(s3fs, f"many/{name}", b"")
    assert sorted(s3fs.listdir("/many")) == names
    stats = dict(s3fs.lstat_entries("/many", ["n0000", "n1099", "absent"]))
    assert sorted(stats) == ["n0000", "n1099"] and stats["n1099"].st_size == 0


def test_key_and_prefix_both_present_directory_wins(s3fs, caplog):
    put(s3fs, "both", b"file")
    put(s3fs, "both/inner", b"x")
    with caplog.at_level(logging.WARNING, "ftpd.fs.s3"):
        assert s3fs.listdir("/") == ["both"]
        assert s3fs.listdir("/") == ["both"]
    assert stat.S_ISDIR(s3fs.stat("/both").st_mode)
    assert stat.S_ISDIR(dict(s3fs.lstat_entries("/", ["both"]))["both"].st_mode)
    warnings = [r for r in caplog.records if "both exist" in r.getMessage()]
    assert len(warnings) == 1


# -- RETR, REST+RETR ---------------------------------------------------------------------
def test_read_streams_with_ranged_restart(s3fs):
    data = bytes(range(256)) * 4096  # 1 MiB
    put(s3fs, "r.bin", data)
    with s3fs.open_read("/r.bin") as f:
        assert not hasattr(f, "fileno") or _no_fileno(f)
        assert f.read(5) == data[:5]
        f.seek(700_000)  # REST: a new GET with Range: bytes=700000-
        rest = b""
        for _ in range(100):
            chunk = f.read(65536)
            if not chunk:
                break
            rest += chunk
    assert rest == data[700_000:]
    assert errno_of(s3fs.open_read, "/absent").errno == errno.ENOENT
    s3fs.mkdir("/dir")
    assert errno_of(s3fs.open_read, "/dir").errno == errno.EISDIR


def test_a_broken_get_resumes_where_it_stopped(s3fs, monkeypatch):
    data = bytes(range(256)) * 16384  # 4 MiB: several pieces of the stream
    put(s3fs, "resume.bin", data)
    real_get, calls = obstore.get, []

    class Breaking:
        def __init__(self, result):
            self.result = result

        def stream(self, min_chunk_size):
            stream = iter(self.result.stream(min_chunk_size=min_chunk_size))
            yield next(stream)
            raise RuntimeError("HTTP error: connection reset mid-body")

    def get(store, path, options=None):
        calls.append((options or {}).get("range"))
        result = real_get(store, path, options=options)
        return Breaking(result) if len(calls) == 1 else result

    monkeypatch.setattr(obstore, "get", get)
    assert read(s3fs, "/resume.bin") == data
    assert calls[0] is None and calls[1]["offset"] > 0


def _no_fileno(f) -> bool:
    try:
        f.fileno()
    except OSError:
        return True
    return False


# -- STOR ------------------------------------------------------------------------------------
def test_upload_appears_only_when_closed(s3fs, seaweed):
    f = s3fs.open_write("/up.bin")
    for _ in range(3):
        f.write(b"x" * (4 * MiB))  # 12 MiB: a multipart upload of 8 MiB parts
    assert errno_of(s3fs.stat, "/up.bin").errno == errno.ENOENT
    assert seaweed.pending_uploads() == [key(s3fs, "up.bin")]
    f.close()
    assert s3fs.uploads_are_atomic
    assert get(s3fs, "up.bin") == b"x" * (12 * MiB)
    assert seaweed.pending_uploads() == []
    write(s3fs, "/small", b"tiny")  # one part or less: a single PUT at close
    assert get(s3fs, "small") == b"tiny"
    write(s3fs, "/small", b"new")
    assert get(s3fs, "small") == b"new"


def test_writer_copies_what_it_is_given(s3fs):
    buffer = bytearray(b"a" * MiB)  # the data channel reuses its receive buffer
    with s3fs.open_write("/copied") as f:
        for fill in (b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i"):
            buffer[:] = fill * MiB
            f.write(memoryview(buffer))
    got = get(s3fs, "copied")
    assert [got[i * MiB:i * MiB + 1] for i in range(9)] == [bytes([c]) for c in b"abcdefghi"]


@pytest.mark.parametrize("size", [3, 12 * MiB], ids=["one-put", "multipart"])
def test_abort_leaves_nothing(s3fs, seaweed, size):
    f = s3fs.open_write("/aborted")
    f.write(b"z" * size)
    f.abort()
    f.abort()  # idempotent
    assert errno_of(s3fs.stat, "/aborted").errno == errno.ENOENT
    assert key(s3fs, "aborted") not in seaweed.keys(s3fs.test_prefix)
    assert seaweed.pending_uploads() == []


def test_dropped_writer_leaves_nothing(s3fs, seaweed):
    f = s3fs.open_write("/dropped")
    f.write(b"q" * (12 * MiB))
    assert seaweed.pending_uploads() == [key(s3fs, "dropped")]
    del f
    gc.collect()
    assert seaweed.pending_uploads() == []
    assert errno_of(s3fs.stat, "/dropped").errno == errno.ENOENT


def test_process_exit_with_an_upload_under_way_leaves_nothing(s3fs, seaweed):
    """A server stop (the interpreter exits) aborts the uploads still open."""
    import subprocess
    import sys

    code = (f"from ftpd.fs.s3 import S3FS\n"
            f"fs = S3FS({seaweed.bucket!r}, {s3fs.test_prefix!r}, "
            f"endpoint={seaweed.endpoint!r}, access_key_id={ACCESS_KEY!r}, "
            f"secret_access_key={SECRET_KEY!r})\n"
            f"KEEP = fs.open_write('/at-exit')\n"
            f"KEEP.write(b'e' * {12 * MiB})\n"
            f"print(flush=True)\n"
            f"raise SystemExit(0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert seaweed.pending_uploads() == []
    assert errno_of(s3fs.stat, "/at-exit").errno == errno.ENOENT


def test_exception_inside_with_aborts(s3fs, seaweed):
    with pytest.raises(RuntimeError), s3fs.open_write("/failed") as f:
        f.write(b"w" * (12 * MiB))
        raise RuntimeError("the transfer broke")
    assert seaweed.pending_uploads() == []
    assert errno_of(s3fs.stat, "/failed").errno == errno.ENOENT


def test_open_write_errors(s3fs):
    s3fs.mkdir("/d")
    put(s3fs, "f", b"x")
    assert errno_of(s3fs.open_write, "/d").errno == errno.EISDIR
    assert errno_of(s3fs.open_write, "/").errno == errno.EISDIR
    assert errno_of(s3fs.open_write, "/nodir/x").errno == errno.ENOENT
    assert errno_of(s3fs.open_write, "/f/x").errno == errno.ENOTDIR


# -- STOU ------------------------------------------------------------------------------------
def test_exclusive_create(s3fs):
    put(s3fs, "taken", b"old")
    assert errno_of(s3fs.open_write, "/taken", exclusive=True).errno == errno.EEXIST
    f = s3fs.open_write("/race", exclusive=True)
    f.write(b"mine")
    put(s3fs, "race", b"theirs")  # someone else got there first: If-None-Match refuses
    assert errno_of(f.close).errno == errno.EEXIST
    assert get(s3fs, "race") == b"theirs"
    write(s3fs, "/uniq", b"u", exclusive=True)
    assert get(s3fs, "uniq") == b"u"


def test_exclusive_multipart_refuses_an_existing_key(s3fs, seaweed):
    f = s3fs.open_write("/bigrace", exclusive=True)
    f.write(b"m" * (12 * MiB))
    put(s3fs, "bigrace", b"theirs")
    assert errno_of(f.close).errno == errno.EEXIST
    assert get(s3fs, "bigrace") == b"theirs"
    assert seaweed.pending_uploads() == []


# -- APPE, REST+STOR -------------------------------------------------------------------------
def test_append_and_offset_are_refused_naming_the_storage(s3fs):
    put(s3fs, "a", b"keep")
    for kw in ({"append": True}, {"offset": 2}):
        exc = errno_of(s3fs.open_write, "/a", **kw)
        code, text = reply_for_oserror(exc)
        assert code == 550 and "S3" in text and "append" in text.lower()
    assert get(s3fs, "a") == b"keep"


# -- MKD / RMD -------------------------------------------------------------------------------
def test_mkdir_rmdir(s3fs, seaweed):
    s3fs.mkdir("/new")
    assert errno_of(s3fs.mkdir, "/new").errno == errno.EEXIST
    put(s3fs, "file", b"x")
    assert errno_of(s3fs.mkdir, "/file").errno == errno.EEXIST
    assert errno_of(s3fs.mkdir, "/nodir/x").errno == errno.ENOENT
    assert errno_of(s3fs.mkdir, "/").errno == errno.EEXIST
    put(s3fs, "new/inside", b"x")
    assert errno_of(s3fs.rmdir, "/new").errno == errno.ENOTEMPTY
    assert errno_of(s3fs.rmdir, "/file").errno == errno.ENOTDIR
    assert errno_of(s3fs.rmdir, "/zz").errno == errno.ENOENT
    obstore.delete(s3fs.store, key(s3fs, "new/inside"))
    s3fs.rmdir("/new")
    assert errno_of(s3fs.stat, "/new").errno == errno.ENOENT
    assert not [k for k in seaweed.keys(s3fs.test_prefix) if k.startswith(key(s3fs, "new"))]


# -- DELE ------------------------------------------------------------------------------------
def test_remove_heads_then_deletes(s3fs, seaweed):
    s3fs.mkdir("/d")
    write(s3fs, "/d/f", b"x")
    s3fs.remove("/d/f")
    assert key(s3fs, "d/f") not in seaweed.keys(s3fs.test_prefix)
    assert errno_of(s3fs.remove, "/d/f").errno == errno.ENOENT
    assert errno_of(s3fs.remove, "/d").errno == errno.EISDIR
    assert s3fs.listdir("/d") == []  # the directory stays until RMD


def test_deleting_the_last_file_keeps_an_implicit_directory(s3fs, seaweed):
    put(s3fs, "only/f", b"x")  # no marker: the directory exists through its file
    s3fs.remove("/only/f")
    assert stat.S_ISDIR(s3fs.stat("/only").st_mode)
    assert key(s3fs, "only/") in seaweed.keys(s3fs.test_prefix)


# -- RNFR / RNTO -----------------------------------------------------------------------------
def test_rename_file_is_copy_then_delete(s3fs, caplog):
    put(s3fs, "src", b"payload")
    s3fs.mkdir("/d")
    with caplog.at_level(logging.INFO, "ftpd.fs.s3"):
        s3fs.rename("/src", "/d/dst")
    assert get(s3fs, "d/dst") == b"payload"
    assert errno_of(s3fs.stat, "/src").errno == errno.ENOENT
    assert any("not atomic" in r.getMessage() for r in caplog.records)
    put(s3fs, "other", b"replaced")
    s3fs.rename("/other", "/d/dst")  # replaces an existing file
    assert get(s3fs, "d/dst") == b"replaced"
    assert errno_of(s3fs.rename, "/zz", "/yy").errno == errno.ENOENT
    assert errno_of(s3fs.rename, "/d/dst", "/d").errno == errno.EISDIR
    assert errno_of(s3fs.rename, "/d/dst", "/nodir/x").errno == errno.ENOENT
    s3fs.rename("/d/dst", "/d/dst")  # onto itself: nothing happens, nothing is lost
    assert get(s3fs, "d/dst") == b"replaced"


def test_rename_directories(s3fs):
    s3fs.mkdir("/empty")
    s3fs.rename("/empty", "/moved")
    assert s3fs.listdir("/moved") == [] and errno_of(s3fs.stat, "/empty").errno == errno.ENOENT
    put(s3fs, "full/f", b"x")
    exc = errno_of(s3fs.rename, "/full", "/elsewhere")
    assert exc.errno == errno.EPERM and reply_for_oserror(exc)[0] == 550
    assert get(s3fs, "full/f") == b"x"
    assert errno_of(s3fs.rename, "/moved", "/moved/inside").errno == errno.EINVAL


# -- MFMT, SITE CHMOD, SITE SYMLINK ----------------------------------------------------------
def test_chmod_utime_symlink_name_the_storage(s3fs):
    put(s3fs, "f", b"x")
    for fn, args in ((s3fs.chmod, ("/f", 0o600)), (s3fs.utime, ("/f", 0.0)),
                     (s3fs.symlink, ("/f", "/link"))):
        code, text = reply_for_oserror(errno_of(fn, *args))
        assert code == 550 and "S3" in text
    assert errno_of(s3fs.readlink, "/f").errno == errno.EINVAL


# -- store errors ----------------------------------------------------------------------------
def test_access_denied_is_eacces(seaweed, caplog):
    fs = make_s3fs(seaweed, "denied", access_key_id=READER_KEY,
                   secret_access_key=READER_SECRET)
    with caplog.at_level(logging.WARNING, "ftpd.fs.s3"):
        assert errno_of(fs.stat, "/x").errno == errno.EACCES
        assert errno_of(fs.listdir, "/").errno == errno.EACCES
        assert errno_of(fs.mkdir, "/x").errno == errno.EACCES
    lines = [r.getMessage() for r in caplog.records]
    assert lines and all("\n" not in line for line in lines)


def test_wrong_secret_is_eacces(seaweed):
    fs = make_s3fs(seaweed, "p", secret_access_key="wrong")
    assert errno_of(fs.listdir, "/").errno == errno.EACCES


def test_no_such_bucket_is_enoent(seaweed, caplog):
    fs = make_s3fs(seaweed, "", bucket="no-such-bucket")
    with caplog.at_level(logging.WARNING, "ftpd.fs.s3"):
        assert errno_of(fs.listdir, "/").errno == errno.ENOENT
    assert any("no-such-bucket" in r.getMessage() or "LIST" in r.getMessage()
               for r in caplog.records)


def test_unreachable_endpoint_raises_an_error_answered_451(tmp_path):
    from ftpd.fs.s3 import S3FS

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fs = S3FS("b", endpoint=f"http://127.0.0.1:{port}", access_key_id="k",
              secret_access_key="s", timeout=0.5)
    for fn, args in ((fs.stat, ("/x",)), (fs.listdir, ("/",)), (fs.mkdir, ("/d",))):
        exc = errno_of(fn, *args)
        assert exc.errno == errno.ETIMEDOUT and reply_for_oserror(exc)[0] == 451


def test_endpoint_that_never_answers_times_out():
    from ftpd.fs.s3 import S3FS

    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        fs = S3FS("b", endpoint=f"http://127.0.0.1:{port}", access_key_id="k",
                  secret_access_key="s", timeout=0.5)
        exc = errno_of(fs.stat, "/x")
        assert reply_for_oserror(exc)[0] == 451
        exc = errno_of(fs.mkdir, "/x")  # obstore's LIST fails first, the same way
        assert reply_for_oserror(exc)[0] == 451


def test_non_utf8_names_are_refused(s3fs):
    assert errno_of(s3fs.stat, "/caf\udce9").errno == errno.EINVAL
    assert errno_of(s3fs.open_write, "/caf\udce9").errno == errno.EINVAL


def test_part_size_below_the_s3_minimum_is_refused(seaweed):
    with pytest.raises(ValueError):
        make_s3fs(seaweed, "p", part_size=1024)


# -- bounded memory ---------------------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"),
                    reason="reads RSS from /proc")
def test_a_large_transfer_keeps_memory_bounded(s3fs):
    """128 MiB up and down grows the process by less than 64 MiB: streamed, not held."""
    chunk = b"m" * MiB
    gc.collect()
    base = _rss()
    peak = base
    with s3fs.open_write("/large") as f:
        for _ in range(128):
            f.write(chunk)
            peak = max(peak, _rss())
    assert s3fs.stat("/large").st_size == 128 * MiB
    total = 0
    with s3fs.open_read("/large") as f:
        for _ in range(1000):
            data = f.read(MiB)
            if not data:
                break
            total += len(data)
            peak = max(peak, _rss())
    assert total == 128 * MiB
    assert peak - base < 64 * MiB


# -- imported only when configured ---------------------------------------------------------
def test_obstore_is_imported_only_when_an_s3fs_is_made():
    import subprocess
    import sys

    code = ("import sys, ftpd.fs.s3, ftpd.cli, ftpd.app; "
            "print('obstore' in sys.modules, 'ftpd.fs.s3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]
    code = "import sys, ftpd.cli, ftpd.app; print('ftpd.fs.s3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False"]


@pytest.mark.parametrize("name", ["a b", "x#y", "50%", "q?x", "plus+sign", "caf\u00e9", "t~ld"])
def test_names_with_characters_urls_treat_specially(s3fs, seaweed, name):
    s3fs.mkdir(f"/{name}")
    write(s3fs, f"/{name}/{name}", b"odd")
    assert s3fs.listdir("/") == [name] and s3fs.listdir(f"/{name}") == [name]
    assert read(s3fs, f"/{name}/{name}") == b"odd"
    assert key(s3fs, f"{name}/") in seaweed.keys(s3fs.test_prefix)
    s3fs.rename(f"/{name}/{name}", f"/{name}/renamed")
    s3fs.remove(f"/{name}/renamed")
    s3fs.rmdir(f"/{name}")
    assert s3fs.listdir("/") == []


def test_from_url(seaweed):
    from ftpd.fs.s3 import S3FS

    fs = S3FS.from_url(f"s3://{seaweed.bucket}/url/prefix", endpoint=seaweed.endpoint,
                       access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
    write(fs, "/f", b"via url")
    assert bytes(obstore.get(fs.store, "url/prefix/f").bytes()) == b"via url"


def test_credentials_from_the_standard_environment(seaweed, monkeypatch):
    from ftpd.fs.s3 import S3FS

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    fs = S3FS(seaweed.bucket, "from-env", endpoint=seaweed.endpoint)
    fs.mkdir("/made")  # a marker, through the signer: it signs with the same keys
    assert fs.listdir("/") == ["made"]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    fs = S3FS(seaweed.bucket, "from-env", endpoint=seaweed.endpoint)
    assert errno_of(fs.listdir, "/").errno == errno.EACCES
    assert errno_of(fs.mkdir, "/other").errno == errno.EACCES


def test_names_s3_servers_disagree_on_are_refused(s3fs, seaweed, caplog):
    with caplog.at_level(logging.WARNING, "ftpd.fs.s3"):
        assert errno_of(s3fs.open_write, "/back\\slash").errno == errno.EINVAL
        assert errno_of(s3fs.open_write, "/" + "n" * 256).errno == errno.ENAMETOOLONG
        assert errno_of(s3fs.mkdir, "/" + "/".join(["d" * 200] * 6)).errno == errno.ENAMETOOLONG
        assert errno_of(s3fs.open_write, "/ctl\nname").errno == errno.EINVAL
    write(s3fs, "/" + "n" * 255, b"at the limit")
    assert s3fs.listdir("/") == ["n" * 255]
    assert all("\n" not in r.getMessage() for r in caplog.records)
