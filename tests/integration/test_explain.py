"""``policy explain --url`` against a real worker, and the risk ahead, through a real broker.

One worker serves both tests, each on its own exchange: ``explained`` runs under
every pack and is explained from the worker's ``/status`` and from the same
events replayed; ``ahead`` has insurance that ends within the horizon.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import SourceError
from monitor.core.output.explain import explain_report
from monitor.explain import report_from_worker
from tests.integration.harness import (
    ROOT,
    Deployment,
    Reader,
    WorkerProcess,
    produce,
    transitions,
    wait_for,
)
from tests.unit.builders import (
    T0,
    at,
    fixed_overheads,
    insurance,
    liability,
    line,
    own_funds,
    price,
    reserve_fund,
    topic_for,
    trade,
    wallet,
)

pytestmark = pytest.mark.kafka

BILLION = 10**9
YEAR = timedelta(days=365)
# The story is one moment: a breach held for its rule's breach_for would wait for a
# later record, so every rule publishes at once here.
POLICY = """\
reporting_currency: JPY
packs:
  jp:
    cold_storage: {breach_for: 0s}
    hot_wallet_guarantee: {breach_for: 0s}
    segregation: {breach_for: 0s}
  hk:
    cold_storage: {breach_for: 0s}
    compensation_cover: {breach_for: 0s}
exchanges:
  default: {packs: [jp, hk, eu, ops]}
  ahead: {packs: [jp]}
"""
CLI = [sys.executable, "-m", "monitor.cli", "policy", "explain"]


def explain(*args: str) -> subprocess.CompletedProcess[str]:
    """``reserve-monitor policy explain ARGS`` as a person runs it."""
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def explained_events() -> list[dict[str, Any]]:
    """Every pack's inputs, with final ratios well clear of every threshold.

    The worker consumes its input topics concurrently, so it may pass through other
    statuses on the way; with no ratio near a line, hysteresis cannot hold one.
    """
    x = "explained"
    return [
        price("10000000"),
        price("160", asset="EUR"),
        wallet("970", wallet_id="btc-cold-1", exchange=x),  # jp 97% cold: ok; hk: breach
        wallet("30", wallet_id="btc-hot-1", custody="hot", exchange=x),
        wallet("40", wallet_id="btc-guarantee", holder="guarantee", exchange=x),
        liability("990", exchange=x),
        trade(100 * BILLION, exchange=x),
        reserve_fund(3 * BILLION, exchange=x),
        insurance(BILLION, valid_from=T0 - timedelta(days=165), valid_to=at(days=200), exchange=x),
        # ends within the eu pack's 90 days, not within jp's 30, and harms nothing
        insurance(
            100_000_000,
            valid_from=at(days=60) - YEAR,
            valid_to=at(days=60),
            policy_id="short-cover",
            exchange=x,
        ),
        fixed_overheads("2400000", exchange=x),
        own_funds("1000000", exchange=x),
    ]


def records(prefix: str, docs: list[dict[str, Any]]) -> list[tuple[str, str | None, Any]]:
    return [(prefix + str(topic_for(d)), d.get("exchange", d.get("asset")), d) for d in docs]


@pytest.fixture(scope="module")
def deployed(
    bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, WorkerProcess, Path]]:
    folder = tmp_path_factory.mktemp("explain")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY)
    d = Deployment(bootstrap, policy=str(policy))
    worker = WorkerProcess(d, folder).start()
    try:
        yield d, worker, folder
    finally:
        worker.stop()


async def test_explain_from_a_worker_reads_as_from_a_replay_of_the_same_events(
    deployed: tuple[Deployment, WorkerProcess, Path],
) -> None:
    d, worker, folder = deployed
    events = explained_events()
    replayed = folder / "explained.jsonl"
    replayed.write_text("".join(line(doc) for doc in events))
    policy = d.policy
    assert policy is not None
    replay_run = explain("--exchange", "explained", "--input", str(replayed), "--policy", policy)
    assert replay_run.returncode == 0, replay_run.stderr
    from_replay = replay_run.stdout
    assert "hk.cold_storage — BREACH" in from_replay
    assert "eu.mica_own_funds — OK" in from_replay
    assert "Risk ahead: insurance ending within 90d: short-cover at" in from_replay

    await produce(d.bootstrap, records(d.prefix, events))
    url = f"http://127.0.0.1:{worker.port}"
    expected = from_replay.splitlines()[1:]  # the first line holds the time of the report

    def same() -> bool:
        try:
            text = explain_report(report_from_worker(url, "explained"))
        except SourceError:  # the worker has not seen the exchange yet
            return False
        return text.splitlines()[1:] == expected

    try:
        await wait_for(same, timeout=60)
    except AssertionError:
        text = explain_report(report_from_worker(url, "explained"))
        diff = "\n".join(difflib.unified_diff(expected, text.splitlines()[1:], lineterm=""))
        raise AssertionError(f"the worker's explanation differs:\n{diff}") from None

    worker_run = explain("--exchange", "explained", "--url", url)
    assert worker_run.returncode == 0, worker_run.stderr
    from_worker = worker_run.stdout.splitlines()
    assert from_worker[0].startswith("Exchange explained: adequacy as of ")
    assert from_worker[1:] == expected

    unknown = explain("--exchange", "elsewhere", "--url", url)
    assert unknown.returncode == 1
    assert "reports no exchange 'elsewhere'" in unknown.stderr


async def test_insurance_ending_within_the_horizon_warns_and_a_renewal_clears_it(
    deployed: tuple[Deployment, WorkerProcess, Path],
) -> None:
    d, worker, _ = deployed
    subject = "ahead/jp.liability_reserve"
    async with Reader(d.bootstrap, d.topic("reserve.alerts")) as alerts:
        # the fund alone first: a settle of both at once would skip the breach
        await produce(
            d.bootstrap, records(d.prefix, [reserve_fund(1_500_000_000, exchange="ahead")])
        )
        await alerts.until(lambda r: (subject, "unknown", "breach") in transitions(r), timeout=60)
        cover = insurance(BILLION, valid_from=at(days=-300), valid_to=at(days=10), exchange="ahead")
        await produce(d.bootstrap, records(d.prefix, [cover]))
        await alerts.until(
            lambda r: any(s == subject and status == "warning" for s, _, status in transitions(r)),
            timeout=60,
        )
        report = worker.status()["ahead"]["rules"][0]
        assert report["status"] == "warning"
        assert report["ratio"] == "1.25"  # ok by its ratio: the warning is what comes
        assert "Insurance tokio-2026 ends at 2024-06-10T13:00:00Z" in report["reason"]
        assert "add 500,000,000 JPY before then" in report["reason"]
        assert report["evidence"]["insurance_ahead"]["shortfall"] == "500000000"

        renewal = insurance(
            BILLION,
            valid_from=at(days=10),
            valid_to=at(days=375),
            policy_id="tokio-2027",
            when=at(minutes=1),
            exchange="ahead",
        )
        await produce(d.bootstrap, records(d.prefix, [renewal]))
        await alerts.until(lambda r: (subject, "warning", "ok") in transitions(r), timeout=60)
    assert worker.rule_status("ahead", "jp.liability_reserve") == "ok"
    assert [t for t in transitions(alerts.records) if t[0] == subject] == [
        (subject, "unknown", "breach"),  # the fund alone, before the insurance arrived
        (subject, "breach", "warning"),
        (subject, "warning", "ok"),
    ]
