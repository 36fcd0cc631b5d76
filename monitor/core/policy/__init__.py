"""Policies: which rule packs apply to which exchange, with which parameters.

A policy file (contract section 6) names the reporting currency, parameter
overrides per pack and the packs of each exchange. Every pack's built-in
defaults live in ``packs/<pack>.yaml`` beside this module, each with its
source; a policy file overrides only what it names. :func:`load_policy`
validates the whole file and raises :class:`PolicyError` listing every problem
with its place in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from monitor.core.errors import PolicyError
from monitor.core.events import EXCHANGE_ID_PATTERN
from monitor.core.money import parse_duration

DEFAULT_EXCHANGE = "default"


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('must be a number such as "0.95"')
    # YAML floats are read through their text so 0.95 stays exactly 0.95
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError("must be a finite number, not negative")
    return number


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


def _hold(value: Any) -> timedelta:
    if value in (0, "0", "0s"):  # publish at once
        return timedelta(0)
    return _duration(value)


Number = Annotated[Decimal, BeforeValidator(_decimal)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
# a `for` duration: like Duration, and 0 (or "0s") publishes at once
Hold = Annotated[timedelta, BeforeValidator(_hold)]
# how far ahead a rule looks for insurance that ends; null turns the look ahead off
Horizon = Duration | None


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LiabilityReserveParams(_Params):
    volume_window: Duration
    volume_bucket: Duration
    volume_rate: Number
    hot_customer_value_share: Number
    fixed_floor: Number
    # a zero floor would leave nothing to divide by: the floor must be positive
    minimum_floor: Annotated[Number, Field(gt=0)]
    maximum_floor: Number
    insurance_max_share: Annotated[Number, Field(le=1)]
    insurance_expiry_horizon: Horizon
    breach_below: Number
    warning_below: Number
    hysteresis: Number
    # how long of event time a new breach is held before it is published (`for`)
    breach_for: Hold = timedelta(0)
    max_ledger_age: Duration
    max_trades_age: Duration

    @model_validator(mode="after")
    def _consistent(self) -> LiabilityReserveParams:
        if self.maximum_floor < self.minimum_floor:
            raise ValueError("maximum_floor must not be under minimum_floor")
        if self.warning_below < self.breach_below:
            raise ValueError("warning_below must not be under breach_below")
        if self.volume_window % self.volume_bucket:
            raise ValueError("volume_window must be a whole number of volume_bucket")
        return self


class ColdStorageParams(_Params):
    minimum_share: Annotated[Number, Field(le=1)]
    warning_share: Annotated[Number, Field(le=1)]
    hysteresis: Number
    # how long of event time a new breach is held before it is published (`for`)
    breach_for: Hold = timedelta(0)
    max_wallet_age: Duration
    max_price_age: Duration

    @model_validator(mode="after")
    def _consistent(self) -> ColdStorageParams:
        if self.warning_share < self.minimum_share:
            raise ValueError("warning_share must not be under minimum_share")
        return self


def _ordered(breach: Decimal, warning: Decimal, breach_name: str, warning_name: str) -> None:
    if warning < breach:
        raise ValueError(f"{warning_name} must not be under {breach_name}")


class HotWalletGuaranteeParams(_Params):
    """``jp.hot_wallet_guarantee``: per asset, guarantee holdings / hot customer holdings."""

    breach_below: Number
    warning_below: Number
    hysteresis: Number
    # how long of event time a new breach is held before it is published (`for`)
    breach_for: Hold = timedelta(0)
    max_wallet_age: Duration
    max_price_age: Duration

    @model_validator(mode="after")
    def _consistent(self) -> HotWalletGuaranteeParams:
        _ordered(self.breach_below, self.warning_below, "breach_below", "warning_below")
        return self


class SegregationParams(_Params):
    """``jp.segregation``: per asset, customer holdings / customer liabilities."""

    breach_below: Number
    warning_below: Number
    hysteresis: Number
    # how long of event time a new breach is held before it is published (`for`)
    breach_for: Hold = timedelta(0)
    max_wallet_age: Duration
    max_liability_age: Duration
    max_price_age: Duration

    @model_validator(mode="after")
    def _consistent(self) -> SegregationParams:
        _ordered(self.breach_below, self.warning_below, "breach_below", "warning_below")
        return self


CoverComponent = Literal["reserve_fund", "insurance", "guarantee"]


class CompensationCoverParams(_Params):
    """``hk.compensation_cover``: cover against shares of cold and hot customer value."""

    components: Annotated[list[CoverComponent], Field(min_length=1)]
    cold_share: Annotated[Number, Field(le=1)]
    hot_share: Annotated[Number, Field(le=1)]
    insurance_expiry_horizon: Horizon
    breach_below: Number
    warning_below: Number
    hysteresis: Number
    # how long of event time a new breach is held before it is published (`for`)
    breach_for: Hold = timedelta(0)
    max_ledger_age: Duration
    max_wallet_age: Duration
    max_price_age: Duration

    @model_validator(mode="after")
    def _consistent(self) -> CompensationCoverParams:
        if len(set(self.components)) != len(self.components):
            raise ValueError("components must not repeat a component")
        if self.cold_share == 0 and self.hot_share == 0:
            raise ValueError("cold_share and hot_share must not both be 0")
        _ordered(self.breach_below, self.warning_below, "breach_below", "warning_below")
        return self


ServiceClass = Literal[1, 2, 3]


class MicaOwnFundsParams(_Params):
    """``eu.mica_own_funds``: own funds and eligible insurance against MiCA Art. 67."""

    minimum_capital: dict[ServiceClass, Number]
    currency: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,10}$")]
    overheads_share: Annotated[Number, Field(le=1)]
    count_insurance: bool
    insurance_min_term: Duration
    insurance_expiry_horizon: Horizon
    breach_below: Number
    warning_below: Number
    hysteresis: Number
    # how long of event time a new breach is held before it is published (`for`)
    breach_for: Hold = timedelta(0)
    max_own_funds_age: Duration
    max_overheads_age: Duration
    max_price_age: Duration

    @model_validator(mode="after")
    def _consistent(self) -> MicaOwnFundsParams:
        missing = sorted({1, 2, 3} - set(self.minimum_capital))
        if missing:
            raise ValueError(
                "minimum_capital needs an amount for every service class; missing "
                + ", ".join(str(m) for m in missing)
            )
        _ordered(self.breach_below, self.warning_below, "breach_below", "warning_below")
        return self


class HotWalletDrainParams(_Params):
    """``ops.hot_wallet_drain``: the largest fall of hot-wallet value allowed within ``window``."""

    window: Duration
    max_drop_share: Annotated[Number, Field(gt=0, lt=1)]
    warning_drop_share: Annotated[Number, Field(gt=0, lt=1)]
    hysteresis: Number
    # how long of event time a new breach is held before it is published (`for`)
    breach_for: Hold = timedelta(0)
    max_wallet_age: Duration
    max_price_age: Duration

    @model_validator(mode="after")
    def _consistent(self) -> HotWalletDrainParams:
        if self.warning_drop_share > self.max_drop_share:
            raise ValueError("warning_drop_share must not be over max_drop_share")
        return self


class JpPack(_Params):
    """Japan: the FSA's planned liability reserve and the Payment Services Act (``jp.yaml``)."""

    liability_reserve: LiabilityReserveParams
    cold_storage: ColdStorageParams
    hot_wallet_guarantee: HotWalletGuaranteeParams
    segregation: SegregationParams


