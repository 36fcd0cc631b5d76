"""The plan of ``reserve-monitor reset``: new offsets, topics deleted, refusals. No Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka.structs import TopicPartition

from monitor.cli import build_parser
from monitor.settings import Settings
from monitor.worker.reset import (
    Cluster,
    ResetRefused,
    check_app_id,
    internal_topics,
    plan_reset,
)
from monitor.worker.topics import input_topics

APP = "risk"
TRADES, WALLETS, LEDGER = "p.exchange.trades", "p.exchange.wallet-balances", "p.exchange.ledger"
INPUTS = (TRADES, WALLETS, LEDGER)


def _tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def _cluster(**changes: object) -> Cluster:
    """Two partitions on each input topic; the group committed part of trades only."""
    every = [_tp(t, n) for t in INPUTS for n in range(2)]
    facts: dict[str, object] = {
        "topics": frozenset(
            [*INPUTS, "p.market.prices", "p.reserve.alerts", f"{APP}-journal-changelog"]
        ),
        "partitions": dict.fromkeys(INPUTS, 2),
        "committed": {_tp(TRADES, 0): 40, _tp(TRADES, 1): 7},
        "beginnings": dict.fromkeys(every, 0) | {_tp(TRADES, 1): 5},  # retention took 0..4
        "ends": dict.fromkeys(every, 50),
    }
    facts.update(changes)
    return Cluster(**facts)  # type: ignore[arg-type]


def test_to_earliest_rewinds_every_input_partition_to_its_first_offset_held() -> None:
    plan = plan_reset(APP, INPUTS, _cluster())

    assert plan.offsets == dict.fromkeys([_tp(t, n) for t in INPUTS for n in range(2)], 0) | {
        _tp(TRADES, 1): 5
    }
    assert [str(r) for r in plan.rewinds[:3]] == [
        f"{TRADES}[0]: 40 -> 0",
        f"{TRADES}[1]: 7 -> 5",
        f"{WALLETS}[0]: none -> 0",
    ]
    assert plan.absent_inputs == ()


def test_to_a_time_takes_the_first_record_at_or_after_it_else_the_end() -> None:
    at = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
    found = {_tp(TRADES, 0): 12, _tp(TRADES, 1): None}  # none at or after it on trades[1]
    plan = plan_reset(APP, INPUTS, _cluster(by_time=found), to=at)

    assert plan.offsets[_tp(TRADES, 0)] == 12
    assert plan.offsets[_tp(TRADES, 1)] == 50
    assert plan.offsets[_tp(LEDGER, 0)] == 50  # absent from the answer: nothing after it
    assert "2024-05-31T13:00:00+00:00" in plan.target


def test_deletes_the_changelog_and_the_faust_topics_of_that_app_id_only() -> None:
    faust = [f"{APP}-state-changelog", f"{APP}-prices-changelog", f"{APP}-__assignor-__leader"]
    others = ["other-journal-changelog", "other-state-changelog", "p.reserve.adequacy"]
    cluster = _cluster(topics=frozenset([*INPUTS, f"{APP}-journal-changelog", *faust, *others]))

    plan = plan_reset(APP, INPUTS, cluster)

    assert plan.deletions == (f"{APP}-journal-changelog", *faust)


def test_deletes_only_the_internal_topics_that_exist() -> None:
    only_faust = frozenset([*INPUTS, f"{APP}-state-changelog"])
    assert plan_reset(APP, INPUTS, _cluster(topics=only_faust)).deletions == (
        f"{APP}-state-changelog",
    )
    assert plan_reset(APP, INPUTS, _cluster(topics=frozenset(INPUTS))).deletions == ()


def test_never_touches_prices_or_outputs() -> None:
    plan = plan_reset(APP, INPUTS, _cluster())

    touched = {tp.topic for tp in plan.offsets} | set(plan.deletions)
    assert touched == {*INPUTS, f"{APP}-journal-changelog"}


def test_an_input_topic_not_created_yet_is_reported_not_rewound() -> None:
    cluster = _cluster(topics=frozenset([TRADES, WALLETS]), partitions={TRADES: 2, WALLETS: 2})
    plan = plan_reset(APP, INPUTS, cluster)

    assert plan.absent_inputs == (LEDGER,)
    assert {tp.topic for tp in plan.offsets} == {TRADES, WALLETS}
    assert f"  {LEDGER}: no such topic, nothing to rewind" in plan.report(done=True)


def test_refused_while_the_group_has_members() -> None:
    cluster = _cluster(members=["reserve-monitor-1@/10.0.0.7", "reserve-monitor-2@/10.0.0.8"])

    with pytest.raises(ResetRefused, match=r"group risk has 2 active member\(s\).*stop every"):
        plan_reset(APP, INPUTS, cluster)


def test_report_says_what_was_done_or_what_a_dry_run_would_do() -> None:
    plan = plan_reset(APP, INPUTS, _cluster())

    done = plan.report(done=True)
    assert done[0] == "reset of application risk, input offsets to the earliest offset held:"
    assert f"  {TRADES}[0]: 40 -> 0" in done
    assert done[-1] == f"deleted: {APP}-journal-changelog"

    dry = plan.report(done=False)
    assert dry[-2:] == [f"would delete: {APP}-journal-changelog", "dry run: nothing changed"]


def test_topics_follow_the_deployment_prefix_and_app_id() -> None:
    settings = Settings(RESERVE_MONITOR_TOPIC_PREFIX="p.", RESERVE_MONITOR_APP_ID=APP)

    assert tuple(input_topics(settings)) == INPUTS
    assert internal_topics(APP)[0] == f"{APP}-journal-changelog"


def test_the_application_id_typed_must_be_the_configured_one() -> None:
    settings = Settings(RESERVE_MONITOR_APP_ID=APP)

    check_app_id(APP, settings)
    with pytest.raises(ResetRefused, match="RESERVE_MONITOR_APP_ID"):
        check_app_id("reserve-monitor", settings)


def test_command_line_requires_the_id_and_reads_an_rfc3339_time() -> None:
    parser = build_parser()

    earliest = parser.parse_args(["reset", "--application-id", APP])
    assert (earliest.to_datetime, earliest.dry_run) == (None, False)
    timed = parser.parse_args(
        [
            "reset",
            "--application-id",
            APP,
            "--to-datetime",
            "2024-05-31T22:00:00+09:00",
            "--dry-run",
        ]
    )
    assert timed.to_datetime == datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
    assert timed.dry_run


@pytest.mark.parametrize(
    "argv",
    [
        ["reset"],  # no --application-id
        ["reset", "--application-id", APP, "--to-datetime", "2024-05-31T13:00:00"],  # no offset
        ["reset", "--application-id", APP, "--to-datetime", "yesterday"],
        ["reset", "--application-id", APP, "--to-earliest", "--to-datetime", "2024-05-31Z"],
    ],
)
def test_command_line_refuses(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(argv)
    assert refused.value.code == 2
    assert "error:" in capsys.readouterr().err
