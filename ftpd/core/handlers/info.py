"""SYST, NOOP, FEAT, OPTS, HELP: what the server is and what it can do. FEAT and HELP
are derived from the command table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftpd.core.commands import ARG, OPT_ARG, Command, CommandSpec, command
from ftpd.core.handlers.checksums import feature_line as hash_feature_line
from ftpd.core.handlers.checksums import opts_hash

if TYPE_CHECKING:
    from ftpd.core.session import Session

KNOWN_FACTS = ("type", "size", "modify", "perm", "unique", "unix.mode")
TLS_FEATURES = ("AUTH", "PBSZ", "PROT", "CCC")


@command("SYST", login=False, help="SYST (the system type)")
def syst(s: Session, cmd: Command) -> None:
    cmd.add(215, "UNIX Type: L8")


@command("NOOP", login=False, during_transfer=True, help="NOOP (do nothing)")
def noop(s: Session, cmd: Command) -> None:
    cmd.add(200, "NOOP ok.")


def feature_lines(s: Session) -> list[str]:
    lines = []
    for feat in s.table.features():
        if not s.config.tls_available and feat.split()[0] in TLS_FEATURES:
            continue
        if feat == "MLST":
            facts = "".join(f"{f}{'*' if f in s.mlst_facts else ''};" for f in KNOWN_FACTS)
            feat = f"MLST {facts}"
        elif feat == "HASH":
            feat = hash_feature_line(s)
        lines.append(feat)
    return lines


@command("FEAT", login=False, help="FEAT (list the extensions)", feat="UTF8")
def feat(s: Session, cmd: Command) -> None:
    cmd.add(211, "Features:")
    extra = ["AUTH SSL"] if s.config.tls_available else []
    for line in sorted(feature_lines(s) + extra + ["TVFS"]):
        cmd.add(211, line)
    cmd.add(211, "End")


@command("OPTS", arg=ARG, login=False,
         help="OPTS <sp> UTF8 ON | MLST facts | HASH [<sp> algorithm]")
def opts(s: Session, cmd: Command) -> None:
    name, _, value = cmd.arg.strip().partition(" ")
    name = name.upper()
    if name == "UTF8":
        if value.strip().upper() in ("ON", ""):
            cmd.add(200, "UTF8 mode enabled.")
        elif value.strip().upper() == "OFF":
            cmd.add(200, "UTF8 mode disabled (paths are still passed byte for byte).")
        else:
            cmd.add_err(501, "OPTS UTF8 takes ON or OFF.")
    elif name == "MLST":
        # RFC 3659 7.9: facts the server does not know are ignored, not refused
        wanted = [f.strip() for f in value.strip().lower().split(";")]
        s.mlst_facts = [f for f in KNOWN_FACTS if f in wanted]
        cmd.add(200, "MLST OPTS " + "".join(f + ";" for f in s.mlst_facts))
    elif name == "HASH":
        opts_hash(s, cmd, value)
    else:
        cmd.add_err(501, f"OPTS {name[:16]} not understood.")


def help_for(cmd: Command, specs: dict[str, CommandSpec], what: str,
             name: str | None = None) -> bool:
    """``HELP NAME``: the syntax line from the table for *name* (by default the
    argument); True if there was a name."""
    name = (cmd.arg if name is None else name).strip().upper()
    if not name:
        return False
    spec = specs.get(name)
    if spec is None:
        cmd.add_err(501, f"Unknown {what} {name[:32]}.")
    else:
        cmd.add(214, f"Syntax: {spec.help}")
    return True


@command("HELP", arg=OPT_ARG, login=False, help="HELP [<sp> command]")
def help_(s: Session, cmd: Command) -> None:
    first, _, sub = cmd.arg.strip().partition(" ")
    if first.upper() == "SITE" and sub.strip():  # HELP SITE NAME is SITE HELP NAME
        help_for(cmd, s.table.site, "SITE command", sub)
        return
    if help_for(cmd, s.table.commands, "command"):
        return
    names = sorted(s.table.commands)
    cmd.add(214, "The following commands are recognized:")
    for i in range(0, len(names), 8):
        cmd.add(214, " ".join(f"{n:<5}" for n in names[i:i + 8]).rstrip())
    cmd.add(214, "Help OK.")
