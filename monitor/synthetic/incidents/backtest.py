"""Replays an incident through the real engine, as ``reserve-monitor replay`` does.

For each incident: which rules changed into ``breach`` and when (the first
time each did), the shortfall each reported then, the liability-reserve floor
the policy computed just before the first loss event, and, for each firing,
whether it depends on a MODEL figure.

**Depends on MODEL** (one-at-a-time sensitivity): the incident is replayed
again once per variant, each changing one assumption only: every MODEL
amount (a balance, a liability, the reserve fund, the volume, a MODEL price, a
MODEL move) halved and doubled, and every modelled event (one whose time is
MODEL) left out. A firing that still happens in every variant does not depend
on the assumptions; otherwise the variants it vanished in are named. Where a
variant leaves a wallet less than a loss takes, the loss takes what is there.
Times and heartbeats are not varied: they set when records arrive, not the
balances the rules judge.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from monitor.core.engine import Engine
from monitor.core.output.report import adequacy_report
from monitor.core.policy import Policy, load_policy
from monitor.replay import replay
from monitor.synthetic.incidents.library import Incident
from monitor.synthetic.incidents.timeline import (
    BASE,
    Variant,
    jsonl,
    loss_time,
    records,
)

LIABILITY_RESERVE = "jp.liability_reserve"
HALF, DOUBLE = Decimal("0.5"), Decimal(2)
# where a MODEL figure is an amount the rules judge (and so is varied)
_VARIED = ("wallets.", "liabilities.", "prices.", "volume_per_day", "reserve_fund", "timeline[")


@dataclass(frozen=True)
class Firing:
    """The first change of one rule into ``breach``."""

    rule: str
    as_of: datetime
    after_loss: timedelta
    shortfall: Decimal | None
    reason: str


@dataclass(frozen=True)
class Backtest:
    incident: Incident
    firings: tuple[Firing, ...]
    floor: Decimal | None
    """The jp.liability_reserve floor just before the first loss event."""
    depends: dict[str, tuple[str, ...]] | None = None
    """Per firing rule, the variants it did not fire in (empty: robust); None: not checked."""

    @property
    def coverage(self) -> Decimal | None:
        """The share of the loss a reserve at the floor would have covered, at most 1."""
        loss = self.incident.loss_value.amount
        if self.floor is None or loss <= 0:
            return None
        return min(Decimal(1), self.floor / loss)

    @property
    def fired(self) -> set[str]:
        return {f.rule for f in self.firings}


def _engine(policy: Policy) -> Engine:
    return Engine(policy, journal=False)  # no durable storage to rebuild from, as replay


def _replay_lines(lines: list[str], engine: Engine, what: str) -> list[dict[str, object]]:
    out = io.StringIO()
    result = replay(lines, engine, out)
    if result.problems:
        raise RuntimeError(f"{what}: the engine refused records: {result.problems[:3]}")
    return [json.loads(line) for line in out.getvalue().splitlines()]


def firings(incident: Incident, policy: Policy, variant: Variant = BASE) -> tuple[Firing, ...]:
    """The first breach of each rule in one replay of the incident, in time order."""
    lines = jsonl(records(incident, variant))
    alerts = _replay_lines(lines, _engine(policy), f"{incident.key} ({variant.name})")
    loss = loss_time(incident)
    first: dict[str, Firing] = {}
    for alert in alerts:
        data = alert["data"]
        assert isinstance(data, dict)
        if data["status"] != "breach" or data["rule"] in first:
            continue
        as_of = datetime.fromisoformat(str(data["as_of"]))
        shortfall = data.get("shortfall")
        first[data["rule"]] = Firing(
            str(data["rule"]),
            as_of,
            as_of - loss,
            None if shortfall is None else Decimal(str(shortfall)),
            str(data["reason"]),
        )
    return tuple(sorted(first.values(), key=lambda f: (f.as_of, f.rule)))


def reserve_floor(incident: Incident, policy: Policy) -> Decimal | None:
    """The jp.liability_reserve floor as of the last moment before the first loss event."""
    loss = loss_time(incident)
    before = [r for r in records(incident) if r.ts < loss]
    engine = _engine(policy)
    _replay_lines(jsonl(before), engine, f"{incident.key} (before the loss)")
    if incident.exchange not in engine.exchanges:
        return None
    report = adequacy_report(engine, incident.exchange)
    for rule in report.rules:
        if rule.rule == LIABILITY_RESERVE:
            return rule.required
    return None


def variants(incident: Incident) -> list[Variant]:
    """One variant per MODEL amount and factor, and one per modelled event left out."""
    found = []
    for figure in incident.model_figures:
        if figure.path.startswith(_VARIED) and ".at" not in figure.path:
            if figure.path.endswith((".repeat", ".every")):
                continue
            for factor in (HALF, DOUBLE):
                name = f"{figure.path} x{factor}"
                found.append(Variant(name, {figure.path: factor}))
    for event in incident.timeline:
        if event.is_model:
            name = f"timeline[{event.index}] left out"
            found.append(Variant(name, without=frozenset({event.index})))
    return found


def backtest(
    incident: Incident, policy: Policy | None = None, sensitivity: bool = True
) -> Backtest:
    """Replay the incident as written and, with ``sensitivity``, under every variant."""
    policy = policy or load_policy(None)
    base = firings(incident, policy)
    floor = reserve_floor(incident, policy)
    if not sensitivity:
        return Backtest(incident, base, floor)
    depends: dict[str, list[str]] = {f.rule: [] for f in base}
    for variant in variants(incident):
        fired = {f.rule for f in firings(incident, policy, variant)}
        for rule, missing in depends.items():
            if rule not in fired:
                missing.append(variant.name)
    return Backtest(incident, base, floor, {rule: tuple(names) for rule, names in depends.items()})
