"""Paper trading: a matching engine over recorded or synthetic market data, ``POST /exchange``, and ``Replay.paper()``."""
