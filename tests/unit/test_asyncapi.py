"""deploy/asyncapi.yaml: generated from the models, valid AsyncAPI 3.0, true to the code.

The document's payload schemas are read the way a consumer reads them, with
``jsonschema`` (draft 7, the base of AsyncAPI's Schema Object), and every
verdict is compared with the code's: what the schema accepts the monitor
accepts, and what it rejects the monitor dead-letters.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from monitor import asyncapi
from monitor.core.engine import Engine
from monitor.core.errors import InvalidEvent
from monitor.core.events import LedgerEvent, Topic, decode
from monitor.core.output.report import adequacy_report
from monitor.core.policy import parse_policy
from monitor.messages import (
    RULE_IDS,
    AdequacyReportDocument,
    DeadLetterRecord,
    StatusChangeEvent,
)
from monitor.replay import replay
from monitor.settings import Settings
from monitor.synthetic.scenarios import generate
from monitor.synthetic.simulator import write_jsonl
from monitor.worker.deadletter import deadletter_record
from monitor.worker.topics import contract_topics

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "asyncapi.yaml"
# the official JSON Schema of AsyncAPI 3.0.0 (npm @asyncapi/specs; make test installs it)
SPEC = ROOT / ".cache/asyncapi/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"
DOCUMENT_URI = "urn:reserve-monitor:asyncapi"

CONTRACT_TOPICS = {
    "exchange.trades",
    "exchange.wallet-balances",
    "exchange.ledger",
    "market.prices",
    "reserve.alerts",
    "reserve.breaches",
    "reserve.adequacy",
    "reserve.deadletter",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def registry(document: dict[str, Any]) -> Registry:
    resource = Resource.from_contents(document, default_specification=DRAFT7)
    return Registry().with_resource(DOCUMENT_URI, resource)


def channel_of(document: dict[str, Any], topic: str) -> dict[str, Any]:
    (channel,) = [c for c in document["channels"].values() if c["address"] == topic]
    return channel


def messages_of(document: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    """The message objects of ``topic``'s channel, references followed."""
    refs = channel_of(document, topic)["messages"].values()
    return [document["components"]["messages"][r["$ref"].rsplit("/", 1)[1]] for r in refs]


def schema_accepts(registry: Registry, message: dict[str, Any], payload: Any) -> bool:
    validator = Draft7Validator(
        {"$ref": DOCUMENT_URI + message["payload"]["$ref"]}, registry=registry
    )
    return validator.is_valid(payload)


def channel_accepts(document: dict[str, Any], registry: Registry, topic: str, payload: Any) -> bool:
    """A payload fits a channel when it fits one of the channel's messages."""
    return any(schema_accepts(registry, m, payload) for m in messages_of(document, topic))


def code_accepts(topic: str, payload: Any) -> bool:
    try:
        decode(Topic(topic), None, json.dumps(payload).encode())
    except InvalidEvent:
        return False
    return True


# -- the document itself ------------------------------------------------------


def test_the_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi.render(), (
        "deploy/asyncapi.yaml is out of date with the models: run `make asyncapi`"
    )


