"""The wallet registry: which addresses make up which wallet of which exchange (CONTRACT 9).

A registry is YAML (``chains`` and ``wallets``), or a CSV of addresses, one a
row, with the ``chains`` part in a YAML file of its own. Either way it is read
into the same values: `Chain`, `Wallet`, `Registry`. `check_registry` returns
every problem with its place (``file:line: field path: message``), warnings
included; `load_registry` returns the registry or raises `RegistryError` with
the errors. Node credentials never appear in a registry: `Chain.credentials`
reads them from the environment or a cookie file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from connectors.wallets.addresses import bitcoin_address, evm_address
from connectors.wallets.files import Entry, Place, Problem, Value, read_chains, read_csv, read_yaml

Kind = Literal["evm", "bitcoin"]
Custody = Literal["hot", "cold"]
Holder = Literal["customer", "guarantee", "house"]

KINDS: tuple[Kind, ...] = ("evm", "bitcoin")
CUSTODIES: tuple[Custody, ...] = ("hot", "cold")
HOLDERS: tuple[Holder, ...] = ("customer", "guarantee", "house")
BITCOIN_NETWORKS = ("main", "test", "signet", "regtest")
EXCHANGE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # CONTRACT section 3
CHAIN_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # becomes part of an environment name
MAX_DECIMALS = 36

# Why these defaults: Ethereum finalises in about two epochs (~13 min) but a
# reorg deeper than a few blocks has not happened since the merge; 12 blocks
# (~2.4 min) is the usual exchange deposit depth. Bitcoin's 6 blocks (~1 h) is
# the classic depth against a reorg. Polling: a few times per block. Heartbeat:
# 10 min of block time, well inside the packs' 1 h maximum wallet-balance age.
# bitcoin 3, not the classic 6: a balance six blocks (about an hour) behind the exchange's
# trades is at the built-in packs' 1 h max_wallet_age (docs/connectors/bitcoin.md)
DEFAULT_CONFIRMATIONS: Mapping[Kind, int] = {"evm": 12, "bitcoin": 3}
DEFAULT_POLL_SECONDS: Mapping[Kind, float] = {"evm": 4.0, "bitcoin": 30.0}
DEFAULT_HEARTBEAT_SECONDS = 600.0

# Keys that would hold node credentials; a registry is shared widely, secrets are not.
_CREDENTIAL_KEY = re.compile(r"user|password|passwd|secret|auth|api_?key|credential", re.I)

_CHAIN_FIELDS = {
    "kind",
    "rpc",
    "confirmations",
    "scan_from",
    "network",
    "cookie_file",
    "poll_seconds",
    "heartbeat_seconds",
}
_WALLET_FIELDS = {
    "exchange",
    "wallet",
    "chain",
    "asset",
    "custody",
    "holder",
    "addresses",
    "token",
    "decimals",
    "first_height",
}


@dataclass(frozen=True, slots=True)
class Chain:
    """One chain a node is asked about: where the node is and how deep a block must be."""

    key: str  # the chain's key in the file: "eth", "btc"
    kind: Kind
    rpc: str  # node URL from the file; never credentials
    confirmations: int
    scan_from: int | None = None  # bitcoin: first height scanned (required for bitcoin)
    network: str | None = None  # bitcoin: "main" (default) | "test" | "signet" | "regtest"
    cookie_file: str | None = None  # e.g. Bitcoin Core's .cookie ("user:password")
    poll_seconds: float = 4.0  # how often to ask the node for its tip
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS  # re-publish after this much block time

    def credentials(self, environ: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
        """RESERVE_MONITOR_<KEY>_RPC_USER/_PASSWORD, else the cookie file, else None."""
        prefix = f"RESERVE_MONITOR_{self.key.upper().replace('-', '_')}_RPC_"
        user, password = environ.get(prefix + "USER"), environ.get(prefix + "PASSWORD")
        if user is not None or password is not None:
            if user is None or password is None:
                missing = prefix + ("USER" if user is None else "PASSWORD")
                raise RegistryError([f"chain {self.key}: {missing} is not set (set both or none)"])
            return user, password
        if self.cookie_file is None:
            return None
        try:
            text = Path(self.cookie_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise RegistryError(
                [f"chain {self.key}: cannot read cookie_file {self.cookie_file}: {error.strerror}"]
            ) from None
        user, colon, password = text.partition(":")
        if not colon:
            raise RegistryError(
                [f"chain {self.key}: cookie_file {self.cookie_file} is not `user:password`"]
            )
        return user, password


@dataclass(frozen=True, slots=True)
class Wallet:
    """One wallet of an exchange in one asset: its balance is the sum over its addresses."""

    exchange: str
    wallet: str
    chain: str
    asset: str
    custody: Custody
    holder: Holder
    addresses: tuple[str, ...]
    token: str | None = None  # ERC-20 contract (EVM), checksummed
    decimals: int | None = None  # the token's decimals
    first_height: int | None = None  # bitcoin: first block with coins to these addresses


@dataclass(frozen=True, slots=True)
class Registry:
    """The chains and the wallets on them."""

    chains: Mapping[str, Chain]
    wallets: tuple[Wallet, ...]

    def on_chain(self, key: str) -> tuple[Wallet, ...]:
        """The wallets on the chain ``key``, in file order."""
        return tuple(wallet for wallet in self.wallets if wallet.chain == key)

    def chains_of(self, kind: Kind) -> tuple[Chain, ...]:
        """The chains of one kind, in file order."""
        return tuple(chain for chain in self.chains.values() if chain.kind == kind)


class RegistryError(ValueError):
    """A registry that cannot be used; ``problems`` names each error's place."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class Checked:
    """What checking a registry gives: the registry if it has no error, and every problem."""

    registry: Registry | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if not problem.warning)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.warning)


