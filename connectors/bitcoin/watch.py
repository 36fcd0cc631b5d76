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
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from connectors.balances import BalanceFeed, NodeUnavailable, Reading, follow
from connectors.bitcoin.blocks import BlockError
from connectors.bitcoin.rpc import BitcoinRpc, RpcError
from connectors.bitcoin.source import BitcoinSource, ScanError
from connectors.sinks import EventSink, open_sink
from connectors.wallets.registry import Chain, Registry, RegistryError, load_registry

log = logging.getLogger("connectors.bitcoin")
CLIENT_ID = "reserve-monitor-watch-bitcoin"

# what ends the command with its message instead of a traceback
_FATAL = (RpcError, ScanError, BlockError, RegistryError)


class NodeDown(RuntimeError):
    """``--once``: the node did not answer, so there is nothing to publish."""


class _FailFast:
    """A source for ``--once``: a node that does not answer ends the command."""

    def __init__(self, source: BitcoinSource) -> None:
        self.source = source
        self.chain = source.chain

    async def confirmed_height(self) -> int:
        try:
            return await self.source.confirmed_height()
        except NodeUnavailable as error:
            raise NodeDown(f"{self.chain.key}: node unavailable: {error}") from None

    async def read(self, height: int) -> Reading:
        try:
            return await self.source.read(height)
        except NodeUnavailable as error:
            raise NodeDown(f"{self.chain.key}: node unavailable: {error}") from None


def watched_chains(registry: Registry) -> tuple[Chain, ...]:
    """The Bitcoin chains with at least one wallet; a chain with none is named in the log."""
    chains = []
    for chain in registry.chains_of("bitcoin"):
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
    """Follow every Bitcoin chain of ``registry`` into ``sink`` until ``stop`` (or once each)."""
    chains = watched_chains(registry)
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
        async with asyncio.TaskGroup() as loops:
            for source in sources:
                loops.create_task(
                    follow(
                        _FailFast(source) if once else source,
                        BalanceFeed(source.chain, registry.on_chain(source.chain.key)),
                        sink,
                        once=once,
                        log=log,
                        stop=stop,
                    ),
                    name=f"watch-bitcoin-{source.chain.key}",
                )
    finally:
        for rpc in rpcs:
            await rpc.close()


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
    """The command: 0 when stopped or done, 1 on a bad registry, a refusing or absent node."""
    logging.basicConfig(
        level=os.environ.get("RESERVE_MONITOR_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        registry = load_registry(Path(args.wallets), Path(args.chains) if args.chains else None)
    except RegistryError as error:
        for problem in error.problems:
            print(f"watch bitcoin: {problem}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_main(registry, args.jsonl, args.once))
    except (*_FATAL, NodeDown, ExceptionGroup) as error:
        if isinstance(error, ExceptionGroup):
            _, rest = error.split((*_FATAL, NodeDown))
            if rest is not None:
                raise
        for problem in _problems(error):
            print(f"watch bitcoin: {problem}", file=sys.stderr)
        return 1
    return 0
