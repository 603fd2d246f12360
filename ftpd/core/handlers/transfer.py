"""Data connections and file transfers: TYPE, MODE, STRU, ALLO, REST, PASV, EPSV,
PORT, EPRT, RETR, STOR, STOU, APPE, ABOR. How a transfer runs and ends: ``flow``."""

from __future__ import annotations

import errno
import stat
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, BinaryIO

from ftpd.core import actions as A
from ftpd.core import dropbox
from ftpd.core.commands import ARG, OPT_ARG, Command, command
from ftpd.core.dispatch import Steps
from ftpd.core.errors import FTPError
from ftpd.core.handlers.flow import check_data_protection, run_transfer, size_of
from ftpd.core.ids import is_ipv6
from ftpd.core.limits import QuotaWriter
from ftpd.core.listing import TEMP_PREFIX
from ftpd.core.paths import basename, join, parent, resolve
from ftpd.core.textmode import FromNetwork, ToNetwork
from ftpd.fs.base import FileSystem, exists

if TYPE_CHECKING:
    from ftpd.core.session import Session


@command("TYPE", arg=ARG, help="TYPE <sp> A | I | L 8")
def type_(s: Session, cmd: Command) -> None:
    words = cmd.arg.upper().split()
    if words in (["A"], ["A", "N"]):
        s.type = "A"
    elif words in (["I"], ["L", "8"], ["L"]):
        s.type = "I"
    else:
        cmd.add_err(504, f"TYPE {cmd.arg[:16]} not implemented; use A or I.")
        return
    cmd.add(200, f"Type set to {s.type}.")


@command("MODE", arg=ARG, help="MODE <sp> S")
def mode(s: Session, cmd: Command) -> None:
    if cmd.arg.upper() == "S":
        cmd.add(200, "Mode set to S.")
    elif cmd.arg.upper() in ("B", "C", "Z"):
        cmd.add_err(504, f"MODE {cmd.arg.upper()} not implemented; only S.")
    else:
        cmd.add_err(501, "Unknown MODE; only S is supported.")


@command("STRU", arg=ARG, help="STRU <sp> F")
def stru(s: Session, cmd: Command) -> None:
    if cmd.arg.upper() == "F":
        cmd.add(200, "Structure set to F.")
    elif cmd.arg.upper() in ("R", "P"):
        cmd.add_err(504, f"STRU {cmd.arg.upper()} not implemented; only F.")
    else:
        cmd.add_err(501, "Unknown STRU; only F is supported.")


@command("ALLO", arg=ARG, help="ALLO <sp> bytes")
def allo(s: Session, cmd: Command) -> None:
    cmd.add(202, "No storage allocation necessary.")


MAX_OFFSET = 2**63 - 1  # the largest offset a file (off_t) can hold


@command("REST", arg=ARG, help="REST <sp> offset", feat="REST STREAM")
def rest(s: Session, cmd: Command) -> None:
    s.rest = 0  # a refused REST leaves no marker behind either
    arg = cmd.arg
    offset = int(arg) if arg.isascii() and arg.isdigit() else -1
    if not 0 <= offset <= MAX_OFFSET:
        cmd.add_err(501, f"Invalid REST offset: give an integer from 0 to {MAX_OFFSET}.")
    elif offset and s.type == "A":
        cmd.add_err(501, "REST with a non-zero offset is not allowed in ASCII mode; use TYPE I.")
    else:
        s.rest = offset
        cmd.add(350, f"Restarting at {offset}. Send STOR or RETR to start the transfer.")


# -- data connection set-up --------------------------------------------------------
def _check_active(s: Session, cmd: Command, host: str, port: int) -> bool:
    if s.epsv_all:
        cmd.add_err(501, f"{cmd.verb} not allowed after EPSV ALL.")
    elif host != s.peer_host and not s.config.permit_foreign_addresses:
        cmd.add_err(501, "Rejected: the data address differs from the client's (FTP bounce).")
    elif port < 1024:
        cmd.add_err(501, "Rejected: data connections to privileged ports are not allowed.")
    else:
        s.act(A.CloseData())
        s.data_mode = A.Active(host, port)
        cmd.add(200, f"{cmd.verb} command successful. Consider using PASV.")
        return True
    return False


@command("PORT", arg=ARG, help="PORT <sp> h1,h2,h3,h4,p1,p2")
def port(s: Session, cmd: Command) -> None:
    try:
        nums = [int(x) for x in cmd.arg.split(",")]
        if len(nums) != 6 or not all(0 <= n <= 255 for n in nums):
            raise ValueError
    except ValueError:
        cmd.add_err(501, "Syntax error in PORT: h1,h2,h3,h4,p1,p2 with numbers 0-255.")
        return
    if is_ipv6(s.peer_host):
        cmd.add_err(501, "PORT is for IPv4; use EPRT on an IPv6 connection.")
        return
    _check_active(s, cmd, ".".join(map(str, nums[:4])), nums[4] * 256 + nums[5])