def load_registry(path: Path, chains: Path | None = None) -> Registry:
    """The registry in ``path`` (YAML, or CSV with ``chains``); raises `RegistryError`."""
    checked = check_registry(path, chains)
    if checked.registry is None:
        raise RegistryError([str(problem) for problem in checked.errors])
    return checked.registry


def check_registry(path: Path, chains: Path | None = None) -> Checked:
    """Read and check a registry; never raises for bad content, only reports it."""
    problems: list[Problem] = []
    chain_entries: list[tuple[str, Entry]] | None = None
    wallet_entries: list[Entry] = []
    is_csv = path.suffix.lower() == ".csv"
    if chains is not None:
        chain_entries = read_chains(chains, problems)
    if is_csv:
        if chains is None:
            problems.append(
                Problem(Place(str(path), 1, "chains"), "a CSV registry needs --chains FILE (YAML)")
            )
        wallet_entries = read_csv(path, problems)
    else:
        own_chains, wallet_entries = read_yaml(path, problems, chains_given=chains is not None)
        if chain_entries is None:
            chain_entries = own_chains
    built_chains = _build_chains(chain_entries or [], problems)
    wallets = _build_wallets(wallet_entries, built_chains, problems)
    if any(not problem.warning for problem in problems):
        return Checked(None, tuple(problems))
    return Checked(
        Registry(dict(built_chains.valid), tuple(wallets)),
        tuple(problems),
    )


# --- building and checking ------------------------------------------------------------------


def _credential_problem(key: str, place: Place) -> Problem:
    env = f"RESERVE_MONITOR_{key.upper().replace('-', '_')}_RPC"
    return Problem(
        place,
        "node credentials never go in the registry; set "
        f"{env}_USER and {env}_PASSWORD in the environment, or name a cookie_file",
    )


def _integer(value: Value, problems: list[Problem], *, low: int, high: int | None = None) -> bool:
    ok = isinstance(value.value, int) and not isinstance(value.value, bool)
    if ok and value.value >= low and (high is None or value.value <= high):
        return True
    bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
    problems.append(Problem(value.place, f"must be a whole number {bounds}, not {value.value!r}"))
    return False


def _text(value: Value, problems: list[Problem]) -> bool:
    if isinstance(value.value, str) and value.value.strip():
        return True
    problems.append(Problem(value.place, f"must be text, not {value.value!r}"))
    return False


def _build_chains(entries: Sequence[tuple[str, Entry]], problems: list[Problem]) -> _Chains:
    # no chains at all is reported where they should be; naming it at every wallet is noise
    named = {key for key, _ in entries} if entries else None
    chains = _Chains(valid={}, checked={}, named=named)
    for key, entry in entries:
        before = len(problems)
        chain = _build_chain(key, entry, problems)
        if chain is not None:
            chains.checked[key] = chain
            if len(problems) == before:
                chains.valid[key] = chain
    return chains


@dataclass(frozen=True, slots=True)
class _Chains:
    """The chains read: valid ones, and every one whose kind is known (to check its wallets)."""

    valid: dict[str, Chain]
    checked: dict[str, Chain]  # with defaults in place of bad values; never leaves the module
    named: set[str] | None  # None: no chains could be read, so references are not checked


