"""A small JSON-RPC client for Bitcoin Core and btcd, over HTTP with basic auth.

Numbers are read with ``parse_float=Decimal`` so amounts stay exact. A node
that does not answer (refused, reset, timed out, warming up, 5xx without an
RPC answer) is `NodeUnavailable`, which the follow loop retries with backoff;
an RPC error or a refused login is `RpcError`, which stops the watcher with
the node's message.
"""

from __future__ import annotations

import base64
import itertools
import json
from decimal import Decimal
from typing import Any

import aiohttp

from connectors.balances import NodeUnavailable

# Bitcoin Core answers -28 while it loads its block index: the node is not ready yet
_WARMING_UP = -28


class RpcError(RuntimeError):
    """The node refused a call: ``code`` and ``message`` are the node's."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        self.method, self.code, self.message = method, code, message
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))


class BitcoinRpc:
    """JSON-RPC 1.0 calls to one node; one HTTP connection pool, closed with `close`."""

    def __init__(
        self,
        url: str,
        credentials: tuple[str, str] | None,
        *,
        timeout: float = 60.0,
        chain_key: str = "<chain>",
    ) -> None:
        self.url = url
        self._variables = (
            f"RESERVE_MONITOR_{chain_key.upper().replace('-', '_')}_RPC_USER/_PASSWORD"
        )
        self._headers = {"Content-Type": "application/json"}
        if credentials is not None:
            # HTTP basic auth by hand: aiohttp's BasicAuth is deprecated
            token = base64.b64encode(":".join(credentials).encode("utf-8")).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def call(self, method: str, *params: Any) -> Any:
        """The result of ``method(params)``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        body = {"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            async with self._session.post(self.url, json=body) as response:
                status = response.status
                text = await response.text()
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise NodeUnavailable(f"{self.url}: {error or type(error).__name__}") from error
        if status in (401, 403):
            raise RpcError(
                method,
                None,
                f"the node at {self.url} refused the login (HTTP {status}): check "
                f"{self._variables} or the chain's cookie_file",
            )
        try:
            answer = json.loads(text, parse_float=Decimal)
        except ValueError:
            if status >= 500 or status == 0:
                raise NodeUnavailable(f"{self.url}: HTTP {status}") from None
            raise RpcError(method, None, f"HTTP {status}, not JSON: {text[:200]!r}") from None
        refusal = answer.get("error") if isinstance(answer, dict) else None
        if refusal:
            code = refusal.get("code") if isinstance(refusal, dict) else None
            message = refusal.get("message", refusal) if isinstance(refusal, dict) else refusal
            if code == _WARMING_UP:
                raise NodeUnavailable(f"{self.url}: {message}")
            raise RpcError(method, code, str(message))
        if status >= 400 or not isinstance(answer, dict) or "result" not in answer:
            raise RpcError(method, None, f"HTTP {status}: {text[:200]!r}")
        return answer["result"]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
