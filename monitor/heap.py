"""The monitor's long-lived state kept out of the garbage collector's full collections.

An engine's state is many small objects (2.8 million for 20,000 exchanges), nearly all of
them alive until a newer figure replaces them. CPython's cyclic collector runs a full
collection each time the objects that survived its younger collections have grown by a
quarter since the last, and a full collection scans every object it tracks. While the
state grows, as when a worker catches up on a backlog, the pauses add up: measured on an
engine taking 400,000 records of 20,000 exchanges, 18 full collections of up to 1.7 s
each took 12 of the 31 seconds (1,000 exchanges: 19% of the time; 100: 3%). A pause
longer than the worker's session timeout has its consumer group drop it.

What survives a full collection is that state: :class:`HeapKeeper` freezes it
(``gc.freeze()``) when the collection has ended, so the next full collection scans only
what came after, and each pause stays as short as the growth since the last.

Frozen objects are never examined again, so a cycle among them that becomes garbage
later stays (objects without cycles are freed by their reference counts, frozen or
not). :meth:`HeapKeeper.thaw` gives them back to the collector: the worker thaws when it
drops tasks, whose state may hold such cycles, and every hour.
"""

from __future__ import annotations

import gc
from typing import Any


class HeapKeeper:
    """Notes each full collection and freezes what it left, when :meth:`settle` is called
    (from a driver's loop, between records: never inside a collection)."""

    def __init__(self) -> None:
        self._collected = False
        self.frozen = 0  # how many times it froze
        gc.callbacks.append(self._noted)

    def _noted(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2:
            self._collected = True

    def settle(self) -> bool:
        """Freeze what survived the full collection since the last call, if one ran;
        whether one did."""
        if not self._collected:
            return False
        self._collected = False
        gc.freeze()
        self.frozen += 1
        return True

    def thaw(self) -> None:
        """Give the frozen objects back to the collector: its next full collection
        examines them all, and frees the cycles among them that became garbage."""
        gc.unfreeze()

    def close(self) -> None:
        """Stop noting collections (what is frozen stays frozen)."""
        if self._noted in gc.callbacks:
            gc.callbacks.remove(self._noted)
