"""How a transfer runs and ends, for every command that moves data (RETR, STOR, APPE,
STOU, LIST, NLST, MLSD): the 150, the wait for the transport, then closing the file and
the atomic rename (asked of the worker pool, as cleanups: they happen even if the client
has gone), the reply for the outcome and the transfer's event."""

from __future__ import annotations

import errno
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ftpd.core import actions as A
from ftpd.core.commands import DEFAULT_TABLE, Command
from ftpd.core.dispatch import Steps
from ftpd.core.errors import FTPError, reply_for_oserror
from ftpd.core.events import AbortEvent, ListingEvent, TransferEvent
from ftpd.core.paths import basename, resolve
from ftpd.fs.base import FileSystem
from ftpd.log import get_logger

if TYPE_CHECKING:
    from ftpd.core.session import Session
    from ftpd.core.view import SessionView

log = get_logger("ftpd.session")
def check_data_protection(s: Session) -> None:
    from ftpd.core.handlers.login import tls_policy_applies

    if s.prot != "P" and s.account is not None and tls_policy_applies(s, s.account.username):
        raise FTPError(521, "Data connections must be protected: use PROT P.")


def run_transfer(s: Session, cmd: Command, transfer: A.Transfer, preliminary: str) -> Steps:
    """Send the preliminary 150, hand the transfer to the transport, wait for its end
    (ABOR and a lost connection end it too), then finish it."""
    assert s.data_mode is not None, "the handler checks for a data connection first"
    transfer.mode = s.data_mode
    transfer.started = s.now()
    transfer.tls = s.prot == "P"
    transfer.max_rate = s.max_rate  # the transport limits this session's transfers
    s.transfer = transfer
    s.reply(150, preliminary)
    end = yield A.StartTransfer(transfer)
    if not isinstance(end, A.TransferEnd):  # a transport's bug: say so, end it cleanly
        log.error("[%s] a transfer ended with %r, not a TransferEnd", s.session_id, end)
        end = A.TransferEnd(A.Outcome.FAILED)
    yield from end_transfer(s, cmd, end)


# -- in the worker pool: these may block --------------------------------------------
def close_file(f: Any) -> OSError | None:
    """Close a transfer's file; the error instead of raising it (the reply needs it)."""
    try:
        f.close()
    except OSError as exc:
        return exc
    return None


def abort_file(f: Any) -> None:
    """Discard a failed upload (``abort()``, fs/base.py: an object store leaves nothing)."""
    try:
        f.abort()
    except OSError:
        pass


def finish_upload(fs: FileSystem, temp: str, path: str, ok: bool,
                  unique: bool) -> OSError | FTPError | None:
    """Atomic uploads: rename the temporary into place on success, remove it otherwise.
    STOU never replaces a file someone created at its unique name meanwhile: that file
    is kept, this upload discarded with 450 (the client may send STOU again)."""
    try:
        if ok and unique:
            fs.rename(temp, path, replace=False)
        elif ok:
            fs.rename(temp, path)
        else:
            fs.remove(temp)
    except OSError as exc:
        if ok:
            try:
                fs.remove(temp)
            except OSError:
                pass
        if unique and exc.errno == errno.EEXIST:
            return FTPError(450, f"{basename(path)} was created by someone else meanwhile; "
                                 "it was kept and this upload discarded. Send STOU again.")
        return exc
    return None


def size_of(fs: FileSystem, path: str, default: int) -> int:
    try:
        return fs.stat(path).st_size
    except OSError:
        return default


# -- on the loop ---------------------------------------------------------------------
def _failure(error: OSError | FTPError | None) -> A.TransferEnd | None:
    """What a file's close or an atomic upload's rename did to a complete transfer."""
    if error is None:
        return None
    return A.TransferEnd(A.Outcome.OS_ERROR if isinstance(error, OSError)
                         else A.Outcome.REFUSED, error)


def _finish_files(s: Session, t: A.Transfer,
                  end: A.TransferEnd) -> Generator[Any, Any, A.TransferEnd]:
    """Close the file and settle an atomic upload; the end, worsened by their errors."""
    ok = end.outcome is A.Outcome.OK
    f: Any = t.source if t.direction is A.Direction.SEND else t.sink
    if t.kind is A.Kind.LISTING:
        getattr(f, "close", lambda: None)()  # a generator: nothing to wait for
    elif not ok and t.direction is A.Direction.RECV and hasattr(f, "abort"):
        yield s.cleanup(abort_file, f)  # a failed upload, discarded rather than completed
    elif f is not None and hasattr(f, "close"):
        close_error = yield s.cleanup(close_file, f)
        if ok and close_error is not None:
            end, ok = _failure(close_error) or end, False
    if t.kind is A.Kind.UPLOAD and t.temp and s.fs is not None:
        rename_error = yield s.cleanup(finish_upload, s.fs, t.temp, t.path, ok, t.unique)
        if ok:
            end = _failure(rename_error) or end
    return end


