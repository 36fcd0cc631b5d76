"""Adequacy reports explained in plain words, rule by rule.

``reserve-monitor policy explain`` renders one exchange's adequacy report
document (what a worker's ``/status`` serves and ``reserve.adequacy`` carries,
:meth:`~monitor.core.output.report.AdequacyReport.to_document`) for a compliance
officer: for each rule, its inputs, the arithmetic from them to what is required
and what is available, the ratio against the rule's levels, the status, and what
to do. It reads nothing but the document, so a replay and a live worker that
saw the same events explain them in the same words.

Each rule id has its renderer in :data:`RENDERERS`; a rule without one (or an
``unknown`` status) is told through its reason and evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from monitor.core.money import MONEY_CONTEXT, amount_text, percent_text

_ctx = MONEY_CONTEXT
Document = Mapping[str, Any]


@dataclass(frozen=True)
class RuleFigures:
    """One rule of a report document, with its figures read as decimals."""

    document: Document
    currency: str

    @property
    def evidence(self) -> Document:
        evidence: Document = self.document.get("evidence") or {}
        return evidence

    def figure(self, key: str) -> Decimal:
        """A top-level figure of the rule: ``ratio``, ``required``, ``available``..."""
        return Decimal(self.document[key])

    def money(self, value: str | Decimal) -> str:
        """An amount of the reporting currency for people: ``1,000,000 JPY``."""
        return amount_text(Decimal(value), self.currency)

    def level(self, name: str) -> Decimal | None:
        """One of the rule's thresholds (``breach_below``...), None when not reported."""
        levels = self.document.get("thresholds")
        return None if not levels else Decimal(levels[name])


Renderer = Callable[[RuleFigures], list[str]]


def explain_report(report: Document) -> str:
    """The explanation of every rule of one exchange's adequacy report document.

    The first line names the exchange and the time of the report; every line
    after it depends only on the figures, so two sources of the same figures
    read the same from the second line on.
    """
    currency = report["currency"]
    lines = [
        f"Exchange {report['exchange']}: adequacy as of {report['as_of']}; amounts in "
        f"{currency}; overall {report['status'].upper()}.",
    ]
    feeds = report.get("feeds") or {}
    if feeds:
        lines.append(
            "Inputs last reported: " + ", ".join(f"{name} {ts}" for name, ts in feeds.items()) + "."
        )
    volume = report.get("trading_volume")
    if volume:
        lines.append(
            f"Trading volume over the trailing {volume['window']}: "
            f"{amount_text(Decimal(volume['amount']), currency)}."
        )
    for rule in report["rules"]:
        lines.append("")
        lines.extend(explain_rule(rule, currency))
    return "\n".join(lines) + "\n"


def explain_rule(rule: Document, currency: str) -> list[str]:
    """The lines that explain one rule document: a heading, then its arithmetic."""
    figures = RuleFigures(rule, currency)
    heading = f"{rule['rule']} — {rule['status'].upper()}"
    if rule["status"] == "unknown" or rule.get("ratio") is None:
        body = _unknown(figures)
    else:
        body = RENDERERS.get(rule["rule"], _generic)(figures)
    return [heading, *(f"  {line}" for line in body)]


# -- what every rule shares ------------------------------------------------------------


def _percent(value: str | Decimal) -> str:
    return percent_text(Decimal(value))


def _stated(text: str) -> str:
    """An amount as the ledger stated it (``"900000 EUR"``), grouped for people."""
    amount, currency = text.split()
    return amount_text(Decimal(amount), currency)


def _level_of(ratio: Decimal, breach: Decimal, warning: Decimal) -> str:
    if ratio < breach:
        return "breach"
    return "warning" if ratio < warning else "ok"


def _verdict(r: RuleFigures, measured: str) -> str:
    """``measured`` = the ratio, where it stands against the levels, and the status."""
    ratio, status = r.figure("ratio"), r.document["status"]
    breach, warning, hysteresis = (
        r.level("breach_below"),
        r.level("warning_below"),
        r.level("hysteresis"),
    )
    text = f"{measured} = {_percent(ratio)}"
    if breach is None or warning is None or hysteresis is None:
        return f"{text} → {status.upper()}."
    level = _level_of(ratio, breach, warning)
    if level == "breach":
        text += f", under the breach level of {_percent(breach)}"
    elif level == "warning":
        text += (
            f", at or above the breach level of {_percent(breach)} but under the "
            f"early-warning level of {_percent(warning)}"
        )
    else:
        text += f", at or above the early-warning level of {_percent(warning)}"
    if status != level:
        if status == "warning" and level == "ok" and _foreseen(r) is not None:
            text += "; insurance ending ahead makes it a warning (see Risk ahead)"
        else:
            text += (
                f"; it stays {status.upper()} until the ratio clears the level by the "
                f"hysteresis margin of {_percent(hysteresis)}"
            )
    return f"{text} → {status.upper()}."


