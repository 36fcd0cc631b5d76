"""The Faust app: a thin adapter from Kafka records to the engine and back.

Per input record: decode (bad bytes go to the dead-letter topic), apply to the
engine with its append time, journal the state it changed into a
changelog-backed table, publish the status changes of the moments it closed as
CloudEvents, count the outcome. A short timer judges the exchanges whose input
has gone quiet (CONTRACT section 8); a slower one brings in the prices other
workers consumed, publishes the adequacy reports of the exchanges judged and
refreshes the gauges.

State recovery is Faust's: every journal write goes to the ``state`` table's
changelog, on the partition of the exchange it belongs to, and after each
rebalance the engine is rebuilt from the recovered table, keeping only the
exchanges of the partitions this worker now owns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.types import EventT, Message
from prometheus_client import CollectorRegistry, generate_latest

from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine, Outcome, StatusChange, Step
from monitor.core.events import Topic, from_document
from monitor.core.output.alerts import CONTENT_TYPE, cloud_event
from monitor.core.output.report import adequacy_report, feed_times
from monitor.core.output.signing import load_signer
from monitor.core.policy import Policy
from monitor.settings import Settings
from monitor.worker import health as worker_health
from monitor.worker import metrics as worker_metrics
from monitor.worker.connection import aiokafka_security, broker_credentials
from monitor.worker.continuity import Continuity, read_again
from monitor.worker.deadletter import DEADLETTER_MAX_BYTES, deadletter_record
from monitor.worker.intake import take
from monitor.worker.journal import Journal, kind_and_owner, outbox_key

log = logging.getLogger(__name__)

ALERTS = "reserve.alerts"
BREACHES = "reserve.breaches"
ADEQUACY = "reserve.adequacy"
DEADLETTER = "reserve.deadletter"
OUTPUT_TOPICS = (ALERTS, BREACHES, ADEQUACY, DEADLETTER)
_METRICS_TYPE = "text/plain; version=0.0.4"
_CLOUDEVENT_HEADERS = {"content-type": CONTENT_TYPE.encode()}
# how long the worker waits for records Faust skipped, read again from the broker
READ_AGAIN_SECONDS = 30.0


class _Acknowledgement:
    """A record read outside Faust's streams, acknowledged to Faust's consumer as one of its own."""

    def __init__(self, consumer: Any, message: Message) -> None:
        self.consumer, self.message = consumer, message

    def ack(self) -> bool:
        return bool(self.consumer.ack(self.message))


class Monitor:
    """One worker: the Faust app, the engine it drives and the metrics it keeps."""

    def __init__(
        self, settings: Settings, policy: Policy, registry: CollectorRegistry | None = None
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.registry = registry or CollectorRegistry()
        self.metrics = worker_metrics.create(self.registry)
        # each record's series, looked up once: per topic, its evaluation timing, its
        # event lag and its outcome counters
        self.intake_metrics = {
            topic: (
                self.metrics.evaluation.labels(topic.value),
                self.metrics.event_lag.labels(topic.value),
                {
                    outcome: self.metrics.events.labels(topic.value, outcome.value)
                    for outcome in Outcome
                },
            )
            for topic in Topic
        }
        self.engine = self._new_engine()
        self.clock = WatermarkClock()
        # status changes of moments judged as records were taken, published at the next
        # commit; and the append time of the newest record, with when it was taken
        self.carried: list[StatusChange] = []
        self.last_append: tuple[datetime, float] | None = None
        self.dirty: set[str] = set()
        # journal writes not yet sent to a changelog: key -> value (None deletes)
        self.pending: dict[str, dict[str, Any] | None] = {}
        # input records taken since the last durable flush: acknowledged (so their
        # offsets may be committed) only once the state they produced is in Kafka
        self.unacked: list[EventT[bytes] | _Acknowledgement] = []
        # one journal flush at a time, and none while the engine is rebuilt: two
        # interleaved flushes could write a key's older value after its newer one
        self.journal_lock = asyncio.Lock()
        self.continuity = Continuity()
        self.last_tick = 0.0
        # events dated further ahead of the wall clock are refused (monitor.worker.intake)
        self.max_ahead = timedelta(seconds=settings.max_future_seconds)
        # Unix time of the newest fetch answer the consumer has had, kept across
        # rebalances (aiokafka forgets it with the partitions it reassigns)
        self.last_fetch: float | None = None
        self.signer = load_signer(settings.signing_key) if settings.signing_key else None
        self.app = self._create_app()

    # -- the Faust app -----------------------------------------------------------

    def _create_app(self) -> faust.App:
        s = self.settings
        app = faust.App(
            s.app_id,
            broker=s.broker_url,
            broker_credentials=broker_credentials(s),
            store="memory://",
            autodiscover=False,
            topic_partitions=s.partitions,
            topic_replication_factor=1,
            consumer_auto_offset_reset="earliest",
            web_enabled=True,
            web_port=s.web_port,
            web_bind=s.web_host,
            web_host=s.web_host,
            # Faust's own pages would serve the state tables' entries by key and its
            # statistics to anyone who reaches the port: only the monitor's pages are on
            web_tables_enabled=False,
            web_router_enabled=False,
            web_stats_enabled=False,
            web_graph_enabled=False,
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
        schema: faust.Schema[Any, Any] = faust.Schema(
            key_serializer="json", value_serializer="json"
        )
        self.state = app.Table("state", default=None, partitions=s.partitions, schema=schema)
        # recovery_buffer_size=1: a global table otherwise holds other workers' live
        # writes in a 1000-event buffer until the next rebalance (faust-streaming#283)
        self.prices = app.GlobalTable(
            "prices",
            default=None,
            partitions=s.partitions,
            schema=schema,
            recovery_buffer_size=1,
        )
        self.journal = Journal(self.state, self.prices, s.partitions)
        for topic in Topic:
            self._agent(app, topic, app.topic(s.topic(topic.value), **raw))
        self.state.on_recover(self._rebuild)
        # A journal flush sends one changelog record per key changed since the last,
        # hundreds at a time under load; Faust's producer buffer (100 records, no
        # setting) would pause the streams and warn on every flush.
        app.producer.buffer.max_messages = 10_000
        app.timer(interval=s.settle_seconds)(self._settle)
        app.timer(interval=s.tick_seconds)(self._tick)
        # Faust types a page as a View class or a function of (view, request); a bound
        # method of (self, request) is called the same way
        app.page("/metrics")(self._metrics_view)  # type: ignore[arg-type]
        app.page("/status")(self._status_view)  # type: ignore[arg-type]
        app.page("/healthz")(self._health_view)  # type: ignore[arg-type]
        app.page("/livez")(self._liveness_view)  # type: ignore[arg-type]
        return app

    def _agent(self, app: faust.App, topic: Topic, channel: faust.TopicT) -> None:
        async def consume(stream: faust.StreamT[bytes]) -> None:
            # acks are ours: a record is acknowledged once its state is in Kafka (_persist)
            async for event in stream.noack().events():  # type: ignore[attr-defined]
                await self.handle(topic, event)

        consume.__qualname__ = consume.__name__ = "on_" + topic.name.lower()
        app.agent(channel, name=f"{topic.value}-agent")(consume)

    # -- per record ---------------------------------------------------------------

    async def handle(self, topic: Topic, event: EventT[bytes]) -> None:
        """Apply one input record; never raises, whatever its bytes."""
        message = event.message
        skipped = self.continuity.skipped(message.tp, message.offset)
        if skipped is not None:
            await self._take_skipped(topic, message, skipped)
        self.unacked.append(event)
        await self._take_record(topic, message)

    async def _take_record(self, topic: Topic, message: Message) -> None:
        timing, lag, outcomes = self.intake_metrics[topic]
        wall_now = time.time()
        appended = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else None
        if appended is not None:
            self.last_append = (appended, time.monotonic())
        started = time.perf_counter()
        verdict = take(
            self.engine,
            self.clock,
            topic,
            message.key,
            message.value,
            time.monotonic(),
            wall_now=datetime.fromtimestamp(wall_now, UTC),
            max_ahead=self.max_ahead,
            appended=appended,
        )
        timing.observe(time.perf_counter() - started)
        if verdict.step is None or verdict.event_time is None:
            await self._reject(topic, message, verdict.error or "rejected")
            return
        outcomes[verdict.outcome].inc()
        lag.observe(max(0.0, wall_now - verdict.event_time.timestamp()))
        self.pending.update(verdict.step.writes)
        self.carried.extend(verdict.step.changes)
        self.dirty.update(verdict.step.evaluated)
        self.metrics.moments.inc(len(verdict.step.evaluated))

    async def _take_skipped(self, topic: Topic, message: Message, first: int) -> None:
        """Take the records Faust skipped before ``message``, read from the broker directly.

        Each is acknowledged, like any record, once its state is in the changelog,
        so the partition's committed offset passes them only then.
        """
        log.warning(
            "%s[%d]: offsets %d to %d were not delivered; reading them again",
            message.topic,
            message.partition,
            first,
            message.offset - 1,
        )
        client = {"bootstrap_servers": self.settings.kafka_bootstrap_servers}
        client.update(aiokafka_security(self.settings))
        try:
            records = await asyncio.wait_for(
                read_again(client, message.topic, message.partition, first, message.offset),
                timeout=READ_AGAIN_SECONDS,
            )
        except Exception:  # the record stays unacknowledged: Faust commits no further
            log.exception("could not read %s[%d] again", message.topic, message.partition)
            return
        for record in records:
            skipped = Message(
                record.topic,
                record.partition,
                record.offset,
                record.timestamp / 1000,
                record.timestamp_type,
                list(record.headers),
                record.key,
                record.value,
                None,
                tp=message.tp,
            )
            self.unacked.append(_Acknowledgement(self.app.consumer, skipped))
            await self._take_record(topic, skipped)

    async def _reject(self, topic: Topic, message: Message, error: str) -> None:
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
        """Journal the step's writes durably and publish its status changes.

        A change is published only once the state that made it is in the changelog,
        with the alert itself beside it (an outbox entry): a crash before the alert is
        delivered leaves the entry, and the next owner of the exchange publishes it
        again, the same bytes under the same id (:meth:`_resend_outbox`). Without
        that, the state journalled so far would re-derive the change differently
        (a settle batches differently after a restart), under another id.

        The settle and the tick timers both commit; the lock keeps their flushes
        apart, so each key's values reach its changelog in the order they were made.
        """
        async with self.journal_lock:
            await self._commit_locked(step)

    async def _commit_locked(self, step: Step) -> None:
        self.pending.update(step.writes)
        self.dirty.update(step.evaluated)
        self.metrics.moments.inc(len(step.evaluated))
        changes, self.carried = [*self.carried, *step.changes], []
        outbox = [(outbox_key(change), self._alert(change)) for change in changes]
        self.pending.update(outbox)
        await self._persist()
        if not outbox:
            return
        for (_, alert), change in zip(outbox, changes, strict=True):
            await self._publish(alert)
            self._count(change)
        await self.app.producer.flush()
        self.pending.update((key, None) for key, _ in outbox)

    async def _persist(self) -> None:
        """Write the buffered journal to the changelogs, then acknowledge its input.

        Per exchange, one record first carries every entry of this flush (the
        exchange's ``flush`` entry, rewritten each time), then each entry goes under
        its own key. Kafka keeps the order within a partition, and all of an
        exchange's entries share one, so a crash in the middle leaves either none of
        the flush or its whole ``flush`` record, which :meth:`_rebuild` applies last.
        The input records taken before are acknowledged only once all of it is
        delivered, so Faust commits no offset ahead of the state it produced; after
        a crash they are consumed again (their ids make repeats duplicates).
        """
        pending, self.pending = self.pending, {}
        taken, self.unacked = self.unacked, []
        if pending:
            await self.journal.write(self.app.producer, pending)
        for event in taken:
            event.ack()

    def _alert(self, change: StatusChange) -> dict[str, Any]:
        """The record of ``change`` on the alert topics (kept in the outbox until sent)."""
        event = cloud_event(
            change, app_id=self.settings.app_id, currency=self.policy.reporting_currency
        )
        body = json.dumps(self.signer.sign(event) if self.signer else event)
        return {
            "exchange": change.exchange,
            "rule": change.rule,
            "sequence": change.sequence,
            "body": body,
            "breach": change.touches_breach,
        }

    async def _publish(self, alert: dict[str, Any]) -> None:
        key, body = alert["exchange"].encode(), alert["body"].encode()
        await self.outputs[ALERTS].send(key=key, value=body, headers=_CLOUDEVENT_HEADERS)
        if alert["breach"]:
            await self.outputs[BREACHES].send(key=key, value=body, headers=_CLOUDEVENT_HEADERS)

    def _count(self, change: StatusChange) -> None:
        self.metrics.alerts.labels(change.rule, change.status.value).inc()
        log.info(
            "%s/%s %s -> %s: %s",
            change.exchange,
            change.rule,
            change.previous.value,
            change.status.value,
            change.assessment.reason,
        )

    async def _resend_outbox(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish the alerts a crash left undelivered, then drop them from the outbox."""
        # in the order they were made: the changes of one rule follow each other
        for _, alert in sorted(entries, key=lambda e: (e[1]["rule"], e[1]["sequence"])):
            await self._publish(alert)
        if entries:
            await self.app.producer.flush()
            self.pending.update((key, None) for key, _ in entries)
            log.info("re-sent %d alerts left in the outbox", len(entries))

    # -- time passing ---------------------------------------------------------------

    def _new_engine(self) -> Engine:
        s = self.settings
        return Engine(
            self.policy,
            max_idle=timedelta(seconds=s.max_idle_seconds),
            price_history=timedelta(seconds=s.price_history_seconds),
        )

    async def _settle(self) -> None:
        """Judge the exchanges whose input has gone quiet, and publish what was judged.

        Append time goes on, between records, by the worker's own clock since it took
        the newest one: a live feed that stops has its last moment judged after
        ``RESERVE_MONITOR_MAX_IDLE_SECONDS``, as a backlog's gap would.
        """
        step = Step()
        if self.last_append is not None:
            appended, taken_at = self.last_append
            now = appended + timedelta(seconds=time.monotonic() - taken_at)
            with self.metrics.evaluation.labels(worker_metrics.SETTLE).time():
                step = self.engine.idle(now)
        await self._commit(step)

    async def _tick(self) -> None:
        self.last_tick = time.monotonic()
        with self.metrics.evaluation.labels(worker_metrics.TICK).time():
            step = self._sync_prices()
        if step.changes or step.writes:
            await self._commit(step)
        await self._publish_reports()

    def _sync_prices(self) -> Step:
        """Take the prices other workers consumed (they arrive through the global table)."""
        step = Step()
        for key, document in list(self.prices.data.items()):
            held = self.engine.prices.latest(kind_and_owner(key)[1])
            if held is not None and held.event_id == document.get("event_id"):
                continue
            price = from_document(Topic.PRICES, document)
            taken = self.engine.take(price)
            step.changes.extend(taken.changes)
            step.writes.extend(taken.writes)
            step.evaluated.extend(taken.evaluated)
        return step

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
        # then every owned exchange's feed ages at the worker's clock, silent ones included
        # (a report gives them at the exchange's own clock, which stops with its records)
        now = self.clock.now(time.monotonic())
        if now is not None:
            for name, state in self.engine.exchanges.items():
                self.metrics.record_feed_ages(name, feed_times(state), now)

    # -- recovery -----------------------------------------------------------------

    async def _rebuild(self) -> None:
        """Rebuild the engine from the recovered tables, for the partitions owned now.

        What was taken since the last flush is dropped, unacknowledged: after a
        rebalance Faust seeks every partition to its committed offset, so those
        records come again, to this worker or to the new owner of their exchange.
        A flush under way is let finish first: the tables hold all of it then.
        """
        async with self.journal_lock:
            await self._rebuild_locked()

    async def _rebuild_locked(self) -> None:
        self.pending, self.unacked = {}, []
        self.continuity.forget()
        owned = {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.state.changelog_topic.get_topic_name()
        }
        self.carried = []
        engine = self._new_engine()
        for key, document in self.journal.recovered_prices():
            engine.restore(key, document)
        entries, outbox = self.journal.recovered(owned)
        for key, document in entries:
            engine.restore(key, document)
        self.engine = engine
        self.metrics.retain_exchanges(engine.exchanges)
        if engine.clock is not None:  # time goes on from the newest event recovered
            self.clock.observe(engine.clock, time.monotonic())
        self.dirty = set(engine.exchanges)
        log.info(
            "state rebuilt: %d entries, %d exchanges, partitions %s",
            len(entries) + len(outbox),
            len(engine.exchanges),
            sorted(owned),
        )
        await self._resend_outbox(outbox)

    # -- web ----------------------------------------------------------------------

    async def _metrics_view(self, request: Any) -> Any:
        inputs = {self.settings.topic(topic.value): topic.value for topic in Topic}
        self.metrics.record_consumer_lag(worker_metrics.consumer_lag(self.app.consumer, inputs))
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
        health = self.health()
        return self.app.web.json(health.to_document(), status=health.http_status)

    async def _liveness_view(self, request: Any) -> Any:
        since_tick, tick_limit = self._tick_silence()
        alive = worker_health.liveness(since_tick=since_tick, tick_limit=tick_limit)
        return self.app.web.json(alive.to_document(), status=alive.http_status)

    def _tick_silence(self) -> tuple[float | None, float]:
        """How long the timer has been silent (None before its first run), and its limit."""
        since = time.monotonic() - self.last_tick if self.last_tick else None
        return since, worker_health.tick_silence_limit(self.settings.tick_seconds)

    def health(self) -> worker_health.Health:
        """Whether this worker consumes now (see :mod:`monitor.worker.health`)."""
        consumer = worker_health.aiokafka_consumer(self.app.consumer)
        fetched = worker_health.newest_fetch(consumer) if consumer is not None else None
        if fetched is not None and (self.last_fetch is None or fetched > self.last_fetch):
            self.last_fetch = fetched
        since_tick, tick_limit = self._tick_silence()
        return worker_health.assess(
            since_tick=since_tick,
            tick_limit=tick_limit,
            rebalancing=self.app.rebalancing,
            since_fetch=time.time() - self.last_fetch if self.last_fetch is not None else None,
            # the group gives up on a member silent this long; so does the health check
            fetch_limit=self.settings.session_timeout_seconds,
        )


def create_app(
    settings: Settings, policy: Policy, registry: CollectorRegistry | None = None
) -> Monitor:
    """A fresh worker for ``settings`` (a factory: no module-level app)."""
    return Monitor(settings, policy, registry)
