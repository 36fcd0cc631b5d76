"""Security against a real secured broker: SASL_SSL (SCRAM-SHA-512), ACLs, signed breaches.

One broker for the module (``deploy/kafka/kafka-secure.sh``, its own port), the ACLs of
``deploy/kafka/acls/apply.sh`` for one deployment, and one worker that connects as the
``monitor`` principal and signs what it publishes. The ``regulator`` principal reads
``reserve.breaches``, verifies the breach with ``reserve-monitor verify``, and is refused
everything else; a wrong password is refused at the door.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from monitor.settings import KafkaClientSettings
from monitor.synthetic import simulator
from monitor.worker.connection import aiokafka_security
from tests.integration.harness import (
    ROOT,
    Deployment,
    LocalBroker,
    Reader,
    WorkerProcess,
    events,
    local_broker,
    transitions,
    wait_for,
)
from tests.integration.story import WALLETS, healthy, trade

pytestmark = pytest.mark.kafka

SECURE_KAFKA = ROOT / "deploy" / "kafka" / "kafka-secure.sh"
APPLY_ACLS = ROOT / "deploy" / "kafka" / "acls" / "apply.sh"
CLI = Path(sys.executable).with_name("reserve-monitor")
PORT = os.environ.get("TEST_SECURE_KAFKA_PORT", "19392")
RESERVE = "jp.liability_reserve"
REGULATOR_GROUP = "regulator"


def _secure_kafka(*args: str) -> subprocess.CompletedProcess[str]:
    return LocalBroker(PORT, script=SECURE_KAFKA).run(*args)


@dataclass(frozen=True)
class SecureBroker:
    """The running secured broker and how each of its users connects."""

    bootstrap: str

    def env(self, user: str) -> dict[str, str]:
        """The KAFKA_* variables of ``user``, as ``kafka-secure.sh env`` prints them."""
        lines = _secure_kafka("env", user).stdout.splitlines()
        pairs = (line.removeprefix("export ").split("=", 1) for line in lines)
        return {name: value.strip("'") for name, value in pairs}

    def client(self, user: str, **override: str) -> dict[str, Any]:
        """aiokafka options for ``user``, built the way the worker builds its own."""
        settings = KafkaClientSettings(**{**self.env(user), **override})
        return aiokafka_security(settings)


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[SecureBroker]:
    """The secured broker, started for this module and wiped after (users, keys, CA)."""
    with local_broker(PORT, script=SECURE_KAFKA, wipe=True) as address:
        yield SecureBroker(address)


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("keys") / "monitor.key"
    made = subprocess.run(
        [str(CLI), "keygen", str(key)], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    return key


def _deployment(secure_broker: SecureBroker, signing_key: Path) -> Deployment:
    """A deployment whose worker connects as ``monitor`` and signs, its ACLs in place."""
    deployment = Deployment(
        secure_broker.bootstrap,
        env={**secure_broker.env("monitor"), "RESERVE_MONITOR_SIGNING_KEY": str(signing_key)},
    )
    applied = subprocess.run(
        [str(APPLY_ACLS), "--bootstrap", deployment.bootstrap, "--command-config", _admin()],
        env=dict(
            os.environ,
            RESERVE_MONITOR_TOPIC_PREFIX=deployment.prefix,
            RESERVE_MONITOR_APP_ID=deployment.app_id,
            REGULATOR_GROUP=REGULATOR_GROUP,
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    return deployment


def _admin() -> str:
    """The path of the admin user's client config (kafka-acls' --command-config)."""
    return _secure_kafka("client-config", "admin").stdout.strip()


def _transactional_ids(deployment: Deployment, action: str) -> None:
    """Grant (``--add``) or take away (``--remove``) the monitor's rights on its tasks'
    transactional ids alone, as apply.sh grants them, with Kafka's AclCommand."""
    command = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
    command += ["-cp", str(ROOT / ".cache" / "kafka" / "libs" / "*")]
    command += ["org.apache.kafka.tools.AclCommand", "--bootstrap-server", deployment.bootstrap]
    command += ["--command-config", _admin(), action, "--force", "--allow-principal"]
    command += ["User:monitor", "--operation", "Write", "--operation", "Describe"]
    command += ["--resource-pattern-type", "prefixed"]
    command += ["--transactional-id", f"{deployment.app_id}-task-"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def secured(secure_broker: SecureBroker, signing_key: Path) -> Deployment:
    """A deployment with its ACLs in place, whose worker connects as ``monitor`` and signs."""
    return _deployment(secure_broker, signing_key)


@pytest.fixture(scope="module")
def secured_worker(
    secured: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(secured, tmp_path_factory.mktemp("logs")).start(timeout=90)
    try:
        yield process
    finally:
        process.stop()


async def _refused(
    consumer: AIOKafkaConsumer, error: type[Exception] = TopicAuthorizationFailedError
) -> None:
    """The consumer is refused with ``error`` (joining its group, or at its first fetch)."""
    try:
        with pytest.raises(error):
            await consumer.start()
            await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 30)
    finally:
        await consumer.stop()


@pytest.fixture
async def regulator_breaches(
    secure_broker: SecureBroker, secured: Deployment
) -> AsyncIterator[Reader]:
    client = secure_broker.client("regulator")
    async with Reader(
        secured.bootstrap, secured.topic("reserve.breaches"), group_id=REGULATOR_GROUP, **client
    ) as reader:
        yield reader


async def test_the_worker_connects_with_sasl_ssl_and_the_regulator_verifies_its_breach(
    secure_broker: SecureBroker,
    secured: Deployment,
    secured_worker: WorkerProcess,
    regulator_breaches: Reader,
    signing_key: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = secured
    # the feeds write as admin (neither the monitor nor the regulator may), through the
    # simulator, which takes its KAFKA_* settings from the environment as the worker does
    for name, value in secure_broker.env("admin").items():
        monkeypatch.setenv(name, value)
    story = [*healthy("dmm"), trade(1, "dmm", "1200000000000", "2024-05-31T13:10:00Z")]
    lines = [json.dumps({"topic": t, "key": k, "value": v}) for t, k, v in story]
    sent = await simulator.produce(simulator.read_jsonl(lines), d.bootstrap, d.prefix)
    assert sent == len(story)
    # into breach from ok, or from unknown when the trade is applied before the fund
    records = await regulator_breaches.until(
        lambda r: any(
            subject == f"dmm/{RESERVE}" and status == "breach"
            for subject, _, status in transitions(r)
        ),
        timeout=60,
    )
    (breach,) = [e for e in events(records) if e["subject"] == f"dmm/{RESERVE}"]
    assert breach["data"]["shortfall"] == "1000000000"

    # the regulator's check, as the README documents it: the records' values, one a line
    dumped = tmp_path / "breaches.jsonl"
    dumped.write_bytes(b"".join(record.value + b"\n" for record in records))
    verified = subprocess.run(
        [str(CLI), "verify", "--public-key", f"{signing_key}.pub", str(dumped)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert f"verified id {breach['id']!r}" in verified.stdout

    # and the monitor's password appears nowhere in what the worker wrote
    password = d.env["KAFKA_SASL_PASSWORD"]
    assert secured_worker.log_path.read_text(errors="replace")
    assert password not in secured_worker.log_path.read_text(errors="replace")


async def test_the_regulator_reads_nothing_but_breaches_and_writes_nothing(
    secure_broker: SecureBroker, secured: Deployment, secured_worker: WorkerProcess
) -> None:
    client = secure_broker.client("regulator")

    def consumer(topic: str, group: str | None = REGULATOR_GROUP) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            secured.topic(topic),
            bootstrap_servers=secured.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **client,
        )

    for topic in (WALLETS, "exchange.trades", "reserve.alerts", "reserve.adequacy"):
        await _refused(consumer(topic))
    # nor may it join the monitor's consumer group, even on its own topic
    await _refused(
        consumer("reserve.breaches", group=secured.app_id), GroupAuthorizationFailedError
    )

    producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, **client)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(
                producer.send_and_wait(secured.topic("reserve.breaches"), b"{}", key=b"dmm"), 30
            )
    finally:
        await producer.stop()


async def test_a_wrong_password_is_refused(
    secure_broker: SecureBroker,
    secured: Deployment,
    secured_worker: WorkerProcess,  # it made the breach topic the regulator reads
    caplog: pytest.LogCaptureFixture,
) -> None:
    def regulator(**override: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            secured.topic("reserve.breaches"),
            bootstrap_servers=secured.bootstrap,
            group_id=None,
            request_timeout_ms=10_000,
            **secure_broker.client("regulator", **override),
        )

    right = regulator()
    await right.start()  # the same client with the right password gets in
    await right.stop()
    wrong = regulator(KAFKA_SASL_PASSWORD="not-the-password")
    try:
        with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
            await wrong.start()
    finally:
        await wrong.stop()
    assert "invalid credentials" in caplog.text


WRONG_PASSWORD = "not-the-password-8c1e"


@pytest.mark.parametrize(
    ("command", "override", "says"),
    [
        (
            ["worker"],
            {"KAFKA_SASL_PASSWORD": WRONG_PASSWORD},
            "refused the login of monitor (SCRAM-SHA-512)",
        ),
        (
            ["simulate", "--scenario", "steady"],
            {"KAFKA_SASL_PASSWORD": WRONG_PASSWORD},
            "refused the login of monitor (SCRAM-SHA-512)",
        ),
        (
            ["worker"],
            {"KAFKA_SSL_CAFILE": "/etc/ssl/certs/ca-certificates.crt"},
            "presented a certificate this client does not trust",
        ),
    ],
    ids=["worker-password", "simulate-password", "worker-authority"],
)
def test_a_command_turned_away_at_the_door_says_why_and_stops(
    secure_broker: SecureBroker, command: list[str], override: dict[str, str], says: str
) -> None:
    """aiokafka reports a refused login and a certificate not trusted as a connection that
    failed, which waiting could mend: the worker waited for ever, and ``simulate`` said only
    that it could not connect."""
    env = {**os.environ, **secure_broker.env("monitor"), **override}
    done = subprocess.run(
        [str(CLI), *command], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    output = done.stdout + done.stderr
    assert "Traceback" not in output and WRONG_PASSWORD not in output
    last = done.stderr.splitlines()[-1]
    assert last.startswith("error: "), last
    assert f"Kafka at {secure_broker.bootstrap} {says}" in last
    assert ("KAFKA_SASL_PASSWORD" if "login" in says else "KAFKA_SSL_CAFILE") in last


async def test_a_worker_refused_its_transactional_ids_takes_its_records_once_granted(
    secure_broker: SecureBroker,
    signing_key: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # its tasks cannot be opened when they are assigned (their producers are refused): the
    # worker says so, reads none of their records meanwhile, and once the right is granted
    # opens them and takes every record, none passed over
    d = _deployment(secure_broker, signing_key)
    _transactional_ids(d, "--remove")
    worker = WorkerProcess(d, tmp_path).launch()
    try:
        for name, value in secure_broker.env("admin").items():
            monkeypatch.setenv(name, value)

        def refused() -> bool:
            worker.check_alive()
            return "TransactionalIdAuthorizationFailed" in worker.log(200)

        await wait_for(refused, timeout=90)
        story = [*healthy("dmm"), trade(1, "dmm", "1200000000000", "2024-05-31T13:10:00Z")]
        lines = [json.dumps({"topic": t, "key": k, "value": v}) for t, k, v in story]
        assert await simulator.produce(simulator.read_jsonl(lines), d.bootstrap, d.prefix) == len(
            story
        )
        await asyncio.sleep(3)
        status, body = worker.fetch("/healthz")
        assert status == 503 and b"rebalancing" in body, body
        assert worker.outcomes() == {}  # nothing taken, nothing passed over
        assert "could not be opened" in worker.log(200)

        _transactional_ids(d, "--add")
        await asyncio.to_thread(worker.wait_healthy, 90)
        await wait_for(lambda: sum(worker.outcomes().values()) >= len(story), timeout=60)
        assert sum(n for (_, outcome), n in worker.outcomes().items() if outcome == "applied") == (
            len(story)
        )
        rules = {rule["rule"]: rule["status"] for rule in worker.status()["dmm"]["rules"]}
        assert rules[RESERVE] == "breach"
    finally:
        worker.stop()
