"""LocalFS confinement on a temporary root: nothing outside the root is ever
reached through it, whatever the virtual path or the symlinks on disk say."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from ftpd.fs.local import LocalFS

pytestmark = pytest.mark.usefixtures("resolver")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "file.txt").write_bytes(b"inside")
    (root / "sub").mkdir()
    (root / "sub" / "deep.txt").write_bytes(b"deep")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink("/etc", root / "etc")  # absolute, out of the root
    os.symlink("../outside/secret", root / "rel_secret")  # relative, out of the root
    os.symlink("sub/deep.txt", root / "ok_link")  # relative, inside
    os.symlink(str(root / "sub"), root / "sub_link")  # absolute, inside
    os.symlink(str(root / "nothere"), root / "dangling")
    return root, outside


@pytest.fixture
def fs(tree):
    return LocalFS(str(tree[0]))


def test_root_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError):
        LocalFS(str(tmp_path / "missing"))


def test_root_is_realpath(tmp_path, tree):
    os.symlink(tree[0], tmp_path / "alias")
    fs = LocalFS(str(tmp_path / "alias"))
    assert fs.root == str(tree[0])
    assert fs.open_read("/file.txt").read() == b"inside"


def _ident(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


@pytest.mark.parametrize("vpath", ["/..", "/../outside/secret", "../outside", "/sub/../../outside",
                                   "/./../..", "//..", "..", "/sub/../../outside/secret"])
@pytest.mark.parametrize("op", ["stat", "lstat"])
def test_dotdot_cannot_escape(fs, tree, vpath, op):
    root, outside = tree
    forbidden = {_ident(os.stat(p)) for p in (root.parent, outside, outside / "secret")}
    try:
        st = getattr(fs, op)(vpath)
    except OSError as exc:
        assert exc.errno in (errno.EACCES, errno.ENOENT)
        return
    assert _ident(st) not in forbidden


def test_dotdot_is_clamped_to_the_root(fs, tree):
    root = _ident(os.stat(tree[0]))
    assert _ident(fs.stat("/..")) == root
    assert fs.open_read("/../file.txt").read() == b"inside"
    assert _ident(fs.lstat("/sub/../..")) == root
    assert _ident(fs.lstat("/..")) == root
    assert sorted(fs.listdir("/..")) == sorted(fs.listdir("/"))


@pytest.mark.parametrize("link", ["/etc", "/rel_secret"])
def test_symlink_out_of_root_refused(fs, link):
    for op in (fs.stat, fs.open_read, fs.listdir):
        with pytest.raises(PermissionError) as info:
            op(link)
        assert info.value.errno == errno.EACCES
    with pytest.raises(PermissionError):
        fs.open_write(link)
    with pytest.raises(PermissionError):
        fs.chmod(link, 0o777)
    with pytest.raises(PermissionError):
        fs.utime(link, 0)


def test_paths_through_an_outside_link_refused(fs):
    with pytest.raises(PermissionError):
        fs.stat("/etc/passwd")
    with pytest.raises(PermissionError):
        fs.open_read("/etc/passwd")
    with pytest.raises(PermissionError):
        fs.lstat("/etc/passwd")  # the link is a parent component here: followed
    with pytest.raises(PermissionError):
        fs.remove("/etc/passwd")
    with pytest.raises(PermissionError):
        fs.mkdir("/etc/newdir")
    with pytest.raises(PermissionError):
        fs.rename("/file.txt", "/etc/stolen")


def test_symlink_inside_root_allowed(fs):
    assert fs.open_read("/ok_link").read() == b"deep"
    assert stat.S_ISREG(fs.stat("/ok_link").st_mode)
    assert sorted(fs.listdir("/sub_link")) == ["deep.txt"]
    assert fs.open_read("/sub_link/deep.txt").read() == b"deep"


def test_lstat_and_remove_act_on_the_outside_link(fs, tree):
    st = fs.lstat("/etc")
    assert stat.S_ISLNK(st.st_mode)
    assert stat.S_ISLNK(fs.lstat("/rel_secret").st_mode)
    fs.remove("/rel_secret")
    assert not os.path.lexists(tree[0] / "rel_secret")
    assert (tree[1] / "secret").read_bytes() == b"secret"  # the target is untouched
    fs.remove("/etc")
    assert os.path.isdir("/etc")


def test_rename_an_outside_link_moves_the_link(fs, tree):
    fs.rename("/rel_secret", "/sub/moved_link")
    assert os.path.islink(tree[0] / "sub" / "moved_link")
    assert (tree[1] / "secret").read_bytes() == b"secret"


def test_readlink_never_reveals_the_real_root(fs, tree):
    assert fs.readlink("/ok_link") == "sub/deep.txt"
    assert fs.readlink("/sub_link") == "/sub"  # an absolute link inside: shown virtual
    assert str(tree[0]) not in fs.readlink("/sub_link")
    os.symlink(str(tree[0]), tree[0] / "to_root")
    os.symlink(str(tree[0] / ".hidden"), tree[0] / "to_hidden")
    assert fs.readlink("/to_root") == "/"
    assert fs.readlink("/to_hidden") == "/.hidden"
    assert fs.readlink("/etc") == "/etc"  # outside: the link's own text, nothing added


def test_dangling_link(fs):
    assert stat.S_ISLNK(fs.lstat("/dangling").st_mode)
    with pytest.raises(FileNotFoundError):
        fs.stat("/dangling")


def test_symlink_creation(fs, tree):
    fs.symlink("/sub/deep.txt", "/newlink")
    assert fs.open_read("/newlink").read() == b"deep"
    assert fs.readlink("/newlink") == "/sub/deep.txt"
    with pytest.raises(PermissionError):
        fs.symlink("/etc", "/link_to_link_out")
    with pytest.raises(FileExistsError):
        fs.symlink("/sub", "/file.txt")


def test_open_read_directory(fs):
    with pytest.raises(IsADirectoryError):
        fs.open_read("/sub")


def test_remove_directory_refused(fs):
    with pytest.raises(IsADirectoryError):
        fs.remove("/sub")


def test_remove_a_link_to_a_directory(fs, tree):
    fs.remove("/sub_link")
    assert (tree[0] / "sub" / "deep.txt").exists()


def test_non_utf8_file_name(fs, tree):
    raw = os.fsencode(str(tree[0])) + b"/caf\xe9"
    with open(raw, "wb") as f:
        f.write(b"latin-1")
    name = "caf\udce9"
    assert name in fs.listdir("/")
    assert fs.stat("/" + name).st_size == 7
    assert fs.open_read("/" + name).read() == b"latin-1"
    with fs.open_write("/" + name, append=True) as f:
        f.write(b"!")
    fs.rename("/" + name, "/sub/" + name)
    assert os.path.exists(os.fsencode(str(tree[0])) + b"/sub/caf\xe9")
    fs.remove("/sub/" + name)
    assert name not in fs.listdir("/sub")


def test_non_utf8_name_through_a_session(fs, tree):
    """The bytes on the control connection reach the same bytes on disk."""
    from ftpd.auth.base import Account
    from ftpd.core import actions as A
    from ftpd.core.replies import Reply
    from ftpd.core.session import Session, SessionConfig

    with open(os.fsencode(str(tree[0])) + b"/na\xefve", "wb") as f:
        f.write(b"12345")
    s = Session(SessionConfig(fs_factory=lambda acc: fs), ("127.0.0.1", 1), ("127.0.0.1", 21))

    def carry_out(out):
        """Answer the session's asks at once, as the transport's worker pool would."""
        done = []
        for x in out:
            if isinstance(x, A.Call):
                try:
                    result = x.fn(*x.args)
                except OSError as exc:
                    done += carry_out(s.fail(exc))
                else:
                    done += carry_out(s.answer(result))
            else:
                done.append(x)
        return done

    s.start()
    out = s.receive(b"USER alice\r\nPASS pw\r\n")
    auth = [x for x in out if isinstance(x, A.Authenticate)]
    assert auth
    carry_out(s.answer(Account("alice", str(tree[0]), "elradfmwMT")))
    s.receive(b"TYPE I\r\n")
    replies = [x for x in carry_out(s.receive(b"SIZE na\xefve\r\n")) if isinstance(x, Reply)]
    assert replies[0].encode() == b"213 5\r\n"
    replies = [x for x in carry_out(s.receive(b"DELE na\xefve\r\n")) if isinstance(x, Reply)]
    assert replies[0].code == 250
    assert not os.path.exists(os.fsencode(str(tree[0])) + b"/na\xefve")
    replies = [x for x in carry_out(s.receive(b"SIZE /etc/passwd\r\n")) if isinstance(x, Reply)]
    assert replies[0].code == 550
    replies = [x for x in carry_out(s.receive(b"CWD /etc\r\n")) if isinstance(x, Reply)]
    assert replies[0].code == 550


def test_relative_links_with_dotdot_inside(fs, tree):
    root = tree[0]
    os.symlink("../file.txt", root / "sub" / "up")
    os.symlink("../sub_link/deep.txt", root / "sub" / "via_abs")  # relative, then absolute
    os.symlink("up", root / "sub" / "chain")
    assert fs.open_read("/sub/up").read() == b"inside"
    assert fs.open_read("/sub/via_abs").read() == b"deep"
    assert fs.open_read("/sub/chain").read() == b"inside"
    assert fs.stat("/sub_link/../file.txt").st_size == 6  # lexical: /file.txt


def test_dotdot_out_and_back_in_is_refused(fs, tree):
    """A link whose text leaves the root, even to come back, is refused: the walk
    never climbs above the root's fd."""
    os.symlink(f"../{tree[0].name}/file.txt", tree[0] / "round_trip")
    with pytest.raises(PermissionError):
        fs.open_read("/round_trip")


