"""What ``/healthz`` answers: the decision from plain numbers, and reading the consumer."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from monitor.worker.health import (
    HEALTHY,
    Health,
    assess,
    newest_fetch,
    tick_silence_limit,
)

TICK_LIMIT = 10.0
FETCH_LIMIT = 20.0


def judge(
    *,
    since_tick: float | None = 0.5,
    rebalancing: bool = False,
    since_fetch: float | None = 1.0,
) -> Health:
    return assess(
        since_tick=since_tick,
        tick_limit=TICK_LIMIT,
        rebalancing=rebalancing,
        since_fetch=since_fetch,
        fetch_limit=FETCH_LIMIT,
    )


def test_a_ticking_worker_that_hears_from_kafka_is_healthy() -> None:
    assert judge() == HEALTHY
    assert HEALTHY.http_status == 200
    assert HEALTHY.to_document() == {"healthy": True}


def test_an_idle_worker_is_healthy_as_long_as_kafka_answers_its_fetches() -> None:
    # no input for hours changes nothing: an empty fetch answer is an answer
    assert judge(since_fetch=FETCH_LIMIT - 0.1).healthy


def test_a_worker_kafka_has_not_answered_for_the_limit_is_cut_off() -> None:
    health = judge(since_fetch=FETCH_LIMIT + 5)
    assert not health.healthy and health.http_status == 503
    assert health.reason is not None
    assert health.reason.startswith("cut off from Kafka: no answer from a broker to a fetch")
    assert "for 25 s (limit 20 s)" in health.reason
    assert health.to_document() == {"healthy": False, "reason": health.reason}


def test_a_worker_that_never_heard_from_kafka_is_not_yet_consuming() -> None:
    health = judge(since_fetch=None)
    assert not health.healthy
    assert health.reason == "connecting: no answer from Kafka to a fetch yet"


def test_a_rebalancing_worker_is_not_consuming() -> None:
    health = judge(rebalancing=True)
    assert not health.healthy
    assert health.reason is not None and health.reason.startswith("rebalancing:")


def test_a_worker_whose_timer_stopped_is_stalled_whatever_kafka_says() -> None:
    health = judge(since_tick=TICK_LIMIT + 2)
    assert not health.healthy
    assert health.reason is not None
    assert health.reason.startswith("stalled: the worker's timer last ran 12 s ago (limit 10 s)")


def test_a_worker_whose_timer_has_not_run_is_starting() -> None:
    health = judge(since_tick=None, since_fetch=None)
    assert not health.healthy
    assert health.reason is not None and health.reason.startswith("starting:")


def test_the_timer_may_miss_five_ticks_and_never_less_than_10_s() -> None:
    assert tick_silence_limit(1.0) == 10.0
    assert tick_silence_limit(0.5) == 10.0
    assert tick_silence_limit(4.0) == 20.0


@dataclass
class FakeConsumer:
    """aiokafka's view of the partitions assigned and when each was last answered (ms)."""

    answered: dict[str, int | None]
    revoked: set[str] = field(default_factory=set)

    def assignment(self) -> frozenset[str]:
        return frozenset(self.answered)

    def last_poll_timestamp(self, tp: str) -> int | None:
        # aiokafka asserts the partition is assigned; a rebalance may revoke it meanwhile
        assert tp not in self.revoked, "Partition is not assigned"
        return self.answered[tp]


def test_the_newest_fetch_answer_of_any_partition_is_when_kafka_last_answered() -> None:
    consumer = FakeConsumer({"prices-0": 1_700_000_000_000, "trades-0": 1_700_000_004_500})
    assert newest_fetch(consumer) == pytest.approx(1_700_000_004.5)


def test_partitions_not_yet_fetched_or_revoked_meanwhile_are_left_out() -> None:
    consumer = FakeConsumer(
        {"prices-0": None, "trades-0": 1_700_000_001_000, "trades-1": 1_700_000_009_000},
        revoked={"trades-1"},
    )
    assert newest_fetch(consumer) == pytest.approx(1_700_000_001.0)


def test_a_consumer_with_nothing_answered_or_assigned_has_no_fetch() -> None:
    assert newest_fetch(FakeConsumer({"prices-0": None})) is None
    assert newest_fetch(FakeConsumer({})) is None