def _foreseen(r: RuleFigures) -> Decimal | None:
    """The ratio foreseen at an insurance end, when the rule judged one."""
    ahead = r.evidence.get("insurance_ahead")
    if not isinstance(ahead, Mapping) or "ratio" not in ahead:
        return None
    return Decimal(ahead["ratio"])


def _remedy(r: RuleFigures, action: str) -> list[str]:
    """What to do: ``action`` takes the amount (the shortfall, or the warning margin)."""
    shortfall = r.figure("shortfall")
    if shortfall > 0:
        return [f"To comply: {action.format(amount=r.money(shortfall))}"]
    warning = r.level("warning_below")
    if r.document["status"] == "warning" and warning is not None:
        margin = _ctx.subtract(_ctx.multiply(warning, r.figure("required")), r.figure("available"))
        if margin > 0:
            return ["To restore the early-warning margin: " + action.format(amount=r.money(margin))]
    return []


def _ratio_of_amounts(r: RuleFigures) -> str:
    return f"Ratio {r.money(r.figure('available'))} / {r.money(r.figure('required'))}"


def _insurance(r: RuleFigures, counted_key: str) -> list[str]:
    """The policies counted and those left out, with why (none where none is counted)."""
    evidence = r.evidence
    if counted_key not in evidence:
        return []
    counted = evidence[counted_key]
    if isinstance(counted, str):  # counting is switched off
        return [f"Insurance: {counted}."]
    listed = ", ".join(f"{policy} {r.money(value)}" for policy, value in (counted or {}).items())
    lines = [f"Insurance in force: {listed or 'none'}."]
    for policy, why in (evidence.get("insurance_not_counted") or {}).items():
        lines.append(f"Not counted: {policy}, {why}.")
    if evidence.get("insurance_not_checked"):
        lines.append(f"Not checked: {evidence['insurance_not_checked']}.")
    return lines


def _insured_verdict(r: RuleFigures, counted_key: str, action: str) -> list[str]:
    """For a rule that counts insurance: the policies, the verdict, the remedy, the risk ahead."""
    return [
        *(f"  {line}" for line in _insurance(r, counted_key)),
        _verdict(r, _ratio_of_amounts(r)),
        *_remedy(r, action),
        *_risk_ahead(r),
    ]


def _risk_ahead(r: RuleFigures) -> list[str]:
    """The insurance ending within the rule's horizon, and what its end would leave."""
    ahead = r.evidence.get("insurance_ahead")
    if not isinstance(ahead, Mapping):
        return []
    horizon = ahead["horizon"]
    ending = ahead.get("ending") or {}
    if not ending:
        return [f"Risk ahead: no insurance policy ends within {horizon}."]
    ends = ", ".join(f"{policy} at {end}" for policy, end in ending.items())
    lines = [f"Risk ahead: insurance ending within {horizon}: {ends}."]
    ratio, breach = Decimal(ahead["ratio"]), r.level("breach_below")
    ended = " and ".join(ahead["ended"])
    lines.append(
        f"  When {ended} {'ends' if len(ahead['ended']) == 1 else 'end'} at "
        f"{ahead['judged_at']}, insurance counted falls to {r.money(ahead['insurance'])}, "
        f"leaving {r.money(ahead['available'])} against {r.money(r.figure('required'))} = "
        f"{_percent(ratio)}"
        + (f" (breach level {_percent(breach)})" if breach is not None else "")
        + "."
    )
    if ahead.get("leaves_breach"):
        lines.append(
            f"  That would be a breach: renew the insurance, or add "
            f"{r.money(ahead['shortfall'])}, before {ahead['judged_at']}."
        )
    else:
        lines.append("  That would not be a breach.")
    return lines


# -- the renderers, one per rule id ------------------------------------------------------


def _liability_reserve(r: RuleFigures) -> list[str]:
    e = r.evidence
    components = e["floor_components"]
    parts = [
        f"{_percent(e['volume_rate'])} of {r.money(e['trading_volume'])} traded over the "
        f"trailing {e['volume_window']} = {r.money(components['volume'])};"
    ]
    if "hot_customer_value" in components:
        parts.append(
            f"{_percent(e['hot_customer_value_share'])} of {r.money(e['hot_customer_value'])} "
            f"of customer crypto in hot wallets = {r.money(components['hot_customer_value'])};"
        )
    parts.append(f"the fixed floor of {r.money(components['fixed'])};")
    largest = max(Decimal(value) for value in components.values())
    low, high = (Decimal(bound) for bound in e["floor_clamp"])
    if largest < low:
        clamp = f"raised to the minimum floor of {r.money(low)}"
    elif largest > high:
        clamp = f"lowered to the maximum floor of {r.money(high)}"
    else:
        clamp = f"within the range [{r.money(low)}, {r.money(high)}]"
    insurance_counted = Decimal(e["insurance_counted"])
    return [
        f"Floor {r.money(r.figure('required'))} = the largest of:",
        *(f"  {part}" for part in parts),
        f"  the largest, {r.money(largest)}, {clamp}.",
        f"Available {r.money(r.figure('available'))} = reserve fund "
        f"{r.money(e['reserve_fund'])} + insurance counted {r.money(insurance_counted)}.",
        f"  Insurance counts up to {_percent(e['insurance_max_share'])} of the floor = "
        f"{r.money(e['insurance_cap'])}.",
        *_insured_verdict(r, "insurance_in_force", "add {amount} to the reserve fund."),
    ]


