"""What ``watch evm`` and ``watch bitcoin`` share: the chains to watch, a loop per chain,
and the command around them.

Each chain of the registry that has wallets gets its own `BalanceSource`, fed to
`follow` through its own `BalanceFeed`, all publishing through one sink (Kafka,
or JSON Lines with ``--jsonl``). A node that goes away holds back only its own
chain. ``--once`` reads each chain's confirmed height once; there a node that
does not answer fails the command (exit 1, after the chains that answer are
published), so a scheduled ``--once`` never hangs. SIGTERM or SIGINT stops the
loops between two reads.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from connectors.balances import BalanceFeed, BalanceSource, NodeUnavailable, follow
from connectors.sinks import EventSink, open_sink
from connectors.wallets.registry import Chain, Kind, Registry, RegistryError, load_registry

# watch(registry, sink, once, stop): follows the chains of one kind into the sink
Watch = Callable[[Registry, EventSink, bool, asyncio.Event], Awaitable[None]]


def watched_chains(registry: Registry, kind: Kind, log: logging.Logger) -> tuple[Chain, ...]:
    """The chains of ``kind`` with at least one wallet; a chain with none is named in the log."""
    chains = []
    for chain in registry.chains_of(kind):
        if registry.on_chain(chain.key):
            chains.append(chain)
        else:
            log.warning("%s: no wallet on this chain; not watched", chain.key)
    return tuple(chains)


async def follow_all(
    sources: Sequence[BalanceSource],
    registry: Registry,
    sink: EventSink,
    *,
    once: bool,
    stop: asyncio.Event | None,
    log: logging.Logger,
) -> None:
    """A `follow` loop per source, side by side.

    ``once``: every chain that answers is published, then the failures of the others
    are raised together. Otherwise one chain that cannot be watched (refused
    credentials) stops them all, loudly.
    """

    def loop(source: BalanceSource) -> Awaitable[None]:
        feed = BalanceFeed(source.chain, registry.on_chain(source.chain.key))
        return follow(source, feed, sink, once=once, log=log, stop=stop)

    if once:
        outcomes = await asyncio.gather(*map(loop, sources), return_exceptions=True)
        failed = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if failed:
            raise ExceptionGroup("watch --once", failed)
        return
    async with asyncio.TaskGroup() as loops:
        for source in sources:
            loops.create_task(loop(source), name=f"watch-{source.chain.key}")


def run_watcher(
    args: argparse.Namespace,
    *,
    name: str,
    client_id: str,
    watch: Watch,
    fatal: tuple[type[Exception], ...],
) -> int:
    """The command: 0 when stopped or done, 1 on a bad registry, or on one of ``fatal``
    (and, with ``--once``, a node that does not answer), each message on stderr."""
    logging.basicConfig(
        level=os.environ.get("RESERVE_MONITOR_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        registry = load_registry(Path(args.wallets), Path(args.chains) if args.chains else None)
    except RegistryError as error:
        for problem in error.problems:
            print(f"{name}: {problem}", file=sys.stderr)
        return 1

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        sink = await open_sink(args.jsonl, client_id)
        try:
            await watch(registry, sink, args.once, stop)
        finally:
            await sink.close()

    ends = (*fatal, RegistryError, NodeUnavailable)
    try:
        asyncio.run(main())
    except (*ends, ExceptionGroup) as error:
        if isinstance(error, ExceptionGroup):
            _, rest = error.split(ends)
            if rest is not None:
                raise
        for problem in _problems(error):
            print(f"{name}: {problem}", file=sys.stderr)
        return 1
    return 0


def _problems(error: BaseException) -> list[str]:
    """The messages of an error, or of each error in an exception group."""
    if isinstance(error, BaseExceptionGroup):
        return [text for inner in error.exceptions for text in _problems(inner)]
    return [str(error)]
