"""Instructions per event of replay and its parts, counted by valgrind's callgrind.

Wall time on a shared 2-core machine is noise: the same code replays at 22k and
46k events/s minutes apart (``bench/replay_speed.py`` prints every round to show
it). The instructions a run executes do not depend on what else the machine does:
two runs of the same code under callgrind agree to within a few hundred
instructions in a billion. So a change to the decoder or the engine is proven
here, and its wall time left to ``make bench``.

One caution: a part's count depends a little on the heap's layout, which moves with
whatever the child imports and allocates before the part. The engine, its code
unchanged, counted 54,630 and 56,525 instructions an event in two builds of session
14, and the scenario file's path alone moved it by 0.6%. Compare two builds in one
harness, with the same file path, and take a difference under 4% of a part as a
hint, not a proof, unless the callgrind files show where it comes from.

On the steady 50-exchange file of ``bench/replay_speed.py`` (its ``scenario()``),
the instructions per line of:

- ``bare``: ``json.loads`` of every line;
- ``decode``: :func:`monitor.core.events.lines.decode_line` of every line, as
  replay reads it (on an older core, ``parse_line`` and ``decode``);
- ``engine``: ``Engine(policy, journal=False).take(event, appended)`` of every
  event, decoded beforehand, then ``finish()``;
- ``replay``: :func:`monitor.replay.replay` of the lines, ``AHEAD`` at a time, its
  CloudEvents written to a sink that keeps nothing;

and replay / bare. Each part is timed by the very function ``bench/replay_speed.py``
times it with, on the built-in policy (``load_policy(None)``).

How: a child Python per run, under ``valgrind --tool=callgrind --cache-sim=no``,
with ``PYTHONHASHSEED=0``. The child does its setup (imports, the lines read, the
policy loaded; for the engine, the events decoded), collects garbage, then runs
the part, and leaves with ``os._exit`` (no teardown counted). A part's count is
the child's total less the total of the same child that stops after its setup:
exact for Python and compiled code alike. A child is first run once without
valgrind, so that every module's bytecode is cached before anything is counted.

Writes ``.bench/instructions.json`` and the callgrind output of every run under
``.bench/callgrind/`` (``<part>.out``, ``setup-<setup>.out``):
``callgrind_annotate --inclusive=yes .bench/callgrind/engine.out`` shows where
the instructions go; compiled functions appear as
``CPyDef_<module>___<Class>___<method>``.

``python -m bench.instructions [--lines N] [--jobs J]``; ``make bench-instructions``.

``--scaling`` counts instead the core's instructions per exchange event in the
markets of ``bench/core_scaling.py`` (1, 100 and 1,000 exchanges; 10, 1,000 and
100,000 wallets): the same market built, the same events made, in a child that
stops there and one that goes on to take them, as ``make bench`` times them. It
writes ``.bench/instructions-scaling.json``; about 6 minutes (the 100,000 wallets'
market is built under valgrind twice).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

from bench.replay_speed import (
    EXCHANGES,
    SEED,
    START,
    _bare_seconds,
    _decoded,
    _engine_seconds,
    _replay_seconds,
    scenario,
)
from monitor.replay import AHEAD

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / ".bench"

PARTS = ("bare", "decode", "engine", "replay")
LABELS = {
    "bare": "bare json.loads",
    "decode": "decode (decode_line)",
    "engine": "engine (take + finish)",
    "replay": "replay",
}


def setup_of(part: str) -> str:
    """The setup a part runs after: the engine's decodes the events beforehand."""
    return "engine" if part == "engine" else "common"


class ValgrindMissing(RuntimeError):
    pass


# -- the child: setup, then the part -----------------------------------------------------


def _child(part: str, path: Path, count: int, measure: bool) -> NoReturn:
    from monitor.core.compiled import running_compiled
    from monitor.core.policy import load_policy

    lines = path.read_text(encoding="utf-8").splitlines()[:count]
    policy = load_policy(None)
    events = _decoded(lines)[1] if setup_of(part) == "engine" else []
    gc.collect()
    compiled = running_compiled()
    print(json.dumps({"lines": len(lines), "compiled": compiled}), flush=True)
    if measure:
        run: dict[str, Callable[[], object]] = {
            "bare": lambda: _bare_seconds(lines),
            "decode": lambda: _decoded(lines),
            "engine": lambda: _engine_seconds(events, policy),
            "replay": lambda: _replay_seconds(lines, policy),
        }
        run[part]()
    sys.stdout.flush()
    os._exit(0)  # no teardown: what the part built is not freed in the count