@command("EPRT", arg=ARG, help="EPRT <sp> |proto|address|port|", feat="EPRT")
def eprt(s: Session, cmd: Command) -> None:
    arg = cmd.arg
    parts = arg[1:-1].split(arg[0]) if len(arg) > 2 and arg[-1] == arg[0] else []
    if len(parts) != 3:
        cmd.add_err(501, "Syntax error in EPRT: |proto|address|port|.")
        return
    proto, host, port_text = parts
    import ipaddress
    if proto not in ("1", "2"):
        cmd.add_err(522, "Network protocol not supported, use (1,2).")
        return
    try:
        addr = ipaddress.ip_address(host)
        port_num = int(port_text)
        if addr.version != (4 if proto == "1" else 6) or not 0 < port_num < 65536:
            raise ValueError
    except ValueError:
        cmd.add_err(501, "Syntax error in EPRT: bad address or port.")
        return
    _check_active(s, cmd, str(addr), port_num)


def _listen(s: Session, cmd: Command) -> Generator[Any, Any, int | None]:
    """Ask for a passive listener; its port, or None (the 425 is in the chain)."""
    s.act(A.CloseData())
    s.data_mode = None
    allowed = None if s.config.permit_foreign_addresses else s.peer_host
    try:
        port = yield A.ListenPassive(s.config.passive_ports, allowed)
    except OSError as exc:
        reason = "no free passive port" if exc.errno == errno.EADDRINUSE else exc.strerror
        cmd.add_err(425, f"Can't open passive connection: {reason or 'error'}")
        return None
    s.data_mode = A.Passive()
    return port


@command("PASV", help="PASV (server listens for the data connection)")
def pasv(s: Session, cmd: Command) -> Steps:
    if s.epsv_all:
        cmd.add_err(501, "PASV not allowed after EPSV ALL.")
    elif is_ipv6(s.local_host) and not s.config.masquerade_address:
        cmd.add_err(501, "PASV is for IPv4; use EPSV on an IPv6 connection.")
    else:
        port = yield from _listen(s, cmd)
        if port is not None:
            h = (s.config.masquerade_address or s.local_host).replace(".", ",")
            cmd.add(227, f"Entering Passive Mode ({h},{port >> 8},{port & 0xFF}).")


@command("EPSV", arg=OPT_ARG, help="EPSV [<sp> 1 | 2 | ALL]", feat="EPSV")
def epsv(s: Session, cmd: Command) -> Steps:
    arg = cmd.arg.strip().upper()
    family = "2" if is_ipv6(s.local_host) else "1"
    if arg == "ALL":
        s.epsv_all = True
        cmd.add(200, "EPSV ALL command successful.")
    elif arg and arg != family:
        cmd.add_err(522, f"Network protocol not supported, use ({family}).")
    else:
        port = yield from _listen(s, cmd)
        if port is not None:
            cmd.add(229, f"Entering Extended Passive Mode (|||{port}|)")


# -- transfers -----------------------------------------------------------------------
def _take_rest(s: Session) -> int:
    offset, s.rest = s.rest, 0
    if offset and s.type == "A":  # REST given in TYPE I, then TYPE A
        raise FTPError(501, "REST with a non-zero offset is not allowed in ASCII mode.")
    return offset


def _need_data_connection(s: Session) -> None:
    if s.data_mode is None:
        raise FTPError(425, "Use PORT, EPRT, PASV or EPSV first.")


def open_read_at(fs: FileSystem, vpath: str, offset: int) -> BinaryIO:
    """Open for RETR and seek to a restart offset (in the worker pool: both may block)."""
    f = fs.open_read(vpath)
    if offset:
        try:
            f.seek(offset)
        except BaseException:
            f.close()
            raise
    return f


def open_write(fs: FileSystem, vpath: str, offset: int, append: bool,
               exclusive: bool) -> BinaryIO:
    return fs.open_write(vpath, offset=offset, append=append, exclusive=exclusive)


