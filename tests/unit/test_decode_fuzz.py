"""Fuzzing the decoding path: random bytes, random JSON and near-valid events.

Whatever a producer sends, :func:`decode` either returns an event or raises
:class:`InvalidEvent`; and the worker's per-record decision (:func:`take`)
ends every record in exactly one outcome, leaving an engine whose timer, reports
and CloudEvents still work.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.clock import WatermarkClock
from monitor.core.engine import Engine, Outcome
from monitor.core.errors import InvalidEvent
from monitor.core.events import Event, Topic, decode, decode_document, parse_json
from monitor.core.events.lines import decode_line, parse_line, whole_line
from monitor.core.output.alerts import cloud_event
from monitor.core.output.report import adequacy_report
from monitor.core.policy import load_policy
from monitor.worker.intake import take
from tests.corpus import cases
from tests.unit.builders import (
    T0,
    at,
    encode,
    feed,
    fixed_overheads,
    insurance,
    liability,
    own_funds,
    price,
    reserve_fund,
    topic_for,
    trade,
    wallet,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The worker's wall clock: the stories are dated 2024, and run later, as in the integration
# tests. Events dated more than MAX_AHEAD after it are refused (the default); replay, without
# a wall clock, takes every event as dated, as a worker with no bound would (UNBOUNDED).
WALL_NOW = datetime(2026, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(seconds=300)
UNBOUNDED = timedelta.max

topics = st.sampled_from(list(Topic))
keys = st.one_of(st.none(), st.binary(max_size=12), st.sampled_from([b"dmm", b"BTC", b"other"]))

# JSON with every kind of leaf, NaN and Infinity included (json.dumps writes them as tokens)
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

# texts on the edges of what amounts and timestamps accept
AMOUNT_EDGES = [
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "-1",
    "0",
    "1e999999999",
    "1e-999999999",
    "1e400",
    "1" * 25,
    "1" * 24,
    "0." + "0" * 29 + "1",
    "0." + "0" * 30 + "1",
    "1_000",
    "\u0661\u0662",  # Arabic-Indic digits: Decimal reads them, the contract does not
    " 12 ",
    "",
    "\u0000",
]
TIME_EDGES = [
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "8999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2024-02-30T00:00:00Z",
    "2024-05-31T13:00:00",
    "2024-05-31T13:00:00+24:00",
    "2024-05-31 13:00:00Z",
    "20240531T130000Z",
    "2099-01-01T00:00:00Z",
]
AMOUNT_FIELDS = {"notional", "balance", "price", "amount", "coverage", "annual_amount"}
TIME_FIELDS = {"ts", "valid_from", "valid_to"}
field_values = st.one_of(
    json_values,
    st.sampled_from(AMOUNT_EDGES + TIME_EDGES),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda moment: moment.isoformat()),
)


def _value_for(field: str) -> st.SearchStrategy[Any]:
    """Mostly the edges of the field's own kind; sometimes anything at all."""
    if field in AMOUNT_FIELDS:
        edges = st.one_of(
            st.sampled_from(AMOUNT_EDGES), st.decimals(allow_nan=True, allow_infinity=True)
        ).map(str)
        return st.one_of(edges, edges, field_values)
    if field in TIME_FIELDS:
        return st.one_of(st.sampled_from(TIME_EDGES), st.sampled_from(TIME_EDGES), field_values)
    return field_values


