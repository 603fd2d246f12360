"""The man pages: clean roff, and in step with --help and the settings table.

ftpd.8's OPTIONS section must document exactly the options of ``ftpd --help`` (long
form, short form, metavar and a flag's ``--no-X`` as --help shows them); ftpd.conf.5's KEYS section exactly
the settings that may appear in the file, plus ``modules``, with the table's defaults;
ftpd-passwd.8 and ftpd-eventd.8 must cover their commands' subcommands and options."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ftpd import config

MAN = Path(__file__).resolve().parents[2] / "man"
PAGES = sorted(p for p in MAN.glob("*.[1-8]")) if MAN.is_dir() else []

# -- reading --help ------------------------------------------------------------------------
# An option declaration in a help listing: "  -l, --listen ADDR    help" (click) or
# "  -p PORT, --port PORT  help" (argparse); the help may start on the next line.
# A flag may carry its negation: "  -w, --write / --no-write  help".
CLICK_DECL = re.compile(
    r"^  (?:-(\w), )?--([a-z][a-z0-9-]*)(?: / --([a-z][a-z0-9-]*))?(?: (\S+))?(?: {2,}|$)")
Decl = tuple[str | None, str | None, str | None]  # short letter, metavar, negation
ARGPARSE_LONG = re.compile(r"--([a-z][a-z0-9-]*)")


def run_help(module: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, *args, "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def click_options(help_text: str) -> dict[str, Decl]:
    """long name -> (short letter, metavar, negation) from a click help listing."""
    options: dict[str, Decl] = {}
    in_options = False
    for line in help_text.splitlines():
        if line.rstrip() == "Options:":
            in_options = True
            continue
        if in_options and line and not line.startswith(" "):
            in_options = False
        if in_options and (m := CLICK_DECL.match(line)):
            short, name, negated, metavar = m.groups()
            options[name] = (short, metavar, negated)
    return options


def every_name(options: dict[str, Decl]) -> set[str]:
    """The long names and their negations."""
    return set(options) | {negated for _, _, negated in options.values() if negated}


def click_commands(help_text: str) -> list[str]:
    commands, in_commands = [], False
    for line in help_text.splitlines():
        if line.rstrip() == "Commands:":
            in_commands = True
            continue
        if in_commands and (m := re.match(r"^  ([a-z][a-z0-9-]*)\b", line)):
            commands.append(m.group(1))
        elif in_commands and line and not line.startswith(" "):
            break
    return commands


@pytest.fixture(scope="module")
def ftpd_help() -> str:
    return run_help("ftpd")


# -- reading roff ----------------------------------------------------------------------------
def unescape(text: str) -> str:
    """Roff source to plain words: \\- is a dash; fonts, \\c and quotes go."""
    text = text.replace("\\-", "-").replace("\\c", "")
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace('"', "")


def section(source: str, name: str) -> str:
    """The roff source of one .SH section (up to the next .SH)."""
    match = re.search(rf"^\.SH \"?{re.escape(name)}\"?\n(.*?)(?=^\.SH |\Z)", source,
                      re.MULTILINE | re.DOTALL)
    assert match, f"no .SH {name} section"
    return match.group(1)


def tags(roff: str) -> list[tuple[str, str]]:
    """(tag, body) of each .TP paragraph: the tag line unescaped, the body raw."""
    lines = roff.splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.startswith(".TP") and i + 1 < len(lines):
            tag = re.sub(r"^\.(?:B|I|BI|BR|IR|RB|RI)\s+", "", lines[i + 1])
            body = []
            for rest in lines[i + 2:]:
                if rest.startswith((".TP", ".SS", ".SH")):
                    break
                body.append(rest)
            found.append((" ".join(unescape(tag).split()), "\n".join(body)))
    return found


def read(name: str) -> str:
    path = MAN / name
    if not path.exists():
        pytest.skip(f"man/{name} is not written yet")
    return path.read_text(encoding="utf-8")


# -- (a) every page is clean roff ------------------------------------------------------------
def test_pages_exist() -> None:
    names = {p.name for p in PAGES}
    assert {"ftpd.8", "ftpd.conf.5", "ftpd-passwd.8"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_groff_clean(page: Path) -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    result = subprocess.run(["groff", "-man", "-ww", "-z", str(page)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout + result.stderr == ""


# -- (b) ftpd.8 OPTIONS == ftpd --help -------------------------------------------------------
def test_help_lists_every_setting(ftpd_help: str) -> None:
    """The parser sees what the settings table declares (guards the parsing itself)."""
    options = click_options(ftpd_help)
    assert set(options) == {s.name for s in config.SETTINGS} | {"version", "help"}
    for s in config.SETTINGS:
        assert options[s.name] == (s.short, None if s.flag else s.metavar, config.negation(s))
    # Every --name the help text mentions anywhere is a real option (a name cut by line
    # wrapping, ending in "-", is not a name).
    mentioned = {m for m in re.findall(r"--([a-z][a-z0-9-]*)", ftpd_help) if not m.endswith("-")}
    assert mentioned <= every_name(options)


def option_tags() -> dict[str, Decl]:
    documented: dict[str, Decl] = {}
    for tag, _ in tags(section(read("ftpd.8"), "OPTIONS")):
        m = re.fullmatch(r"(?:-(\w), )?--([a-z][a-z0-9-]*)(?: / --([a-z][a-z0-9-]*))?(?: (\S+))?",
                         tag)
        assert m, f"ftpd.8 OPTIONS: unexpected item {tag!r}"
        short, name, negated, metavar = m.groups()
        assert name not in documented, f"--{name} documented twice"
        documented[name] = (short, metavar, negated)
    return documented


def test_ftpd8_documents_exactly_the_help_options(ftpd_help: str) -> None:
    in_help = click_options(ftpd_help)
    documented = option_tags()
    assert set(documented) == set(in_help), (
        f"missing from ftpd.8: {sorted(set(in_help) - set(documented))}; "
        f"not in --help: {sorted(set(documented) - set(in_help))}")
    for name, decl in in_help.items():
        assert documented[name] == decl, f"--{name}: short option, metavar or negation"


def test_ftpd8_options_section_mentions_only_real_options(ftpd_help: str) -> None:
    text = unescape(section(read("ftpd.8"), "OPTIONS"))
    mentioned = set(re.findall(r"--([a-z][a-z0-9-]*)", text))
    assert mentioned == every_name(click_options(ftpd_help))


def test_ftpd8_mentions_only_real_options_anywhere(ftpd_help: str) -> None:
    text = unescape(read("ftpd.8"))
    assert set(re.findall(r"--([a-z][a-z0-9-]*)", text)) <= every_name(click_options(ftpd_help))


def test_ftpd8_groups_options_by_section() -> None:
    """Each setting sits under the .SS of its settings-table section."""
    options = section(read("ftpd.8"), "OPTIONS")
    for block in re.split(r"^\.SS ", options, flags=re.MULTILINE)[1:]:
        title, _, body = block.partition("\n")
        for tag, _ in tags(body):
            name = re.search(r"--([a-z][a-z0-9-]*)", tag).group(1)
            setting = config.BY_NAME.get(name)
            if setting is not None:
                assert setting.section == title.strip('"'), f"--{name} under {title}"


# -- (c) ftpd.conf.5 KEYS == settings with in_file, plus modules -------------------------------
def default_words(setting: config.Setting) -> set[str] | None:
    """How the page may write the table's default, or None when it is free text."""
    value = setting.default
    if setting.name == "umask":
        return {f"{value:03o}"}
    if isinstance(value, bool):
        return {str(value).lower()}
    if isinstance(value, int | float):
        return {str(value), f"{value:g}"}
    if isinstance(value, str):
        return {f'"{value}"'}
    if value == []:
        return {"[]"}
    if isinstance(value, list):
        return {", ".join(f'"{h}:{p}"' for h, p in value)}
    return None


