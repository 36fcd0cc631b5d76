"""A real anvil node for the EVM watcher's tests, and the few calls that drive it.

The node listens on a free loopback port and keeps its chain in a state file
of the test's temporary directory, so a test can stop it (SIGTERM: it writes
the state) and start it again on the same port with the same chain. Nothing is
mined unless the test mines (``--no-mining``), every block is 12 s after the
one before (``anvil_setBlockTimestampInterval``, from a fixed genesis time), and
fees are zero, so balances and block times are exact and the same every run.

The test's accounts are unlocked by ``anvil_impersonateAccount``: any address
can send, as a thief with the hot wallet's key would. The ERC-20 is the
committed OpenZeppelin artifact (``connectors/evm/contracts``), deployed by
``eth_sendTransaction``. ``deploy/anvil/install.sh`` (``make anvil``) installs
the binary into ``.cache/anvil``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address

from connectors.wallets.registry import Registry, Wallet, load_registry
from monitor.synthetic.local import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_PREFIX = REPO_ROOT / ".cache" / "anvil"
ARTIFACT = REPO_ROOT / "connectors" / "evm" / "contracts" / "TestToken.json"
GENESIS = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
BLOCK_SECONDS = 12
START_TIMEOUT = 60.0  # a guard against a node that never comes up, not a timing
# the account anvil funds; it deploys the token and so holds its whole supply
FUNDER_KEY_ACCOUNTS = 1
TRANSFER = "0xa9059cbb"  # transfer(address,uint256)


def anvil_binary() -> Path:
    """The anvil of ``make anvil`` (or ``ANVIL_BIN``), with a hint when it is missing."""
    if os.environ.get("ANVIL_BIN"):
        return Path(os.environ["ANVIL_BIN"])
    found = sorted(ANVIL_PREFIX.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    if not found:
        raise RuntimeError("anvil is not installed: run `make anvil` (deploy/anvil/install.sh)")
    return found[0]


def address_of(label: str) -> str:
    """A fixed, checksummed address for a label: nobody holds its key, anvil sends for it."""
    from eth_utils.crypto import keccak

    return to_checksum_address(keccak(text=label)[-20:])


class NodeError(RuntimeError):
    """anvil answered a call with a JSON-RPC error."""


class Anvil:
    """One anvil process, its chain kept in ``state`` across a stop and a start."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.state = directory / "anvil-state.json"
        self.log_path = directory / "anvil.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.funder = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Anvil:
        """Start the node (loading its earlier chain, if any) and wait until it answers."""
        command = [
            str(anvil_binary()),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--timestamp", str(int(GENESIS.timestamp()))),
            *("--state", str(self.state), "--preserve-historical-states"),
            "--no-mining",
            *("--base-fee", "0", "--gas-price", "0", "--disable-min-priority-fee"),
            *("--accounts", str(FUNDER_KEY_ACCOUNTS)),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"anvil exited at start:\n{self.log()}")
            try:
                self.call("eth_chainId")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"anvil did not answer:\n{self.log()}") from None
                time.sleep(0.1)
        self.funder = to_checksum_address(self.call("eth_accounts")[0])
        # the next block 12 s after the newest, whether the chain is new or loaded
        self.call("evm_setNextBlockTimestamp", self.block("latest")["timestamp"] + BLOCK_SECONDS)
        self.call("anvil_setBlockTimestampInterval", BLOCK_SECONDS)
        return self

    def stop(self) -> None:
        """SIGTERM (anvil writes its state), then wait for the process to end."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- JSON-RPC ------------------------------------------------------------------------

    def call(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        if "error" in answer:
            raise NodeError(f"{method}: {answer['error']}")
        return answer["result"]

    def height(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block(self, number: int | str) -> dict[str, Any]:
        """A block's hash, number and timestamp (as an int)."""
        tag = hex(number) if isinstance(number, int) else number
        block = self.call("eth_getBlockByNumber", tag, False)
        return {
            "hash": block["hash"],
            "number": int(block["number"], 16),
            "timestamp": int(block["timestamp"], 16),
        }

    def block_time(self, number: int) -> datetime:
        return datetime.fromtimestamp(self.block(number)["timestamp"], UTC)

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` blocks (the pending transactions go in the first); the new height."""
        self.call("anvil_mine", hex(blocks))
        return self.height()

    def send(self, sender: str, to: str, *, value: int = 0, data: str = "0x") -> str:
        """Queue a transaction from any address (impersonated); mined by the next `mine`."""
        self.call("anvil_impersonateAccount", sender)
        transaction = {"from": sender, "to": to, "value": hex(value), "data": data}
        return str(self.call("eth_sendTransaction", {**transaction, "gasPrice": "0x0"}))

    def succeeded(self, transaction: str) -> bool:
        receipt = self.call("eth_getTransactionReceipt", transaction)
        return receipt is not None and int(receipt["status"], 16) == 1

    def balance(self, address: str, block: int | str = "latest") -> int:
        tag = hex(block) if isinstance(block, int) else block
        return int(self.call("eth_getBalance", address, tag), 16)

    # --- the test token ------------------------------------------------------------------

    def deploy_token(self, name: str, symbol: str, supply: int) -> str:
        """Deploy the OpenZeppelin ERC-20 artifact, the supply to the funder; its address."""
        artifact = json.loads(ARTIFACT.read_text())
        arguments = encode(["string", "string", "uint256"], [name, symbol, supply]).hex()
        transaction = self.call(
            "eth_sendTransaction",
            {"from": self.funder, "data": artifact["bytecode"] + arguments, "gasPrice": "0x0"},
        )
        self.mine()
        receipt = self.call("eth_getTransactionReceipt", transaction)
        if receipt is None or int(receipt["status"], 16) != 1:
            raise NodeError(f"token deployment failed: {receipt}")
        return to_checksum_address(receipt["contractAddress"])

    def send_token(self, token: str, sender: str, to: str, amount: int) -> str:
        """Queue an ERC-20 ``transfer`` of ``amount`` smallest units."""
        data = TRANSFER + encode(["address", "uint256"], [to, amount]).hex()
        return self.send(sender, token, data=data)

    def token_balance(self, token: str, holder: str, block: int | str = "latest") -> int:
        tag = hex(block) if isinstance(block, int) else block
        data = "0x70a08231" + encode(["address"], [holder]).hex()
        return int(self.call("eth_call", {"to": token, "data": data}, tag), 16)


# --- an exchange's wallets on the node -------------------------------------------------------

CONFIRMATIONS = 3
ETH = 10**18
USDT = 10**6  # the test token has 6 decimals, as USDT

COLD_1, COLD_2 = address_of("dmm-cold-1"), address_of("dmm-cold-2")
HOT = address_of("dmm-hot-1")
THIEF = address_of("thief")

# what the exchange holds after `fund`
FUNDED = {
    "eth-cold-1": Decimal("1000.5"),  # 600 + 400.5, over two addresses
    "eth-hot-1": Decimal("50"),
    "usdt-cold-1": Decimal("900000.25"),  # 700,000 + 200,000.25
    "usdt-hot-1": Decimal("100000"),
}


def registry_text(
    rpc: str, token: str, *, confirmations: int = CONFIRMATIONS, poll_seconds: float = 0.05
) -> str:
    """The exchange's four wallets (ETH and the token, cold and hot) on the node at ``rpc``."""
    return f"""\
chains:
  eth: {{kind: evm, rpc: "{rpc}", confirmations: {confirmations}, poll_seconds: {poll_seconds}}}
wallets:
  - {{exchange: dmm, wallet: eth-cold-1, chain: eth, asset: ETH, custody: cold,
     holder: customer, addresses: ["{COLD_1}", "{COLD_2}"]}}
  - {{exchange: dmm, wallet: eth-hot-1, chain: eth, asset: ETH, custody: hot,
     holder: customer, addresses: ["{HOT}"]}}
  - {{exchange: dmm, wallet: usdt-cold-1, chain: eth, asset: USDT, custody: cold,
     holder: customer, token: "{token}", decimals: 6, addresses: ["{COLD_1}", "{COLD_2}"]}}
  - {{exchange: dmm, wallet: usdt-hot-1, chain: eth, asset: USDT, custody: hot,
     holder: customer, token: "{token}", decimals: 6, addresses: ["{HOT}"]}}
"""


def fund(node: Anvil, token: str) -> int:
    """Fund the cold and hot wallets in one block, confirm it; that block's number."""
    sent = [
        node.send(node.funder, COLD_1, value=600 * ETH),
        node.send(node.funder, COLD_2, value=400 * ETH + ETH // 2),
        node.send(node.funder, HOT, value=50 * ETH),
        node.send_token(token, node.funder, COLD_1, 700_000 * USDT),
        node.send_token(token, node.funder, COLD_2, 200_000 * USDT + USDT // 4),
        node.send_token(token, node.funder, HOT, 100_000 * USDT),
    ]
    block = node.mine()
    if not all(node.succeeded(transaction) for transaction in sent):
        raise NodeError("a funding transaction failed")
    node.mine(CONFIRMATIONS)
    return block


@dataclass
class FundedChain:
    """A node with the token deployed and the wallets funded, and the registry of them."""

    node: Anvil
    token: str
    registry_path: Path

    @property
    def registry(self) -> Registry:
        return load_registry(self.registry_path)

    def wallet(self, name: str) -> Wallet:
        return next(w for w in self.registry.wallets if w.wallet == name)


@contextmanager
def funded_chain(directory: Path, *, poll_seconds: float = 0.05) -> Iterator[FundedChain]:
    """anvil with the exchange's wallets funded and confirmed, stopped at the end."""
    with running_anvil(directory) as node:
        token = node.deploy_token("Tether USD (test)", "USDT", 10_000_000 * USDT)
        registry = directory / "wallets.yaml"
        registry.write_text(registry_text(node.url, token, poll_seconds=poll_seconds))
        fund(node, token)
        yield FundedChain(node, token, registry)


def drain(node: Anvil, token: str) -> int:
    """A thief takes 90% of the ETH and 95% of the token from the hot wallet; that block."""
    sent = [
        node.send(HOT, THIEF, value=45 * ETH),
        node.send_token(token, HOT, THIEF, 95_000 * USDT),
    ]
    block = node.mine()
    if not all(node.succeeded(transaction) for transaction in sent):
        raise NodeError("a draining transaction failed")
    return block


# only the drain rule, so a test sees its alerts and nothing else
OPS_POLICY = """\
reporting_currency: JPY
packs:
  ops: {}
exchanges:
  default: {packs: [ops]}
"""
# JPY; the hot wallets hold 50 ETH x 500,000 + 100,000 USDT x 150 = 40,000,000 JPY when
# funded, 5 ETH x 500,000 + 5,000 USDT x 150 = 3,250,000 JPY when drained
PRICES = {"ETH": "500000", "USDT": "150"}
HOT_FUNDED_JPY = Decimal("40000000")
HOT_DRAINED_JPY = Decimal("3250000")


@contextmanager
def running_anvil(directory: Path) -> Iterator[Anvil]:
    """A started node in ``directory``, stopped at the end (whatever the test did to it)."""
    node = Anvil(directory).start()
    try:
        yield node
    finally:
        node.stop()
