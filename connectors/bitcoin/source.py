"""A Bitcoin node as a `BalanceSource`: scan blocks into the watched outputs, read balances.

Only RPC calls that Bitcoin Core and btcd both serve: ``getblockchaininfo``
(tip and network), ``getblockhash`` and ``getblock <hash> 2``. The first
`read` scans from the chain's ``scan_from`` to the height asked; later ones
connect the new blocks. Before each read the scanned tip's hash is compared
with the node's: if the node has moved to another branch, blocks are undone
back to the fork and the new branch is scanned (a reorg deeper than the kept
undo starts over from ``scan_from``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from connectors.balances import NodeUnavailable, Reading
from connectors.bitcoin.blocks import Block, btc, parse_block
from connectors.bitcoin.rpc import BitcoinRpc, RpcError
from connectors.bitcoin.scripts import watched_scripts
from connectors.bitcoin.utxos import DEFAULT_KEEP, ChainError, TooDeep, WatchedOutputs
from connectors.wallets.registry import Chain, Wallet

# what getblockchaininfo's `chain` says on each network: Core's names, then btcd's
_NODE_NETWORKS = {
    "main": "main",
    "mainnet": "main",
    "test": "test",
    "testnet3": "test",
    "testnet4": "test",
    "signet": "signet",
    "regtest": "regtest",
}
FETCH_AHEAD = 8  # blocks asked for at once while scanning: keeps the node busy, memory small
PROGRESS_EVERY = 1000  # blocks between progress lines of a long scan
MAX_BRANCH_SWITCHES = 10  # a node that changes branch more often within one read is broken


class ScanError(RuntimeError):
    """The node cannot serve this chain's registry (another network, an unusable address)."""


