"""``make demo``: the dmm-incident story through a real broker and one real worker.

Starts a local Kafka broker unless one already runs on ``KAFKA_PORT`` (and
stops only a broker it started), starts one ``reserve-monitor worker`` on a
fresh topic prefix and application id, plays ``dmm-incident`` phase by phase
with event times that end the story, its quiet hour after the incident
included, about now (a worker refuses events dated ahead of its clock), prints
every CloudEvent of ``<prefix>reserve.alerts`` as it arrives, then the worker's
final adequacy table from ``GET /status``, and stops everything it started,
whatever happens.

The run's topics are deleted at the end; the worker's log stays in
``.kafka/demo-<run>.log`` (``DEMO_WORKER_LOG_LEVEL``, default ``warning``, sets
how much it says). The functions above the ``-- running`` line only format;
they are pure and tested in ``tests/unit/test_demo.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from monitor.core.errors import SourceError
from monitor.report.command import write_report
from monitor.synthetic.local import (
    REPO_ROOT,
    LocalBroker,
    LocalError,
    WorkerProcess,
    free_port,
    worker_env,
)
from monitor.synthetic.scenarios import (
    Phase,
    Record,
    format_ts,
    generate,
    phase_of,
    phases,
    start_ending_at,
)
from monitor.synthetic.simulator import encode

SCENARIO = "dmm-incident"
SEED = 1
# dmm-incident's live part (after 24 h of trade history, before the quiet hour)
# spans the first 900 s from its start: it plays paced, the rest at once.
STORY_SECONDS = 900


HEALTH_TIMEOUT = 90.0  # first start of a worker: topic creation, group join, recovery
CATCH_UP_TIMEOUT = 30.0  # the worker counting every record of a phase
FIRST_ALERT_TIMEOUT = 20.0
PHASE_QUIET = 1.0  # no new alert for this long: the phase has settled
FINAL_QUIET = 3.0
SETTLE_LIMIT = 20.0  # a phase that keeps alerting moves on after this long anyway
# The story's live part plays at this many event-time seconds per wall second;
# the 24 h of trade history before it and the quiet hour after it go at once.
# The worker reads each input topic on its own: a phase sent in one burst would
# reach it topic by topic, not in the order the story tells. Paced, the fifteen
# minutes of the story take half a minute.
SPEEDUP = 30.0
WORKER_STOP_TIMEOUT = 15.0

_MARKERS = {"breach": "✖", "warning": "▲", "ok": "✔", "unknown": "?"}
_ASCII_MARKERS = {"breach": "X", "warning": "!", "ok": "+", "unknown": "?"}
_COLOURS = {"breach": "31", "warning": "33", "ok": "32", "unknown": "35"}
_RULE_WIDTH = 23  # the longest rule id of the contract: jp.hot_wallet_guarantee
_EXCHANGE_WIDTH = 6


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to look at."""


# -- formatting (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How text is decorated: ANSI colours on a terminal, Unicode markers if encodable."""

    colour: bool = False
    unicode: bool = True

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        colour = (
            stream.isatty()
            and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM", "") not in ("", "dumb")
        )
        try:
            "✖▲✔→—".encode(stream.encoding or "ascii")
            unicode = True
        except (UnicodeEncodeError, LookupError):
            unicode = False
        return cls(bool(colour), unicode)

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour and text else text

    def status(self, text: str, status: str) -> str:
        return self.paint(text, _COLOURS.get(status, "0"))

    def bold(self, text: str) -> str:
        return self.paint(text, "1")

    def dim(self, text: str) -> str:
        return self.paint(text, "2")

    def marker(self, status: str) -> str:
        markers = _MARKERS if self.unicode else _ASCII_MARKERS
        return markers.get(status, "?")

    @property
    def arrow(self) -> str:
        return "→" if self.unicode else "->"


def decimal_or_none(text: Any) -> Decimal | None:
    """A decimal from a JSON string or number; None when absent or not a finite number."""
    if text is None or isinstance(text, bool):
        return None
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def minor_units(currency: str) -> int:
    """Decimal places shown for amounts in `currency` (yen have none)."""
    return 0 if currency.upper() in ("JPY", "KRW") else 2


