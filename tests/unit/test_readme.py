"""The documentation holds every setting and command the code defines, and its links work.

The README is short: what the product is, a quick start, where to go next. The
outside of the product is in ``docs/reference.md``: each environment variable in
the tables of its Configuration section, each command and option and each make
target in its Commands section. Adding a setting, a sub-command, an option or a
make target without documenting it there fails here. The lists come from the code
itself: the aliases of the pydantic settings, the names the code reads with
``os.environ``, the argument parsers, the Makefile's ``## `` help lines. Every
relative link of the README and of the pages it sends each audience to must name
a file that exists and, when it names one, a heading of that file, and every
``reserve-monitor`` command their shell blocks show must parse.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import cli
from monitor.settings import KafkaClientSettings, Settings
from monitor.synthetic import simulator

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# the full reference of commands, options, make targets and settings
REFERENCE = ROOT / "docs" / "reference.md"
# the README and the pages written for each audience (other docs pages check their own)
AUDIENCE_PAGES = [
    ROOT / "docs" / name
    for name in ("operations.md", "sre.md", "regulators.md", "developers.md", "reference.md")
]
README_MAX_LINES = 400
# a name read straight from the environment: os.environ.get("X"), os.environ["X"], os.getenv("X")
ENVIRON_READ = re.compile(
    r"""os\.(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def section(title: str) -> str:
    """The text of the reference's ``## title`` section, up to the next ``## `` heading."""
    text = REFERENCE.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def table_variables(text: str) -> set[str]:
    """The upper-case names in backquotes in the first cell of each table row."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


def settings_variables() -> list[str]:
    """Every environment variable of the settings classes (a field without alias is read
    under its own name)."""
    return sorted(
        {
            field.alias or name.upper()
            for settings in (KafkaClientSettings, Settings)
            for name, field in settings.model_fields.items()
        }
    )


def environ_reads() -> list[str]:
    """Every name monitor/ and connectors/ read from the environment by its literal name."""
    names: set[str] = set()
    for package in ("monitor", "connectors"):
        for source in (ROOT / package).rglob("*.py"):
            names.update(ENVIRON_READ.findall(source.read_text(encoding="utf-8")))
    return sorted(names)


def sub_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Each sub-command of ``parser``, nested ones too, with its own parser."""
    # argparse has no public way to list sub-parsers: read the sub-parser actions
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from sub_commands(sub, (*path, name))


def commands() -> dict[str, argparse.ArgumentParser]:
    """``reserve-monitor <command>`` -> its parser (``simulate`` parses its own options)."""
    found = {" ".join(path): sub for path, sub in sub_commands(cli.build_parser())}
    found["simulate"] = simulator.build_parser()
    return found


def options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    )


def make_targets() -> list[str]:
    """The Makefile's targets that ``make help`` lists (a ``## `` comment on the rule)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"^([a-z][a-z0-9-]*):.*## ", makefile, re.MULTILINE)


def outside_code(text: str) -> Iterator[str]:
    """The lines of a Markdown text that are not inside a fenced code block."""
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page`` (code blocks left out)."""
    anchors: set[str] = set()
    for line in outside_code(page.read_text(encoding="utf-8")):
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchor = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            # a repeated heading gets -1, -2, ...
            n, unique = 0, anchor
            while unique in anchors:
                n += 1
                unique = f"{anchor}-{n}"
            anchors.add(unique)
    return anchors


def relative_links(page: Path) -> list[str]:
    """The targets of the Markdown links of ``page`` that stay in the repository."""
    targets = []
    for line in outside_code(page.read_text(encoding="utf-8")):
        # inline code is not a link: `[x](y)` in backquotes is left out
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", line)):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                targets.append(target)
    return targets


def link_problem(page: Path, target: str) -> str | None:
    """Why ``target``, a link of ``page``, does not resolve; None when it does."""
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    if not file.exists():
        return f"{page.name}: {target}: no file {file}"
    if anchor and file.suffix == ".md" and anchor not in heading_anchors(file):
        return f"{page.name}: {target}: no heading #{anchor} in {file.name}"
    return None


@pytest.mark.parametrize("variable", settings_variables())
def test_every_setting_is_in_the_configuration_table(variable: str) -> None:
    assert variable in table_variables(section("Configuration"))


@pytest.mark.parametrize("variable", environ_reads())
def test_every_variable_read_from_the_environment_is_in_the_configuration_table(
    variable: str,
) -> None:
    assert variable in table_variables(section("Configuration"))


