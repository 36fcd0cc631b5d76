"""The rules: each module one regulatory check, each a pure function of state and time.

Importing this package imports every rule module, and so declares every rule to
the registry (:mod:`monitor.core.rules.registry`).
"""

from monitor.core.rules.base import Assessment, ExchangeView, Rule
from monitor.core.rules.cold_storage import ColdStorage
from monitor.core.rules.compensation_cover import CompensationCover
from monitor.core.rules.hot_wallet_drain import HotWalletDrain
from monitor.core.rules.hot_wallet_guarantee import HotWalletGuarantee
from monitor.core.rules.liability_reserve import LiabilityReserve
from monitor.core.rules.mica_own_funds import MicaOwnFunds
from monitor.core.rules.registry import RULES, RuleSpec, rules_for
from monitor.core.rules.segregation import Segregation

__all__ = [
    "RULES",
    "Assessment",
    "ColdStorage",
    "CompensationCover",
    "ExchangeView",
    "HotWalletDrain",
    "HotWalletGuarantee",
    "LiabilityReserve",
    "MicaOwnFunds",
    "Rule",
    "RuleSpec",
    "Segregation",
    "rules_for",
]
