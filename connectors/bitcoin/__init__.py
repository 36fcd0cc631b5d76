"""``watch bitcoin``: wallet balances from a Bitcoin Core or btcd node (CONTRACT section 9).

``blocks`` reads verbose blocks of either node into plain values, ``scripts``
turns registered addresses into the scriptPubKeys outputs are matched by,
``utxos`` keeps the watched unspent outputs with per-block undo (pure),
``rpc`` is the JSON-RPC client, ``source`` scans and follows the chain as a
`BalanceSource`, and ``watch`` is the command.
"""
