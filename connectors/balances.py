"""Wallet balances read from a chain, as wallet-balance events (CONTRACT sections 3 and 9).

Shared by ``watch evm`` and ``watch bitcoin``. A `BalanceSource` (one per chain
kind) says the confirmed height and reads every watched wallet's balance at a
height into a `Reading`. `BalanceFeed` decides, purely, which events a reading
gives: a wallet whose balance changed, or whose last event is older than the
heartbeat in block time. `follow` is the one loop: poll the confirmed height,
read, publish, and back off while the node is away.

Event ids come from (chain, block hash, exchange, wallet, asset): a restart
re-reading the same block re-publishes the same ids, which the monitor drops
as duplicates; a reorg gives a new hash and so new ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from connectors.sinks import EventSink, Outgoing
from connectors.wallets.registry import Chain, Wallet

TOPIC = "exchange.wallet-balances"


@dataclass(frozen=True, slots=True)
class Reading:
    """Every watched wallet's balance on one chain at one block."""

    chain: str
    height: int
    block_hash: str  # hex, as the node gives it
    block_time: datetime  # the block's timestamp, UTC: the events' ts
    balances: Mapping[Wallet, Decimal]  # a wallet's balance is the sum over its addresses


def balance_event_id(chain: str, block_hash: str, wallet: Wallet) -> str:
    """Deterministic from (chain, block hash, exchange, wallet, asset).

    A restart at the same block gives the same id; a reorg (another hash) a new one.
    """
    block = block_hash.lower().removeprefix("0x")
    text = "\x1f".join((chain, block, wallet.exchange, wallet.wallet, wallet.asset))
    return "wb-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def decimal_text(amount: Decimal) -> str:
    """A decimal as the contract writes it: plain notation, no exponent, no trailing zeros."""
    if amount == amount.to_integral_value():
        return format(amount.quantize(Decimal(1)), "f")
    return format(amount.normalize(), "f")


def rfc3339(moment: datetime) -> str:
    """UTC, with ``Z``; a naive time is a bug in the source, not something to guess."""
    if moment.tzinfo is None:
        raise ValueError(f"block time {moment} has no time zone")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def balance_event(reading: Reading, wallet: Wallet, balance: Decimal) -> Outgoing:
    """The contract's wallet-balance event of one wallet in one reading."""
    return Outgoing(
        TOPIC,
        wallet.exchange,
        {
            "event_id": balance_event_id(reading.chain, reading.block_hash, wallet),
            "exchange": wallet.exchange,
            "ts": rfc3339(reading.block_time),
            "wallet": wallet.wallet,
            "asset": wallet.asset,
            "balance": decimal_text(balance),
            "custody": wallet.custody,
            "holder": wallet.holder,
        },
    )


class BalanceFeed:
    """Which wallet-balance events a reading gives: every wallet whose balance changed since the
    last one published, and every wallet when heartbeat_seconds of block time have passed since
    it was last published. A new feed (a restart) publishes every wallet once."""

    def __init__(self, chain: Chain, wallets: Sequence[Wallet]) -> None:
        self.chain = chain
        self.wallets = tuple(wallets)
        # per wallet: the balance last published and the block time it was published at
        self._published: dict[Wallet, tuple[Decimal, datetime]] = {}

    def events(self, reading: Reading) -> list[Outgoing]:
        """The events to publish for ``reading``, in the feed's wallet order."""
        if reading.chain != self.chain.key:
            raise ValueError(f"a reading of chain {reading.chain} fed to {self.chain.key}'s feed")
        missing = [wallet for wallet in self.wallets if wallet not in reading.balances]
        if missing:
            names = ", ".join(f"{w.exchange}/{w.wallet} ({w.asset})" for w in missing)
            raise ValueError(f"reading at height {reading.height} has no balance for {names}")
        events: list[Outgoing] = []
        for wallet in self.wallets:
            balance = reading.balances[wallet]
            last = self._published.get(wallet)
            if last is not None:
                last_balance, last_time = last
                age = (reading.block_time - last_time).total_seconds()
                if balance == last_balance and age < self.chain.heartbeat_seconds:
                    continue
            events.append(balance_event(reading, wallet, balance))
            self._published[wallet] = (balance, reading.block_time)
        return events


class NodeUnavailable(Exception):
    """The node did not answer; the loop backs off and retries."""


class BalanceSource(Protocol):
    """A chain's node, as `follow` needs it."""

    chain: Chain

    async def confirmed_height(self) -> int:
        """tip - confirmations"""
        ...

    async def read(self, height: int) -> Reading:
        """balances as of that height (bitcoin scans up to it)"""
        ...

    async def block_hash(self, height: int) -> str | None:
        """the node's block hash at that height now (None above its tip)"""
        ...


async def _wait(seconds: float, stop: asyncio.Event | None) -> None:
    """Sleep, but wake at once when ``stop`` is set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def follow(
    source: BalanceSource,
    feed: BalanceFeed,
    sink: EventSink,
    *,
    once: bool,
    log: logging.Logger,
    stop: asyncio.Event | None = None,
    backoff_initial: float = 1.0,
    backoff_max: float = 60.0,
) -> None:
    """Publish a reading whenever the confirmed height moves (and always the first time),
    or the block at it is another than the one read (a reorg that kept the height).

    NodeUnavailable: one clear log line, exponential backoff (capped), retry; a clear
    line again when the node is back. ``once``: one reading, then return; a node that
    does not answer raises NodeUnavailable at once.
    """
    chain = source.chain
    last_height: int | None = None
    last_hash: str | None = None
    delay = backoff_initial
    failures = 0
    down_since = 0.0
    while stop is None or not stop.is_set():
        try:
            height = await source.confirmed_height()
            moved = height != last_height
            if not moved and await source.block_hash(height) != last_hash:
                log.warning("%s: block %d is another than the one read: reorg", chain.key, height)
                moved = True
            if moved:
                reading = await source.read(height)
                events = feed.events(reading)
                if events:
                    await sink.send(events)
                log.info(
                    "%s: confirmed height %d (block %s): %d of %d wallets published",
                    chain.key,
                    reading.height,
                    reading.block_hash,
                    len(events),
                    len(feed.wallets),
                )
                last_height, last_hash = height, reading.block_hash
        except NodeUnavailable as error:
            if once:  # a scheduled --once must not hang on a node that is away
                raise NodeUnavailable(f"{chain.key}: node unavailable: {error}") from None
            failures += 1
            if failures == 1:
                down_since = time.monotonic()
                log.warning(
                    "%s: node %s unavailable (%s); retrying with backoff up to %gs",
                    chain.key,
                    chain.rpc,
                    error,
                    backoff_max,
                )
            log.info("%s: retry %d in %gs", chain.key, failures, delay)
            await _wait(delay, stop)
            delay = min(delay * 2, backoff_max)
            continue
        if failures:
            log.warning(
                "%s: node %s is back after %d failed tries (%.0fs)",
                chain.key,
                chain.rpc,
                failures,
                time.monotonic() - down_since,
            )
            failures, delay = 0, backoff_initial
        if once:
            return
        await _wait(chain.poll_seconds, stop)
