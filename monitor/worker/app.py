"""The Faust app: a thin adapter from Kafka records to the engine and back.

Per input record: decode (bad bytes go to the dead-letter topic), apply to the
engine, journal the state it changed into a changelog-backed table, publish
each status change as a CloudEvent, count the outcome. A timer lets time pass
(windows, stale feeds), publishes the adequacy reports of the exchanges that
changed, refreshes the gauges and brings in prices other workers consumed.

State recovery is Faust's: every journal write goes to the ``state`` table's
changelog, on the partition of the exchange it belongs to, and after each
rebalance the engine is rebuilt from the recovered table, keeping only the
exchanges of the partitions this worker now owns.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.types import EventT
from prometheus_client import CollectorRegistry, generate_latest

from monitor.core.alerts import CONTENT_TYPE, cloud_event
from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine, Outcome, StatusChange, Step
from monitor.core.events import Topic
from monitor.core.policy import Policy
from monitor.core.report import adequacy_report
from monitor.settings import Settings
from monitor.worker import metrics as worker_metrics
from monitor.worker.deadletter import DEADLETTER_MAX_BYTES, deadletter_record
from monitor.worker.intake import take

log = logging.getLogger(__name__)

ALERTS = "reserve.alerts"
BREACHES = "reserve.breaches"
ADEQUACY = "reserve.adequacy"
DEADLETTER = "reserve.deadletter"
OUTPUT_TOPICS = (ALERTS, BREACHES, ADEQUACY, DEADLETTER)
_METRICS_TYPE = "text/plain; version=0.0.4"
_CLOUDEVENT_HEADERS = {"content-type": CONTENT_TYPE.encode()}


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as the Java client)."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


class Monitor:
    """One worker: the Faust app, the engine it drives and the metrics it keeps."""

    def __init__(
        self, settings: Settings, policy: Policy, registry: CollectorRegistry | None = None
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.registry = registry or CollectorRegistry()
        self.metrics = worker_metrics.create(self.registry)
        self.engine = Engine(policy)
        self.clock = WatermarkClock()
        self.dirty: set[str] = set()
        self.last_tick = 0.0
        self.app = self._create_app()

    # -- the Faust app -----------------------------------------------------------

    def _create_app(self) -> faust.App:
        s = self.settings
        app = faust.App(
            s.app_id,
            broker=s.broker_url,
            store="memory://",
            autodiscover=False,
            topic_partitions=s.partitions,
            topic_replication_factor=1,
            consumer_auto_offset_reset="earliest",
            web_enabled=True,
            web_port=s.web_port,
            web_bind=s.web_host,
            web_host=s.web_host,
            producer_acks=-1,
            # a dead letter carries a rejected message's bytes in base64: up to 4/3 its size
            producer_max_request_size=DEADLETTER_MAX_BYTES,
            broker_session_timeout=s.session_timeout_seconds,
            broker_heartbeat_interval=min(3.0, s.session_timeout_seconds / 3),
            key_serializer="raw",
            value_serializer="raw",
        )
        raw: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
            "partitions": s.partitions,
        }
        self.outputs = {name: app.topic(s.topic(name), **raw) for name in OUTPUT_TOPICS}
        # journal keys are JSON-list strings, values JSON documents (see Engine.restore)
        journal = faust.Schema(key_serializer="json", value_serializer="json")
        self.state = app.Table("state", default=None, partitions=s.partitions, schema=journal)
        # recovery_buffer_size=1: a global table otherwise holds other workers' live
        # writes in a 1000-event buffer until the next rebalance (faust-streaming#283)
        self.prices = app.GlobalTable(
            "prices",
            default=None,
            partitions=s.partitions,
            schema=journal,
            recovery_buffer_size=1,
        )
        for topic in Topic:
            self._agent(app, topic, app.topic(s.topic(topic.value), **raw))
        self.state.on_recover(self._rebuild)
        app.timer(interval=s.tick_seconds)(self._tick)
        app.page("/metrics")(self._metrics_view)
        app.page("/status")(self._status_view)
        app.page("/healthz")(self._health_view)
        return app

    def _agent(self, app: faust.App, topic: Topic, channel: faust.TopicT) -> None:
        async def consume(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                await self.handle(topic, event)

        consume.__qualname__ = consume.__name__ = "on_" + topic.name.lower()
        app.agent(channel, name=f"{topic.value}-agent")(consume)

    # -- per record ---------------------------------------------------------------

    async def handle(self, topic: Topic, event: EventT) -> None:
        """Apply one input record; never raises, whatever its bytes."""
        message = event.message
        verdict = take(self.engine, self.clock, topic, message.key, message.value, time.monotonic())
        if verdict.step is None or verdict.event_time is None:
            await self._reject(topic, event, verdict.error or "rejected")
            return
        self.metrics.events.labels(topic.value, verdict.outcome.value).inc()
        lag = (datetime.now(UTC) - verdict.event_time).total_seconds()
        self.metrics.event_lag.labels(topic.value).observe(max(0.0, lag))
        await self._commit(verdict.step)

    async def _reject(self, topic: Topic, event: EventT, error: str) -> None:
        message = event.message
        self.metrics.events.labels(topic.value, Outcome.INVALID.value).inc()
        self.metrics.deadletters.labels(topic.value).inc()
        record = deadletter_record(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            error=error,
            received_at=datetime.now(UTC),
        )
        await self.outputs[DEADLETTER].send(key=message.key, value=record)

    async def _commit(self, step: Step) -> None:
        """Publish the step's status changes, then journal its writes.

        In this order a crash is far likelier to leave an alert without its journal
        (the input is consumed again and re-emits it, with the same id) than a
        journal without its alert (the input would then be a duplicate: the change lost).
        """
        for change in step.changes:
            await self._publish(change)
        self._journal(step.writes)
        self.dirty.update(step.evaluated)

    def _journal(self, writes: Iterable[tuple[str, dict[str, Any] | None]]) -> None:
        n = self.settings.partitions
        for key, value in writes:
            kind, owner = json.loads(key)[:2]
            table = self.prices if kind == "price" else self.state
            if value is None:
                table.data.pop(key, None)
            else:
                table.data[key] = value
            table.send_changelog(partition_of(owner, n), key, value)

    async def _publish(self, change: StatusChange) -> None:
        body = json.dumps(
            cloud_event(
                change, app_id=self.settings.app_id, currency=self.policy.reporting_currency
            )
        ).encode()
        key = change.exchange.encode()
        await self.outputs[ALERTS].send(key=key, value=body, headers=_CLOUDEVENT_HEADERS)
        if change.touches_breach:
            await self.outputs[BREACHES].send(key=key, value=body, headers=_CLOUDEVENT_HEADERS)
        self.metrics.alerts.labels(change.rule, change.status.value).inc()
        log.info(
            "%s/%s %s -> %s: %s",
            change.exchange,
            change.rule,
            change.previous.value,
            change.status.value,
            change.assessment.reason,
        )

    # -- time passing ---------------------------------------------------------------

    async def _tick(self) -> None:
        self.last_tick = time.monotonic()
        await self._sync_prices()
        now = self.clock.now(time.monotonic())
        if now is not None:
            await self._commit(self.engine.tick(now))
        await self._publish_reports()

    async def _sync_prices(self) -> None:
        """Bring in prices other workers consumed (they arrive through the global table)."""
        for key, document in list(self.prices.data.items()):
            held = self.engine.valuer.latest.get(json.loads(key)[1])
            if held is not None and held.event_id == document.get("event_id"):
                continue
            self.engine.restore(key, document)

    async def _publish_reports(self) -> None:
        dirty, self.dirty = self.dirty, set()
        for exchange in sorted(dirty):
            if exchange not in self.engine.exchanges:
                continue
            report = adequacy_report(self.engine, exchange)
            self.metrics.record_report(report)
            await self.outputs[ADEQUACY].send(
                key=exchange.encode(), value=json.dumps(report.to_document()).encode()
            )

    # -- recovery -----------------------------------------------------------------

    async def _rebuild(self) -> None:
        """Rebuild the engine from the recovered tables, for the partitions owned now."""
        owned = {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.state.changelog_topic.get_topic_name()
        }
        n = self.settings.partitions
        engine = Engine(self.policy)
        for key, document in list(self.prices.data.items()):
            engine.restore(key, document)
        kept = 0
        for key, document in list(self.state.data.items()):
            if document is not None and partition_of(json.loads(key)[1], n) in owned:
                engine.restore(key, document)
                kept += 1
        self.engine = engine
        if engine.clock is not None:  # time goes on from the newest event recovered
            self.clock.observe(engine.clock, time.monotonic())
        self.dirty = set(engine.exchanges)
        log.info(
            "state rebuilt: %d entries, %d exchanges, partitions %s",
            kept,
            len(engine.exchanges),
            sorted(owned),
        )

    # -- web ----------------------------------------------------------------------

    async def _metrics_view(self, request: Any) -> Any:
        # aiohttp takes the charset apart from the content type
        return self.app.web.bytes(generate_latest(self.registry), content_type=_METRICS_TYPE)

    async def _status_view(self, request: Any) -> Any:
        reports = (
            [adequacy_report(self.engine, ex).to_document() for ex in sorted(self.engine.exchanges)]
            if self.engine.clock
            else []
        )
        return self.app.web.json({"app_id": self.settings.app_id, "exchanges": reports})

    async def _health_view(self, request: Any) -> Any:
        healthy = (
            self.last_tick > 0
            and time.monotonic() - self.last_tick < max(10.0, 5 * self.settings.tick_seconds)
            and not self.app.rebalancing
        )
        return self.app.web.json({"healthy": healthy}, status=200 if healthy else 503)


def create_app(
    settings: Settings, policy: Policy, registry: CollectorRegistry | None = None
) -> Monitor:
    """A fresh worker for ``settings`` (a factory: no module-level app)."""
    return Monitor(settings, policy, registry)
