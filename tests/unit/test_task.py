"""A task, without Kafka: fetches in any pieces give replay's changes, bad bytes a dead letter.

The worker's per-record path (a fetch's records decoded as they are added, the
partition group's merge in append order, the decision of ``intake.admit``, the
collector) is driven here as the loop drives it, on records of the simulator's
steady scenario, and held to ``replay`` of the same records in append order.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from aiokafka import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine, Outcome
from monitor.core.events import Topic
from monitor.core.policy import load_policy
from monitor.replay import replay
from monitor.synthetic.scenarios import steady
from monitor.synthetic.simulator import encode
from monitor.worker import metrics as worker_metrics
from monitor.worker.changelog import Restored
from monitor.worker.output import Collector
from monitor.worker.prices import PriceLog, PriceRecord
from monitor.worker.tasks import Context, Task
from monitor.worker.topics import INPUTS
from tests.unit.builders import T0, at, price, reserve_fund, topic_for, trade, wallet
from tests.unit.builders import encode as encode_doc

START = datetime(2024, 5, 31, 13, tzinfo=UTC)
PRICES = TopicPartition(Topic.PRICES.value, 0)
MAX_IDLE = timedelta(seconds=0.1)
REPORT_EVERY = 5.0
NOT_JSON = b"{not json"


class Fetched(NamedTuple):
    """A consumer record as far as the task reads it."""

    offset: int
    timestamp: int  # append time, ms
    key: bytes | None
    value: bytes | None


class Log(NamedTuple):
    """The records of the scenario, per partition, in append order, and as replay lines."""

    partitions: dict[TopicPartition, list[Fetched]]
    prices: list[PriceRecord]
    lines: list[str]
    bad: Fetched  # the record whose bytes are no event


def _log(count: int) -> Log:
    partitions: dict[TopicPartition, list[Fetched]] = {}
    prices: list[PriceRecord] = []
    lines: list[str] = []
    appended = int(START.timestamp() * 1000)
    bad: Fetched | None = None
    records = (encode(r) for r in steady(START, seed=3, exchanges=3, duration=None))
    for n, (topic, key, value) in zip(range(count), records, strict=False):
        if n == count // 2:  # one record of bytes that are no event, among the others
            topic, value = Topic.TRADES.value, NOT_JSON
        elif n > 2 * count // 3 and topic == Topic.WALLET_BALANCES.value:
            document = json.loads(value)
            if document["custody"] == "hot":  # hot wallets emptied: an incident to report
                document["balance"] = "0"
                value = json.dumps(document, separators=(",", ":")).encode()
        event_time = json.loads(value)["ts"] if value != NOT_JSON else None
        if event_time is not None:
            dated = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
            appended = max(appended + 1, int(dated.timestamp() * 1000))
        else:
            appended += 1
        if topic == Topic.PRICES.value:
            prices.append(PriceRecord(0, len(prices), appended, key, value))
        else:
            tp = TopicPartition(topic, 0)
            held = partitions.setdefault(tp, [])
            held.append(Fetched(len(held), appended, key, value))
            if value == NOT_JSON:
                bad = held[-1]
        text = value.decode() if value != NOT_JSON else '"not json"'
        lines.append(
            f'{{"topic": "{topic}", "key": "{key.decode()}", "value": {text}, '
            f'"timestamp": {appended}}}\n'
        )
    assert bad is not None
    return Log(partitions, prices, lines, bad)


LOG = _log(900)


def _task() -> Task:
    policy = load_policy()
    context = Context(
        app_id="reserve-monitor",
        currency=policy.reporting_currency,
        tasks=1,
        inputs={topic.value: topic for topic in INPUTS},
        prices_topic=Topic.PRICES.value,
        alerts="alerts",
        breaches="breaches",
        adequacy="adequacy",
        deadletter="deadletter",
        max_ahead=timedelta(seconds=300),
        max_idle=MAX_IDLE,
        price_history=timedelta(hours=6),
        report_every=REPORT_EVERY,
        metrics=worker_metrics.create(CollectorRegistry()),
        clock=WatermarkClock(),
        signer=None,
        engine=lambda: Engine(policy, max_idle=MAX_IDLE),
    )
    task = Task(0, context, Collector(None, "reserve-monitor", "changelog", 0))
    task.restore(Restored(), PriceLog([PRICES]))
    return task


def _fed_in_pieces(task: Task, pieces: list[int], order: list[int]) -> None:
    """Every partition's records added a piece at a time, a round of pieces per turn,
    partitions with records still to come marked as lagging, as the loop marks them."""
    left: dict[TopicPartition, list[Any]] = {tp: list(r) for tp, r in LOG.partitions.items()}
    left[PRICES] = list(LOG.prices)
    names = sorted(left, key=lambda tp: tp.topic)
    turn = 0
    while any(left.values()):
        for index in order:
            tp = names[index % len(names)]
            size = pieces[(turn + index) % len(pieces)]
            piece, left[tp] = left[tp][:size], left[tp][size:]
            if not piece:
                continue
            if tp == PRICES:
                task.group.add(tp, piece)
            else:
                task.add(tp, piece)
        for tp in names:
            task.group.lagging(tp, bool(left[tp]))
        while task.process(0.0, 50):
            pass
        turn += 1
    last = max(r.timestamp for r in [*LOG.prices, *(r for v in LOG.partitions.values() for r in v)])
    task.idle(datetime.fromtimestamp(last / 1000, UTC) + 2 * MAX_IDLE)


def _published(task: Task, topic: str) -> list[Any]:
    return [value for name, _, value, _ in task.collector.records if name == topic]


def _replayed() -> list[dict[str, Any]]:
    out = io.StringIO()
    replay(LOG.lines, Engine(load_policy(), journal=False, max_idle=MAX_IDLE), out)
    return [json.loads(text) for text in out.getvalue().splitlines()]


REPLAYED = _replayed()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=6),
    st.permutations(range(4)),
)
def test_fetches_in_any_pieces_give_replays_changes(pieces: list[int], order: list[int]) -> None:
    task = _task()
    _fed_in_pieces(task, pieces, order)
    alerts = [json.loads(body) for body in _published(task, "alerts")]
    key = lambda change: (change["subject"], change["time"], change["id"])  # noqa: E731
    assert sorted(alerts, key=key) == sorted(REPLAYED, key=key)
    assert {change["data"]["status"] for change in REPLAYED} >= {"ok", "breach"}


def test_bad_bytes_go_to_the_dead_letters_as_they_came_and_every_record_counts_once() -> None:
    task = _task()
    _fed_in_pieces(task, [7], [0, 1, 2, 3])
    (letter,) = [json.loads(body) for body in _published(task, "deadletter")]
    assert (letter["topic"], letter["offset"]) == (Topic.TRADES.value, LOG.bad.offset)
    assert base64.b64decode(letter["value_b64"]) == NOT_JSON
    assert letter["error"].startswith("value: not JSON")
    metrics, counts = task.context.metrics, task.collector.counts
    trades = Topic.TRADES.value
    assert counts[metrics.deadletters.labels(trades)] == 1
    assert counts[metrics.events.labels(trades, Outcome.INVALID.value)] == 1
    counted = sum(
        counts.get(metrics.events.labels(topic.value, outcome.value), 0)
        for topic in Topic
        for outcome in Outcome
    )
    assert counted == len(LOG.lines)  # each record once, whatever its outcome


def _taken(task: Task, *docs: dict[str, Any]) -> None:
    """``docs`` fetched from their input partitions and taken, each a moment of its own."""
    for doc in docs:
        tp = TopicPartition(topic_for(doc).value, 0)
        appended = int(datetime.fromisoformat(doc["ts"]).timestamp() * 1000)
        record = Fetched(0, appended, doc["exchange"].encode(), encode_doc(doc))
        task.add(tp, [record])
        while task.process(0.0, 50):
            pass
        task.idle(datetime.fromtimestamp(appended / 1000, UTC) + 2 * MAX_IDLE)  # quiet since


def _reported(task: Task, now: float) -> list[str]:
    """The exchanges whose adequacy report the tick at ``now`` publishes."""
    before = len(_published(task, "adequacy"))
    task.report_due(now)
    task.report(100)
    return [json.loads(body)["exchange"] for body in _published(task, "adequacy")[before:]]


def test_an_exchange_is_reported_again_after_an_interval_or_once_a_status_changed() -> None:
    """A report measures every rule afresh: an exchange judged at every moment is reported
    once per ``report_every``, and at the next tick after a change of status."""
    task = _task()
    dated = int(T0.timestamp() * 1000)
    task.group.add(PRICES, [PriceRecord(0, 0, dated, b"BTC", encode_doc(price("10700000")))])
    for ex in ("dmm", "calm"):
        _taken(
            task,
            wallet("97000", exchange=ex),
            wallet("3000", wallet_id="btc-hot-1", custody="hot", exchange=ex),
            reserve_fund("5000000000", exchange=ex),
        )
    assert sorted(_reported(task, 100.0)) == ["calm", "dmm"]  # judged, never reported

    _taken(task, *(trade(when=at(minutes=1), exchange=ex) for ex in ("dmm", "calm")))
    assert _reported(task, 101.0) == []  # judged again, the same statuses: not yet
    # dmm's hot wallet emptied: ops.hot_wallet_drain is a breach at once
    _taken(task, wallet("0", wallet_id="btc-hot-1", custody="hot", when=at(minutes=2)))
    assert _reported(task, 102.0) == ["dmm"]
    assert _reported(task, 104.0) == []
    assert _reported(task, 100.0 + REPORT_EVERY) == ["calm"]  # its interval is over
    assert _reported(task, 200.0) == []  # not judged since: nothing new to say
