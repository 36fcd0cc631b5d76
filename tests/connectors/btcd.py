"""A real btcd in regtest for the Bitcoin watcher's tests, and a tiny wallet to drive it.

btcd has no wallet, so the test holds the keys: it mines to an address of its
own key (`--miningaddr`), lets the coinbase mature (100 blocks), and builds and
signs P2WPKH transactions with embit, sent with ``sendrawtransaction``. Keys
come from labels, so every run uses the same addresses.

The node listens on free loopback ports, keeps its data in a temporary
directory, and is stopped by the fixture that started it (``deploy/btcd/install.sh``
builds it into ``.cache/btcd``; ``make btcd`` runs that).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from embit import ec, script  # type: ignore[import-untyped]  # embit ships no types
from embit.networks import NETWORKS  # type: ignore[import-untyped]
from embit.transaction import (  # type: ignore[import-untyped]
    SIGHASH,
    Transaction,
    TransactionInput,
    TransactionOutput,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BTCD = REPO_ROOT / ".cache" / "btcd" / "bin" / "btcd"
REGTEST = NETWORKS["regtest"]
COINBASE_MATURITY = 100
SATS = 100_000_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Key:
    """A deterministic test key and its regtest P2WPKH address."""

    label: str

    @property
    def private(self) -> ec.PrivateKey:
        return ec.PrivateKey(hashlib.sha256(self.label.encode()).digest())

    @property
    def script(self) -> script.Script:
        return script.p2wpkh(self.private.get_public_key())

    @property
    def address(self) -> str:
        return str(self.script.address(REGTEST))


@dataclass(frozen=True)
class Coin:
    """An unspent output the test can spend: where it is, what it holds, whose it is."""

    txid: str
    vout: int
    sats: int
    key: Key


class NodeError(RuntimeError):
    """btcd answered a call with an error."""


class Btcd:
    """A running btcd: its RPC endpoint and the calls the tests make."""

    def __init__(
        self, process: subprocess.Popen[bytes], ports: tuple[int, int], directory: Path
    ) -> None:
        self.process = process
        self.ports = ports
        rpc_port = ports[0]
        self.rpc_url = f"http://127.0.0.1:{rpc_port}"
        self.user = "watcher"
        self.password = "regtest-only"
        self.directory = directory

    def call(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)})
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            self.rpc_url,
            data=body.encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read(), parse_float=Decimal)
        except urllib.error.HTTPError as error:  # btcd answers RPC errors with HTTP 500 too
            answer = json.loads(error.read(), parse_float=Decimal)
        if answer.get("error"):
            raise NodeError(f"{method}: {answer['error']}")
        return answer["result"]

    def mine(self, blocks: int) -> list[str]:
        """Mine ``blocks`` blocks to the mining address; their hashes."""
        return list(self.call("generate", blocks))

    def height(self) -> int:
        return int(self.call("getblockcount"))

    def block(self, height: int) -> dict[str, Any]:
        return dict(self.call("getblock", self.call("getblockhash", height), 2))

    def coinbase(self, height: int, key: Key) -> Coin:
        """The coinbase output of the block at ``height``, paid to ``key``."""
        block = self.block(height)
        tx = (block.get("tx") or block["rawtx"])[0]
        output = tx["vout"][0]
        assert output["scriptPubKey"]["hex"] == key.script.data.hex()
        return Coin(tx["txid"], 0, int(output["value"] * SATS), key)

    def send(
        self, coins: list[Coin], pay: list[tuple[str, int]], fee: int = 10_000, *, rbf: bool = False
    ) -> str:
        """Spend ``coins`` to ``pay`` (address, sats), change back to the first coin's key.

        ``rbf``: signal BIP 125 replaceability, so a higher fee may replace it in the mempool.
        """
        sequence = 0xFFFFFFFD if rbf else 0xFFFFFFFF
        change = sum(coin.sats for coin in coins) - sum(sats for _, sats in pay) - fee
        assert change >= 0, "not enough coins"
        outputs = [TransactionOutput(sats, script.address_to_scriptpubkey(a)) for a, sats in pay]
        if change:
            outputs.append(TransactionOutput(change, coins[0].key.script))
        tx = Transaction(
            version=2,
            vin=[
                TransactionInput(bytes.fromhex(coin.txid), coin.vout, sequence=sequence)
                for coin in coins
            ],
            vout=outputs,
        )
        for index, coin in enumerate(coins):
            public = coin.key.private.get_public_key()
            digest = tx.sighash_segwit(index, script.p2pkh(public), coin.sats)
            signature = coin.key.private.sign(digest)
            tx.vin[index].witness = script.witness_p2wpkh(signature, public, SIGHASH.ALL)
        return str(self.call("sendrawtransaction", tx.serialize().hex()))

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("stop")
            except (OSError, NodeError):
                self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_btcd(
    directory: Path, mining_address: str, *, ports: tuple[int, int] | None = None
) -> Iterator[Btcd]:
    """A btcd in regtest on loopback, its data in ``directory``; stopped after.

    ``ports`` (RPC, P2P): free ones unless given (a restart of the same node gives its own).
    """
    if not BTCD.exists():
        raise RuntimeError(f"{BTCD} is missing: run `make btcd` (deploy/btcd/install.sh)")
    rpc_port, p2p_port = ports or (free_port(), free_port())
    directory.mkdir(parents=True, exist_ok=True)
    log = (directory / "btcd.out").open("ab")
    process = subprocess.Popen(
        [
            str(BTCD),
            "--regtest",
            "--notls",
            "--rpcuser=watcher",
            "--rpcpass=regtest-only",
            f"--rpclisten=127.0.0.1:{rpc_port}",
            f"--listen=127.0.0.1:{p2p_port}",
            f"--datadir={directory / 'data'}",
            f"--logdir={directory / 'logs'}",
            f"--miningaddr={mining_address}",
            "--nodnsseed",
            "--nocfilters",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    node = Btcd(process, (rpc_port, p2p_port), directory)
    try:
        _wait_ready(node)
        yield node
    finally:
        node.stop()
        log.close()


def _wait_ready(node: Btcd) -> None:
    """Until the RPC server answers (readiness, not a timing: it fails only if btcd never does)."""
    deadline = time.monotonic() + 60
    while True:
        if node.process.poll() is not None:
            output = (node.directory / "btcd.out").read_text(errors="replace")
            raise RuntimeError(f"btcd exited with {node.process.returncode}:\n{output[-2000:]}")
        try:
            node.call("getblockcount")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Relay:
    """A TCP relay in front of the node's RPC port: closing it makes the node go away for
    its clients, opening it again (same port) brings it back with its chain intact.

    btcd wipes its regtest chain when it starts, so a restarted node would be a new chain;
    the relay lets a test take the node away and bring the same one back.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True
        )

    async def close(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._streams):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return
        self._streams.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._streams.discard(writer)
            writer.close()
