"""Registered addresses as the scriptPubKeys the watcher matches outputs by.

Outputs are matched by script, not by the address a node prints: the two nodes
print addresses under different fields, and a script is what the chain holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from embit import script  # type: ignore[import-untyped]  # embit ships no types
from embit.networks import NETWORKS  # type: ignore[import-untyped]

from connectors.wallets.registry import Wallet

# the registry's network names → embit's
_EMBIT_NETWORKS = {"main": "main", "test": "test", "signet": "signet", "regtest": "regtest"}


def script_of(address: str, network: str) -> str:
    """The scriptPubKey (hex) an output paying ``address`` on ``network`` carries."""
    if network not in _EMBIT_NETWORKS:
        raise ValueError(f"unknown bitcoin network {network!r}")
    try:
        pubkey = script.address_to_scriptpubkey(address)
        # round trip: embit decodes the prefix of any network, so insist on this one's
        again = pubkey.address(NETWORKS[_EMBIT_NETWORKS[network]])
    except Exception as error:  # embit raises bare ValueError/EmbitError variants
        raise ValueError(f"{address} is not a Bitcoin address ({error})") from None
    if again.lower() != address.lower():
        raise ValueError(f"{address} is not a {network} address")
    return str(pubkey.data.hex())


def watched_scripts(wallets: Sequence[Wallet], network: str) -> Mapping[str, Wallet]:
    """Each registered address's script → the wallet it belongs to."""
    owners: dict[str, Wallet] = {}
    for wallet in wallets:
        for address in wallet.addresses:
            pubkey = script_of(address, network)
            other = owners.setdefault(pubkey, wallet)
            if other is not wallet:
                raise ValueError(
                    f"{address} is in both {other.exchange}/{other.wallet} and "
                    f"{wallet.exchange}/{wallet.wallet}"
                )
    return owners