def key_entries() -> dict[str, str]:
    entries: dict[str, str] = {}
    for tag, body in tags(section(read("ftpd.conf.5"), "KEYS")):
        assert re.fullmatch(r"[a-z][a-z0-9-]*", tag), f"ftpd.conf.5 KEYS: unexpected item {tag!r}"
        assert tag not in entries, f"{tag} documented twice"
        entries[tag] = body
    return entries


def test_conf5_documents_exactly_the_file_keys() -> None:
    expected = {s.name for s in config.SETTINGS if s.in_file} | set(config.EXTRA_KEYS)
    documented = set(key_entries())
    assert documented == expected, (
        f"missing from ftpd.conf.5: {sorted(expected - documented)}; "
        f"not keys: {sorted(documented - expected)}")


def test_conf5_defaults_match_the_settings_table() -> None:
    entries = key_entries()
    for s in config.SETTINGS:
        if not s.in_file:
            continue
        body = unescape(entries[s.name]).replace("\\(dq", '"')
        assert "Default" in body, f"{s.name}: no default given"
        default = body[body.index("Default"):]
        words = default_words(s)
        if words is not None:
            assert any(w in default for w in words), f"{s.name}: default should be {words}"


def test_conf5_example_is_a_valid_config(tmp_path: Path) -> None:
    example = section(read("ftpd.conf.5"), "EXAMPLE")
    match = re.search(r"^\.nf\n(.*?)^\.fi$", example, re.MULTILINE | re.DOTALL)
    assert match, "no .nf/.fi block in EXAMPLE"
    path = tmp_path / "ftpd.conf"
    path.write_text(match.group(1).replace("\\-", "-"), encoding="utf-8")
    values = config.load_file(str(path))
    assert values  # every key known, every value valid


