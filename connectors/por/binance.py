"""Binance: the CEX assets list of its zk proof of solvency (``--format binance``).

Source: github.com/binance/zkmerkle-proof-of-solvency. The exchange publishes
``CexAssetsInfo``, the per-asset totals over all user accounts that the proofs
commit to ("it represents CEX's liability", README, Verifier). The tool's
``dbtool -query_cex_assets`` prints it as a JSON array, and the verifier's
``config.json`` carries it under ``"CexAssetsInfo"``; both shapes are read::

    {"CexAssetsInfo": [
      {"TotalEquity": 5475341087, "TotalDebt": 71436240, "BasePrice": 2312848000000,
       "Symbol": "BTC", "Index": 0}, ...]}

``TotalEquity`` and ``TotalDebt`` are integers scaled by the asset's balance
multiplier. The list does not carry it: the tool fixes it in code
(``src/utils/constants.go``, README "Price Precision"): 10^8 for every asset,
10^2 for the ``AssetTypeForTwoDigits`` assets (SHIB, DOGE, PEPE… whose unit
prices are tiny). Its newer declarative profiles name the same numbers
``default_balance_scale``, ``two_digit_assets`` and ``two_digit_balance_scale``
in a ``pricing`` table; a file whose tool was set up otherwise may say so in a
``"Pricing"`` object with those keys next to ``"CexAssetsInfo"``.

The liability in an asset is the customers' net balance in it, ``(TotalEquity -
TotalDebt) / scale``: what users hold less what they borrowed, the figure
Binance's reserve ratio is taken against.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.por import located_json
from connectors.por.fields import asset_symbol, read_text
from connectors.por.liabilities import Totals
from connectors.por.located_json import Located
from connectors.por.problems import Problems

DEFAULT_BALANCE_SCALE = 10**8
TWO_DIGIT_BALANCE_SCALE = 10**2
# AssetTypeForTwoDigits of src/utils/constants.go (main branch, 2025)
TWO_DIGIT_ASSETS = frozenset(
    {
        "BTTC", "SHIB", "LUNC", "XEC", "WIN", "BIDR", "SPELL", "HOT", "DOGE", "PEPE",
        "FLOKI", "IDRT", "DOGS", "BONK", "1000SATS", "NEIRO", "1000PEPPER", "NOT", "NFT",
        "BOME", "1MBABYDOGE", "HMSTR", "WLFI", "PUMP", "MONKY", "1000CHEEMS", "IDR",
    }
)  # fmt: skip
_PRICING_KEYS = frozenset(
    {
        "default_balance_scale",
        "two_digit_assets",
        "two_digit_balance_scale",
        # price multipliers value assets in USDT; liabilities are quantities
        "default_price_scale",
        "two_digit_price_scale",
    }
)


@dataclass(frozen=True, slots=True)
class Pricing:
    """Balance multipliers: an asset's scaled integer / its multiplier = its quantity."""

    default_balance_scale: int = DEFAULT_BALANCE_SCALE
    two_digit_assets: frozenset[str] = TWO_DIGIT_ASSETS
    two_digit_balance_scale: int = TWO_DIGIT_BALANCE_SCALE

    def balance_scale(self, asset: str) -> int:
        if asset in self.two_digit_assets:
            return self.two_digit_balance_scale
        return self.default_balance_scale


def parse(data: bytes) -> Totals:
    """Net customer balances per asset; raises ``InvalidPorFile`` with every problem."""
    text = read_text(data)
    problems = Problems()
    try:
        document = located_json.parse(text)
    except located_json.JsonSyntaxError as error:
        problems.add(error.line, error.message, column=error.column)
        raise problems.error() from None
    pricing = Pricing()
    assets: Located | None = document
    if isinstance(document.value, dict):
        assets = document.value.get("CexAssetsInfo")
        if "Pricing" in document.value:
            pricing = _pricing(document.value["Pricing"], problems)
        if assets is None:
            problems.add(
                document.line,
                'no "CexAssetsInfo": expected the CEX assets list, as the verifier\'s '
                "config.json or `dbtool -query_cex_assets` gives it",
                column=document.column,
            )
            raise problems.error()
    assert assets is not None
    if not isinstance(assets.value, list):
        problems.add(
            assets.line,
            "expected a JSON array of CEX assets (objects with Symbol, TotalEquity, TotalDebt)",
            column=assets.column,
        )
        raise problems.error()
    if not assets.value:
        problems.add(assets.line, "the CEX assets list is empty", column=assets.column)
    totals = Totals()
    first_seen: dict[str, int] = {}
    for entry in assets.value:
        _entry(entry, pricing, totals, first_seen, problems)
    problems.raise_any()
    return totals


