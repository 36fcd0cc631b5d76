"""One EVM chain's node, read over JSON-RPC with web3.py: the confirmed height, and balances there.

`EvmNode` is the `BalanceSource` of an EVM chain. Its confirmed height is
``eth_blockNumber`` less the chain's confirmations. A read at a height asks, in
one JSON-RPC batch, for the block (hash, timestamp) and every planned balance
at that block number: ``eth_getBalance`` for the native coin, ``eth_call`` of
``balanceOf`` for a token. A registry too large for one batch is read in
several, each carrying the block again; if the hashes differ (a reorg between
two batches) the height is read again, so a reading is always of one block.

Every failure to reach the node, an HTTP error or a JSON-RPC error becomes
`NodeUnavailable`, which the follow loop backs off on. Two things are not
worth retrying and stop the watcher with a clear message instead
(`CannotWatch`): the node turning the credentials down (HTTP 401/403), and a
token whose contract is missing or whose ``decimals()`` differ from the
registry's (every balance would be wrong by a power of ten).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import Web3Exception

from connectors.balances import NodeUnavailable, Reading
from connectors.evm.erc20 import TokenError, balance_of_call, decimals_call, decode_uint256
from connectors.evm.reads import BalanceRead, plan_reads, wallet_balances
from connectors.wallets.registry import Chain, Wallet

# JSON-RPC requests per batch: public and managed nodes cap a batch at 100 to 1,000
BATCH_SIZE = 100
REQUEST_TIMEOUT_SECONDS = 30.0
# a reorg between the batches of one read: read the height again this many times
CONSISTENT_READ_ATTEMPTS = 3

T = TypeVar("T")


def basic_authorization(user: str, password: str) -> str:
    """The ``Authorization`` header of HTTP basic auth (RFC 7617), UTF-8 as the RFC allows."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class CannotWatch(Exception):
    """An answer no retry will change (refused credentials, a wrong token): the watcher stops."""