def _build_chain(key: str, entry: Entry, problems: list[Problem]) -> Chain | None:
    """The chain, its bad values replaced by defaults; None if its kind is unknown."""
    fields = entry.fields
    if not CHAIN_KEY.match(key):
        problems.append(Problem(entry.place, f"chain key {key!r} must match {CHAIN_KEY.pattern}"))
    for name, value in fields.items():
        if _CREDENTIAL_KEY.search(name):
            problems.append(_credential_problem(key, value.place))
        elif name not in _CHAIN_FIELDS:
            problems.append(
                Problem(value.place, f"unknown field (known: {', '.join(sorted(_CHAIN_FIELDS))})")
            )
    kind = fields.get("kind")
    if kind is None:
        problems.append(Problem(entry.place.at(f"{entry.place.path}.kind"), "required"))
        return None
    if kind.value not in KINDS:
        problems.append(Problem(kind.place, f"must be one of {', '.join(KINDS)}"))
        return None
    chain_kind = cast(Kind, kind.value)
    rpc = fields.get("rpc")
    rpc_url = ""
    if rpc is None:
        problems.append(Problem(entry.place.at(f"{entry.place.path}.rpc"), "required"))
    elif _text(rpc, problems):
        url = urlsplit(rpc.value)
        if url.scheme not in ("http", "https") or not url.hostname:
            problems.append(Problem(rpc.place, "must be an http:// or https:// URL of the node"))
        elif url.username is not None or url.password is not None:
            problems.append(_credential_problem(key, rpc.place))
        else:
            rpc_url = rpc.value
    confirmations = fields.get("confirmations")
    depth = DEFAULT_CONFIRMATIONS[chain_kind]
    if confirmations is not None and _integer(confirmations, problems, low=0):
        depth = confirmations.value
    scan_from, network = fields.get("scan_from"), fields.get("network")
    first_scanned: int | None = None
    network_name: str | None = None
    if chain_kind == "bitcoin":
        network_name = "main"
        if scan_from is None:
            problems.append(
                Problem(
                    entry.place.at(f"{entry.place.path}.scan_from"),
                    "required for bitcoin: the first height scanned for the wallets' coins",
                )
            )
        elif _integer(scan_from, problems, low=0):
            first_scanned = scan_from.value
        if network is not None:
            if network.value in BITCOIN_NETWORKS:
                network_name = network.value
            else:
                network_name = None  # unknown: its wallets' networks cannot be checked
                problems.append(
                    Problem(network.place, f"must be one of {', '.join(BITCOIN_NETWORKS)}")
                )
    else:
        for bitcoin_only in (scan_from, network):
            if bitcoin_only is not None:
                problems.append(Problem(bitcoin_only.place, "only for bitcoin chains"))
    cookie = fields.get("cookie_file")
    cookie_file = None
    if cookie is not None and _text(cookie, problems):
        # relative to the file that names it, so the registry works from any directory
        cookie_file = str(Path(entry.place.file).parent / Path(cookie.value).expanduser())
    seconds = {"poll_seconds": DEFAULT_POLL_SECONDS[chain_kind]}
    seconds["heartbeat_seconds"] = DEFAULT_HEARTBEAT_SECONDS
    for name in seconds:
        given = fields.get(name)
        if given is None:
            continue
        if (
            isinstance(given.value, bool)
            or not isinstance(given.value, int | float)
            or not given.value > 0
        ):
            problems.append(Problem(given.place, "must be a positive number of seconds"))
        else:
            seconds[name] = float(given.value)
    return Chain(
        key=key,
        kind=chain_kind,
        rpc=rpc_url,
        confirmations=depth,
        scan_from=first_scanned,
        network=network_name,
        cookie_file=cookie_file,
        poll_seconds=seconds["poll_seconds"],
        heartbeat_seconds=seconds["heartbeat_seconds"],
    )


def _build_wallets(
    entries: Sequence[Entry],
    chains: _Chains,
    problems: list[Problem],
) -> list[Wallet]:
    built = [_build_wallet(entry, chains, problems) for entry in entries]
    _find_repeats(entries, problems)
    return [wallet for wallet in built if wallet is not None]


def _find_repeats(entries: Sequence[Entry], problems: list[Problem]) -> None:
    """A wallet listed twice, or an address in two places: its balance would count twice.

    Checked on what the file says, so a repeat is found even in entries with other errors.
    An address may hold the native asset and tokens, so addresses repeat per (chain, token).
    """
    identities: dict[tuple[str, str, str], Place] = {}
    listed: dict[tuple[str, str], dict[str, Place]] = {}
    for entry in entries:
        text = {
            name: str(value.value).strip()
            for name, value in entry.fields.items()
            if name != "addresses" and value.value is not None
        }
        identity = (text.get("exchange", ""), text.get("wallet", ""), text.get("asset", ""))
        first = identities.setdefault(identity, entry.place)
        if first is not entry.place:
            problems.append(
                Problem(
                    entry.place,
                    f"wallet {identity[0]}/{identity[1]} in {identity[2]} is listed twice "
                    f"(also at {first.file}:{first.line})",
                )
            )
        addresses = entry.fields.get("addresses")
        if addresses is None or not isinstance(addresses.value, list):
            continue
        seen = listed.setdefault((text.get("chain", ""), text.get("token", "").lower()), {})
        for item in addresses.value:
            if not isinstance(item.value, str):
                continue
            normalised = item.value.strip().lower()  # EVM and bech32 ignore case
            if normalised in seen:
                problems.append(
                    Problem(
                        item.place,
                        f"{item.value} is also listed at {seen[normalised]} "
                        "(an address counted twice doubles its balance)",
                    )
                )
            else:
                seen[normalised] = item.place


