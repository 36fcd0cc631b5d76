"""Faust's own ceiling: a bare Faust worker that only acknowledges each record.

The baseline the monitor's worker left Faust for (issue #11). Faust is not a
dependency of the product: ``bench/run.py`` runs this, as a subprocess on the
same pre-filled input topics as the monitor worker, only when ``faust``
imports (the optional extra: ``pip install -e '.[faust]'``). Its agents do
nothing with a record but acknowledge it, so the rate it prints is what
Faust's per-record path (fetch, conductor, stream, ack, commit) allows on this
machine: the bound a Faust worker cannot pass, whatever it does per record.

Environment: ``CEILING_BROKER`` (host:port), ``CEILING_PREFIX`` (the topic
prefix), ``CEILING_EVENTS`` (how many records to drain), ``CEILING_PARTITIONS``.
Prints one line, ``events/s <rate>``, and exits once all are drained.
"""

from __future__ import annotations

import os
import time
import uuid

import faust

INPUTS = ("exchange.trades", "exchange.wallet-balances", "exchange.ledger", "market.prices")

app = faust.App(
    f"bench-ceiling-{uuid.uuid4().hex[:8]}",
    broker=f"kafka://{os.environ['CEILING_BROKER']}",
    store="memory://",
    web_enabled=False,
    topic_partitions=int(os.environ.get("CEILING_PARTITIONS", "4")),
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
)
_expected = int(os.environ["CEILING_EVENTS"])
_drained = {"count": 0, "first": 0.0}


def _count() -> None:
    if not _drained["count"]:
        _drained["first"] = time.perf_counter()
    _drained["count"] += 1
    if _drained["count"] == _expected:
        elapsed = time.perf_counter() - _drained["first"]
        print(f"events/s {_expected / elapsed:.0f}", flush=True)
        os._exit(0)  # the measurement is made: no orderly shutdown to wait for


def _agent(topic: str) -> None:
    channel = app.topic(os.environ["CEILING_PREFIX"] + topic, key_type=bytes, value_type=bytes)

    async def consume(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.noack().events():  # type: ignore[attr-defined]
            event.ack()
            _count()

    app.agent(channel, name=f"ceiling-{topic}")(consume)


for _topic in INPUTS:
    _agent(_topic)

if __name__ == "__main__":
    app.main()