class EvmNode:
    """The balances of one EVM chain's wallets, as of its confirmed height."""

    def __init__(
        self,
        chain: Chain,
        wallets: Sequence[Wallet],
        *,
        environ: Mapping[str, str] = os.environ,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if chain.kind != "evm":
            raise ValueError(f"chain {chain.key} is a {chain.kind} chain, not an EVM one")
        self.chain = chain
        self.wallets = tuple(wallets)
        self._reads = plan_reads(self.wallets)
        self._batch_size = max(1, batch_size - 1)  # each batch also carries the block
        request: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)}
        credentials = chain.credentials(environ)
        if credentials is not None:
            headers = dict(AsyncHTTPProvider.get_request_headers())
            headers["Authorization"] = basic_authorization(*credentials)
            request["headers"] = headers
        # no retries inside web3: the follow loop backs off and says so in the log
        provider = AsyncHTTPProvider(
            chain.rpc, request_kwargs=request, exception_retry_configuration=None
        )
        self._w3: AsyncWeb3[AsyncHTTPProvider] = AsyncWeb3(provider)
        self._tokens_checked = False

    async def confirmed_height(self) -> int:
        """The newest block with ``confirmations`` blocks on top of it (0 on a young chain)."""
        tip = await self._ask(self._w3.eth.block_number)
        return max(0, tip - self.chain.confirmations)

    async def read(self, height: int) -> Reading:
        """Every wallet's balance at block ``height``, with that block's hash and time."""
        if not self._tokens_checked:
            await self._check_tokens()
            self._tokens_checked = True
        for _ in range(CONSISTENT_READ_ATTEMPTS):
            blocks: list[Any] = []
            raw: list[int] = []
            for start in range(0, max(1, len(self._reads)), self._batch_size):
                block, values = await self._read_batch(
                    height, self._reads[start : start + self._batch_size]
                )
                blocks.append(block)
                raw.extend(values)
            if len({bytes(block["hash"]) for block in blocks}) == 1:
                block = blocks[0]
                return Reading(
                    chain=self.chain.key,
                    height=height,
                    block_hash=block["hash"].to_0x_hex(),
                    block_time=datetime.fromtimestamp(block["timestamp"], UTC),
                    balances=wallet_balances(self._reads, raw),
                )
        raise NodeUnavailable(
            f"chain {self.chain.key}: block {height} changed while it was read "
            f"{CONSISTENT_READ_ATTEMPTS} times (a reorg in progress)"
        )

    async def block_hash(self, height: int) -> str | None:
        """The hash of the node's block at ``height`` now (None above its tip)."""
        try:
            block = await self._ask(self._w3.eth.get_block(height))
        except NodeUnavailable:
            if height > await self._ask(self._w3.eth.block_number):
                return None
            raise
        return str(block["hash"].to_0x_hex())

    async def close(self) -> None:
        """Close the HTTP sessions web3 keeps for the node."""
        await self._w3.provider.disconnect()

    async def _read_batch(self, height: int, reads: Sequence[BalanceRead]) -> tuple[Any, list[int]]:
        """The block and the raw balances of ``reads`` at ``height``, in one JSON-RPC batch."""
        w3 = self._w3

        async def batch() -> list[Any]:
            async with w3.batch_requests() as requests:
                requests.add(w3.eth.get_block(height))
                for read in reads:
                    if read.token is None:
                        requests.add(w3.eth.get_balance(read.address, height))
                    else:
                        call = balance_of_call(read.token, read.address)
                        requests.add(w3.eth.call(call, height))
                return list(await requests.async_execute())

        answers = await self._ask(batch())
        block, values = answers[0], answers[1:]
        if block is None:
            raise NodeUnavailable(f"chain {self.chain.key}: the node has no block {height} yet")
        raw = [
            value if read.token is None else self._token_amount(read.token, value)
            for read, value in zip(reads, values, strict=True)
        ]
        return block, raw

    async def _check_tokens(self) -> None:
        """Each token's ``decimals()`` against the registry's, once; a mismatch is fatal."""
        stated = {w.token: w.decimals for w in self.wallets if w.token is not None}
        if not stated:
            return
        w3 = self._w3
        tokens = sorted(stated, key=str)

        async def batch() -> list[Any]:
            async with w3.batch_requests() as requests:
                for token in tokens:
                    requests.add(w3.eth.call(decimals_call(str(token))))
                return list(await requests.async_execute())

        answers = await self._ask(batch())
        for token, answer in zip(tokens, answers, strict=True):
            actual = self._token_amount(str(token), answer)
            if actual != stated[token]:
                raise CannotWatch(
                    f"chain {self.chain.key}: token {token} has {actual} decimals on chain, "
                    f"the registry says {stated[token]}; fix the registry"
                )

    def _token_amount(self, token: str, answer: bytes) -> int:
        try:
            return decode_uint256(token, bytes(answer))
        except TokenError as error:
            raise CannotWatch(f"chain {self.chain.key}: {error}") from None

    async def _ask(self, request: Awaitable[T]) -> T:
        """``request``'s answer; a failure as `NodeUnavailable` or `CannotWatch`."""
        where = f"chain {self.chain.key} node at {self.chain.rpc}"
        try:
            return await request
        except aiohttp.ClientResponseError as error:
            if error.status in (401, 403):
                raise CannotWatch(
                    f"{where} refused the request (HTTP {error.status}): check "
                    f"RESERVE_MONITOR_{self.chain.key.upper()}_RPC_USER and _PASSWORD"
                ) from None
            raise NodeUnavailable(f"{where}: HTTP {error.status} {error.message}") from None
        except (aiohttp.ClientError, OSError) as error:
            raise NodeUnavailable(f"{where}: {error or type(error).__name__}") from None
        except TimeoutError:
            raise NodeUnavailable(
                f"{where}: no answer within {REQUEST_TIMEOUT_SECONDS:g}s"
            ) from None
        except Web3Exception as error:  # JSON-RPC errors, a block not found yet
            raise NodeUnavailable(f"{where}: {error}") from None
