"""``python -m monitor.synthetic.incidents`` (``make incidents``): the incident table.

Replays every incident file under the built-in packs and prints one table;
exits 1 when an incident fires no rule, 2 when a file cannot be read.
``--markdown DOC`` also rewrites the generated parts of DOC (docs/incidents.md);
``--assumptions`` prints every MODEL figure, one line each.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor.synthetic.incidents.backtest import backtest
from monitor.synthetic.incidents.library import INCIDENT_DIR, IncidentError, load_library
from monitor.synthetic.incidents.table import assumptions, render, write_doc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monitor.synthetic.incidents",
        description="Replay the incident library through the rules and print what fired.",
    )
    parser.add_argument(
        "--dir", type=Path, default=INCIDENT_DIR, help="directory of incident files (*.yaml)"
    )
    parser.add_argument(
        "--markdown", type=Path, metavar="DOC", help="also rewrite the table in DOC"
    )
    parser.add_argument(
        "--assumptions", action="store_true", help="print every MODEL figure after the table"
    )
    parser.add_argument(
        "--no-sensitivity",
        action="store_true",
        help="skip the replays that decide 'depends on MODEL' (faster)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        incidents = load_library(args.dir)
    except IncidentError as error:
        print(f"incident file: {error}", file=sys.stderr)
        return 2
    if not incidents:
        print(f"no incident files (*.yaml) in {args.dir}", file=sys.stderr)
        return 2
    results = [backtest(i, sensitivity=not args.no_sensitivity) for i in incidents]
    print(render(results))
    if not args.no_sensitivity:
        print(
            "\nDepends on MODEL: replayed once per MODEL amount halved and doubled and per "
            "modelled event left out;\n'yes' names the variants the rule did not fire in "
            "(docs/incidents.md)."
        )
    if args.assumptions:
        print()
        print(assumptions(incidents))
    if args.markdown is not None:
        write_doc(args.markdown, results)
    silent = [r.incident.name for r in results if not r.firings]
    for name in silent:
        print(f"{name}: no rule fired", file=sys.stderr)
    return 1 if silent else 0


if __name__ == "__main__":
    sys.exit(main())
