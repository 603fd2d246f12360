"""USER, PASS, ACCT, REIN, QUIT: who the session is, and how it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftpd.core import actions as A
from ftpd.core.commands import ARG, OPT_ARG, Command, command
from ftpd.core.dispatch import Steps
from ftpd.core.events import LoginEvent, LoginFailedEvent
from ftpd.core.limits import usage_of
from ftpd.log import get_logger

if TYPE_CHECKING:
    from ftpd.auth.base import Account
    from ftpd.core.session import Session

log = get_logger("ftpd.session")


def tls_policy_applies(s: Session, name: str) -> bool:
    """``--tls required`` covers this user: their login and their data are protected."""
    if s.config.tls_mode != "required":
        return False
    return not s.is_anonymous_name(name) or s.config.tls_anonymous


def tls_required_for(s: Session, name: str) -> bool:
    """USER must be refused: the policy applies and the control connection is clear."""
    return tls_policy_applies(s, name) and not s.tls_active


@command("USER", arg=ARG, login=False, help="USER <sp> user-name")
def user(s: Session, cmd: Command) -> None:
    if s.account is not None:
        cmd.add_err(530, "Already logged in; use REIN to change user.")
        return
    name = cmd.arg
    if tls_required_for(s, name):
        cmd.add_err(530, "TLS required: use AUTH TLS before logging in as this user.")
        return
    s.username = name
    if s.is_anonymous_name(name):
        cmd.add(331, "Anonymous login okay, send your email address as password.")
    else:
        cmd.add(331, f"Password required for {name}.")


@command("PASS", arg=OPT_ARG, login=False, help="PASS <sp> password", secret=True)
def password(s: Session, cmd: Command) -> Steps:
    if s.account is not None:
        cmd.add_err(503, "Already logged in.")
        return
    if s.username is None:
        cmd.add_err(503, "Login with USER first.")
        return
    account = yield A.Authenticate(s.username, cmd.arg)
    failure = "Login incorrect."
    if account is not None:
        try:
            fs = yield s.ask(s.config.fs_factory, account)
        except OSError as exc:
            failure = f"Home directory not available ({exc.strerror})."
        else:
            if not s.admit(account.username, account.max_sessions):
                _too_many_sessions(s, cmd, account)
                return
            if account.quota and account.username not in s.config.ledger.usage:
                used = yield s.ask(usage_of, fs)  # the first session of this user measures
                s.config.ledger.usage.setdefault(account.username, used)
            s.account, s.fs, s.cwd = account, fs, "/"
            s.config.throttle.succeeded(s.peer_host, s.username or "")
            s.login_failures = 0
            cmd.add(230, "Login successful.")
            if s.config.listens("session.login"):
                cmd.after.append(A.Emit("session.login", LoginEvent(s.info(), s.now())))
            return
    yield from _failed_login(s, cmd, failure)


def _too_many_sessions(s: Session, cmd: Command, account: Account) -> None:
    """max-sessions reached: 530 and close, as ProFTPD's MaxClientsPerUser does. Not a
    failed login (the password was right): no login-failed event, no throttle."""
    from ftpd.sessionlog import field

    most = account.max_sessions
    log.info("[%s] LOGIN REFUSED user=%s reason=max-sessions from=%s", s.session_id,
             field(account.username), s.peer_host)  # from= last, as in every session line
    s.username = None
    cmd.add_err(530, f"Sorry, {account.username} already has the most sessions allowed "
                     f"({most}); try again later.")
    cmd.after.extend(s.closing_actions("ERROR"))


def _failed_login(s: Session, cmd: Command, failure: str) -> Steps:
    """530 after the throttle's delay (the loop goes on meanwhile); the last allowed
    failure closes the session."""
    now = s.now()
    s.login_failures += 1
    name, s.username = s.username or "", None
    cmd.after.append(A.Emit("session.login-failed",
                            LoginFailedEvent(s.info(), now, name, s.login_failures)))
    delay = s.config.throttle.failed(s.peer_host, now, name)
    if delay > 0:
        yield A.Wait(delay)
    cmd.add_err(530, failure)
    if s.login_failures >= s.config.max_login_attempts:
        cmd.after.extend(s.closing_actions("ERROR"))


@command("ACCT", arg=ARG, login=False, help="ACCT <sp> account-information")
def acct(s: Session, cmd: Command) -> None:
    cmd.add(202, "ACCT not needed at this site.")


@command("REIN", login=False, help="REIN (reinitialize: log out, keep the connection)")
def rein(s: Session, cmd: Command) -> None:
    if s.account is not None:
        cmd.after.append(A.Emit("session.logout", s.logout_event("QUIT")))
    s.act(A.CloseData())
    s.reset_login()
    cmd.add(220, "Ready for a new user.")


@command("QUIT", login=False, during_transfer=True, help="QUIT (end the session)")
def quit_(s: Session, cmd: Command) -> Steps:
    if s.transfer is not None:
        yield A.AwaitCommand()  # let the transfer finish; QUIT's reply follows its reply
    cmd.add(221, "Goodbye.")
    cmd.after.extend(s.closing_actions("QUIT"))
