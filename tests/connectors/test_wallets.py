"""The wallet registry and ``wallets check``: every error with its place, YAML and CSV alike.

Pure: files in a temporary directory, addresses made by eth_utils and embit, no node.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from embit import ec, script  # type: ignore[import-untyped]  # embit ships no types
from embit.networks import NETWORKS  # type: ignore[import-untyped]

from connectors.wallets.addresses import bitcoin_address_networks
from connectors.wallets.check import check
from connectors.wallets.registry import (
    Chain,
    Registry,
    RegistryError,
    Wallet,
    check_registry,
    load_registry,
)

# The contract's example (CONTRACT section 9), verbatim.
CONTRACT_EXAMPLE = """\
chains:
  eth: {kind: evm, rpc: "http://127.0.0.1:8545", confirmations: 12}
  btc: {kind: bitcoin, rpc: "http://127.0.0.1:8332", confirmations: 6, scan_from: 840000}
wallets:
  - {exchange: dmm, wallet: eth-cold-1, chain: eth, asset: ETH, custody: cold, holder: customer,
     addresses: ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]}
  - {exchange: dmm, wallet: usdt-hot-1, chain: eth, asset: USDT, custody: hot, holder: customer,
     token: "0xdAC17F958D2ee523a2206206994597C13D831ec7", decimals: 6,
     addresses: ["0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"]}
"""
ETH_A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ETH_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ETH_C = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
ETH_A_BAD = ETH_A[:-1] + "c"  # one letter's case flipped: the checksum fails


def btc_addresses(network: str, seed: int) -> tuple[str, str, str]:
    """P2WPKH, P2PKH and P2SH addresses of one key on ``network``, made by embit."""
    key = ec.PrivateKey(bytes([seed]) * 32).get_public_key()
    net = NETWORKS[network]
    return (
        script.p2wpkh(key).address(net),
        script.p2pkh(key).address(net),
        script.p2sh(script.p2wpkh(key)).address(net),
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def messages(path: Path, chains: Path | None = None) -> list[str]:
    return [str(problem) for problem in check_registry(path, chains).problems]


def test_the_contract_example_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, "wallets.yaml", CONTRACT_EXAMPLE)
    registry = load_registry(path)
    assert registry.chains["eth"] == Chain(
        key="eth", kind="evm", rpc="http://127.0.0.1:8545", confirmations=12, poll_seconds=4.0
    )
    btc = registry.chains["btc"]
    assert (btc.kind, btc.confirmations, btc.scan_from, btc.network) == (
        "bitcoin",
        6,
        840000,
        "main",
    )
    assert registry.wallets == (
        Wallet("dmm", "eth-cold-1", "eth", "ETH", "cold", "customer", (ETH_A,)),
        Wallet("dmm", "usdt-hot-1", "eth", "USDT", "hot", "customer", (ETH_B,), USDT, 6),
    )
    assert registry.on_chain("eth") == registry.wallets
    assert registry.on_chain("btc") == ()
    assert registry.chains_of("bitcoin") == (btc,)
    out = io.StringIO()
    assert check(path, None, out) == 0
    assert out.getvalue() == (
        f"{path}: valid; 2 chains (1 bitcoin, 1 evm), 2 wallets of 1 exchange, 2 addresses; "
        "0 errors, 0 warnings\n"
    )


BAD = """\
chains:
  eth: {kind: evm, rpc: "http://127.0.0.1:8545", confirmations: -1, network: main}
  btc: {kind: bitcoin, rpc: "http://127.0.0.1:8332", confirmations: 6}
  ltc: {kind: litecoin, rpc: "http://127.0.0.1:9332"}
  sol: {kind: evm, rpc: "ftp://node", poll_seconds: 0, colour: blue}
