"""One synthetic market for everyone: the clock that says which tick is now, and the timeline that
reaches any recent tick fast.

Streams and ``/info`` answers read the same ticks, so a book asked for over HTTP equals the book the
``l2Book`` stream sends at that instant, and a subscriber joins the market where it is, as on the
exchange. Pure: the wall time is always an argument.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.candles import fold_candle

from .coins import CoinMarket

CHECKPOINT_EVERY = 512  # ticks between two saved states of a coin's market
CHECKPOINTS_KEPT = 256  # the newest kept: streams start at the current tick, never far back
CANDLES_KEPT = 5000  # closed candles kept per coin and interval (the exchange answers at most 5000)


@dataclass(frozen=True)
class MarketClock:
    """Tick ``n`` happens ``n / rate`` seconds after ``started_ns``, and never before its own
    exchange time (``start_ms + n * tick_ms``): exchange time is never later than the wall clock."""

    started_ns: int
    start_ms: int
    tick_ms: int
    rate: float  # ticks per second of wall time

    def tick_at(self, now_ns: int) -> int:
        by_rate = math.floor((now_ns - self.started_ns) / 1e9 * self.rate)
        by_wall = math.floor((now_ns // 1_000_000 - self.start_ms) / self.tick_ms)
        return max(0, min(by_rate, by_wall))

    def due_ns(self, n: int) -> int:
        """The wall time tick ``n`` is due."""
        by_rate = self.started_ns + math.ceil(n * 1e9 / self.rate)
        by_wall = (self.start_ms + n * self.tick_ms) * 1_000_000
        return max(by_rate, by_wall)

    def time_ms(self, n: int) -> int:
        return self.start_ms + n * self.tick_ms


@dataclass
class _CandleBook:
    """A coin's candles for one interval: the closed ones (bounded) and the open one."""

    span_ms: int
    closed: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=CANDLES_KEPT))
    current: dict[str, Any] | None = None


class Timeline:
    """Each coin's market walked forward tick by tick (``CoinMarket.step``), with a saved state every
    ``CHECKPOINT_EVERY`` ticks so a market at any recent tick is a clone and a few steps away."""

    def __init__(self, new_market: Callable[[str], CoinMarket], intervals_ms: Mapping[str, int]) -> None:
        self._new_market = new_market  # a coin's market at its first tick
        self._intervals_ms = intervals_ms
        self._head: dict[str, CoinMarket] = {}
        self._checkpoints: dict[str, dict[int, CoinMarket]] = {}
        self._candles: dict[str, dict[str, _CandleBook]] = {}

    def head(self, coin: str, n: int) -> CoinMarket:
        """The shared market of ``coin`` walked to tick ``n`` (ticks only move forward; read, don't step it)."""
        head = self._head.get(coin)
        if head is None:
            head = self._head[coin] = self._new_market(coin)
            head.trades()
            self._checkpoints[coin] = {0: head.clone()}
            self._candles[coin] = {i: _CandleBook(span) for i, span in self._intervals_ms.items()}
            self._record(coin, head)
        while head.n < n:
            head.step()
            self._record(coin, head)
            if head.n % CHECKPOINT_EVERY == 0:
                saved = self._checkpoints[coin]
                saved[head.n] = head.clone()
                if len(saved) > CHECKPOINTS_KEPT:
                    del saved[min(saved)]
        return head

    def market_at(self, coin: str, n: int) -> CoinMarket:
        """A market of its own for ``coin`` at tick ``n`` (trades of tick ``n`` printed), to walk on from there."""
        head = self.head(coin, n)
        if head.n == n:
            return head.clone()
        saved = self._checkpoints[coin]
        base = max((k for k in saved if k <= n), default=None)
        market = saved[base].clone() if base is not None else self._new_market(coin)
        if base is None:
            market.trades()
        while market.n < n:
            market.step()
        return market

    def candles(self, coin: str, interval: str, n: int) -> list[dict[str, Any]]:
        """Closed candles then the open one, as of tick ``n``."""
        self.head(coin, n)
        book = self._candles[coin][interval]
        out = list(book.closed)
        if book.current is not None:
            out.append(dict(book.current))
        return out

    def open_candle(self, coin: str, interval: str, n: int) -> dict[str, Any] | None:
        self.head(coin, n)
        current = self._candles[coin][interval].current
        return dict(current) if current is not None else None

    def _record(self, coin: str, m: CoinMarket) -> None:
        trades = m.trades()
        for interval, book in self._candles[coin].items():
            book.current = fold_candle(book.current, trades, coin, interval, book.span_ms, m.time_ms, m.spec.sz_decimals, book.closed)
