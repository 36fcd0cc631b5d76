"""Trade volume and prices from venues through ccxt: ``feed trades`` and ``feed prices``."""
