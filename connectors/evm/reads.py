"""Which balances a chain's wallets need, and how the answers add up to wallet balances.

Pure: the node module asks for the reads planned here and hands the raw integers
back. A wallet holds one asset: the chain's native coin (no ``token``; 18
decimals on every EVM chain) or one ERC-20 (its ``token`` and ``decimals``).
Its balance is the sum over its addresses, added as integers in the asset's
smallest unit and scaled once, so it is exact at any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

from connectors.wallets.registry import Wallet

NATIVE_DECIMALS = 18  # wei per ether, and the same for every EVM chain's native coin


@dataclass(frozen=True, slots=True)
class BalanceRead:
    """One balance to read: ``address``'s native coin (``token`` None) or its ERC-20 ``token``."""

    wallet: Wallet
    address: ChecksumAddress
    token: ChecksumAddress | None


def plan_reads(wallets: Sequence[Wallet]) -> tuple[BalanceRead, ...]:
    """Every (wallet, address) read, in registry order; addresses checksummed."""
    return tuple(
        BalanceRead(
            wallet,
            to_checksum_address(address),
            to_checksum_address(wallet.token) if wallet.token else None,
        )
        for wallet in wallets
        for address in wallet.addresses
    )


def in_units(raw: int, decimals: int) -> Decimal:
    """``raw`` smallest units as a Decimal of whole units, exactly (no context rounding)."""
    if raw < 0:
        raise ValueError(f"a balance cannot be negative: {raw}")
    return Decimal(f"{raw}e-{decimals}")  # from text: exact, whatever the context precision


def wallet_balances(reads: Sequence[BalanceRead], raw: Sequence[int]) -> dict[Wallet, Decimal]:
    """Each wallet's balance: its reads' ``raw`` answers summed, scaled by its asset's decimals."""
    if len(reads) != len(raw):
        raise ValueError(f"{len(raw)} answers for {len(reads)} reads")
    totals: dict[Wallet, int] = {}
    for read, value in zip(reads, raw, strict=True):
        totals[read.wallet] = totals.get(read.wallet, 0) + value
    return {wallet: in_units(total, asset_decimals(wallet)) for wallet, total in totals.items()}


def asset_decimals(wallet: Wallet) -> int:
    """The decimals of the wallet's asset: 18 for the native coin, the registry's for a token."""
    if wallet.token is None:
        return NATIVE_DECIMALS
    if wallet.decimals is None:
        raise ValueError(f"wallet {wallet.exchange}/{wallet.wallet}: a token needs its decimals")
    return wallet.decimals
