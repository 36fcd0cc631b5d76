"""``make bench``: throughput, latency and restore time of the monitor on this machine, in one run.

First the figures that need no broker, so that they print whatever becomes of
the rest (issue #10):

(e) ``replay`` of the simulator's steady 50-exchange scenario: events/s, the bare
    ``json.loads`` rate of the same lines, their ratio, and µs per event split
    into decode and engine (``bench/replay_speed.py``);
(f) the core's CPU cost per exchange event and per price event at 10, 1,000 and
    100,000 wallets per exchange and at 1, 100 and 1,000 exchanges
    (``bench/core_scaling.py``).

Then, against one local broker (``BENCH_KAFKA=0`` skips this part), on
``BENCH_EVENTS`` records of the steady scenario with 100 exchanges (issue #11):

(b) events/s of one ``reserve-monitor worker`` draining them from pre-filled
    input topics, beside ``replay``'s events/s on the same records, timed in this
    process in the same run;
(a) the raw aiokafka consume rate of the same topics (the limit), and, when
    ``faust`` imports (the optional extra ``.[faust]``), Faust's own ceiling:
    a bare Faust worker that only acknowledges each record
    (``bench/faust_ceiling.py``);
(c) b / a and b / replay;
(g) two workers in one group draining the same records against one;
(d) alert latency, from produce to a ``read_committed`` consumer seeing the
    CloudEvent on ``reserve.alerts``, p50/p95/p99, at 5,000 events/s of offered
    background load; then the worker's consumer lag (its
    ``reserve_monitor_consumer_lag_records``) while 20,000 events/s are asked
    for. The load is the steady scenario, made and encoded before it is sent,
    each record dated when it is due; the rate the broker took is printed
    beside the one asked for (one Python producer, on the same machine);
(h) the restore time of a worker's state of 1,000 exchanges: a fresh worker of
    the same app id after the first was stopped, from its
    ``reserve_monitor_restore_seconds``.

How a drain is timed: the worker(s) start on empty topics and are left to join
their group and settle (every task owned, nothing to restore); the records are
then produced in one transaction, invisible to the workers (they read
``read_committed``) until it commits, so the backlog appears at once, whole, to
workers that are already running. The rate is the records over the time from
that commit to the group's offsets committed past the last record of every
input partition (read from the broker every ``POLL_SECONDS``). Beside it: the
longest a worker took to answer ``/healthz`` meanwhile, and whether the group
dropped a worker for missed heartbeats (its log).

Prints the figures as they come, then a table of them beside the issue's
targets, and writes ``.bench/results.json`` (after (e) and (f), and again at
the end; a failed or skipped Kafka part is recorded there as ``kafka_error``;
a failed one makes the exit status 1). It measures; it asserts nothing.
Each part uses topics and groups of its own, with a unique prefix, and
deletes its topics at the end (``BENCH_KEEP_TOPICS=1`` keeps them).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bench import core_scaling, replay_speed
from monitor.core.compiled import running_compiled
from monitor.settings import Settings
from monitor.synthetic.scenarios import Record, restamp, steady
from monitor.synthetic.simulator import encode, write_jsonl
from tests.integration.harness import ROOT, Deployment, Reader, WorkerProcess

EVENTS = int(os.environ.get("BENCH_EVENTS", "100000"))
EXCHANGES = 100
# runs of each in-process figure (replay, core scaling); the best one is kept
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
PARTITIONS = 4
INPUTS = ("exchange.trades", "exchange.wallet-balances", "exchange.ledger", "market.prices")
# how often a drain's progress is read from the broker, and each worker's /healthz probed
POLL_SECONDS = 0.25
# how long a worker may take to answer /metrics or /healthz
SCRAPE_TIMEOUT = 60.0
# how long workers may take to start consuming, and a group of them to settle
STARTUP_SECONDS = 90.0
# (d) alert latency: the background load offered meanwhile, and how many changes are timed
LATENCY_RATE = int(os.environ.get("BENCH_LATENCY_RATE", "5000"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "100"))
# and for how long at most (fewer samples when the changes come slowly)
LATENCY_SECONDS = 45
# a change not seen this long after its event counts as lost to the backlog
LATENCY_TIMEOUT = 20.0
# (d) consumer lag: the load offered, for how long, and how often the lag is read
LAG_RATE = int(os.environ.get("BENCH_LAG_RATE", "20000"))
LAG_SECONDS = int(os.environ.get("BENCH_LAG_SECONDS", "15"))
LAG_EVERY = 1.0
# (h) restore: exchanges, and records of them (the first ~70 s of their story: every
# exchange's wallets, ledger and fund at least once, then trades)
RESTORE_EXCHANGES = 1000
RESTORE_EVENTS = int(os.environ.get("BENCH_RESTORE_EVENTS", "50000"))
FAUST_MISSING = "bare Faust worker: not installed (pip install -e '.[faust]')"
_RESTORED_LINE = re.compile(
    r"task (\d+): restored (\d+) changelog records \((\d+) keys\), (\d+) exchanges"
)


# -- records --------------------------------------------------------------------------


def _records(count: int, exchanges: int) -> list[Record]:
    """``count`` records of the steady scenario of ``exchanges`` exchanges, none dated after now.

    A worker refuses events dated ahead of its clock, so the story starts far
    enough back to end before now: two hours at least, and more than its span
    (an exchange has a trade every 1 to 5 s, so a record every 3 s at least).
    """
    now = datetime.now(UTC)
    start = now - max(timedelta(hours=2), timedelta(seconds=4 * count / exchanges))
    records = list(itertools.islice(steady(start, 11, exchanges=exchanges, duration=None), count))
    if records and records[-1].ts > now:
        raise RuntimeError("the story runs past now: start it earlier")
    return records


def _jsonl(records: list[Record]) -> list[str]:
    """The records as ``replay`` reads them (``reserve-monitor replay``'s JSON Lines)."""
    text = io.StringIO()
    write_jsonl(records, text)
    return text.getvalue().splitlines()


@dataclass
class _Filled:
    """What a pre-fill produced: how long it took, when its records became visible
    (``perf_counter``), and the offset after its last record in each input partition."""

    seconds: float
    visible_at: float
    ends: dict[TopicPartition, int]


async def _prefill(bootstrap: str, prefix: str, records: list[Record], *, txn: bool) -> _Filled:
    """Produce ``records`` to the topics of ``prefix``.

    ``txn``: in one transaction, which a ``read_committed`` consumer sees all at
    once when it commits, and none of before.
    """
    options: dict[str, Any] = {}
    if txn:
        options = {
            "transactional_id": f"{prefix}prefill-{uuid.uuid4().hex[:6]}",
            "transaction_timeout_ms": 300_000,
        }
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024, **options
    )
    await producer.start()
    started = time.perf_counter()
    try:
        if txn:
            await producer.begin_transaction()
        sent = []
        for record in records:
            topic, key, value = encode(record, prefix)
            sent.append(await producer.send(topic, value, key=key))
        landed = await asyncio.gather(*sent)
        if txn:
            await producer.commit_transaction()
        visible_at = time.perf_counter()
    finally:
        await producer.stop()
    ends: dict[TopicPartition, int] = {}
    for meta in landed:
        tp = TopicPartition(meta.topic, meta.partition)
        ends[tp] = max(ends.get(tp, 0), meta.offset + 1)
    return _Filled(visible_at - started, visible_at, ends)


