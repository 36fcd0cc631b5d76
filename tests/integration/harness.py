"""Drives real processes for the integration tests: a worker subprocess, producers, readers.

Every test gets its own topic prefix, app id and web port, so tests share one
broker without seeing each other's topics, groups or changelogs.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from aiokafka.structs import RecordMetadata, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from monitor.synthetic import local
from monitor.synthetic.local import (
    REPO_ROOT,
    LocalBroker,
    free_port,
    local_broker,
    worker_env,
)

__all__ = ["LocalBroker", "free_port", "local_broker"]

ROOT = REPO_ROOT


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as the Java client)."""
    return (int(murmur2(key.encode("utf-8"))) & 0x7FFFFFFF) % partitions


@dataclass
class Deployment:
    """One isolated tenant on the shared broker: its prefix, app id and settings."""

    bootstrap: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}.")
    partitions: int = 2
    policy: str | None = None
    app: str | None = None  # a second group on the same topics; default: from the prefix
    env: dict[str, str] = field(default_factory=dict)  # more worker settings (e.g. SASL/TLS)

    @property
    def app_id(self) -> str:
        return self.app or self.prefix.rstrip(".")

    def topic(self, name: str) -> str:
        return self.prefix + name


class WorkerProcess(local.WorkerProcess):
    """A ``reserve-monitor worker`` subprocess of one deployment, with the tests' readings.

    Its environment is built from the deployment at every launch, so a test may
    change the deployment's settings between a stop and a restart.
    """

    def __init__(self, deployment: Deployment, log_dir: Path, name: str = "worker") -> None:
        super().__init__({}, log_dir / f"{deployment.app_id}-{name}.log", free_port())
        self.deployment = deployment

    def env(self) -> dict[str, str]:
        d = self.deployment
        env = worker_env(
            bootstrap=d.bootstrap,
            prefix=d.prefix,
            app_id=d.app_id,
            web_port=self.port,
            partitions=d.partitions,
            policy=d.policy,
        )
        env.update(d.env)
        return env

    def health(self) -> tuple[int, dict[str, Any]]:
        """``/healthz``: its HTTP status and its body, a 503's included."""
        status, body = self.fetch("/healthz")
        return status, json.loads(body)

    def metrics(self) -> str:
        return str(self.get("/metrics"))

    def series(self, name: str) -> list[Sample]:
        """Every sample of one metric in a /metrics scrape."""
        return [
            sample
            for family in text_string_to_metric_families(self.metrics())
            for sample in family.samples
            if sample.name == name
        ]

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of one series in a /metrics scrape, or None when absent."""
        for s in self.series(name):
            if all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        return None

    def counts(self, name: str, *labels: str) -> dict[tuple[str, ...], float]:
        """Every series of one metric in a /metrics scrape, by the values of ``labels``."""
        return {
            tuple(s.labels.get(label, "") for label in labels): float(s.value)
            for s in self.series(name)
        }

    def outcomes(self) -> dict[tuple[str, str], int]:
        """``reserve_monitor_events_total`` by (topic, outcome), the outcomes seen.

        The worker exports every (topic, outcome) from 0 on; those still at 0 are
        left out, so a test reads which outcomes happened.
        """
        counts = self.counts("reserve_monitor_events_total", "topic", "outcome")
        return {(topic, outcome): int(n) for (topic, outcome), n in counts.items() if n}

    def status(self) -> dict[str, dict[str, Any]]:
        """Adequacy reports by exchange, from /status."""
        return {r["exchange"]: r for r in self.get("/status")["exchanges"]}

    def rule_status(self, exchange: str, rule: str) -> str | None:
        report = self.status().get(exchange)
        if report is None:
            return None
        return next((r["status"] for r in report["rules"] if r["rule"] == rule), None)


async def produce(
    bootstrap: str, records: list[tuple[str, str | bytes | None, Any]], **client: Any
) -> list[RecordMetadata]:
    """Send (topic, key, value) records in order; dict values become JSON, bytes go as they are.

    Returns where each record landed (partition and offset), in the same order.
    ``client``: more producer options, e.g. the security ones of a secured broker.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2, **client)
    await producer.start()
    landed = []
    try:
        for topic, key, value in records:
            body = value if isinstance(value, bytes) else json.dumps(value).encode()
            raw_key = key.encode() if isinstance(key, str) else key
            landed.append(await producer.send_and_wait(topic, body, key=raw_key))
    finally:
        await producer.stop()
    return landed


async def produce_pipelined(bootstrap: str, records: Iterable[tuple[str, bytes, bytes]]) -> int:
    """Send (topic, key, value) records as fast as the producer batches them; the count sent."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        delivered = [await producer.send(topic, value, key=key) for topic, key, value in records]
        await asyncio.gather(*delivered)
    finally:
        await producer.stop()
    return len(delivered)


def rss_bytes(pid: int) -> int:
    """The resident set size of a process (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise AssertionError(f"no VmRSS for process {pid}")


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Make a topic of ``partitions`` partitions (one replica)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def uncommitted(d: Deployment, topics: list[str]) -> int:
    """How many records of ``topics`` the deployment's group has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=d.bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=d.bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        partitions = [
            TopicPartition(d.topic(topic), p) for topic in topics for p in range(d.partitions)
        ]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(d.app_id, partitions=partitions)
        return sum(
            ends[tp] - max(0, committed[tp].offset if tp in committed else 0) for tp in partitions
        )
    finally:
        await consumer.stop()
        await admin.close()


class Reader:
    """Reads a topic from the beginning and keeps every record seen.

    ``client``: more consumer options (security, a ``group_id``; none by default).
    """

    def __init__(self, bootstrap: str, topic: str, **client: Any) -> None:
        options: dict[str, Any] = {"group_id": None, **client}
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **options,
        )
        self.records: list[Any] = []

    async def __aenter__(self) -> Reader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def until(
        self, predicate: Callable[[list[Any]], bool], timeout: float = 30.0
    ) -> list[Any]:
        """Read until ``predicate(records)`` holds; fails with what was read on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate(self.records):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out; read {len(self.records)} records: "
                    f"{[self.describe(r) for r in self.records][-20:]}"
                )
            batch = await self.consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for records in batch.values():
                self.records.extend(records)
        return self.records

    async def settle(self, quiet: float = 2.0) -> list[Any]:
        """Read until nothing new arrives for ``quiet`` seconds."""
        while True:
            batch = await self.consumer.getmany(timeout_ms=int(quiet * 1000))
            if not batch:
                return self.records
            for records in batch.values():
                self.records.extend(records)

    @staticmethod
    def describe(record: Any) -> str:
        try:
            data = json.loads(record.value)["data"]
            return f"{data['exchange']}/{data['rule']}:{data['previous_status']}->{data['status']}"
        except (KeyError, ValueError, TypeError):
            return repr(record.value[:80])


def events(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


def transitions(records: list[Any], rule: str | None = None) -> list[tuple[str, str, str]]:
    """(subject, previous, status) of each CloudEvent, optionally of one rule."""
    out = []
    for event in events(records):
        data = event["data"]
        if rule is None or data["rule"] == rule:
            out.append((event["subject"], data["previous_status"], data["status"]))
    return out


async def wait_for(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.3) -> Any:
    """Poll ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as error:
            last = error
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met in {timeout}s; last: {last!r}")
