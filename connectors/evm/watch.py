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
import signal
import sys
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.balances import BalanceFeed, NodeUnavailable, Reading, follow
from connectors.evm.node import CannotWatch, EvmNode
from connectors.sinks import EventSink, open_sink
from connectors.wallets.registry import Chain, Registry, RegistryError, load_registry

log = logging.getLogger("connectors.evm")
CLIENT_ID = "reserve-monitor-watch-evm"


class _FailFast:
    """A source for ``--once``: a node that does not answer ends the command."""

    def __init__(self, node: EvmNode) -> None:
        self.node = node
        self.chain = node.chain

    async def confirmed_height(self) -> int:
        try:
            return await self.node.confirmed_height()
        except NodeUnavailable as error:
            raise CannotWatch(str(error)) from None

    async def read(self, height: int) -> Reading:
        try:
            return await self.node.read(height)
        except NodeUnavailable as error:
            raise CannotWatch(str(error)) from None


def watched_chains(registry: Registry) -> tuple[Chain, ...]:
    """The EVM chains with at least one wallet; a chain with none is named in the log."""
    chains = []
    for chain in registry.chains_of("evm"):
        if registry.on_chain(chain.key):
            chains.append(chain)
        else:
            log.warning("%s: no wallet on this chain; not watched", chain.key)
    return tuple(chains)


async def watch(
    registry: Registry,
    sink: EventSink,
    *,
    once: bool,
    stop: asyncio.Event | None = None,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Follow every EVM chain of ``registry`` into ``sink`` until ``stop`` (or one read each)."""
    chains = watched_chains(registry)
    if not chains:
        raise CannotWatch("the registry has no EVM chain with wallets on it")
    nodes = [EvmNode(chain, registry.on_chain(chain.key), environ=environ) for chain in chains]

    def loop(node: EvmNode) -> Coroutine[Any, Any, None]:
        source = _FailFast(node) if once else node
        feed = BalanceFeed(node.chain, node.wallets)
        return follow(source, feed, sink, once=once, log=log, stop=stop)

    try:
        if once:
            # every chain that answers is published, even when another's node is down
            outcomes = await asyncio.gather(*map(loop, nodes), return_exceptions=True)
            failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            if failed:
                raise BaseExceptionGroup("watch evm --once", failed)
        else:
            # one chain that cannot be watched (refused credentials) stops them all, loudly
            async with asyncio.TaskGroup() as loops:
                for node in nodes:
                    loops.create_task(loop(node), name=f"watch-evm-{node.chain.key}")
    finally:
        for node in nodes:
            await node.close()


async def _main(registry: Registry, jsonl: str | None, once: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sink = await open_sink(jsonl, CLIENT_ID)
    try:
        await watch(registry, sink, once=once, stop=stop)
    finally:
        await sink.close()


def _problems(error: BaseException) -> Sequence[str]:
    """The messages of an error, or of each error in an exception group."""
    if isinstance(error, BaseExceptionGroup):
        return [text for inner in error.exceptions for text in _problems(inner)]
    return [str(error)]


def run(args: argparse.Namespace) -> int:
    """The command: 0 when stopped or done, 1 on a bad registry or a node that refuses."""
    logging.basicConfig(
        level=os.environ.get("RESERVE_MONITOR_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        registry = load_registry(Path(args.wallets), Path(args.chains) if args.chains else None)
    except RegistryError as error:
        for problem in error.problems:
            print(f"watch evm: {problem}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_main(registry, args.jsonl, args.once))
    except (CannotWatch, RegistryError, ExceptionGroup) as error:
        if isinstance(error, ExceptionGroup):
            _, rest = error.split((CannotWatch, RegistryError))
            if rest is not None:
                raise
        for problem in _problems(error):
            print(f"watch evm: {problem}", file=sys.stderr)
        return 1
    return 0
