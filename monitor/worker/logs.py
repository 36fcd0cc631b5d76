"""Holding back repeated log lines, so an outage does not flood the worker's log.

While the broker is away, the Kafka client logs the same few errors hundreds
of times a second (about 250 kB/s of log with one worker). :class:`RepeatFilter`
lets each distinct line through once per interval and says, on the next one it
lets through, how many it held back.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

# distinct lines remembered; the oldest are forgotten first, so memory stays bounded
_REMEMBERED = 1024


class RepeatFilter(logging.Filter):
    """Lets a line (logger, level, message) through at most once per ``interval`` seconds."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        # line -> (when it was last let through, how many were held back since)
        self._seen: OrderedDict[tuple[str, int, str], tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        line = (record.name, record.levelno, record.getMessage())
        now = self.clock()
        held = self._seen.get(line)
        if held is not None and now - held[0] < self.interval:
            self._seen[line] = (held[0], held[1] + 1)
            return False
        if held is not None and held[1]:
            record.msg, record.args = f"{line[2]} ({held[1]} more like this held back)", None
        self._seen[line] = (now, 0)
        self._seen.move_to_end(line)
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return True


def hold_back_repeats(prefix: str = "aiokafka", interval: float = 10.0) -> RepeatFilter:
    """Put one :class:`RepeatFilter` on every logger under ``prefix`` created so far."""
    repeats = RepeatFilter(interval)
    for name in [prefix, *logging.root.manager.loggerDict]:
        if name == prefix or name.startswith(prefix + "."):
            logging.getLogger(name).addFilter(repeats)
    return repeats
