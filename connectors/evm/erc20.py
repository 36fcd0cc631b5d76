"""The two ERC-20 calls the watcher makes, as raw ``eth_call`` data, and their answers.

Encoded by hand (the selectors are the standard's, fixed) so a read needs no
contract object, and a batch can hold any number of them at a chosen block.
"""

from __future__ import annotations

from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from web3.types import TxParams

# keccak256("balanceOf(address)")[:4] and keccak256("decimals()")[:4]
BALANCE_OF = "0x70a08231"
DECIMALS = "0x313ce567"


class TokenError(ValueError):
    """A token contract answered something that is not an ERC-20 answer."""


def balance_of_call(token: str, holder: str) -> TxParams:
    """The ``eth_call`` transaction that asks ``token`` for ``holder``'s balance."""
    word = to_checksum_address(holder)[2:].lower().rjust(64, "0")  # the address, ABI-encoded
    return {"to": to_checksum_address(token), "data": HexStr(BALANCE_OF + word)}


def decimals_call(token: str) -> TxParams:
    """The ``eth_call`` transaction that asks ``token`` for its ``decimals``."""
    return {"to": to_checksum_address(token), "data": HexStr(DECIMALS)}


def decode_uint256(token: str, answer: bytes) -> int:
    """The ``uint256`` a call returned; an empty answer means no contract at ``token``."""
    if len(answer) != 32:
        raise TokenError(
            f"{token} answered {len(answer)} bytes to an ERC-20 call, not 32: "
            + ("no contract at that address on this chain" if not answer else "not an ERC-20")
        )
    return int.from_bytes(answer, "big")