def _entry(
    entry: Located,
    pricing: Pricing,
    totals: Totals,
    first_seen: dict[str, int],
    problems: Problems,
) -> None:
    if not isinstance(entry.value, dict):
        problems.add(entry.line, "a CEX asset must be a JSON object", column=entry.column)
        return
    fields: dict[str, Located] = entry.value
    asset = _symbol(entry, fields, problems)
    equity = _scaled(entry, fields, "TotalEquity", problems)
    debt = _scaled(entry, fields, "TotalDebt", problems)
    if asset is None:
        return
    if asset in first_seen:
        problems.add(
            fields["Symbol"].line,
            f"{asset} is listed twice (first on line {first_seen[asset]})",
            column=fields["Symbol"].column,
            field="Symbol",
        )
        return
    first_seen[asset] = entry.line
    if equity is None or debt is None:
        return
    if debt > equity:
        problems.add(
            entry.line,
            f"{asset}: TotalDebt {debt} exceeds TotalEquity {equity}, so the customers' net "
            "balance would be negative; a liability cannot be",
            column=entry.column,
        )
        return
    scale = pricing.balance_scale(asset)
    exponent = len(str(scale)) - 1  # a power of ten: checked where it was read
    totals.add(asset, Decimal(equity - debt).scaleb(-exponent))


def _symbol(entry: Located, fields: dict[str, Located], problems: Problems) -> str | None:
    symbol = fields.get("Symbol")
    if symbol is None:
        problems.add(entry.line, "missing", column=entry.column, field="Symbol")
        return None
    if not isinstance(symbol.value, str):
        problems.add(symbol.line, "must be a string", column=symbol.column, field="Symbol")
        return None
    try:
        return asset_symbol(symbol.value)
    except ValueError as error:
        problems.add(symbol.line, str(error), column=symbol.column, field="Symbol")
        return None


def _scaled(
    entry: Located, fields: dict[str, Located], name: str, problems: Problems
) -> int | None:
    located = fields.get(name)
    if located is None:
        problems.add(entry.line, "missing", column=entry.column, field=name)
        return None
    message = _scaled_problem(located.value)
    if message is not None:
        problems.add(located.line, message, column=located.column, field=name)
        return None
    value: int = located.value
    return value


def _scaled_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return f"must be a scaled integer (a JSON number such as 5475341087), not {value!r}"
    if value < 0:
        return f"{value} is negative; a customer balance cannot be"
    if isinstance(value, Decimal):
        return f"{value} is not a scaled integer: the tool writes whole multiples of 10^-8"
    return None


def _pricing(located: Located, problems: Problems) -> Pricing:
    """The ``"Pricing"`` object: the balance multipliers the file's tool was set up with."""
    if not isinstance(located.value, dict):
        problems.add(located.line, "must be a JSON object", column=located.column, field="Pricing")
        return Pricing()
    fields: dict[str, Located] = located.value
    for key in fields.keys() - _PRICING_KEYS:
        problems.add(
            fields[key].line,
            "unknown key; expected " + ", ".join(sorted(_PRICING_KEYS)),
            column=fields[key].column,
            field=f"Pricing.{key}",
        )
    default = _scale(fields, "default_balance_scale", DEFAULT_BALANCE_SCALE, problems)
    two_digit = _scale(fields, "two_digit_balance_scale", TWO_DIGIT_BALANCE_SCALE, problems)
    assets = TWO_DIGIT_ASSETS
    listed = fields.get("two_digit_assets")
    if listed is not None:
        if not isinstance(listed.value, list):
            problems.add(
                listed.line,
                "must be a JSON array of asset symbols",
                column=listed.column,
                field="Pricing.two_digit_assets",
            )
        else:
            symbols = set()
            for item in listed.value:
                try:
                    if not isinstance(item.value, str):
                        raise ValueError(f"{item.value!r} is not an asset symbol")
                    symbols.add(asset_symbol(item.value))
                except ValueError as error:
                    problems.add(
                        item.line,
                        str(error),
                        column=item.column,
                        field="Pricing.two_digit_assets",
                    )
            assets = frozenset(symbols)
    return Pricing(default, assets, two_digit)


def _scale(fields: dict[str, Located], key: str, default: int, problems: Problems) -> int:
    """A balance multiplier: a power of ten, as a JSON integer or a string of digits."""
    located = fields.get(key)
    if located is None:
        return default
    value = located.value
    text = value if isinstance(value, str) else str(value)
    if (
        not isinstance(value, bool)
        and isinstance(value, int | str)
        and text.isascii()
        and text.isdigit()
        and text.lstrip("0") == "1" + "0" * (len(text.lstrip("0")) - 1)
    ):
        return int(text)
    problems.add(
        located.line,
        f"{value!r} is not a balance scale: a power of ten such as 100000000 (10^8)",
        column=located.column,
        field=f"Pricing.{key}",
    )
    return default
