"""``reserve-monitor worker``: settings from the environment, topics, then Faust."""

from __future__ import annotations

import asyncio
import logging

import faust

from monitor.core.policy import load_policy
from monitor.settings import Settings
from monitor.worker.app import create_app
from monitor.worker.logs import hold_back_repeats
from monitor.worker.topics import ensure_topics


def run_worker(settings: Settings | None = None) -> int:
    """Run one worker until SIGTERM/SIGINT; returns the exit code."""
    settings = settings or Settings()
    policy = load_policy(settings.policy)
    if policy.reporting_currency != settings.reporting_currency:
        raise SystemExit(
            f"the policy reports in {policy.reporting_currency} but "
            f"RESERVE_MONITOR_REPORTING_CURRENCY is {settings.reporting_currency}"
        )
    logging.basicConfig(level=settings.log_level.upper())
    hold_back_repeats()  # the Kafka client's errors while the broker is away
    asyncio.run(ensure_topics(settings))
    monitor = create_app(settings, policy)
    worker = faust.Worker(monitor.app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0
