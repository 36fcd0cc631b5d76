"""``reserve-monitor watch bitcoin``: every Bitcoin chain of a registry, followed at once.

Each chain gets its own `BitcoinSource` (scanning from its ``scan_from``),
`BalanceFeed` and `follow` loop, publishing through one sink (Kafka, or JSON
Lines with ``--jsonl``). ``--once`` scans each chain up to its confirmed height,
publishes that reading and exits; there a node that does not answer fails the
command (exit 1) rather than being waited for. SIGTERM or SIGINT stops the
loops between two reads.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Mapping

from connectors.bitcoin.blocks import BlockError
from connectors.bitcoin.rpc import BitcoinRpc, RpcError
from connectors.bitcoin.source import BitcoinSource, ScanError
from connectors.sinks import EventSink
from connectors.wallets.registry import Registry
from connectors.watching import follow_all, run_watcher, watched_chains

log = logging.getLogger("connectors.bitcoin")
CLIENT_ID = "reserve-monitor-watch-bitcoin"


async def watch(
    registry: Registry,
    sink: EventSink,
    *,
    once: bool,
    stop: asyncio.Event | None = None,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Follow every Bitcoin chain of ``registry`` into ``sink`` until ``stop`` (or once each)."""
    chains = watched_chains(registry, "bitcoin", log)
    if not chains:
        raise ScanError("the registry has no bitcoin chain with wallets on it")
    rpcs = [
        BitcoinRpc(chain.rpc, chain.credentials(environ), chain_key=chain.key) for chain in chains
    ]
    try:
        sources = [
            BitcoinSource(chain, registry.on_chain(chain.key), rpc, log=log)
            for chain, rpc in zip(chains, rpcs, strict=True)
        ]
        await follow_all(sources, registry, sink, once=once, stop=stop, log=log)
    finally:
        for rpc in rpcs:
            await rpc.close()


def run(args: argparse.Namespace) -> int:
    """The command: 0 when stopped or done, 1 on a bad registry, a refusing or absent node."""
    return run_watcher(
        args,
        name="watch bitcoin",
        client_id=CLIENT_ID,
        watch=lambda registry, sink, once, stop: watch(registry, sink, once=once, stop=stop),
        fatal=(RpcError, ScanError, BlockError),
    )