wallets:
  - {exchange: DMM, wallet: w1, chain: eth, asset: ETH, custody: warm, holder: users,
     addresses: ["{ETH_A_BAD}", "0x1234"]}
  - {exchange: dmm, wallet: w2, chain: nowhere, asset: ETH, custody: hot, holder: house,
     addresses: ["{ETH_A}"]}
  - {exchange: dmm, wallet: w3, chain: eth, asset: USDT, custody: hot, holder: house,
     token: "0xdAC17F958D2ee523a2206206994597C13D831ec8", addresses: ["{ETH_B}"]}
  - {exchange: dmm, wallet: w4, chain: eth, asset: DAI, custody: hot, holder: house,
     token: "{USDT}", decimals: 37, addresses: ["{ETH_C}"]}
  - {exchange: dmm, wallet: w5, chain: eth, asset: ETH, custody: hot, holder: house,
     decimals: 18, first_height: 5, addresses: []}
  - {wallet: w6, chain: eth, asset: ETH, custody: cold, holder: customer,
     addresses: ["{ETH_B}"]}
  - {exchange: dmm, wallet: w7, chain: eth, asset: ETH, custody: cold, holder: customer,
     addresses: ["{ETH_B_LOWER}"]}
"""


def test_every_kind_of_error_is_reported_with_its_line_and_field(tmp_path: Path) -> None:
    text = (
        BAD.replace("{ETH_A_BAD}", ETH_A_BAD)
        .replace("{ETH_A}", ETH_A)
        .replace("{ETH_B}", ETH_B)
        .replace("{ETH_B_LOWER}", ETH_B.lower())
        .replace("{ETH_C}", ETH_C)
        .replace("{USDT}", USDT)
    )
    path = write(tmp_path, "wallets.yaml", text)
    checked = check_registry(path)
    assert checked.registry is None
    f = str(path)
    expected = [
        f"{f}:2: chains.eth.confirmations: must be a whole number 0 or more, not -1",
        f"{f}:2: chains.eth.network: only for bitcoin chains",
        f"{f}:3: chains.btc.scan_from: required for bitcoin: the first height scanned",
        f"{f}:4: chains.ltc.kind: must be one of evm, bitcoin",
        f"{f}:5: chains.sol.colour: unknown field",
        f"{f}:5: chains.sol.rpc: must be an http:// or https:// URL of the node",
        f"{f}:5: chains.sol.poll_seconds: must be a positive number of seconds",
        f"{f}:7: wallets[0].exchange: exchange id must match ^[a-z0-9][a-z0-9._-]{{0,63}}$",
        f"{f}:7: wallets[0].custody: must be one of hot, cold",
        f"{f}:7: wallets[0].holder: must be one of customer, guarantee, house",
        f"{f}:8: wallets[0].addresses[0]: {ETH_A_BAD} fails its EIP-55 checksum",
        f"{f}:8: wallets[0].addresses[1]: '0x1234' is not an EVM address",
        f"{f}:9: wallets[1].chain: no chain 'nowhere' (chains: btc, eth, ltc, sol)",
        f"{f}:12: wallets[2].token: 0xdAC17F958D2ee523a2206206994597C13D831ec8 fails its EIP-55",
        f"{f}:11: wallets[2].decimals: required with a token",
        f"{f}:14: wallets[3].decimals: must be a whole number from 0 to 36, not 37",
        f"{f}:16: wallets[4].decimals: only with a token",
        f"{f}:16: wallets[4].first_height: only for bitcoin wallets",
        f"{f}:16: wallets[4].addresses: must be a non-empty list of addresses",
        f"{f}:17: wallets[5].exchange: required",
        f"{f}:20: wallets[6].addresses[0]: {ETH_B.lower()} is also listed at "
        f"{f}:18: wallets[5].addresses[0]",
    ]
    errors = [str(problem) for problem in checked.errors]
    for message in expected:
        assert any(error.startswith(message) for error in errors), (message, errors)
    # nothing else: each error is reported once, by the check that owns it
    assert len(errors) == len(expected), errors
    # the lowercase address is accepted (its only error is the repeat), with a warning
    assert [str(w) for w in checked.warnings] == [
        f"{f}:20: wallets[6].addresses[0]: warning: {ETH_B.lower()} has no EIP-55 checksum; "
        f"write it as {ETH_B}"
    ]
    with pytest.raises(RegistryError) as raised:
        load_registry(path)
    assert raised.value.problems == errors


def test_an_address_may_hold_the_native_asset_and_a_token(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "wallets.yaml",
        f"""\
        chains:
          eth: {{kind: evm, rpc: "https://node.example", confirmations: 0}}
        wallets:
          - {{exchange: dmm, wallet: hot-1, chain: eth, asset: ETH, custody: hot,
             holder: customer, addresses: ["{ETH_A}"]}}
          - {{exchange: dmm, wallet: hot-1, chain: eth, asset: USDT, custody: hot,
             holder: customer, token: "{USDT}", decimals: 6, addresses: ["{ETH_A}"]}}
          - {{exchange: dmm, wallet: hot-1, chain: eth, asset: USDT, custody: hot,
             holder: customer, token: "{USDT}", decimals: 6, addresses: ["{ETH_B}"]}}
        """,
    )
    assert messages(path) == [
        f"{path}:8: wallets[2]: wallet dmm/hot-1 in USDT is listed twice (also at {path}:6)"
    ]


def test_lowercase_evm_addresses_warn_but_pass(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "wallets.yaml",
        f"""\
        chains:
          eth: {{kind: evm, rpc: "http://127.0.0.1:8545"}}
        wallets:
          - {{exchange: dmm, wallet: usdt-1, chain: eth, asset: USDT, custody: hot,
             holder: customer, token: "{USDT.lower()}", decimals: 6,
             addresses: ["{ETH_A.lower()}"]}}
        """,
    )
    out = io.StringIO()
    assert check(path, None, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[:2] == [
        f"{path}:5: wallets[0].token: warning: {USDT.lower()} has no EIP-55 checksum; "
        f"write it as {USDT}",
        f"{path}:6: wallets[0].addresses[0]: warning: {ETH_A.lower()} has no EIP-55 checksum; "
        f"write it as {ETH_A}",
    ]
    assert lines[2].endswith("; 0 errors, 2 warnings")
    # the registry holds the checksummed form, as the watchers and events use it
    wallet = load_registry(path).wallets[0]
    assert (wallet.token, wallet.addresses) == (USDT, (ETH_A,))
    assert load_registry(path).chains["eth"].confirmations == 12  # the EVM default


@pytest.mark.parametrize(
    ("network", "good", "bad"),
    [
        ("main", btc_addresses("main", 1), btc_addresses("test", 1)[:1]),
        ("test", btc_addresses("test", 1), btc_addresses("main", 1)),
        ("signet", btc_addresses("signet", 1), btc_addresses("regtest", 1)[:1]),
        ("regtest", btc_addresses("regtest", 1), btc_addresses("main", 1)),
    ],
)
def test_bitcoin_addresses_must_belong_to_the_chains_network(
    tmp_path: Path, network: str, good: tuple[str, ...], bad: tuple[str, ...]
) -> None:
    addresses = ", ".join(f'"{address}"' for address in (*good, *bad))
    path = write(
        tmp_path,
        "wallets.yaml",
        f"""\
        chains:
          btc: {{kind: bitcoin, rpc: "http://127.0.0.1:18443", scan_from: 100,
                 network: {network}}}
        wallets:
          - {{exchange: dmm, wallet: btc-cold-1, chain: btc, asset: BTC, custody: cold,
             holder: customer, first_height: 100,
             addresses: [{addresses}]}}
        """,
    )
    errors = [str(problem) for problem in check_registry(path).errors]
    assert len(errors) == len(bad), errors
    for index, address in enumerate(bad, start=len(good)):
        [error] = [e for e in errors if f"addresses[{index}]" in e]
        assert error.startswith(f"{path}:7: wallets[0].addresses[{index}]: {address} is a ")
        assert f"address; this chain is {network}" in error


def test_bitcoin_address_networks_decodes_with_embit() -> None:
    segwit, legacy, nested = btc_addresses("main", 2)
    taproot = script.p2tr(ec.PrivateKey(bytes([2]) * 32).get_public_key())
    assert bitcoin_address_networks(segwit) == ("main",)
    assert bitcoin_address_networks(segwit.upper()) == ("main",)  # QR codes use upper case
    assert bitcoin_address_networks(legacy) == ("main",)
    assert bitcoin_address_networks(nested) == ("main",)
    assert bitcoin_address_networks(taproot.address(NETWORKS["regtest"])) == ("regtest",)
    assert bitcoin_address_networks(btc_addresses("test", 2)[0]) == ("test", "signet")
    assert bitcoin_address_networks(btc_addresses("test", 2)[1]) == ("test", "signet", "regtest")
    for broken in (
        segwit[:-1] + ("q" if segwit[-1] != "q" else "p"),  # bech32 checksum
        segwit[:10] + segwit[10:].upper(),  # mixed case
        legacy[:-1] + ("2" if legacy[-1] != "2" else "3"),  # base58 checksum
        ETH_A,
        "",
    ):
        with pytest.raises(ValueError):
            bitcoin_address_networks(broken)


def test_bitcoin_first_height_before_scan_from_warns(tmp_path: Path) -> None:
    segwit, legacy, nested = btc_addresses("regtest", 3)
    path = write(
        tmp_path,
        "wallets.yaml",
        f"""\
        chains:
          btc: {{kind: bitcoin, rpc: "http://127.0.0.1:18443", scan_from: 100, network: regtest}}
        wallets:
          - {{exchange: dmm, wallet: cold, chain: btc, asset: BTC, custody: cold,
             holder: customer, addresses: ["{segwit}"]}}
          - {{exchange: dmm, wallet: hot, chain: btc, asset: BTC, custody: hot,
             holder: customer, first_height: 99, addresses: ["{legacy}"]}}
          - {{exchange: dmm, wallet: guarantee, chain: btc, asset: BTC, custody: hot,
             holder: guarantee, first_height: 100, token: "{USDT}", addresses: ["{nested}"]}}
          - {{exchange: dmm, wallet: house, chain: btc, asset: BTC, custody: hot,
             holder: house, first_height: 1, decimals: 8, addresses: ["{segwit.upper()}"]}}
        """,
    )
    checked = check_registry(path)
    assert [str(p) for p in checked.warnings] == [
        f"{path}:4: wallets[0]: warning: no first_height: coins these addresses received "
        "before the chain's scan_from (100) are invisible; record the first block with "
        "coins to them",
        f"{path}:7: wallets[1].first_height: warning: first_height 99 is before the chain's "
        "scan_from (100): coins received before 100 are invisible",
        f"{path}:11: wallets[3].first_height: warning: first_height 1 is before the chain's "
        "scan_from (100): coins received before 100 are invisible",
    ]
    assert [str(p) for p in checked.errors] == [
        f"{path}:9: wallets[2].token: not for bitcoin wallets",
        f"{path}:11: wallets[3].decimals: not for bitcoin wallets",
        # bech32 ignores case, so the upper-case spelling is the same address
        f"{path}:11: wallets[3].addresses[0]: {segwit.upper()} is also listed at "
        f"{path}:5: wallets[0].addresses[0] (an address counted twice doubles its balance)",
    ]
    # scanned from genesis, nothing can be missed: no warning
    path.write_text(path.read_text().replace("scan_from: 100", "scan_from: 0"))
    assert check_registry(path).warnings == ()


def test_node_credentials_in_the_registry_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "wallets.yaml",
        """\
        chains:
          eth: {kind: evm, rpc: "http://alice:s3cret@127.0.0.1:8545"}
          btc: {kind: bitcoin, rpc: "http://127.0.0.1:8332", scan_from: 0,
                rpcuser: alice, password: s3cret}
        wallets: []
        """,
    )
    advice = "node credentials never go in the registry; set RESERVE_MONITOR_{0}_RPC_USER and "
    assert [m.partition(" RESERVE_MONITOR_")[0] for m in messages(path)] == [
        f"{path}:2: chains.eth.rpc: node credentials never go in the registry; set",
        f"{path}:4: chains.btc.rpcuser: node credentials never go in the registry; set",
        f"{path}:4: chains.btc.password: node credentials never go in the registry; set",
    ]
    for message, key in zip(messages(path), ("ETH", "BTC", "BTC"), strict=True):
        assert advice.format(key) in message
        assert "s3cret" not in message  # the secret is not echoed to logs


def test_credentials_come_from_the_environment_then_the_cookie_file(tmp_path: Path) -> None:
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / ".cookie").write_text("__cookie__:0123abcd\n", encoding="utf-8")
    path = write(
        tmp_path,
        "wallets.yaml",
        """\
        chains:
          btc: {kind: bitcoin, rpc: "http://127.0.0.1:8332", scan_from: 0,
                cookie_file: node/.cookie}
          eth-l2: {kind: evm, rpc: "http://127.0.0.1:8545"}
        wallets: []
        """,
    )
    registry = load_registry(path)
    btc, l2 = registry.chains["btc"], registry.chains["eth-l2"]
    # the cookie file is found next to the registry, whatever the working directory
    assert btc.credentials({}) == ("__cookie__", "0123abcd")
    env = {"RESERVE_MONITOR_BTC_RPC_USER": "ops", "RESERVE_MONITOR_BTC_RPC_PASSWORD": "pw"}
    assert btc.credentials(env) == ("ops", "pw")
    assert l2.credentials({}) is None
    assert l2.credentials(
        {"RESERVE_MONITOR_ETH_L2_RPC_USER": "u", "RESERVE_MONITOR_ETH_L2_RPC_PASSWORD": "p"}
    ) == ("u", "p")
    with pytest.raises(RegistryError, match="RESERVE_MONITOR_ETH_L2_RPC_PASSWORD is not set"):
        l2.credentials({"RESERVE_MONITOR_ETH_L2_RPC_USER": "u"})
    (tmp_path / "node" / ".cookie").unlink()
    with pytest.raises(RegistryError, match=r"cannot read cookie_file .*node/\.cookie"):
        btc.credentials({})


CSV_CHAINS = """\
chains:
  eth: {kind: evm, rpc: "http://127.0.0.1:8545", confirmations: 12}
  btc: {kind: bitcoin, rpc: "http://127.0.0.1:8332", confirmations: 6, scan_from: 840000}
