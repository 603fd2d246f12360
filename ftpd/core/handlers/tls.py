"""AUTH, PBSZ, PROT, CCC (RFC 2228 / RFC 4217): protecting the control and data
connections. The handshake itself is the transport's job (the StartTLS action)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftpd.core import actions as A
from ftpd.core.commands import ARG, Command, command
from ftpd.core.dispatch import Steps

if TYPE_CHECKING:
    from ftpd.core.session import Session


@command("AUTH", arg=ARG, login=False, help="AUTH <sp> TLS | SSL", feat="AUTH TLS")
def auth(s: Session, cmd: Command) -> Steps:
    mechanism = cmd.arg.strip().upper()
    if not s.config.tls_available:
        cmd.add_err(502, "TLS is not configured on this server.")
    elif mechanism not in ("TLS", "SSL", "TLS-C", "TLS-P"):
        cmd.add_err(504, f"AUTH {mechanism[:16]} not supported; use AUTH TLS.")
    elif s.tls_active:
        cmd.add_err(503, "The control connection is already protected.")
    elif s.account is not None:
        cmd.add_err(503, "AUTH must come before login.")
    else:
        cmd.add(234, f"AUTH {mechanism} successful.")
        yield A.StartTLS()  # after the 234, which the client reads in the clear
        s.tls_active = True


@command("PBSZ", arg=ARG, login=False, help="PBSZ <sp> 0", feat="PBSZ")
def pbsz(s: Session, cmd: Command) -> None:
    if not s.tls_active:
        cmd.add_err(503, "PBSZ needs a protected control connection (AUTH TLS first).")
    elif not cmd.arg.strip().isdigit():
        cmd.add_err(501, "PBSZ takes a number (0 for TLS).")
    else:
        s.pbsz_set = True
        cmd.add(200, "PBSZ=0")


@command("PROT", arg=ARG, login=False, help="PROT <sp> C | P", feat="PROT")
def prot(s: Session, cmd: Command) -> None:
    level = cmd.arg.strip().upper()
    if not s.tls_active or not s.pbsz_set:
        cmd.add_err(503, "PROT needs AUTH TLS and PBSZ first.")
    elif level == "P":
        s.prot = "P"
        cmd.add(200, "Protection level set to Private.")
    elif level == "C":
        from ftpd.core.handlers.login import tls_policy_applies

        if s.account is not None and tls_policy_applies(s, s.account.username):
            cmd.add_err(534, "Data connections must be protected for this user (PROT P).")
            return
        s.prot = "C"
        cmd.add(200, "Protection level set to Clear.")
    elif level in ("S", "E"):
        cmd.add_err(536, f"PROT {level} not supported; use C or P.")
    else:
        cmd.add_err(504, "Unknown protection level; use C or P.")


@command("CCC", login=False, help="CCC (clear the control channel; refused here)")
def ccc(s: Session, cmd: Command) -> None:
    if not s.tls_active:
        cmd.add_err(533, "The control connection is not protected.")
    else:
        cmd.add_err(534, "CCC refused: the control connection stays protected.")
