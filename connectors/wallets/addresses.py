"""Addresses as the registry needs them: EIP-55 for EVM, networks for Bitcoin.

EVM: an address with a bad checksum is an error (a mistyped character); an
all-lowercase one is accepted with a warning giving its checksummed form.
Bitcoin: decoded with embit (bech32/bech32m and base58check) and matched to
the chain's network.
"""

from __future__ import annotations

from embit import base58, bech32  # type: ignore[import-untyped]  # embit ships no types
from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address

from connectors.wallets.files import Problem, Value


def evm_address(value: Value, problems: list[Problem]) -> str:
    """The checksummed address; an error if invalid or mis-checksummed, a warning if lower."""
    address = value.value
    if not isinstance(address, str) or not is_hex_address(address):
        problems.append(Problem(value.place, f"{address!r} is not an EVM address (0x + 40 hex)"))
        return str(address)
    body = address[2:]
    if body == body.lower() or body == body.upper():
        checksummed = to_checksum_address(address)
        if checksummed != address:
            problems.append(
                Problem(
                    value.place,
                    f"{address} has no EIP-55 checksum; write it as {checksummed}",
                    warning=True,
                )
            )
        return checksummed
    if not is_checksum_address(address):
        problems.append(
            Problem(
                value.place,
                f"{address} fails its EIP-55 checksum (a mistyped character?)",
            )
        )
    return address


_BECH32_NETWORKS = {"bc": ("main",), "tb": ("test", "signet"), "bcrt": ("regtest",)}
_BASE58_NETWORKS = {
    0x00: ("main",),
    0x05: ("main",),
    0x6F: ("test", "signet", "regtest"),
    0xC4: ("test", "signet", "regtest"),
}


def bitcoin_address_networks(address: str) -> tuple[str, ...]:
    """The networks an address belongs to; raises ValueError if it is no valid address."""
    lowered = address.lower()
    hrp = lowered.rpartition("1")[0]
    if hrp in _BECH32_NETWORKS:
        if address not in (lowered, address.upper()):
            raise ValueError("bech32 addresses are all lower or all upper case")
        version, program = bech32.decode(hrp, lowered)
        if version is None or program is None:
            raise ValueError("bad bech32 address (checksum, version or length)")
        return _BECH32_NETWORKS[hrp]
    try:
        data = base58.decode_check(address)
    except Exception as error:  # embit raises bare ValueError/EmbitError variants
        raise ValueError(f"neither bech32 nor base58check ({error})") from None
    if len(data) != 21 or data[0] not in _BASE58_NETWORKS:
        raise ValueError("not a P2PKH or P2SH address")
    return _BASE58_NETWORKS[data[0]]


_EXPECTED_PREFIXES = {
    "main": "bc1…, 1… or 3…",
    "test": "tb1…, m…, n… or 2…",
    "signet": "tb1…, m…, n… or 2…",
    "regtest": "bcrt1…, m…, n… or 2…",
}


def bitcoin_address(value: Value, network: str | None, problems: list[Problem]) -> str:
    """The address (bech32 in lower case); an error if invalid or of another network."""
    address = value.value
    if not isinstance(address, str):
        problems.append(Problem(value.place, f"{address!r} is not a Bitcoin address"))
        return str(address)
    try:
        networks = bitcoin_address_networks(address)
    except ValueError as error:
        problems.append(Problem(value.place, f"{address} is not a Bitcoin address: {error}"))
        return address
    if network is not None and network not in networks:
        problems.append(
            Problem(
                value.place,
                f"{address} is a {'/'.join(networks)} address; this chain is {network} "
                f"({_EXPECTED_PREFIXES[network]})",
            )
        )
    # bech32 is case-insensitive; keep one spelling so duplicates and scripts compare
    return address.lower() if address.lower().startswith(("bc1", "tb1", "bcrt1")) else address
