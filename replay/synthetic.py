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
from dataclasses import dataclass
from typing import Any, Iterator

from schemas.subscriptions import CANDLE_INTERVALS, Subscription, is_spot_coin


@dataclass(frozen=True)
class CoinSpec:
    name: str
    start_px: float
    tick: float  # price increment
    px_decimals: int
    sz_decimals: int


DEFAULT_COINS: dict[str, CoinSpec] = {
    c.name: c
    for c in (
        CoinSpec("BTC", 98_450.0, 1.0, 1, 5),
        CoinSpec("ETH", 2_296.4, 0.1, 1, 4),
        CoinSpec("SOL", 94.87, 0.01, 2, 2),
        CoinSpec("kPEPE", 0.012345, 0.000001, 6, 0),
        CoinSpec("xyz:HOOD", 91.25, 0.01, 2, 3),
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
    text = f"{value:.{decimals}f}" if decimals else f"{round(value)}"
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text += "0"
    else:
        text += ".0"
    return text


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
    """The simulator's message source: a frame generator per subscription, from a shared seed."""

    def __init__(
        self,
        seed: int = 0,
        coins: dict[str, CoinSpec] | list[str] | None = None,
        *,
        start_ms: int = 1_767_225_600_000,  # 2026-01-01T00:00:00Z
        tick_ms: int = 100,
    ) -> None:
        self.seed = seed
        if coins is None:
            self.coins = dict(DEFAULT_COINS)
        elif isinstance(coins, dict):
            self.coins = coins
        else:
            self.coins = {c: DEFAULT_COINS.get(c) or _guess_spec(c) for c in coins}
        self.start_ms = start_ms
        self.tick_ms = tick_ms

    def market(self, coin: str) -> CoinMarket:
        return CoinMarket(self.coins[coin], self.seed, self.start_ms, self.tick_ms)

    def check(self, sub: Subscription) -> str | None:
        """``None`` when this source serves ``sub``; otherwise the sentence of the server's error."""
        if not sub.known:
            return f"Invalid subscription {sub}"
        if sub.coin is not None and sub.coin not in self.coins:
            return f"Invalid subscription {sub}: unknown coin {sub.coin!r}"
        return None

    def frames(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        """The frames of one subscription, forever: its snapshot first where Hyperliquid sends one."""
        maker = getattr(self, f"_frames_{sub.type}", None)
        if maker is None:
            return iter(())
        return maker(sub)

    # --- market data ----------------------------------------------------------------------------

    def _ticks(self, coin: str) -> Iterator[CoinMarket]:
        market = self.market(coin)
        while True:
            market.advance()
            yield market

    def _frames_l2Book(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.coin is not None
        for m in self._ticks(sub.coin):
            bids, asks = m.book()
            if sub.n_sig_figs is not None:
                bids, asks = _aggregate(bids, sub.n_sig_figs, ask=False), _aggregate(asks, sub.n_sig_figs, ask=True)
            levels = [bids, asks]
            yield {"channel": "l2Book", "data": {"coin": sub.coin, "time": m.time_ms, "levels": levels}}

    def _frames_bbo(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.coin is not None
        for m in self._ticks(sub.coin):
            bids, asks = m.book()
            yield {"channel": "bbo", "data": {"coin": sub.coin, "time": m.time_ms, "bbo": [bids[0], asks[0]]}}

    def _frames_trades(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.coin is not None
        for m in self._ticks(sub.coin):
            trades = m.trades()
            if trades:
                yield {"channel": "trades", "data": trades}

    def _frames_allMids(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        markets = [self.market(c) for c in self.coins]
        while True:
            for m in markets:
                m.advance()
            mids = {m.spec.name: _mid_text(m) for m in markets}
            yield {"channel": "allMids", "data": {"mids": mids}}

    def _frames_candle(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.coin is not None and sub.interval in CANDLE_INTERVALS
        span = INTERVAL_MS[sub.interval]
        candle: dict[str, Any] | None = None
        for m in self._ticks(sub.coin):
            t = m.time_ms - m.time_ms % span
            if candle is not None and candle["t"] != t:
                candle = None  # a candle opens with the first trade of its interval
            for trade in m.trades():
                if candle is None:
                    px = trade["px"]
                    candle = {"t": t, "T": t + span - 1, "s": sub.coin, "i": sub.interval, "o": px, "c": px, "h": px, "l": px, "v": "0.0", "n": 0}
                px = float(trade["px"])
                candle["c"] = trade["px"]
                if px > float(candle["h"]):
                    candle["h"] = trade["px"]
                if px < float(candle["l"]):
                    candle["l"] = trade["px"]
                candle["v"] = fmt_sz(float(candle["v"]) + float(trade["sz"]), m.spec.sz_decimals)
                candle["n"] += 1
            if candle is not None:
                yield {"channel": "candle", "data": dict(candle)}

    def _frames_activeAssetCtx(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.coin is not None
        prev_day = None
        for m in self._ticks(sub.coin):
            m.trades()
            d = m.spec.px_decimals
            prev_day = prev_day or m.px(m.mid_ticks)
            bids, asks = m.book()
            if is_spot_coin(sub.coin):
                ctx = {
                    "dayNtlVlm": fmt(m.day_ntl, 4),
                    "markPx": m.px(m.mid_ticks),
                    "midPx": _mid_text(m),
                    "prevDayPx": prev_day,
                    "circulatingSupply": "999999999.0",
                    "coin": sub.coin,
                    "totalSupply": "1000000000.0",
                    "dayBaseVlm": fmt(m.day_base, 2),
                }
                yield {"channel": "activeSpotAssetCtx", "data": {"coin": sub.coin, "ctx": ctx}}
                continue
            rng = random.Random(_seed(self.seed, sub.coin, "ctx", m.n))
            ctx = {
                "funding": fmt(rng.uniform(-0.00005, 0.00005), 10),
                "openInterest": fmt(10_000 + m.n * 0.5, 5),
                "prevDayPx": prev_day,
                "dayNtlVlm": fmt(m.day_ntl, 4),
                "premium": fmt(rng.uniform(-0.001, 0.001), 10),
                "oraclePx": fmt(m.mid * (1 + rng.uniform(-0.0005, 0.0005)), d),
                "markPx": m.px(m.mid_ticks),
                "midPx": _mid_text(m),
                "impactPxs": [bids[1]["px"], asks[1]["px"]],
                "dayBaseVlm": fmt(m.day_base, 5),
            }
            yield {"channel": "activeAssetCtx", "data": {"coin": sub.coin, "ctx": ctx}}

    # --- user streams -----------------------------------------------------------------------------

    def _user_fills(self, user: str) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """``(time_ms, fills)`` per tick for ``user``: a fill now and then, on the coins' own books."""
        rng = random.Random(_seed(self.seed, user.lower(), "fills"))
        markets = [self.market(c) for c in self.coins]
        position: dict[str, float] = {}
        oid = _seed(self.seed, user, "oid") % 10**11
        tid = _seed(self.seed, user, "tid") % 10**14
        while True:
            fills = []
            for m in markets:
                m.advance()
            if rng.random() < 0.3:
                m = rng.choice(markets)
                bids, asks = m.book()
                side = rng.choice(("A", "B"))
                level = (bids if side == "A" else asks)[0]
                sz_val = max(10 ** -m.spec.sz_decimals, float(level["sz"]) * rng.uniform(0.01, 0.2))
                sz = fmt_sz(sz_val, m.spec.sz_decimals)
                start = position.get(m.spec.name, 0.0)
                delta = float(sz) if side == "B" else -float(sz)
                position[m.spec.name] = start + delta
                oid += rng.randint(1, 50)
                tid += rng.randint(1, 10_000)
                direction = ("Open Long" if start >= 0 else "Close Short") if side == "B" else ("Open Short" if start <= 0 else "Close Long")
                fills.append(
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
                        "fee": fmt(float(sz) * float(level["px"]) * 0.00035, 6),
                        "tid": tid,
                        "feeToken": "USDC",
                        "twapId": None,
                    }
                )
            yield markets[0].time_ms, fills

    def _frames_userFills(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.user is not None
        history: list[dict[str, Any]] = []
        activity = self._user_fills(sub.user)
        while len(history) < 3:
            history.extend(next(activity)[1])
        yield {"channel": "userFills", "data": {"isSnapshot": True, "user": sub.user, "fills": history}}
        for _, fills in activity:
            if fills:
                yield {"channel": "userFills", "data": {"user": sub.user, "fills": fills}}

    def _frames_userEvents(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.user is not None
        rng = random.Random(_seed(self.seed, sub.user.lower(), "events"))
        for time_ms, fills in self._user_fills(sub.user):
            if fills:
                yield {"channel": "user", "data": {"fills": fills}}
            elif rng.random() < 0.02:
                yield {"channel": "user", "data": {"funding": _funding(rng, time_ms, rng.choice(list(self.coins)))}}
            elif rng.random() < 0.01:
                yield {"channel": "user", "data": {"nonUserCancel": [{"coin": rng.choice(list(self.coins)), "oid": rng.randint(1, 10**11)}]}}

    def _frames_orderUpdates(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.user is not None
        for time_ms, fills in self._user_fills(sub.user):
            for fill in fills:
                order = {
                    "coin": fill["coin"],
                    "side": fill["side"],
                    "limitPx": fill["px"],
                    "sz": "0.0",
                    "oid": fill["oid"],
                    "timestamp": time_ms - 50,
                    "origSz": fill["sz"],
                }
                yield {"channel": "orderUpdates", "data": [{"order": {**order, "sz": fill["sz"]}, "status": "open", "statusTimestamp": time_ms - 50}]}
                yield {"channel": "orderUpdates", "data": [{"order": order, "status": "filled", "statusTimestamp": time_ms}]}

    def _timed_user_stream(self, sub: Subscription, name: str, make: Any, every: int) -> Iterator[dict[str, Any]]:
        """A per-user stream with an ``isSnapshot`` first frame, then an item every ``every`` ticks."""
        assert sub.user is not None
        rng = random.Random(_seed(self.seed, sub.user.lower(), name))
        market = self.market(next(iter(self.coins)))
        snapshot = [make(rng, market.time_ms - (i + 1) * 3_600_000) for i in range(3)]
        yield {"channel": sub.channel, "data": {"isSnapshot": True, "user": sub.user, name: snapshot}}
        while True:
            for _ in range(every):
                market.advance()
            yield {"channel": sub.channel, "data": {"user": sub.user, name: [make(rng, market.time_ms)]}}

    def _frames_userFundings(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        coins = list(self.coins)
        return self._timed_user_stream(sub, "fundings", lambda rng, t: _funding(rng, t, rng.choice(coins)), 10)

    def _frames_userNonFundingLedgerUpdates(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        def update(rng: random.Random, t: int) -> dict[str, Any]:
            kind = rng.choice(("deposit", "withdraw", "accountClassTransfer"))
            if kind == "accountClassTransfer":
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2), "toPerp": rng.random() < 0.5}
            elif kind == "withdraw":
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2), "nonce": t, "fee": "1.0"}
            else:
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2)}
            return {"time": t, "hash": _hex(rng, 32), "delta": delta}

        return self._timed_user_stream(sub, "nonFundingLedgerUpdates", update, 20)

    def _frames_userTwapSliceFills(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        fills = (f for _, batch in self._user_fills(sub.user or "") for f in batch)

        def slice_fill(rng: random.Random, t: int) -> dict[str, Any]:
            # TWAP slices carry a zero hash, as in the real frames
            return {"fill": {**next(fills), "time": t, "hash": "0x" + "0" * 64}, "twapId": rng.randint(1, 3_000_000)}

        return self._timed_user_stream(sub, "twapSliceFills", slice_fill, 30)

    def _frames_userTwapHistory(self, sub: Subscription) -> Iterator[dict[str, Any]]:
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

        return self._timed_user_stream(sub, "history", entry, 50)

    def _frames_activeAssetData(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.coin is not None and sub.user is not None
        for m in self._ticks(sub.coin):
            bids, asks = m.book()
            size = fmt_sz(100_000 / max(m.mid, 1e-9), m.spec.sz_decimals)
            yield {
                "channel": "activeAssetData",
                "data": {
                    "user": sub.user,
                    "coin": sub.coin,
                    "leverage": {"type": "cross", "value": 20},
                    "maxTradeSzs": [size, size],
                    "availableToTrade": [size, size],
                    "markPx": m.px(m.mid_ticks),
                },
            }

    def _frames_webData2(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        assert sub.user is not None
        markets = [self.market(c) for c in self.coins if not is_spot_coin(c)]
        while True:
            for m in markets:
                m.advance()
            yield {
                "channel": "webData2",
                "data": {
                    "clearinghouseState": {
                        "marginSummary": {"accountValue": "10000.0", "totalNtlPos": "0.0", "totalRawUsd": "10000.0", "totalMarginUsed": "0.0"},
                        "crossMarginSummary": {"accountValue": "10000.0", "totalNtlPos": "0.0", "totalRawUsd": "10000.0", "totalMarginUsed": "0.0"},
                        "crossMaintenanceMarginUsed": "0.0",
                        "withdrawable": "10000.0",
                        "assetPositions": [],
                        "time": markets[0].time_ms,
                    },
                    "leadingVaults": [],
                    "totalVaultEquity": "0.0",
                    "openOrders": [],
                    "agentAddress": None,
                    "agentValidUntil": None,
                    "cumLedger": "10000.0",
                    "meta": {"universe": [{"name": m.spec.name, "szDecimals": m.spec.sz_decimals, "maxLeverage": 20} for m in markets]},
                    "assetCtxs": [{"markPx": m.px(m.mid_ticks), "midPx": _mid_text(m)} for m in markets],
                    "serverTime": markets[0].time_ms,
                    "isVault": False,
                    "user": sub.user,
                    "twapStates": [],
                },
            }

    def _frames_notification(self, sub: Subscription) -> Iterator[dict[str, Any]]:
        market = self.market(next(iter(self.coins)))
        while True:
            for _ in range(100):
                market.advance()
            yield {"channel": "notification", "data": {"notification": f"Synthetic notice at {market.time_ms}"}}


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
    return CoinSpec(coin, round(rng.uniform(1, 100), 2), 0.01, 2, 2)