# -- workers, and what their /metrics say ---------------------------------------------


def _deployment(bootstrap: str, prefix: str) -> Deployment:
    """A tenant whose workers tick at the product's default, once a second (the tests'
    harness ticks every 0.5 s): each tick makes every exchange judged since due an
    adequacy report, which is part of what a worker costs."""
    tick = str(Settings.model_fields["tick_seconds"].default)
    return Deployment(
        bootstrap, prefix=prefix, partitions=PARTITIONS, env={"RESERVE_MONITOR_TICK_SECONDS": tick}
    )


def _scrape(worker: WorkerProcess) -> list[Sample]:
    """Every sample of the worker's /metrics.

    Not the harness's ``metrics()``: its 5 s timeout is shorter than the worker
    has been seen to take to answer while it drains a backlog.
    """
    url = f"http://127.0.0.1:{worker.port}/metrics"
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as reply:
        text = reply.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _sum(samples: list[Sample], name: str) -> float:
    return sum(s.value for s in samples if s.name == name)


def _tasks(samples: list[Sample]) -> set[str]:
    """The tasks a worker owns: those with a restore time (dropped when a task goes)."""
    return {s.labels["task"] for s in samples if s.name == "reserve_monitor_restore_seconds"}


def _launch(d: Deployment, log_dir: Path, size: int, name: str) -> list[WorkerProcess]:
    """``size`` workers of ``d`` in one group, started together, consuming and settled."""
    workers = [WorkerProcess(d, log_dir, name=f"{name}-{n}") for n in range(size)]
    try:
        for worker in workers:
            worker.launch()
        for worker in workers:
            worker.wait_healthy(STARTUP_SECONDS)
        _wait_settled(workers, d.partitions)
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return workers