class HkPack(_Params):
    """Hong Kong: the SFC's terms for virtual asset trading platforms (``hk.yaml``)."""

    cold_storage: ColdStorageParams
    compensation_cover: CompensationCoverParams


class EuPack(_Params):
    """The EU: MiCA's prudential requirements (``eu.yaml``)."""

    service_class: ServiceClass
    mica_own_funds: MicaOwnFundsParams


class OpsPack(_Params):
    """Operational signals that fire before any legal floor is crossed (``ops.yaml``)."""

    hot_wallet_drain: HotWalletDrainParams


# Every pack by its policy name; the order is the order rules_for applies them in.
PACKS: dict[str, type[_Params]] = {"jp": JpPack, "hk": HkPack, "eu": EuPack, "ops": OpsPack}


class Assignment(BaseModel):
    """The packs of one exchange (or of every exchange not named: ``default``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    packs: list[str]
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)


class PolicyFile(BaseModel):
    """The outer shape of a policy file, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reporting_currency: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,10}$")] = "JPY"
    packs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    exchanges: dict[str, Assignment] = Field(
        default_factory=lambda: {DEFAULT_EXCHANGE: Assignment(packs=["jp", "ops"])}
    )


@dataclass(frozen=True, slots=True)
class ExchangePolicy:
    """The resolved packs and parameters of one exchange."""

    packs: dict[str, Any]

    @property
    def jp(self) -> JpPack | None:
        return self.packs.get("jp")

    @property
    def hk(self) -> HkPack | None:
        return self.packs.get("hk")

    @property
    def eu(self) -> EuPack | None:
        return self.packs.get("eu")

    @property
    def ops(self) -> OpsPack | None:
        return self.packs.get("ops")


