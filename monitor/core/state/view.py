"""What a rule may read of one exchange at the moment judged (see :mod:`monitor.core.rules.base`).

Compiled with the exchange that makes one at every judgment: the view's fields and its
deadline are read and set several times a rule, on every moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.core.state.exchange import Exchange
    from monitor.core.state.valuation import Valuer


class ExchangeView:
    """What a rule may read: the exchange's state, its prices, the moment judged.

    ``due`` collects the earliest time at which time alone could change what the
    rule answers (see :meth:`until`); None when only its inputs can.
    """

    __slots__ = ("due", "now", "state", "valuer")

    def __init__(self, state: Exchange, valuer: Valuer, now: datetime) -> None:
        self.state = state
        self.valuer = valuer
        self.now = now
        self.due: datetime | None = None

    def afresh(self) -> None:
        """Collect the deadlines of the next rule asked, from none.

        (A method, not ``view.due = None`` at the caller: after that assignment a type
        checker takes ``view.due`` for None, though the rule sets it through the view,
        and the compiled engine checks that type when it reads it.)
        """
        self.due = None

    def until(self, moment: datetime) -> None:
        """The answer read so far may change once time reaches ``moment``."""
        if moment > self.now and (self.due is None or moment < self.due):
            self.due = moment
