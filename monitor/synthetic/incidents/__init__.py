"""The incident library: the losses Reserve Monitor exists for, replayed through its rules.

One YAML file per incident (Mt. Gox, Coincheck, Zaif, BITPoint, Liquid, FTX,
DMM Bitcoin, Bybit), read by :mod:`.library`, expanded into records by
:mod:`.timeline`, replayed through the real engine by :mod:`.backtest` and
tabulated by :mod:`.table`. ``python -m monitor.synthetic.incidents`` (``make
incidents``) prints the table; see docs/incidents.md.
"""