def format_amount(text: Any, currency: str = "JPY") -> str:
    """``1,307,053,280`` from ``"1307053280.4"`` in yen; ``-`` when there is no amount."""
    value = decimal_or_none(text)
    if value is None:
        return "-"
    places = minor_units(currency)
    rounded = value.quantize(Decimal(1).scaleb(-places))
    if rounded == 0:
        rounded = abs(rounded)  # no "-0"
    return f"{rounded:,.{places}f}"


def format_ratio(text: Any) -> str:
    """A ratio to three places (``0.843``, ``1.400``); ``-`` when unknown."""
    value = decimal_or_none(text)
    return "-" if value is None else f"{value:.3f}"


def clock_time(text: Any) -> str:
    """``12:01:02Z`` from an RFC 3339 time in UTC; the text unchanged if it is not one."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return str(text)
    if moment.utcoffset() is None:
        return str(text)
    return moment.astimezone(UTC).strftime("%H:%M:%SZ")


def format_alert(data: Mapping[str, Any], style: Style, width: int = 100) -> list[str]:
    """The timeline lines of one status change: the change, then its reason, indented."""
    status = str(data.get("status", "unknown"))
    previous = str(data.get("previous_status", "unknown"))
    currency = str(data.get("currency") or "")
    transition = f"{style.marker(status)} {previous} {style.arrow} {status}"
    head = "  ".join(
        [
            style.dim(clock_time(data.get("as_of", "?"))),
            str(data.get("exchange", "?")).ljust(_EXCHANGE_WIDTH),
            str(data.get("rule", "?")).ljust(_RULE_WIDTH),
            style.status(transition, status),
        ]
    )
    shortfall = decimal_or_none(data.get("shortfall"))
    if shortfall is not None and shortfall > 0:
        amount = format_amount(shortfall, currency or "JPY")
        head += "   " + style.status(f"shortfall {amount} {currency}".rstrip(), status)
    indent = " " * (len(clock_time(data.get("as_of", "?"))) + 2)
    reason = str(data.get("reason") or "").strip()
    lines = [head]
    if reason:
        wrapped = textwrap.wrap(
            reason, width=max(40, width), initial_indent=indent, subsequent_indent=indent
        )
        lines += [style.dim(line) for line in wrapped]
    return lines


def format_phase(phase: Phase, style: Style, width: int = 100) -> list[str]:
    """The heading of a phase: its label, wrapped, with its event time."""
    head = f"── {format_ts(phase.starts)}  "
    lines = textwrap.wrap(
        phase.label, width=max(40, width), initial_indent=head, subsequent_indent=" " * len(head)
    )
    return [style.bold(line) for line in lines]


def _padded(rows: Sequence[Sequence[str]], right: set[int]) -> list[list[str]]:
    """Every cell padded to its column's width; the `right` columns right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        for row in rows
    ]


def format_table(status: Mapping[str, Any], style: Style) -> list[str]:
    """The adequacy table of a worker's ``GET /status`` document, columns aligned."""
    header = ("exchange", "rule", "status", "ratio", "required", "available", "shortfall")
    rows: list[tuple[str, ...]] = [header]
    statuses: list[str] = [""]
    currencies: set[str] = set()
    as_of: set[str] = set()
    for report in sorted(status.get("exchanges", []), key=lambda r: str(r.get("exchange"))):
        currency = str(report.get("currency") or "JPY")
        currencies.add(currency)
        if report.get("as_of"):
            as_of.add(_whole_seconds(str(report["as_of"])))
        for rule in report.get("rules", []):
            state = str(rule.get("status", "unknown"))
            rows.append(
                (
                    str(report.get("exchange", "?")),
                    str(rule.get("rule", "?")),
                    f"{style.marker(state)} {state}",
                    format_ratio(rule.get("ratio")),
                    format_amount(rule.get("required"), currency),
                    format_amount(rule.get("available"), currency),
                    format_amount(rule.get("shortfall"), currency),
                )
            )
            statuses.append(state)
    if len(rows) == 1:
        return ["(the worker reports no exchange)"]
    head, *body = _padded(rows, right={3, 4, 5, 6})
    out = [style.bold("  ".join(head).rstrip()), "-" * len("  ".join(head))]
    for cells, state in zip(body, statuses[1:], strict=True):
        cells[2] = style.status(cells[2], state)
        out.append("  ".join(cells).rstrip())
    notes = [f"amounts in {', '.join(sorted(currencies))}"]
    if as_of:
        notes.append("as of " + ", ".join(sorted(as_of)) + " event time")
    out.append(style.dim("(" + "; ".join(notes) + ")"))
    return out