def test_the_environment_reads_are_found() -> None:
    # guards the pattern above: these are read with os.environ in cli.py and demo.py
    assert {"RESERVE_MONITOR_SIGNING_KEY", "DEMO_WORKER_LOG_LEVEL"} <= set(environ_reads())


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_is_in_the_commands_section(command: str) -> None:
    assert f"`reserve-monitor {command}" in section("Commands")


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (command, option)
        for command, parser in sorted(commands().items())
        for option in options(parser)
    ],
)
def test_every_option_is_in_the_commands_section(command: str, option: str) -> None:
    assert re.search(rf"(?<![\w-]){re.escape(option)}\b(?!-)", section("Commands")), (
        command,
        option,
    )


def test_the_commands_are_found() -> None:
    # guards the parser walk above
    assert {
        "worker",
        "replay",
        "simulate",
        "policy check",
        "policy explain",
        "keygen",
        "verify",
        "report",
        "wallets check",
        "watch evm",
        "watch bitcoin",
        "feed trades",
        "feed prices",
        "import por",
    } <= set(commands())


@pytest.mark.parametrize("target", make_targets())
def test_every_make_target_is_in_the_commands_section(target: str) -> None:
    assert f"make {target}`" in section("Commands")


def test_the_make_targets_are_found() -> None:
    # guards the Makefile pattern above: the targets of contract sections 1 and 9
    assert {"demo", "test", "kafka-up", "bench", "incidents", "node-tools"} <= set(make_targets())


def test_the_readme_stays_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move the detail to docs/"


@pytest.mark.parametrize("page", AUDIENCE_PAGES, ids=lambda page: page.name)
def test_the_readme_sends_each_audience_to_its_page(page: Path) -> None:
    assert f"docs/{page.name}" in relative_links(README)


@pytest.mark.parametrize(
    "page", [README, *AUDIENCE_PAGES], ids=lambda page: str(page.relative_to(ROOT))
)
def test_every_relative_link_resolves(page: Path) -> None:
    links = relative_links(page)
    assert links, f"{page.name} links nowhere: the link pattern is wrong"
    problems = [problem for target in links if (problem := link_problem(page, target))]
    assert problems == []


def shown_commands(page: Path) -> list[str]:
    """The ``reserve-monitor`` command lines in the shell blocks of ``page``."""
    found: list[str] = []
    block = pending = ""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            block = "" if block else line[3:].strip() or "text"
        elif block in ("sh", "bash", "shell"):
            line, pending = pending + line.strip(), ""
            if line.endswith("\\"):  # continued on the next line
                pending = line[:-1]
                continue
            said = shlex.split(line, comments=True)
            if said and said[0] in ("reserve-monitor", ".venv/bin/reserve-monitor"):
                found.append(line.strip())
    return found


def parse_error(command: str) -> str | None:
    """What the command line parser says of ``command``; None when it parses."""
    said = shlex.split(command, comments=True)
    # what the shell takes away: a redirect and its file, a trailing &
    for token in (">", "<"):
        while token in said:
            at = said.index(token)
            del said[at : at + 2]
    arguments = [word for word in said[1:] if word != "&"]
    parser = simulator.build_parser() if arguments[:1] == ["simulate"] else cli.build_parser()
    if arguments[:1] == ["simulate"]:
        arguments = arguments[1:]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parser.parse_args(arguments)
    except SystemExit:
        return errors.getvalue().strip().splitlines()[-1]
    return None


@pytest.mark.parametrize(
    "page", [README, *AUDIENCE_PAGES], ids=lambda page: str(page.relative_to(ROOT))
)
def test_every_command_shown_parses(page: Path) -> None:
    problems = [
        f"{command}: {problem}"
        for command in shown_commands(page)
        if (problem := parse_error(command))
    ]
    assert problems == []


def test_a_command_that_does_not_parse_is_seen() -> None:
    # guards parse_error: a wrong option and a missing one are reported
    assert parse_error(".venv/bin/reserve-monitor replay a.jsonl > out.jsonl") is None
    assert parse_error("reserve-monitor simulate --scenario dmm-incident --jsonl -") is None
    assert parse_error("reserve-monitor replay a.jsonl --no-such-option") is not None
    assert parse_error("reserve-monitor report a.jsonl") is not None  # --html is required


def test_a_broken_link_is_seen(tmp_path: Path) -> None:
    # guards link_problem: a missing file and a missing heading are both reported
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## A part\n", encoding="utf-8")
    assert link_problem(page, "#a-part") is None
    assert link_problem(page, "#title") is None
    assert link_problem(page, "#another-part") is not None
    assert link_problem(page, "other.md") is not None
