"""``reserve-monitor watch evm``: every EVM chain of a registry, followed at once.

Each chain gets its own `EvmNode`, `BalanceFeed` and `follow` loop, all running
concurrently and publishing through one sink (Kafka, or JSON Lines with
``--jsonl``). A node that goes away holds back only its own chain. ``--once``
reads each chain's confirmed height once and exits; there, a node that does not
answer fails the command (exit 1, after the other chains are published)
instead of being waited for, so a scheduled ``--once`` never hangs. SIGTERM or
SIGINT stops the loops between two reads.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Mapping

from connectors.evm.node import CannotWatch, EvmNode
from connectors.sinks import EventSink
from connectors.wallets.registry import Registry
from connectors.watching import follow_all, run_watcher, watched_chains

log = logging.getLogger("connectors.evm")
CLIENT_ID = "reserve-monitor-watch-evm"


async def watch(
    registry: Registry,
    sink: EventSink,
    *,
    once: bool,
    stop: asyncio.Event | None = None,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Follow every EVM chain of ``registry`` into ``sink`` until ``stop`` (or one read each)."""
    chains = watched_chains(registry, "evm", log)
    if not chains:
        raise CannotWatch("the registry has no EVM chain with wallets on it")
    nodes = [EvmNode(chain, registry.on_chain(chain.key), environ=environ) for chain in chains]
    try:
        await follow_all(nodes, registry, sink, once=once, stop=stop, log=log)
    finally:
        for node in nodes:
            await node.close()


def run(args: argparse.Namespace) -> int:
    """The command: 0 when stopped or done, 1 on a bad registry or a node that refuses."""
    return run_watcher(
        args,
        name="watch evm",
        client_id=CLIENT_ID,
        watch=lambda registry, sink, once, stop: watch(registry, sink, once=once, stop=stop),
        fatal=(CannotWatch,),
    )