def _scaling_child(exchanges: int, wallets: int, events: int, measure: bool) -> NoReturn:
    """A market of ``bench/core_scaling.py`` built and its next ``events`` exchange events
    made; with ``measure``, the engine takes them and finishes."""
    from bench.core_scaling import _Market
    from monitor.core.compiled import running_compiled

    market = _Market(exchanges, wallets)
    batch = [market.next_event() for _ in range(events)]
    gc.collect()
    print(json.dumps({"events": events, "compiled": running_compiled()}), flush=True)
    if measure:
        take = market.engine.take
        for event in batch:
            take(event)
        market.engine.finish()
    sys.stdout.flush()
    os._exit(0)


def _child_command(part: str, path: Path, count: int, measure: bool) -> list[str]:
    command = [sys.executable, "-m", "bench.instructions", "--child", part]
    command += ["--file", str(path), "--lines", str(count)]
    return command + ([] if measure else ["--setup-only"])


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONHASHSEED": "0"}


# -- the parent: the runs under valgrind -------------------------------------------------

COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.MULTILINE)


def valgrind() -> str:
    """The valgrind binary; ValgrindMissing when there is none."""
    found = shutil.which("valgrind")
    if found is None:
        raise ValgrindMissing(
            "valgrind is not installed: `make valgrind` installs it (Debian package valgrind)"
        )
    return found


def _counted(binary: str, command: list[str], out: Path) -> tuple[int, dict[str, Any]]:
    """The instructions of ``command`` under callgrind, and what the child printed."""
    done = subprocess.run(
        [binary, "--tool=callgrind", "--cache-sim=no", f"--callgrind-out-file={out}", *command],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
    )
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(
            f"{' '.join(command)} under callgrind failed ({done.returncode}):\n"
            + done.stderr[-3000:]
        )
    return int(found.group(1)), json.loads(done.stdout.splitlines()[-1])


def measure(
    path: Path,
    count: int | None = None,
    parts: Iterable[str] = PARTS,
    directory: Path = OUTPUT / "callgrind",
    jobs: int = 2,
) -> dict[str, Any]:
    """Instructions per line of each part on the first ``count`` lines of ``path`` (all by default).

    Returns the figures: per line, and the two totals each is the difference of.
    """
    parts = list(parts)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}: the parts are {', '.join(PARTS)}")
    binary = valgrind()
    available = len(path.read_text(encoding="utf-8").splitlines())
    count = available if count is None else min(count, available)
    directory.mkdir(parents=True, exist_ok=True)

    # every module's bytecode cached, and every part shown to run, before anything is counted
    for part in parts:
        subprocess.run(
            _child_command(part, path, count, measure=True),
            cwd=ROOT,
            env=_environment(),
            check=True,
            capture_output=True,
        )

    # the longest runs first (replay, engine), then the setups: a child that stops before
    # its part (one run per distinct setup)
    runs: dict[str, tuple[str, bool]] = {part: (part, True) for part in reversed(parts)}
    runs.update({f"setup-{setup_of(part)}": (part, False) for part in parts})
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            name: pool.submit(
                _counted,
                binary,
                _child_command(part, path, count, with_part),
                directory / f"{name}.out",
            )
            for name, (part, with_part) in runs.items()
        }
        totals = {name: future.result() for name, future in futures.items()}

    compiled = {printed["compiled"] for _, printed in totals.values()}
    lines = {printed["lines"] for _, printed in totals.values()}
    assert len(compiled) == 1 and lines == {count}, (compiled, lines)
    per_line: dict[str, int] = {}
    parts_totals: dict[str, dict[str, int]] = {}
    for part in parts:
        setup, with_part = totals[f"setup-{setup_of(part)}"][0], totals[part][0]
        parts_totals[part] = {"setup": setup, "setup_and_part": with_part}
        per_line[part] = round((with_part - setup) / count)
    figures: dict[str, Any] = {
        "file": f"simulator steady, {EXCHANGES} exchanges, seed {SEED}, from {START}",
        "lines": count,
        "ahead": AHEAD,
        "core": "compiled" if compiled.pop() else "sources",
        "python": platform.python_version(),
        "valgrind": subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "instructions_per_event": per_line,
        "totals": parts_totals,
        "callgrind_files": {name: str(directory / f"{name}.out") for name in runs},
    }
    if "replay" in per_line and "bare" in per_line and per_line["bare"] > 0:
        figures["replay_to_bare_json_loads"] = round(per_line["replay"] / per_line["bare"], 2)
    return figures