def _wait_settled(workers: list[WorkerProcess], tasks: int) -> None:
    """Until every task is owned by exactly one of ``workers`` and each owns some."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        owned = [_tasks(_scrape(worker)) for worker in workers]
        every = [task for tasks_of in owned for task in tasks_of]
        if all(owned) and len(every) == tasks and len(set(every)) == tasks:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the group did not settle in {STARTUP_SECONDS:.0f} s: {owned}")
        time.sleep(0.3)


# -- (b), (g): drains -----------------------------------------------------------------


async def _drain_rate(d: Deployment, filled: _Filled, count: int) -> dict[str, Any]:
    """Events/s of the group of ``d`` draining the ``count`` records of ``filled``.

    From the moment they became visible to the first answer of the broker that
    shows the group's offsets committed past the last record of every input
    partition keyed by exchange: processed, and their outputs and state
    committed with them (a worker commits every 0.1 s). Read from the broker
    every ``POLL_SECONDS``, not from the workers, whose answers wait while they
    are busy; a record taken twice (after a rebalance) is not counted twice.

    Also the sustained rate: the records committed from the first commit seen to
    the last, over that time. The drain as a whole includes filling the pipeline
    (the first fetches, turn and transaction before anything commits), which weighs
    on a drain of a few seconds.
    """
    inputs = {d.topic(t) for t in INPUTS if t != "market.prices"}
    ends = {tp: at for tp, at in filled.ends.items() if tp.topic in inputs}
    first: tuple[float, int] | None = None  # when the first commit was seen, and its records
    admin = AIOKafkaAdminClient(bootstrap_servers=d.bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(d.app_id, partitions=list(ends))
            done = sum(
                min(committed[tp].offset, at)
                for tp, at in ends.items()
                if tp in committed and committed[tp].offset > 0
            )
            seconds = time.perf_counter() - filled.visible_at
            if done >= sum(ends.values()):
                drained = {"eps": round(count / seconds), "seconds": round(seconds, 2)}
                if first is not None and seconds > first[0]:
                    drained["sustained_eps"] = round((done - first[1]) / (seconds - first[0]))
                    drained["first_commit_s"] = round(first[0], 2)
                return drained
            if first is None and done:
                first = (seconds, done)
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await admin.close()
    raise AssertionError(f"{count} events not drained within 600 s")


class _Responsiveness:
    """The longest each worker took to answer ``/healthz`` while this runs (a probe every
    ``POLL_SECONDS``): how long its event loop was kept from answering."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        self.slowest = 0.0
        self.task = asyncio.create_task(self._probe(workers))

    async def _probe(self, workers: list[WorkerProcess]) -> None:
        while True:
            for worker in workers:
                took = await asyncio.to_thread(_answer_seconds, worker, "/healthz")
                self.slowest = max(self.slowest, took)
            await asyncio.sleep(POLL_SECONDS)

    async def stop(self) -> float:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        return self.slowest


def _answer_seconds(worker: WorkerProcess, path: str) -> float:
    asked = time.perf_counter()
    url = f"http://127.0.0.1:{worker.port}{path}"
    # an answer 503, or none: the time it took counts all the same
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as reply:
        reply.read()
    return time.perf_counter() - asked


def _session_expiries(workers: list[WorkerProcess]) -> int:
    """How often the group dropped one of ``workers`` for missed heartbeats (their logs)."""
    return sum(
        worker.log_path.read_text(errors="replace").count("Heartbeat session expired")
        for worker in workers
    )


async def _drain(
    bootstrap: str, log_dir: Path, records: list[Record], size: int, prefix: str
) -> dict[str, Any]:
    """``size`` workers started on the empty topics of ``prefix``, then the records at once."""
    d = _deployment(bootstrap, prefix)
    workers = _launch(d, log_dir, size, f"drain{size}")
    try:
        filled = await _prefill(bootstrap, prefix, records, txn=True)
        probe = _Responsiveness(workers)
        try:
            drained = await _drain_rate(d, filled, len(records))
        finally:
            slowest = await probe.stop()
    finally:
        for worker in workers:
            worker.stop()
    drained["prefill_seconds"] = round(filled.seconds, 2)
    drained["slowest_healthz_answer_s"] = round(slowest, 2)
    drained["heartbeat_session_expiries"] = _session_expiries(workers)
    return drained


async def _raw_consume_rate(bootstrap: str, prefix: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        *[prefix + t for t in INPUTS],
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"{prefix}raw",
    )
    await consumer.start()
    try:
        seen, first = 0, None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            n = sum(len(v) for v in batch.values())
            if n and first is None:
                first = time.perf_counter()
            seen += n
        assert first is not None
        return count / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def _faust_installed() -> bool:
    done = subprocess.run(
        [sys.executable, "-c", "import faust"], cwd=ROOT, capture_output=True, check=False
    )
    return done.returncode == 0


