"""The edge: contract events decode to frozen values, anything else fails precisely."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from monitor.core.errors import InvalidEvent
from monitor.core.events import (
    MAX_MESSAGE_BYTES,
    CustomerLiability,
    FixedOverheads,
    InsurancePolicy,
    OwnFunds,
    Price,
    ReserveFund,
    Topic,
    Trade,
    WalletBalance,
    decode,
    from_document,
    to_document,
    topic_of,
)
from tests.unit.builders import encode, trade

# The examples of CONTRACT section 3, verbatim apart from the "..." timestamps.
TS = "2024-05-31T13:26:00Z"
CONTRACT_EXAMPLES = [
    (
        Topic.TRADES,
        Trade,
        {
            "event_id": "t-1",
            "exchange": "dmm",
            "ts": TS,
            "market": "BTC/JPY",
            "notional": "1250000",
            "currency": "JPY",
        },
    ),
    (
        Topic.WALLET_BALANCES,
        WalletBalance,
        {
            "event_id": "w-1",
            "exchange": "dmm",
            "ts": TS,
            "wallet": "btc-hot-1",
            "asset": "BTC",
            "balance": "4502.9",
            "custody": "hot",
            "holder": "customer",
        },
    ),
    (
        Topic.PRICES,
        Price,
        {"event_id": "p-1", "asset": "BTC", "ts": TS, "price": "10700000", "currency": "JPY"},
    ),
    (
        Topic.LEDGER,
        CustomerLiability,
        {
            "type": "customer_liability",
            "event_id": "l-1",
            "exchange": "dmm",
            "ts": TS,
            "asset": "BTC",
            "amount": "12000",
        },
    ),
    (
        Topic.LEDGER,
        ReserveFund,
        {
            "type": "reserve_fund",
            "event_id": "f-1",
            "exchange": "dmm",
            "ts": TS,
            "amount": "5000000000",
            "currency": "JPY",
        },
    ),
    (
        Topic.LEDGER,
        InsurancePolicy,
        {
            "type": "insurance_policy",
            "event_id": "i-1",
            "exchange": "dmm",
            "ts": TS,
            "policy_id": "tokio-2026",
            "coverage": "3000000000",
            "currency": "JPY",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": "2027-01-01T00:00:00Z",
        },
    ),
    (
        Topic.LEDGER,
        OwnFunds,
        {
            "type": "own_funds",
            "event_id": "o-1",
            "exchange": "dmm",
            "ts": TS,
            "amount": "900000",
            "currency": "EUR",
        },
    ),
    (
        Topic.LEDGER,
        FixedOverheads,
        {
            "type": "fixed_overheads",
            "event_id": "x-1",
            "exchange": "dmm",
            "ts": TS,
            "annual_amount": "2400000",
            "currency": "EUR",
        },
    ),
]
EXAMPLE_IDS = [kind.__name__ for _, kind, _ in CONTRACT_EXAMPLES]


def rejection(topic: Topic, value: bytes, key: bytes | None = None) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        decode(topic, key, value)
    error = caught.value
    assert str(error) == f"{error.field}: {error.message}"
    return error


@pytest.mark.parametrize(("topic", "kind", "document"), CONTRACT_EXAMPLES, ids=EXAMPLE_IDS)
def test_every_contract_example_decodes(topic: Topic, kind: type, document: dict) -> None:
    key = document["asset"] if topic is Topic.PRICES else document["exchange"]
    decoded = decode(topic, key.encode(), encode(document))
    assert type(decoded) is kind
    assert decoded.event_id == document["event_id"]
    assert decoded.ts == datetime(2024, 5, 31, 13, 26, tzinfo=UTC)
    assert topic_of(decoded) is topic


@pytest.mark.parametrize(("topic", "kind", "document"), CONTRACT_EXAMPLES, ids=EXAMPLE_IDS)
def test_contract_form_round_trips(topic: Topic, kind: type, document: dict) -> None:
    decoded = decode(topic, None, encode(document))
    assert from_document(topic, to_document(decoded)) == decoded


def test_amounts_are_exact_decimals() -> None:
    wallet = decode(Topic.WALLET_BALANCES, None, encode(CONTRACT_EXAMPLES[1][2]))
    assert isinstance(wallet, WalletBalance)
    assert wallet.balance == Decimal("4502.9")
    assert wallet.balance.as_tuple() == Decimal("4502.9").as_tuple()


def test_json_numbers_become_exact_decimals_not_floats() -> None:
    raw = b'{"event_id": "t", "exchange": "dmm", "ts": "2024-05-31T13:26:00Z",'
    raw += b' "market": "BTC/JPY", "notional": 0.1, "currency": "JPY"}'
    decoded = decode(Topic.TRADES, None, raw)
    assert isinstance(decoded, Trade)
    assert type(decoded.notional) is Decimal
    assert decoded.notional == Decimal("0.1")
    assert decoded.notional.as_tuple() == Decimal("0.1").as_tuple()  # not 0.1000000000000000055...


def test_json_integers_become_decimals() -> None:
    raw = encode(trade()).replace(b'"1250000"', b"1250000")
    decoded = decode(Topic.TRADES, None, raw)
    assert isinstance(decoded, Trade)
    assert decoded.notional == Decimal(1250000)
    assert type(decoded.notional) is Decimal


def test_timestamps_with_offsets_are_normalised_to_utc() -> None:
    decoded = decode(
        Topic.TRADES, None, encode(trade(event_id="t") | {"ts": "2024-05-31T22:26:00+09:00"})
    )
    assert decoded.ts == datetime(2024, 5, 31, 13, 26, tzinfo=UTC)
    assert decoded.ts.utcoffset() is not None


def test_decoded_events_are_frozen_and_hashable() -> None:
    decoded = decode(Topic.TRADES, None, encode(trade(event_id="t")))
    with pytest.raises(AttributeError, match="immutable"):
        decoded.notional = Decimal(0)  # type: ignore[misc]
    assert decoded == decode(Topic.TRADES, None, encode(trade(event_id="t")))
    assert len({decoded, decode(Topic.TRADES, None, encode(trade(event_id="t")))}) == 1


# -- rejections: each names the field and says what is wrong ----------------------


def test_rejects_invalid_utf8() -> None:
    error = rejection(Topic.TRADES, b'{"event_id": "\xff\xfe"}')
    assert error.field == "value"
    assert "UTF-8" in error.message


def test_rejects_truncated_json() -> None:
    error = rejection(Topic.TRADES, encode(trade())[:-5])
    assert error.field == "value"
    assert "not JSON" in error.message


@pytest.mark.parametrize("document", ["[1, 2]", '"a string"', "42", "null"])
def test_rejects_a_value_that_is_not_an_object(document: str) -> None:
    error = rejection(Topic.TRADES, document.encode())
    assert error.field == "value"
    assert "must be a JSON object" in error.message


@pytest.mark.parametrize(
    ("field", "bad", "words"),
    [
        ("notional", True, "decimal number"),
        ("notional", [1], "decimal number"),
        ("notional", {"v": "1"}, "decimal number"),
        ("notional", "twelve", "not a decimal number"),
        ("market", 5, "valid string"),
        ("ts", 1717161960, "RFC 3339"),
        ("ts", "yesterday", "RFC 3339"),
    ],
)
def test_rejects_a_wrong_type(field: str, bad: object, words: str) -> None:
    error = rejection(Topic.TRADES, encode(trade() | {field: bad}))
    assert error.field == field
    assert words in error.message


def test_rejects_a_missing_field() -> None:
    document = trade()
    del document["currency"]
    error = rejection(Topic.TRADES, encode(document))
    assert error.field == "currency"
    assert "required" in error.message.lower()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_rejects_nan_and_infinity_as_json_constants(constant: str) -> None:
    raw = encode(trade()).replace(b'"1250000"', constant.encode())
    error = rejection(Topic.TRADES, raw)
    assert error.field == "value"
    assert constant in error.message
    assert "not a number" in error.message


@pytest.mark.parametrize("text", ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf"])
def test_rejects_nan_and_infinity_as_strings(text: str) -> None:
    error = rejection(Topic.TRADES, encode(trade(text)))
    assert error.field == "notional"
    assert "finite" in error.message


@pytest.mark.parametrize("amount", ["-1", "-0.01", "-4502.9"])
def test_rejects_a_negative_amount_string(amount: str) -> None:
    error = rejection(Topic.WALLET_BALANCES, encode(CONTRACT_EXAMPLES[1][2] | {"balance": amount}))
    assert error.field == "balance"
    assert "negative" in error.message


def test_rejects_a_negative_amount_number() -> None:
    raw = encode(trade()).replace(b'"1250000"', b"-1250000")
    error = rejection(Topic.TRADES, raw)
    assert error.field == "notional"
    assert "negative" in error.message


def test_negative_amount_in_a_ledger_event_names_the_field_not_the_tag() -> None:
    document = CONTRACT_EXAMPLES[4][2] | {"amount": "-5"}
    error = rejection(Topic.LEDGER, encode(document))
    assert error.field == "amount"
    assert "negative" in error.message


@pytest.mark.parametrize("ts", ["2024-05-31T13:26:00", "2024-05-31 13:26:00", "2024-05-31"])
def test_rejects_a_timestamp_without_an_offset(ts: str) -> None:
    error = rejection(Topic.TRADES, encode(trade() | {"ts": ts}))
    assert error.field == "ts"
    assert "offset" in error.message


def test_rejects_a_naive_validity_bound_of_an_insurance_policy() -> None:
    document = CONTRACT_EXAMPLES[5][2] | {"valid_to": "2027-01-01T00:00:00"}
    error = rejection(Topic.LEDGER, encode(document))
    assert error.field == "valid_to"
    assert "offset" in error.message


def test_rejects_an_insurance_period_that_ends_before_it_starts() -> None:
    document = CONTRACT_EXAMPLES[5][2] | {"valid_to": "2026-01-01T00:00:00Z"}
    error = rejection(Topic.LEDGER, encode(document))
    assert "valid_to must be after valid_from" in error.message


def test_rejects_an_unknown_field() -> None:
    error = rejection(Topic.TRADES, encode(trade() | {"side": "buy"}))
    assert error.field == "side"
    assert "not permitted" in error.message


def test_rejects_an_unknown_field_in_a_ledger_event() -> None:
    error = rejection(Topic.LEDGER, encode(CONTRACT_EXAMPLES[4][2] | {"note": "x"}))
    assert error.field == "note"
    assert "not permitted" in error.message


def test_rejects_an_unknown_ledger_type() -> None:
    error = rejection(Topic.LEDGER, encode(CONTRACT_EXAMPLES[4][2] | {"type": "bonus_pool"}))
    assert error.field == "type"
    assert "bonus_pool" in error.message


def test_rejects_a_ledger_event_without_a_type() -> None:
    document = dict(CONTRACT_EXAMPLES[4][2])
    del document["type"]
    error = rejection(Topic.LEDGER, encode(document))
    assert error.field == "type"


@pytest.mark.parametrize(
    "exchange",
    [
        "DMM",
        "",
        "-dmm",
        ".dmm",
        "dmm exchange",
        "dmm/jp",
        "d" * 65,
        "dmm\n",
        "\uff44\uff4d\uff4d",  # fullwidth "dmm"
    ],
)
def test_rejects_a_bad_exchange_id(exchange: str) -> None:
    error = rejection(Topic.TRADES, encode(trade(exchange=exchange)))
    assert error.field == "exchange"
    assert "pattern" in error.message


@pytest.mark.parametrize("exchange", ["dmm", "0", "a.b_c-d", "d" * 64])
def test_accepts_every_well_formed_exchange_id(exchange: str) -> None:
    assert decode(Topic.TRADES, None, encode(trade(exchange=exchange))).exchange == exchange


def test_rejects_a_key_that_names_another_exchange() -> None:
    error = rejection(Topic.TRADES, encode(trade(exchange="dmm")), key=b"bitflyer")
    assert error.field == "key"
    assert "'bitflyer'" in error.message
    assert "'dmm'" in error.message


def test_rejects_a_price_keyed_by_another_asset() -> None:
    error = rejection(Topic.PRICES, encode(CONTRACT_EXAMPLES[2][2]), key=b"ETH")
    assert error.field == "key"
    assert "asset" in error.message


def test_rejects_a_key_that_is_not_utf8() -> None:
    error = rejection(Topic.TRADES, encode(trade()), key=b"\xff")
    assert error.field == "key"
    assert "UTF-8" in error.message


def test_rejects_an_oversized_message_before_parsing_it() -> None:
    raw = encode(trade(market="M" * MAX_MESSAGE_BYTES))
    assert len(raw) > 64 * 1024
    error = rejection(Topic.TRADES, raw)
    assert error.field == "value"
    assert "exceeds" in error.message
    assert str(MAX_MESSAGE_BYTES) in error.message


def test_a_message_of_exactly_the_limit_is_not_refused_for_its_size() -> None:
    document = trade(event_id="t")
    padding = MAX_MESSAGE_BYTES - len(encode(document | {"market": ""}))
    raw = encode(document | {"market": "M" * padding})
    assert len(raw) == MAX_MESSAGE_BYTES
    # the size is fine; the market label is too long for the schema, and says so
    error = rejection(Topic.TRADES, raw)
    assert error.field == "market"


@pytest.mark.parametrize(
    "raw",
    [b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000],
    ids=["arrays", "objects"],
)
def test_rejects_deeply_nested_json_within_the_size_limit(raw: bytes) -> None:
    assert len(raw) <= MAX_MESSAGE_BYTES
    error = rejection(Topic.TRADES, raw)
    assert error.field == "value"
    assert "nested too deeply" in error.message


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662\u0663", "\uff11\uff12\uff13"])
def test_rejects_amount_text_that_is_not_a_plain_decimal(text: str) -> None:
    # Python's Decimal() reads digit separators and any Unicode digit; the contract's
    # decimal strings are ASCII ("4502.9"), so these must be refused, not reinterpreted.
    error = rejection(Topic.TRADES, encode(trade(text)))
    assert error.field == "notional"


@pytest.mark.parametrize("ts", ["20240531T132600Z", "2024-05-31T13:26Z"])
def test_rejects_timestamps_that_are_not_rfc3339(ts: str) -> None:
    # ISO 8601 basic format and minute precision are not RFC 3339 date-times
    error = rejection(Topic.TRADES, encode(trade() | {"ts": ts}))
    assert error.field == "ts"


def test_json_numbers_keep_every_digit() -> None:
    # more digits than a binary float holds: read from the text, never through a float
    raw = encode(trade(event_id="t")).replace(b'"1250000"', b"12345678901234567890.123456789")
    decoded = decode(Topic.TRADES, None, raw)
    assert isinstance(decoded, Trade)
    assert decoded.notional == Decimal("12345678901234567890.123456789")


@pytest.mark.parametrize(
    ("number", "expected"), [(b"1e3", "1E+3"), (b"2.5E-2", "0.025"), (b"-0", "0")]
)
def test_json_numbers_with_exponents_or_signed_zero_are_exact(number: bytes, expected: str) -> None:
    raw = encode(trade(event_id="t")).replace(b'"1250000"', number)
    decoded = decode(Topic.TRADES, None, raw)
    assert isinstance(decoded, Trade)
    assert decoded.notional == Decimal(expected)
    assert type(decoded.notional) is Decimal


def test_a_key_may_be_given_as_text() -> None:
    assert decode(Topic.TRADES, "dmm", encode(trade(exchange="dmm"))).exchange == "dmm"
    error = rejection(Topic.TRADES, encode(trade(exchange="dmm")), key=b"bitflyer")
    with pytest.raises(InvalidEvent) as caught:
        decode(Topic.TRADES, "bitflyer", encode(trade(exchange="dmm")))
    assert str(caught.value) == str(error)


def test_a_ledger_event_names_its_type() -> None:
    for topic, kind, document in CONTRACT_EXAMPLES:
        if topic is Topic.LEDGER:
            decoded = decode(topic, None, encode(document))
            assert isinstance(decoded, kind)
            assert decoded.type == document["type"]  # type: ignore[attr-defined]
            assert to_document(decoded)["type"] == document["type"]


def test_with_several_problems_the_first_field_in_contract_order_is_named() -> None:
    # the order of the fields in the contract, not the order the producer wrote them in
    document: dict[str, object] = {
        "side": "buy",
        "currency": 7,
        "notional": "-1",
        "event_id": "t",
        "exchange": "dmm",
        "ts": "yesterday",
    }
    for field, mended in [
        ("ts", "2024-05-31T13:26:00Z"),
        ("market", "BTC/JPY"),
        ("notional", "1"),
        ("currency", "JPY"),
        ("side", None),
    ]:
        assert rejection(Topic.TRADES, encode(document)).field == field
        document[field] = mended
        if mended is None:
            del document[field]
    assert decode(Topic.TRADES, None, encode(document)).event_id == "t"


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("event_id", "", "String should have at least 1 character"),
        ("event_id", "e" * 129, "String should have at most 128 characters"),
        ("currency", "J" * 33, "String should have at most 32 characters"),
        ("currency", "J P Y", "String should match pattern '^[A-Za-z0-9._-]+$'"),
        ("market", None, "Input should be a valid string"),
    ],
)
def test_string_rules_are_named_with_their_bound(field: str, bad: object, message: str) -> None:
    error = rejection(Topic.TRADES, encode(trade() | {field: bad}))
    assert (error.field, error.message) == (field, message)


def test_lengths_count_characters_not_bytes() -> None:
    assert decode(Topic.TRADES, None, encode(trade(market="é" * 128))).market == "é" * 128


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("custody", "lukewarm", "Input should be 'hot' or 'cold'"),
        ("custody", 1, "Input should be 'hot' or 'cold'"),
        ("holder", "customers", "Input should be 'customer', 'guarantee' or 'house'"),
    ],
)
def test_enumerations_name_their_choices(field: str, bad: object, message: str) -> None:
    error = rejection(Topic.WALLET_BALANCES, encode(CONTRACT_EXAMPLES[1][2] | {field: bad}))
    assert (error.field, error.message) == (field, message)


def test_an_unknown_ledger_type_names_every_known_one() -> None:
    error = rejection(Topic.LEDGER, encode(CONTRACT_EXAMPLES[4][2] | {"type": "loan"}))
    assert error.message == (
        "Input tag 'loan' found using 'type' does not match any of the expected tags: "
        "'customer_liability', 'reserve_fund', 'insurance_policy', 'own_funds', 'fixed_overheads'"
    )
