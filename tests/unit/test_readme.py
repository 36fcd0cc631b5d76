"""README.md documents every setting and command the code defines.

A newcomer finds the outside of the product in the README: each environment
variable in the tables of its Configuration section, each command and option in
its Commands section. Adding a setting, a sub-command, an option or a make target
without documenting it fails here. The lists come from the code itself: the
aliases of the pydantic settings, the names the code reads with ``os.environ``,
the argument parsers, the Makefile's ``## `` help lines.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.synthetic import simulator
from monitor import cli
from monitor.settings import KafkaClientSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# a name read straight from the environment: os.environ.get("X"), os.environ["X"], os.getenv("X")
ENVIRON_READ = re.compile(
    r"""os\.(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def section(title: str) -> str:
    """The text of the README's ``## title`` section, up to the next ``## `` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:] if end == -1 else README[start:end]


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


def heading_anchors() -> set[str]:
    """The anchors GitHub gives the README's headings (code blocks left out)."""
    anchors: set[str] = set()
    fenced = False
    for line in README.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchor = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            # a repeated heading gets -1, -2, ...
            n, unique = 0, anchor
            while unique in anchors:
                n += 1
                unique = f"{anchor}-{n}"
            anchors.add(unique)
    return anchors


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
    } <= set(commands())


@pytest.mark.parametrize("target", make_targets())
def test_every_make_target_is_in_the_commands_section(target: str) -> None:
    assert f"make {target}`" in section("Commands")


def test_every_link_within_the_readme_names_a_heading() -> None:
    anchors = heading_anchors()
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links - anchors == set()
