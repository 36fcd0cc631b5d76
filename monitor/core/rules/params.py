"""The value types of rule parameters, as policy files write them.

Numbers are read through their text (YAML 0.95 stays exactly 0.95), durations
as ``30d``, ``6h``, ``15m`` or ``90s``. Every rule's parameters are a frozen model
of these, declared in the rule's own module and validated by
:mod:`monitor.core.policy`.

Rule modules are compiled with mypyc (``make compile``), and two things keep their
parameter models whole there:

- **each field's annotation is written in quotes** (``max_price_age: "Duration"``).
  A compiled class keeps a quoted annotation as the text pydantic reads; an unquoted
  one it turns into the bare runtime type, which drops ``Annotated``'s validators and
  constraints (``Number`` would become a plain ``Decimal``, taking a YAML float
  inexactly). ``tests/unit/test_policy.py`` checks every rule's;
- **a check across fields is a method marked** :func:`consistent`, not a pydantic
  ``model_validator`` (which reads its function's signature, and a compiled
  function has none).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from monitor.core.money import parse_duration


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('must be a number such as "0.95"')
    # YAML floats are read through their text so 0.95 stays exactly 0.95
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError("must be a finite number, not negative")
    return number


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


def _hold(value: Any) -> timedelta:
    if value in (0, "0", "0s"):  # publish at once
        return timedelta(0)
    return _duration(value)


Number = Annotated[Decimal, BeforeValidator(_decimal)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
# a `for` duration: like Duration, and 0 (or "0s") publishes at once
Hold = Annotated[timedelta, BeforeValidator(_hold)]
# how far ahead a rule looks for insurance that ends; null turns the look ahead off
Horizon = Duration | None


class Params(BaseModel):
    """The parameters of one rule: every name must be known, nothing changes later.

    Every rule has ``breach_for``: how long of event time a new breach is held
    before it is published (the ``for`` of a Prometheus alerting rule).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    breach_for: Hold = timedelta(0)


def consistent(check: Callable[[Any], None]) -> Any:
    """Make ``check``, a method of a rule's parameters that raises ``ValueError`` when
    they disagree with one another, their validator (run after their fields).

    pydantic reads the signature of the function it is given as a validator, and a
    compiled one (a rule module's) has none: it is given this module's, which calls
    the check.
    """

    def validator(self: Any) -> Any:
        check(self)
        return self

    return model_validator(mode="after")(validator)


def ordered(breach: Decimal, warning: Decimal, breach_name: str, warning_name: str) -> None:
    if warning < breach:
        raise ValueError(f"{warning_name} must not be under {breach_name}")
