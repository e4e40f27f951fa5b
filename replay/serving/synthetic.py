"""A synthetic Hyperliquid market, deterministic for a seed: the simulator's message source.

Every coin's market advances in ticks of ``tick_ms`` market time. Its mid follows a random walk;
the order book of tick ``n`` and the trades that walk it are drawn from generators seeded by
``(seed, coin, n)``, so every subscription that looks at tick ``n`` of a coin sees the same book:
l2Book, bbo, allMids, trades, candles and asset contexts agree with each other, and the same seed
gives the same frames however the subscriptions interleave. Field names, types and nesting follow
the real frames in ``tests/fixtures``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from schemas.subscriptions import CANDLE_INTERVALS, Subscription, is_spot_coin

from .info import wire_number
from .timeline import MarketClock, Timeline, fold_candle


@dataclass(frozen=True)
class CoinSpec:
    name: str
    start_px: float
    tick: float  # price increment
    px_decimals: int
    sz_decimals: int
    max_leverage: int = 0  # perps only; spot has none


DEFAULT_COINS: dict[str, CoinSpec] = {
    c.name: c
    for c in (
        CoinSpec("BTC", 98_450.0, 1.0, 1, 5, 40),
        CoinSpec("ETH", 2_296.4, 0.1, 1, 4, 25),
        CoinSpec("SOL", 94.87, 0.01, 2, 2, 20),
        CoinSpec("kPEPE", 0.012345, 0.000001, 6, 0, 10),
        CoinSpec("xyz:HOOD", 91.25, 0.01, 2, 3, 10),
        CoinSpec("@1", 0.065431, 0.000001, 6, 0),
        CoinSpec("PURR/USDC", 0.067131, 0.000001, 6, 0),
    )
}

DEFAULT_USERS = (
    "0xe746435d136c4714383a64ee28e35c8bdb8d5cb1",
    "0xcc0a3b6e3267c84361e91d8230868eea53431e4b",
)

# resting liquidity comes from a few hundred market makers, not from a new address per trade
MAKERS = tuple("0x" + hashlib.blake2b(f"maker {i}".encode(), digest_size=20).hexdigest() for i in range(256))

INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,  # 30 days: the simulator does not follow calendar months
}

LEVELS = 20


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _hex(rng: random.Random, nbytes: int) -> str:
    return "0x" + rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def fmt(value: float, decimals: int) -> str:
    """Hyperliquid-style decimal text: fixed decimals for prices, at least one decimal."""
    return f"{value:.{max(decimals, 1)}f}"


def fmt_sz(value: float, decimals: int) -> str:
    return wire_number(value, decimals)


@dataclass(frozen=True)
class _BookShape:
    """Where the levels sit relative to the touch, and their sizes: a coin has a few dozen of these."""

    bid_offsets: tuple[int, ...]
    ask_offsets: tuple[int, ...]
    bid_sizes: tuple[tuple[str, int], ...]
    ask_sizes: tuple[tuple[str, int], ...]


_SHAPES = 64


class CoinMarket:
    """One coin's market, advanced tick by tick.

    Every random draw of a tick happens in ``advance`` from one sequential generator, so a tick's
    book and trades are the same whichever frames are built from them, and building them is cheap.
    """

    def __init__(self, spec: CoinSpec, seed: int, start_ms: int, tick_ms: int) -> None:
        self.spec = spec
        self.seed = seed
        self.start_ms = start_ms
        self.tick_ms = tick_ms
        self.n = 0
        self._rng = random.Random(_seed(seed, spec.name, "walk"))
        self.mid_ticks = round(spec.start_px / spec.tick)
        self.tid = _seed(seed, spec.name, "tid") % 10**14
        self.day_ntl = 0.0
        self.day_base = 0.0
        self._shapes = _book_shapes(spec, seed)
        self._shape = self._shapes[0]
        self._trade_draws: list[tuple[float, ...]] = []
        self._px_cache: dict[int, str] = {}
        self._book: tuple[int, list[dict[str, Any]], list[dict[str, Any]]] | None = None
        self._trades: tuple[int, list[dict[str, Any]]] | None = None

    @property
    def time_ms(self) -> int:
        return self.start_ms + self.n * self.tick_ms

    @property
    def mid(self) -> float:
        return (self.mid_ticks + 0.5) * self.spec.tick

    def advance(self) -> None:
        rng = self._rng
        self.n += 1
        self.mid_ticks = max(10, self.mid_ticks + round(rng.gauss(0, 3)))
        self._shape = self._shapes[int(rng.random() * _SHAPES)]
        count = (0, 1, 1, 2, 3)[int(rng.random() * 5)]
        self._trade_draws = [(rng.random(), rng.random(), rng.random(), rng.random(), rng.getrandbits(256)) for _ in range(count)]

    def step(self) -> None:
        """Advance one tick and print its trades: the state every timeline is kept in, so a clone
        taken at tick n and a market walked to tick n agree on trade ids and volumes."""
        self.advance()
        self.trades()

    def clone(self) -> CoinMarket:
        twin = object.__new__(CoinMarket)
        twin.__dict__.update(self.__dict__)
        twin._rng = random.Random()
        twin._rng.setstate(self._rng.getstate())
        twin._px_cache = {}
        return twin

    def px(self, ticks: int) -> str:
        text = self._px_cache.get(ticks)
        if text is None:
            if len(self._px_cache) > 4096:
                self._px_cache.clear()
            text = self._px_cache[ticks] = fmt(ticks * self.spec.tick, self.spec.px_decimals)
        return text

    def book(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """This tick's 20 levels a side as frame dicts: ``levels[0]`` bids (best first), asks."""
        if self._book is None or self._book[0] != self.n:
            shape, mid, px = self._shape, self.mid_ticks, self.px
            bids = [{"px": px(mid - off), "sz": sz, "n": n} for off, (sz, n) in zip(shape.bid_offsets, shape.bid_sizes)]
            asks = [{"px": px(mid + off), "sz": sz, "n": n} for off, (sz, n) in zip(shape.ask_offsets, shape.ask_sizes)]
            self._book = (self.n, bids, asks)
        return self._book[1], self._book[2]

    def trades(self, users: tuple[str, ...] = DEFAULT_USERS) -> list[dict[str, Any]]:
        """This tick's trades: market orders taking liquidity at the touch or a level or two deeper."""
        if self._trades is None or self._trades[0] != self.n:
            bids, asks = self.book()
            out = []
            decimals = self.spec.sz_decimals
            for side_draw, depth_draw, size_draw, who_draw, bits in self._trade_draws:
                side = "A" if side_draw < 0.5 else "B"  # A: a seller hits bids; B: a buyer lifts asks
                level = (bids if side == "A" else asks)[(0, 0, 0, 1, 2)[int(depth_draw * 5)]]
                sz = fmt_sz(max(float(level["sz"]) * (0.05 + 0.95 * size_draw), 10.0**-decimals), decimals)
                self.tid += 1 + int(size_draw * 1000)
                hash_ = "0x" + bits.to_bytes(32, "big").hex()
                taker = users[int(who_draw * len(users))]
                maker = MAKERS[(bits >> 8) % len(MAKERS)]
                buyer, seller = (taker, maker) if side == "B" else (maker, taker)
                self.day_ntl += float(sz) * float(level["px"])
                self.day_base += float(sz)
                out.append(
                    {
                        "coin": self.spec.name,
                        "side": side,
                        "px": level["px"],
                        "sz": sz,
                        "time": self.time_ms,
                        "hash": hash_,
                        "tid": self.tid,
                        "users": [buyer, seller],
                    }
                )
            self._trades = (self.n, out)
        return self._trades[1]


