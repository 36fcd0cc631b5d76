"""Faults on the real broker: a worker dies in a group, the broker restarts, a burst arrives.

Each test counts what went in against what the workers did with it: no status
change lost, none re-opened, no event applied twice or left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.core.events import Topic
from monitor.worker.app import partition_of
from tests.integration.harness import (
    Deployment,
    Reader,
    WorkerProcess,
    events,
    produce,
    uncommitted,
    wait_for,
)
from tests.integration.story import fund, healthy, prefixed, trade

pytestmark = pytest.mark.kafka

RESERVE = "jp.liability_reserve"
# ¥1.2 tn of volume at 0.5% lifts the floor to ¥6 bn, over a healthy exchange's ¥5 bn fund
SURGE = "1200000000000"
SURGE_TS = "2024-05-31T13:10:00Z"


def _exchanges_on_every_partition(partitions: int, per_partition: int = 2) -> list[str]:
    """Exchange ids that fill every partition (the default partitioner's placement)."""
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(ids) < per_partition for ids in chosen.values()):
        exchange = f"venue-{n}"
        ids = chosen[partition_of(exchange, partitions)]
        if len(ids) < per_partition:
            ids.append(exchange)
        n += 1
    return sorted(ex for ids in chosen.values() for ex in ids)


def _history(records: list[Any]) -> dict[str, list[tuple[str, str]]]:
    """Each subject's changes, once per CloudEvent id (a re-emitted change is the same one)."""
    unique: dict[str, dict[str, Any]] = {}
    for event in events(records):
        held = unique.setdefault(event["id"], event)
        assert held["data"] == event["data"], "one id, two different changes"
    history: dict[str, list[tuple[str, str]]] = {}
    for event in unique.values():
        data = event["data"]
        history.setdefault(event["subject"], []).append((data["previous_status"], data["status"]))
    return history


async def wait_until_committed(d: Deployment) -> None:
    """Until the group has committed every input record (Faust commits every few seconds)."""
    inputs = [t.value for t in Topic]
    deadline = asyncio.get_running_loop().time() + 30
    while (left := await uncommitted(d, inputs)) > 0:
        assert asyncio.get_running_loop().time() < deadline, f"{left} records uncommitted"
        await asyncio.sleep(0.5)


@pytest.fixture
def second_worker(deployment: Deployment, log_dir: Path) -> Iterator[WorkerProcess]:
    """Another worker in the same group as ``worker``."""
    process = WorkerProcess(deployment, log_dir, name="second").start()
    try:
        yield process
    finally:
        process.stop()


async def test_two_workers_share_the_exchanges_and_one_takes_over_when_the_other_dies(
    deployment: Deployment, worker: WorkerProcess, second_worker: WorkerProcess
) -> None:
    d = deployment
    exchanges = _exchanges_on_every_partition(d.partitions)
    workers = (worker, second_worker)
    async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
        setup = [record for ex in exchanges for record in healthy(ex)]
        await produce(d.bootstrap, prefixed(d.prefix, setup))

        def owned() -> list[set[str]]:
            return [set(w.status()) for w in workers]

        # every exchange judged by exactly one worker
        await wait_for(lambda: set().union(*owned()) == set(exchanges), timeout=60)
        first, second = owned()
        assert first and second and not first & second

        # one exchange of the first worker in breach, then the first worker dies
        victim, other = sorted(first)[:2]
        await produce(
            d.bootstrap, prefixed(d.prefix, [trade(1, victim, SURGE, "2024-05-31T13:10:00Z")])
        )
        await wait_for(lambda: worker.rule_status(victim, RESERVE) == "breach")
        # killed once it has committed what it consumed: its state can only come back
        # through the changelog, not by consuming the same input again
        await wait_until_committed(d)
        worker.kill()
        # while no one owns its partitions, another of its exchanges changes
        await produce(
            d.bootstrap, prefixed(d.prefix, [trade(1, other, SURGE, "2024-05-31T13:10:00Z")])
        )

        # the second worker takes over every exchange with its state: the victim's from the
        # changelog, the other's surge (sent while no one owned it) from the input topic
        def taken_over(exchange: str) -> bool:
            report = second_worker.status().get(exchange)
            return report is not None and report["trading_volume"]["amount"] == SURGE

        await wait_for(lambda: set(second_worker.status()) == set(exchanges), timeout=90)
        await wait_for(lambda: taken_over(victim) and taken_over(other), timeout=30)
        assert second_worker.rule_status(victim, RESERVE) == "breach"
        assert second_worker.rule_status(other, RESERVE) == "breach"
        # ...and goes on from it: a top-up closes the breach opened before the crash
        await produce(
            d.bootstrap, prefixed(d.prefix, [fund(2, victim, "9000000000", "2024-05-31T14:00:00Z")])
        )
        await wait_for(lambda: second_worker.rule_status(victim, RESERVE) == "ok")
        await alerts.until(
            lambda r: ("breach", "ok") in _history(r).get(f"{victim}/{RESERVE}", []), timeout=30
        )
        await alerts.settle(2.0)

    history = _history(alerts.records)
    assert history[f"{victim}/{RESERVE}"] == [("unknown", "ok"), ("ok", "breach"), ("breach", "ok")]
    assert history[f"{other}/{RESERVE}"] == [("unknown", "ok"), ("ok", "breach")]
    for ex in set(exchanges) - {victim, other}:
        assert history[f"{ex}/{RESERVE}"] == [("unknown", "ok")]
