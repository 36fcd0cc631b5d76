"""Verbose blocks (``getblock <hash> 2``) as plain values, from Bitcoin Core or btcd.

The two nodes shape the answer differently: Core lists the transactions under
``tx``, btcd under ``rawtx``; Core names an output's address ``address``, older
Core and btcd ``addresses``. Outputs are matched by their scriptPubKey, which
both give as ``hex``, so the address fields are only a fallback. Amounts are
JSON numbers in BTC: read with ``parse_float=Decimal`` they become exact
satoshis here, and a value that is not a whole number of satoshis is an error,
never rounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from embit import script  # type: ignore[import-untyped]  # embit ships no types

SATS_PER_BTC = 100_000_000


class BlockError(ValueError):
    """A verbose block the watcher cannot read (a field missing or malformed)."""


class Outpoint(NamedTuple):
    """An output's place: the transaction that made it and its index there."""

    txid: str
    vout: int


class Output(NamedTuple):
    """A new output: where it is, the script it pays, its value in satoshis."""

    outpoint: Outpoint
    script: str  # scriptPubKey, lower-case hex
    sats: int


@dataclass(frozen=True, slots=True)
class Transaction:
    """What a transaction does to the output set: the outpoints it spends, those it makes."""

    txid: str
    spends: tuple[Outpoint, ...]
    outputs: tuple[Output, ...]


@dataclass(frozen=True, slots=True)
class Block:
    """A block as the watcher needs it; transactions in block order (a later one may
    spend an earlier one's output)."""

    height: int
    hash: str
    previous: str | None  # the parent's hash; None for the genesis block
    time: datetime  # the block's timestamp, UTC
    transactions: tuple[Transaction, ...]


def sats(value: Any) -> int:
    """A BTC amount (a JSON number read as int or Decimal) in satoshis, exactly."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise BlockError(f"amount {value!r} is not a number")
    amount = Decimal(value) * SATS_PER_BTC
    if not amount.is_finite() or amount != amount.to_integral_value() or amount < 0:
        raise BlockError(f"amount {value} BTC is not a whole number of satoshis")
    return int(amount)


def btc(amount: int) -> Decimal:
    """Satoshis as an exact BTC amount."""
    return Decimal(amount).scaleb(-8)


def parse_block(raw: Mapping[str, Any]) -> Block:
    """A verbose block (verbosity 2) of either node as a `Block`."""
    try:
        height = int(raw["height"])
        block_hash = str(raw["hash"])
        time = datetime.fromtimestamp(int(raw["time"]), UTC)
        previous = raw.get("previousblockhash")
        listed = raw.get("tx") if raw.get("tx") is not None else raw.get("rawtx")
    except (KeyError, TypeError, ValueError) as error:
        raise BlockError(f"block without a readable {error}") from None
    if not isinstance(listed, list) or (listed and not isinstance(listed[0], Mapping)):
        raise BlockError(
            f"block {block_hash} lists no verbose transactions (under `tx` or `rawtx`): "
            "was it asked with verbosity 2?"
        )
    return Block(
        height=height,
        hash=block_hash,
        previous=str(previous) if previous is not None else None,
        time=time,
        transactions=tuple(_transaction(tx, block_hash) for tx in listed),
    )


def _transaction(raw: Mapping[str, Any], block_hash: str) -> Transaction:
    try:
        txid = str(raw["txid"])
        spends = tuple(
            Outpoint(str(entry["txid"]), int(entry["vout"]))
            for entry in raw.get("vin", ())
            if "coinbase" not in entry
        )
        outputs = tuple(
            Output(Outpoint(txid, int(entry["n"])), _script_hex(entry), sats(entry["value"]))
            for entry in raw["vout"]
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, BlockError):
            raise BlockError(f"block {block_hash}: {error}") from None
        raise BlockError(f"block {block_hash}: a transaction without a readable {error}") from None
    return Transaction(txid, spends, outputs)


def _script_hex(output: Mapping[str, Any]) -> str:
    """The output's scriptPubKey hex; from its single address if a node left the hex out."""
    pubkey = output["scriptPubKey"]
    if "hex" in pubkey:
        return str(pubkey["hex"]).lower()
    address = pubkey.get("address")
    addresses: Sequence[str] = pubkey.get("addresses") or ()
    if address is None and len(addresses) == 1:
        address = addresses[0]
    if address is None:
        return ""  # no hex and no single address: a script no registered address pays
    return str(script.address_to_scriptpubkey(address).data.hex())
