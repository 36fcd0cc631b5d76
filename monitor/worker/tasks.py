"""A task: one partition number of the input topics, its engine, its state and its outputs.

Kafka Streams' ``StreamTask``. Task ``n`` owns partition ``n`` of each input
topic keyed by exchange, so the exchanges that hash to ``n``. It holds:

- a :class:`~monitor.worker.alignment.PartitionGroup` over those partitions
  and every partition of ``market.prices``, which hands out records in append
  order (CONTRACT section 8);
- an :class:`~monitor.core.engine.Engine` of its own, with its own versioned
  price table, fed every price record at its place in that order;
- a :class:`~monitor.worker.output.Collector`, which commits what the task
  produced, its changelog writes and its input offsets in one transaction.

A price record is read by every task of every worker; the task whose number
is the price's partition modulo the task count accounts for it (its outcome in
the metrics, its dead letter), so each is counted once.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition

from monitor.core.changes import StatusChange, Step
from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine, Outcome
from monitor.core.events import Event, Price, Topic
from monitor.core.output.alerts import CONTENT_TYPE, cloud_event
from monitor.core.output.report import adequacy_report
from monitor.core.output.signing import Signer
from monitor.worker import intake
from monitor.worker.alignment import PartitionGroup
from monitor.worker.changelog import Restored
from monitor.worker.deadletter import deadletter_record
from monitor.worker.metrics import SETTLE, MonitorMetrics
from monitor.worker.output import Collector
from monitor.worker.prices import PriceLog, PriceRecord

log = logging.getLogger(__name__)

# records taken out of append order are counted at once, and logged at most this often
OUT_OF_ORDER_LOG_SECONDS = 10.0
# a task kept waiting this long for a partition's committed records says so, and again as
# often while it waits (a partition whose leader is away holds its task back until it is back)
WAIT_LOG_SECONDS = 30.0

_CLOUDEVENT_HEADERS = [("content-type", CONTENT_TYPE.encode())]
# one record in this many has its evaluation timed (reserve_monitor_evaluation_seconds):
# timing each would cost more than a tenth of the worker's time per record
TIMED_EVERY = 16


class InputRecord:
    """A record of an input topic as fetched, its event decoded with the rest of its fetch.

    A fetch's records are decoded together, before the task takes any of them:
    decoding a run of records, then judging a run, keeps each step's code and
    data warm (as ``replay`` decodes a file's lines ahead of the engine).
    """

    __slots__ = ("event", "key", "offset", "timestamp", "value")

    def __init__(self, record: Any, topic: Topic) -> None:
        self.offset, self.timestamp = record.offset, record.timestamp
        self.key, self.value = record.key, record.value
        self.event = intake.decoded(topic, record.key, record.value)


@dataclass(frozen=True)
class Context:
    """What every task of a worker shares: names, settings, metrics and the clock."""

    app_id: str
    currency: str
    tasks: int  # the partition count of the input topics
    inputs: dict[str, Topic]  # full topic name -> input topic, in rank order
    prices_topic: str
    alerts: str
    breaches: str
    adequacy: str
    deadletter: str
    max_ahead: timedelta
    max_idle: timedelta
    price_history: timedelta
    report_every: float  # seconds between two adequacy reports of an exchange, at least
    metrics: MonitorMetrics
    clock: WatermarkClock  # the newest event time this worker applied, moved on by wall time
    signer: Signer | None
    engine: Callable[[], Engine]


class Task:
    """One task's records in, its changes, state and offsets out."""

    def __init__(self, number: int, context: Context, collector: Collector) -> None:
        self.number = number
        self.context = context
        self.collector = collector
        self.engine = context.engine()
        self.inputs = {
            TopicPartition(name, number): topic for name, topic in context.inputs.items()
        }
        self.group: PartitionGroup[TopicPartition, InputRecord | PriceRecord] = PartitionGroup(
            [], 0.0
        )
        self.dirty: set[str] = set()  # judged since their last report
        self._reports_due: deque[str] = deque()
        self._reported: dict[str, float] = {}  # when each exchange's last report fell due
        self._status_changed: set[str] = set()  # exchanges with a change since their report
        self.restore_seconds = 0.0
        m = context.metrics
        self._intake = {
            topic: (m.evaluation.labels(topic.value), m.event_lag.labels(topic.value))
            for topic in Topic
        }
        # outcomes and moments counted per record, added to the metrics per batch
        self._tally: Counter[tuple[Topic, Outcome]] = Counter()
        self._moments = 0
        self._records = 0
        self._out_of_order = 0  # of the group's, counted in the metric so far
        self._out_of_order_said = -OUT_OF_ORDER_LOG_SECONDS  # when a warning said so last
        self._wait_said = -WAIT_LOG_SECONDS  # when a warning last said what it waits for

    # -- starting ---------------------------------------------------------------------

    def restore(self, restored: Restored, prices: PriceLog) -> None:
        """Put back the state of the changelog, then line the price log up behind the inputs.

        The price records before the task's committed position are taken first, as
        history (no exchange is known yet, so nothing is judged); the engine's
        entries follow. The records from the position on wait in the partition
        group, merged with the input by append time.
        """
        started = time.perf_counter()
        position = {
            tp: restored.prices_position.get(tp.partition, prices.start[tp])
            for tp in prices.partitions
        }
        for tp, at in position.items():
            if at < prices.start[tp]:
                log.warning(
                    "task %d: its price position %s[%d]@%d is older than the price history "
                    "read (from %d): the prices between are not taken",
                    self.number,
                    tp.topic,
                    tp.partition,
                    at,
                    prices.start[tp],
                )
        history = sorted(
            (r for tp in prices.partitions for r in prices.before(tp, position[tp])),
            key=lambda r: (r.timestamp, r.partition, r.offset),
        )
        for record in history:
            if isinstance(record.event, Price):
                self.engine.take_at(record.event, record.timestamp / 1000)
        for key, document in restored.entries.items():
            self.engine.restore(key, document)
        self.collector.prices_position = {tp.partition: at for tp, at in position.items()}
        self.group = PartitionGroup(
            [*self.inputs, *prices.partitions], self.context.max_idle.total_seconds()
        )
        self._out_of_order = 0
        for tp, at in position.items():
            self.group.add(tp, prices.since(tp, at))
        self.dirty = set(self.engine.exchanges)
        self.restore_seconds = time.perf_counter() - started
        log.info(
            "task %d: restored %d changelog records (%d keys), %d exchanges, %d prices of "
            "history, in %.2f s",
            self.number,
            restored.records,
            len(restored.entries),
            len(self.engine.exchanges),
            len(history),
            self.restore_seconds,
        )

    # -- records ----------------------------------------------------------------------

    def add(self, tp: TopicPartition, records: list[Any]) -> None:
        """Records fetched from one of the task's input partitions, in offset order, decoded
        here; they wait in the partition group for their turn."""
        topic = self.inputs[tp]
        self.group.add(tp, [InputRecord(record, topic) for record in records])

    def process(self, now: float, budget: int) -> int:
        """Take buffered records in append order, up to ``budget``; how many were taken."""
        taken = 0
        group, inputs = self.group, self.inputs
        while taken < budget:
            item = group.next(now)
            if item is None:
                break
            tp, record = item
            if isinstance(record, PriceRecord):
                self._take_price(record)
            else:
                self._take_input(tp, inputs[tp], record)
            taken += 1
        self._count()
        return taken

    def _take_input(self, tp: TopicPartition, topic: Topic, record: InputRecord) -> None:
        self.collector.consumed(tp, record.offset)
        self._take(topic, tp.topic, tp.partition, record, record.event, accountable=True)

    def _take_price(self, record: PriceRecord) -> None:
        self.collector.price_taken(record.partition, record.offset)
        accountable = record.partition % self.context.tasks == self.number
        name = self.context.prices_topic
        self._take(Topic.PRICES, name, record.partition, record, record.event, accountable)

    def _take(
        self,
        topic: Topic,
        name: str,
        partition: int,
        record: Any,
        event: Event | str,
        accountable: bool,
    ) -> None:
        """Take one decoded record; an ``accountable`` task counts it and dead-letters it
        (a price record is taken by every task, accounted for by one)."""
        appended = record.timestamp / 1000
        c = self.context
        timed = accountable and self._timed()
        started = time.perf_counter() if timed else 0.0
        result = intake.admit(
            self.engine,
            c.clock,
            topic,
            event,
            time.monotonic(),
            wall_now=appended,
            max_ahead=c.max_ahead,
            appended=appended,
        )
        if not accountable:
            if not isinstance(result, str):
                self._apply(result)
            return
        timing, lag = self._intake[topic]
        if timed:
            timing.observe(time.perf_counter() - started)
        if isinstance(result, str):
            self._reject(topic, name, partition, record, result)
            return
        assert result.outcome is not None and not isinstance(event, str)
        self._tally[topic, result.outcome] += 1
        lag.observe(max(0.0, time.time() - event.ts.timestamp()))
        self._apply(result)

    def _timed(self) -> bool:
        """Whether this record's evaluation is timed: one in :data:`TIMED_EVERY`."""
        self._records += 1
        return self._records % TIMED_EVERY == 0

    def _count(self) -> None:
        """Add what was tallied to the counters (once per batch, not per record), as the
        transaction that carries its offsets commits: a record taken again after a failed
        commit is counted once."""
        events, count = self.context.metrics.events, self.collector.count
        for (topic, outcome), n in self._tally.items():
            count(events.labels(topic.value, outcome.value), n)
        self._tally.clear()
        if self._moments:
            count(self.context.metrics.moments, self._moments)
            self._moments = 0
        behind = self.group.out_of_order - self._out_of_order
        if behind:
            self._out_of_order = self.group.out_of_order
            count(self.context.metrics.out_of_order, behind)
            if time.monotonic() >= self._out_of_order_said + OUT_OF_ORDER_LOG_SECONDS:
                self._out_of_order_said = time.monotonic()
                log.warning(
                    "task %d: %d records taken after a record appended later since it "
                    "opened: a partition whose records no fetch brought yet (an upstream "
                    "transaction still open) was waited for longer than "
                    "RESERVE_MONITOR_MAX_IDLE_SECONDS, or a broker's clock runs ahead of the "
                    "worker's; the changes may differ from replay's",
                    self.number,
                    self.group.out_of_order,
                )

    def say_waits(self, now: float) -> None:
        """Warn of the task kept waiting ``WAIT_LOG_SECONDS`` (of ``now``, the loop's
        monotonic clock) for committed records no fetch brings, every ``WAIT_LOG_SECONDS``
        while it waits: nothing else says it takes nothing meanwhile, but its lag growing."""
        waited = self.group.waited(now)
        if waited < WAIT_LOG_SECONDS or now - self._wait_said < WAIT_LOG_SECONDS:
            return
        awaited = self.group.awaited()
        if awaited:
            self._wait_said = now
            log.warning(
                "task %d: waiting %.0f s for the committed records of %s, which no fetch has "
                "brought yet (is the partition's leader available?); the task takes nothing "
                "before them, so as to take every record in append order",
                self.number,
                waited,
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in awaited),
            )

    def _reject(self, topic: Topic, name: str, partition: int, record: Any, error: str) -> None:
        metrics = self.context.metrics
        self.collector.count(metrics.events.labels(topic.value, Outcome.INVALID.value))
        self.collector.count(metrics.deadletters.labels(topic.value))
        document = deadletter_record(
            topic=name,
            partition=partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            error=error,
            received_at=datetime.now(UTC),
        )
        self.collector.send(self.context.deadletter, record.key, document)

    def start_commit(self) -> None:
        """Send what the task produced and consumed since its last commit in one transaction,
        in the background (:meth:`Collector.start_commit`), with the engine's journal as it
        stands now: each key changed since then once, its latest document."""
        writes = self.engine.journal_writes()
        if writes:
            self.collector.write(writes)
        self.collector.start_commit()

    def _apply(self, step: Step) -> None:
        for change in step.changes:
            self._publish(change)
            self._status_changed.add(change.exchange)
        if step.evaluated:
            self.dirty.update(step.evaluated)
            self._moments += len(step.evaluated)

    def _publish(self, change: StatusChange) -> None:
        c = self.context
        event = cloud_event(change, app_id=c.app_id, currency=c.currency)
        body = json.dumps(c.signer.sign(event) if c.signer else event).encode()
        key = change.exchange.encode()
        self.collector.alert(c.alerts, key, body, _CLOUDEVENT_HEADERS)
        if change.touches_breach:
            self.collector.alert(c.breaches, key, body, _CLOUDEVENT_HEADERS)
        self.collector.count(c.metrics.alerts.labels(change.rule, change.status.value))
        log.info(
            "%s/%s %s -> %s: %s",
            change.exchange,
            change.rule,
            change.previous.value,
            change.status.value,
            change.assessment.reason,
        )

    # -- time passing -----------------------------------------------------------------

    def idle(self, now: datetime) -> None:
        """Append time has reached ``now`` with nothing left to read: judge the quiet."""
        with self.context.metrics.evaluation.labels(SETTLE).time():
            step = self.engine.idle(now)
        self._apply(step)
        self._count()

    def silence(self, now: float, after: float) -> None:
        """With nothing left to read at wall time ``now`` (seconds): each exchange with
        nothing appended for more than ``after`` seconds has the rules whose feeds would by
        now be too old turned ``unknown`` (CONTRACT section 8, outside the guarantee)."""
        for name, state in self.engine.exchanges.items():
            last = state.last_append
            if last is None or now - last <= after:
                continue  # still talking: its own moments judge the ages of its feeds
            step = self.engine.silence(name, timedelta(seconds=now - last))
            if step.changes:
                self._apply(step)
                self.dirty.add(name)

    def report_due(self, now: float) -> None:
        """The tick, at ``now`` (monotonic seconds): an exchange judged since its last report
        is due a new one ``report_every`` after that report, or at once when one of its
        statuses changed since."""
        due, every = self._reports_due, self.context.report_every
        reported, changed = self._reported, self._status_changed
        waiting = set()
        for exchange in sorted(self.dirty - set(due)):
            last = reported.get(exchange)
            if last is None or now - last >= every or exchange in changed:
                due.append(exchange)
                reported[exchange] = now
            else:
                waiting.add(exchange)
        self.dirty = waiting

    def report(self, limit: int) -> int:
        """Publish the adequacy reports due, ``limit`` at most, in the order they fell due;
        how many. The loop takes a few each turn: a report measures every rule afresh, and
        a tick's worth at once would hold records back."""
        due, exchanges = self._reports_due, self.engine.exchanges
        sent = 0
        while due and sent < limit:
            exchange = due.popleft()
            self._status_changed.discard(exchange)
            if exchange not in exchanges:
                self._reported.pop(exchange, None)
                continue
            report = adequacy_report(self.engine, exchange)
            self.context.metrics.record_report(report)
            body = json.dumps(report.to_document()).encode()
            self.collector.send(self.context.adequacy, exchange.encode(), body)
            sent += 1
        return sent
