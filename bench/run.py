"""``make bench``: throughput and latency of the monitor on this machine, in one run.

First the figures that need no broker, so that they print whatever becomes of
the rest (issue #10):

(e) ``replay`` of the simulator's steady 50-exchange scenario: events/s, the bare
    ``json.loads`` rate of the same lines, their ratio, and µs per event split
    into decode and engine (``bench/replay_speed.py``);
(f) the core's CPU cost per exchange event and per price event at 10, 1,000 and
    100,000 wallets per exchange and at 1, 100 and 1,000 exchanges
    (``bench/core_scaling.py``).

Then, against one local broker and one set of pre-filled input topics
(``BENCH_KAFKA=0`` skips them):

(a) the raw aiokafka consume rate of the input topics (the limit), and beside it
    Faust's own ceiling: a bare Faust worker that only acknowledges each record
    (``bench/faust_ceiling.py``);
(b) events/s of one worker draining the same topics into updated state;
(c) b / a;
(d) alert latency, produce to CloudEvent consumed, p50/p95/p99, under background load;
(g) two workers in one group against one, on 12 partitions.

Prints a table and writes ``.bench/results.json`` (after (e) and (f), and again
at the end; a failed or skipped Kafka part is recorded there as ``kafka_error``;
a failed one makes the exit status 1). It measures; it asserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import core_scaling, replay_speed
from connectors.scenarios import steady
from connectors.simulator import encode, produce_live
from tests.integration.harness import ROOT, Deployment, Reader, WorkerProcess, produce

EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
# runs of each in-process figure (replay, core scaling); the best one is kept
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "40"))
# background loads of the latency measurement: one a worker absorbs here, and the
# 5,000 events/s of issue #6 (more than one worker drains on this machine: its lag grows)
BACKGROUND_RATES = [int(r) for r in os.environ.get("BENCH_BACKGROUND_RATES", "500,5000").split(",")]
# a change not seen this long after its event counts as lost to the backlog
LATENCY_TIMEOUT = 20.0
PARTITIONS = 4
# how often a drain's progress is read (a /metrics scrape); the drains take seconds
POLL_SECONDS = 0.5
SCALE_PARTITIONS = 12
# how long a worker of the scale-out measurement may take to start consuming
STARTUP_SECONDS = 90.0
INPUTS = ("exchange.trades", "exchange.wallet-balances", "exchange.ledger", "market.prices")


def _records(count: int, start: datetime | None = None) -> list[Any]:
    """``count`` records of the steady scenario, none dated after now.

    A worker refuses events dated ahead of its clock; about 14 records a second of
    event time, so a large ``count`` must start further back than two hours.
    """
    if start is None:
        now = datetime.now(UTC)
        span = _records(count, now)[-1].ts - now if count else timedelta(0)
        start = now - max(timedelta(hours=2), span)
    return list(itertools.islice(steady(start, 11, exchanges=20, duration=None), count))


async def _prefill(bootstrap: str, prefix: str, records: list[Any]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        sends = [producer.send(*_triple(r, prefix)) for r in records]
        await asyncio.gather(*[await s for s in sends])
    finally:
        await producer.stop()


def _triple(record: Any, prefix: str) -> tuple[str, bytes, bytes]:
    topic, key, value = encode(record, prefix)
    return topic, value, key


async def _raw_consume_rate(bootstrap: str, prefix: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        *[prefix + t for t in INPUTS],
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
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


def _processed(worker: WorkerProcess) -> int:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(worker.metrics()):
        for sample in family.samples:
            if sample.name == "reserve_monitor_events_total":
                total += sample.value
    return int(total)


async def _worker_rate(workers: list[WorkerProcess], count: int) -> float:
    """Events/s the ``workers`` (one group) drain, from their first event to the last."""
    first = None
    while True:
        done = sum(_processed(worker) for worker in workers)
        now = time.perf_counter()
        if done and first is None:
            first, first_done = now, done
        if done >= count:
            assert first is not None
            return (done - first_done) / (now - first) if now > first else float("nan")
        # each look is a /metrics scrape the worker renders: looking often slows it down
        await asyncio.sleep(POLL_SECONDS)


async def _latencies(d: Deployment, samples: int, background: int) -> list[float]:
    """Flip one exchange's fund across its floor; time each change to its CloudEvent."""
    loader = asyncio.create_task(
        produce_live(d.bootstrap, d.prefix, rate=background, duration=3600, exchanges=20, seed=5)
    )
    latencies = []
    # one second apart, the last about now: a worker refuses events dated ahead of its clock
    base = datetime.now(UTC) - timedelta(seconds=samples)
    ts = lambda i: (base + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")  # noqa: E731
    ex = "bench-latency"
    setup = [
        (
            "market.prices",
            "BTC",
            {
                "event_id": "lp-0",
                "asset": "BTC",
                "ts": ts(0),
                "price": "10000000",
                "currency": "JPY",
            },
        ),
        (
            "exchange.wallet-balances",
            ex,
            {
                "event_id": "lw-0",
                "exchange": ex,
                "ts": ts(0),
                "wallet": "c",
                "asset": "BTC",
                "balance": "100",
                "custody": "cold",
                "holder": "customer",
            },
        ),
    ]
    await produce(d.bootstrap, [(d.prefix + t, k, v) for t, k, v in setup])
    async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
        for i in range(1, samples + 1):
            amount = "1000000000" if i % 2 else "9000000000"  # under / over the ¥2 bn floor
            event = {
                "type": "reserve_fund",
                "event_id": f"lf-{i}",
                "exchange": ex,
                "ts": ts(i),
                "amount": amount,
                "currency": "JPY",
            }
            seen = len(alerts.records)
            sent = time.perf_counter()
            await produce(d.bootstrap, [(d.topic("exchange.ledger"), ex, event)])
            want = "breach" if i % 2 else "ok"

            def arrived(records: list[Any], want: str = want, i: int = i, seen: int = seen) -> bool:
                for r in records[seen:]:
                    data = json.loads(r.value)["data"]
                    if (
                        data["exchange"] == ex
                        and data["rule"] == "jp.liability_reserve"
                        and data["status"] == want
                        and data["as_of"] >= ts(i)
                    ):
                        return True
                return False

            try:
                await alerts.until(arrived, timeout=LATENCY_TIMEOUT)
            except AssertionError:  # behind a backlog that only grows: stop sampling
                latencies.append(float("inf"))
                break
            latencies.append((time.perf_counter() - sent) * 1000)
    loader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loader  # lets the load's producer close
    return latencies


def _create_topics(d: Deployment, log_dir: Any) -> None:
    """A worker of ``d`` started and stopped: it creates the input topics, partitioned.

    A new group's first join has been seen to stall in Faust, its changelog topics
    just created (a worker not consuming within a minute); a second group then tries.
    """
    for attempt in (1, 2):
        app = d.app_id if attempt == 1 else f"{d.app_id}-topics"
        group = Deployment(d.bootstrap, prefix=d.prefix, partitions=d.partitions, app=app)
        try:
            WorkerProcess(group, log_dir).start().stop()
            return
        except AssertionError:
            if attempt == 2:
                raise
            print(
                f"      the worker creating the topics of {d.prefix} did not start "
                "consuming within 60 s; again, as a new group",
                flush=True,
            )


async def _scale_out(bootstrap: str, records: list[Any], log_dir: Any) -> tuple[float, float]:
    """Drain the same topics with one worker, then with two in one group."""
    d = Deployment(bootstrap, prefix=f"scale{uuid.uuid4().hex[:8]}.", partitions=SCALE_PARTITIONS)
    _create_topics(d, log_dir)
    await _prefill(bootstrap, d.prefix, records)
    rates = []
    for size in (1, 2):
        for attempt in (1, 2):
            group = Deployment(
                bootstrap,
                prefix=d.prefix,
                partitions=SCALE_PARTITIONS,
                app=f"{d.app_id}-x{size}-{attempt}",
            )
            workers = [WorkerProcess(group, log_dir, name=f"x{size}-{n}") for n in range(size)]
            try:
                for worker in workers:
                    worker.launch()
                try:
                    for worker in workers:
                        worker.wait_healthy(STARTUP_SECONDS)
                except AssertionError:
                    if attempt == 2:
                        raise
                    # seen once: a new group's first join stalled in Faust, its changelog
                    # topics just created; the figure is taken with a fresh group instead
                    print(
                        f"      a worker of {size} did not start consuming within "
                        f"{STARTUP_SECONDS:.0f} s ({worker.log_path}); again, as a new group",
                        flush=True,
                    )
                    continue
                rates.append(await _worker_rate(workers, len(records)))
                break
            finally:
                for worker in workers:
                    worker.stop()
    return rates[0], rates[1]


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


async def _timed_worker(d: Deployment, log_dir: Any, rate: int) -> list[float]:
    worker = WorkerProcess(d, log_dir, name=f"latency-{rate}").start()
    try:
        return await _latencies(d, LATENCY_SAMPLES, rate)
    finally:
        worker.stop()


def _latency_summary(latencies: list[float]) -> dict[str, Any]:
    seen = [v for v in latencies if v != float("inf")]
    summary: dict[str, Any] = {"samples": len(seen), "lost_to_backlog": len(latencies) - len(seen)}
    if seen:
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            summary[name] = round(_percentile(seen, q), 1)
        summary["mean_of_seen"] = round(statistics.fmean(seen), 1)
    return summary


def _latency_text(summary: dict[str, Any]) -> str:
    if not summary["samples"]:
        return f"no change seen within {LATENCY_TIMEOUT:.0f} s (the worker is behind)"
    text = " ".join(f"{q} {summary[q]:.0f} ms" for q in ("p50", "p95", "p99"))
    text += f" (n={summary['samples']})"
    if summary["lost_to_backlog"]:
        text += f"; then a change took over {LATENCY_TIMEOUT:.0f} s: the worker fell behind"
    return text


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _kafka(bootstrap: str, log_dir: Any, results: dict[str, Any]) -> None:
    """(a) to (d) and (g), each figure put in ``results`` as soon as it is measured."""
    records = _records(EVENTS)
    results.update(events=len(records), partitions=PARTITIONS)
    d = Deployment(bootstrap, prefix=f"bench{uuid.uuid4().hex[:8]}.", partitions=PARTITIONS)
    _create_topics(d, log_dir)
    await _prefill(bootstrap, d.prefix, records)
    raw = await _raw_consume_rate(bootstrap, d.prefix, len(records))
    results["raw_consume_eps"] = round(raw)
    print(f"  (a) raw aiokafka consume      {raw:12,.0f} events/s", flush=True)
    ceiling = _faust_ceiling(bootstrap, d.prefix, len(records))
    results["faust_ceiling_eps"] = round(ceiling)
    print(f"      bare Faust worker, acks   {ceiling:12,.0f} events/s", flush=True)

    # a new group on the same topics: it drains them from the beginning
    d2 = Deployment(bootstrap, prefix=d.prefix, partitions=PARTITIONS, app=f"{d.app_id}-drain")
    worker = WorkerProcess(d2, log_dir, name="drain").start()
    try:
        drained = await _worker_rate([worker], len(records))
        results.update(
            worker_eps=round(drained),
            worker_to_raw=round(drained / raw, 3),
            worker_to_faust_ceiling=round(drained / ceiling, 3),
        )
        print(f"  (b) one worker                {drained:12,.0f} events/s", flush=True)
        print(f"  (c) worker / raw              {drained / raw:12.2f}", flush=True)
        print(f"      worker / bare Faust       {drained / ceiling:12.2f}", flush=True)
        latency: dict[str, Any] = results.setdefault("alert_latency_ms", {})
        for rate in BACKGROUND_RATES:
            # a fresh tenant per load: the backlog of one does not delay the next
            d3 = Deployment(bootstrap, prefix=f"lat{rate}-{uuid.uuid4().hex[:6]}.", partitions=4)
            latency[str(rate)] = _latency_summary(await _timed_worker(d3, log_dir, rate))
            print(f"  (d) alert latency, {rate}/s background: {_latency_text(latency[str(rate)])}")
    finally:
        worker.stop()
    one, two = await _scale_out(bootstrap, records, log_dir)
    results["scale_out"] = {
        "partitions": SCALE_PARTITIONS,
        "one_worker_eps": round(one),
        "two_workers_eps": round(two),
        "speedup": round(two / one, 2),
    }
    print(
        f"  (g) {SCALE_PARTITIONS} partitions: one worker {one:,.0f} events/s, two workers "
        f"{two:,.0f} events/s ({two / one:.2f}x) on {os.cpu_count()} cores",
        flush=True,
    )


def _write(log_dir: Any, results: dict[str, Any]) -> None:
    results.pop("measured_at", None)  # last, after the figures
    results["measured_at"] = datetime.now(UTC).isoformat()
    (log_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")


async def main() -> int:
    bootstrap = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092")
    kafka = os.environ.get("BENCH_KAFKA", "1") != "0"
    log_dir = ROOT / ".bench"
    log_dir.mkdir(exist_ok=True)
    print(
        f"bench: {os.cpu_count()} cores; then {EVENTS} events of the steady scenario, "
        f"{PARTITIONS} partitions, broker {bootstrap}"
        + ("" if kafka else " (skipped: BENCH_KAFKA=0)"),
        flush=True,
    )
    results: dict[str, Any] = {"cores": os.cpu_count()}
    # no broker needed: first, so that they print whatever becomes of the Kafka part
    results["replay"] = replay_speed.measure(log_dir, REPEATS)
    results["replay_eps"] = results["replay"]["replay_eps"]
    print("  (f) core CPU cost per event (records taken in sequence, then finish):", flush=True)
    results["core_scaling"] = core_scaling.measure(repeats=REPEATS)
    _write(log_dir, results)
    status = 0
    if kafka:
        try:
            await _kafka(bootstrap, log_dir, results)
        except Exception as error:  # the figures above stand; say why the rest is missing
            traceback.print_exc()
            results["kafka_error"] = f"{type(error).__name__}: {error}"
            print(f"bench: the Kafka part failed ({results['kafka_error']})", flush=True)
            status = 1
    else:
        results["kafka_error"] = "skipped (BENCH_KAFKA=0)"
    _write(log_dir, results)
    print(f"written to {log_dir / 'results.json'}")
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
