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
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import ErrorDetails

from monitor.core.errors import PolicyError
from monitor.core.events import EXCHANGE_ID_PATTERN
from monitor.core.rules.cold_storage import ColdStorageParams
from monitor.core.rules.compensation_cover import CompensationCoverParams
from monitor.core.rules.hot_wallet_drain import HotWalletDrainParams
from monitor.core.rules.hot_wallet_guarantee import HotWalletGuaranteeParams
from monitor.core.rules.liability_reserve import LiabilityReserveParams
from monitor.core.rules.mica_own_funds import MicaOwnFundsParams, ServiceClass
from monitor.core.rules.params import Params
from monitor.core.rules.segregation import SegregationParams

DEFAULT_EXCHANGE = "default"


class JpPack(Params):
    """Japan: the FSA's planned liability reserve and the Payment Services Act (``jp.yaml``)."""

    liability_reserve: LiabilityReserveParams
    cold_storage: ColdStorageParams
    hot_wallet_guarantee: HotWalletGuaranteeParams
    segregation: SegregationParams


class HkPack(Params):
    """Hong Kong: the SFC's terms for virtual asset trading platforms (``hk.yaml``)."""

    cold_storage: ColdStorageParams
    compensation_cover: CompensationCoverParams


class EuPack(Params):
    """The EU: MiCA's prudential requirements (``eu.yaml``)."""

    service_class: ServiceClass
    mica_own_funds: MicaOwnFundsParams


class OpsPack(Params):
    """Operational signals that fire before any legal floor is crossed (``ops.yaml``)."""

    hot_wallet_drain: HotWalletDrainParams


# Every pack by its policy name; the order is the order rules_for applies them in.
PACKS: dict[str, type[Params]] = {"jp": JpPack, "hk": HkPack, "eu": EuPack, "ops": OpsPack}


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