def _whole_seconds(text: str) -> str:
    """``2024-05-31T14:30:00Z`` from an RFC 3339 time in UTC; the text unchanged otherwise."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.utcoffset() is None:
        return text
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Tally:
    """What the timeline showed: alerts, and breaches opened and closed."""

    alerts: int = 0
    opened: int = 0
    closed: int = 0

    def add(self, data: Mapping[str, Any]) -> None:
        status = str(data.get("status"))
        previous = str(data.get("previous_status"))
        self.alerts += 1
        if status == "breach" and previous != "breach":
            self.opened += 1
        elif previous == "breach" and status != "breach":
            self.closed += 1


def open_breaches(status: Mapping[str, Any]) -> list[str]:
    """``exchange/rule`` of every rule in breach in a ``GET /status`` document."""
    return [
        f"{report.get('exchange')}/{rule.get('rule')}"
        for report in status.get("exchanges", [])
        for rule in report.get("rules", [])
        if rule.get("status") == "breach"
    ]


def format_summary(tally: Tally, still_open: Sequence[str], style: Style) -> str:
    """One line: alerts, breaches opened and closed, breaches still open."""

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('h') else 's'}"

    text = (
        f"{plural(tally.alerts, 'alert')}; "
        f"{plural(tally.opened, 'breach')} opened, {tally.closed} closed; "
    )
    if still_open:
        return text + style.status(
            f"{len(still_open)} still open: {', '.join(still_open)}", "breach"
        )
    return text + style.status("0 still open", "ok")


def events_counted(metrics_text: str) -> int:
    """The sum of ``reserve_monitor_events_total`` over every topic and outcome."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("reserve_monitor_events_total{") or line.startswith(
            "reserve_monitor_events_total "
        ):
            with contextlib.suppress(ValueError, IndexError):
                total += float(line.rsplit(maxsplit=1)[1])
    return int(total)


def playback_offsets(
    records: Sequence[Record], anchor: datetime, live: tuple[datetime, datetime], speedup: float
) -> list[float]:
    """When each record is due, in wall seconds after the phase begins playing.

    Event time inside the `live` span is compressed by `speedup`, measured from
    `anchor` (the phase's start); outside it records are due as soon as the
    ones before them. Offsets never decrease.
    """
    low, high = live

    def clamp(moment: datetime) -> datetime:
        return min(max(moment, low), high)

    base = clamp(anchor)
    offsets: list[float] = []
    latest = 0.0
    for record in records:
        latest = max(latest, (clamp(record.ts) - base).total_seconds() / speedup)
        offsets.append(latest)
    return offsets


def split_phases(
    records: Iterable[Record], scenario_phases: Sequence[Phase]
) -> list[tuple[Phase, list[Record]]]:
    """Every phase with its records, in order (records are in event-time order)."""
    groups: dict[int, list[Record]] = {phase.number: [] for phase in scenario_phases}
    first = scenario_phases[0]
    for record in records:
        phase = phase_of(record, scenario_phases) or first
        groups[phase.number].append(record)
    return [(phase, groups[phase.number]) for phase in scenario_phases]


# -- running -------------------------------------------------------------------


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"(cannot read {path}: {error})"
    # a terminal's control sequences (cursor, colours) are of no use in a log excerpt
    text = _CONTROL.sub("", text)
    tail = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) or "    (empty)"


class Kafka:
    """The local broker (`LocalBroker`), told as the demo goes; stops only what it started."""

    def __init__(self, out: TextIO) -> None:
        self.broker = LocalBroker(os.environ.get("KAFKA_PORT", "9092"))
        self.started = False
        self.out = out

    def up(self) -> str:
        port = self.broker.port
        if self.broker.running():
            bootstrap = self.broker.up()
            print(f"kafka     reusing the broker already running on {bootstrap}", file=self.out)
            return bootstrap
        print(f"kafka     starting a broker on port {port} (kafka.sh up) ...", file=self.out)
        self.out.flush()
        self.started = True  # from here on, whatever happens, `down` is ours to run
        began = time.monotonic()
        try:
            started = self.broker.up(show_progress=True)
        except LocalError as error:
            raise DemoError(str(error)) from None
        took = time.monotonic() - began
        print(f"kafka     broker ready on {started} after {took:.0f} s", file=self.out)
        return started

    def down(self) -> None:
        if not self.started:
            return
        port = self.broker.port
        print(f"kafka     stopping the broker the demo started on port {port}", file=self.out)
        self.out.flush()
        try:
            self.broker.down()
        except LocalError as error:
            print(f"demo: warning: {error}", file=sys.stderr)
        self.started = False