def test_the_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    assert SPEC.exists(), f"{SPEC} is missing: `make test-unit` installs it"
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    errors = [f"{e.json_path}: {e.message}" for e in Draft7Validator(spec).iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"


def test_every_contract_topic_is_a_channel_and_every_channel_a_topic_the_worker_creates(
    document: dict[str, Any],
) -> None:
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == CONTRACT_TOPICS
    assert addresses == {t.name for t in contract_topics(Settings())}


def test_the_monitor_reads_the_inputs_and_writes_the_outputs(document: dict[str, Any]) -> None:
    actions = {
        document["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"]: op["action"]
        for op in document["operations"].values()
    }
    assert actions == {t: "receive" if t in {x.value for x in Topic} else "send" for t in actions}
    assert set(actions) == CONTRACT_TOPICS


def test_the_ledger_channel_carries_one_message_per_ledger_type(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    carried = {
        schemas[m["payload"]["$ref"].rsplit("/", 1)[1]]["properties"]["type"]["const"]
        for m in messages_of(document, "exchange.ledger")
    }
    # the tag of each ledger event struct is its "type"
    declared = {kind.__struct_config__.tag for kind in typing.get_args(LedgerEvent)}
    assert (
        carried
        == declared
        == {
            "customer_liability",
            "reserve_fund",
            "insurance_policy",
            "own_funds",
            "fixed_overheads",
        }
    )


def test_alerts_carry_the_cloudevents_content_type_and_the_adequacy_topic_is_compacted(
    document: dict[str, Any],
) -> None:
    for topic in ("reserve.alerts", "reserve.breaches"):
        (message,) = messages_of(document, topic)
        assert message["contentType"] == "application/cloudevents+json"
        assert message["headers"]["properties"]["content-type"]["const"] == message["contentType"]
    binding = channel_of(document, "reserve.adequacy")["bindings"]["kafka"]
    assert binding["topicConfiguration"]["cleanup.policy"] == ["compact"]


# -- examples and samples against the schemas and the code --------------------


def test_every_example_fits_its_schema_and_the_code(
    document: dict[str, Any], registry: Registry
) -> None:
    inputs = {t.value for t in Topic}
    checked = 0
    for channel in document["channels"].values():
        for message in messages_of(document, channel["address"]):
            for example in message["examples"]:
                payload = example["payload"]
                assert schema_accepts(registry, message, payload), (message["name"], payload)
                if channel["address"] in inputs:
                    assert code_accepts(channel["address"], payload), payload
                checked += 1
    assert checked == 12  # 8 input messages (5 of them ledger types) and one on each output topic


def input_examples(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(topic, payload)`` of every example of an input event in the document."""
    return [
        (topic.value, example["payload"])
        for topic in Topic
        for message in messages_of(document, topic.value)
        for example in message["examples"]
    ]


def _changed(payload: dict[str, Any], field: str, value: Any) -> dict[str, Any] | None:
    """``payload`` with ``field`` set to ``value`` (removed for DELETE); None without the field."""
    amounts = {"notional", "balance", "price", "amount", "coverage", "annual_amount"}
    if field == "AMOUNT":
        field = next((f for f in payload if f in amounts), "")
    if field not in payload:
        return None
    changed = copy.deepcopy(payload)
    if value is DELETE:
        del changed[field]
    else:
        changed[field] = value
    return changed


DELETE = object()

# (field, value, accepted): each applied to every example event that has the field
SAMPLES = [
    ("AMOUNT", "12.5", True),
    ("AMOUNT", 12.5, True),
    ("AMOUNT", 7, True),
    ("AMOUNT", "1e3", True),
    ("AMOUNT", "-1", False),
    ("AMOUNT", -3, False),
    ("AMOUNT", "NaN", False),
    ("AMOUNT", "Infinity", False),
    ("AMOUNT", "1_000", False),
    ("AMOUNT", "١٢", False),
    ("AMOUNT", True, False),
    ("AMOUNT", None, False),
    ("ts", "2024-05-31T13:26:00+09:00", True),
    ("ts", "2024-05-31T13:26:00.25Z", True),
    ("ts", "2024-05-31T13:26:00", False),
    ("ts", "2024-05-31", False),
    ("ts", "20240531T132600Z", False),
    ("ts", 1717161960, False),
    ("exchange", "bit.flyer_jp-2", True),
    ("exchange", "DMM", False),
    ("exchange", "-dmm", False),
    ("exchange", "d" * 65, False),
    ("event_id", "", False),
    ("event_id", "e" * 129, False),
    ("event_id", 17, False),
    ("event_id", DELETE, False),
    ("custody", "cold", True),
    ("custody", "lukewarm", False),
    ("holder", "guarantee", True),
    ("holder", "customers", False),
    ("asset", "BTC!", False),
    ("currency", "", False),
    ("type", "bonus", False),
]


@pytest.mark.parametrize(("field", "value", "accepted"), SAMPLES, ids=lambda v: repr(v)[:20])
def test_the_schema_and_the_code_agree_on_each_sample(
    document: dict[str, Any], registry: Registry, field: str, value: Any, accepted: bool
) -> None:
    tried = 0
    for topic, example in input_examples(document):
        sample = _changed(example, field, value)
        if sample is not None:
            assert channel_accepts(document, registry, topic, sample) is accepted, (topic, sample)
            assert code_accepts(topic, sample) is accepted, (topic, sample)
            tried += 1
    assert tried > 0


def test_both_refuse_an_unknown_field(document: dict[str, Any], registry: Registry) -> None:
    for topic, example in input_examples(document):
        sample = {**example, "surplus": "1"}
        assert not channel_accepts(document, registry, topic, sample), sample
        assert not code_accepts(topic, sample), sample


def test_a_message_that_is_not_an_object_fits_no_schema(
    document: dict[str, Any], registry: Registry
) -> None:
    for topic in (t.value for t in Topic):
        for payload in ([], "trade", 3, None):
            assert not channel_accepts(document, registry, topic, payload)
            assert not code_accepts(topic, payload)


# -- what the code publishes fits the document --------------------------------


def _replayed(scenario: str, packs: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The CloudEvents and the final adequacy reports of a scenario replayed under ``packs``."""
    records = io.StringIO()
    write_jsonl(generate(scenario, datetime(2024, 5, 31, 13, 0, tzinfo=UTC), 1), records)
    engine = Engine(parse_policy({"exchanges": {"default": {"packs": packs}}}))
    out = io.StringIO()
    result = replay(records.getvalue().splitlines(), engine, out)
    assert result.problems == []
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    reports = [adequacy_report(engine, ex).to_document() for ex in sorted(engine.exchanges)]
    return events, reports


@pytest.fixture(scope="module")
def published() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    incident = _replayed("dmm-incident", ["jp", "hk", "eu", "ops"])
    venue = _replayed("eu-venue", ["eu", "ops"])
    return incident[0] + venue[0], incident[1] + venue[1]


def _message(document: dict[str, Any], topic: str) -> dict[str, Any]:
    (message,) = messages_of(document, topic)
    return message


def test_every_status_change_the_engine_publishes_fits_the_alert_schema(
    document: dict[str, Any], registry: Registry, published: Any
) -> None:
    events, _ = published
    message = _message(document, "reserve.alerts")
    for event in events:
        assert schema_accepts(registry, message, event), event
        StatusChangeEvent.model_validate(event)
    statuses = {e["data"]["status"] for e in events}
    assert statuses >= {"ok", "breach"}
    # every rule id the code knows was exercised, so its evidence and figures were checked
    assert {e["data"]["rule"] for e in events} == set(RULE_IDS)


def test_every_adequacy_report_fits_the_adequacy_schema(
    document: dict[str, Any], registry: Registry, published: Any
) -> None:
    _, reports = published
    message = _message(document, "reserve.adequacy")
    assert len(reports) == 3  # dmm, calm and eu-venue
    for report in reports:
        assert schema_accepts(registry, message, report), report
        AdequacyReportDocument.model_validate(report)


@pytest.mark.parametrize(
    ("key", "value"), [(b"dmm", b"\xff\xfe not utf-8"), (None, b'{"event_id": 1}'), (None, None)]
)
def test_dead_letter_records_fit_the_dead_letter_schema(
    document: dict[str, Any], registry: Registry, key: bytes | None, value: bytes | None
) -> None:
    record = json.loads(
        deadletter_record(
            topic="tenant-a.exchange.trades",
            partition=0,
            offset=41,
            key=key,
            value=value,
            error="value: not UTF-8 (invalid start byte at byte 0)",
            received_at=datetime(2024, 5, 31, 13, 26, 0, 120000, tzinfo=UTC),
        )
    )
    assert schema_accepts(registry, _message(document, "reserve.deadletter"), record)
    parsed = DeadLetterRecord.model_validate(record)
    if value is not None:
        assert parsed.value_b64 is not None and base64.b64decode(parsed.value_b64) == value


def test_the_output_schemas_refuse_what_the_code_never_publishes(
    document: dict[str, Any], registry: Registry, published: Any
) -> None:
    events, reports = published
    alert, adequacy = _message(document, "reserve.alerts"), _message(document, "reserve.adequacy")
    event = events[0]
    wrong_events = [
        {**event, "type": "reserve.status.unchanged"},
        {**event, "specversion": "0.3"},
        {**event, "data": {**event["data"], "status": "fine"}},
        {**event, "data": {**event["data"], "rule": "jp.unknown_rule"}},
        {**event, "data": {**event["data"], "shortfall": 12.5}},
        {**event, "data": {**event["data"], "ratio": "-0.5"}},
        {k: v for k, v in event.items() if k != "subject"},
    ]
    for wrong in wrong_events:
        assert not schema_accepts(registry, alert, wrong), wrong
    report = reports[0]
    for wrong in (
        {**report, "status": "fine"},
        {**report, "trading_volume": {"window": "a month", "amount": "1"}},
        {**report, "feeds": {"wallets": "yesterday"}},
    ):
        assert not schema_accepts(registry, adequacy, wrong), wrong


def test_the_alert_model_refuses_a_subject_that_names_another_rule(published: Any) -> None:
    events, _ = published
    event = events[0]
    with pytest.raises(ValueError, match="subject"):
        StatusChangeEvent.model_validate({**event, "subject": "someone-else/jp.segregation"})
