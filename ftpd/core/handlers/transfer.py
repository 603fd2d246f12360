"""Data connections and file transfers: TYPE, MODE, STRU, ALLO, REST, PASV, EPSV,
PORT, EPRT, RETR, STOR, STOU, APPE, ABOR, and how a transfer ends."""

from __future__ import annotations

import errno
import stat
from typing import TYPE_CHECKING, Any

from ftpd.core import actions as A
from ftpd.core.commands import ARG, DEFAULT_TABLE, OPT_ARG, Command, command
from ftpd.core.errors import FTPError, reply_for_oserror
from ftpd.core.events import AbortEvent, ListingEvent, TransferEvent
from ftpd.core.ids import is_ipv6
from ftpd.core.listing import TEMP_PREFIX
from ftpd.core.paths import basename, join, parent
from ftpd.core.textmode import FromNetwork, ToNetwork

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
        s.data_mode = ("active", host, port)
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


def _listen(s: Session, cmd: Command) -> None:
    s.act(A.CloseData())
    s.data_mode = None
    allowed = None if s.config.permit_foreign_addresses else s.peer_host
    s.act(A.ListenPassive(s.config.passive_ports, allowed))
    cmd.deferred = True


@command("PASV", help="PASV (server listens for the data connection)")
def pasv(s: Session, cmd: Command) -> None:
    if s.epsv_all:
        cmd.add_err(501, "PASV not allowed after EPSV ALL.")
    elif is_ipv6(s.local_host) and not s.config.masquerade_address:
        cmd.add_err(501, "PASV is for IPv4; use EPSV on an IPv6 connection.")
    else:
        _listen(s, cmd)


@command("EPSV", arg=OPT_ARG, help="EPSV [<sp> 1 | 2 | ALL]", feat="EPSV")
def epsv(s: Session, cmd: Command) -> None:
    arg = cmd.arg.strip().upper()
    family = "2" if is_ipv6(s.local_host) else "1"
    if arg == "ALL":
        s.epsv_all = True
        cmd.add(200, "EPSV ALL command successful.")
    elif arg and arg != family:
        cmd.add_err(522, f"Network protocol not supported, use ({family}).")
    else:
        _listen(s, cmd)


# -- transfers -----------------------------------------------------------------------
def start_transfer(s: Session, cmd: Command, transfer: A.Transfer, preliminary: str) -> None:
    """Send the preliminary 150, then hand the transfer to the transport."""
    if s.data_mode is None:
        raise FTPError(425, "Use PORT, EPRT, PASV or EPSV first.")
    if s.data_mode[0] == "active":
        transfer.active_addr = (s.data_mode[1], s.data_mode[2])
    transfer.started = s.now()
    transfer.meta["tls"] = s.prot == "P"
    s.transfer = transfer
    s.reply(150, preliminary)
    s.act(A.StartTransfer(transfer))
    cmd.deferred = True


def _check_data_protection(s: Session) -> None:
    from ftpd.core.handlers.login import tls_policy_applies

    if s.prot != "P" and s.account is not None and tls_policy_applies(s, s.account.username):
        raise FTPError(521, "Data connections must be protected: use PROT P.")


def _take_rest(s: Session) -> int:
    offset, s.rest = s.rest, 0
    if offset and s.type == "A":  # REST given in TYPE I, then TYPE A
        raise FTPError(501, "REST with a non-zero offset is not allowed in ASCII mode.")
    return offset


@command("RETR", arg=ARG, perm="r", help="RETR <sp> pathname")
def retr(s: Session, cmd: Command) -> None:
    assert s.fs is not None
    offset = _take_rest(s)
    vpath = s.resolve(cmd.arg)
    _check_data_protection(s)
    if s.data_mode is None:
        raise FTPError(425, "Use PORT, EPRT, PASV or EPSV first.")
    st = s.fs.stat(vpath)
    if not stat.S_ISREG(st.st_mode):
        raise FTPError(550, f"{cmd.arg}: not a regular file.")
    if offset > st.st_size:
        raise FTPError(554, f"Invalid REST offset {offset}: the file has {st.st_size} bytes.")
    f = s.fs.open_read(vpath)
    if offset:
        f.seek(offset)
    t = A.Transfer("send", source=f, transform=ToNetwork() if s.type == "A" else None)
    t.meta.update(kind="download", path=vpath, offset=offset, size=st.st_size)
    mode = "ASCII" if s.type == "A" else "BINARY"
    start_transfer(s, cmd, t, f"Opening {mode} mode data connection for {basename(vpath)} "
                              f"({st.st_size} bytes).")


