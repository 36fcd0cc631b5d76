"""``reserve-monitor import por``: customer liabilities from proof-of-reserves files.

Exchanges publish what they owe their customers, per asset, in the files of their
proof-of-reserves tools. Each format has its parser (``binance``, ``okx``,
``summa``) that reads the whole file into totals per asset, or refuses it with
every problem and its line; ``liabilities`` turns the totals into
``customer_liability`` ledger events; ``command`` runs it all or nothing.
"""
