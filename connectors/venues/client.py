"""A ccxt client for one venue: exact numbers, and pointed where the environment says.

ccxt parses every price and amount through ``Exchange.number``, ``float`` by
default. Setting it to ``Decimal`` makes ccxt hand back ``Decimal`` built from
the venue's own text (JSON numbers go through ``str`` first, the shortest form
that reads back as the same number), so no binary float ever holds money.

``RESERVE_MONITOR_VENUE_API_<VENUE>`` (e.g. ``..._BINANCE=http://127.0.0.1:8080/binance``)
replaces the venue's REST and websocket hosts: for a mirror, a proxy, or the
tests' local double. Each venue builds its URLs its own way, so each has its
own mapping below.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from connectors.venues.errors import VenueError

# the venues the feeds know: how their URLs are built and how trades are fetched by id
KNOWN_VENUES = ("binance", "bitflyer")


def _binance_urls(base: str) -> dict[str, Any]:
    # ccxt binance: REST path under urls.api.public (".../api/v3"); the websocket under
    # urls.api.ws.spot, to which watch_trades appends "/<stream number>"
    ws = "ws" + base.removeprefix("http")
    return {"api": {"public": f"{base}/api/v3", "ws": {"spot": f"{ws}/ws", "margin": f"{ws}/ws"}}}


def _bitflyer_urls(base: str) -> dict[str, Any]:
    # ccxt bitflyer: sign() builds urls.api.rest + "/v1/<path>"; it has no websocket in ccxt.pro
    return {"api": {"rest": base}}


_URLS = {"binance": _binance_urls, "bitflyer": _bitflyer_urls}


def _options(venue: str) -> dict[str, Any]:
    if venue == "binance":
        # spot markets only: load_markets would also read the futures exchanges' markets
        return {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}
    return {}


def create_client(venue: str, *, streaming: bool) -> Any:
    """A ccxt.pro client when ``streaming`` and the venue has one, else ccxt's async REST client.

    Raises `VenueError` for a venue the feeds do not know.
    """
    if venue not in KNOWN_VENUES:
        raise VenueError(f"unknown venue {venue!r}: the feeds know {', '.join(KNOWN_VENUES)}")
    # ccxt ships no type information (no py.typed, no stubs): its calls are typed as Any
    import ccxt.async_support  # type: ignore[import-untyped]
    import ccxt.pro  # type: ignore[import-untyped]

    config: dict[str, Any] = {
        "number": Decimal,
        "enableRateLimit": True,
        "options": _options(venue),
    }
    base = os.environ.get(f"RESERVE_MONITOR_VENUE_API_{venue.upper()}")
    if base:
        config["urls"] = _URLS[venue](base.rstrip("/"))
    if streaming and venue in ccxt.pro.exchanges:
        return getattr(ccxt.pro, venue)(config)
    return getattr(ccxt.async_support, venue)(config)


def streams_trades(client: Any) -> bool:
    """Whether the client can watch trades over a websocket (ccxt.pro's ``watchTrades``)."""
    return bool(client.has.get("watchTrades")) and hasattr(client, "watch_trades")


def watch_params(venue: str) -> dict[str, Any]:
    """``watch_trades`` parameters: Binance's aggregate-trade stream, whose ids REST pages by."""
    return {"name": "aggTrade"} if venue == "binance" else {}


def consecutive_ids(venue: str) -> bool:
    """Whether the venue's trade ids of one market follow each other without holes.

    Binance's aggregate trade ids do, per symbol, so a jump between two batches
    is a gap; bitFlyer's execution ids run across all its products.
    """
    return venue == "binance"
