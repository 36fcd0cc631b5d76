"""The worker end to end on a real broker: events in, CloudEvents, metrics and state out."""

from __future__ import annotations

import base64
import json

import pytest

from tests.integration.harness import (
    Deployment,
    Reader,
    WorkerProcess,
    events,
    produce,
    transitions,
    wait_for,
)
from tests.integration.story import fund, healthy, prefixed, trade, wallet

pytestmark = pytest.mark.kafka

RESERVE = "jp.liability_reserve"
COLD = "jp.cold_storage"


def _has(records: list, subject: str, previous: str, status: str) -> bool:
    return (subject, previous, status) in transitions(records)


async def test_breach_opens_under_the_floor_and_closes_after_a_top_up(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    d = deployment
    async with (
        Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts,
        Reader(d.bootstrap, d.topic("reserve.breaches")) as breaches,
    ):
        await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm")))
        await alerts.until(lambda r: _has(r, f"dmm/{RESERVE}", "unknown", "ok"))

        # ¥1.2 tn of volume at 0.5% lifts the floor to ¥6 bn, over the ¥5 bn fund
        await produce(
            d.bootstrap,
            prefixed(d.prefix, [trade(1, "dmm", "1200000000000", "2024-05-31T13:10:00Z")]),
        )
        await alerts.until(lambda r: _has(r, f"dmm/{RESERVE}", "ok", "breach"))
        await produce(
            d.bootstrap, prefixed(d.prefix, [fund(2, "dmm", "9000000000", "2024-05-31T14:00:00Z")])
        )
        await alerts.until(lambda r: _has(r, f"dmm/{RESERVE}", "breach", "ok"))
        await breaches.until(lambda r: len(transitions(r, RESERVE)) == 2)
        await alerts.settle(1.0)
    # the worker made this deployment's topics and waited until the broker served them
    # before its clients asked: none was refused, with an error in the log
    assert "NotLeaderForPartition" not in worker.log_path.read_text()

    opened = next(
        e
        for e in events(alerts.records)
        if e["subject"] == f"dmm/{RESERVE}" and e["data"]["status"] == "breach"
    )
    assert opened["specversion"] == "1.0"
    assert opened["type"] == "reserve.status.changed"
    assert opened["source"] == f"reserve-monitor/{d.app_id}"
    assert opened["data"]["required"] == "6000000000"
    assert opened["data"]["available"] == "5000000000"
    assert opened["data"]["shortfall"] == "1000000000"
    assert opened["data"]["ratio"] == "0.833333"
    assert opened["data"]["evidence"]["trading_volume"] == "1200000000000"
    assert all(
        dict(r.headers)["content-type"] == b"application/cloudevents+json" for r in alerts.records
    )
    # regulators see only the changes into and out of breach, with the same ids
    assert transitions(breaches.records, RESERVE) == [
        (f"dmm/{RESERVE}", "ok", "breach"),
        (f"dmm/{RESERVE}", "breach", "ok"),
    ]
    breach_ids = {e["id"] for e in events(breaches.records) if e["data"]["rule"] == RESERVE}
    assert breach_ids <= {e["id"] for e in events(alerts.records)}
    ids = [e["id"] for e in events(alerts.records)]
    assert len(ids) == len(set(ids))

    def scraped() -> bool:  # the gauges follow on the next tick
        available = worker.sample(
            "reserve_monitor_available", exchange="dmm", rule=RESERVE, currency="JPY"
        )
        return available == 9e9

    await wait_for(scraped)
    assert (
        worker.sample("reserve_monitor_rule_status", exchange="dmm", rule=RESERVE, status="ok")
        == 1.0
    )
    assert (
        worker.sample("reserve_monitor_rule_status", exchange="dmm", rule=RESERVE, status="breach")
        == 0.0
    )
    assert (
        worker.sample("reserve_monitor_required", exchange="dmm", rule=RESERVE, currency="JPY")
        == 6e9
    )
    assert (
        worker.sample("reserve_monitor_events_total", topic="exchange.ledger", outcome="applied")
        == 2.0
    )
    assert worker.sample("reserve_monitor_alerts_total", rule=RESERVE, status="breach") == 1.0


async def test_cold_share_under_95_percent_is_a_cold_storage_breach(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    d = deployment
    ts = "2024-05-31T13:00:00Z"
    async with Reader(d.bootstrap, d.topic("reserve.breaches")) as breaches:
        await produce(d.bootstrap, prefixed(d.prefix, healthy("coinx", ts)))
        await breaches.settle(1.0)
        # 6,000 BTC move from cold to hot (the cold side reported first): 91% cold
        moved = [
            wallet(3, "coinx", "btc-cold-1", "BTC", "91000", "cold", "2024-05-31T13:05:00Z"),
            wallet(4, "coinx", "btc-hot-1", "BTC", "9000", "hot", "2024-05-31T13:05:00Z"),
        ]
        await produce(d.bootstrap, prefixed(d.prefix, moved))
        # a new breach of jp.cold_storage is held 5 minutes of event time (breach_for):
        # the watchers report the same balances again at 13:10, and it is published
        again = [
            wallet(5, "coinx", "btc-cold-1", "BTC", "91000", "cold", "2024-05-31T13:10:00Z"),
            wallet(6, "coinx", "btc-hot-1", "BTC", "9000", "hot", "2024-05-31T13:10:00Z"),
        ]
        await produce(d.bootstrap, prefixed(d.prefix, again))
        await breaches.until(lambda r: _has(r, f"coinx/{COLD}", "ok", "breach"))
    data = next(e["data"] for e in events(breaches.records) if e["data"]["rule"] == COLD)
    assert data["ratio"] == "0.91"
    # 95% of ¥1,070 bn must be cold: ¥1,016.5 bn against ¥973.7 bn held
    assert data["shortfall"] == "42800000000"
    assert "move" in data["reason"]


async def test_bad_input_goes_to_the_dead_letter_topic_and_the_worker_goes_on(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    d = deployment
    bad = [
        (d.topic("exchange.trades"), "dmm", b'{"event_id": "t-1", "exchange": "dmm"'),
        (d.topic("exchange.ledger"), "dmm", b"\xff\xfe\x00binary"),
        (
            d.topic("exchange.wallet-balances"),
            "dmm",
            json.dumps(
                {
                    "event_id": "w-9",
                    "exchange": "dmm",
                    "ts": "2024-05-31T13:00:00",
                    "wallet": "w",
                    "asset": "BTC",
                    "balance": "1",
                    "custody": "hot",
                    "holder": "customer",
                }
            ).encode(),
        ),
    ]
    async with (
        Reader(d.bootstrap, d.topic("reserve.deadletter")) as dead,
        Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts,
    ):
        await produce(d.bootstrap, bad)
        await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm")))
        await dead.until(lambda r: len(r) == 3)
        await alerts.until(lambda r: _has(r, f"dmm/{RESERVE}", "unknown", "ok"))
    letters = {json.loads(r.value)["topic"]: json.loads(r.value) for r in dead.records}
    for topic, key, value in bad:
        letter = letters[topic]
        assert base64.b64decode(letter["value_b64"]) == value
        assert base64.b64decode(letter["key_b64"]) == key.encode()
        assert letter["received_at"].endswith("Z")
    assert letters[d.topic("exchange.trades")]["error"].startswith("value: not JSON")
    assert letters[d.topic("exchange.ledger")]["error"].startswith("value: not UTF-8")
    assert letters[d.topic("exchange.wallet-balances")]["error"].startswith("ts: ")
    assert {r.key for r in dead.records} == {b"dmm"}
    assert (
        worker.sample("reserve_monitor_events_total", topic="exchange.trades", outcome="invalid")
        == 1.0
    )


async def test_a_killed_worker_restarts_with_its_state(deployment: Deployment, log_dir) -> None:
    d = deployment
    worker = WorkerProcess(d, log_dir).start()
    try:
        async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
            await produce(d.bootstrap, prefixed(d.prefix, healthy("dmm")))
            await alerts.until(lambda r: _has(r, f"dmm/{RESERVE}", "unknown", "ok"))
            surge = [trade(1, "dmm", "1200000000000", "2024-05-31T13:10:00Z")]
            await produce(d.bootstrap, prefixed(d.prefix, surge))
            await alerts.until(lambda r: _has(r, f"dmm/{RESERVE}", "ok", "breach"))
            await wait_for(lambda: worker.rule_status("dmm", RESERVE) == "breach")
            worker.kill()  # SIGKILL: no clean shutdown

            worker.start()
            # the recovered state still knows the volume that set the ¥6 bn floor...
            status = await wait_for(lambda: worker.status().get("dmm"))
            assert status["trading_volume"]["amount"] == "1200000000000"
            # ...so a ¥5.5 bn fund stays in breach, with no new alert,
            await produce(
                d.bootstrap,
                prefixed(d.prefix, [fund(2, "dmm", "5500000000", "2024-05-31T13:20:00Z")]),
            )
            await wait_for(lambda: worker.status()["dmm"]["rules"][0]["available"] == "5500000000")
            # ...and a ¥9 bn fund closes the breach opened before the crash
            await produce(
                d.bootstrap,
                prefixed(d.prefix, [fund(3, "dmm", "9000000000", "2024-05-31T14:00:00Z")]),
            )
            await alerts.until(lambda r: _has(r, f"dmm/{RESERVE}", "breach", "ok"))
            await alerts.settle(1.5)
    finally:
        worker.stop()
    # a change re-emitted after the crash carries the same id: dedupe by id, then the
    # history is exactly the three real changes, nothing re-opened
    unique = {e["id"]: e for e in events(alerts.records) if e["data"]["rule"] == RESERVE}
    history = [(e["data"]["previous_status"], e["data"]["status"]) for e in unique.values()]
    assert history == [("unknown", "ok"), ("ok", "breach"), ("breach", "ok")]


def test_the_worker_serves_its_own_pages_and_no_others(worker: WorkerProcess) -> None:
    # no page hands out state by key, or the internals' statistics, to anyone who asks
    for path in ("/table/", "/table/state/", "/router/", "/stats/"):
        assert worker.fetch(path)[0] == 404, path
    assert worker.get("/status")["exchanges"] == []
    assert worker.get("/healthz")["healthy"]