def _book_shapes(spec: CoinSpec, seed: int) -> list[_BookShape]:
    rng = random.Random(_seed(seed, spec.name, "shapes"))
    unit = 20_000.0 / max(spec.start_px, 1e-9) / 10

    def side(first: int) -> tuple[tuple[int, ...], tuple[tuple[str, int], ...]]:
        offsets, sizes, offset = [], [], first
        for _ in range(LEVELS):
            offsets.append(offset)
            size = max(10.0**-spec.sz_decimals, rng.lognormvariate(0, 1) * unit)
            sizes.append((fmt_sz(size, spec.sz_decimals), rng.randint(1, 6)))
            offset += rng.randint(1, 3)
        return tuple(offsets), tuple(sizes)

    shapes = []
    for _ in range(_SHAPES):
        bid_offsets, bid_sizes = side(0)
        ask_offsets, ask_sizes = side(1)
        shapes.append(_BookShape(bid_offsets, ask_offsets, bid_sizes, ask_sizes))
    return shapes


class SyntheticMarket:
    """The simulator's message source: a frame generator per subscription, from a shared seed.

    ``frames(sub)`` walks a private market from the first tick (tests, load runs). Bound to a
    server's clock (``bind_clock``), streams instead join the one shared market at the current tick
    (``live_frames``) and ``/info`` answers read the same ticks (``info``).
    """

    intervals_ms = INTERVAL_MS

    def __init__(
        self,
        seed: int = 0,
        coins: dict[str, CoinSpec] | list[str] | None = None,
        *,
        start_ms: int = 1_767_225_600_000,  # 2026-01-01T00:00:00Z
        tick_ms: int = 100,
        balance: float = 100_000.0,
        list_every_s: float | None = None,
    ) -> None:
        self.seed = seed
        self.list_every_s = list_every_s  # a new market (perp NEW<k>, spot @<300+k>, by turns) this often
        self.listed = 0
        self.delisted: set[str] = set()
        if coins is None:
            self.coins = dict(DEFAULT_COINS)
        elif isinstance(coins, dict):
            self.coins = coins
        else:
            self.coins = {c: DEFAULT_COINS.get(c) or _guess_spec(c) for c in coins}
        self.start_ms = start_ms
        self.tick_ms = tick_ms
        self.balance = balance  # USDC every address holds: the SDK examples check for equity
        self.timeline = Timeline(self)
        self.clock: MarketClock | None = None

    def market(self, coin: str) -> CoinMarket:
        return CoinMarket(self.coins[coin], self.seed, self.start_ms, self.tick_ms)

    def list_due(self, now_ns: int) -> None:
        """List the markets whose time has come (``list_every_s``): in meta, /info and streams from then on."""
        if not self.list_every_s:
            return
        due = int((now_ns - self._clock(now_ns).started_ns) / 1e9 / self.list_every_s)
        while self.listed < due:
            self.listed += 1
            coin = f"NEW{self.listed}" if self.listed % 2 else f"@{300 + self.listed}"
            self.coins[coin] = _guess_spec(coin)

    def delist(self, coin: str) -> None:
        """Mark ``coin`` delisted (``isDelisted`` in meta); its streams go on, as the exchange's wind down."""
        self.delisted.add(coin)

    def check(self, sub: Subscription) -> str | None:
        """``None`` when this source serves ``sub``; otherwise the sentence of the server's error."""
        if not sub.known:
            return f"Invalid subscription {sub}"
        if sub.coin is not None and sub.coin not in self.coins:
            return f"Invalid subscription {sub}: unknown coin {sub.coin!r}"
        return None

    # --- clock ------------------------------------------------------------------------------------

    def bind_clock(self, started_ns: int, rate: float | None) -> MarketClock:
        """Tie tick 0 to ``started_ns`` and run ``rate`` ticks a second (None: real time, one tick a ``tick_ms``)."""
        self.clock = MarketClock(started_ns, self.start_ms, self.tick_ms, rate or 1000.0 / self.tick_ms)
        return self.clock

    def _clock(self, now_ns: int) -> MarketClock:
        return self.clock or self.bind_clock(now_ns, None)

    def tick_at(self, now_ns: int) -> int:
        return self._clock(now_ns).tick_at(now_ns)

    def paper_clock_ns(self, now_ns: int) -> int:
        """The exchange time of the current tick: when a paper action applies."""
        clock = self._clock(now_ns)
        return clock.time_ms(clock.tick_at(now_ns)) * 1_000_000

    def live_frames(self, sub: Subscription, now_ns: int) -> Iterator[tuple[float, dict[str, Any]]]:
        """``(seconds from now the frame is due, frame)``: the stream joins the shared market at the
        current tick (books and contexts show it at once; trades and user activity from the next)."""
        clock = self._clock(now_ns)
        n = clock.tick_at(now_ns)
        for tick, frame in self.ticked(sub, n):
            yield max(0.0, (clock.due_ns(tick) - now_ns) / 1e9), frame

    def info(self, request: dict[str, Any], now_ns: int, clock_start_ns: int | None = None) -> Any:
        from .synthetic_info import answer

        self.list_due(now_ns)
        return answer(self, request, self.tick_at(now_ns))

    # --- frames -----------------------------------------------------------------------------------

    def frames(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        """The frames of one subscription, forever, from the first tick: its snapshot first where Hyperliquid sends one."""
        return (frame for _, frame in self.ticked(sub, None))

    def ticked(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(tick, frame)`` from tick ``start`` of the shared market (None: a private market from the first tick)."""
        maker = getattr(self, f"_frames_{sub.type}", None)
        if maker is None:
            return iter(())
        return maker(sub, start)

    def _ticks_all(self, coins: list[str], start: int | None) -> Iterator[list[CoinMarket]]:
        """The markets of ``coins`` tick by tick: from tick ``start`` of the shared market (yielded as
        it stands, then walked on privately), or from a private first tick when ``start`` is None."""
        if start is None:
            markets = [self.market(c) for c in coins]
        else:
            markets = [self.timeline.market_at(c, start) for c in coins]
            yield markets
        while True:
            for m in markets:
                m.advance()
            yield markets

    def _ticks(self, coin: str, start: int | None = None) -> Iterator[CoinMarket]:
        for markets in self._ticks_all([coin], start):
            yield markets[0]

    # --- market data ----------------------------------------------------------------------------

    def _frames_l2Book(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.coin is not None
        for m in self._ticks(sub.coin, start):
            yield m.n, {"channel": "l2Book", "data": l2_book(m, sub.n_sig_figs)}

    def _frames_bbo(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.coin is not None
        for m in self._ticks(sub.coin, start):
            bids, asks = m.book()
            yield m.n, {"channel": "bbo", "data": {"coin": sub.coin, "time": m.time_ms, "bbo": [bids[0], asks[0]]}}

    def _frames_trades(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.coin is not None
        for m in self._ticks(sub.coin, start):
            trades = m.trades()
            if trades and m.n != start:  # the trades of tick `start` printed before the subscription
                yield m.n, {"channel": "trades", "data": trades}

    def _frames_allMids(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        for markets in self._ticks_all(list(self.coins), start):
            yield markets[0].n, {"channel": "allMids", "data": {"mids": all_mids(markets)}}

    def _frames_candle(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.coin is not None and sub.interval in CANDLE_INTERVALS
        span = INTERVAL_MS[sub.interval]
        candle: dict[str, Any] | None = None
        if start is not None:  # the open candle as the shared market has it, with every trade of its interval so far
            candle = self.timeline.open_candle(sub.coin, sub.interval, start)
        for m in self._ticks(sub.coin, start):
            if m.n != start:
                candle = fold_candle(candle, m.trades(), sub.coin, sub.interval, span, m.time_ms, m.spec.sz_decimals)
            if candle is not None:
                yield m.n, {"channel": "candle", "data": dict(candle)}

    def _frames_activeAssetCtx(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.coin is not None
        spot = is_spot_coin(sub.coin)
        for m in self._ticks(sub.coin, start):
            m.trades()
            if spot:
                yield m.n, {"channel": "activeSpotAssetCtx", "data": {"coin": sub.coin, "ctx": spot_ctx(m)}}
            else:
                yield m.n, {"channel": "activeAssetCtx", "data": {"coin": sub.coin, "ctx": perp_ctx(m, self.seed)}}

    # --- user streams -----------------------------------------------------------------------------

    def _user_fills(self, user: str, start: int | None) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
        """``(tick, time_ms, fills)`` per tick for ``user``: a fill now and then, on the coins' own books.
        A tick's draws are seeded by the tick, so a stream that joins later sees the same fills."""
        position: dict[str, float] = {}
        for markets in self._ticks_all(list(self.coins), start):
            n = markets[0].n
            yield n, markets[0].time_ms, user_fills_at(self.seed, user, n, markets, position)

    def _frames_userFills(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.user is not None
        history: list[dict[str, Any]] = []
        activity = self._user_fills(sub.user, None if start is None else max(0, start - 60))
        n = 0
        while len(history) < 3 or (start is not None and n < start):
            n, _, fills = next(activity)
            history.extend(fills)
        yield n, {"channel": "userFills", "data": {"isSnapshot": True, "user": sub.user, "fills": history[-2000:]}}
        for n, _, fills in activity:
            if fills:
                yield n, {"channel": "userFills", "data": {"user": sub.user, "fills": fills}}

    def _frames_userEvents(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.user is not None
        coins = list(self.coins)
        for n, time_ms, fills in self._user_fills(sub.user, start):
            rng = random.Random(_seed(self.seed, sub.user.lower(), "events", n))
            if fills:
                yield n, {"channel": "user", "data": {"fills": fills}}
            elif rng.random() < 0.02:
                yield n, {"channel": "user", "data": {"funding": _funding(rng, time_ms, rng.choice(coins))}}
            elif rng.random() < 0.01:
                yield n, {"channel": "user", "data": {"nonUserCancel": [{"coin": rng.choice(coins), "oid": rng.randint(1, 10**11)}]}}

    def _frames_orderUpdates(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.user is not None
        for n, time_ms, fills in self._user_fills(sub.user, start):
            for fill in fills:
                order = order_of_fill(fill)
                yield n, {"channel": "orderUpdates", "data": [{"order": {**order, "sz": fill["sz"]}, "status": "open", "statusTimestamp": time_ms - 50}]}
                yield n, {"channel": "orderUpdates", "data": [{"order": order, "status": "filled", "statusTimestamp": time_ms}]}

    def _timed_user_stream(self, sub: Subscription, start: int | None, name: str, make: Any, every: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """A per-user stream with an ``isSnapshot`` first frame, then an item every ``every`` ticks."""
        assert sub.user is not None
        rng = random.Random(_seed(self.seed, sub.user.lower(), name))
        first = next(iter(self.coins))
        market = self.market(first) if start is None else self.timeline.market_at(first, start)
        snapshot = [make(rng, market.time_ms - (i + 1) * 3_600_000) for i in range(3)]
        yield market.n, {"channel": sub.channel, "data": {"isSnapshot": True, "user": sub.user, name: snapshot}}
        while True:
            for _ in range(every):
                market.advance()
            yield market.n, {"channel": sub.channel, "data": {"user": sub.user, name: [make(rng, market.time_ms)]}}

    def _frames_userFundings(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        coins = list(self.coins)
        return self._timed_user_stream(sub, start, "fundings", lambda rng, t: _funding(rng, t, rng.choice(coins)), 10)

    def _frames_userNonFundingLedgerUpdates(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        def update(rng: random.Random, t: int) -> dict[str, Any]:
            kind = rng.choice(("deposit", "withdraw", "accountClassTransfer"))
            if kind == "accountClassTransfer":
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2), "toPerp": rng.random() < 0.5}
            elif kind == "withdraw":
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2), "nonce": t, "fee": "1.0"}
            else:
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2)}
            return {"time": t, "hash": _hex(rng, 32), "delta": delta}

        return self._timed_user_stream(sub, start, "nonFundingLedgerUpdates", update, 20)

    def _frames_userTwapSliceFills(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        fills = (f for _, _, batch in self._user_fills(sub.user or "", start) for f in batch)

        def slice_fill(rng: random.Random, t: int) -> dict[str, Any]:
            # TWAP slices carry a zero hash, as in the real frames
            return {"fill": {**next(fills), "time": t, "hash": "0x" + "0" * 64}, "twapId": rng.randint(1, 3_000_000)}

        return self._timed_user_stream(sub, start, "twapSliceFills", slice_fill, 30)

    def _frames_userTwapHistory(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        def entry(rng: random.Random, t: int) -> dict[str, Any]:
            coin = rng.choice(list(self.coins))
            sz = fmt(rng.uniform(1, 500), 1)
            state = {
                "coin": coin,
                "user": sub.user,
                "side": rng.choice(("A", "B")),
                "sz": sz,
                "executedSz": "0.0",
                "executedNtl": "0.0",
                "minutes": rng.choice((30, 60, 90, 240)),
                "reduceOnly": False,
                "randomize": rng.random() < 0.5,
                "timestamp": t,
                "trigger": None,
                "stopPx": None,
            }
            return {"time": t // 1000, "state": state, "status": {"status": "activated"}, "twapId": rng.randint(1, 3_000_000)}

        return self._timed_user_stream(sub, start, "history", entry, 50)

    def _frames_activeAssetData(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.coin is not None and sub.user is not None
        for m in self._ticks(sub.coin, start):
            size = fmt_sz(100_000 / max(m.mid, 1e-9), m.spec.sz_decimals)
            yield m.n, {
                "channel": "activeAssetData",
                "data": {
                    "user": sub.user,
                    "coin": sub.coin,
                    "leverage": {"type": "cross", "value": min(20, m.spec.max_leverage or 20)},
                    "maxTradeSzs": [size, size],
                    "availableToTrade": [size, size],
                    "markPx": m.px(m.mid_ticks),
                },
            }

    def _frames_webData2(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        assert sub.user is not None
        from .info import clearinghouse_state, spot_clearinghouse_state

        for markets in self._ticks_all([c for c in self.coins if not is_spot_coin(c)], start):
            yield markets[0].n, {
                "channel": "webData2",
                "data": {
                    "clearinghouseState": clearinghouse_state(self.balance, markets[0].time_ms),
                    "leadingVaults": [],
                    "totalVaultEquity": "0.0",
                    "openOrders": [],
                    "agentAddress": None,
                    "agentValidUntil": None,
                    "cumLedger": fmt(self.balance, 1),
                    "meta": {"universe": [{"name": m.spec.name, "szDecimals": m.spec.sz_decimals, "maxLeverage": m.spec.max_leverage} for m in markets]},
                    "assetCtxs": [{"markPx": m.px(m.mid_ticks), "midPx": _mid_text(m)} for m in markets],
                    "serverTime": markets[0].time_ms,
                    "isVault": False,
                    "user": sub.user,
                    "twapStates": [],
                    "spotState": spot_clearinghouse_state({}, {}),
                },
            }

    def _frames_notification(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        first = next(iter(self.coins))
        market = self.market(first) if start is None else self.timeline.market_at(first, start)
        while True:
            for _ in range(20):
                market.advance()
            yield market.n, {"channel": "notification", "data": {"notification": f"Synthetic notice at {market.time_ms}"}}


# --- what streams and /info answers share -----------------------------------------------------------


def l2_book(m: CoinMarket, n_sig_figs: int | None = None) -> dict[str, Any]:
    """The ``l2Book`` data of the market's current tick, aggregated to ``n_sig_figs`` if given."""
    bids, asks = m.book()
    if n_sig_figs is not None:
        bids, asks = _aggregate(bids, n_sig_figs, ask=False), _aggregate(asks, n_sig_figs, ask=True)
    return {"coin": m.spec.name, "time": m.time_ms, "levels": [bids, asks]}


def all_mids(markets: list[CoinMarket]) -> dict[str, str]:
    return {m.spec.name: _mid_text(m) for m in markets}


def hour_of(time_ms: int) -> int:
    return time_ms // 3_600_000


def funding_rate(seed: int, coin: str, hour: int) -> str:
    """The funding rate paid at the start of ``hour`` (the asset context shows it during the hour before)."""
    return fmt(random.Random(_seed(seed, coin, "funding", hour)).uniform(-0.00005, 0.00005), 10)


def perp_ctx(m: CoinMarket, seed: int) -> dict[str, Any]:
    """A perp's asset context at the market's tick (``activeAssetCtx``, ``metaAndAssetCtxs``)."""
    bids, asks = m.book()
    rng = random.Random(_seed(seed, m.spec.name, "ctx", m.n))
    return {
        "funding": funding_rate(seed, m.spec.name, hour_of(m.time_ms) + 1),
        "openInterest": fmt(10_000 + m.n * 0.5, 5),
        "prevDayPx": m.px(round(m.spec.start_px / m.spec.tick)),
        "dayNtlVlm": fmt(m.day_ntl, 4),
        "premium": fmt(rng.uniform(-0.001, 0.001), 10),
        "oraclePx": fmt(m.mid * (1 + rng.uniform(-0.0005, 0.0005)), m.spec.px_decimals),
        "markPx": m.px(m.mid_ticks),
        "midPx": _mid_text(m),
        "impactPxs": [bids[1]["px"], asks[1]["px"]],
        "dayBaseVlm": fmt(m.day_base, 5),
    }


def spot_ctx(m: CoinMarket) -> dict[str, Any]:
    return {
        "dayNtlVlm": fmt(m.day_ntl, 4),
        "markPx": m.px(m.mid_ticks),
        "midPx": _mid_text(m),
        "prevDayPx": m.px(round(m.spec.start_px / m.spec.tick)),
        "circulatingSupply": "999999999.0",
        "coin": m.spec.name,
        "totalSupply": "1000000000.0",
        "dayBaseVlm": fmt(m.day_base, 2),
    }


def order_of_fill(fill: dict[str, Any]) -> dict[str, Any]:
    """The (filled) order behind a synthetic fill, placed 50 ms before it: orderUpdates and orderStatus."""
    return {
        "coin": fill["coin"],
        "side": fill["side"],
        "limitPx": fill["px"],
        "sz": "0.0",
        "oid": fill["oid"],
        "timestamp": fill["time"] - 50,
        "origSz": fill["sz"],
    }


def user_fills_at(seed: int, user: str, n: int, markets: list[CoinMarket], position: dict[str, float]) -> list[dict[str, Any]]:
    """The synthetic fills of ``user`` at tick ``n`` (markets at that tick); ``position`` is carried along."""
    rng = random.Random(_seed(seed, user.lower(), "fills", n))
    if rng.random() >= 0.3:
        return []
    m = markets[int(rng.random() * len(markets))]
    bids, asks = m.book()
    side = "A" if rng.random() < 0.5 else "B"
    level = (bids if side == "A" else asks)[0]
    sz_val = max(10 ** -m.spec.sz_decimals, float(level["sz"]) * rng.uniform(0.01, 0.2))
    sz = fmt_sz(sz_val, m.spec.sz_decimals)
    start = position.get(m.spec.name, 0.0)
    delta = float(sz) if side == "B" else -float(sz)
    position[m.spec.name] = start + delta
    oid = _seed(seed, user.lower(), "oid", n) % 10**11
    tid = _seed(seed, user.lower(), "tid", n) % 10**14
    direction = ("Open Long" if start >= 0 else "Close Short") if side == "B" else ("Open Short" if start <= 0 else "Close Long")
    return [
        {
            "coin": m.spec.name,
            "px": level["px"],
            "sz": sz,
            "side": side,
            "time": m.time_ms,
            "startPosition": fmt_sz(start, m.spec.sz_decimals) if start else "0.0",
            "dir": direction,
            "closedPnl": "0.0",
            "hash": _hex(rng, 32),
            "oid": oid,
            "crossed": rng.random() < 0.7,
            "fee": fmt(float(sz) * float(level["px"]) * 0.00045, 6),
            "tid": tid,
            "feeToken": "USDC",
            "twapId": None,
        }
    ]


def _funding(rng: random.Random, time_ms: int, coin: str) -> dict[str, Any]:
    return {
        "time": time_ms,
        "coin": coin,
        "usdc": fmt(rng.uniform(-5, 5), 6),
        "szi": fmt(rng.uniform(-2, 2), 4),
        "fundingRate": fmt(rng.uniform(-0.0001, 0.0001), 10),
    }


def _mid_text(m: CoinMarket) -> str:
    """The mid between the touch (best bid at ``mid_ticks``, best ask one tick up)."""
    return fmt(m.mid, m.spec.px_decimals + 1)


def _aggregate(levels: list[dict[str, Any]], n_sig_figs: int, *, ask: bool) -> list[dict[str, Any]]:
    """Merge levels into buckets of ``n_sig_figs`` significant figures: bids round down, asks up."""
    merged: dict[str, dict[str, Any]] = {}
    for level in levels:
        px = float(level["px"])
        exponent = math.floor(math.log10(px)) - n_sig_figs + 1 if px > 0 else 0
        bucket = 10.0**exponent
        edge = (math.ceil if ask else math.floor)(px / bucket - (1e-9 if ask else -1e-9)) * bucket
        key = fmt(edge, max(0, -exponent))
        if key in merged:
            m = merged[key]
            merged[key] = {"px": key, "sz": fmt_sz(float(m["sz"]) + float(level["sz"]), 6), "n": m["n"] + level["n"]}
        else:
            merged[key] = {"px": key, "sz": level["sz"], "n": level["n"]}
    return list(merged.values())


def _guess_spec(coin: str) -> CoinSpec:
    rng = random.Random(_seed(coin))
    return CoinSpec(coin, round(rng.uniform(1, 100), 2), 0.01, 2, 2, 0 if is_spot_coin(coin) else 10)
