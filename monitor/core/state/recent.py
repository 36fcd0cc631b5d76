"""A bounded set of recently seen event ids, oldest forgotten first.

Every id is numbered in the order it was added, and ids are journalled in
blocks of :data:`BLOCK` consecutive numbers: :meth:`RecentIds.add` only notes
the block it changed, and :meth:`RecentIds.journal` gives each block changed
since its last call once, as it is then (one journal entry per block, not per id,
so a batch of events writes one entry). A set restored from the journal in any
order forgets the same ids, in the same order, as the set that wrote the journal.
"""

from __future__ import annotations

from collections import deque
from typing import Final

# ids per journal entry: an entry is rewritten whenever an id is added to it
BLOCK: Final = 64


class RecentIds:
    """Remembers the last ``capacity`` ids, oldest forgotten first, journalled by block."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._numbers: dict[str, int] = {}
        # the ids, oldest first (by number); restored entries arrive in any order and are
        # sorted once, on the next use, so adding stays O(1). Ids alone, their numbers
        # in _numbers: with a (number, id) pair an id, the set held 236 bytes an id
        # besides the ids themselves, against 148 (1.8 MB an exchange at 20,000 ids)
        self._order: deque[str] = deque()
        # block -> the ids remembered in it, kept as ids come and go
        self._blocks: dict[int, dict[str, int]] = {}
        self._in_order = True
        self._next = 0
        self._changed: set[int] = set()  # blocks changed since the last journal()

    def __contains__(self, event_id: object) -> bool:
        if not self._in_order:
            self._sort()
        return event_id in self._numbers

    def __len__(self) -> int:
        self._sort()
        return len(self._numbers)

    @property
    def upcoming(self) -> int:
        """The number the next id added will get."""
        return self._next

    def remember(self, event_id: str) -> None:
        """Remember ``event_id`` with nothing to journal (a driver with no durable storage).

        An id forgotten here may leave a block it was never put in: this set is not
        journalled, so its blocks are not kept.
        """
        number = self._next
        self._next += 1
        self._numbers[event_id] = number
        order = self._order
        order.append(event_id)
        if len(order) > self.capacity:
            del self._numbers[order.popleft()]

    def add(self, event_id: str) -> None:
        """Remember ``event_id``, noting the blocks changed for :meth:`journal`."""
        self._sort()
        number = self._next
        self._next += 1
        block = number // BLOCK
        self._numbers[event_id] = number
        self._order.append(event_id)
        ids = self._blocks.get(block)
        if ids is None:
            ids = self._blocks[block] = {}
        ids[event_id] = number
        self._changed.add(block)
        if len(self._order) > self.capacity:
            self._changed.add(self._forget_oldest() // BLOCK)

    def journal(self) -> list[tuple[int, dict[str, int] | None]]:
        """Each block changed since the last call, with the ids it holds now and their
        numbers (None: all of its ids are forgotten); clears the list."""
        changed, self._changed = self._changed, set()
        blocks = self._blocks
        return [
            (block, dict(blocks[block]) if block in blocks else None) for block in sorted(changed)
        ]

    def restore(self, ids: dict[str, int]) -> None:
        """Put back a journalled block of ids with their numbers (blocks in any order)."""
        for event_id, number in ids.items():
            self.restore_one(event_id, number)

    def restore_one(self, event_id: str, number: int) -> None:
        """Put back one id with its number, from a block or journalled elsewhere."""
        if event_id not in self._numbers:
            self._numbers[event_id] = number
            self._order.append(event_id)
            self._blocks.setdefault(number // BLOCK, {})[event_id] = number
            self._in_order = False
        self._next = max(self._next, number + 1)

    def _sort(self) -> None:
        if self._in_order:
            return
        self._order = deque(sorted(self._order, key=self._numbers.__getitem__))
        self._in_order = True
        while len(self._order) > self.capacity:  # forgotten before the journal was written
            self._forget_oldest()

    def _forget_oldest(self) -> int:
        forgotten = self._order.popleft()
        number = self._numbers.pop(forgotten)
        block = number // BLOCK
        ids = self._blocks[block]
        del ids[forgotten]
        if not ids:
            del self._blocks[block]
        return number
