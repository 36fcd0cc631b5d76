"""The exceptions of Reserve Monitor.

One root, a short tree::

    ReserveMonitorError
    ├── InvalidEvent      an input message that breaks the contract (dead-lettered)
    ├── PolicyError       a policy file that cannot be used (every problem listed)
    ├── SourceError       a report source (replay input, worker) without what was asked
    ├── SignatureError    a CloudEvent signature that is missing or does not verify, or a bad key
    └── NotCopartitioned  input topics whose partition counts differ (no task can own an exchange)
"""

from __future__ import annotations


class ReserveMonitorError(Exception):
    """Root of every error this project raises on purpose."""


class InvalidEvent(ReserveMonitorError):
    """An input message that breaks the contract.

    ``str()`` is ``"<field>: <message>"``, the form the dead-letter topic carries.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PolicyError(ReserveMonitorError):
    """A policy file with one or more problems, each ``"<place>: <message>"``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SourceError(ReserveMonitorError):
    """A source of adequacy reports cannot give what was asked: an exchange it does not
    know, or a worker it cannot reach. ``str()`` is the message for the person asking."""


class SignatureError(ReserveMonitorError):
    """A CloudEvent whose signature is missing or does not verify, or an unusable key."""


class NotCopartitioned(ReserveMonitorError):
    """The input topics keyed by exchange do not all have the same number of partitions."""