def _check_restart(s: Session, vpath: str, offset: int) -> None:
    """REST+STOR resumes a file that exists, from at most its end, like REST+RETR: a
    refusal creates and changes nothing (the stat raises ENOENT for a missing file)."""
    assert s.fs is not None
    st = s.fs.stat(vpath)
    if not stat.S_ISREG(st.st_mode):
        raise FTPError(550, f"{basename(vpath)}: not a regular file.")
    if offset > st.st_size:
        raise FTPError(554, f"Invalid REST offset {offset}: the file has {st.st_size} bytes.")


def _receive(s: Session, cmd: Command, vpath: str, *, append: bool = False,
             unique: bool = False) -> None:
    assert s.fs is not None
    offset = _take_rest(s)
    _check_data_protection(s)
    if s.data_mode is None:
        raise FTPError(425, "Use PORT, EPRT, PASV or EPSV first.")
    if offset:
        _check_restart(s, vpath, offset)
        append = False  # RFC 3659 5.4: after REST, APPE acts identically to STOR
    target = vpath
    if s.config.atomic_uploads and not append and not offset \
            and not getattr(s.fs, "uploads_are_atomic", False):  # S3: implied (fs/base.py)
        import secrets

        target = join(parent(vpath), f"{TEMP_PREFIX}{secrets.token_hex(6)}")
    f = s.fs.open_write(target, offset=offset, append=append, exclusive=unique)
    t = A.Transfer("recv", sink=f, transform=FromNetwork() if s.type == "A" else None)
    t.meta.update(kind="upload", path=vpath, temp=target if target != vpath else None,
                  offset=offset, unique=unique)
    mode = "ASCII" if s.type == "A" else "BINARY"
    text = f"FILE: {basename(vpath)}" if unique else \
        f"Opening {mode} mode data connection for {basename(vpath)}."
    start_transfer(s, cmd, t, text)


@command("STOR", arg=ARG, perm="w", help="STOR <sp> pathname")
def stor(s: Session, cmd: Command) -> None:
    _receive(s, cmd, s.resolve(cmd.arg))


@command("APPE", arg=ARG, perm="a", help="APPE <sp> pathname")
def appe(s: Session, cmd: Command) -> None:
    _receive(s, cmd, s.resolve(cmd.arg), append=True)


@command("STOU", arg=OPT_ARG, perm="w", help="STOU (store under a unique name)")
def stou(s: Session, cmd: Command) -> None:
    from ftpd.fs.base import exists

    assert s.fs is not None
    if s.rest:
        s.rest = 0
        raise FTPError(501, "REST is not allowed with STOU.")
    import secrets

    stem = (basename(s.resolve(cmd.arg)) if cmd.arg.strip() else "") or "ftpd"
    for _ in range(20):
        vpath = join(s.cwd, f"{stem}.{secrets.token_hex(4)}")
        if not exists(s.fs, vpath):
            _receive(s, cmd, vpath, unique=True)
            return
    raise FTPError(450, "Could not find a unique file name.")


@command("ABOR", login=False, during_transfer=True, help="ABOR (abort the transfer)")
def abor(s: Session, cmd: Command) -> None:
    if s.transfer is not None and s._deferred is not None:
        s.act(A.CloseData())
        end_transfer(s, s._deferred, "aborted")
        cmd.add(226, "ABOR command successful; transfer aborted.")
        return
    if s.data_mode is not None:
        s.act(A.CloseData())
        s.data_mode = None
    cmd.add(225, "No transfer to abort.")


_STATUS = {None: "OK", "aborted": "ABOR", "reset": "INCOMPLETE", "timeout": "INCOMPLETE",
           "connect": "ERROR"}


def _close_file(t: A.Transfer, failed: bool = False) -> OSError | None:
    f: Any = t.source if t.direction == "send" else t.sink
    close = getattr(f, "close", None)
    if failed and t.direction == "recv":  # a failed upload is discarded, not completed
        close = getattr(f, "abort", close)
    try:
        if close is not None:
            close()
    except OSError as exc:
        return exc
    return None


def _finish_upload(s: Session, t: A.Transfer, ok: bool) -> OSError | FTPError | None:
    """Atomic uploads: rename the temporary into place on success, remove it otherwise.
    STOU never replaces a file someone created at its unique name meanwhile: that file
    is kept, this upload discarded with 450 (the client may send STOU again)."""
    temp = t.meta.get("temp")
    if not temp or s.fs is None:
        return None
    unique = bool(t.meta.get("unique"))
    try:
        if ok and unique:
            s.fs.rename(temp, t.meta["path"], replace=False)
        elif ok:
            s.fs.rename(temp, t.meta["path"])
        else:
            s.fs.remove(temp)
    except OSError as exc:
        if ok:
            try:
                s.fs.remove(temp)
            except OSError:
                pass
        if unique and exc.errno == errno.EEXIST:
            return FTPError(450, f"{basename(t.meta['path'])} was created by someone else "
                                 "meanwhile; it was kept and this upload discarded. "
                                 "Send STOU again.")
        return exc
    return None


