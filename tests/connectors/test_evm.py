"""``watch evm`` against a real anvil node: exact balances, confirmations, restarts, reorgs, drains.

Each test starts its own anvil (see ``tests/connectors/anvil.py``), deploys the
committed OpenZeppelin ERC-20, funds an exchange's cold and hot wallets with
ETH and the token, and reads them with the watcher: through the real command
(``reserve-monitor watch evm --once --jsonl``, a subprocess) where the output
is what is checked, in process where the follow loop's behaviour over time is.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from eth_utils.crypto import keccak

from connectors.balances import BalanceFeed, NodeUnavailable, balance_event_id
from connectors.evm.erc20 import BALANCE_OF, DECIMALS, balance_of_call, decode_uint256
from connectors.evm.node import CannotWatch, EvmNode
from connectors.evm.reads import in_units, plan_reads, wallet_balances
from connectors.evm.watch import watch
from connectors.wallets.registry import Wallet, load_registry
from monitor.synthetic.local import free_port
from tests.connectors.anvil import (
    COLD_1,
    COLD_2,
    CONFIRMATIONS,
    ETH,
    FUNDED,
    GENESIS,
    HOT,
    HOT_DRAINED_JPY,
    HOT_FUNDED_JPY,
    OPS_POLICY,
    PRICES,
    THIEF,
    USDT,
    FundedChain,
    address_of,
    drain,
    funded_chain,
    registry_text,
    running_anvil,
)
from tests.connectors.memory import MemorySink

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[FundedChain]:
    with funded_chain(tmp_path) as funded:
        yield funded


def watch_once(registry: Path, output: Path, *more: str) -> list[dict[str, Any]]:
    """Run ``reserve-monitor watch evm --once --jsonl output``; the lines it appended."""
    before = output.read_text().splitlines() if output.exists() else []
    command = [sys.executable, "-m", "monitor.cli", "watch", "evm"]
    finished = subprocess.run(
        [*command, "--wallets", str(registry), "--once", "--jsonl", str(output), *more],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    return [json.loads(line) for line in output.read_text().splitlines()[len(before) :]]


def by_wallet(lines: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["value"]["wallet"]: line["value"] for line in lines}


async def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait for ``condition``; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --- the pure parts ------------------------------------------------------------------------


def test_amounts_scale_exactly_by_the_asset_decimals() -> None:
    assert in_units(10**30 + 1, 18) == Decimal("1000000000000.000000000000000001")
    assert in_units(5, 6) == Decimal("0.000005")
    assert in_units(0, 18) == 0
    with pytest.raises(ValueError, match="negative"):
        in_units(-1, 6)


def test_a_wallet_balance_is_the_sum_over_its_addresses_in_its_own_decimals() -> None:
    token = address_of("token")
    eth = Wallet("dmm", "eth-cold", "eth", "ETH", "cold", "customer", (COLD_1, COLD_2))
    usdt = Wallet("dmm", "usdt-hot", "eth", "USDT", "hot", "customer", (HOT,), token, 6)
    reads = plan_reads([eth, usdt])
    assert [(r.wallet, r.token) for r in reads] == [(eth, None), (eth, None), (usdt, token)]
    balances = wallet_balances(reads, [ETH, ETH // 2, 1_500_000])
    assert balances == {eth: Decimal("1.5"), usdt: Decimal("1.5")}


def test_balance_of_is_encoded_as_the_standard_says() -> None:
    assert "0x" + keccak(text="balanceOf(address)")[:4].hex() == BALANCE_OF
    assert "0x" + keccak(text="decimals()")[:4].hex() == DECIMALS
    token = address_of("token")
    call = balance_of_call(token, HOT)
    assert call["to"] == token
    assert call["data"] == "0x70a08231" + "0" * 24 + HOT[2:].lower()
    assert decode_uint256(token, (7).to_bytes(32, "big")) == 7
    with pytest.raises(ValueError, match="no contract at that address"):
        decode_uint256(token, b"")


# --- against anvil -------------------------------------------------------------------------


def test_once_publishes_every_wallet_at_the_confirmed_block_with_exact_balances(
    chain: FundedChain, tmp_path: Path
) -> None:
    output = tmp_path / "balances.jsonl"
    first = watch_once(chain.registry_path, output)
    confirmed = chain.node.height() - CONFIRMATIONS
    block = chain.node.block(confirmed)

    assert [line["topic"] for line in first] == ["exchange.wallet-balances"] * 4
    assert {line["key"] for line in first} == {"dmm"}
    values = by_wallet(first)
    assert {name: Decimal(v["balance"]) for name, v in values.items()} == FUNDED
    assert values["usdt-cold-1"]["balance"] == "900000.25"  # the contract's decimal text
    for name, value in values.items():
        wallet = chain.wallet(name)
        assert value["ts"] == chain.node.block_time(confirmed).isoformat().replace("+00:00", "Z")
        assert value["event_id"] == balance_event_id("eth", block["hash"], wallet)
        assert (value["custody"], value["holder"], value["asset"]) == (
            wallet.custody,
            wallet.holder,
            wallet.asset,
        )
    # the same height read again (a restart): the very same events, ids included
    assert watch_once(chain.registry_path, output) == first


def test_a_transfer_is_seen_only_once_it_has_its_confirmations(
    chain: FundedChain, tmp_path: Path
) -> None:
    node = chain.node
    moved = node.send(HOT, COLD_1, value=10 * ETH)
    block = node.mine()
    assert node.succeeded(moved)

    async def hot_balance() -> Decimal:
        sink = MemorySink()
        await watch(chain.registry, sink, once=True)
        return Decimal(sink.of("eth-hot-1")[0]["balance"])

    seen: list[tuple[int, Decimal]] = []
    for _ in range(CONFIRMATIONS):
        seen.append((node.height() - block, asyncio.run(hot_balance())))
        node.mine()
    seen.append((node.height() - block, asyncio.run(hot_balance())))
    # blocks on top of the transfer's, and the hot balance the watcher reports
    fifty, forty = Decimal(50), Decimal(40)
    assert seen == [(0, fifty), (1, fifty), (2, fifty), (3, forty)]


async def test_the_follower_publishes_changes_only_and_rides_out_a_node_restart(
    chain: FundedChain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.evm")
    node, sink, stop = chain.node, MemorySink(), asyncio.Event()
    follower = asyncio.create_task(watch(chain.registry, sink, once=False, stop=stop))
    try:
        await until(lambda: len(sink.events) == 4, "the first reading")

        node.send(HOT, COLD_2, value=5 * ETH)
        node.mine(1 + CONFIRMATIONS)
        await until(lambda: len(sink.of("eth-hot-1")) == 2, "the hot wallet's change")

        node.stop()  # SIGTERM: the node goes away with its chain saved
        await until(lambda: "unavailable" in caplog.text, "the follower to notice")
        node.start()  # the same port, the same chain
        node.send_token(chain.token, HOT, COLD_1, 1_000 * USDT)
        node.mine(1 + CONFIRMATIONS)
        await until(lambda: len(sink.of("usdt-hot-1")) == 2, "the change after the restart")
        await until(lambda: "is back" in caplog.text, "the follower to say the node is back")
    finally:
        stop.set()
        await asyncio.wait_for(follower, timeout=60)

    assert [v["balance"] for v in sink.of("eth-hot-1")] == ["50", "45"]
    assert [v["balance"] for v in sink.of("eth-cold-1")] == ["1000.5", "1005.5"]
    assert [v["balance"] for v in sink.of("usdt-hot-1")] == ["100000", "99000"]
    assert [v["balance"] for v in sink.of("usdt-cold-1")] == ["900000.25", "901000.25"]
    # block times run on across the restart: each event is later than the one before it
    times = [e.value["ts"] for e in sink.events]
    assert times == sorted(times) and len(set(times)) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"node {node.url} unavailable" in w for w in warnings), warnings
    assert sum("unavailable" in w for w in warnings) == 1  # one line, not one per retry


async def test_a_reorg_gives_the_new_chain_balances_under_new_event_ids(chain: FundedChain) -> None:
    node = chain.node
    source = EvmNode(node_chain := chain.registry.chains["eth"], chain.registry.on_chain("eth"))
    feed = BalanceFeed(node_chain, source.wallets)
    try:
        fork = node.call("evm_snapshot")
        node.send(HOT, COLD_1, value=20 * ETH)
        node.mine(1 + CONFIRMATIONS)
        height = await source.confirmed_height()
        before = await source.read(height)
        first = {e.value["wallet"]: e.value for e in feed.events(before)}

        # the chain is replaced from the fork on: another transfer, a longer chain
        node.call("evm_revert", fork)
        node.send(HOT, THIEF, value=30 * ETH)
        node.mine(2 + CONFIRMATIONS)
        after = await source.read(await source.confirmed_height())
        second = {e.value["wallet"]: e.value for e in feed.events(after)}
    finally:
        await source.close()

    assert first["eth-hot-1"]["balance"] == "30"
    assert node.block(height)["hash"] != before.block_hash  # that block is gone
    assert second["eth-hot-1"]["balance"] == "20"
    assert second["eth-cold-1"]["balance"] == "1000.5"  # the 20 ETH never arrived
    assert second["eth-hot-1"]["event_id"] == balance_event_id(
        "eth", after.block_hash, chain.wallet("eth-hot-1")
    )
    assert second["eth-hot-1"]["event_id"] != first["eth-hot-1"]["event_id"]


def test_a_drained_hot_wallet_is_reported_by_replay(chain: FundedChain, tmp_path: Path) -> None:
    node = chain.node
    records = tmp_path / "records.jsonl"
    at = GENESIS.isoformat().replace("+00:00", "Z")
    prices = [
        {
            "topic": "market.prices",
            "key": asset,
            "value": {
                "event_id": f"p-{asset}",
                "asset": asset,
                "ts": at,
                "price": price,
                "currency": "JPY",
            },
        }
        for asset, price in PRICES.items()
    ]
    records.write_text("".join(json.dumps(line) + "\n" for line in prices))
    watch_once(chain.registry_path, records)

    drained = drain(node, chain.token)
    node.mine(CONFIRMATIONS)
    after = by_wallet(watch_once(chain.registry_path, records))
    assert (after["eth-hot-1"]["balance"], after["usdt-hot-1"]["balance"]) == ("5", "5000")

    policy = tmp_path / "ops.yaml"
    policy.write_text(OPS_POLICY)
    replay = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "replay", str(records), "--policy", str(policy)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    alerts = [json.loads(line) for line in replay.stdout.splitlines()]
    drains = [a for a in alerts if a["subject"] == "dmm/ops.hot_wallet_drain"]
    assert [(a["data"]["previous_status"], a["data"]["status"]) for a in drains] == [
        ("unknown", "ok"),
        ("ok", "breach"),
    ]
    breach = drains[-1]
    assert breach["time"] == node.block_time(drained).isoformat().replace("+00:00", "Z")
    assert Decimal(breach["data"]["available"]) == HOT_DRAINED_JPY
    assert Decimal(breach["data"]["ratio"]) == HOT_DRAINED_JPY / HOT_FUNDED_JPY
    falls = {f["wallet"] for f in breach["data"]["evidence"]["hot_wallet_falls"]}
    assert falls == {"eth-hot-1", "usdt-hot-1"}


async def test_a_registry_larger_than_a_batch_is_read_in_batches_of_one_block(
    chain: FundedChain,
) -> None:
    registry = chain.registry
    eth = registry.chains["eth"]
    whole = EvmNode(eth, registry.on_chain("eth"))
    split = EvmNode(eth, registry.on_chain("eth"), batch_size=2)  # the block and one balance
    try:
        height = await whole.confirmed_height()
        one, many = await whole.read(height), await split.read(height)
    finally:
        await whole.close()
        await split.close()
    assert many == one
    assert {w.wallet: b for w, b in many.balances.items()} == FUNDED


# --- credentials, fatal answers, several chains ---------------------------------------------


@asynccontextmanager
async def basic_auth_proxy(upstream: str, user: str, password: str) -> AsyncIterator[str]:
    """A local node endpoint that wants HTTP basic auth, as managed nodes do; its URL."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def forward(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="unauthorized")
        async with (
            aiohttp.ClientSession() as session,
            session.post(upstream, data=await request.read(), headers=JSON) as answer,
        ):
            return web.Response(body=await answer.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


JSON = {"Content-Type": "application/json"}


async def test_node_credentials_come_from_the_environment(
    chain: FundedChain, tmp_path: Path
) -> None:
    async with basic_auth_proxy(chain.node.url, "monitor", "s3cret") as url:
        registry_path = tmp_path / "behind-auth.yaml"
        registry_path.write_text(registry_text(url, chain.token))
        registry = load_registry(registry_path)
        sink = MemorySink()
        login = {
            "RESERVE_MONITOR_ETH_RPC_USER": "monitor",
            "RESERVE_MONITOR_ETH_RPC_PASSWORD": "s3cret",
        }
        await watch(registry, sink, once=True, environ=login)
        refused = None
        try:
            await watch(registry, MemorySink(), once=True, environ={})
        except ExceptionGroup as group:
            refused = group.exceptions[0]

    assert {v["wallet"]: Decimal(v["balance"]) for v in (e.value for e in sink.events)} == FUNDED
    assert isinstance(refused, CannotWatch)
    assert "HTTP 401" in str(refused) and "RESERVE_MONITOR_ETH_RPC_USER" in str(refused)


def run_once(registry: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "monitor.cli", "watch", "evm", "--wallets", str(registry)]
    return subprocess.run(
        [*command, "--once", "--jsonl", "-"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_a_token_whose_decimals_differ_from_the_registry_stops_the_watcher(
    chain: FundedChain, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-decimals.yaml"
    wrong.write_text(
        registry_text(chain.node.url, chain.token).replace("decimals: 6", "decimals: 18")
    )
    finished = run_once(wrong)
    assert finished.returncode == 1
    assert finished.stdout == ""  # nothing published with balances 10^12 too small
    assert f"token {chain.token} has 6 decimals on chain, the registry says 18" in finished.stderr


def test_once_fails_at_once_when_the_node_is_down(chain: FundedChain) -> None:
    chain.node.stop()
    finished = run_once(chain.registry_path)
    assert finished.returncode == 1
    assert finished.stdout == ""
    said = f"watch evm: eth: node unavailable: chain eth node at {chain.node.url}: Cannot connect"
    assert said in finished.stderr


async def test_every_chain_is_followed_on_its_own_and_a_dead_node_holds_back_only_its_chain(
    chain: FundedChain, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.evm")
    (tmp_path / "l2").mkdir()
    with running_anvil(tmp_path / "l2") as l2:
        l2.send(l2.funder, HOT, value=7 * ETH)
        l2.mine(1 + CONFIRMATIONS)
        l2.stop()
        both = tmp_path / "two-chains.yaml"
        both.write_text(
            registry_text(chain.node.url, chain.token).replace(
                "wallets:\n",
                f"  l2: {{kind: evm, rpc: '{l2.url}', confirmations: {CONFIRMATIONS}, "
                "poll_seconds: 0.05}\nwallets:\n"
                "  - {exchange: dmm, wallet: l2-hot-1, chain: l2, asset: ETH, custody: hot,\n"
                f"     holder: customer, addresses: ['{HOT}']}}\n",
            )
        )
        # --once: the chain that answers is published, and the command fails for the other
        once = MemorySink()
        with pytest.raises(ExceptionGroup) as failed:
            await watch(load_registry(both), once, once=True)
        (problem,) = failed.value.exceptions
        assert isinstance(problem, NodeUnavailable)
        assert str(problem).startswith(f"l2: node unavailable: chain l2 node at {l2.url}: ")
        assert len(once.events) == 4 and once.of("l2-hot-1") == []

        sink, stop = MemorySink(), asyncio.Event()
        follower = asyncio.create_task(watch(load_registry(both), sink, once=False, stop=stop))
        try:
            await until(lambda: len(sink.events) == 4, "the eth chain, with l2 down")
            await until(lambda: "l2: node" in caplog.text, "l2 reported unavailable")
            assert sink.of("l2-hot-1") == []
            l2.start()
            await until(lambda: len(sink.of("l2-hot-1")) == 1, "the l2 chain, once its node is up")
        finally:
            stop.set()
            await asyncio.wait_for(follower, timeout=60)

    assert sink.of("l2-hot-1")[0]["balance"] == "7"
    assert {v["wallet"] for v in (e.value for e in sink.events[:4])} == set(FUNDED)