def _bases() -> list[dict[str, Any]]:
    """One valid event of each kind, for the exchange the engine already knows."""
    return [
        trade("1250000", when=at(minutes=5)),
        wallet("3000", wallet_id="btc-hot-1", custody="hot", when=at(minutes=5)),
        price("10800000", when=at(minutes=5)),
        liability("90000", when=at(minutes=5)),
        reserve_fund(5_000_000_000, when=at(minutes=5)),
        insurance(1_000_000_000, valid_from=at(days=-1), valid_to=at(days=300)),
        own_funds(900_000, when=at(minutes=5)),
        fixed_overheads(2_400_000, when=at(minutes=5)),
    ]


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[Topic, bytes | None, bytes]:
    """A valid event with one or two things wrong (or nothing), as a Kafka record."""
    document = dict(draw(st.sampled_from(_bases())))
    topic = topic_for(document)
    key: bytes | None = (
        document["asset"] if topic is Topic.PRICES else document["exchange"]
    ).encode()
    for _ in range(draw(st.integers(0, 2))):
        mutation = draw(st.sampled_from(["set", "drop", "add", "key", "event_id"]))
        field = draw(st.sampled_from(sorted(document)))
        if mutation == "set":
            document[field] = draw(_value_for(field))
        elif mutation == "drop":
            document.pop(field, None)
        elif mutation == "add":
            document[draw(st.text(max_size=8))] = draw(field_values)
        elif mutation == "key":
            key = draw(keys)
        else:  # a repeated id: a duplicate, whatever else it carries
            document["event_id"] = "seen-1"
    return topic, key, json.dumps(document).encode()


raw_records = st.tuples(topics, keys, st.binary(max_size=200))
json_records = st.tuples(topics, keys, json_values.map(lambda value: json.dumps(value).encode()))
records = st.one_of(near_valid(), near_valid(), raw_records, json_records)


def _decodes_or_refuses(topic: Topic, key: bytes | None, value: bytes) -> None:
    try:
        decode(topic, key, value)
    except InvalidEvent as error:
        assert str(error) == f"{error.field}: {error.message}"


@FUZZ
@given(topics, keys, st.binary(max_size=300))
def test_random_bytes_decode_or_raise_invalid_event(
    topic: Topic, key: bytes | None, value: bytes
) -> None:
    _decodes_or_refuses(topic, key, value)


@FUZZ
@given(json_records)
def test_random_json_decodes_or_raises_invalid_event(record: tuple[Topic, bytes, bytes]) -> None:
    _decodes_or_refuses(*record)


@FUZZ
@given(near_valid())
def test_near_valid_events_decode_or_raise_invalid_event(
    record: tuple[Topic, bytes | None, bytes],
) -> None:
    _decodes_or_refuses(*record)


def _plainly(topic: Topic, key: bytes | None, value: bytes) -> Event:
    """The long way: the key, the standard library's JSON, then the fields."""
    try:
        key_text = None if key is None else key.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent("key", "not UTF-8") from None
    return decode_document(topic, key_text, parse_json(value))


def _verdict(decoder: Any, record: tuple[Topic, bytes | None, bytes]) -> tuple[str, Any]:
    try:
        event = decoder(*record)
    except InvalidEvent as error:
        return ("refused", str(error))
    return (type(event).__name__, event)  # a JSON -0 is 0 one way, Decimal("-0") the other


@FUZZ
@given(st.one_of(near_valid(), json_records, raw_records))
def test_the_fast_decoder_and_the_long_way_agree(record: tuple[Topic, bytes | None, bytes]) -> None:
    """decode() reads the bytes with msgspec, and takes the long way only when that fails:
    both must take the same events, and refuse the rest for the same reason."""
    assert _verdict(decode, record) == _verdict(_plainly, record)


def _known_exchange() -> tuple[Engine, WatermarkClock]:
    """An engine that knows dmm (priced, funded, with wallets) and has seen ``seen-1``."""
    engine = Engine(load_policy())
    feed(
        engine,
        price("10700000"),
        reserve_fund(5_000_000_000),
        wallet("97000"),
        wallet("3000", wallet_id="btc-hot-1", custody="hot", event_id="seen-1"),
    )
    clock = WatermarkClock()
    clock.observe(T0, 0.0)
    return engine, clock


def _take_and_check(
    engine: Engine,
    clock: WatermarkClock,
    record: tuple[Topic, bytes | None, bytes],
    t: float,
    max_ahead: timedelta = MAX_AHEAD,
) -> None:
    """One record through the worker's decision: one outcome, time moved only if applied."""
    topic, key, value = record
    before = clock.now(t)
    verdict = take(engine, clock, topic, key, value, t, wall_now=WALL_NOW, max_ahead=max_ahead)
    assert isinstance(verdict.outcome, Outcome)
    if verdict.outcome is Outcome.INVALID:
        assert verdict.error and verdict.step is None
        assert not verdict.error.startswith("internal:"), verdict.error
    else:
        assert verdict.error is None and verdict.step is not None
        assert verdict.step.outcome is verdict.outcome
    if verdict.outcome is not Outcome.APPLIED:
        assert clock.now(t) == before
    for change in verdict.step.changes if verdict.step else []:
        json.dumps(cloud_event(change, app_id="fuzz", currency="JPY"))


