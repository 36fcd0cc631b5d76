"""The connectors' commands (CONTRACT section 9): their arguments, here; their work, lazily.

`add_commands` puts ``wallets check``, ``watch evm|bitcoin``, ``feed trades|prices``
and ``import por`` on the ``reserve-monitor`` parser. Each command's module is
imported only when it runs, so ``reserve-monitor --help`` does not load web3 or
ccxt. Every ``run`` takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any


def _runs(module: str) -> Any:
    """A ``run`` that imports ``module`` and calls its ``run(args)``."""

    def run(args: argparse.Namespace) -> int:
        return int(importlib.import_module(module).run(args))

    return run


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jsonl",
        metavar="FILE|-",
        help="write JSON Lines as `replay` reads them (appended to FILE, - for stdout) "
        "instead of producing to Kafka",
    )


def _watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wallets", required=True, metavar="FILE", help="the wallet registry")
    parser.add_argument(
        "--chains",
        metavar="FILE",
        help="YAML with the `chains` part, when --wallets is a CSV of addresses",
    )
    parser.add_argument(
        "--once", action="store_true", help="read one confirmed height, publish, and exit"
    )
    _output(parser)


def add_commands(commands: Any) -> None:
    """Add the connector commands to ``reserve-monitor``'s subparsers."""
    wallets = commands.add_parser("wallets", help="work with wallet registries")
    wallets_commands = wallets.add_subparsers(dest="wallets_command", required=True)
    check = wallets_commands.add_parser(
        "check", help="validate a wallet registry (YAML, or CSV with --chains)"
    )
    check.add_argument("file")
    check.add_argument("--chains", metavar="FILE", help="the `chains` part, for a CSV registry")
    check.set_defaults(run=_runs("connectors.wallets.check"))

    watch = commands.add_parser("watch", help="publish wallet balances read from chain nodes")
    watch_commands = watch.add_subparsers(dest="watch_command", required=True)
    evm = watch_commands.add_parser(
        "evm", help="native and ERC-20 balances at the newest block less its confirmations"
    )
    _watch_arguments(evm)
    evm.set_defaults(run=_runs("connectors.evm.watch"))
    bitcoin = watch_commands.add_parser(
        "bitcoin", help="balances from unspent outputs at the tip less its confirmations"
    )
    _watch_arguments(bitcoin)
    bitcoin.set_defaults(run=_runs("connectors.bitcoin.watch"))

    feed = commands.add_parser("feed", help="publish trade volume or prices from a venue (ccxt)")
    feed_commands = feed.add_subparsers(dest="feed_command", required=True)
    trades = feed_commands.add_parser("trades", help="trade volume, aggregated per interval")
    trades.add_argument("--exchange", required=True, help="the exchange id the volume counts for")
    trades.add_argument("--venue", required=True, help="the ccxt venue, e.g. binance, bitflyer")
    trades.add_argument("--markets", nargs="+", metavar="MARKET", help="e.g. BTC/JPY ETH/JPY")
    trades.add_argument(
        "--interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="length of the intervals trades are summed over (default 10)",
    )
    trades.add_argument(
        "--lookback",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="span read back over REST at start, so a restart loses nothing "
        "(default 60, at most 3600 less an interval)",
    )
    _output(trades)
    trades.set_defaults(run=_runs("connectors.venues.trades"))
    prices = feed_commands.add_parser("prices", help="prices in the reporting currency")
    prices.add_argument("--venue", required=True, help="the ccxt venue, e.g. binance, bitflyer")
    prices.add_argument("--assets", nargs="+", required=True, metavar="ASSET")
    prices.add_argument(
        "--interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often the tickers are polled (default 10)",
    )
    _output(prices)
    prices.set_defaults(run=_runs("connectors.venues.prices"))

    imports = commands.add_parser("import", help="import liabilities from published files")
    imports_commands = imports.add_subparsers(dest="import_command", required=True)
    por = imports_commands.add_parser(
        "por", help="customer liabilities from a proof-of-reserves file, all or nothing"
    )
    por.add_argument("file")
    por.add_argument("--format", required=True, choices=["binance", "okx", "summa"])
    por.add_argument("--exchange", required=True, help="the exchange id the liabilities are of")
    por.add_argument("--as-of", required=True, metavar="RFC3339", help="the file's snapshot time")
    por.add_argument(
        "--decimals",
        action="append",
        metavar="ASSET=N",
        help="decimal places of a Summa file's integers, per ASSET or ASSET_CHAIN "
        "(e.g. ETH=18, USDT_TRX=6); repeat for several",
    )
    _output(por)
    por.set_defaults(run=_runs("connectors.por.command"))
