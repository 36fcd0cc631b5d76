"""``report --from-topic``: a running deployment's input, read from Kafka, as replay charts it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from monitor.core.policy import load_policy
from monitor.replay import read_lines
from monitor.report.series import observe
from monitor.report.topics import read_topic_lines
from monitor.settings import Settings
from monitor.synthetic.scenarios import dmm_incident
from monitor.synthetic.simulator import encode, write_jsonl
from monitor.worker.topics import ensure_topics
from tests.integration.harness import ROOT, Deployment

pytestmark = pytest.mark.kafka

START = datetime(2024, 5, 31, 13, 0, tzinfo=UTC)
REPORT = [sys.executable, "-m", "monitor.cli", "report"]


def _environment(d: Deployment) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": d.bootstrap,
        "RESERVE_MONITOR_TOPIC_PREFIX": d.prefix,
        "RESERVE_MONITOR_APP_ID": d.app_id,
        "RESERVE_MONITOR_PARTITIONS": str(d.partitions),
    }


async def test_the_report_of_a_deployments_topics_shows_what_replay_of_its_records_shows(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = deployment
    await ensure_topics(Settings.model_validate(_environment(d)))  # as a worker makes them
    records = list(dmm_incident(START, 1))
    producer = AIOKafkaProducer(bootstrap_servers=d.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for record in records:  # one at a time: the topics' append order is the file's
            topic, key, value = encode(record, d.prefix)
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()

    for name, value in _environment(d).items():
        monkeypatch.setenv(name, value)
    policy = load_policy(None)
    lines = await read_topic_lines()
    from_topics = observe(iter(lines), policy, app_id=d.app_id)
    text = io.StringIO()
    write_jsonl(records, text)
    text.seek(0)
    from_file = observe(read_lines(text), policy, app_id=d.app_id)

    assert len(lines) == len(records)  # every record, each once
    # the same status changes, ids included, as replay of the records in their order
    assert [a.event for a in from_topics.alerts] == [a.event for a in from_file.alerts]
    assert any(a.exchange == "dmm" and a.status.value == "breach" for a in from_topics.alerts)

    # and the command writes the page from the topics
    out = tmp_path / "deployment.html"
    done = subprocess.run(
        [*REPORT, "--from-topic", "--html", str(out)],
        cwd=ROOT,
        env={**os.environ, **_environment(d)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2 exchanges" in done.stdout and "into breach" in done.stdout
    page = out.read_text()
    assert "Exchange dmm" in page and "<svg" in page


def test_a_prefix_with_no_topics_is_a_clear_error(bootstrap: str, tmp_path: Path) -> None:
    environment = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    environment["RESERVE_MONITOR_TOPIC_PREFIX"] = "no-such-deployment."
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "report",
            "--from-topic",
            "--html",
            str(tmp_path / "x.html"),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "report: no topic no-such-deployment.exchange.ledger, " in done.stderr
    assert "is the prefix right?" in done.stderr
    assert not (tmp_path / "x.html").exists()