@dataclass(frozen=True)
class Policy:
    """A validated policy: resolves the packs and parameters of any exchange."""

    reporting_currency: str
    resolved: dict[str, ExchangePolicy]

    def for_exchange(self, exchange: str) -> ExchangePolicy:
        return self.resolved.get(exchange) or self.resolved[DEFAULT_EXCHANGE]


@cache
def builtin_params(pack: str) -> dict[str, Any]:
    """The built-in defaults of ``pack`` as written in its YAML file."""
    text = resources.files("monitor.core.policy").joinpath(f"packs/{pack}.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _place(prefix: str, error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
    return f"{location}: {error['msg'].removeprefix('Value error, ')}"


def _identity(error: ErrorDetails) -> tuple[Any, ...]:
    return (tuple(error["loc"]), error["msg"])


def parse_policy(document: Any) -> Policy:
    """Validate a policy document (the parsed YAML); raises PolicyError with every problem."""
    if not isinstance(document, dict):
        raise PolicyError(
            ["(top): a policy file must be a mapping with reporting_currency, packs and exchanges"]
        )
    try:
        shape = PolicyFile.model_validate(document)
    except ValidationError as error:
        raise PolicyError([_place("", e) for e in error.errors(include_url=False)]) from None
    problems: list[str] = []
    # each pack as the file's `packs:` section sets it, validated once at that place
    defaults: dict[str, Any] = {}
    failed: dict[str, set[tuple[Any, ...]]] = {}
    for pack, overrides in shape.packs.items():
        if pack not in PACKS:
            problems.append(f"packs.{pack}: unknown pack; known packs: {', '.join(PACKS)}")
            continue
        try:
            defaults[pack] = PACKS[pack].model_validate(_merge(builtin_params(pack), overrides))
        except ValidationError as error:
            errors = error.errors(include_url=False)
            problems.extend(_place(f"packs.{pack}", e) for e in errors)
            failed[pack] = {_identity(e) for e in errors}
    if DEFAULT_EXCHANGE not in shape.exchanges:
        problems.append(f"exchanges: needs a '{DEFAULT_EXCHANGE}' entry for exchanges not named")
    resolved: dict[str, ExchangePolicy] = {}
    for exchange, assignment in shape.exchanges.items():
        where = f"exchanges.{exchange}"
        if exchange != DEFAULT_EXCHANGE and not re.match(EXCHANGE_ID_PATTERN, exchange):
            problems.append(f"{where}: not a valid exchange id ({EXCHANGE_ID_PATTERN})")
        for pack in assignment.params:
            if pack not in assignment.packs:
                problems.append(f"{where}.params.{pack}: parameters for a pack not in its packs")
        packs: dict[str, Any] = {}
        for index, pack in enumerate(assignment.packs):
            if pack not in PACKS:
                problems.append(
                    f"{where}.packs.{index}: unknown pack {pack!r}; known packs: {', '.join(PACKS)}"
                )
                continue
            if pack in packs:
                problems.append(f"{where}.packs.{index}: pack {pack!r} is listed twice")
                continue
            own = assignment.params.get(pack)
            if own is None and pack in failed:
                continue  # reported once, at packs.<pack>
            if own is None and pack in defaults:
                packs[pack] = defaults[pack]
                continue
            params = _merge(_merge(builtin_params(pack), shape.packs.get(pack, {})), own or {})
            try:
                packs[pack] = PACKS[pack].model_validate(params)
            except ValidationError as error:
                # what the packs section already got wrong is not repeated per exchange
                known = failed.get(pack, set())
                problems.extend(
                    _place(f"{where}.params.{pack}", e)
                    for e in error.errors(include_url=False)
                    if _identity(e) not in known
                )
        resolved[exchange] = ExchangePolicy(packs)
    if problems:
        raise PolicyError(problems)
    return Policy(shape.reporting_currency, resolved)


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in the YAML file at ``path``, or the built-in one."""
    if path is None:
        text = (
            resources.files("monitor.core.policy").joinpath("packs/default.yaml").read_text("utf-8")
        )
        where = "built-in policy"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as error:
            raise PolicyError([f"{path}: cannot read ({error.strerror})"]) from None
        where = str(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError([f"{where}: not YAML ({error})"]) from None
    return parse_policy(document)