def _build_wallet(entry: Entry, chains: _Chains, problems: list[Problem]) -> Wallet | None:
    before = len(problems)
    fields = entry.fields
    path = entry.place.path

    def required(name: str) -> Value | None:
        value = fields.get(name)
        if value is None:
            problems.append(Problem(entry.place.at(f"{path}.{name}"), "required"))
        return value

    for name, value in fields.items():
        if _CREDENTIAL_KEY.search(name):
            problems.append(
                Problem(value.place, "credentials never go in the registry (and not in wallets)")
            )
        elif name not in _WALLET_FIELDS:
            problems.append(
                Problem(value.place, f"unknown field (known: {', '.join(sorted(_WALLET_FIELDS))})")
            )
    exchange = required("exchange")
    if exchange is not None and _text(exchange, problems) and not EXCHANGE_ID.match(exchange.value):
        problems.append(Problem(exchange.place, f"exchange id must match {EXCHANGE_ID.pattern}"))
    for name in ("wallet", "asset"):
        text = required(name)
        if text is not None:
            _text(text, problems)
    custody, holder = required("custody"), required("holder")
    if custody is not None and custody.value not in CUSTODIES:
        problems.append(Problem(custody.place, f"must be one of {', '.join(CUSTODIES)}"))
    if holder is not None and holder.value not in HOLDERS:
        problems.append(Problem(holder.place, f"must be one of {', '.join(HOLDERS)}"))
    chain_value = required("chain")
    chain: Chain | None = None
    if chain_value is not None:
        chain_key = chain_value.value if isinstance(chain_value.value, str) else None
        if chains.named is not None and chain_key not in chains.named:
            known = ", ".join(sorted(chains.named)) or "none"
            problems.append(
                Problem(chain_value.place, f"no chain {chain_value.value!r} (chains: {known})")
            )
        elif chain_key is not None:
            chain = chains.checked.get(chain_key)  # None: its kind is unknown, reported there
    addresses_value = required("addresses")
    raw_addresses: list[Value] = []
    if addresses_value is not None:
        raw = addresses_value.value
        if not isinstance(raw, list) or not raw:
            problems.append(Problem(addresses_value.place, "must be a non-empty list of addresses"))
        else:
            raw_addresses = list(raw)
    token, decimals = fields.get("token"), fields.get("decimals")
    first_height = fields.get("first_height")
    addresses: list[str] = []
    token_address: str | None = None
    if chain is not None and chain.kind == "evm":
        for item in raw_addresses:
            addresses.append(evm_address(item, problems))
        if token is not None:
            token_address = evm_address(token, problems)
            if decimals is None:
                problems.append(
                    Problem(entry.place.at(f"{path}.decimals"), "required with a token")
                )
        if decimals is not None:
            if token is None:
                problems.append(
                    Problem(decimals.place, "only with a token (the native asset's are fixed)")
                )
            else:
                _integer(decimals, problems, low=0, high=MAX_DECIMALS)
        if first_height is not None:
            problems.append(Problem(first_height.place, "only for bitcoin wallets"))
    elif chain is not None:
        network = chain.network  # None when the chain's own network is wrong
        for item in raw_addresses:
            addresses.append(bitcoin_address(item, network, problems))
        for evm_only in (token, decimals):
            if evm_only is not None:
                problems.append(Problem(evm_only.place, "not for bitcoin wallets"))
        scan_from = chain.scan_from or 0  # 0: from genesis, nothing is missed
        if first_height is None and scan_from > 0:
            problems.append(
                Problem(
                    entry.place,
                    f"no first_height: coins these addresses received before the chain's "
                    f"scan_from ({scan_from}) are invisible; record the first block with "
                    "coins to them",
                    warning=True,
                )
            )
        elif (
            first_height is not None
            and _integer(first_height, problems, low=0)
            and first_height.value < scan_from
        ):
            problems.append(
                Problem(
                    first_height.place,
                    f"first_height {first_height.value} is before the chain's scan_from "
                    f"({scan_from}): coins received before {scan_from} are invisible",
                    warning=True,
                )
            )
    if any(not problem.warning for problem in problems[before:]) or chain is None:
        return None
    assert exchange and custody and holder and chain_value  # checked above
    return Wallet(
        exchange=exchange.value,
        wallet=fields["wallet"].value,
        chain=chain.key,
        asset=fields["asset"].value,
        custody=custody.value,
        holder=holder.value,
        addresses=tuple(addresses),
        token=token_address,
        decimals=decimals.value if decimals is not None else None,
        first_height=first_height.value if first_height is not None else None,
    )
