"""The balance feed: which readings become wallet-balance events, and the follow loop.

Pure: `BalanceFeed` is fed readings made here. `follow` runs against a small
in-test `BalanceSource` (our own protocol, scripted: heights, node failures) and
an in-memory sink; no node, no broker. Backoff and polling use milliseconds, and
the loop ends by its ``stop`` event or ``once``, never by a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.balances import (
    BalanceFeed,
    NodeUnavailable,
    Reading,
    balance_event_id,
    decimal_text,
    follow,
)
from connectors.sinks import Outgoing
from connectors.wallets.registry import Chain, Wallet
from tests.connectors.memory import MemorySink

ETH = Chain(
    key="eth",
    kind="evm",
    rpc="http://127.0.0.1:8545",
    confirmations=2,
    poll_seconds=0.001,
    heartbeat_seconds=600,
)
COLD = Wallet(
    "dmm",
    "eth-cold-1",
    "eth",
    "ETH",
    "cold",
    "customer",
    ("0x70997970C51812dc3A010C7d01b50e0d17dc79C8",),
)
HOT = Wallet(
    "dmm",
    "usdt-hot-1",
    "eth",
    "USDT",
    "hot",
    "customer",
    ("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",),
    token="0xdAC17F958D2ee523a2206206994597C13D831ec7",
    decimals=6,
)
OTHER = Wallet(
    "bitbank",
    "eth-hot",
    "eth",
    "ETH",
    "hot",
    "house",
    ("0x90F79bf6EB2c4f870365E785982E1f101E93b906",),
)
WALLETS = (COLD, HOT, OTHER)
T0 = datetime(2026, 5, 31, 13, 26, tzinfo=UTC)


def reading(height: int, seconds: float, *balances: str, block_hash: str | None = None) -> Reading:
    return Reading(
        chain="eth",
        height=height,
        block_hash=block_hash or f"0x{height:064x}",
        block_time=T0 + timedelta(seconds=seconds),
        balances=dict(zip(WALLETS, map(Decimal, balances), strict=True)),
    )


def published(events: Sequence[Outgoing]) -> list[tuple[str, str]]:
    return [(event.value["wallet"], event.value["balance"]) for event in events]


def test_a_new_feed_publishes_every_wallet_as_the_contract_says() -> None:
    feed = BalanceFeed(ETH, WALLETS)
    events = feed.events(reading(100, 0, "12.5", "1000000.000000", "0"))
    assert events[0] == Outgoing(
        "exchange.wallet-balances",
        "dmm",
        {
            "event_id": balance_event_id("eth", f"0x{100:064x}", COLD),
            "exchange": "dmm",
            "ts": "2026-05-31T13:26:00Z",
            "wallet": "eth-cold-1",
            "asset": "ETH",
            "balance": "12.5",
            "custody": "cold",
            "holder": "customer",
        },
    )
    assert published(events) == [
        ("eth-cold-1", "12.5"),
        ("usdt-hot-1", "1000000"),
        ("eth-hot", "0"),
    ]
    assert [event.key for event in events] == ["dmm", "dmm", "bitbank"]
    assert len({event.value["event_id"] for event in events}) == 3


def test_only_changes_are_published_until_the_heartbeat() -> None:
    feed = BalanceFeed(ETH, WALLETS)
    feed.events(reading(100, 0, "12.5", "100", "7"))
    assert feed.events(reading(101, 12, "12.5", "100", "7")) == []
    assert published(feed.events(reading(102, 24, "12.5", "40", "7"))) == [("usdt-hot-1", "40")]
    # 1.0 is 1: a different spelling of the same balance is no change
    assert feed.events(reading(103, 36, "12.50", "40.000000", "7")) == []
    # 599 s of block time after the first events: still nothing
    assert feed.events(reading(150, 599, "12.5", "40", "7")) == []
    # 600 s: the wallets last published at 0 s are published again, unchanged
    heartbeat = feed.events(reading(151, 600, "12.5", "40", "7"))
    assert published(heartbeat) == [("eth-cold-1", "12.5"), ("eth-hot", "7")]
    assert published(feed.events(reading(152, 624, "12.5", "40", "7"))) == [("usdt-hot-1", "40")]
    assert feed.events(reading(153, 636, "12.5", "40", "7")) == []


def test_a_restart_at_the_same_block_gives_the_same_ids_and_a_reorg_new_ones() -> None:
    first = BalanceFeed(ETH, WALLETS).events(reading(100, 0, "1", "2", "3"))
    restarted = BalanceFeed(ETH, WALLETS).events(reading(100, 0, "1", "2", "3"))
    assert restarted == first
    # the same height after a reorg: another block, so other ids, even for the same balances
    reorged = BalanceFeed(ETH, WALLETS).events(reading(100, 0, "1", "2", "3", block_hash="0xab"))
    assert {e.value["event_id"] for e in reorged}.isdisjoint(e.value["event_id"] for e in first)
    # ids are per wallet and asset, and ignore how the node spells the hash
    assert balance_event_id("eth", "0xAB", COLD) == balance_event_id("eth", "ab", COLD)
    assert balance_event_id("eth", "ab", COLD) != balance_event_id("eth", "ab", OTHER)
    assert balance_event_id("eth", "ab", COLD) != balance_event_id("eth2", "ab", COLD)


def test_a_reading_that_does_not_fit_the_feed_is_refused() -> None:
    feed = BalanceFeed(ETH, WALLETS)
    partial = Reading("eth", 1, "0x01", T0, {COLD: Decimal(1)})
    with pytest.raises(ValueError, match=r"no balance for dmm/usdt-hot-1 \(USDT\)"):
        feed.events(partial)
    with pytest.raises(ValueError, match="a reading of chain btc fed to eth's feed"):
        feed.events(Reading("btc", 1, "01", T0, {}))
    naive = Reading("eth", 1, "0x01", datetime(2026, 1, 1), dict.fromkeys(WALLETS, Decimal(0)))
    with pytest.raises(ValueError, match="has no time zone"):
        feed.events(naive)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("1.500000", "1.5"),
        ("1E+3", "1000"),
        ("0E-18", "0"),
        ("0.000000000000000001", "1E-18"),
        ("123456789.123456789012345678", "123456789.123456789012345678"),
    ],
)
def test_balances_are_plain_decimal_strings(amount: str, text: str) -> None:
    expected = format(Decimal(text), "f")
    assert decimal_text(Decimal(amount)) == expected
    assert "E" not in decimal_text(Decimal(amount))


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=400),  # block time step, seconds
            st.lists(st.sampled_from(["0", "1", "1.0", "2.5"]), min_size=3, max_size=3),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_the_feed_keeps_consumers_current_without_repeating_itself(
    steps: list[tuple[int, list[str]]],
) -> None:
    """What a consumer of the events sees, whatever the readings:

    after every reading, the newest event of each wallet carries its current balance;
    a wallet's balance is re-published unchanged only after a heartbeat of block time;
    and no wallet goes a heartbeat of block time without an event.
    """
    feed = BalanceFeed(ETH, WALLETS)
    seen: dict[str, tuple[Decimal, datetime]] = {}
    now = T0
    for height, (step, balances) in enumerate(steps):
        now += timedelta(seconds=step)
        current = reading(height, (now - T0).total_seconds(), *balances)
        for event in feed.events(current):
            name, balance = event.value["wallet"], Decimal(event.value["balance"])
            if name in seen:
                last_balance, last_time = seen[name]
                repeated = balance == last_balance
                assert not repeated or now - last_time >= timedelta(seconds=600)
            seen[name] = (balance, now)
        for wallet in WALLETS:
            last_balance, last_time = seen[wallet.wallet]
            assert last_balance == current.balances[wallet]
            assert now - last_time < timedelta(seconds=600)


class ScriptedNode:
    """A `BalanceSource` whose node answers from a script: a height, or None for no answer.

    The last step repeats forever; reaching it sets ``stop``, so the loop ends there.
    """

    def __init__(self, heights: Sequence[int | None], stop: asyncio.Event | None = None) -> None:
        self.chain = ETH
        self.script = list(heights)
        self.stop = stop
        self.asked = 0
        self.reads: list[int] = []
        self.hashes: dict[int, str] = {}  # a block other than the default one at a height

    async def confirmed_height(self) -> int:
        self.asked += 1
        if len(self.script) > 1:
            step = self.script.pop(0)
        else:
            step = self.script[0]
            if self.stop is not None:
                self.stop.set()
        if step is None:
            raise NodeUnavailable("connection refused")
        return step

    async def read(self, height: int) -> Reading:
        self.reads.append(height)
        balances = (str(height), "5", "0") if height not in self.hashes else (str(height), "4", "0")
        return reading(height, height * 12, *balances, block_hash=self.hashes.get(height))

    async def block_hash(self, height: int) -> str | None:
        return self.hashes.get(height, f"0x{height:064x}")


async def test_once_fails_at_once_when_the_node_does_not_answer() -> None:
    node, sink = ScriptedNode([None, 10]), MemorySink()
    with pytest.raises(NodeUnavailable, match="eth: node unavailable: connection refused"):
        await follow(node, BalanceFeed(ETH, WALLETS), sink, once=True, log=logging.getLogger("t"))
    assert node.reads == [] and sink.batches == []


async def test_follow_waits_out_the_node_with_backoff_then_publishes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    node, sink = ScriptedNode([None, None, None, None, 10], stop), MemorySink()
    log = logging.getLogger("test.watch")
    with caplog.at_level(logging.INFO, logger="test.watch"):
        await follow(
            node,
            BalanceFeed(ETH, WALLETS),
            sink,
            once=False,
            stop=stop,
            log=log,
            backoff_initial=0.001,
            backoff_max=0.004,
        )
    assert node.reads == [10]
    assert [published(batch) for batch in sink.batches] == [
        [("eth-cold-1", "10"), ("usdt-hot-1", "5"), ("eth-hot", "0")]
    ]
    lines = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert lines == [
        (
            "WARNING",
            "eth: node http://127.0.0.1:8545 unavailable (connection refused); "
            "retrying with backoff up to 0.004s",
        ),
        ("INFO", "eth: retry 1 in 0.001s"),
        ("INFO", "eth: retry 2 in 0.002s"),
        ("INFO", "eth: retry 3 in 0.004s"),
        ("INFO", "eth: retry 4 in 0.004s"),  # capped
        ("INFO", f"eth: confirmed height 10 (block 0x{10:064x}): 3 of 3 wallets published"),
        ("WARNING", lines[-1][1]),
    ]
    assert lines[-1][1].startswith("eth: node http://127.0.0.1:8545 is back after 4 failed tries")


async def test_follow_reads_each_new_height_once_and_resumes_after_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    node = ScriptedNode([10, 10, 10, 11, None, None, 11, 13, 13], stop)
    sink = MemorySink()
    log = logging.getLogger("test.follow")
    with caplog.at_level(logging.INFO, logger="test.follow"):
        await follow(
            node,
            BalanceFeed(ETH, WALLETS),
            sink,
            once=False,
            log=log,
            stop=stop,
            backoff_initial=0.001,
            backoff_max=0.001,
        )
    # a height is read once, however often the node repeats it; the outage re-reads nothing
    assert node.reads == [10, 11, 13]
    assert [published(batch) for batch in sink.batches] == [
        [("eth-cold-1", "10"), ("usdt-hot-1", "5"), ("eth-hot", "0")],
        [("eth-cold-1", "11")],
        [("eth-cold-1", "13")],
    ]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("unavailable" in message for message in messages) == 1  # one line per outage
    back = [m for m in messages if "is back after 2 failed tries" in m]
    assert len(back) == 1
    assert messages.index(back[0]) < messages.index(
        f"eth: confirmed height 13 (block 0x{13:064x}): 1 of 3 wallets published"
    )


async def test_follow_reads_a_height_again_when_a_reorg_replaced_its_block() -> None:
    stop = asyncio.Event()
    node = ScriptedNode([10, 10, 10], stop)
    sink = MemorySink()

    class Reorging(MemorySink):
        async def send(self, events: Sequence[Outgoing]) -> None:
            await sink.send(events)
            node.hashes[10] = "0xf0"  # after the first reading, another block at height 10

    await follow(
        node,
        BalanceFeed(ETH, WALLETS),
        Reorging(),
        once=False,
        log=logging.getLogger("t"),
        stop=stop,
    )
    assert node.reads == [10, 10]  # read again once, then the same block is not read again
    assert [published(batch) for batch in sink.batches] == [
        [("eth-cold-1", "10"), ("usdt-hot-1", "5"), ("eth-hot", "0")],
        [("usdt-hot-1", "4")],
    ]
    assert sink.batches[1][0].value["event_id"] != sink.batches[0][1].value["event_id"]


async def test_follow_returns_at_once_when_stopped_during_an_outage() -> None:
    stop = asyncio.Event()
    node, sink = ScriptedNode([None, None]), MemorySink()
    log = logging.getLogger("test.stop")
    feed = BalanceFeed(ETH, WALLETS)
    task = asyncio.create_task(
        follow(node, feed, sink, once=False, log=log, stop=stop, backoff_initial=3600)
    )
    while node.asked == 0:
        await asyncio.sleep(0)
    stop.set()  # the loop is in its hour of backoff now
    async with asyncio.timeout(60):  # only a guard against hanging the suite
        await task
    assert node.asked == 1
    assert sink.batches == []
    assert node.reads == []