def _still_whole(engine: Engine, clock: WatermarkClock, t: float) -> None:
    """What the worker's timer does next with the engine: tick, publish, report."""
    now = clock.now(t)
    assert now is not None
    for change in engine.finish().changes:
        json.dumps(cloud_event(change, app_id="fuzz", currency="JPY"))
    for exchange in engine.exchanges:
        json.dumps(adequacy_report(engine, exchange).to_document())


@FUZZ
@given(st.lists(records, min_size=1, max_size=6))
def test_every_record_ends_in_exactly_one_outcome_and_the_engine_stays_whole(
    batch: list[tuple[Topic, bytes | None, bytes]],
) -> None:
    engine, clock = _known_exchange()
    for n, record in enumerate(batch):
        _take_and_check(engine, clock, record, float(n))
    _still_whole(engine, clock, float(len(batch)))


def _edge_records() -> list[tuple[Topic, bytes | None, bytes]]:
    """Every edge text in every amount and timestamp field of every kind of event."""
    out = []
    for base in _bases():
        topic = topic_for(base)
        for field in sorted(base):
            edges = AMOUNT_EDGES if field in AMOUNT_FIELDS else TIME_EDGES
            if field not in AMOUNT_FIELDS | TIME_FIELDS:
                continue
            for edge in edges:
                out.append((topic, None, encode({**base, field: edge})))
    return out


def test_every_edge_in_every_amount_and_timestamp_field_ends_in_one_outcome() -> None:
    """The edges, each of them, not left to chance as in the fuzz tests above.

    Without a bound on how far ahead an event may be dated, the years up to 8999
    reach the engine too, as they do in a replay.
    """
    for record in _edge_records():
        _decodes_or_refuses(*record)
        for max_ahead in (MAX_AHEAD, UNBOUNDED):
            engine, clock = _known_exchange()
            _take_and_check(engine, clock, record, 1.0, max_ahead)
            _still_whole(engine, clock, 2.0)


def test_the_fuzzed_bases_are_valid_events() -> None:
    """The mutations start from events the engine applies (else the fuzz tests little)."""
    engine, clock = _known_exchange()
    for document in _bases():
        verdict = take(
            engine,
            clock,
            topic_for(document),
            None,
            encode(document),
            0.0,
            wall_now=WALL_NOW,
            max_ahead=MAX_AHEAD,
        )
        assert verdict.outcome is Outcome.APPLIED, (document, verdict.error)


def test_every_corpus_case_is_refused_with_its_reason() -> None:
    """The integration corpus, without Kafka: each case is invalid, for its own reason."""
    for case in cases():
        engine, clock = _known_exchange()
        verdict = take(
            engine,
            clock,
            case.topic,
            case.key,
            case.value,
            1.0,
            wall_now=WALL_NOW,
            max_ahead=MAX_AHEAD,
        )
        assert verdict.outcome is Outcome.INVALID, case.name
        assert verdict.error is not None and case.reason in verdict.error, (case.name, verdict)
        assert clock.now(1.0) == T0 + timedelta(seconds=1), case.name


# -- a replay line read whole, in one pass, against the envelope then the value -------

envelope_keys = st.one_of(
    st.none(), st.sampled_from(["dmm", "BTC", "other", ""]), st.integers(), st.just(["dmm"])
)
readable_record_times = st.one_of(
    st.integers(min_value=0, max_value=2**45),  # epoch milliseconds, to the year 3084
    st.datetimes(min_value=datetime(1970, 1, 2), timezones=st.just(UTC)).map(
        lambda moment: moment.isoformat().replace("+00:00", "Z")
    ),
)
record_times = st.one_of(
    readable_record_times,
    readable_record_times,
    st.none(),
    st.sampled_from([*TIME_EDGES, "2024-05-31T13:26:00.123Z"]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=True, allow_infinity=True),
    json_values,
)


