"""``eu.mica_own_funds``: own funds and eligible insurance against MiCA Art. 67.

``required`` = max(permanent minimum capital of the service class (Annex IV),
``overheads_share`` x the previous year's fixed overheads); ``available`` = own
funds + insurance that counts. Amounts carry their currency in the ledger and
are converted into the reporting currency with the latest price of that
currency (``market.prices``, e.g. ``EUR``); so is the class minimum (in
``currency``, EUR).

Insurance counts when ``count_insurance`` is on and what the feed can show holds:
in force now and a term (``valid_to - valid_from``) of at least
``insurance_min_term``. MiCA's other conditions (90 days' cancellation notice, a
third-party insurer) are not in the feed and are not checked. A policy that ends
within ``insurance_expiry_horizon`` and whose end would leave a breach warns
before it ends (:mod:`monitor.core.rules.insurance`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import Field

from monitor.core.money import (
    MONEY_CONTEXT,
    ZERO,
    amount_text,
    decimal_text,
    money_text,
    percent_text,
)
from monitor.core.rules.base import Assessment, ExchangeView, Explanation, Inputs, unknown
from monitor.core.rules.inputs import figure_too_old, insurance_cover, to_reporting
from monitor.core.rules.insurance import insurance_ahead, with_ahead
from monitor.core.rules.params import Duration, Horizon, Number, Params, consistent, ordered
from monitor.core.rules.registry import RuleSpec, register
from monitor.core.status import Status, Thresholds

_ctx: Final = MONEY_CONTEXT

NOT_CHECKED: Final = (
    "90 days' cancellation notice and a third-party insurer are not in the feed; "
    "confirm them outside the monitor"
)


ServiceClass = Literal[1, 2, 3]


class MicaOwnFundsParams(Params):
    """``eu.mica_own_funds``: own funds and eligible insurance against MiCA Art. 67."""

    minimum_capital: "dict[ServiceClass, Number]"
    currency: 'Annotated[str, Field(pattern=r"^[A-Z0-9]{2,10}$")]'
    overheads_share: "Annotated[Number, Field(le=1)]"
    count_insurance: "bool"
    insurance_min_term: "Duration"
    insurance_expiry_horizon: "Horizon"
    breach_below: "Number"
    warning_below: "Number"
    hysteresis: "Number"
    max_own_funds_age: "Duration"
    max_overheads_age: "Duration"
    max_price_age: "Duration"

    @consistent
    def _consistent(self) -> None:
        missing = sorted({1, 2, 3} - set(self.minimum_capital))
        if missing:
            raise ValueError(
                "minimum_capital needs an amount for every service class; missing "
                + ", ".join(str(m) for m in missing)
            )
        ordered(self.breach_below, self.warning_below, "breach_below", "warning_below")


class MicaOwnFunds:
    """Own funds of at least max(class minimum, ¼ of annual fixed overheads)."""

    id = "eu.mica_own_funds"

    def __init__(self, params: MicaOwnFundsParams, service_class: ServiceClass) -> None:
        self.params = params
        self.service_class = service_class
        self.thresholds = Thresholds(params.breach_below, params.warning_below, params.hysteresis)
        self.breach_for = params.breach_for
        self.reads = Inputs.LEDGER
        # the class minimum is set in this currency: its price is a ledger input too
        self.currencies = (params.currency,)

    def assess(self, view: ExchangeView) -> Assessment:
        p, ledger = self.params, view.state.ledger
        exchange = view.state.exchange
        own_funds = ledger.own_funds
        if own_funds is None:
            return unknown(
                f"no own_funds figure has arrived for {exchange} yet", missing="own_funds"
            )
        stale = figure_too_old(view, "own_funds", own_funds.ts, p.max_own_funds_age)
        if stale is not None:
            return stale
        overheads = ledger.fixed_overheads
        if overheads is None:
            return unknown(
                f"no fixed_overheads figure has arrived for {exchange} yet",
                missing="fixed_overheads",
            )
        stale = figure_too_old(view, "fixed_overheads", overheads.ts, p.max_overheads_age)
        if stale is not None:
            return stale

        class_minimum = p.minimum_capital[self.service_class]
        converted: dict[str, Decimal] = {}
        for name, amount, currency in (
            ("class_minimum", class_minimum, p.currency),
            (
                "overheads_quarter",
                _ctx.multiply(p.overheads_share, overheads.annual_amount),
                overheads.currency,
            ),
            ("own_funds", own_funds.amount, own_funds.currency),
        ):
            value = to_reporting(view, amount, currency, p.max_price_age, f"the {name}")
            if isinstance(value, Assessment):
                return value
            converted[name] = value
        insurance_counted = ZERO
        insurance_evidence: dict[str, object]
        if p.count_insurance:
            insurance = insurance_cover(view, p.max_price_age, p.insurance_min_term)
            if isinstance(insurance, Assessment):
                return insurance
            insurance_counted = insurance.counted
            insurance_evidence = {
                "insurance_counted": insurance.policies,
                "insurance_not_counted": insurance.excluded,
                "insurance_not_checked": NOT_CHECKED,
            }
        else:
            insurance_evidence = {"insurance_counted": "not counted (count_insurance is off)"}

        minimum, quarter = converted["class_minimum"], converted["overheads_quarter"]
        required = max(minimum, quarter)
        available = _ctx.add(converted["own_funds"], insurance_counted)
        ratio = _ctx.divide(available, required)
        shortfall = max(ZERO, _ctx.subtract(required, available))
        currency = view.valuer.reporting_currency
        ahead = insurance_ahead(
            view,
            p.insurance_expiry_horizon if p.count_insurance else None,
            required=required,
            available=available,
            counted=insurance_counted,
            breach_below=self.thresholds.breach_below,
            max_price_age=p.max_price_age,
            min_term=p.insurance_min_term,
        )

        def explain() -> Explanation:
            evidence: dict[str, object] = {
                "service_class": self.service_class,
                "class_minimum": f"{decimal_text(class_minimum)} {p.currency}",
                "fixed_overheads": f"{decimal_text(overheads.annual_amount)} {overheads.currency}",
                "own_funds": f"{decimal_text(own_funds.amount)} {own_funds.currency}",
                "overheads_share": decimal_text(p.overheads_share),
                **insurance_evidence,
                "requirement": {
                    "class_minimum": money_text(minimum),
                    "overheads_quarter": money_text(quarter),
                    "binding": "class_minimum" if minimum >= quarter else "overheads_quarter",
                },
                "available": {
                    "own_funds": money_text(converted["own_funds"]),
                    "insurance": money_text(insurance_counted),
                },
            }
            reason = self._reason(
                ratio, required, available, shortfall, minimum >= quarter, currency
            )
            return reason, evidence

        assessment = Assessment(required, available, ratio, shortfall, explain)
        return with_ahead(assessment, ahead, currency)

    def _reason(
        self,
        ratio: Decimal,
        required: Decimal,
        available: Decimal,
        shortfall: Decimal,
        class_binds: bool,
        currency: str,
    ) -> str:
        binding = (
            f"the class {self.service_class} minimum"
            if class_binds
            else "a quarter of the annual fixed overheads"
        )
        required_text = amount_text(required, currency)
        if shortfall > 0:
            return (
                f"Own funds and eligible insurance cover {percent_text(ratio)} of the "
                f"{required_text} MiCA requires ({binding}); raise own funds by "
                f"{amount_text(shortfall, currency)} or take out eligible insurance."
            )
        if self.thresholds.level(ratio) is Status.WARNING:
            margin = self.thresholds.warning_margin(required, available)
            return (
                f"Own funds and eligible insurance of {amount_text(available, currency)} meet "
                f"the {required_text} MiCA requires ({binding}) but are under the "
                f"{percent_text(self.thresholds.warning_below)} early-warning level; "
                f"{amount_text(margin, currency)} more restores the margin."
            )
        return (
            f"Own funds and eligible insurance of {amount_text(available, currency)} meet "
            f"the {required_text} MiCA requires ({binding})."
        )


register(
    RuleSpec(
        "eu.mica_own_funds",
        pack="eu",
        params="mica_own_funds",
        order=70,
        build=lambda params, pack: MicaOwnFunds(params, pack.service_class),
    )
)
