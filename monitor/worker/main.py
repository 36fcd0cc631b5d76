"""``reserve-monitor worker``: settings from the environment, topics, then the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from aiokafka.errors import KafkaConnectionError, KafkaError

from monitor.core.errors import NotCopartitioned
from monitor.core.policy import Policy, load_policy
from monitor.settings import Settings
from monitor.worker.connection import refusal
from monitor.worker.logs import hold_back_repeats
from monitor.worker.loop import Worker
from monitor.worker.topics import ensure_topics
from monitor.worker.web import serve

log = logging.getLogger(__name__)
# the longest wait between two tries to reach Kafka at start
_MOST_DELAY = 10.0


def run_worker(settings: Settings | None = None) -> int:
    """Run one worker until SIGTERM/SIGINT; returns the exit code."""
    settings = settings or Settings()
    policy = load_policy(settings.policy)
    if policy.reporting_currency != settings.reporting_currency:
        raise SystemExit(
            f"the policy reports in {policy.reporting_currency} but "
            f"RESERVE_MONITOR_REPORTING_CURRENCY is {settings.reporting_currency}"
        )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s [%(levelname)s] %(name)s: %(message)s"
    )
    hold_back_repeats()  # the Kafka client's errors while the broker is away
    try:
        asyncio.run(_run(settings, policy))
    except NotCopartitioned as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StartRefused as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


class StartRefused(Exception):
    """Kafka answered the worker's start with an error that waiting would not mend."""


async def _run(settings: Settings, policy: Policy) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    price_partitions = await _topics_when_reachable(settings, stopping)
    if price_partitions is None:
        log.info("worker %s stopped before Kafka answered", settings.app_id)
        return
    worker = Worker(settings, policy, price_partitions)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    runner = await serve(worker, settings.web_host, settings.web_port)
    log.info("worker %s serving on %s:%d", settings.app_id, settings.web_host, settings.web_port)
    try:
        await worker.run()
    finally:
        await runner.cleanup()
        log.info("worker %s stopped", settings.app_id)


async def _topics_when_reachable(settings: Settings, stopping: asyncio.Event) -> int | None:
    """:func:`ensure_topics` once Kafka answers: a worker started before its brokers (a
    deployment's first start, a broker restarting) waits for them, saying so, instead of
    ending in a traceback; None if stopped meanwhile. Errors that waiting would not mend
    (no right to the topics, a certificate not trusted, a refused login) raise
    :class:`StartRefused`."""
    delay = 1.0
    while True:
        try:
            return await ensure_topics(settings)
        except KafkaError as error:
            if not error.retriable:
                raise StartRefused(
                    f"the worker could not start: Kafka at {settings.kafka_bootstrap_servers} "
                    f"answered {error!r}"
                ) from error
            # a certificate not trusted or a login refused is reported as a failed connection
            refused = await refusal(settings) if isinstance(error, KafkaConnectionError) else None
            if refused is not None:
                raise StartRefused(f"the worker could not start: {refused}") from error
            log.warning(  # the Kafka client's own error, logged before, says why
                "waiting for Kafka at %s (KAFKA_BOOTSTRAP_SERVERS): %s; trying again in %.0f s",
                settings.kafka_bootstrap_servers,
                error,
                delay,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
            return None
        delay = min(_MOST_DELAY, delay * 2)
