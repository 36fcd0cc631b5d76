"""bench/instructions.py: instructions per event counted under callgrind, on a few lines.

Each valgrind run of a Python child takes 20-40 s here (the imports alone are a
billion instructions), so the engine is counted on the first 100 and 200 lines
of the steady file only, once for the module.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

import monitor.core.engine
from bench import instructions
from bench.replay_speed import scenario

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed (make valgrind)"
)


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """The engine's figures on the first 100 and on the first 200 lines."""
    directory = tmp_path_factory.mktemp("instructions")
    path = scenario(directory)
    return {
        count: instructions.measure(
            path, count, parts=["engine"], directory=directory / f"callgrind-{count}"
        )
        for count in (100, 200)
    }


@needs_valgrind
def test_the_counts_are_positive_and_the_setup_alone_counts_less(
    counted: dict[int, dict[str, Any]],
) -> None:
    for count, figures in counted.items():
        assert figures["lines"] == count
        totals = figures["totals"]["engine"]
        assert 0 < totals["setup"] < totals["setup_and_part"]
        assert figures["instructions_per_event"]["engine"] > 0


@needs_valgrind
def test_twice_the_lines_cost_the_engine_about_twice_the_instructions(
    counted: dict[int, dict[str, Any]],
) -> None:
    def part(figures: dict[str, Any]) -> int:
        totals = figures["totals"]["engine"]
        return int(totals["setup_and_part"] - totals["setup"])

    ratio = part(counted[200]) / part(counted[100])
    assert 1.5 < ratio < 2.5, ratio
    # and the setup decoded twice the lines beforehand: it counts more too
    assert counted[200]["totals"]["engine"]["setup"] > counted[100]["totals"]["engine"]["setup"]


@needs_valgrind
def test_the_core_reported_is_the_one_this_interpreter_imports(
    counted: dict[int, dict[str, Any]],
) -> None:
    compiled = (monitor.core.engine.__file__ or "").endswith(".so")
    assert {figures["core"] for figures in counted.values()} == {
        "compiled" if compiled else "sources"
    }


@needs_valgrind
def test_the_callgrind_files_hold_the_totals_counted(
    counted: dict[int, dict[str, Any]],
) -> None:
    figures = counted[100]
    files = figures["callgrind_files"]
    assert set(files) == {"setup-engine", "engine"}
    for name, key in (("setup-engine", "setup"), ("engine", "setup_and_part")):
        text = Path(files[name]).read_text(encoding="utf-8")
        summary = re.search(r"^(?:summary|totals): (\d+)$", text, re.MULTILINE)
        assert summary is not None, name
        assert int(summary.group(1)) == figures["totals"]["engine"][key]


@needs_valgrind
def test_an_exchange_event_of_the_scaling_markets_is_counted(tmp_path: Path) -> None:
    figures = instructions.measure_scaling(events=200, directory=tmp_path, sizes=[(2, 10)])
    (count,) = figures["instructions_per_exchange_event"].values()
    # a child that made the events without taking them would count a few hundred at most
    assert count > 10_000, figures
    compiled = (monitor.core.engine.__file__ or "").endswith(".so")
    assert figures["core"] == ("compiled" if compiled else "sources")
    assert {path.name for path in tmp_path.iterdir()} == {
        "scaling-2x10-events.out",
        "scaling-2x10-setup.out",
    }


def test_an_unknown_part_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown parts"):
        instructions.measure(tmp_path / "none.jsonl", 10, parts=["engine", "everything"])


def test_without_valgrind_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert instructions.main([]) == 2
    assert "make valgrind" in capsys.readouterr().err