def _faust_ceiling(bootstrap: str, prefix: str, count: int) -> float:
    """Events/s of a bare Faust worker that only acknowledges each record."""
    env = dict(
        os.environ,
        CEILING_BROKER=bootstrap,
        CEILING_PREFIX=prefix,
        CEILING_EVENTS=str(count),
        CEILING_PARTITIONS=str(PARTITIONS),
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.faust_ceiling", "worker", "-l", "warn"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Faust routes a worker's stdout through its logger: the figure may sit in a log line
    match = re.search(r"events/s (\d+)", done.stdout + done.stderr)
    if match is None:
        raise RuntimeError(f"the bare Faust worker gave no rate:\n{done.stderr[-2000:]}")
    return float(match.group(1))


# -- (d) latency and lag under load ---------------------------------------------------


def _load_records(count: int) -> list[Record]:
    """The background load of (d): the steady scenario of ``EXCHANGES`` exchanges, made
    before it is offered (the scenario's generator alone is slower than 20,000 a second
    here), with event ids of its own."""
    run = f"load-{uuid.uuid4().hex[:8]}"
    load = steady(datetime.now(UTC), 5, exchanges=EXCHANGES, duration=None, run=run)
    return list(itertools.islice(load, count))


class _Load:
    """``records`` offered to the topics of ``prefix`` at ``rate`` a second for ``seconds``
    (or until none are left): the simulator's live mode, each record dated when it is
    due and sent then. The records are encoded beforehand, dated from a start far
    enough ahead to cover the encoding (estimated on the first ones), and sending
    begins at that start. Dated seconds before they are sent, the load's prices would
    reach every exchange as late prices, each re-opening its newest moment, which is
    not how a live feed behaves."""

    def __init__(
        self, bootstrap: str, prefix: str, records: list[Record], rate: int, seconds: float
    ) -> None:
        began = time.perf_counter()
        sample = [encode(record, prefix) for record in records[:1000]]
        per_record = (time.perf_counter() - began) / max(1, len(sample))
        lead = 1.0 + 1.5 * per_record * len(records)
        start = datetime.now(UTC) + timedelta(seconds=lead)
        encoded = [
            encode(restamp(record, start + timedelta(seconds=i / rate)), prefix)
            for i, record in enumerate(records)
        ]
        self.sent = 0
        self.started = began + lead
        self.finished: float | None = None
        self.task = asyncio.create_task(self._offer(bootstrap, encoded, rate, seconds))

    async def _offer(
        self, bootstrap: str, encoded: list[tuple[str, bytes, bytes]], rate: int, seconds: float
    ) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
        )
        await producer.start()
        await asyncio.sleep(max(0.0, self.started - time.perf_counter()))  # the first is due
        try:
            acks = []
            while self.sent < len(encoded):
                elapsed = time.perf_counter() - self.started
                if elapsed >= seconds:
                    break
                due = int(elapsed * rate) + 1
                upto = min(len(encoded), due, self.sent + 1000)  # the time looked at every 1,000
                for topic, key, value in encoded[self.sent : upto]:
                    acks.append(await producer.send(topic, value, key=key))
                self.sent = max(self.sent, upto)
                await asyncio.sleep(0.005 if self.sent >= due else 0)
            await asyncio.gather(*acks)
        finally:
            self.finished = time.perf_counter()
            await producer.stop()

    @property
    def offered_eps(self) -> float:
        """Records sent a second: up to the broker's last acknowledgement once it is done."""
        return self.sent / ((self.finished or time.perf_counter()) - self.started)

    async def under_way(self, seconds: float = 0.0) -> None:
        """Wait until the load has been offered for ``seconds``."""
        await asyncio.sleep(max(0.0, self.started + seconds - time.perf_counter()))

    async def wait(self) -> None:
        await self.task

    async def cancel(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task  # lets the producer close


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _latencies(d: Deployment, samples: int) -> list[float]:
    """Flip one exchange's fund across its floor, ``samples`` times (for ``LATENCY_SECONDS``
    at most), each dated now; the ms from each produce to a ``read_committed`` consumer
    seeing its CloudEvent (inf: not seen within ``LATENCY_TIMEOUT``, and sampling stops)."""
    ex = "bench-latency"
    producer = AIOKafkaProducer(bootstrap_servers=d.bootstrap, acks="all", linger_ms=0)
    await producer.start()

    async def send(topic: str, key: str, value: dict[str, Any]) -> None:
        await producer.send_and_wait(d.topic(topic), json.dumps(value).encode(), key=key.encode())

    try:
        now = _ts(datetime.now(UTC))
        price = {"event_id": "lp-0", "asset": "BTC", "ts": now, "price": "10000000"}
        await send("market.prices", "BTC", {**price, "currency": "JPY"})
        wallet = {"event_id": "lw-0", "exchange": ex, "ts": now, "wallet": "c", "asset": "BTC"}
        wallet |= {"balance": "100", "custody": "cold", "holder": "customer"}
        await send("exchange.wallet-balances", ex, wallet)
        latencies: list[float] = []
        reader = Reader(d.bootstrap, d.topic("reserve.alerts"), isolation_level="read_committed")
        async with reader as alerts:
            until = time.monotonic() + LATENCY_SECONDS
            for i in range(1, samples + 1):
                if time.monotonic() > until:
                    break
                amount = "1000000000" if i % 2 else "9000000000"  # under / over the ¥2 bn floor
                want = "breach" if i % 2 else "ok"
                dated = datetime.now(UTC)
                dated = dated.replace(microsecond=dated.microsecond // 1000 * 1000)  # as sent
                fund = {"type": "reserve_fund", "event_id": f"lf-{i}", "exchange": ex}
                fund |= {"ts": _ts(dated), "amount": amount, "currency": "JPY"}
                seen = len(alerts.records)
                sent = time.perf_counter()
                await send("exchange.ledger", ex, fund)
                try:
                    await alerts.until(_change_seen(ex, want, dated, seen), timeout=LATENCY_TIMEOUT)
                except AssertionError:  # behind a backlog that only grows: stop sampling
                    latencies.append(float("inf"))
                    break
                latencies.append((time.perf_counter() - sent) * 1000)
    finally:
        await producer.stop()
    return latencies


def _change_seen(ex: str, want: str, dated: datetime, seen: int) -> Callable[[list[Any]], bool]:
    def arrived(records: list[Any]) -> bool:
        for r in records[seen:]:
            data = json.loads(r.value)["data"]
            if (
                data["exchange"] == ex
                and data["rule"] == "jp.liability_reserve"
                and data["status"] == want
                and datetime.fromisoformat(data["as_of"]) >= dated
            ):
                return True
        return False

    return arrived


async def _latency(
    bootstrap: str, log_dir: Path, prefix: str, records: list[Record]
) -> dict[str, Any]:
    d = _deployment(bootstrap, prefix)
    worker = WorkerProcess(d, log_dir, name=f"latency-{LATENCY_RATE}").start(STARTUP_SECONDS)
    try:
        load = _Load(bootstrap, prefix, records, LATENCY_RATE, LATENCY_SECONDS + 10)
        try:
            await load.under_way(2.0)
            latencies = await _latencies(d, LATENCY_SAMPLES)
        finally:
            await load.cancel()
    finally:
        worker.stop()
    summary = _latency_summary(latencies)
    summary["offered_eps"] = round(load.offered_eps)
    return summary


def _latency_summary(latencies: list[float]) -> dict[str, Any]:
    seen = [v for v in latencies if v != float("inf")]
    summary: dict[str, Any] = {"samples": len(seen), "lost_to_backlog": len(latencies) - len(seen)}
    if seen:
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            summary[name] = round(_percentile(seen, q), 1)
        summary["mean_of_seen"] = round(statistics.fmean(seen), 1)
    return summary


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _lag(worker: WorkerProcess) -> tuple[int, int]:
    """The worker's consumer lag over its partitions (records), and its events so far."""
    samples = _scrape(worker)
    lag = _sum(samples, "reserve_monitor_consumer_lag_records")
    return int(lag), int(_sum(samples, "reserve_monitor_events_total"))


async def _lag_under_load(
    bootstrap: str, log_dir: Path, prefix: str, records: list[Record]
) -> dict[str, Any]:
    """The worker's consumer lag, read every ``LAG_EVERY`` s while ``LAG_RATE`` events/s are
    offered for ``LAG_SECONDS``; then how long it takes to reach 0 once the load stops."""
    d = _deployment(bootstrap, prefix)
    worker = WorkerProcess(d, log_dir, name=f"lag-{LAG_RATE}").start(STARTUP_SECONDS)
    try:
        load = _Load(bootstrap, prefix, records, LAG_RATE, LAG_SECONDS)
        readings: list[tuple[float, int, int]] = []  # (s since the load began, lag, events)
        try:
            await load.under_way()
            while not load.task.done():
                await asyncio.sleep(LAG_EVERY)
                lag, events = _lag(worker)
                readings.append((time.perf_counter() - load.started, lag, events))
            await load.wait()
        finally:
            await load.cancel()
        stopped = time.perf_counter()
        caught_up = None
        while time.perf_counter() - stopped < 60:
            if _lag(worker)[0] == 0:
                caught_up = time.perf_counter() - stopped
                break
            await asyncio.sleep(0.2)
    finally:
        worker.stop()
    start, end = readings[0], readings[-1]
    assert load.finished is not None
    return {
        "offered_eps": round(load.offered_eps),
        "seconds": round(load.finished - load.started, 1),
        "lag_at_start": start[1],
        "lag_at_end": end[1],
        "lag_max": max(r[1] for r in readings),
        "start_at_s": round(start[0], 1),
        "end_at_s": round(end[0], 1),
        "worker_eps_during": round((end[2] - start[2]) / (end[0] - start[0]))
        if end[0] > start[0]
        else None,
        "caught_up_after_stop_s": None if caught_up is None else round(caught_up, 1),
        "readings": [[round(t, 1), lag] for t, lag, _ in readings],
    }


# -- (h) restore ----------------------------------------------------------------------


async def _restore(bootstrap: str, log_dir: Path, prefix: str) -> dict[str, Any]:
    """One worker takes the records of 1,000 exchanges and is stopped (SIGTERM); a fresh
    worker of the same app id restores its tasks from the changelog."""
    records = _records(RESTORE_EVENTS, RESTORE_EXCHANGES)
    d = _deployment(bootstrap, prefix)
    first = WorkerProcess(d, log_dir, name="restore-first").start(STARTUP_SECONDS)
    try:
        await _prefill(bootstrap, prefix, records, txn=False)
        deadline = time.monotonic() + 300
        while True:
            lag, events = _lag(first)
            if events >= len(records) and lag == 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the first worker took {events} of {len(records)} records")
            await asyncio.sleep(0.5)
        exchanges = len(first.status())
    finally:
        first.stop()  # SIGTERM: it commits its tasks and leaves
    fresh = WorkerProcess(d, log_dir, name="restore-fresh")
    launched = time.perf_counter()
    fresh.launch()
    try:
        fresh.wait_healthy(STARTUP_SECONDS)
        healthy_s = time.perf_counter() - launched
        samples = _scrape(fresh)
        restored = len(fresh.status())
    finally:
        fresh.stop()
    seconds = [s.value for s in samples if s.name == "reserve_monitor_restore_seconds"]
    logged = _RESTORED_LINE.findall(fresh.log(400))
    return {
        "exchanges": exchanges,
        "records": len(records),
        "exchanges_restored": restored,
        "tasks": len(seconds),
        "restore_seconds_max": round(max(seconds), 3) if seconds else None,
        "restore_seconds_sum": round(sum(seconds), 3),
        "changelog_records_read": sum(int(m[1]) for m in logged),
        "changelog_keys": sum(int(m[2]) for m in logged),
        "start_to_healthy_s": round(healthy_s, 2),
    }


# -- the run --------------------------------------------------------------------------


async def _kafka(
    bootstrap: str, log_dir: Path, results: dict[str, Any], prefixes: list[str]
) -> None:
    """(a) to (d), (g) and (h), each figure put in ``results`` as soon as it is measured."""

    def prefix(name: str) -> str:
        prefixes.append(f"{name}{uuid.uuid4().hex[:8]}.")
        return prefixes[-1]

    records = _records(EVENTS, EXCHANGES)
    results.update(events=len(records), exchanges=EXCHANGES, partitions=PARTITIONS)
    replay_eps, changes = replay_speed.replay_eps(_jsonl(records), REPEATS)
    results["replay_same_records_eps"] = round(replay_eps)
    print(
        f"  replay on the same {len(records):,} records (best of {REPEATS}) "
        f"{replay_eps:12,.0f} events/s   ({changes} changes)",
        flush=True,
    )

    drained = prefix("bench")
    one = await _drain(bootstrap, log_dir, records, 1, drained)
    results["worker"] = one
    worker = one["eps"]
    results.update(
        worker_eps=round(worker),
        worker_to_replay=round(worker / replay_eps, 3),
    )
    print(
        f"  (b) one worker                {worker:12,.0f} events/s   "
        f"(target >= 50,000; {len(records):,} in {one['seconds']} s)",
        flush=True,
    )
    print(f"      worker / replay           {worker / replay_eps:12.2f}   (target >= 0.5)")
    _drain_notes(one)

    raw = await _raw_consume_rate(bootstrap, drained, len(records))
    results.update(raw_consume_eps=round(raw), worker_to_raw=round(worker / raw, 3))
    print(f"  (a) raw aiokafka consume      {raw:12,.0f} events/s", flush=True)
    print(f"  (c) worker / raw              {worker / raw:12.2f}", flush=True)
    if _faust_installed():
        ceiling = _faust_ceiling(bootstrap, drained, len(records))
        results.update(
            faust_ceiling_eps=round(ceiling), worker_to_faust_ceiling=round(worker / ceiling, 3)
        )
        print(f"      bare Faust worker, acks   {ceiling:12,.0f} events/s", flush=True)
        print(f"      worker / bare Faust       {worker / ceiling:12.2f}", flush=True)
    else:
        results["faust_ceiling_eps"] = None
        print(f"      {FAUST_MISSING}", flush=True)

    two = await _drain(bootstrap, log_dir, records, 2, prefix("scale"))
    results["two_workers"] = two
    results["scale_out"] = {
        "one_worker_eps": round(worker),
        "two_workers_eps": round(two["eps"]),
        "speedup": round(two["eps"] / worker, 2),
    }
    print(
        f"  (g) two workers in one group  {two['eps']:12,.0f} events/s   "
        f"({two['eps'] / worker:.2f}x one; target >= 1.6) on {os.cpu_count()} cores",
        flush=True,
    )
    _drain_notes(two)

    load = _load_records(max(LATENCY_RATE * (LATENCY_SECONDS + 10), LAG_RATE * LAG_SECONDS))
    latency = await _latency(bootstrap, log_dir, prefix(f"lat{LATENCY_RATE}-"), load)
    results["alert_latency_ms"] = latency
    print(f"  (d) alert latency, {_latency_text(latency)}", flush=True)
    lag = await _lag_under_load(bootstrap, log_dir, prefix(f"lag{LAG_RATE}-"), load)
    results["lag_under_load"] = lag
    print(f"      consumer lag, {_lag_text(lag)}", flush=True)

    restore = await _restore(bootstrap, log_dir, prefix("restore"))
    results["restore"] = restore
    print(f"  (h) restore, {_restore_text(restore)}", flush=True)


def _drain_notes(drained: dict[str, Any]) -> None:
    """The sustained rate, and what disturbed a drain, as the workers showed it."""
    if "sustained_eps" in drained:
        print(
            f"      sustained, from the first commit seen ({drained['first_commit_s']} s) "
            f"to the last: {drained['sustained_eps']:,} events/s",
            flush=True,
        )
    print(
        f"      the slowest answer of a worker to /healthz meanwhile: "
        f"{drained['slowest_healthz_answer_s']} s",
        flush=True,
    )
    if drained["heartbeat_session_expiries"]:
        print(
            f"      the group dropped a worker {drained['heartbeat_session_expiries']} time(s) "
            "for missed heartbeats meanwhile (see the worker logs in .bench/)",
            flush=True,
        )


def _latency_text(summary: dict[str, Any]) -> str:
    text = f"{summary['offered_eps']:,} events/s offered: "
    if not summary["samples"]:
        return text + f"no change seen within {LATENCY_TIMEOUT:.0f} s (the worker is behind)"
    text += " ".join(f"{q} {summary[q]:.0f} ms" for q in ("p50", "p95", "p99"))
    text += f" (n={summary['samples']}; target p99 < 250 ms)"
    if summary["lost_to_backlog"]:
        text += f"; then a change took over {LATENCY_TIMEOUT:.0f} s: the worker fell behind"
    return text


def _lag_text(lag: dict[str, Any]) -> str:
    caught = lag["caught_up_after_stop_s"]
    return (
        f"{lag['offered_eps']:,} events/s offered for {lag['seconds']:.0f} s "
        f"(asked {LAG_RATE:,}): {lag['lag_at_start']:,} records at {lag['start_at_s']:.0f} s, "
        f"{lag['lag_at_end']:,} at {lag['end_at_s']:.0f} s (max {lag['lag_max']:,}); worker "
        f"{lag['worker_eps_during'] or 0:,} events/s meanwhile; "
        + (
            f"lag 0 {caught:.1f} s after the load stopped"
            if caught is not None
            else "lag not 0 within 60 s of the load stopping"
        )
    )


def _restore_text(restore: dict[str, Any]) -> str:
    return (
        f"{restore['exchanges']:,} exchanges ({restore['records']:,} records taken, then "
        f"SIGTERM): a fresh worker restored {restore['exchanges_restored']:,} exchanges, "
        f"{restore['changelog_records_read']:,} changelog records, in "
        f"{restore['restore_seconds_max']} s (max over {restore['tasks']} tasks; sum "
        f"{restore['restore_seconds_sum']} s), healthy {restore['start_to_healthy_s']} s "
        "after its start"
    )


def _table(results: dict[str, Any]) -> None:
    """The figures of issue #11 beside its targets."""
    rows: list[tuple[str, str, str]] = []

    def eps(key: str) -> str:
        value = results.get(key)
        return "-" if value is None else f"{value:,} events/s"

    def ratio(key: str) -> str:
        value = results.get(key)
        return "-" if value is None else f"{value:.2f}"

    rows.append(("replay, the steady 50-exchange file", eps("replay_eps"), ">= 100,000"))
    rows.append(("replay, the records below", eps("replay_same_records_eps"), ""))
    rows.append(("raw aiokafka consume", eps("raw_consume_eps"), ""))
    if "faust_ceiling_eps" in results:
        faust = eps("faust_ceiling_eps") if results["faust_ceiling_eps"] else "not installed"
        rows.append(("bare Faust worker, acks", faust, ""))
    rows.append(("one worker", eps("worker_eps"), ">= 50,000"))
    sustained = results.get("worker", {}).get("sustained_eps")
    if sustained:
        rows.append(("  sustained, after the first commit", f"{sustained:,} events/s", ""))
    rows.append(("  / replay, same records", ratio("worker_to_replay"), ">= 0.5"))
    rows.append(("  / raw aiokafka", ratio("worker_to_raw"), ""))
    scale = results.get("scale_out")
    if scale:
        rows.append(("two workers, one group", f"{scale['two_workers_eps']:,} events/s", ""))
        rows.append(("  / one worker", f"{scale['speedup']:.2f}", ">= 1.6"))
    latency = results.get("alert_latency_ms")
    if latency:
        figure = (
            " / ".join(f"{latency[q]:.0f}" for q in ("p50", "p95", "p99")) + " ms"
            if latency["samples"]
            else "none seen"
        )
        rows.append(
            (f"alert latency p50/p95/p99, {latency['offered_eps']:,}/s", figure, "p99 < 250 ms")
        )
    lag = results.get("lag_under_load")
    if lag:
        figure = f"{lag['lag_at_start']:,} -> {lag['lag_at_end']:,} (max {lag['lag_max']:,})"
        rows.append((f"consumer lag at {lag['offered_eps']:,}/s offered", figure, "bounded"))
    restore = results.get("restore")
    if restore:
        figure = f"{restore['restore_seconds_max']} s (sum {restore['restore_seconds_sum']} s)"
        rows.append((f"restore, {restore['exchanges']:,} exchanges", figure, "seconds"))
    print()
    print(f"  {'':44} {'measured':>30}   target")
    for name, figure, target in rows:
        print(f"  {name:44} {figure:>30}   {target}")
    print()


async def _delete_topics(bootstrap: str, prefixes: list[str]) -> None:
    """The topics of this run (inputs, outputs, changelogs), by their unique prefixes."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        stems = tuple(p.rstrip(".") for p in prefixes)
        ours = [t for t in await admin.list_topics() if t.startswith(stems)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def _write(log_dir: Path, results: dict[str, Any]) -> None:
    results.pop("measured_at", None)  # last, after the figures
    results["measured_at"] = datetime.now(UTC).isoformat()
    (log_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")


async def main() -> int:
    bootstrap = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092")
    kafka = os.environ.get("BENCH_KAFKA", "1") != "0"
    log_dir = ROOT / ".bench"
    log_dir.mkdir(exist_ok=True)
    # the engine and its state compiled (make compile), or their sources: figures differ
    compiled = running_compiled()
    print(
        f"bench: {os.cpu_count()} cores; the core {'compiled' if compiled else 'from its sources'}"
        f"; then {EVENTS:,} events of the steady scenario with "
        f"{EXCHANGES} exchanges, {PARTITIONS} partitions, broker {bootstrap}"
        + ("" if kafka else " (skipped: BENCH_KAFKA=0)"),
        flush=True,
    )
    results: dict[str, Any] = {"cores": os.cpu_count(), "core_compiled": compiled}
    # no broker needed: first, so that they print whatever becomes of the Kafka part
    results["replay"] = replay_speed.measure(log_dir, REPEATS)
    results["replay_eps"] = results["replay"]["replay_eps"]
    print("  (f) core CPU cost per event (records taken in sequence, then finish):", flush=True)
    results["core_scaling"] = core_scaling.measure(repeats=REPEATS)
    _write(log_dir, results)
    status = 0
    if kafka:
        prefixes: list[str] = []
        try:
            await _kafka(bootstrap, log_dir, results, prefixes)
        except Exception as error:  # the figures above stand; say why the rest is missing
            traceback.print_exc()
            results["kafka_error"] = f"{type(error).__name__}: {error}"
            print(f"bench: the Kafka part failed ({results['kafka_error']})", flush=True)
            status = 1
        finally:
            if prefixes and os.environ.get("BENCH_KEEP_TOPICS") != "1":
                with contextlib.suppress(Exception):
                    await _delete_topics(bootstrap, prefixes)
    else:
        results["kafka_error"] = "skipped (BENCH_KAFKA=0)"
    _table(results)
    _write(log_dir, results)
    print(f"written to {log_dir / 'results.json'}")
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