def _cold_storage(r: RuleFigures) -> list[str]:
    e = r.evidence
    cold, hot = Decimal(e["cold_customer_value"]), Decimal(e["hot_customer_value"])
    total = _ctx.add(cold, hot)
    lines = [
        f"Customer crypto {r.money(total)} = cold wallets {r.money(cold)} + hot wallets "
        f"{r.money(hot)}.",
        f"At least {_percent(e['minimum_share'])} must be cold: "
        f"{r.money(r.figure('required'))}; cold wallets hold {r.money(cold)}.",
        _verdict(r, f"Cold share {r.money(cold)} / {r.money(total)}"),
    ]
    shortfall = r.figure("shortfall")
    warning = r.level("warning_below")
    if shortfall > 0:
        lines.append(f"To comply: move {r.money(shortfall)} of crypto from hot to cold wallets.")
    elif r.document["status"] == "warning" and warning is not None:
        margin = _ctx.subtract(_ctx.multiply(warning, total), cold)
        if margin > 0:
            lines.append(
                f"To restore the early-warning margin: move {r.money(margin)} of crypto "
                f"from hot to cold wallets."
            )
    return lines


@dataclass(frozen=True, slots=True)
class _CoverageWords:
    """What a per-asset coverage rule calls its two sides (evidence keys and words)."""

    duty: str
    required_key: str
    available_key: str
    need: str
    have: str
    need_words: str
    have_words: str
    action: str


def _asset_coverage(words: _CoverageWords) -> Renderer:
    def render(r: RuleFigures) -> list[str]:
        e = r.evidence
        lines = [words.duty]
        if "worst_asset" not in e:  # nothing to cover
            return [*lines, r.document["reason"]]
        lines.append(
            f"{words.need_words.capitalize()}: worth {r.money(e[words.required_key])}. "
            f"{words.have_words.capitalize()} against it (each asset counted up to its "
            f"need): {r.money(e[words.available_key])}."
        )
        for asset, row in (e.get("short_assets") or {}).items():
            lines.append(
                f"Short: {asset}, {words.have_words} {row[words.have]} against "
                f"{words.need_words} {row[words.need]}: {row['short']} short "
                f"(worth {r.money(row['short_value'])})."
            )
        if e.get("short_assets_not_listed"):
            lines.append(f"... and {e['short_assets_not_listed']} more short assets.")
        asset = e["worst_asset"]
        quantities = e.get("worst_asset_quantities") or {}
        measured = f"Worst asset {asset}"
        if quantities:
            measured += (
                f": {words.have_words} {quantities[words.have]} / {words.need_words} "
                f"{quantities[words.need]}"
            )
        lines.append(_verdict(r, measured))
        lines.extend(_remedy(r, words.action))
        return lines

    return render


def _compensation_cover(r: RuleFigures) -> list[str]:
    e = r.evidence
    names = {
        "reserve_fund": "reserve fund",
        "insurance": "insurance",
        "guarantee": "guarantee crypto in cold wallets",
    }
    components = " + ".join(
        f"{names.get(name, name)} {r.money(value)}" for name, value in e["components"].items()
    )
    return [
        f"Required {r.money(r.figure('required'))} = {_percent(e['cold_share'])} of "
        f"{r.money(e['cold_customer_value'])} of customer crypto in cold wallets + "
        f"{_percent(e['hot_share'])} of {r.money(e['hot_customer_value'])} in hot wallets.",
        f"Available {r.money(r.figure('available'))} = {components}.",
        *_insured_verdict(
            r,
            "insurance_in_force",
            "add {amount} of cover (fund, insurance or cold guarantee crypto), or move "
            "client crypto from hot to cold storage.",
        ),
    ]


