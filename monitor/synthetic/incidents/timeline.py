"""An incident's few events, expanded into the records the monitor reads.

The file names a handful of events; the rules need more than that: prices no
older than their ``max_price_age``, wallet snapshots no older than
``max_wallet_age``, a trade feed that has not gone quiet, and a moment after
each ``breach_for`` so a held breach can be published. So every ``heartbeat``
of the replay re-states everything (prices of the day, the fund, every wallet,
the liabilities, one trade aggregate), and 29 daily trade aggregates before
the start fill the 30-day volume window the liability-reserve floor grows with.

The events of one instant are applied together and then stated once, so no
moment shows half a transfer. A :class:`Variant` scales MODEL figures or leaves
modelled events out, for the sensitivity check of :mod:`.backtest`; in a
variant a loss takes at most what its wallet holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from monitor.core.events import Custody, Holder
from monitor.synthetic.incidents.library import Event, Figure, Incident
from monitor.synthetic.scenarios import (
    LEDGER,
    PRICES,
    REPORTING_CURRENCY,
    TRADES,
    WALLET_BALANCES,
    Record,
    format_decimal,
    format_ts,
)

BACKFILL_DAYS = 29  # daily aggregates before the start: the 30-day window nearly full
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Variant:
    """MODEL figures scaled (by their path in the file), modelled events left out."""

    name: str = "as written"
    scale: Mapping[str, Decimal] = field(default_factory=dict)
    without: frozenset[int] = frozenset()


BASE = Variant()


def loss_time(incident: Incident) -> datetime:
    return incident.loss_at.time.astimezone(UTC)


def _occurrences(event: Event, loss: datetime) -> list[datetime]:
    first = loss if event.at is None else loss + event.at.duration
    if event.repeat is None or event.every is None:
        return [first]
    times = int(event.repeat.amount)
    return [first + k * event.every.duration for k in range(times)]


class _Ids:
    def __init__(self, key: str) -> None:
        self._key = key
        self._issued: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        n = self._issued[prefix] = self._issued.get(prefix, 0) + 1
        return f"{prefix}-{self._key}-{n:06d}"


def records(incident: Incident, variant: Variant = BASE) -> list[Record]:
    """Every record of the incident's replay, in event-time order."""

    def amount(figure: Figure) -> Decimal:
        return figure.amount * variant.scale.get(figure.path, Decimal(1))

    exchange = incident.exchange
    ids = _Ids(incident.key)
    loss = loss_time(incident)
    start, end = loss - incident.lead.duration, loss + incident.tail.duration
    beat = incident.heartbeat.duration
    if beat <= timedelta(0) or start > loss or end < loss:
        raise ValueError(f"{incident.key}: heartbeat must be positive, lead and tail not negative")

    events: dict[datetime, list[Event]] = {}
    for event in incident.timeline:
        if event.index in variant.without:
            continue
        for moment in _occurrences(event, loss):
            if not start <= moment <= end:
                raise ValueError(
                    f"{incident.key}: timeline[{event.index}] falls outside the replay"
                )
            events.setdefault(moment, []).append(event)
    beats = set()
    moment = start
    while moment <= end:
        beats.add(moment)
        moment += beat
    ticks = sorted(beats | set(events))

    balances = {w.wallet: amount(w.balance) for w in incident.wallets}
    liabilities = {asset: amount(f) for asset, f in incident.liabilities.items()}
    fund = amount(incident.reserve_fund)
    daily = amount(incident.volume_per_day)
    prices = {asset: amount(f) for asset, f in incident.prices.items()}
    # customer cold first, the exchange's own next, customer hot last (as the scenarios do)
    order = sorted(
        incident.wallets,
        key=lambda w: (
            1 if w.holder is not Holder.CUSTOMER else 0 if w.custody is Custody.COLD else 2
        ),
    )

    out: list[Record] = []

    def emit(topic: str, key: str, ts: datetime, prefix: str, **value: str) -> None:
        if topic == LEDGER:
            document = {"type": value.pop("type"), "event_id": ids.next(prefix)}
        else:
            document = {"event_id": ids.next(prefix)}
        document.update(value)
        document["ts"] = format_ts(ts)
        out.append(Record(topic, key, document, ts))

    def trade(ts: datetime, notional: Decimal) -> None:
        emit(
            TRADES,
            exchange,
            ts,
            "t",
            exchange=exchange,
            market=f"{incident.loss_asset}/JPY",
            notional=format_decimal(notional),
            currency=REPORTING_CURRENCY,
        )

    for days in range(BACKFILL_DAYS, 0, -1):
        trade(start - days * _DAY, daily)
    for tick in ticks:
        for event in events.get(tick, ()):
            for move in event.moves:
                balances[move.wallet] += amount(move.by)
                if balances[move.wallet] < 0:
                    if variant == BASE:
                        raise ValueError(
                            f"{incident.key}: {move.wallet} would hold "
                            f"{balances[move.wallet]} after timeline[{event.index}]"
                        )
                    # a variant: a loss takes at most what the wallet holds
                    balances[move.wallet] = Decimal(0)
            for asset, figure in event.liabilities.items():
                liabilities[asset] = amount(figure)
            if event.reserve_fund is not None:
                fund = amount(event.reserve_fund)
        for asset, price in sorted(prices.items()):
            emit(
                PRICES,
                asset,
                tick,
                "p",
                asset=asset,
                price=format_decimal(price),
                currency=REPORTING_CURRENCY,
            )
        emit(
            LEDGER,
            exchange,
            tick,
            "f",
            type="reserve_fund",
            exchange=exchange,
            amount=format_decimal(fund),
            currency=REPORTING_CURRENCY,
        )
        for wallet in order:
            emit(
                WALLET_BALANCES,
                exchange,
                tick,
                "w",
                exchange=exchange,
                wallet=wallet.wallet,
                asset=wallet.asset,
                balance=format_decimal(balances[wallet.wallet]),
                custody=wallet.custody.value,
                holder=wallet.holder.value,
            )
        for asset, owed in sorted(liabilities.items()):
            emit(
                LEDGER,
                exchange,
                tick,
                "l",
                type="customer_liability",
                exchange=exchange,
                asset=asset,
                amount=format_decimal(owed),
            )
        if tick in beats:
            trade(tick, daily * Decimal(int(beat.total_seconds())) / 86_400)
    return out


def jsonl(records_: list[Record]) -> list[str]:
    """The replay input: one ``{"topic", "key", "value"}`` line per record."""
    return [
        json.dumps({"topic": r.topic, "key": r.key, "value": r.value}, separators=(",", ":"))
        for r in records_
    ]