def measure_scaling(
    events: int = 5_000,
    directory: Path = OUTPUT / "callgrind",
    jobs: int = 2,
    sizes: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Instructions per exchange event in each market of ``bench/core_scaling.py`` (``sizes``:
    (exchanges, wallets) of each; its ``SIZES`` by default)."""
    from bench.core_scaling import SIZES

    sizes = SIZES if sizes is None else sizes
    binary = valgrind()
    directory.mkdir(parents=True, exist_ok=True)

    def command(exchanges: int, wallets: int, measure: bool) -> list[str]:
        child = ["--scaling-child", str(exchanges), str(wallets), str(events)]
        return [sys.executable, "-m", "bench.instructions", *child, "1" if measure else "0"]

    # every module's bytecode cached before anything is counted, as measure() does
    smallest = min(sizes, key=lambda size: size[0] * size[1])
    subprocess.run(
        command(*smallest, True), cwd=ROOT, env=_environment(), check=True, capture_output=True
    )
    runs = {
        (exchanges, wallets, measure): command(exchanges, wallets, measure)
        for exchanges, wallets in sizes
        for measure in (True, False)
    }
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            run: pool.submit(
                _counted,
                binary,
                argv,
                directory / f"scaling-{run[0]}x{run[1]}-{'events' if run[2] else 'setup'}.out",
            )
            for run, argv in runs.items()
        }
        totals = {run: future.result() for run, future in futures.items()}
    compiled = {printed["compiled"] for _, printed in totals.values()}
    assert len(compiled) == 1, compiled
    per_event = {
        f"{exchanges} exchanges x {wallets} wallets": round(
            (totals[(exchanges, wallets, True)][0] - totals[(exchanges, wallets, False)][0])
            / events
        )
        for exchanges, wallets in sizes
    }
    counts = list(per_event.values())
    return {
        "events": events,
        "core": "compiled" if compiled.pop() else "sources",
        "instructions_per_exchange_event": per_event,
        "spread": round(max(counts) / min(counts), 3),
    }


def report_scaling(figures: dict[str, Any]) -> None:
    print(
        f"  instructions per exchange event (callgrind), {figures['events']:,} events in "
        f"each market of bench/core_scaling.py, the core's {figures['core']}:",
        flush=True,
    )
    for size, count in figures["instructions_per_exchange_event"].items():
        print(f"      {size:<30} {count:12,}", flush=True)
    print(f"      {'largest / smallest':<30} {figures['spread']:12.3f}", flush=True)


def report(figures: dict[str, Any]) -> None:
    print(
        f"  instructions per event (callgrind), {figures['lines']:,} lines of the steady "
        f"{EXCHANGES}-exchange scenario, the core's {figures['core']}:",
        flush=True,
    )
    for part, per in figures["instructions_per_event"].items():
        print(f"      {LABELS[part]:<30} {per:12,}", flush=True)
    if "replay_to_bare_json_loads" in figures:
        ratio = figures["replay_to_bare_json_loads"]
        print(f"      {'replay / bare json.loads':<30} {ratio:12.2f} x", flush=True)
    files = [Path(name) for name in figures["callgrind_files"].values()]
    print(
        f"      callgrind files in {files[0].parent}: {', '.join(file.name for file in files)}"
        f" (callgrind_annotate --inclusive=yes {files[0].parent / 'engine.out'})",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--lines", type=int, default=None, help="the first N lines only")
    parser.add_argument(
        "--jobs", type=int, default=2, help="valgrind runs side by side (default 2)"
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="count the core's instructions per exchange event in the markets of "
        "bench/core_scaling.py instead",
    )
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--scaling-child", nargs=4, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.file, args.lines, measure=not args.setup_only)
    if args.scaling_child:
        exchanges, wallets, events, taking = args.scaling_child
        _scaling_child(exchanges, wallets, events, measure=bool(taking))
    try:
        valgrind()
    except ValgrindMissing as missing:
        print(f"bench.instructions: {missing}", file=sys.stderr)
        return 2
    OUTPUT.mkdir(exist_ok=True)
    if args.scaling:
        scaling = measure_scaling(jobs=args.jobs)
        report_scaling(scaling)
        written = OUTPUT / "instructions-scaling.json"
        written.write_text(json.dumps(scaling, indent=2) + "\n")
        print(f"  wrote {written}", flush=True)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = scenario(Path(tmp))
        figures = measure(path, args.lines, jobs=args.jobs)
    report(figures)
    (OUTPUT / "instructions.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"  wrote {OUTPUT / 'instructions.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
