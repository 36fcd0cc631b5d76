"""The rules, each declared once, in its own module, and found here by id.

A rule module declares its parameters (a frozen model of
:mod:`monitor.core.rules.params`), the rule itself and, at its end, how a pack
applies it: ``register(RuleSpec(...))``. Adding a rule is one module, its
defaults in the pack's YAML file, and its tests; :func:`rules_for` finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.core.policy import ExchangePolicy
    from monitor.core.rules.base import Rule


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """How a pack applies one rule.

    ``params`` names the pack's field that holds the rule's parameters; ``build``
    makes the rule from them and the whole pack; ``order`` places it among the
    rules an exchange is judged by, so its changes come in the same order under
    any policy file.
    """

    id: str
    pack: str
    params: str
    order: int
    build: Callable[[Any, Any], Rule]


RULES: dict[str, RuleSpec] = {}


def register(spec: RuleSpec) -> RuleSpec:
    """Declare a rule; each id once."""
    if spec.id in RULES:
        raise ValueError(f"rule {spec.id!r} is declared twice")
    RULES[spec.id] = spec
    return spec


def rules_for(policy: ExchangePolicy) -> list[Rule]:
    """The rules an exchange's packs apply, in their declared order."""
    rules = []
    for spec in sorted(RULES.values(), key=lambda spec: spec.order):
        pack = policy.packs.get(spec.pack)
        if pack is not None:
            rules.append(spec.build(getattr(pack, spec.params), pack))
    return rules