def end_transfer(s: Session, cmd: Command, error: str | OSError | FTPError | None) -> None:
    """Close the file, reply 226 or the failure, raise the transfer's event."""
    t = s.transfer
    assert t is not None
    s.transfer = None
    s.data_mode = None
    close_error = _close_file(t, failed=error is not None)
    if error is None and close_error is not None:
        error = close_error
    kind = t.meta.get("kind")
    if kind == "upload":
        rename_error = _finish_upload(s, t, error is None)
        if error is None and rename_error is not None:
            error = rename_error
    if error is None:
        extra = f" (unique file name: {basename(t.meta['path'])})" if t.meta.get("unique") else ""
        cmd.add(226, f"Transfer complete{extra}.")
        status = "OK"
    elif isinstance(error, OSError):
        cmd.add_err(*reply_for_oserror(error))
        status = "ERROR"
    elif isinstance(error, FTPError):
        cmd.add_err(error.code, error.text)
        status = "ERROR"
    elif error == "connect":
        cmd.add_err(425, "Can't open data connection.")
        status = "ERROR"
    elif error == "tls":
        cmd.add_err(425, "TLS on the data connection failed (it must resume the control "
                         "connection's TLS session).")
        status = "ERROR"
    elif error == "timeout":
        cmd.add_err(426, "Data connection timed out; transfer aborted.")
        status = "INCOMPLETE"
    elif error == "aborted":
        cmd.add_err(426, "Transfer aborted.")
        status = "ABOR"
    elif isinstance(error, FTPError):  # the source refused mid-way (a listing's budget)
        cmd.add_err(error.code, error.text)
        status = "ERROR"
    elif error == "failed":  # the pump caught an exception (logged there)
        cmd.add_err(426, "Transfer failed: server-side error; transfer aborted.")
        status = "ERROR"
    else:
        cmd.add_err(426, "Data connection closed; transfer aborted.")
        status = "INCOMPLETE"
    cmd.info["transfer_reported"] = True
    now = s.now()
    duration = max(0.0, now - t.started)
    info = s.info()
    if kind in ("download", "upload"):
        key = "down" if kind == "download" else "up"
        s.stats["bytes_" + key] += t.bytes_done
        if status == "OK":
            s.stats["files_" + key] += 1
        size = t.meta.get("size")
        if size is None and s.fs is not None:
            try:
                size = s.fs.stat(t.meta["path"]).st_size
            except OSError:
                size = t.bytes_done
        event = TransferEvent(info, now, kind, t.meta["path"], t.bytes_done, duration, status,
                              s.type, t.meta.get("offset", 0), int(size or 0), cmd.verb)
        cmd.after.append(A.Emit("fs." + kind, event))
    elif kind == "listing":
        cmd.after.append(A.Emit("fs.listing", ListingEvent(
            info, now, t.meta["path"], status, t.meta.get("pattern", ""), False, cmd.verb)))
    if status == "ABOR":
        cmd.after.append(A.Emit("transfer.abort", AbortEvent(info, now, t.meta.get("path", ""),
                                                            cmd.verb)))
    s._complete(cmd)  # a QUIT waiting for the transfer follows (Session._after_transfer)


def report_refused_transfer(s: Session, cmd: Command) -> None:
    """POST_ERR hook: a RETR/STOR/APPE/STOU that failed before any data moved still gets
    its event (EVENTS.md: status PERM, NOENT or ERROR), so receivers see refusals too."""
    if s.account is None or cmd.info.get("transfer_reported"):
        return
    import errno

    code = cmd.info.get("errno")
    if cmd.info.get("refused") or code in (errno.EACCES, errno.EPERM):
        status = "PERM"
    elif code in (errno.ENOENT, errno.ENOTDIR):
        status = "NOENT"
    else:
        status = "ERROR"
    try:
        path = s.resolve(cmd.arg) if cmd.arg.strip() else s.cwd
    except FTPError:
        path = s.cwd
    kind = "download" if cmd.verb == "RETR" else "upload"
    event = TransferEvent(s.info(), s.now(), kind, path, 0, 0.0, status, s.type, s.rest, 0,
                          cmd.verb)
    cmd.after.append(A.Emit("fs." + kind, event))


for _verb in ("RETR", "STOR", "APPE", "STOU"):
    DEFAULT_TABLE.add_hook("post_err", _verb, report_refused_transfer)