def _mica_own_funds(r: RuleFigures) -> list[str]:
    e = r.evidence
    requirement, available = e["requirement"], e["available"]
    annual, overheads_currency = e["fixed_overheads"].split()
    share = Decimal(e["overheads_share"])
    quarter = amount_text(_ctx.multiply(share, Decimal(annual)), overheads_currency)
    binding = requirement["binding"]
    marks = {name: " (the larger)" if name == binding else "" for name in requirement}
    return [
        f"Required {r.money(r.figure('required'))} = the larger of:",
        f"  the class {e['service_class']} minimum of {_stated(e['class_minimum'])} = "
        f"{r.money(requirement['class_minimum'])}{marks['class_minimum']};",
        f"  {_percent(share)} of annual fixed overheads of {_stated(e['fixed_overheads'])} = "
        f"{quarter} = {r.money(requirement['overheads_quarter'])}{marks['overheads_quarter']}.",
        f"Available {r.money(r.figure('available'))} = own funds {_stated(e['own_funds'])} = "
        f"{r.money(available['own_funds'])} + insurance counted "
        f"{r.money(available['insurance'])}.",
        *_insured_verdict(
            r, "insurance_counted", "raise own funds by {amount}, or take out eligible insurance."
        ),
    ]


def _hot_wallet_drain(r: RuleFigures) -> list[str]:
    e = r.evidence
    peak, drop = Decimal(e["peak_hot_value"]), Decimal(e["drop_value"])
    share = _percent(_ctx.divide(drop, peak)) if peak > 0 else "0%"
    lines = [
        f"Hot-wallet value now {r.money(e['hot_value'])}; its peak within the last "
        f"{e['window']} {r.money(peak)}: a fall of {r.money(drop)} ({share}).",
    ]
    falls = e.get("hot_wallet_falls") or []
    for fall in sorted(falls, key=lambda f: -Decimal(f["value"]))[:5]:
        lines.append(
            f"Fell: {fall['wallet']} {fall['asset']} {fall['before']} → {fall['after']} at "
            f"{fall['ts']} (worth {r.money(fall['value'])})."
        )
    if not falls and drop > 0:
        lines.append(f"No hot wallet's balance fell within {e['window']}: prices moved.")
    breach, warning = r.level("breach_below"), r.level("warning_below")
    if breach is not None and warning is not None:
        lines.append(
            f"Breach on a fall of more than {_percent(1 - breach)} of the peak within "
            f"{e['window']}, early warning on more than {_percent(1 - warning)}."
        )
    lines.append(
        _verdict(r, f"Value now / peak {r.money(e['hot_value'])} / {r.money(e['peak_hot_value'])}")
    )
    if r.document["status"] in ("breach", "warning"):
        lines.append(
            "To act: check the outgoing transfers of the wallets that fell; if any are not "
            "yours, stop withdrawals and move what is left in hot wallets to cold storage."
        )
    return lines


def _generic(r: RuleFigures) -> list[str]:
    """A rule this module has no renderer for: its figures, reason and evidence."""
    return [
        f"Required {r.money(r.figure('required'))}, available "
        f"{r.money(r.figure('available'))}, shortfall {r.money(r.figure('shortfall'))}.",
        _verdict(r, "Ratio"),
        r.document["reason"],
        *(f"{key}: {value}" for key, value in r.evidence.items()),
    ]


def _unknown(r: RuleFigures) -> list[str]:
    """An ``unknown`` rule: why it cannot be judged, and what would let it be."""
    return [
        r.document["reason"],
        *(f"{key}: {value}" for key, value in r.evidence.items()),
        "Nothing is judged until the input named above arrives (or is fresh again).",
    ]


RENDERERS: dict[str, Renderer] = {
    "jp.liability_reserve": _liability_reserve,
    "jp.cold_storage": _cold_storage,
    "hk.cold_storage": _cold_storage,
    "jp.hot_wallet_guarantee": _asset_coverage(
        _CoverageWords(
            duty=(
                "Per asset, the exchange's guarantee crypto must at least equal customer "
                "crypto in hot wallets (same kind and quantity)."
            ),
            required_key="hot_customer_value",
            available_key="guaranteed_value",
            need="hot_customer",
            have="guarantee",
            need_words="customer crypto in hot wallets",
            have_words="guarantee",
            action=(
                "move the exchange's own crypto of each short asset into guarantee wallets "
                "(worth {amount} now), or move the customer crypto to cold storage."
            ),
        )
    ),
    "jp.segregation": _asset_coverage(
        _CoverageWords(
            duty=(
                "Per asset, customer wallet holdings must cover what the ledger says is "
                "owed to customers."
            ),
            required_key="liability_value",
            available_key="covered_value",
            need="owed",
            have="customer_holdings",
            need_words="owed to customers",
            have_words="customer holdings",
            action=(
                "find where the crypto went, return it to customer wallets (worth {amount} "
                "now) and reconcile the ledger."
            ),
        )
    ),
    "hk.compensation_cover": _compensation_cover,
    "eu.mica_own_funds": _mica_own_funds,
    "ops.hot_wallet_drain": _hot_wallet_drain,
}
