"""``reserve-monitor worker``: settings from the environment, topics, then the loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from monitor.core.errors import NotCopartitioned
from monitor.core.policy import Policy, load_policy
from monitor.settings import Settings
from monitor.worker.logs import hold_back_repeats
from monitor.worker.loop import Worker
from monitor.worker.topics import ensure_topics
from monitor.worker.web import serve

log = logging.getLogger(__name__)


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
    return 0


async def _run(settings: Settings, policy: Policy) -> None:
    price_partitions = await ensure_topics(settings)
    worker = Worker(settings, policy, price_partitions)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    runner = await serve(worker, settings.web_host, settings.web_port)
    log.info("worker %s serving on %s:%d", settings.app_id, settings.web_host, settings.web_port)
    try:
        await worker.run()
    finally:
        await runner.cleanup()
        log.info("worker %s stopped", settings.app_id)
