"""A bounded set of recently seen event ids, oldest forgotten first."""

from __future__ import annotations

from collections import deque


class RecentIds:
    """Remembers the last ``capacity`` ids; :meth:`add` returns the id it forgot, if any."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._order: deque[str] = deque()
        self._members: set[str] = set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._members

    def __len__(self) -> int:
        return len(self._members)

    def add(self, event_id: str) -> str | None:
        if event_id in self._members:
            return None
        self._order.append(event_id)
        self._members.add(event_id)
        if len(self._order) > self.capacity:
            forgotten = self._order.popleft()
            self._members.discard(forgotten)
            return forgotten
        return None