def test_conf5_keys_are_named_as_in_ftpd8() -> None:
    """A key is a long option of ftpd.8 (or modules), never a command-line-only one."""
    options = option_tags()
    for name in key_entries():
        assert name in options or name in config.EXTRA_KEYS, name
    for name in ("inetd", "inetd-wait", "config"):
        assert name not in key_entries()


# -- (d) ftpd-passwd.8 and ftpd-eventd.8 -------------------------------------------------------
def test_passwd8_covers_subcommands_and_options() -> None:
    page = read("ftpd-passwd.8")
    text = unescape(page)
    main_help = run_help("ftpd.passwd")
    commands = click_commands(main_help)
    assert commands, "no subcommands found in ftpd-passwd --help"
    documented = {tag.split()[0] for tag, _ in tags(page) if tag}
    for command in commands:
        assert command in documented, f"ftpd-passwd {command} is not documented"
        for name in click_options(run_help("ftpd.passwd", command)):
            assert f"--{name}" in text, f"ftpd-passwd {command} --{name} is not documented"
    for name in click_options(main_help):
        assert f"--{name}" in text, f"ftpd-passwd --{name} is not documented"


def test_eventd8_covers_options() -> None:
    page = read("ftpd-eventd.8")
    text = unescape(page)
    help_text = run_help("ftpd.events.eventd")
    options = set(ARGPARSE_LONG.findall(help_text.split("options:", 1)[-1]))
    assert options, "no options found in ftpd-eventd --help"
    missing = sorted(f"--{name}" for name in options if f"--{name}" not in text)
    assert not missing, f"not documented in ftpd-eventd.8: {missing}"


# -- ftpd.8 COMMANDS == the command table ----------------------------------------------------
def test_ftpd8_lists_exactly_the_commands_of_the_table() -> None:
    from ftpd.core.sessionconfig import _default_table

    table = _default_table()
    listed: list[str] = []
    for tag, _body in tags(section(read("ftpd.8"), "COMMANDS")):
        listed += [name.strip() for name in tag.split(",")]
    expected = set(table.commands) | {f"SITE {name}" for name in table.site}
    assert sorted(listed) == sorted(expected)  # each once, none missing, none made up
