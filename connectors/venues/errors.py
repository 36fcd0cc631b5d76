"""The feeds' errors: a bad venue, market or asset is the operator's to fix, said in one line."""

from __future__ import annotations


class VenueError(Exception):
    """Input a feed cannot serve: an unknown venue, market or asset, or no conversion pair."""
