"""The messages the monitor publishes (contract sections 4 and 5), as pydantic models.

These models describe the wire form; they do not produce it. The bytes come
from :func:`monitor.core.output.alerts.cloud_event` (``reserve.alerts`` and
``reserve.breaches``), :meth:`monitor.core.output.report.AdequacyReport.to_document`
(``reserve.adequacy`` and ``GET /status``) and
:func:`monitor.worker.deadletter.deadletter_record` (``reserve.deadletter``).
Their JSON Schemas go into the AsyncAPI document (:mod:`monitor.asyncapi`), and
the tests check that what the code produces validates against them. A Python
consumer may also parse a message with ``Model.model_validate_json``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from monitor.core.engine import rules_for
from monitor.core.events import ExchangeId, Symbol, Timestamp
from monitor.core.policy import DEFAULT_EXCHANGE, PACKS, parse_policy
from monitor.core.status import Status

# Every rule id the code knows: the rules of an exchange under every pack.
RULE_IDS: tuple[str, ...] = tuple(
    rule.id
    for rule in rules_for(
        parse_policy({"exchanges": {DEFAULT_EXCHANGE: {"packs": list(PACKS)}}}).for_exchange(
            DEFAULT_EXCHANGE
        )
    )
)


def _known_rule(rule: str) -> str:
    if rule not in RULE_IDS:
        raise ValueError(f"{rule!r} is not a rule id; known: {', '.join(RULE_IDS)}")
    return rule


RuleId = Annotated[
    str,
    AfterValidator(_known_rule),
    WithJsonSchema({"type": "string", "enum": list(RULE_IDS)}),
]
# monitor.core.money.decimal_text: plain positional notation, no exponent, never negative
DecimalText = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?$")]
Base64 = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9+/]*={0,2}$", json_schema_extra={"contentEncoding": "base64"}),
]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Standing(_Message):
    """Where one rule of one exchange stands: the figures, the sentence and the evidence."""

    status: Status
    # the figures are decimal strings, null where an input is missing or stale (status unknown)
    ratio: DecimalText | None = Field(
        description="available / required; for share rules the share against its minimum"
    )
    required: DecimalText | None = Field(description="the floor, in the reporting currency")
    available: DecimalText | None = Field(description="what counts toward the floor")
    shortfall: DecimalText | None = Field(description="what must be added to be compliant, >= 0")
    reason: str = Field(description="one sentence a person can act on")
    evidence: dict[str, Any] = Field(description="the figures behind the status, by rule")


class StatusChangeData(_Standing):
    """The ``data`` of a status change: the rule's new standing and the status it left."""

    exchange: ExchangeId
    rule: RuleId
    previous_status: Status
    currency: Symbol = Field(description="the reporting currency of every amount")
    as_of: Timestamp = Field(description="event time of the evaluation")


class StatusChangeEvent(_Message):
    """A status change of one rule of one exchange: a CloudEvent 1.0, structured JSON.

    Every change goes to ``reserve.alerts``; changes into or out of ``breach``
    also go to ``reserve.breaches``. The first evaluation of a rule counts as a
    change from ``unknown``.
    """

    specversion: Literal["1.0"]
    id: str = Field(
        min_length=1,
        description="deterministic: the same change re-emitted after a restart has the same id",
    )
    source: str = Field(pattern=r"^reserve-monitor/.+$", description="reserve-monitor/<app id>")
    type: Literal["reserve.status.changed"]
    subject: str = Field(pattern=r"^[^/]+/[^/]+$", description="<exchange>/<rule>")
    time: Timestamp = Field(description="the event time of the evaluation that found the change")
    datacontenttype: Literal["application/json"]
    data: StatusChangeData

    @model_validator(mode="after")
    def _subject_names_the_rule(self) -> StatusChangeEvent:
        if self.subject != f"{self.data.exchange}/{self.data.rule}":
            raise ValueError("subject must be <data.exchange>/<data.rule>")
        return self


class RuleThresholds(_Message):
    """The levels a rule's ratio is judged against."""

    breach_below: DecimalText = Field(description="a ratio under this is a breach")
    warning_below: DecimalText = Field(description="a ratio under this is a warning")
    hysteresis: DecimalText = Field(
        description="how far past a level the ratio must come back before the status clears"
    )


class RuleReportDocument(_Standing):
    """One rule in an adequacy report."""

    rule: RuleId
    thresholds: RuleThresholds | None = None


class TradingVolumeDocument(_Message):
    """Rolling trading volume of the exchange, in the reporting currency."""

    window: str = Field(pattern=r"^[0-9]+[smhd]$", description='the rolling window, e.g. "30d"')
    amount: DecimalText


class AdequacyReportDocument(_Message):
    """The latest adequacy of one exchange on every rule it is judged by.

    Published on the compacted ``reserve.adequacy`` whenever it changed, and
    served by the worker on ``GET /status``.
    """

    exchange: ExchangeId
    as_of: Timestamp
    currency: Symbol
    status: Status = Field(
        description="the worst status of its rules: breach, unknown, warning, ok"
    )
    trading_volume: TradingVolumeDocument
    feeds: dict[str, Timestamp] = Field(description="newest event time seen per input feed")
    rules: list[RuleReportDocument]


class DeadLetterRecord(_Message):
    """A rejected input message with its original bytes and the reason (contract section 5)."""

    topic: str = Field(min_length=1, description="the topic the message was read from")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key_b64: Base64 | None = Field(description="the original key, base64; null if it had none")
    value_b64: Base64 | None = Field(description="the original value, base64")
    error: str = Field(min_length=1, description='why it was rejected, "<field>: <message>"')
    received_at: Timestamp