def _check_file(st: Any, name: str, offset: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise FTPError(550, f"{name}: not a regular file.")
    if offset > st.st_size:
        raise FTPError(554, f"Invalid REST offset {offset}: the file has {st.st_size} bytes.")


@command("RETR", arg=ARG, perm="r", help="RETR <sp> pathname")
def retr(s: Session, cmd: Command) -> Steps:
    assert s.fs is not None
    offset = _take_rest(s)
    vpath = s.resolve(cmd.arg)
    check_data_protection(s)
    _need_data_connection(s)
    st = yield s.ask(s.fs.stat, vpath)
    _check_file(st, cmd.arg, offset)
    f = yield s.ask(open_read_at, s.fs, vpath, offset)
    t = A.Transfer(A.Kind.DOWNLOAD, vpath, source=f, offset=offset, size=st.st_size,
                   transform=ToNetwork() if s.type == "A" else None)
    mode = "ASCII" if s.type == "A" else "BINARY"
    yield from run_transfer(s, cmd, t, f"Opening {mode} mode data connection for "
                                       f"{basename(vpath)} ({st.st_size} bytes).")


def _receive(s: Session, cmd: Command, vpath: str, *, append: bool = False,
             unique: bool = False) -> Steps:
    assert s.fs is not None
    offset = _take_rest(s)
    check_data_protection(s)
    _need_data_connection(s)
    drop_box = dropbox.upload_into(s, vpath)  # new files only: an exclusive create, in place
    if drop_box and (offset or append):
        cmd.info["refused"] = True
        raise FTPError(550, "Permission denied.")
    if offset:
        # REST+STOR resumes a file that exists, from at most its end, like REST+RETR:
        # a refusal creates and changes nothing (the stat raises ENOENT for a missing file)
        st = yield s.ask(s.fs.stat, vpath)
        _check_file(st, basename(vpath), offset)
        append = False  # RFC 3659 5.4: after REST, APPE acts identically to STOR
    target = vpath
    atomic_already = getattr(s.fs, "uploads_are_atomic", False)  # an object store
    if s.config.atomic_uploads and not (append or offset or atomic_already or drop_box):
        target = join(parent(vpath), f"{TEMP_PREFIX}{s.config.token(6)}")
    room = old = None
    if s.account is not None and s.account.quota:
        old = yield s.ask(size_of, s.fs, vpath, 0)
        room = _quota_room(s, s.account.quota, old, offset, append)
    f = yield s.ask(open_write, s.fs, target, offset, append, unique or drop_box)
    if room is not None:
        f = QuotaWriter(f, room, s.account.quota)
    t = A.Transfer(A.Kind.UPLOAD, vpath, sink=f, offset=offset, unique=unique,
                   temp=target if target != vpath else None, old_size=old,
                   transform=FromNetwork() if s.type == "A" else None)
    mode = "ASCII" if s.type == "A" else "BINARY"
    text = f"FILE: {basename(vpath)}" if unique else \
        f"Opening {mode} mode data connection for {basename(vpath)}."
    yield from run_transfer(s, cmd, t, text)


def _quota_room(s: Session, quota: int, old: int, offset: int, append: bool) -> int:
    """Bytes this upload may write: what the quota leaves, plus what it overwrites (the
    file it replaces, or past a REST offset the part up to the old end: only growth
    counts). None left: ``552`` before the file is opened (so a STOR cannot even
    truncate the file it would replace)."""
    assert s.account is not None
    used = s.config.ledger.usage.get(s.account.username, 0)
    room = quota - used + (0 if append else old - offset)
    if room <= 0:
        raise FTPError(552, f"Quota exceeded: {used} of {quota} bytes used.")
    return room


@command("STOR", arg=ARG, perm="w", help="STOR <sp> pathname")
def stor(s: Session, cmd: Command) -> Steps:
    return _receive(s, cmd, s.resolve(cmd.arg))


@command("APPE", arg=ARG, perm="a", help="APPE <sp> pathname")
def appe(s: Session, cmd: Command) -> Steps:
    return _receive(s, cmd, s.resolve(cmd.arg), append=True)


@command("STOU", arg=OPT_ARG, perm="w", help="STOU (store under a unique name)")
def stou(s: Session, cmd: Command) -> Steps:
    assert s.fs is not None
    if s.rest:
        s.rest = 0
        raise FTPError(501, "REST is not allowed with STOU.")
    stem = (basename(resolve(s.cwd, cmd.arg)) if cmd.arg.strip() else "") or "ftpd"
    for _ in range(20):
        vpath = s.resolve(f"{stem}.{s.config.token(4)}")  # the path policy sees the name
        taken = yield s.ask(exists, s.fs, vpath)
        if not taken:
            yield from _receive(s, cmd, vpath, unique=True)
            return
    raise FTPError(450, "Could not find a unique file name.")


@command("ABOR", login=False, during_transfer=True, overtakes=True,
         help="ABOR (abort the transfer)")
def abor(s: Session, cmd: Command) -> Steps:
    if s.transfer is not None:
        s.act(A.CloseData())
        s.abort_transfer()  # the transfer's command ends it (ABORTED: 426) ...
        yield A.AwaitCommand(first=True)  # ... and replies before this 226
        cmd.add(226, "ABOR command successful; transfer aborted.")
        return
    if s.data_mode is not None:
        s.act(A.CloseData())
        s.data_mode = None
    cmd.add(225, "No transfer to abort.")