class Demo:
    """The asynchronous part: health, the alert timeline, the phases, the final table."""

    def __init__(
        self, bootstrap: str, prefix: str, worker: WorkerProcess, out: TextIO, style: Style
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.worker = worker
        self.out = out
        self.style = style
        self.width = min(shutil.get_terminal_size((110, 24)).columns, 130) - 1
        self.tally = Tally()
        self.last_alert = time.monotonic()
        self.sent = 0
        self.consumer_error: BaseException | None = None

    def say(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.out)
        self.out.flush()

    async def wait_healthy(self) -> float:
        began = time.monotonic()
        url = self.worker.url("/healthz")
        while True:
            self.worker.check_alive()
            code, _ = await asyncio.to_thread(self.worker.fetch, "/healthz", 2.0)
            if code == 200:
                return time.monotonic() - began
            if time.monotonic() - began > HEALTH_TIMEOUT:
                raise DemoError(
                    f"the worker did not answer 200 on {url} within {HEALTH_TIMEOUT:.0f} s "
                    f"(last answer: {code or 'none'}); last lines of "
                    f"{self.worker.log_path}:\n{_log_tail(self.worker.log_path)}"
                )
            await asyncio.sleep(0.25)

    async def consume_alerts(self, ready: asyncio.Event) -> None:
        """Print every CloudEvent on ``<prefix>reserve.alerts`` from the beginning."""
        from aiokafka import AIOKafkaConsumer

        topic = f"{self.prefix}reserve.alerts"
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            client_id="reserve-monitor-demo",
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            ready.set()
            async for message in consumer:
                try:
                    event = json.loads(message.value)
                    data = event["data"]
                    if not isinstance(data, dict):
                        raise TypeError("data is not an object")
                except (ValueError, KeyError, TypeError) as error:
                    self.say(
                        self.style.status(
                            f"(unreadable message on {topic}@{message.offset}: {error})",
                            "unknown",
                        )
                    )
                    continue
                self.tally.add(data)
                self.last_alert = time.monotonic()
                self.say(*format_alert(data, self.style, self.width))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.consumer_error = error
            raise
        finally:
            ready.set()
            await consumer.stop()

    def _check(self, consumer: asyncio.Task[None]) -> None:
        self.worker.check_alive()
        if consumer.done() and not consumer.cancelled():
            error = consumer.exception()
            raise DemoError(f"reading the alerts failed: {error!r}")

    async def wait_caught_up(self, consumer: asyncio.Task[None]) -> bool:
        """Until the worker has counted every record sent; False on timeout."""
        began = time.monotonic()
        while time.monotonic() - began < CATCH_UP_TIMEOUT:
            self._check(consumer)
            code, body = await asyncio.to_thread(self.worker.fetch, "/metrics", 3.0)
            if code == 200 and events_counted(body.decode("utf-8", "replace")) >= self.sent:
                return True
            await asyncio.sleep(0.2)
        return False

    async def settle(self, consumer: asyncio.Task[None], quiet: float) -> None:
        """Until no new alert for `quiet` seconds (at most SETTLE_LIMIT)."""
        began = time.monotonic()
        floor = began  # alerts before this wait do not count as recent
        while time.monotonic() - began < SETTLE_LIMIT:
            self._check(consumer)
            if time.monotonic() - max(self.last_alert, floor) >= quiet:
                return
            await asyncio.sleep(0.1)

    async def play_phase(
        self,
        producer: Any,
        consumer: asyncio.Task[None],
        phase: Phase,
        batch: Sequence[Record],
        live: tuple[datetime, datetime],
    ) -> int:
        """Send one phase's records paced by event time; return how many went."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        pending: list[asyncio.Future[Any]] = []
        for record, due in zip(
            batch, playback_offsets(batch, phase.starts, live, SPEEDUP), strict=True
        ):
            delay = began + due - loop.time()
            if delay > 0:
                self._check(consumer)
                await asyncio.sleep(delay)
            topic, key, value = encode(record, self.prefix)
            pending.append(await producer.send(topic, value=value, key=key))
            self.sent += 1
        await producer.flush()
        await asyncio.gather(*pending)  # every record acknowledged before the phase ends
        return len(batch)

    async def play(
        self, scenario_phases: list[Phase], records: list[Record], live: tuple[datetime, datetime]
    ) -> None:
        from aiokafka import AIOKafkaProducer

        health = await self.wait_healthy()
        self.say(self.style.dim(f"worker    healthy after {health:.1f} s"))
        ready = asyncio.Event()
        consumer = asyncio.create_task(self.consume_alerts(ready))
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id="reserve-monitor-demo",
            acks="all",
            linger_ms=5,
        )
        try:
            await producer.start()
            await ready.wait()
            self._check(consumer)
            for phase, batch in split_phases(records, scenario_phases):
                self.say("", *format_phase(phase, self.style, self.width))
                before = self.tally.alerts
                playing = time.monotonic()
                sent = await self.play_phase(producer, consumer, phase, batch, live)
                played = time.monotonic() - playing
                if not await self.wait_caught_up(consumer):
                    self.say(
                        self.style.status(
                            f"(the worker has not counted all {self.sent} records after "
                            f"{CATCH_UP_TIMEOUT:.0f} s; going on)",
                            "warning",
                        )
                    )
                await self.settle(consumer, PHASE_QUIET)
                if phase.number == scenario_phases[0].number and self.tally.alerts == 0:
                    await self.wait_first_alert(consumer)
                fresh = self.tally.alerts - before
                self.say(
                    self.style.dim(
                        f"{'':10}{sent} records played in {played:.1f} s; "
                        f"{fresh or 'no'} status change{'' if fresh == 1 else 's'}"
                    )
                )
            await self.settle(consumer, FINAL_QUIET)
            if self.tally.alerts == 0:
                raise DemoError(
                    f"no alert arrived on {self.prefix}reserve.alerts; last lines of "
                    f"{self.worker.log_path}:\n{_log_tail(self.worker.log_path)}"
                )
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await consumer
            with contextlib.suppress(Exception):
                await producer.stop()
        await self.final_table()

    async def wait_first_alert(self, consumer: asyncio.Task[None]) -> None:
        began = time.monotonic()
        while self.tally.alerts == 0:
            self._check(consumer)
            if time.monotonic() - began > FIRST_ALERT_TIMEOUT:
                raise DemoError(
                    f"no alert arrived on {self.prefix}reserve.alerts within "
                    f"{FIRST_ALERT_TIMEOUT:.0f} s of the first phase; last lines of "
                    f"{self.worker.log_path}:\n{_log_tail(self.worker.log_path)}"
                )
            await asyncio.sleep(0.2)
        await self.settle(consumer, PHASE_QUIET)

    async def final_table(self) -> None:
        self.worker.check_alive()
        code, body = await asyncio.to_thread(self.worker.fetch, "/status", 5.0)
        if code != 200:
            raise DemoError(f"GET /status answered {code or 'nothing'}")
        try:
            status = json.loads(body)
        except ValueError as error:
            raise DemoError(f"GET /status is not JSON: {error}") from None
        self.say("", self.style.bold("Final adequacy (GET /status)"), "")
        self.say(*format_table(status, self.style))
        self.say("", format_summary(self.tally, open_breaches(status), self.style))


async def _delete_topics(bootstrap: str, prefixes: Sequence[str]) -> int:
    """Delete the topics whose names start with one of `prefixes`; return how many."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()


def remove_topics(bootstrap: str, prefixes: Sequence[str]) -> int:
    """Delete the run's topics (its prefix, and its changelog under the app id); how many went."""
    try:
        return asyncio.run(asyncio.wait_for(_delete_topics(bootstrap, prefixes), 20))
    except Exception as error:
        print(f"demo: warning: could not delete the demo's topics: {error!r}", file=sys.stderr)
        return 0


def _worker_env(bootstrap: str, prefix: str, app_id: str, web_port: int) -> dict[str, str]:
    # the demo's worker runs the built-in packs with the default settings, whatever
    # the shell running the demo has set for a worker of its own
    return worker_env(
        base={
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("RESERVE_MONITOR_", "KAFKA_"))
        },
        bootstrap=bootstrap,
        prefix=prefix,
        app_id=app_id,
        web_port=web_port,
        tick_seconds=1,
        session_timeout=10,
        log_level=os.environ.get("DEMO_WORKER_LOG_LEVEL", "warning"),
    )


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(out: TextIO = sys.stdout) -> int:
    """The whole demo; the exit status."""
    style = Style.for_stream(out)
    began = time.monotonic()
    stamp = f"{int(time.time())}-{os.getpid()}"  # unique even for two demos in one second
    prefix = f"demo-{stamp}."
    app_id = f"reserve-monitor-demo-{stamp}"
    log_path = REPO_ROOT / ".kafka" / f"demo-{stamp}.log"
    kafka = Kafka(out)
    worker: WorkerProcess | None = None
    bootstrap: str | None = None
    status = 0
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        print(style.bold(f"Reserve Monitor demo: {SCENARIO}"), file=out)
        bootstrap = kafka.up()
        web_port = free_port()
        env = _worker_env(bootstrap, prefix, app_id, web_port)
        worker = WorkerProcess(env, log_path, web_port, own_session=True)
        worker.launch()
        assert worker.process is not None
        shown = log_path.relative_to(REPO_ROOT)
        print(
            f"worker    pid {worker.process.pid}, topic prefix {prefix!r}, app id {app_id}, "
            f"{worker.url('/status')}\nworker    log {shown}",
            file=out,
        )
        # the whole story in the past, ending about now: sent faster than it happened,
        # none of it may be dated ahead of the worker's clock
        now = datetime.now(UTC).replace(microsecond=0)
        start = start_ending_at(SCENARIO, now, SEED)
        records = generate(SCENARIO, start, SEED)
        scenario_phases = phases(SCENARIO, start, SEED)
        print(
            style.dim(
                f"scenario  {len(records)} records, seed {SEED}; the incident starts at "
                f"{format_ts(start)} (event time, {(now - start) // timedelta(minutes=1)} min "
                "ago); "
                f"the story plays {SPEEDUP:g}x faster than life, the trade history and the "
                "quiet hour at once; times below are event times (UTC)"
            ),
            file=out,
        )
        markers = "  ".join(
            f"{style.marker(s)} {s}" for s in ("breach", "warning", "ok", "unknown")
        )
        print(style.dim(f"markers   {markers}"), file=out)
        out.flush()
        demo = Demo(bootstrap, prefix, worker, out, style)
        live = (start, start + timedelta(seconds=STORY_SECONDS))
        asyncio.run(demo.play(scenario_phases, records, live))
        # the story as a page to look at: the same records, replayed under the same packs
        report = write_report(records, REPO_ROOT / ".kafka" / f"demo-{stamp}.html")
        print(f"report    {report} (open it in a browser)", file=out)
    except KeyboardInterrupt:
        print("\ndemo: interrupted; stopping what the demo started", file=sys.stderr)
        status = 130
    except (DemoError, LocalError, SourceError) as error:
        out.flush()
        print(f"\ndemo: error: {error}", file=sys.stderr)
        status = 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if worker is not None:
                if worker.running:
                    print(style.dim("\nworker    stopping (SIGTERM)"), file=out)
                    out.flush()
                code = worker.stop(timeout=WORKER_STOP_TIMEOUT)
                if code not in (None, 0, -signal.SIGTERM) and status == 0:
                    print(
                        f"demo: warning: the worker exited with status {code}; see {log_path}",
                        file=sys.stderr,
                    )
            if bootstrap is not None and worker is not None:
                # Topics of a run are of no use after it; keep a shared broker tidy.
                deleted = remove_topics(bootstrap, [prefix, f"{app_id}-"])
                print(style.dim(f"kafka     deleted the run's {deleted} topics"), file=out)
            kafka.down()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
    if status == 0:
        print(style.dim(f"demo done in {time.monotonic() - began:.0f} s"), file=out)
    return status


def main() -> int:
    """``python -m monitor.synthetic.demo``."""
    return run(sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
