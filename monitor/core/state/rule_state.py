"""Where one rule of one exchange stands: its status, its changes, what it last said.

A module of its own so that it is compiled with the exchange that reads it at every
judgment (``make compile``): a compiled class's fields are read directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.core.assessment import Assessment
from monitor.core.status import Status


@dataclass(slots=True)
class RuleState:
    """The last status of one rule, how many changes it has had, and its last assessment.

    ``pending`` is the moment a breach not yet published (held ``for`` its rule's
    ``breach_for``) was first seen; ``due`` when time alone could change the rule's
    answer (None: only its inputs can).
    """

    status: Status = Status.UNKNOWN
    changes: int = 0
    assessment: Assessment | None = None
    pending: datetime | None = None
    due: datetime | None = None

    def due_by(self, moment: datetime | None) -> None:
        """Time alone may change the answer at ``moment`` too: keep the sooner deadline."""
        if moment is not None and (self.due is None or moment < self.due):
            self.due = moment
