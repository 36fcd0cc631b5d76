"""Policies: built-in defaults, overrides, and every problem reported with its place."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.core.errors import PolicyError
from monitor.core.policy import load_policy, parse_policy
from monitor.core.rules.params import Params
from monitor.core.rules.registry import RULES

CLI = Path(sys.executable).with_name("reserve-monitor")

GOOD = """\
reporting_currency: JPY
packs:
  jp:
    cold_storage: {minimum_share: "0.97", warning_share: "0.98"}
exchanges:
  default: {packs: [jp]}
  bitflyer: {packs: [jp], params: {jp: {liability_reserve: {minimum_floor: "3000000000"}}}}
"""

# One problem per line, each in a different place of the file.
BAD = """\
reporting_currency: JPY
packs:
  jp:
    liability_reserve: {volume_rate: "-1"}
  hk-typo: {}
exchanges:
  default: {packs: [jp, nope]}
  Bad_Venue: {packs: [jp]}
  other: {packs: [jp], params: {hk: {}}}
"""


def problems_of(document: Any) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    return caught.value.problems


def test_the_built_in_policy_applies_jp_to_every_exchange() -> None:
    policy = load_policy()
    assert policy.reporting_currency == "JPY"
    jp = policy.for_exchange("any-exchange").jp
    assert jp is not None
    assert jp.liability_reserve.minimum_floor == Decimal("2000000000")
    assert jp.liability_reserve.maximum_floor == Decimal("40000000000")
    assert jp.liability_reserve.volume_window == timedelta(days=30)
    assert jp.cold_storage.minimum_share == Decimal("0.95")


def test_an_override_changes_only_what_it_names() -> None:
    policy = parse_policy(yaml.safe_load(GOOD))
    default = policy.for_exchange("dmm").jp
    named = policy.for_exchange("bitflyer").jp
    assert default is not None and named is not None
    assert default.cold_storage.minimum_share == Decimal("0.97")
    assert default.cold_storage.max_wallet_age == timedelta(hours=1)  # kept
    assert default.liability_reserve.minimum_floor == Decimal("2000000000")
    assert named.liability_reserve.minimum_floor == Decimal("3000000000")
    assert named.cold_storage.minimum_share == Decimal("0.97")  # pack override applies too


def test_yaml_floats_are_read_exactly() -> None:
    policy = parse_policy({"packs": {"jp": {"cold_storage": {"minimum_share": 0.95}}}})
    jp = policy.for_exchange("x").jp
    assert jp is not None
    assert jp.cold_storage.minimum_share == Decimal("0.95")


def test_every_rule_parameter_is_annotated_for_the_compiled_rules() -> None:
    """Rule modules are compiled (make compile): a parameter's annotation left unquoted
    there reaches pydantic as the bare type, without Annotated's validators (a Number
    would take a YAML float inexactly, and a negative one). Run compiled, this fails."""
    models, unseen = [], list(Params.__subclasses__())
    while unseen:
        model = unseen.pop()
        models.append(model)
        unseen.extend(model.__subclasses__())
    assert len({spec.params for spec in RULES.values()}) <= len(models)
    for model in models:
        for name, annotation in vars(model).get("__annotations__", {}).items():
            assert isinstance(annotation, str), f"{model.__name__}.{name}: quote its annotation"


def test_an_exchange_without_packs_gets_no_rules() -> None:
    policy = parse_policy({"exchanges": {"default": {"packs": []}}})
    assert policy.for_exchange("dmm").jp is None


@pytest.mark.parametrize(
    ("document", "place"),
    [
        ({"packs": {"eu2": {}}}, "packs.eu2"),
        ({"exchanges": {"dmm": {"packs": ["jp"]}}}, "exchanges"),  # no 'default' entry
        ({"exchanges": {"default": {"packs": ["xx"]}}}, "exchanges.default.packs.0"),
        ({"exchanges": {"default": {"packs": ["jp"]}, "DMM": {"packs": ["jp"]}}}, "exchanges.DMM"),
        ({"reporting_currency": "yen"}, "reporting_currency"),
        ({"colour": "blue"}, "colour"),
        ([1, 2], "(top)"),
    ],
)
def test_each_problem_names_its_place(document: Any, place: str) -> None:
    (problem,) = problems_of(document)
    assert problem.startswith(f"{place}: ") or problem.startswith(f"{place} ")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"liability_reserve": {"volume_rate": "-0.1"}}, "negative"),
        ({"liability_reserve": {"volume_window": "a month"}}, "duration"),
        ({"liability_reserve": {"minimum_floor": "5", "maximum_floor": "1"}}, "maximum_floor"),
        ({"liability_reserve": {"breach_below": "1.3"}}, "warning_below"),
        ({"liability_reserve": {"volume_window": "90m"}}, "volume_bucket"),
        ({"liability_reserve": {"insurance_max_share": "1.5"}}, "less than or equal to 1"),
        ({"cold_storage": {"minimum_share": "0.99"}}, "warning_share"),
        ({"cold_storage": {"max_price_age": "0s"}}, "duration"),
        ({"cold_storage": {"colour": "blue"}}, "not permitted"),
        ({"liability_reserve": {"volume_rate": "NaN"}}, "finite"),
    ],
)
def test_bad_pack_parameters_are_refused(params: dict[str, Any], words: str) -> None:
    problems = problems_of({"packs": {"jp": params}})
    assert problems
    assert all(words in problem for problem in problems), problems


def test_a_bad_pack_parameter_is_reported_at_its_place_in_the_file_once() -> None:
    # The value is written under packs.jp; the message should point there, once, and
    # not once per exchange under a place the user never wrote.
    document = {
        "packs": {"jp": {"liability_reserve": {"volume_rate": "-1"}}},
        "exchanges": {"default": {"packs": ["jp"]}, "a": {"packs": ["jp"]}, "b": {"packs": ["jp"]}},
    }
    about_the_rate = [p for p in problems_of(document) if "volume_rate" in p]
    assert len(about_the_rate) == 1, about_the_rate
    assert about_the_rate[0].startswith("packs.jp.liability_reserve.volume_rate: ")


def test_an_unreadable_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_a_file_that_is_not_yaml_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("packs: [\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not YAML"):
        load_policy(path)


# -- the command -----------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RESERVE_MONITOR_")}
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, env=environment, timeout=60, check=False
    )


def test_policy_check_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD, encoding="utf-8")
    done = run_cli("policy", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout
    assert "bitflyer" in done.stdout


def test_policy_check_lists_every_problem_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(BAD, encoding="utf-8")
    done = run_cli("policy", "check", str(path))
    assert done.returncode == 1
    assert done.stdout == ""
    listed = done.stderr.splitlines()
    assert listed[0] == "policy errors:"
    for place in [
        "packs.hk-typo: ",
        "exchanges.default.packs.1: ",
        "exchanges.Bad_Venue: ",
        "exchanges.other.params.hk: ",
    ]:
        assert any(line.strip().startswith(place) for line in listed[1:]), (place, listed)
    assert any("volume_rate" in line and "negative" in line for line in listed[1:])


def test_policy_check_of_a_missing_file_exits_1(tmp_path: Path) -> None:
    done = run_cli("policy", "check", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1
    assert "cannot read" in done.stderr
