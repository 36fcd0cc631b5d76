"""A rule's measurement of one exchange at one moment, with its words built lazily."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

Explanation = tuple[str, dict[str, Any]]


class Assessment:
    """A rule's measurement: ``status`` is the raw level before hysteresis.

    ``ratio`` is ``available / required`` (for share rules, the share itself);
    ``None`` with status ``unknown``, when an input is missing or stale.

    The words (``reason`` and ``evidence``) may be given as a function that
    returns both: a rule is evaluated far more often than anyone reads why, so
    the text is built only when an alert or a report asks for it, once.

    ``ratio_ahead`` is the lowest ratio foreseen within the rule's horizon (insurance
    that ends, see :mod:`monitor.core.rules.insurance`); None when nothing is foreseen.
    """

    __slots__ = (
        "_explain",
        "_words",
        "available",
        "ratio",
        "ratio_ahead",
        "required",
        "shortfall",
    )

    def __init__(
        self,
        required: Decimal | None,
        available: Decimal | None,
        ratio: Decimal | None,
        shortfall: Decimal | None,
        reason: str | Callable[[], Explanation],
        evidence: dict[str, Any] | None = None,
        *,
        ratio_ahead: Decimal | None = None,
    ) -> None:
        self.required = required
        self.available = available
        self.ratio = ratio
        self.shortfall = shortfall
        self.ratio_ahead = ratio_ahead
        self._explain: Callable[[], Explanation] | None = None
        self._words: Explanation | None = None
        if callable(reason):
            self._explain = reason
        else:
            self._words = (reason, evidence if evidence is not None else {})

    @property
    def reason(self) -> str:
        """One sentence a person can act on."""
        return self._explained()[0]

    @property
    def evidence(self) -> dict[str, Any]:
        """The figures behind the status, as text."""
        return self._explained()[1]

    @property
    def known(self) -> bool:
        return self.ratio is not None

    def _figures(self) -> tuple[Any, ...]:
        numbers = (self.required, self.available, self.ratio, self.shortfall, self.ratio_ahead)
        return (*numbers, *self._explained())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Assessment):
            return NotImplemented
        return self._figures() == other._figures()

    __hash__ = None  # type: ignore[assignment]  # equal by value, and the evidence is a dict

    def __repr__(self) -> str:
        return (
            f"Assessment(required={self.required!r}, available={self.available!r}, "
            f"ratio={self.ratio!r}, shortfall={self.shortfall!r}, reason={self.reason!r})"
        )

    def _explained(self) -> Explanation:
        if self._words is None:
            assert self._explain is not None
            self._words, self._explain = self._explain(), None
        return self._words
