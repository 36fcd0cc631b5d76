"""Contract events for the integration tests (CONTRACT section 3), built by name."""

from __future__ import annotations

from typing import Any

TRADES = "exchange.trades"
WALLETS = "exchange.wallet-balances"
LEDGER = "exchange.ledger"
PRICES = "market.prices"


def price(n: int, asset: str, amount: str, ts: str) -> tuple[str, str, dict[str, Any]]:
    return (
        PRICES,
        asset,
        {"event_id": f"p-{n}", "asset": asset, "ts": ts, "price": amount, "currency": "JPY"},
    )


def wallet(
    n: int,
    exchange: str,
    name: str,
    asset: str,
    balance: str,
    custody: str,
    ts: str,
    holder: str = "customer",
) -> tuple[str, str, dict[str, Any]]:
    return (
        WALLETS,
        exchange,
        {
            "event_id": f"w-{n}",
            "exchange": exchange,
            "ts": ts,
            "wallet": name,
            "asset": asset,
            "balance": balance,
            "custody": custody,
            "holder": holder,
        },
    )


def fund(n: int, exchange: str, amount: str, ts: str) -> tuple[str, str, dict[str, Any]]:
    return (
        LEDGER,
        exchange,
        {
            "type": "reserve_fund",
            "event_id": f"f-{n}",
            "exchange": exchange,
            "ts": ts,
            "amount": amount,
            "currency": "JPY",
        },
    )


def trade(n: int, exchange: str, notional: str, ts: str) -> tuple[str, str, dict[str, Any]]:
    return (
        TRADES,
        exchange,
        {
            "event_id": f"t-{n}",
            "exchange": exchange,
            "ts": ts,
            "market": "BTC/JPY",
            "notional": notional,
            "currency": "JPY",
        },
    )


def healthy(exchange: str, ts: str = "2024-05-31T13:00:00Z") -> list[tuple[str, str, Any]]:
    """A priced exchange, 97% cold, with a ¥5 bn fund against the ¥2 bn minimum floor."""
    return [
        price(1, "BTC", "10700000", ts),
        wallet(1, exchange, "btc-cold-1", "BTC", "97000", "cold", ts),
        wallet(2, exchange, "btc-hot-1", "BTC", "3000", "hot", ts),
        fund(1, exchange, "5000000000", ts),
    ]


def prefixed(prefix: str, records: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    return [(prefix + topic, key, value) for topic, key, value in records]
