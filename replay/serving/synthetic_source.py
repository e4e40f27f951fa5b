"""The synthetic market as a server's source: ``hlarchive simulate``.

The market model (``replay.simulator``) makes the streams and knows nothing of ``/info``; this
source adds the answers, read from the same ticks its streams show at that wall time.
"""

from __future__ import annotations

from typing import Any

from ..simulator.info import answer
from ..simulator.market import SyntheticMarket


class SyntheticSource(SyntheticMarket):
    """A :class:`SyntheticMarket` that also answers ``POST /info`` (what ``HyperliquidServer`` asks of a source)."""

    def info(self, request: dict[str, Any], now_ns: int, clock_start_ns: int | None = None) -> Any:
        self.list_due(now_ns)
        return answer(self, request, self.tick_at(now_ns))
