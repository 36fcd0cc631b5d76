"""A bounded set of recently seen event ids, oldest forgotten first.

Every id is numbered in the order it was added. The number is journalled with
the id, so a set restored from the journal in any order forgets the same ids,
in the same order, as the set that wrote the journal.
"""

from __future__ import annotations

from collections import deque


class RecentIds:
    """Remembers the last ``capacity`` ids; :meth:`add` returns the id it forgot, if any."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._numbers: dict[str, int] = {}
        # (number, id), oldest first; restored entries arrive in any order and are
        # sorted once, on the next add, so adding stays O(1)
        self._order: deque[tuple[int, str]] = deque()
        self._in_order = True
        self._next = 0

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._numbers

    def __len__(self) -> int:
        return len(self._numbers)

    @property
    def upcoming(self) -> int:
        """The number the next id added will get."""
        return self._next

    def number_of(self, event_id: str) -> int:
        """The place of ``event_id`` in the order of adding (for journalling)."""
        return self._numbers[event_id]

    def add(self, event_id: str) -> str | None:
        if event_id in self._numbers:
            return None
        self._sort()
        number = self._next
        self._next += 1
        self._numbers[event_id] = number
        self._order.append((number, event_id))
        if len(self._order) > self.capacity:
            return self._forget_oldest()
        return None

    def restore(self, event_id: str, number: int) -> None:
        """Put back an id journalled with its ``number`` (any order)."""
        if event_id in self._numbers:
            return
        self._numbers[event_id] = number
        self._order.append((number, event_id))
        self._in_order = False
        self._next = max(self._next, number + 1)

    def _sort(self) -> None:
        if self._in_order:
            return
        self._order = deque(sorted(self._order))
        self._in_order = True
        while len(self._order) > self.capacity:  # a journal of a larger capacity
            self._forget_oldest()

    def _forget_oldest(self) -> str:
        _, forgotten = self._order.popleft()
        del self._numbers[forgotten]
        return forgotten