"""


def test_csv_and_yaml_give_the_same_registry(tmp_path: Path) -> None:
    segwit, legacy, _ = btc_addresses("main", 4)
    yaml_path = write(
        tmp_path,
        "wallets.yaml",
        CSV_CHAINS
        + f"""\
wallets:
  - {{exchange: dmm, wallet: eth-cold-1, chain: eth, asset: ETH, custody: cold,
     holder: customer, addresses: ["{ETH_A}", "{ETH_C}"]}}
  - {{exchange: dmm, wallet: usdt-hot-1, chain: eth, asset: USDT, custody: hot,
     holder: customer, token: "{USDT}", decimals: 6, addresses: ["{ETH_B}"]}}
  - {{exchange: dmm, wallet: btc-cold-1, chain: btc, asset: BTC, custody: cold,
     holder: customer, first_height: 840001, addresses: ["{segwit}", "{legacy}"]}}
""",
    )
    chains = write(tmp_path, "chains.yaml", CSV_CHAINS)
    csv_path = write(
        tmp_path,
        "wallets.csv",
        f"""\
        exchange,wallet,chain,asset,token,decimals,custody,holder,address,first_height
        dmm,eth-cold-1,eth,ETH,,,cold,customer,{ETH_A},
        dmm,usdt-hot-1,eth,USDT,{USDT},6,hot,customer,{ETH_B},
        dmm,btc-cold-1,btc,BTC,,,cold,customer,{segwit},840001

        dmm,eth-cold-1,eth,ETH,,,cold,customer,{ETH_C},
        dmm,btc-cold-1,btc,BTC,,,cold,customer,{legacy},840001
        """,
    )
    from_yaml = load_registry(yaml_path)
    from_csv = load_registry(csv_path, chains)
    assert isinstance(from_csv, Registry)
    assert from_csv == from_yaml
    assert from_csv.wallets[0].addresses == (ETH_A, ETH_C)


def test_csv_errors_name_their_row(tmp_path: Path) -> None:
    chains = write(tmp_path, "chains.yaml", CSV_CHAINS)
    csv_path = write(
        tmp_path,
        "wallets.csv",
        f"""\
        exchange,wallet,chain,asset,token,decimals,custody,holder,address
        dmm,eth-cold-1,eth,ETH,,,cold,customer,{ETH_A}
        dmm,eth-cold-1,eth,ETH,,,hot,customer,{ETH_C}
        dmm,usdt-hot-1,eth,USDT,{USDT},six,hot,customer,{ETH_B}
        dmm,btc-1,btc,BTC,,,cold,customer,{ETH_B}
        dmm,eth-cold-2,eth,ETH,,,cold,customer,{ETH_A.lower()}
        dmm,too-short,eth,ETH
        """,
    )
    f = str(csv_path)
    assert messages(csv_path, chains) == [
        f"{f}:3: custody: dmm/eth-cold-1 (ETH) has 'cold' at line 2, here 'hot'",
        f"{f}:7: row 7: 4 cells, the header has 9",
        f"{f}:4: decimals: must be a whole number from 0 to 36, not 'six'",
        f"{f}:5: address: {ETH_B} is not a Bitcoin address: neither bech32 nor base58check "
        "(Character '0' is not a valid base58 character)",
        f"{f}:5: row 5: warning: no first_height: coins these addresses received before the "
        "chain's scan_from (840000) are invisible; record the first block with coins to them",
        f"{f}:6: address: warning: {ETH_A.lower()} has no EIP-55 checksum; write it as {ETH_A}",
        f"{f}:6: address: {ETH_A.lower()} is also listed at {f}:2: address "
        "(an address counted twice doubles its balance)",
    ]


def test_unreadable_chains_are_reported_once_not_at_every_wallet(tmp_path: Path) -> None:
    chains = write(tmp_path, "chains.yaml", "chains:\n  eth: {kind: evm\n")
    rows = "".join(
        f"dmm,w{n},eth,ETH,,,cold,customer,{address}\n" for n, address in enumerate((ETH_A, ETH_B))
    )
    csv_path = write(
        tmp_path,
        "wallets.csv",
        "exchange,wallet,chain,asset,token,decimals,custody,holder,address\n" + rows,
    )
    [message] = messages(csv_path, chains)
    assert message.startswith(f"{chains}:3: file: not YAML: ")
    empty = write(tmp_path, "empty.yaml", "chains: {}\nwallets: [{chain: eth}]\n")
    assert messages(empty)[0] == f"{empty}:1: chains: no chains"
    assert not any(".chain:" in message for message in messages(empty))


def test_csv_needs_its_columns_and_chains(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "wallets.csv", "exchange,wallet,chain,asset,address,colour\n")
    assert messages(csv_path) == [
        f"{csv_path}:1: chains: a CSV registry needs --chains FILE (YAML)",
        f"{csv_path}:1: header: missing columns: token, decimals, custody, holder "
        "(expected exchange,wallet,chain,asset,token,decimals,custody,holder,address"
        "[,first_height])",
        f"{csv_path}:1: header: unknown column: colour "
        "(expected exchange,wallet,chain,asset,token,decimals,custody,holder,address"
        "[,first_height])",
    ]


def test_not_yaml_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "wallets.yaml", "chains:\n  eth: {kind: evm\nwallets: []\n")
    [message] = messages(path)
    assert message.startswith(f"{path}:3: file: not YAML: ")
    repeated = write(
        tmp_path,
        "twice.yaml",
        "chains: {eth: {kind: evm, rpc: 'http://node'}}\nwallets: []\nwallets: []\n",
    )
    assert messages(repeated) == [f"{repeated}:3: wallets: repeated key (first at line 2)"]
    empty = write(tmp_path, "empty.yaml", "")
    assert messages(empty) == [f"{empty}:1: wallets: the file is empty"]


def test_the_command_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "wallets.yaml",
        f"""\
        chains:
          eth: {{kind: evm, rpc: "http://127.0.0.1:8545"}}
        wallets:
          - {{exchange: dmm, wallet: w, chain: eth, asset: ETH, custody: cold, holder: x,
             addresses: ["{ETH_A_BAD}"]}}
        """,
    )
    command = [
        str(Path(sys.executable).with_name("reserve-monitor")),
        "wallets",
        "check",
        str(path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"{path}:4: wallets[0].holder: must be one of customer, guarantee, house",
        f"{path}:5: wallets[0].addresses[0]: {ETH_A_BAD} fails its EIP-55 checksum "
        "(a mistyped character?)",
        f"{path}: invalid; 2 errors, 0 warnings",
    ]
