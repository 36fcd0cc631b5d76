"""The rules: each module one regulatory check, each a pure function of state and time."""

from monitor.core.rules.base import Assessment, ExchangeView, Rule
from monitor.core.rules.cold_storage import ColdStorage
from monitor.core.rules.liability_reserve import LiabilityReserve

__all__ = ["Assessment", "ColdStorage", "ExchangeView", "LiabilityReserve", "Rule"]
