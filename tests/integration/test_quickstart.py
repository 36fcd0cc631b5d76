"""The README's quick start works as written: every shell command of it is run here.

The commands are read from the fenced block under the README's ``## Quick start``
heading, so the README and this test cannot drift: a command added there is run
here. Each runs with bash from the repository root, in order, as a person would
type them, with three differences, each for a reason:

- ``/tmp/`` is this test's own directory, so two runs do not share files;
- ``KAFKA_PORT`` names the test broker (the session's ``bootstrap`` fixture), so
  ``make demo`` reuses it instead of starting a broker of its own on 9092;
- ``make test`` runs the whole suite, this test included, so it cannot run here:
  the test checks instead that what ``make test`` runs is pytest over the test
  paths, which hold this file.

``make demo`` runs for real, to its end: no other test plays it through a broker.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.harness import ROOT

README = ROOT / "README.md"
# the make target that runs the suite holding this test: it is checked, not run
RUNS_THIS_TEST = "make test"
# make demo plays about a minute of story; make install may build the project again
COMMAND_TIMEOUT = 900


def quick_start_commands(readme: str) -> list[str]:
    """The shell commands of the first fenced block under ``## Quick start``, in order.

    Comments and blank lines are left out; a line ending in a backslash continues
    on the next.
    """
    start = readme.index("\n## Quick start\n")
    end = readme.find("\n## ", start + 1)
    part = readme[start : end if end != -1 else len(readme)]
    block = re.search(r"^```(?:sh|bash|shell)\n(.*?)^```", part, re.MULTILINE | re.DOTALL)
    assert block, "the Quick start section has no ```sh block"
    commands: list[str] = []
    pending = ""
    for line in block.group(1).splitlines():
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1].rstrip()
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    assert not pending, "the block ends in a continued line"
    return commands


def words(command: str) -> list[str]:
    """The words of ``command`` as the shell splits them, its comment left out."""
    return shlex.split(command, comments=True)


@dataclass(frozen=True)
class Ran:
    command: str
    stdout: str
    stderr: str


def run(command: str, workdir: Path, kafka_port: str) -> Ran:
    """Run one quick-start line with bash from the repository root; it must exit 0."""
    line = command.replace("/tmp/", f"{workdir}/")
    env = dict(os.environ, KAFKA_PORT=kafka_port)
    done = subprocess.run(
        ["bash", "-o", "errexit", "-o", "pipefail", "-c", line],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, (
        f"{line!r} exited with {done.returncode}\n--- stdout ---\n{done.stdout[-4000:]}"
        f"\n--- stderr ---\n{done.stderr[-4000:]}"
    )
    return Ran(command, done.stdout, done.stderr)


def written_file(command: str, workdir: Path) -> Path | None:
    """The file a command writes: its ``> FILE`` redirect or its ``--jsonl``/``--html`` FILE."""
    said = words(command.replace("/tmp/", f"{workdir}/"))
    for flag in (">", "--jsonl", "--html"):
        if flag in said and said.index(flag) + 1 < len(said):
            return Path(said[said.index(flag) + 1])
    return None


def check_what_it_did(ran: Ran, workdir: Path) -> None:
    """What each kind of quick-start command must have done, beyond exiting 0."""
    said = words(ran.command)
    output = written_file(ran.command, workdir)
    if output is not None and output.name != "-":
        assert output.is_file() and output.stat().st_size > 0, f"{ran.command}: {output} empty"
    if said[:2] == ["make", "install"]:
        assert (ROOT / ".venv" / "bin" / "reserve-monitor").is_file()
    elif said[:2] == ["make", "demo"]:
        # the incident's breaches as they arrived, then every rule back to ok
        assert "jp.liability_reserve" in ran.stdout, ran.stdout[-4000:]
        assert "breach" in ran.stdout, ran.stdout[-4000:]
        assert "demo done" in ran.stdout, ran.stdout[-4000:]
        # it ends by writing the HTML report of its incident, and says where
        shown = re.search(r"^report\s+(\S+\.html)\b", ran.stdout, re.MULTILINE)
        assert shown, ran.stdout[-4000:]
        page = (ROOT / shown.group(1)).read_text(encoding="utf-8")
        assert "<svg" in page and "dmm" in page
    elif said[0].endswith("reserve-monitor") and said[1] == "replay":
        assert output is not None, "the quick start's replay writes its alerts to a file"
        events = [json.loads(line) for line in output.read_text().splitlines()]
        assert events and {e["type"] for e in events} == {"reserve.status.changed"}
        statuses = {(e["data"]["exchange"], e["data"]["status"]) for e in events}
        assert ("dmm", "breach") in statuses, statuses
        # the adequacy table goes to stderr
        assert "dmm" in ran.stderr
    elif said[0].endswith("reserve-monitor") and said[1] == "report":
        assert output is not None and output.suffix == ".html"
        page = output.read_text(encoding="utf-8")
        # self-contained: the charts inline, nothing fetched
        assert "<svg" in page and "dmm" in page
        assert not re.search(r"""(?:src|href)=["']https?:""", page)


def check_make_test_runs_this_file() -> None:
    """``make test`` is pytest over the configured test paths, which hold this file."""
    planned = subprocess.run(
        ["make", "--dry-run", "test"], cwd=ROOT, text=True, capture_output=True, check=True
    ).stdout.splitlines()
    pytest_lines = [line for line in planned if re.search(r"(^|\s|/)pytest(\s|$)", line)]
    assert pytest_lines, planned

    def named(pytest_line: str) -> list[str]:
        said = words(pytest_line)
        arguments = said[next(i for i, word in enumerate(said) if word.endswith("pytest")) + 1 :]
        # files or directories named (option values such as `-n 2` are none)
        return [word for word in arguments if (ROOT / word.split("::")[0]).exists()]

    # the last run names none: pytest collects its testpaths (an earlier one runs the unit
    # tests on the core's sources, before the core is compiled)
    assert named(pytest_lines[-1]) == [], pytest_lines[-1]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    testpaths = config["tool"]["pytest"]["ini_options"]["testpaths"]
    here = Path(__file__).resolve()
    assert any(here.is_relative_to(ROOT / path) for path in testpaths), testpaths
    assert here.name.startswith("test_")


def test_the_quick_start_is_found() -> None:
    # guards the parser: the commands the quick start is about
    commands = quick_start_commands(README.read_text(encoding="utf-8"))
    assert {"make install", "make demo", RUNS_THIS_TEST} <= {
        " ".join(words(command)) for command in commands
    }
    assert any(" replay " in command for command in commands)


def test_continued_lines_and_comments_are_read_as_the_shell_reads_them() -> None:
    readme = (
        "# x\n\n## Quick start\n\n```sh\n# a comment\nmake demo   # about a minute\n"
        "reserve-monitor replay a.jsonl \\\n    b.jsonl > out.jsonl\n```\n\n## Next\n"
        "```sh\nnot this\n```\n"
    )
    commands = quick_start_commands(readme)
    assert commands == [
        "make demo   # about a minute",
        "reserve-monitor replay a.jsonl b.jsonl > out.jsonl",
    ]
    assert words(commands[0]) == ["make", "demo"]


@pytest.mark.kafka
def test_every_quick_start_command_runs(bootstrap: str, tmp_path: Path) -> None:
    kafka_port = bootstrap.rsplit(":", 1)[1]
    commands = quick_start_commands(README.read_text(encoding="utf-8"))
    for command in commands:
        if " ".join(words(command)) == RUNS_THIS_TEST:
            check_make_test_runs_this_file()
            continue
        check_what_it_did(run(command, tmp_path, kafka_port), tmp_path)
