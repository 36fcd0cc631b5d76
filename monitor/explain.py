"""``reserve-monitor policy explain``: one exchange's adequacy in plain words.

The adequacy report document comes from one of two sources, and
:func:`monitor.core.output.explain.explain_report` renders it:

* replay input (JSON Lines, as ``reserve-monitor replay`` reads), run through
  the embedded engine under a policy file;
* a running worker's ``GET /status``, which serves the same documents.

So a replay and a worker that saw the same events give the same explanation.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any

from monitor.core.engine import Engine
from monitor.core.errors import SourceError
from monitor.core.output.explain import explain_report
from monitor.core.output.report import adequacy_report
from monitor.core.policy import Policy
from monitor.replay import replay

# how long to wait for a worker's /status
STATUS_TIMEOUT_SECONDS = 10.0


def report_from_replay(
    lines: IO[str], policy: Policy, exchange: str, err: IO[str]
) -> dict[str, Any]:
    """The adequacy report document of ``exchange`` after replaying ``lines``."""
    engine = Engine(policy, journal=False)  # no durable storage to rebuild from
    # the status changes are not wanted: the explanation tells the final state
    with open(os.devnull, "w", encoding="utf-8") as changes:
        result = replay(lines, engine, changes)
    if result.problems:
        err.write(
            f"{len(result.problems)} input lines were rejected; the first: {result.problems[0]}\n"
        )
    if exchange not in engine.exchanges:
        seen = ", ".join(sorted(engine.exchanges)) or "none"
        raise SourceError(
            f"exchange {exchange!r} does not appear in the replay input (exchanges in it: {seen})"
        )
    return adequacy_report(engine, exchange).to_document()


def status_url(url: str) -> str:
    """``http://host:6066`` (or its ``/status``) as the worker's ``/status`` address."""
    url = url.rstrip("/")
    return url if url.endswith("/status") else url + "/status"


def report_from_worker(url: str, exchange: str) -> dict[str, Any]:
    """The adequacy report document of ``exchange`` from a worker's ``/status``: asked for
    that exchange alone (``?exchange=``), and for all of them only to say which it owns."""
    address = status_url(url)
    query = urllib.parse.urlencode({"exchange": exchange})
    reports = _reports(address, f"{address}?{query}")
    if exchange not in reports:
        owned = ", ".join(sorted(_reports(address, address))) or "none yet"
        raise SourceError(
            f"the worker at {address} reports no exchange {exchange!r} (it reports: {owned}); "
            "in a group of several workers, ask the one that owns the exchange's partition"
        )
    document: dict[str, Any] = reports[exchange]
    return document


def _reports(address: str, url: str) -> dict[str, dict[str, Any]]:
    """The reports a worker's ``/status`` page at ``url`` serves, by exchange."""
    try:
        with urllib.request.urlopen(url, timeout=STATUS_TIMEOUT_SECONDS) as reply:
            body = json.loads(reply.read().decode("utf-8"))
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise SourceError(f"cannot read {address}: {reason}") from None
    return {report["exchange"]: report for report in body.get("exchanges", [])}


def run(
    exchange: str,
    *,
    input_path: str | None,
    policy: Policy | None,
    url: str | None,
    out: IO[str],
    err: IO[str],
) -> int:
    """Write the explanation of ``exchange`` to ``out``; 1 with the reason on ``err``."""
    try:
        if url is not None:
            document = report_from_worker(url, exchange)
        else:
            assert input_path is not None and policy is not None
            if input_path == "-":
                document = report_from_replay(sys.stdin, policy, exchange, err)
            else:
                try:
                    with open(input_path, encoding="utf-8") as lines:
                        document = report_from_replay(lines, policy, exchange, err)
                except OSError as error:
                    raise SourceError(f"cannot read {input_path}: {error.strerror}") from None
    except SourceError as error:
        err.write(f"policy explain: {error}\n")
        return 1
    out.write(explain_report(document))
    return 0