def test_symlink_loop(fs, tree):
    os.symlink("loop_b", tree[0] / "loop_a")
    os.symlink("loop_a", tree[0] / "loop_b")
    assert errno_of(fs.stat, "/loop_a") == errno.ELOOP
    assert errno_of(fs.open_read, "/loop_a/x") == errno.ELOOP


def test_writes_through_a_link_inside(fs, tree):
    with fs.open_write("/sub_link/new.txt") as f:
        f.write(b"new")
    assert (tree[0] / "sub" / "new.txt").read_bytes() == b"new"
    os.symlink("sub/created.txt", tree[0] / "dangling_in")
    with fs.open_write("/dangling_in") as f:  # a dangling link inside: creates its target
        f.write(b"c")
    assert (tree[0] / "sub" / "created.txt").read_bytes() == b"c"
    fs.chmod("/ok_link", 0o600)
    assert stat.S_IMODE(os.stat(tree[0] / "sub" / "deep.txt").st_mode) == 0o600
    fs.utime("/sub_link/deep.txt", 946684800.0)
    assert os.stat(tree[0] / "sub" / "deep.txt").st_mtime == 946684800.0


def test_fifo_is_refused_without_blocking(fs, tree):
    os.mkfifo(tree[0] / "fifo")
    assert errno_of(fs.open_read, "/fifo") == errno.EACCES
    assert errno_of(fs.open_write, "/fifo") in (errno.EACCES, errno.ENXIO)