Out = A.Outcome
_REPLIES: dict[A.Outcome, tuple[int, str, str]] = {  # code, text, the event's status
    Out.CONNECT_FAILED: (425, "Can't open data connection.", "ERROR"),
    Out.TLS_REFUSED: (425, "TLS on the data connection failed (it must resume the control "
                         "connection's TLS session).", "ERROR"),
    Out.TIMEOUT: (426, "Data connection timed out; transfer aborted.", "INCOMPLETE"),
    Out.RESET: (426, "Data connection closed; transfer aborted.", "INCOMPLETE"),
    Out.ABORTED: (426, "Transfer aborted.", "ABOR"),
    Out.FAILED: (426, "Transfer failed: server-side error; transfer aborted.", "ERROR"),
}


def _reply_for(cmd: Command, t: A.Transfer, end: A.TransferEnd) -> str:
    """Put the outcome's reply in the chain; returns the event status."""
    outcome, error = end
    if outcome is Out.OK:
        extra = f" (unique file name: {basename(t.path)})" if t.unique else ""
        cmd.add(226, f"Transfer complete{extra}.")
        return "OK"
    if isinstance(error, OSError):  # OS_ERROR (or any outcome an OSError caused)
        cmd.add_err(*reply_for_oserror(error))
        return "ERROR"
    if isinstance(error, FTPError):  # REFUSED: the source refused mid-way
        cmd.add_err(error.code, error.text)
        return "ERROR"
    code, text, status = _REPLIES.get(outcome, _REPLIES[Out.FAILED])
    cmd.add_err(code, text)
    return status


def end_transfer(s: Session, cmd: Command, end: A.TransferEnd) -> Steps:
    """Close the file, reply 226 or the failure, raise the transfer's event."""
    t = s.transfer
    assert t is not None
    s.transfer = None
    s.data_mode = None
    end = yield from _finish_files(s, t, end)
    status = _reply_for(cmd, t, end)
    cmd.info["transfer_reported"] = True
    now = s.now()
    duration = max(0.0, now - t.started)
    info = s.info()
    if t.kind is A.Kind.LISTING:
        cmd.after.append(A.Emit("fs.listing", ListingEvent(
            info, now, t.path, status, t.pattern, False, cmd.verb)))
    else:
        kind = t.kind.value
        key = "down" if t.kind is A.Kind.DOWNLOAD else "up"
        s.stats["bytes_" + key] += t.bytes_done
        if status == "OK":
            s.stats["files_" + key] += 1
        size = t.size
        if size is None and s.fs is not None:
            size = yield s.cleanup(size_of, s.fs, t.path, t.bytes_done)
        if t.old_size is not None and s.account is not None:  # what the upload changed
            s.config.ledger.grow(s.account.username, int(size or 0) - t.old_size)
        event = TransferEvent(info, now, kind, t.path, t.bytes_done, duration, status,
                              s.type, t.offset, int(size or 0), cmd.verb)
        cmd.after.append(A.Emit("fs." + kind, event))
    if status == "ABOR":
        cmd.after.append(A.Emit("transfer.abort", AbortEvent(info, now, t.path, cmd.verb)))


def report_refused_transfer(view: SessionView, cmd: Command) -> None:
    """POST_ERR hook: a RETR/STOR/APPE/STOU that failed before any data moved still gets
    its event (EVENTS.md: status PERM, NOENT or ERROR), so receivers see refusals too."""
    if view.account is None or cmd.info.get("transfer_reported"):
        return
    code = cmd.info.get("errno")
    if cmd.info.get("refused") or code in (errno.EACCES, errno.EPERM):
        status = "PERM"
    elif code in (errno.ENOENT, errno.ENOTDIR):
        status = "NOENT"
    else:
        status = "ERROR"
    try:  # the path as named (the path policy refused it, perhaps)
        path = resolve(view.cwd, cmd.arg) if cmd.arg.strip() else view.cwd
    except FTPError:
        path = view.cwd
    kind = "download" if cmd.verb == "RETR" else "upload"
    event = TransferEvent(view.info(), view.now(), kind, path, 0, 0.0, status, view.type,
                          view.rest, 0, cmd.verb)
    view.emit("fs." + kind, event)


for _verb in ("RETR", "STOR", "APPE", "STOU"):
    DEFAULT_TABLE.add_hook("post_err", _verb, report_refused_transfer)
