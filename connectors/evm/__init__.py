"""EVM chains: native and ERC-20 balances of registered addresses, over JSON-RPC (web3.py).

``reads`` plans which balance each wallet needs and adds them up (pure);
``erc20`` encodes and decodes the token calls (pure); ``node`` reads one chain
at one height in batched JSON-RPC requests; ``watch`` is the command that
follows every EVM chain of a registry and publishes through ``connectors.balances``.
"""