def test_symlink_creation_then_used_through_the_resolver(fs, tree):
    (tree[0] / "other").mkdir()
    fs.symlink("/sub_link", "/other/made")  # stored absolute: followed since inside
    assert fs.listdir("/other/made") == ["deep.txt"]
    assert fs.readlink("/other/made") == "/sub_link"
    assert os.readlink(tree[0] / "other" / "made") == str(tree[0] / "sub_link")


def errno_of(fn, *args):
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


def test_rename_without_replacing_falls_back_to_link(fs, tree, monkeypatch):
    """Without renameat2 (another OS, an old libc, no ctypes): link then unlink, which
    refuses an existing name just as atomically."""
    from ftpd.fs import syscalls

    monkeypatch.setattr(syscalls, "_openat2_ok", syscalls._openat2_ok)  # restored after
    monkeypatch.setattr(syscalls, "_load", lambda: None)
    with pytest.raises(FileExistsError):
        fs.rename("/sub/deep.txt", "/file.txt", replace=False)
    assert (tree[0] / "file.txt").read_bytes() == b"inside"
    fs.rename("/sub/deep.txt", "/moved.txt", replace=False)
    assert (tree[0] / "moved.txt").read_bytes() == b"deep"
    assert not (tree[0] / "sub" / "deep.txt").exists()


def test_a_recreated_home_gets_a_fresh_handle(tmp_path):
    """LocalFS holds an fd on its root: a home moved away and made anew must not keep
    being served from the old directory (uploads would land in a deleted tree)."""
    from ftpd.app import local_fs as _local_fs
    from ftpd.auth.base import Account

    home = tmp_path / "home"
    home.mkdir()
    (home / "old.txt").write_bytes(b"old")
    account = Account("alice", str(home), "elr")
    first = _local_fs(account)
    assert _local_fs(account) is first and not first.replaced()
    os.rename(home, tmp_path / "home.bak")
    home.mkdir()
    (home / "new.txt").write_bytes(b"new")
    assert first.replaced()
    fresh = _local_fs(account)
    assert fresh is not first and fresh.listdir("/") == ["new.txt"]
    assert first.listdir("/") == ["old.txt"]  # sessions already in keep their tree
