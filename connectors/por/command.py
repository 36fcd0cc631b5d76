"""``reserve-monitor import por FILE --format F --exchange ID --as-of TIME``, all or nothing.

The whole file is read and checked first; any problem is reported with its line
(and column), the command exits 1, and nothing is published. Only a file
without a problem becomes events, which go out together through the sink: to
``exchange.ledger`` (Kafka, every event acknowledged before the command
succeeds) or to JSON Lines for ``replay``. A publish that fails exits 1 too,
saying so; the events carry deterministic ids, so running it again is safe.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from connectors.por import binance, okx, summa
from connectors.por.liabilities import Totals, amount_text, file_digest, ledger_events
from connectors.por.problems import InvalidPorFile
from connectors.sinks import Outgoing, open_sink
from monitor.core.events import EXCHANGE_ID_PATTERN
from monitor.core.events.text import parse_rfc3339
from monitor.core.money import rfc3339

CLIENT_ID = "reserve-monitor-import-por"
SHOWN_PROBLEMS = 200  # a file wrong throughout (the wrong --format) needs no million lines
_EXCHANGE_ID = re.compile(EXCHANGE_ID_PATTERN.removesuffix("$") + r"\Z")
_DECIMALS = re.compile(r"([A-Za-z0-9.-]+(?:_[A-Za-z0-9.-]+)?)=([0-9]{1,2})\Z")

Parser = Callable[[bytes, Mapping[str, int]], Totals]
PARSERS: dict[str, Parser] = {
    "binance": lambda data, decimals: binance.parse(data),
    "okx": lambda data, decimals: okx.parse(data),
    "summa": summa.parse,
}


class UsageError(ValueError):
    """A command-line value that cannot be used; the message names the option."""


def run(args: argparse.Namespace) -> int:
    """Import ``args.file``; 0 once every event is delivered, 1 on any problem."""
    path = str(args.file)
    try:
        as_of = _as_of(args.as_of)
        exchange = _exchange(args.exchange)
        decimals = _decimals(getattr(args, "decimals", None) or [])
    except UsageError as error:
        print(f"import por: {error}", file=sys.stderr)
        return 1
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        print(f"{path}: cannot read the file: {error.strerror or error}", file=sys.stderr)
        return 1
    digest = file_digest(data)
    try:
        totals = PARSERS[args.format](data, decimals)
        events = ledger_events(totals, exchange=exchange, as_of=as_of, digest=digest)
    except InvalidPorFile as error:
        for problem in error.problems[:SHOWN_PROBLEMS]:
            print(problem.describe(path), file=sys.stderr)
        count = len(error.problems)
        if count > SHOWN_PROBLEMS:
            print(f"{path}: … and {count - SHOWN_PROBLEMS} more problems", file=sys.stderr)
        print(
            f"{path}: not imported, {count} problem{'s' if count != 1 else ''} "
            f"(read as --format {args.format}); nothing was published",
            file=sys.stderr,
        )
        return 1
    try:
        asyncio.run(_publish(args.jsonl, events))
    except PublishError as error:
        print(f"import por: {error}", file=sys.stderr)
        return 1
    _summary(path, args.format, exchange, as_of, digest, totals)
    return 0


class PublishError(Exception):
    """The events could not all be delivered; the message says how far it got."""


async def _publish(jsonl: str | None, events: Sequence[Outgoing]) -> None:
    """Send every event and return once all are durable (Kafka: acknowledged)."""
    where = f"to {jsonl}" if jsonl else "to Kafka"
    try:
        sink = await open_sink(jsonl, CLIENT_ID)
    except Exception as error:  # any failure of the transport, said plainly
        raise PublishError(
            f"cannot publish {where}: {_reason(error)}; nothing was published"
        ) from error
    try:
        await sink.send(events)
    except Exception as error:
        raise PublishError(
            f"publishing {len(events)} liabilities {where} failed: {_reason(error)}. Some may "
            "have been delivered; their ids are deterministic, so import the same file again "
            "once the cause is fixed"
        ) from error
    finally:
        try:
            await sink.close()
        except Exception as error:  # the events are durable by now, or the send said not
            print(f"import por: closing the connection: {_reason(error)}", file=sys.stderr)


def _reason(error: Exception) -> str:
    text = str(error)
    name = type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def _summary(
    path: str, format_: str, exchange: str, as_of: datetime, digest: str, totals: Totals
) -> None:
    print(
        f"{path}: imported {len(totals)} customer liabilities of {exchange} as of "
        f"{rfc3339(as_of)} (--format {format_}, sha256 {digest[:16]}…)",
        file=sys.stderr,
    )
    for asset, amount in totals:
        print(f"  {asset} {amount_text(amount)}", file=sys.stderr)


def _as_of(text: str) -> datetime:
    try:
        return parse_rfc3339(text)
    except ValueError as error:
        raise UsageError(f"--as-of (the file's snapshot time): {error}") from None


def _exchange(text: str) -> str:
    if not _EXCHANGE_ID.match(text):
        raise UsageError(f"--exchange {text!r} is not an exchange id ({EXCHANGE_ID_PATTERN})")
    return text


def _decimals(items: Sequence[str]) -> dict[str, int]:
    """``ASSET=N`` or ``ASSET_CHAIN=N``: decimal places of a Summa file's integers."""
    decimals: dict[str, int] = {}
    for item in items:
        match = _DECIMALS.match(item.strip())
        if match is None:
            raise UsageError(f"--decimals {item!r}: expected ASSET=N or ASSET_CHAIN=N, e.g. ETH=18")
        decimals[match[1].upper()] = int(match[2])
    return decimals
