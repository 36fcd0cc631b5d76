"""Test session settings shared by every tier.

Hypothesis runs a fixed profile in CI (``CI`` set, as ``.ci/run`` is): derandomized,
so a CI run is reproducible and a failure there is the same failure on a laptop.
Elsewhere it explores new examples each run.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from monitor.synthetic.local import REPO_ROOT, LocalBroker

# py_ecc, which web3 imports, raises the interpreter's recursion limit to 100,000 for the
# whole process. The tests of hostile, deeply nested input (decode, verify, import por)
# rely on the default limit, which turns too deep a nesting into a RecursionError before
# the C stack overflows; under pytest-xdist a worker that imported web3 for one module
# would run the next module's tests with the raised limit, and crash. Each test gets the
# default back. (The product's commands that take such input never import web3.)
_RECURSION_LIMIT = sys.getrecursionlimit()


@pytest.fixture(autouse=True)
def _default_recursion_limit() -> Iterator[None]:
    if sys.getrecursionlimit() != _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)
    yield


# deadline=None: how long an example takes is a timing, and timings live in `make bench`;
# on a loaded 2-core machine (the suite in parallel, a broker beside it) an example that
# took 100 ms once takes 255 ms the next time, and hypothesis's 200 ms default failed it
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# -- the session's Kafka broker, shared by parallel workers ------------------------------
#
# The integration tests start the test broker on first use (`start_test_broker`) and never stop
# it themselves: under pytest-xdist several worker processes share it, and one that
# finished first must not stop it under the others. The process that runs the whole
# session (xdist's controller, or pytest alone) stops it at the end, wiped, if this run
# started it (a marker file names the run): the topics of run after run (thousands of
# partitions) slow every group join. A broker this run did not start is left running.

_RUN = "RESERVE_MONITOR_TEST_RUN"  # inherited by xdist's workers


def _broker() -> tuple[LocalBroker, Path]:
    port = os.environ.get("KAFKA_PORT", "19092")
    return LocalBroker(port), REPO_ROOT / ".kafka" / f"started-by-test-run-{port}"


def start_test_broker() -> str:
    """The bootstrap address of the test broker on KAFKA_PORT, started if need be."""
    broker, marker = _broker()
    if not broker.running():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(os.environ[_RUN])
    return broker.up()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a plain run
        os.environ.setdefault(_RUN, uuid.uuid4().hex)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return
    broker, marker = _broker()
    if marker.exists() and marker.read_text() == os.environ.get(_RUN):
        broker.down(wipe=True)
        marker.unlink()
