"""``reserve-monitor wallets check FILE [--chains FILE]``: every problem with its place.

Errors and warnings go to stdout, one a line (``file:line: field: message``),
then a one-line summary. Exit 1 on any error; warnings alone exit 0.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

from connectors.wallets.registry import Checked, check_registry


def summary(file: str, checked: Checked) -> str:
    """One line: valid or not, what it holds, how many errors and warnings."""
    errors, warnings = len(checked.errors), len(checked.warnings)
    counts = f"{_count(errors, 'error')}, {_count(warnings, 'warning')}"
    if checked.registry is None:
        return f"{file}: invalid; {counts}"
    registry = checked.registry
    chains = Counter(chain.kind for chain in registry.chains.values())
    addresses = sum(len(wallet.addresses) for wallet in registry.wallets)
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(chains.items()))
    exchanges = len({wallet.exchange for wallet in registry.wallets})
    return (
        f"{file}: valid; {_count(len(registry.chains), 'chain')} ({kinds}), "
        f"{_count(len(registry.wallets), 'wallet')} of {_count(exchanges, 'exchange')}, "
        f"{_count(addresses, 'address')}; {counts}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{('es' if noun.endswith('s') else 's') if number != 1 else ''}"


def check(file: Path, chains: Path | None, out: TextIO) -> int:
    """Print every problem and the summary; the exit status."""
    checked = check_registry(file, chains)
    for problem in sorted(checked.problems, key=lambda p: (p.place.file, p.place.line)):
        print(problem, file=out)
    print(summary(str(file), checked), file=out)
    return 1 if checked.errors else 0


def run(args: argparse.Namespace) -> int:
    return check(Path(args.file), Path(args.chains) if args.chains else None, sys.stdout)
