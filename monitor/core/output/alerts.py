"""Status changes as CloudEvents 1.0 (contract section 4)."""

from __future__ import annotations

from typing import Any

from monitor.core.changes import StatusChange
from monitor.core.money import optional_text, ratio_text, rfc3339

CLOUDEVENT_TYPE = "reserve.status.changed"
CONTENT_TYPE = "application/cloudevents+json"


def cloud_event(change: StatusChange, *, app_id: str, currency: str) -> dict[str, Any]:
    """The structured-mode CloudEvent of one status change.

    ``time`` is the ``as_of`` of the change: the moment of the exchange's own
    event time it was judged at, so a replay yields the same bytes as a live run.
    """
    a = change.assessment
    text = optional_text
    return {
        "specversion": "1.0",
        "id": change.id,
        "source": f"reserve-monitor/{app_id}",
        "type": CLOUDEVENT_TYPE,
        "subject": f"{change.exchange}/{change.rule}",
        "time": rfc3339(change.as_of),
        "datacontenttype": "application/json",
        "data": {
            "exchange": change.exchange,
            "rule": change.rule,
            "status": change.status.value,
            "previous_status": change.previous.value,
            "ratio": text(a.ratio, ratio_text),
            "required": text(a.required),
            "available": text(a.available),
            "shortfall": text(a.shortfall),
            "currency": currency,
            "as_of": rfc3339(change.as_of),
            "reason": a.reason,
            "evidence": a.evidence,
        },
    }