@st.composite
def replay_lines(draw: st.DrawFn) -> str:
    """A near-valid record as a replay line, its envelope near-valid too: the topic
    wrong, missing, repeated or last, the key of the wrong kind, odd record times."""
    topic, key, value = draw(near_valid())
    fields: list[tuple[str, str]] = [("topic", json.dumps(str(topic))), ("value", value.decode())]
    if draw(st.booleans()):
        written = key.decode("utf-8", "replace") if key is not None else None
        fields.append(("key", json.dumps(draw(st.one_of(st.just(written), envelope_keys)))))
    if draw(st.booleans()):
        fields.append(("timestamp", json.dumps(draw(record_times), default=str)))
    mutation = draw(st.sampled_from(["none", "topic", "drop", "repeat", "extra", "last"]))
    if mutation == "topic":
        fields[0] = ("topic", json.dumps(draw(st.one_of(topics.map(str), json_values))))
    elif mutation == "drop":
        fields.pop(draw(st.integers(0, len(fields) - 1)))
    elif mutation == "repeat":
        fields.append(draw(st.sampled_from(fields)))
    elif mutation == "extra":
        fields.append((draw(st.text(max_size=8)), json.dumps(draw(json_values))))
    elif mutation == "last":
        fields.append(fields.pop(0))
    return "{" + ",".join(f"{json.dumps(name)}:{written}" for name, written in fields) + "}"


def _line_verdict(read: Any, line: str | bytes) -> tuple[str, Any]:
    try:
        topic, timestamp, event = read(line)
    except InvalidEvent as error:
        return ("refused", str(error))
    return (type(event).__name__, (topic, timestamp, event))


def _in_two_steps(line: str | bytes) -> tuple[Topic, datetime | None, Event]:
    record = parse_line(line)
    return record.topic, record.timestamp, decode(record.topic, record.key, record.value)


def _whole(line: str | bytes) -> tuple[Topic, datetime | None, Event]:
    read = decode_line(line)
    return read.topic, read.timestamp, read.event


@FUZZ
@given(replay_lines())
def test_a_line_read_in_one_pass_and_in_two_steps_agree(line: str) -> None:
    """replay reads a line whole when it is right (decode_line): the same events as the
    envelope then the value, and the same refusal of anything wrong."""
    assert _line_verdict(_whole, line) == _line_verdict(_in_two_steps, line)


def test_a_right_line_is_read_in_one_pass() -> None:
    """Every kind of event, with and without key and record time, takes the one pass."""
    for document in _bases():
        topic = topic_for(document)
        key = document["asset"] if topic is Topic.PRICES else document["exchange"]
        for envelope in ({}, {"key": key}, {"key": key, "timestamp": 1717161960123}):
            line = json.dumps({**envelope, "value": document, "topic": str(topic)})
            read = whole_line(line)
            assert read is not None, line
            assert (read.topic, read.timestamp, read.event) == _in_two_steps(line)
        wrong_key = json.dumps({"topic": str(topic), "key": "nobody", "value": document})
        assert whole_line(wrong_key) is None


@FUZZ
@given(
    replay_lines(),
    st.text(alphabet=st.characters(blacklist_categories=()), min_size=1, max_size=6),
    st.booleans(),
)
def test_a_line_with_raw_non_ascii_text_reads_alike_both_ways(
    line: str, text: str, as_bytes: bool
) -> None:
    """Text written raw, not escaped, in a field of free text (the event id): UTF-8, read
    from bytes or from a str, and lone surrogates, which only a str carries and which
    msgspec does not read: the two steps refuse those with their reason."""
    raw = text.replace("\\", "").replace('"', "")
    written = line.replace('"event_id": "', '"event_id": "' + raw, 1)
    read: str | bytes = written
    if as_bytes and not any("\ud800" <= character <= "\udfff" for character in written):
        read = written.encode("utf-8")  # a lone surrogate: only a str carries it
    assert _line_verdict(_whole, read) == _line_verdict(_in_two_steps, read)
