"""Statuses, thresholds and the hysteresis that keeps a status from flapping.

A rule turns its inputs into a ratio; :class:`Thresholds` turn the ratio into
a status. Worsening takes effect at once. Improving needs the ratio to clear
the threshold by ``hysteresis`` as well, so a ratio hovering at a threshold
keeps the worse status instead of alerting on every wobble.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from monitor.core.money import MONEY_CONTEXT


class Status(StrEnum):
    """An exchange's standing under one rule: ok, warning (under the early-warning level),
    breach (under the floor) or unknown (an input missing or too old to judge by)."""

    OK = "ok"
    WARNING = "warning"
    BREACH = "breach"
    UNKNOWN = "unknown"


_RANK = {Status.BREACH: 0, Status.WARNING: 1, Status.OK: 2}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """``breach_below`` ≤ ``warning_below``; a ratio under them is breach or warning."""

    breach_below: Decimal
    warning_below: Decimal
    hysteresis: Decimal

    def __post_init__(self) -> None:
        if self.warning_below < self.breach_below:
            raise ValueError("warning_below must not be under breach_below")
        if self.hysteresis < 0:
            raise ValueError("hysteresis must not be negative")

    def level(self, ratio: Decimal) -> Status:
        """The status of ``ratio`` with no history."""
        if ratio < self.breach_below:
            return Status.BREACH
        if ratio < self.warning_below:
            return Status.WARNING
        return Status.OK

    def warning_margin(self, required: Decimal, available: Decimal) -> Decimal:
        """What ``available`` lacks of ``warning_below`` x ``required``: the top-up that
        lifts a ratio of ``available / required`` back to the early-warning level."""
        target = MONEY_CONTEXT.multiply(self.warning_below, required)
        return MONEY_CONTEXT.subtract(target, available)

    def classify(self, ratio: Decimal, previous: Status) -> Status:
        """The status of ``ratio`` given the ``previous`` one, with hysteresis."""
        candidate = self.level(ratio)
        if previous is Status.UNKNOWN or _RANK[candidate] <= _RANK[previous]:
            return candidate
        # improving: only as far as the ratio clears each threshold by the margin
        cleared = self.level(ratio - self.hysteresis)
        return cleared if _RANK[cleared] > _RANK[previous] else previous
