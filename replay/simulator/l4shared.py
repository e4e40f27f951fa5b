"""Every stream and file of the synthetic market's L4 reads one tape a coin, so the ``l4Book`` a
subscriber sees, the node files and the node's snapshot describe the same orders. A tape starts
where it is first asked for (its first block places every order) and only moves forward."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from .coins import CoinMarket
from .l4tape import L4Block, L4Tape, height_of

BLOCKS_KEPT = 3000  # recent blocks a late reader can still fetch (5 minutes at 10 blocks a second)


class SharedTape:
    """One coin's tape walked by its own market clone, with the recent blocks it made."""

    def __init__(self, coin: str, seed: int, market_at: Callable[[int], CoinMarket], start: int) -> None:
        self.market = market_at(start)
        self.tape = L4Tape(coin, seed)
        self.first = start
        self.blocks: deque[L4Block] = deque(maxlen=BLOCKS_KEPT)
        self.blocks.append(self.tape.step(self.market))

    def advance_to(self, tick: int) -> None:
        while self.market.n < tick:
            self.market.step()
            self.blocks.append(self.tape.step(self.market))

    def block(self, tick: int) -> L4Block:
        """The block of ``tick`` (walked to first if it is ahead)."""
        self.advance_to(tick)
        at = height_of(tick) - self.blocks[0].height
        if at < 0:
            raise LookupError(f"block {height_of(tick)} of {self.tape.coin} is older than the {BLOCKS_KEPT} blocks kept")
        return self.blocks[at]


class Tapes:
    """The shared tapes of a market, one a coin, safe to use from the server's threads."""

    def __init__(self, seed: int, market_at: Callable[[str, int], CoinMarket]) -> None:
        self.seed = seed
        self._market_at = market_at
        self.lock = threading.RLock()
        self.by_coin: dict[str, SharedTape] = {}

    def get(self, coin: str, tick: int) -> SharedTape:
        """The coin's tape, started at ``tick`` if nobody asked for it before."""
        with self.lock:
            shared = self.by_coin.get(coin)
            if shared is None:
                shared = self.by_coin[coin] = SharedTape(coin, self.seed, lambda n: self._market_at(coin, n), tick)
            return shared
