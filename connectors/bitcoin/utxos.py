"""The watched output set: unspent outputs paying registered scripts, block by block.

``gettxout`` answers at the node's tip, so it cannot give a balance at a
confirmed height; the watcher keeps the outputs itself. Blocks are connected
in height order from the chain's ``scan_from``: an output paying a watched
script is added, an input spending a watched outpoint removes it. Every
connected block keeps its undo (the outputs it added and spent), so a reorg is
undone block by block back to the fork and the new branch connected instead.
Undo is kept for the newest `keep` blocks; a reorg deeper than that (far past
any confirmations setting) cannot be undone, and the caller starts over from
``scan_from``.

Pure: no I/O, no clock. Amounts are integer satoshis.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from connectors.bitcoin.blocks import Block, Outpoint
from connectors.wallets.registry import Wallet

DEFAULT_KEEP = 288  # two days of blocks: undo far deeper than any sane confirmations


class ChainError(ValueError):
    """A block that does not extend the scanned chain (the caller looks for the fork)."""


class TooDeep(ChainError):
    """A reorg below the oldest block whose undo is kept: start over from ``scan_from``."""


@dataclass(frozen=True, slots=True)
class Coin:
    """A watched unspent output: whose it is and what it holds."""

    wallet: Wallet
    sats: int


@dataclass(frozen=True, slots=True)
class Connected:
    """A connected block: what identifies it, and how to undo it."""

    height: int
    hash: str
    time: datetime
    added: tuple[tuple[Outpoint, Coin], ...]
    spent: tuple[tuple[Outpoint, Coin], ...]


class WatchedOutputs:
    """The unspent outputs of the watched scripts as of the newest connected block."""

    def __init__(
        self, owners: Mapping[str, Wallet], scan_from: int, *, keep: int = DEFAULT_KEEP
    ) -> None:
        if scan_from < 0:
            raise ValueError("scan_from must be 0 or more")
        if keep < 1:
            raise ValueError("keep must be 1 or more")
        self.scan_from = scan_from
        self._owners = dict(owners)
        self._unspent: dict[Outpoint, Coin] = {}
        self._balances: dict[Wallet, int] = dict.fromkeys(owners.values(), 0)
        self._blocks: deque[Connected] = deque(maxlen=keep)
        self._tip = scan_from - 1
        self._tip_hash: str | None = None  # kept even once its undo has left the deque

    @property
    def tip(self) -> int:
        """The newest connected height (``scan_from - 1`` before the first block)."""
        return self._tip

    @property
    def tip_block(self) -> Connected | None:
        return self._blocks[-1] if self._blocks else None

    @property
    def oldest_undoable(self) -> int:
        """The lowest height that can still be disconnected."""
        return self._blocks[0].height if self._blocks else self._tip + 1

    def hash_at(self, height: int) -> str | None:
        """The connected block's hash at ``height``, while its undo is kept."""
        if height == self._tip:
            return self._tip_hash
        index = height - self.oldest_undoable
        if 0 <= index < len(self._blocks):
            return self._blocks[index].hash
        return None

    def connect(self, block: Block) -> None:
        """Apply the next block; `ChainError` if it does not extend the connected tip."""
        if block.height != self._tip + 1:
            raise ChainError(f"block {block.height} does not follow height {self._tip}")
        if self._tip_hash is not None and block.previous != self._tip_hash:
            raise ChainError(
                f"block {block.height} ({block.hash}) builds on {block.previous}, "
                f"not on the scanned {self._tip_hash}"
            )
        added: list[tuple[Outpoint, Coin]] = []
        spent: list[tuple[Outpoint, Coin]] = []
        for tx in block.transactions:
            for outpoint in tx.spends:
                coin = self._unspent.pop(outpoint, None)
                if coin is not None:
                    spent.append((outpoint, coin))
                    self._balances[coin.wallet] -= coin.sats
            for output in tx.outputs:
                wallet = self._owners.get(output.script)
                if wallet is not None:
                    coin = Coin(wallet, output.sats)
                    self._unspent[output.outpoint] = coin
                    added.append((output.outpoint, coin))
                    self._balances[wallet] += output.sats
        self._blocks.append(
            Connected(block.height, block.hash, block.time, tuple(added), tuple(spent))
        )
        self._tip, self._tip_hash = block.height, block.hash

    def disconnect(self) -> Connected:
        """Undo the newest block; `TooDeep` if its undo is no longer kept."""
        if not self._blocks or self._blocks[-1].height != self._tip:
            raise TooDeep(
                f"cannot undo block {self._tip}: undo is kept for {self._blocks.maxlen} blocks"
            )
        block = self._blocks.pop()
        # in reverse: an output made and spent in the same block comes back, then goes
        for outpoint, coin in reversed(block.spent):
            self._unspent[outpoint] = coin
            self._balances[coin.wallet] += coin.sats
        for outpoint, coin in reversed(block.added):
            del self._unspent[outpoint]
            self._balances[coin.wallet] -= coin.sats
        self._tip -= 1
        self._tip_hash = self._blocks[-1].hash if self._blocks else None
        return block

    def balances(self) -> Mapping[Wallet, int]:
        """Every watched wallet's unspent satoshis (0 for one with nothing)."""
        return dict(self._balances)

    def unspent(self) -> Mapping[Outpoint, Coin]:
        return dict(self._unspent)
