"""What the engine hands its drivers: outcomes, status changes and journal writes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from monitor.core.assessment import Assessment
from monitor.core.status import Status

# Namespace of the deterministic ids of status changes (uuid5 of the change's identity).
CHANGE_NAMESPACE = uuid.UUID("6f1c2a52-3b0e-5d1c-9c61-2f7a1d0b9e41")

Write = tuple[str, dict[str, Any] | None]


class Outcome(StrEnum):
    """How an input message is accounted for (``reserve_monitor_events_total``)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One rule of one exchange moved from ``previous`` to ``status`` at moment ``as_of``."""

    exchange: str
    rule: str
    status: Status
    previous: Status
    sequence: int
    as_of: datetime
    assessment: Assessment

    @property
    def id(self) -> str:
        """The same change, recomputed after a restart or in a replay, has the same id."""
        name = f"{self.exchange}/{self.rule}/{self.sequence}/{self.previous}/{self.status}"
        return str(uuid.uuid5(CHANGE_NAMESPACE, name))

    @property
    def touches_breach(self) -> bool:
        return Status.BREACH in (self.status, self.previous)


@dataclass(slots=True)
class Step:
    """What one call of the engine did.

    ``outcome`` (with ``error`` when invalid) is how the record taken is counted;
    ``changes`` the status changes of the moments judged during the call, in the
    order they were judged; ``writes`` the journal entries; ``evaluated`` the
    exchanges judged.
    """

    outcome: Outcome | None = None
    error: str | None = None
    changes: list[StatusChange] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)


@lru_cache(maxsize=1 << 16)  # the same few keys per exchange are written again and again
def journal_key(*parts: str | int) -> str:
    """The key of one journalled piece of state, e.g. ``["wallet","dmm","hot-1","BTC"]``."""
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
