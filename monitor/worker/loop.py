"""The worker's loop: a plain consumer-group member that runs its tasks.

Kafka Streams' ``StreamThread``, on aiokafka. One consumer in the group
``RESERVE_MONITOR_APP_ID`` subscribes to the input topics keyed by exchange,
with the co-partitioned assignor (:mod:`.assignment`): each member gets whole
tasks. A second consumer, in no group, reads ``market.prices`` (:mod:`.prices`).
Each turn of the loop:

1. takes what both consumers fetched and adds it to the tasks' partition groups;
2. lets the tasks take their buffered records in append order, as far as every
   partition is surely read (:func:`_read_state`), in turn and for up to
   ``_TURN_SECONDS``, yielding to the event loop between budgets (a backlog is
   taken over many turns, each committed);
3. judges the exchanges gone quiet of the tasks that have read everything, at
   the append time every partition is surely read up to (:func:`_read_state`);
4. every ``COMMIT_SECONDS``, and at once after a status change, commits every
   task (:mod:`.output`: one transaction each, sent in the background while the
   loop goes on; a task's next waits for its previous); every ``tick_seconds``,
   makes the adequacy reports of the exchanges judged since due (published a few
   a turn; their gauges are made when ``/metrics`` is scraped).

The rebalance listener commits every task before partitions move, and opens
the tasks assigned: producer first (fencing the previous owner), then the
changelog restored, then input. A task whose commit fails is rebuilt from its
changelog and its committed offsets; one fenced by a newer owner is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from prometheus_client import CollectorRegistry

from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine
from monitor.core.events import Topic
from monitor.core.output.report import adequacy_report, feed_times
from monitor.core.output.signing import load_signer
from monitor.core.policy import Policy
from monitor.heap import HeapKeeper
from monitor.settings import Settings
from monitor.worker import health as worker_health
from monitor.worker import metrics as worker_metrics
from monitor.worker.alignment import BUFFERED_PER_PARTITION, PartitionGroup
from monitor.worker.assignment import CopartitionedAssignor
from monitor.worker.changelog import changelog_topic, restore
from monitor.worker.connection import aiokafka_security
from monitor.worker.metrics import PartitionLag
from monitor.worker.output import Collector, task_producer
from monitor.worker.prices import PriceReader
from monitor.worker.reading import CommittedSince, ReadProbe, probe_consumer, start_probe
from monitor.worker.tasks import Context, Task
from monitor.worker.topics import ADEQUACY, ALERTS, BREACHES, DEADLETTER, INPUTS

log = logging.getLogger(__name__)

# records a task takes before it yields to the event loop (heartbeats, web pages)
_BUDGET = 200
# adequacy reports a task publishes at most per turn: a tick's worth spread over turns
_REPORTS_PER_TURN = 20
# records fetched at most per turn
_MAX_RECORDS = 2_000
# how long the tasks take records in one turn before the loop commits and fetches again
_TURN_SECONDS = 0.1
# the share of its wait after which a group waiting for a partition takes the records the
# consumer holds for it at once (earlier, it costs a drain a fifth of its rate: measured)
_STARVED = 0.75
# how long one fetch waits for records when there are none
_POLL_MS = 50
# the least wall time with nothing from an exchange before its feeds count as silent
SILENT_AFTER_SECONDS = 1.0
# a task commits at least this often while it takes records (Kafka Streams: 100 ms under EOS)
COMMIT_SECONDS = 0.1
# a transaction still in flight after this long is waited for before the task's next: the
# records taken meanwhile wait in memory, so this bounds them
_COMMIT_WAIT_SECONDS = 1.0
# how long a fetch waits at the broker for records when there are none: the quiet gap of
# an exchange whose feed stopped is judged at the first answer after it
_FETCH_WAIT_MS = 10
# a failing commit is retried, the task rebuilt, after this long at first, doubling up to 10 s
_RETRY_SECONDS = 0.5
# the frozen state is given back to the garbage collector this often (monitor.heap)
HEAP_THAW_SECONDS = 3600.0
# a read of the price history up to restored tasks' positions that reads nothing this long
# goes on without the rest (said in a warning); one that reads goes on, however long
PRICES_STALL_SECONDS = 60.0


class Worker:
    """One ``reserve-monitor worker``: its consumers, its tasks and its metrics."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        price_partitions: int,
        registry: CollectorRegistry | None = None,
    ) -> None:
        s = self.settings = settings
        self.policy = policy
        self.registry = registry or CollectorRegistry()
        self.metrics = worker_metrics.create(self.registry)
        self.client = {"bootstrap_servers": s.kafka_bootstrap_servers, **aiokafka_security(s)}
        self.changelog = changelog_topic(s.app_id)
        self.inputs = {s.topic(t.value): t for t in INPUTS}
        self.context = Context(
            app_id=s.app_id,
            currency=policy.reporting_currency,
            tasks=s.partitions,
            inputs=self.inputs,
            prices_topic=s.topic(Topic.PRICES.value),
            alerts=s.topic(ALERTS),
            breaches=s.topic(BREACHES),
            adequacy=s.topic(ADEQUACY),
            deadletter=s.topic(DEADLETTER),
            max_ahead=timedelta(seconds=s.max_future_seconds),
            max_idle=timedelta(seconds=s.max_idle_seconds),
            price_history=timedelta(seconds=s.price_history_seconds),
            report_every=s.report_seconds,
            metrics=self.metrics,
            clock=WatermarkClock(),
            signer=load_signer(s.signing_key) if s.signing_key else None,
            engine=self._new_engine,
        )
        self.tasks: dict[int, Task] = {}
        self.lock = asyncio.Lock()  # the loop's turn, or the rebalance listener, not both
        self.rebalancing = False
        self.last_tick = 0.0
        self.last_fetch: float | None = None
        self._busy = 0.0  # how long the loop's last turn took, commit and tick included, s
        self._unfinished = False  # the last turn ended with records its tasks could take
        self._stopping = asyncio.Event()
        # tasks assigned here and not opened yet, their partitions paused meanwhile, when
        # they are tried next, and the wait after that
        self._unopened: list[int] = []
        self._paused: list[TopicPartition] = []
        # input partitions not fetched because their tasks hold enough of their records
        self._full: set[TopicPartition] = set()
        self._open_again_at = 0.0
        self._open_delay = _RETRY_SECONDS
        # the tasks' state out of the garbage collector's full collections (monitor.heap)
        self.heap = HeapKeeper()
        self._thawed = time.monotonic()
        self.price_partitions = price_partitions
        # made in run(): a client made outside it would be left unclosed if the start fails
        self.consumer: Any = None
        self.prices: Any = None
        self.reads: Any = None  # ReadProbe of each consumer, made in run() with it
        self.price_reads: Any = None

    def _clients(self) -> tuple[AIOKafkaConsumer, PriceReader]:
        s = self.settings
        consumer = AIOKafkaConsumer(
            group_id=s.app_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            partition_assignment_strategy=(CopartitionedAssignor,),
            session_timeout_ms=int(s.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(min(3.0, s.session_timeout_seconds / 3) * 1000),
            fetch_max_wait_ms=_FETCH_WAIT_MS,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.client,
        )
        prices = PriceReader(
            s.topic(Topic.PRICES.value), self.price_partitions, s.price_history_seconds, self.client
        )
        return consumer, prices

    def _new_engine(self) -> Engine:
        s = self.settings
        return Engine(
            self.policy,
            max_idle=timedelta(seconds=s.max_idle_seconds),
            price_history=timedelta(seconds=s.price_history_seconds),
            seen_ids=s.seen_ids,
            journal_prices=False,  # every task reads them back from market.prices
        )

    # -- running ----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish: it commits every task and leaves the group."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until :meth:`stop`; every task is committed before the worker leaves."""
        last_commit = last_tick = time.monotonic()
        self.consumer, self.prices = self._clients()
        probing = probe_consumer(self.client)  # the high watermarks both probes ask for
        try:
            await self.prices.start()
            await self.consumer.start()
            await start_probe(probing)
            self.consumer.subscribe(list(self.inputs), listener=_Rebalance(self))
            consumer, prices = self.consumer, self.prices
            self.reads = ReadProbe(probing, lambda: sorted(consumer.assignment()))
            self.price_reads = ReadProbe(probing, lambda: list(prices.log.partitions))
            while not self._stopping.is_set():
                # records left over from a turn cut short are taken at once, not after a poll
                poll = 0 if self._unfinished else _POLL_MS
                batch = await self._fetch(poll)
                async with self.lock:
                    started = time.monotonic()
                    alerts = await self._turn(batch)
                    now = time.monotonic()
                    # a status change goes out at once; state and offsets every 100 ms
                    if alerts or now - last_commit >= COMMIT_SECONDS:
                        await self._commit_all(wait=False)
                        last_commit = now
                    if now - last_tick >= self.settings.tick_seconds:
                        self._tick()
                        last_tick = self.last_tick = now
                    # all of it, the commit's start (the journal) and the tick included
                    self._busy = time.monotonic() - started
                    if self._unopened and now >= self._open_again_at:
                        await self._open_assigned()  # tasks assigned: restored here
                self.heap.settle()
                if not batch:
                    await asyncio.sleep(0)
        finally:
            async with self.lock:
                await self._commit_all()
                await self._close(list(self.tasks))
            for probe in (self.reads, self.price_reads):
                if probe is not None:
                    await probe.close()
            await self.consumer.stop()
            await self.prices.stop()
            await probing.stop()
            self.heap.close()

    async def _turn(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Take what was fetched; whether a status change waits to be published."""
        prices = await self.prices.fetch()
        tasks = self.tasks
        for tp, records in batch.items():
            task = tasks.get(tp.partition)
            if task is not None:
                task.add(tp, records)
        for tp, records in prices.items():
            for task in tasks.values():
                task.group.add(tp, records)

        self._hold_back_full()

        prices_read = {
            tp: await _read_state(self.prices.consumer, self.price_reads, tp)
            for tp in self.prices.log.partitions
        }
        # A partition whose committed records are still to be fetched is waited for until
        # they come (alignment.py). One that may yet hold an earlier record no fetch is
        # sure to bring (an open transaction's, or one appended since it was read) is waited
        # for up to max_idle, and longer while the loop is busy: a slow turn is the
        # worker's delay, not the broker's silence.
        wait = max(self.settings.max_idle_seconds, 2 * self._busy + _FETCH_WAIT_MS / 1000)
        committed = CommittedSince()  # asked of the broker at most once a turn a partition
        for task in list(tasks.values()):
            group = task.group
            group.max_idle = wait
            # A fetch hands out partitions one after another, up to _MAX_RECORDS: a group
            # kept waiting most of its wait for a partition whose records the consumer holds
            # already takes them now, rather than going on without them, out of append order.
            # And one waiting for an open transaction's records asks the broker whether it
            # has committed since the consumer's last fetch answer said it was open: the
            # records are then the next fetch's, waited for however long it takes.
            starved = group.waited(time.monotonic()) >= wait * _STARVED
            for tp in task.inputs:
                reading = await _read_state(self.consumer, self.reads, tp)
                if starved and reading.lagging and not group.buffered_in(tp):
                    more = await self.consumer.getmany(tp, timeout_ms=0, max_records=_MAX_RECORDS)
                    if more.get(tp):
                        task.add(tp, more[tp])
                        reading = await _read_state(self.consumer, self.reads, tp)
                    elif reading.in_open_transaction and await committed.since(self.consumer, tp):
                        reading = reading._replace(fetchable=True)
                reading.tell(group, tp)
            prices = self.prices.consumer
            for tp, reading in prices_read.items():
                held = starved and reading.in_open_transaction and not group.buffered_in(tp)
                if held and await committed.since(prices, tp):
                    reading = reading._replace(fetchable=True)
                reading.tell(group, tp)
            task.say_waits(time.monotonic())
        # The tasks take their records in turn, _BUDGET at a time, for up to _TURN_SECONDS:
        # a backlog is committed as it goes (every turn), not once all of it is taken.
        # Between budgets the event loop runs: heartbeats, the web pages, and the
        # transactions in flight, each of whose steps waits for a broker's answer.
        busy, until = list(tasks.values()), time.monotonic() + _TURN_SECONDS
        while busy and time.monotonic() < until:
            for task in list(busy):
                if task.process(time.monotonic(), _BUDGET) < _BUDGET:
                    busy.remove(task)
                await asyncio.sleep(0)
        self._unfinished = bool(busy)
        alerts = False
        for task in list(tasks.values()):
            group = task.group
            # read everything: append time has surely reached what every partition is read to
            appended_now = group.read_up_to() if group.caught_up else None
            if appended_now is not None:
                task.idle(datetime.fromtimestamp(appended_now / 1000, UTC))
            task.report(_REPORTS_PER_TURN)
            alerts = alerts or task.collector.alerts
        return alerts

    async def _fetch(self, poll_ms: int) -> dict[TopicPartition, list[Any]]:
        """What the consumer has fetched of the input partitions not held back as full.

        A full partition's records stay in the consumer, which fetches no more of it
        meanwhile (aiokafka fetches a partition again once its last answer is handed
        out); pausing it instead would have aiokafka drop that answer and fetch it again.
        """
        readable: list[TopicPartition] = []  # none named: all of them (none is full)
        if self._full:
            readable = [tp for tp in self.consumer.assignment() if tp not in self._full]
            if not readable:  # all full: the tasks take what they hold first
                await asyncio.sleep(0)
                return {}
        batch: dict[TopicPartition, list[Any]] = await self.consumer.getmany(
            *readable, timeout_ms=poll_ms, max_records=_MAX_RECORDS
        )
        return batch

    def _hold_back_full(self) -> None:
        """Hold back each input partition whose records fill its task's group, until it
        holds half as many: the rest waits on the broker, not in memory, as in Kafka
        Streams, which pauses such a partition. Not the price partitions: the price log
        keeps their records for restores whatever the groups hold."""
        for task in self.tasks.values():
            for tp in task.inputs:
                count = task.group.buffered_in(tp)
                if count >= BUFFERED_PER_PARTITION:
                    self._full.add(tp)
                elif count <= BUFFERED_PER_PARTITION // 2:
                    self._full.discard(tp)

    # -- committing -------------------------------------------------------------------

    async def _commit_all(self, wait: bool = True) -> None:
        """Commit every task with something pending, one transaction each.

        ``wait``: until every transaction has ended. Otherwise the transactions run in
        the background while the loop goes on: a task whose previous one is still in
        flight starts its next at a later turn, unless a status change waits or the
        previous has taken ``_COMMIT_WAIT_SECONDS``, when it is waited for first.
        """
        tasks = list(self.tasks.values())
        ending = [
            task
            for task in tasks
            if task.collector.committing
            and (
                wait
                or task.collector.alerts
                or task.collector.commit_ended
                or task.collector.commit_age >= _COMMIT_WAIT_SECONDS
            )
        ]
        failed = await self._end_commits(ending)
        for task in tasks:
            if task.number not in failed and not task.collector.committing:
                task.start_commit()
        if wait:
            failed |= await self._end_commits([t for t in tasks if t.collector.committing])
        for number, error in failed.items():
            await self._failed(number, error)

    async def _end_commits(self, tasks: list[Task]) -> dict[int, BaseException]:
        """Wait for the transactions in flight of ``tasks``; the failed ones, by task."""
        outcomes = await asyncio.gather(
            *(task.collector.end_commit() for task in tasks), return_exceptions=True
        )
        return {
            task.number: outcome
            for task, outcome in zip(tasks, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        }

    async def _failed(self, number: int, error: BaseException) -> None:
        """A task's transaction failed: rebuild it from what Kafka holds, or drop it."""
        task = self.tasks[number]
        if isinstance(error, ProducerFenced):
            assigned = self.consumer.assignment()
            if any(tp in assigned for tp in task.inputs):
                # the group gave it back to this worker after another had started it:
                # what is in Kafka is the truth; open it again from there
                log.warning("task %d: fenced while still assigned here; reopening", number)
                await self._rebuild(number)
            else:
                log.warning("task %d: fenced, a newer owner has started it; dropped here", number)
                await self._close([number])
        else:
            log.error(
                "task %d: commit failed (%s: %s); rebuilding it from its changelog",
                number,
                type(error).__name__,
                error,
            )
            await self._rebuild(number)

    async def _rebuild(self, number: int) -> None:
        """Drop a task whose transaction failed; the loop opens it again from what Kafka
        holds, as it opens an assigned task (:meth:`_open_assigned`)."""
        await self._close([number])
        self._to_open([number])

    # -- tasks coming and going -------------------------------------------------------

    async def _open(self, numbers: list[int]) -> None:
        started = time.perf_counter()
        fresh = [n for n in numbers if n not in self.tasks]
        collectors: dict[int, Collector] = {}
        try:
            for number in fresh:
                producer = task_producer(self.settings.app_id, number, dict(self.client))
                collector = collectors[number] = Collector(
                    producer, self.settings.app_id, self.changelog, number
                )
                await collector.start()  # fences the task's previous owner
            restored = await restore(dict(self.client), self.changelog, fresh)
            # the log must hold every price before the furthest of the restored positions
            positions: dict[TopicPartition, int] = {}
            for tp in self.prices.log.partitions:
                ats = [
                    r.prices_position[tp.partition]
                    for r in restored.values()
                    if tp.partition in r.prices_position
                ]
                if ats:
                    positions[tp] = max(ats)
            # the tasks kept take what this read brings in their turn; the new ones find it
            # in the log
            read = await self.prices.read_to(positions, stall=PRICES_STALL_SECONDS)
            for tp, records in read.items():
                for task in self.tasks.values():
                    task.group.add(tp, records)
        except BaseException:
            for collector in collectors.values():
                await collector.close()
            raise
        # the producers' start and the changelog read are shared by the tasks opened together
        shared = time.perf_counter() - started
        for number in fresh:
            task = Task(number, self.context, collectors[number])
            task.restore(restored[number], self.prices.log)
            self.tasks[number] = task
            self.metrics.restore_seconds.labels(str(number)).set(shared + task.restore_seconds)
        if fresh:
            log.info("tasks %s opened in %.2f s", fresh, time.perf_counter() - started)

    async def _close(self, numbers: list[int]) -> None:
        if any(number in self.tasks for number in numbers):
            self.heap.thaw()  # what the tasks held is the collector's to free
        for number in numbers:
            task = self.tasks.pop(number, None)
            if task is not None:
                with contextlib.suppress(Exception):
                    await task.collector.close()
                with contextlib.suppress(KeyError):
                    self.metrics.restore_seconds.remove(str(number))
        exchanges = {ex for task in self.tasks.values() for ex in task.engine.exchanges}
        self.metrics.retain_exchanges(exchanges)

    async def on_revoked(self) -> None:
        """Partitions are about to move: commit every task, drop what is buffered."""
        async with self.lock:
            self.rebalancing = True
            await self._commit_all()
            for task in self.tasks.values():
                for tp in task.inputs:
                    task.group.clear(tp)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Partitions were given to this worker: drop the tasks it lost, and leave the new
        ones to the loop to open (:meth:`_open_assigned`), their partitions paused until then.

        Not opened here: aiokafka sends no heartbeat while a rebalance listener runs, so a
        restore longer than the session timeout would have the group drop this worker
        (Kafka Streams restores in its thread's loop, between polls, too).
        """
        async with self.lock:
            numbers = sorted({tp.partition for tp in assigned if tp.topic in self.inputs})
            await self._close([n for n in self.tasks if n not in numbers])
            self._unopened, self._paused = [], []  # what was left of the last assignment
            self._full = set()  # what the tasks held was dropped (on_revoked)
            self._to_open([n for n in numbers if n not in self.tasks])
            self.rebalancing = bool(self._unopened)

    def _to_open(self, numbers: list[int]) -> None:
        """Leave the tasks ``numbers`` to the loop to open at its next turn, their input
        partitions paused until then."""
        if not numbers:
            return
        partitions = [
            tp
            for tp in self.consumer.assignment()
            if tp.topic in self.inputs and tp.partition in numbers and tp not in self._paused
        ]
        self.consumer.pause(*partitions)
        self._unopened = sorted({*self._unopened, *numbers})
        self._paused += partitions
        self._open_again_at, self._open_delay = 0.0, _RETRY_SECONDS
        self.rebalancing = True

    async def _open_assigned(self) -> None:
        """Open the tasks assigned here that are not open yet, then resume their partitions.
        One that cannot be opened now (Kafka away, a changelog read stalled, a right
        refused) keeps its partitions paused, so that no record of it is fetched and
        passed over, and is tried again after 0.5 s at first, doubling up to 10 s;
        meanwhile ``/healthz`` says the worker is rebalancing."""
        numbers = [n for n in self._unopened if n not in self.tasks]
        try:
            await self._open(numbers)
        except (KafkaError, OSError, TimeoutError) as error:
            log.warning(
                "tasks %s could not be opened (%s: %s); their partitions are paused and "
                "opening them is tried again in %.1f s",
                numbers,
                type(error).__name__,
                error,
                self._open_delay,
            )
            self._open_again_at = time.monotonic() + self._open_delay
            self._open_delay = min(10.0, self._open_delay * 2)
            return
        if self._paused:  # from the committed offsets, which match the state restored
            await self.consumer.seek_to_committed(*self._paused)
            self.consumer.resume(*self._paused)
        self._unopened, self._paused = [], []
        self.rebalancing = False
        _settle_heap()

    # -- gauges -----------------------------------------------------------------------

    def _tick(self) -> None:
        wall = time.time()
        if time.monotonic() - self._thawed >= HEAP_THAW_SECONDS:
            self.heap.thaw()  # cycles that became garbage among the frozen objects
            self._thawed = time.monotonic()
        # an exchange quiet for two ticks is silent: one still talking is judged at its moments
        quiet = max(2 * self.settings.tick_seconds, SILENT_AFTER_SECONDS)
        for task in self.tasks.values():
            if task.group.caught_up:  # silent feeds: only with nothing left to read
                task.silence(wall, quiet)
            task.report_due(time.monotonic())
        self._trim_prices()

    def record_feed_ages(self) -> None:
        """Every owned exchange's feed ages at the worker's clock, silent ones included: when
        scraped, not every tick (a few µs an exchange, tens of thousands of them)."""
        now = self.context.clock.now(time.monotonic())
        if now is not None:
            for task in self.tasks.values():
                for name, state in task.engine.exchanges.items():
                    self.metrics.record_feed_ages(name, feed_times(state), now)

    def _trim_prices(self) -> None:
        """Forget the price records older than the history that every task has taken."""
        prices = self.prices.log
        keep = {
            tp: min(t.collector.prices_position.get(tp.partition, 0) for t in self.tasks.values())
            for tp in prices.partitions
            if self.tasks
        }
        prices.trim(keep, int((time.time() - self.settings.price_history_seconds) * 1000))

    async def consumer_lag(self) -> list[PartitionLag]:
        """Records of each owned input partition not yet processed (log end - position)."""
        lags: list[PartitionLag] = []
        if self.consumer is None:
            return lags
        async with self.lock:
            ends = await self._held_back_ends()
            for task in self.tasks.values():
                for tp, topic in task.inputs.items():
                    if tp not in self.consumer.assignment():
                        continue
                    end = ends.get(tp, self.consumer.highwater(tp))
                    if end is None:
                        continue
                    # the consumer's position is past transaction markers; less what waits
                    # in the task's buffer, it is what the task has taken
                    buffered = task.group.buffered_in(tp)
                    done = await self.consumer.position(tp) - buffered
                    lag = max(0, end - done)
                    lags.append(PartitionLag(topic.value, tp.partition, lag, buffered))
            prices = self.prices.consumer
            for tp in self.prices.log.partitions:
                end = prices.highwater(tp)
                if end is not None:
                    done = await prices.position(tp)
                    held = max((t.group.buffered_in(tp) for t in self.tasks.values()), default=0)
                    lags.append(PartitionLag(Topic.PRICES.value, tp.partition, end - done, held))
        return sorted(lags)

    async def _held_back_ends(self) -> dict[TopicPartition, int]:
        """The high watermarks of the input partitions held back as full, from the broker:
        the consumer learns them from its fetches, and such a partition is not fetched."""
        full = [tp for tp in self._full if tp in self.consumer.assignment()]
        if not full or self.reads is None:
            return {}
        try:
            ends: dict[TopicPartition, int] = await self.reads.consumer.end_offsets(full)
        except (KafkaError, OSError) as error:  # the consumer's own, older, serve meanwhile
            log.debug("end offsets of held-back partitions not read: %s", error)
            return {}
        return ends

    # -- what the web pages read ------------------------------------------------------

    async def status(self, every: int = 100, only: set[str] | None = None) -> list[dict[str, Any]]:
        """The adequacy report of every exchange owned (of those in ``only``, if given),
        measured afresh, in exchange order.

        A report measures every rule, some 0.3 ms: the event loop runs between every
        ``every`` exchanges, so that thousands of them do not hold the worker's records
        and heartbeats back (a task dropped meanwhile drops out of the answer).
        """
        owned = sorted(
            (
                (name, task)
                for task in self.tasks.values()
                for name in task.engine.exchanges
                if only is None or name in only
            ),
            key=lambda owner: owner[0],
        )
        reports = []
        for n, (name, task) in enumerate(owned, 1):
            if self.tasks.get(task.number) is task and name in task.engine.exchanges:
                reports.append(adequacy_report(task.engine, name).to_document())
            if n % every == 0:
                await asyncio.sleep(0)
        return reports

    def tick_silence(self) -> tuple[float | None, float]:
        since = time.monotonic() - self.last_tick if self.last_tick else None
        return since, worker_health.tick_silence_limit(self.settings.tick_seconds)

    def health(self) -> worker_health.Health:
        fetched = self._newest_fetch()
        if fetched is not None and (self.last_fetch is None or fetched > self.last_fetch):
            self.last_fetch = fetched
        since_tick, tick_limit = self.tick_silence()
        return worker_health.assess(
            since_tick=since_tick,
            tick_limit=tick_limit,
            rebalancing=self.rebalancing,
            since_fetch=time.time() - self.last_fetch if self.last_fetch is not None else None,
            fetch_limit=self.settings.session_timeout_seconds,
        )

    def _newest_fetch(self) -> float | None:
        if self.consumer is None:
            return None
        stamps = [
            worker_health.newest_fetch(self.consumer),
            worker_health.newest_fetch(self.prices.consumer),
        ]
        known = [s for s in stamps if s is not None]
        return max(known) if known else None


def _settle_heap() -> None:
    """Keep what lives now (modules, clients, the restored state) out of the garbage
    collector's full passes: with it frozen, a full pass scans only what came after, and
    stalls the loop for a fraction of the time (measured: 35-75 ms every few seconds
    under load before, 8-33 ms after). Garbage is collected first, so none is kept."""
    gc.collect()
    gc.freeze()


class _Reading(NamedTuple):
    """Where a partition's reading stands (the arguments of ``PartitionGroup.lagging``,
    and whether the records beyond were in a transaction open at the last fetch answer)."""

    lagging: bool  # the broker holds records beyond those read
    read_to: int | None  # when it does not: the append time (ms) before which it holds none
    fetchable: bool  # the records beyond are committed, or the lag is not known yet
    in_open_transaction: bool = False

    def tell(self, group: PartitionGroup[Any, Any], tp: TopicPartition) -> None:
        group.lagging(tp, self.lagging, self.read_to, self.fetchable)


async def _read_state(consumer: Any, reads: ReadProbe, tp: TopicPartition) -> _Reading:
    """Whether the broker holds records of ``tp`` beyond those read (committed: the next
    fetches bring them; or in a transaction still open: they come into view when it
    commits), and when it does not, the append time (ms) before which ``tp`` surely
    holds nothing unread.

    The consumer's latest fetch answer says whether records lie beyond its position:
    its last stable offset (the worker reads ``read_committed``) and its high watermark
    (beyond the last stable offset: an open transaction's records). Past that, the
    time comes from the broker's own answer to a request for the high watermarks
    (:class:`~monitor.worker.reading.ReadProbe`): every record appended before the
    request went out lies below the offset it answered. Going on from a later
    time would take a record, or cut a moment, before a record appended in time to
    come first, which replay would not. A partition not assigned (any more) holds
    nothing back and tells no time.
    """
    if tp not in consumer.assignment():
        return _Reading(False, None, False)
    stable = consumer.last_stable_offset(tp)
    if stable is None or stable < 0:
        stable = consumer.highwater(tp)
    position = await consumer.position(tp)
    if stable is None or position < stable:
        # committed records not read yet, or no fetch answer yet to tell
        return _Reading(True, None, True)
    high = consumer.highwater(tp)
    if high is not None and position < high:
        # records appended in a transaction still open: unseen until it commits, and
        # appended before whatever came after them elsewhere (see monitor.worker.reading)
        return _Reading(True, None, False, in_open_transaction=True)
    reads.ask()  # caught up: the time is needed, asked again (a backlog never asks)
    read_to = reads.read_to(tp, position)
    return _Reading(read_to is None, read_to, False)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.on_revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.worker.on_assigned(assigned)
