"""Paper trading: a pure matching engine over recorded or synthetic market data, and its shells
(``POST /exchange`` sessions, ``PaperExchange`` riding along a ``Replay``).

It reads the market through the reader and the simulator; neither of them imports it (a ``Replay``
finds ``PaperExchange`` through the ``hlarchive.replay`` entry point).
"""

from typing import Any

__all__ = ["PaperExchange"]


def __getattr__(name: str) -> Any:
    if name == "PaperExchange":
        from .client import PaperExchange

        return PaperExchange
    raise AttributeError(f"module 'replay.paper' has no attribute {name!r}")
