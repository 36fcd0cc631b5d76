"""What the engine hands its drivers: outcomes, status changes and journal writes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, Final

from monitor.core.assessment import Assessment
from monitor.core.status import Status

# Namespace of the deterministic ids of status changes (uuid5 of the change's identity).
CHANGE_NAMESPACE: Final = uuid.UUID("6f1c2a52-3b0e-5d1c-9c61-2f7a1d0b9e41")

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


class Step:
    """What one call of the engine did.

    ``outcome`` (with ``error`` when invalid) is how the record taken is counted;
    ``changes`` the status changes of the moments judged during the call, in the
    order they were judged; ``evaluated`` the exchanges judged; ``writes`` the journal
    entries, filled only by :meth:`~monitor.core.engine.Engine.apply` (a driver asks
    :meth:`~monitor.core.engine.Engine.journal_writes` when it commits).

    A plain class, not a dataclass: the engine makes one for every record, and the
    compiled dataclass's ``default_factory`` lists cost a Python call each.
    """

    __slots__ = ("changes", "error", "evaluated", "outcome", "writes")

    def __init__(
        self,
        outcome: Outcome | None = None,
        error: str | None = None,
        changes: list[StatusChange] | None = None,
        writes: list[Write] | None = None,
        evaluated: list[str] | None = None,
    ) -> None:
        self.outcome = outcome
        self.error = error
        self.changes: list[StatusChange] = [] if changes is None else changes
        self.writes: list[Write] = [] if writes is None else writes
        self.evaluated: list[str] = [] if evaluated is None else evaluated

    def __repr__(self) -> str:
        return (
            f"Step(outcome={self.outcome!r}, error={self.error!r}, changes={self.changes!r}, "
            f"writes={self.writes!r}, evaluated={self.evaluated!r})"
        )


def new_journal_key(*parts: str | int) -> str:
    """The key of one journalled piece of state, e.g. ``["wallet","dmm","hot-1","BTC"]``.

    Compact JSON, as ``json.dumps(parts, separators=(",", ":"), ensure_ascii=False)``
    writes it, each string by the encoder's own function without building an encoder
    per key. For a key written once or twice (a peak level's, numbered; a volume
    bucket's); :func:`journal_key` for the rest.
    """
    quoted = encode_basestring
    return "[" + ",".join(quoted(p) if isinstance(p, str) else str(int(p)) for p in parts) + "]"


# the same few keys per exchange are written again and again: each made once
journal_key = lru_cache(maxsize=1 << 16)(new_journal_key)
