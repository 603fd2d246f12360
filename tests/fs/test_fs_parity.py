"""MemoryFS, LocalFS and S3FS behave alike for every operation the core uses: same
results, same errnos (so the same FTP replies). S3FS skips what an object store cannot
do (SPEC §8), each with its reason; tests/fs/test_s3fs.py checks what it does instead."""

from __future__ import annotations

import errno
import stat

import pytest

from ftpd.fs.base import FileSystem, exists, isdir
from ftpd.fs.local import LocalFS
from ftpd.fs.memory import MemoryFS

FILES = {"/a.txt": b"0123456789", "/d/b.txt": b"bee"}

CANNOT_APPEND = "S3 objects cannot be appended to or written at an offset (550)"
NOT_ON_S3 = {
    "test_open_write_offset_keeps_the_rest": CANNOT_APPEND,
    "test_open_write_offset_beyond_end_fills_with_zeros": CANNOT_APPEND,
    "test_open_write_append": CANNOT_APPEND,
    "test_writes_are_visible_before_close": "an S3 upload appears only when completed",
    "test_rename": "S3 renames a file by copy and delete; a non-empty directory is refused",
    "test_chmod_and_utime": "S3 objects have no mode and no settable mtime (550)",
    "test_symlinks": "S3 has no symbolic links (550)",
    "test_non_utf8_names": "S3 keys are UTF-8",
}


@pytest.fixture(params=["memory", "local", "s3"])
def fs(request, tmp_path) -> FileSystem:
    if request.param == "memory":
        fs = MemoryFS(FILES)
    elif request.param == "s3":
        reason = NOT_ON_S3.get(request.node.originalname)
        if reason:
            pytest.skip(reason)
        fs = request.getfixturevalue("s3fs")
        fs.mkdir("/d")
        for path, data in FILES.items():
            with fs.open_write(path) as f:
                f.write(data)
    else:
        fs = LocalFS(str(tmp_path))
        for path, data in FILES.items():
            (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path.lstrip("/")).write_bytes(data)
    fs.mkdir("/empty")
    return fs


def read(fs, path):
    with fs.open_read(path) as f:
        return f.read()


def write(fs, path, data, **kw):
    with fs.open_write(path, **kw) as f:
        f.write(data)


def errno_of(fn, *args, **kw):
    with pytest.raises(OSError) as info:
        fn(*args, **kw)
    return info.value.errno


def test_is_a_filesystem(fs):
    assert isinstance(fs, FileSystem)


def test_stat_and_listdir(fs):
    assert stat.S_ISDIR(fs.stat("/").st_mode)
    assert stat.S_ISREG(fs.stat("/a.txt").st_mode)
    assert fs.stat("/a.txt").st_size == 10
    assert sorted(fs.listdir("/")) == ["a.txt", "d", "empty"]
    assert fs.listdir("/empty") == []
    assert errno_of(fs.stat, "/nothere") == errno.ENOENT
    assert errno_of(fs.listdir, "/a.txt") == errno.ENOTDIR
    assert errno_of(fs.stat, "/a.txt/x") == errno.ENOTDIR
    assert exists(fs, "/d/b.txt") and not exists(fs, "/d/zz")
    assert isdir(fs, "/d") and not isdir(fs, "/a.txt") and not isdir(fs, "/zz")


def test_open_read(fs):
    assert read(fs, "/a.txt") == b"0123456789"
    f = fs.open_read("/a.txt")
    f.seek(4)
    assert f.read(3) == b"456"
    f.close()
    assert errno_of(fs.open_read, "/nothere") == errno.ENOENT
    assert errno_of(fs.open_read, "/d") == errno.EISDIR


def test_open_write_truncates(fs):
    write(fs, "/a.txt", b"new")
    assert read(fs, "/a.txt") == b"new"
    write(fs, "/fresh", b"x")
    assert read(fs, "/fresh") == b"x"


def test_open_write_offset_keeps_the_rest(fs):
    write(fs, "/a.txt", b"AB", offset=3)
    assert read(fs, "/a.txt") == b"012AB56789"
    write(fs, "/a.txt", b"Z", offset=10)
    assert read(fs, "/a.txt") == b"012AB56789Z"


def test_open_write_offset_beyond_end_fills_with_zeros(fs):
    write(fs, "/a.txt", b"!", offset=12)
    assert read(fs, "/a.txt") == b"0123456789\0\0!"


def test_open_write_append(fs):
    write(fs, "/a.txt", b"++", append=True)
    assert read(fs, "/a.txt") == b"0123456789++"
    write(fs, "/new", b"n", append=True)
    assert read(fs, "/new") == b"n"


def test_writes_are_visible_before_close(fs):
    f = fs.open_write("/live")
    f.write(b"a")
    assert read(fs, "/live") == b"a"
    f.write(b"b")
    assert read(fs, "/live") == b"ab"
    f.close()


def test_open_write_exclusive(fs):
    assert errno_of(fs.open_write, "/a.txt", exclusive=True) == errno.EEXIST
    write(fs, "/uniq", b"u", exclusive=True)
    assert read(fs, "/uniq") == b"u"


def test_open_write_errors(fs):
    assert errno_of(fs.open_write, "/d") == errno.EISDIR
    assert errno_of(fs.open_write, "/nodir/x") == errno.ENOENT
    assert errno_of(fs.open_write, "/a.txt/x") == errno.ENOTDIR


