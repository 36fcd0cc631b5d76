"""The feeds' errors: a bad venue, market or asset is the operator's to fix, said in one line."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any


class VenueError(Exception):
    """Input a feed cannot serve: an unknown venue, market or asset, or no conversion pair."""


def run_feed(name: str, feed: Coroutine[Any, Any, int]) -> int:
    """Run a feed command until interrupted: exit 1 with one line on input it cannot serve."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return asyncio.run(feed)
    except VenueError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