class BitcoinSource:
    """Balances of the registered wallets of one Bitcoin chain, at confirmed heights."""

    def __init__(
        self,
        chain: Chain,
        wallets: Sequence[Wallet],
        rpc: BitcoinRpc,
        *,
        log: logging.Logger,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        if chain.kind != "bitcoin" or chain.scan_from is None:
            raise ValueError(f"chain {chain.key} is not a bitcoin chain with a scan_from")
        self.chain = chain
        self._rpc = rpc
        self._log = log
        self._keep = keep
        self._network = chain.network or "main"
        try:
            self._owners = watched_scripts(wallets, self._network)
        except ValueError as error:
            raise ScanError(f"chain {chain.key}: {error}") from None
        self._scan_from = chain.scan_from
        self._outputs = WatchedOutputs(self._owners, self._scan_from, keep=keep)
        self._checked_network = False

    async def confirmed_height(self) -> int:
        """The node's tip less the chain's confirmations."""
        info = await self._rpc.call("getblockchaininfo")
        if not self._checked_network:
            network = _NODE_NETWORKS.get(str(info.get("chain")))
            if network != self._network:
                raise ScanError(
                    f"chain {self.chain.key}: the node at {self.chain.rpc} is on "
                    f"{info.get('chain')!r}, the registry says {self._network!r}"
                )
            self._checked_network = True
        tip = int(info["blocks"])
        confirmed = tip - self.chain.confirmations
        if confirmed < self._scan_from:
            # a node still syncing (or one that lost its chain): nothing to read yet, so wait
            raise NodeUnavailable(
                f"its tip {tip} less {self.chain.confirmations} confirmations is "
                f"below scan_from {self._scan_from}; waiting for it to sync"
            )
        return confirmed

    async def read(self, height: int) -> Reading:
        """Every watched wallet's balance as of the block at ``height``."""
        if height < self._scan_from:
            raise ScanError(
                f"chain {self.chain.key}: height {height} is below scan_from "
                f"{self._scan_from}: no block there is scanned"
            )
        await self._sync(height)
        block = self._outputs.tip_block
        assert block is not None and block.height == height  # _sync connected up to it
        return Reading(
            chain=self.chain.key,
            height=block.height,
            block_hash=block.hash,
            block_time=block.time,
            balances={wallet: btc(sats) for wallet, sats in self._outputs.balances().items()},
        )

    async def _sync(self, height: int) -> None:
        """Make the watched outputs those of the node's chain up to ``height``."""
        switches = 0
        while True:
            try:
                await self._undo_to_fork()
                while self._outputs.tip > height:
                    self._outputs.disconnect()
                await self._scan_to(height)
                return
            except TooDeep as error:
                self._log.warning(
                    "chain %s: %s; rescanning from scan_from %d",
                    self.chain.key,
                    error,
                    self._scan_from,
                )
                self._outputs = WatchedOutputs(self._owners, self._scan_from, keep=self._keep)
            except ChainError as error:
                # the node switched branches between two calls: find the fork again
                switches += 1
                if switches > MAX_BRANCH_SWITCHES:
                    raise ScanError(
                        f"chain {self.chain.key}: the node's chain kept changing during the "
                        f"scan ({error})"
                    ) from None
                self._log.info("chain %s: %s; looking for the fork", self.chain.key, error)

    async def _undo_to_fork(self) -> None:
        """Undo the scanned blocks that are no longer in the node's chain."""
        undone: list[str] = []
        while self._outputs.tip >= self._scan_from:
            tip = self._outputs.tip
            known = self._outputs.hash_at(tip)
            if known is not None and known == await self._hash_at(tip):
                break
            block = self._outputs.disconnect()
            undone.append(f"{block.height} {block.hash}")
        if undone:
            self._log.warning(
                "chain %s: reorg: %d scanned block(s) left the node's chain and are undone "
                "(%s); rescanning from height %d",
                self.chain.key,
                len(undone),
                ", ".join(reversed(undone)),
                self._outputs.tip + 1,
            )

    async def block_hash(self, height: int) -> str | None:
        """The node's block hash at ``height`` now (None above its tip), for `follow`."""
        return await self._hash_at(height)

    async def _hash_at(self, height: int) -> str | None:
        """The node's block hash at ``height``, or None above its tip."""
        refused: RpcError | None = None
        refused_at: str | None = None  # the tip the node had when it refused
        for _ in range(MAX_BRANCH_SWITCHES + 1):
            info = await self._rpc.call("getblockchaininfo")
            if height > int(info["blocks"]):
                return None
            tip = str(info["bestblockhash"])
            if refused is not None and tip == refused_at:
                raise refused  # the chain did not move: the refusal stands
            try:
                return str(await self._rpc.call("getblockhash", height))
            except RpcError as error:
                # the tip may have moved since it was asked: fallen below ``height`` (a
                # reorg; btcd's tip falls at invalidateblock) and perhaps risen again
                # since, so ask again
                refused, refused_at = error, tip
        raise ScanError(
            f"chain {self.chain.key}: the node's chain kept changing while its block at "
            f"height {height} was asked for ({refused})"
        )

    async def _scan_to(self, height: int) -> None:
        start = self._outputs.tip + 1
        if height - start >= PROGRESS_EVERY:
            self._log.info(
                "chain %s: scanning blocks %d to %d for %d address(es)",
                self.chain.key,
                start,
                height,
                len(self._owners),
            )
        while self._outputs.tip < height:
            first = self._outputs.tip + 1
            last = min(height, first + FETCH_AHEAD - 1)
            for block in await self._blocks(first, last):
                self._outputs.connect(block)  # ChainError if the node's chain moved meanwhile
                if (block.height - start + 1) % PROGRESS_EVERY == 0:
                    self._log.info(
                        "chain %s: scanned to height %d of %d", self.chain.key, block.height, height
                    )

    async def _blocks(self, first: int, last: int) -> list[Block]:
        """The node's blocks from ``first`` to ``last``, asked for concurrently."""
        heights = range(first, last + 1)
        hashes: list[Any] | None = None
        best = (await self._rpc.call("getblockchaininfo"))["bestblockhash"]
        try:
            hashes = await asyncio.gather(*(self._rpc.call("getblockhash", h) for h in heights))
            raws: list[Any] = await asyncio.gather(
                *(self._rpc.call("getblock", block_hash, 2) for block_hash in hashes)
            )
        except RpcError:
            # the node may have switched branches meanwhile (a block left its chain, or its
            # tip fell below ``last``, perhaps to rise again); then that is what to handle,
            # else the error stands
            info = await self._rpc.call("getblockchaininfo")
            tip = int(info["blocks"])
            if tip < last:
                raise NodeUnavailable(
                    f"its tip fell to {tip}, below height {last} being scanned"
                ) from None
            if info["bestblockhash"] != best:
                raise ChainError(
                    f"the node's tip moved while blocks {first} to {last} were read"
                ) from None
            if hashes is not None:
                now = await asyncio.gather(*(self._rpc.call("getblockhash", h) for h in heights))
                if now != hashes:
                    raise ChainError(f"the node's blocks {first} to {last} changed") from None
            raise
        return [parse_block(raw) for raw in raws]