def test_mkdir_rmdir(fs):
    fs.mkdir("/new")
    assert isdir(fs, "/new")
    assert errno_of(fs.mkdir, "/new") == errno.EEXIST
    assert errno_of(fs.mkdir, "/a.txt") == errno.EEXIST
    assert errno_of(fs.mkdir, "/nodir/x") == errno.ENOENT
    assert errno_of(fs.rmdir, "/d") == errno.ENOTEMPTY
    assert errno_of(fs.rmdir, "/a.txt") == errno.ENOTDIR
    assert errno_of(fs.rmdir, "/zz") == errno.ENOENT
    fs.rmdir("/new")
    assert not exists(fs, "/new")


def test_root_operations_fail_cleanly(fs):
    assert errno_of(fs.mkdir, "/") == errno.EEXIST
    assert errno_of(fs.open_write, "/") == errno.EISDIR
    assert errno_of(fs.remove, "/") == errno.EISDIR
    for fn, args in [(fs.rmdir, ("/",)), (fs.rename, ("/", "/x")), (fs.rename, ("/d", "/")),
                     (fs.symlink, ("/a.txt", "/"))]:
        errno_of(fn, *args)  # some OSError, never another exception
    assert read(fs, "/a.txt") == b"0123456789"


def test_remove(fs):
    fs.remove("/a.txt")
    assert not exists(fs, "/a.txt")
    assert errno_of(fs.remove, "/a.txt") == errno.ENOENT
    assert errno_of(fs.remove, "/d") == errno.EISDIR


def test_rename(fs):
    fs.rename("/a.txt", "/d/moved")
    assert read(fs, "/d/moved") == b"0123456789"
    assert not exists(fs, "/a.txt")
    fs.rename("/d", "/dd")
    assert read(fs, "/dd/b.txt") == b"bee"
    fs.rename("/dd/b.txt", "/dd/moved")  # replaces an existing file
    assert read(fs, "/dd/moved") == b"bee"
    assert errno_of(fs.rename, "/zz", "/yy") == errno.ENOENT
    assert errno_of(fs.rename, "/dd", "/dd/inside") == errno.EINVAL
    assert errno_of(fs.rename, "/dd", "/nodir/x") == errno.ENOENT


def test_rename_type_clashes(fs):
    assert errno_of(fs.rename, "/a.txt", "/empty") == errno.EISDIR
    assert errno_of(fs.rename, "/empty", "/a.txt") == errno.ENOTDIR
    assert errno_of(fs.rename, "/a.txt", "/d") == errno.EISDIR
    assert read(fs, "/a.txt") == b"0123456789"
    assert errno_of(fs.rename, "/empty", "/d") in (errno.ENOTEMPTY, errno.EEXIST)
    fs.mkdir("/other")
    fs.rename("/empty", "/other")  # an empty directory may be replaced
    assert not exists(fs, "/empty")


def test_chmod_and_utime(fs):
    fs.chmod("/a.txt", 0o600)
    assert stat.S_IMODE(fs.stat("/a.txt").st_mode) == 0o600
    assert stat.S_ISREG(fs.stat("/a.txt").st_mode)
    fs.utime("/a.txt", 946684800.0)
    assert fs.stat("/a.txt").st_mtime == 946684800.0
    assert errno_of(fs.chmod, "/zz", 0o600) == errno.ENOENT
    assert errno_of(fs.utime, "/zz", 0) == errno.ENOENT


def test_symlinks(fs):
    fs.symlink("/d", "/link")
    assert stat.S_ISLNK(fs.lstat("/link").st_mode)
    assert stat.S_ISDIR(fs.stat("/link").st_mode)
    assert fs.listdir("/link") == ["b.txt"]
    assert read(fs, "/link/b.txt") == b"bee"
    assert fs.readlink("/link") == "/d"
    assert errno_of(fs.readlink, "/a.txt") == errno.EINVAL
    assert errno_of(fs.symlink, "/d", "/a.txt") == errno.EEXIST
    fs.symlink("/a.txt", "/flink")
    write(fs, "/flink", b"via link")
    assert read(fs, "/a.txt") == b"via link"
    fs.remove("/flink")  # removes the link, not the target
    assert read(fs, "/a.txt") == b"via link"
    fs.rename("/link", "/link2")
    assert fs.readlink("/link2") == "/d"
    assert errno_of(fs.rmdir, "/link2") == errno.ENOTDIR


def test_non_utf8_names(fs):
    name = "/caf\udce9"
    write(fs, name, b"x")
    assert "caf\udce9" in fs.listdir("/")
    assert read(fs, name) == b"x"
    fs.rename(name, "/d/caf\udce9")
    assert "caf\udce9" in fs.listdir("/d")


def test_rename_without_replacing(fs):
    write(fs, "/new.txt", b"new")
    assert errno_of(fs.rename, "/new.txt", "/a.txt", replace=False) == errno.EEXIST
    assert read(fs, "/a.txt") == b"0123456789" and read(fs, "/new.txt") == b"new"
    fs.rename("/new.txt", "/d/free.txt", replace=False)
    assert read(fs, "/d/free.txt") == b"new" and not exists(fs, "/new.txt")
    assert errno_of(fs.rename, "/zz", "/yy", replace=False) == errno.ENOENT
