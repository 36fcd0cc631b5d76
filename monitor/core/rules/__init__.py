"""The rules: each module one regulatory check, each a pure function of state and time."""

from monitor.core.rules.base import Assessment, ExchangeView, Rule
from monitor.core.rules.cold_storage import ColdStorage
from monitor.core.rules.compensation_cover import CompensationCover
from monitor.core.rules.hot_wallet_drain import HotWalletDrain
from monitor.core.rules.hot_wallet_guarantee import HotWalletGuarantee
from monitor.core.rules.liability_reserve import LiabilityReserve
from monitor.core.rules.mica_own_funds import MicaOwnFunds
from monitor.core.rules.segregation import Segregation

__all__ = [
    "Assessment",
    "ColdStorage",
    "CompensationCover",
    "ExchangeView",
    "HotWalletDrain",
    "HotWalletGuarantee",
    "LiabilityReserve",
    "MicaOwnFunds",
    "Rule",
    "Segregation",
]
