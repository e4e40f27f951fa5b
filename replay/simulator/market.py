"""A synthetic Hyperliquid market, deterministic for a seed: the simulator's message source.

Every coin's market advances in ticks of ``tick_ms`` market time. Its mid follows a random walk;
the order book of tick ``n`` and the trades that walk it are drawn from generators seeded by
``(seed, coin, n)``, so every subscription that looks at tick ``n`` of a coin sees the same book:
l2Book, bbo, allMids, trades, candles and asset contexts agree with each other, and the same seed
gives the same frames however the subscriptions interleave. Field names, types and nesting follow
the real frames in ``tests/fixtures``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from schemas.candles import INTERVAL_MS, fold_candle
from schemas.info import clearinghouse_state, spot_clearinghouse_state
from schemas.subscriptions import CANDLE_INTERVALS, Subscription, is_spot_coin

from .coins import DEFAULT_COINS, CoinMarket, CoinSpec, fmt, fmt_sz, guess_spec, random_hex, seed_of
from .l4shared import Tapes
from .l4tape import L4Tape, snapshot_frame, updates_frame
from .payloads import all_mids, funding_event, l2_book, mid_text, order_of_fill, perp_ctx, spot_ctx, user_fills_at
from .timeline import MarketClock, Timeline


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
            self.coins = {c: DEFAULT_COINS.get(c) or guess_spec(c) for c in coins}
        self.start_ms = start_ms
        self.tick_ms = tick_ms
        self.balance = balance  # USDC every address holds: the SDK examples check for equity
        self.timeline = Timeline(self.market, self.intervals_ms)
        self.clock: MarketClock | None = None
        self.tapes = Tapes(seed, self.timeline.market_at)  # the orders behind each coin's book

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
            self.coins[coin] = guess_spec(coin)

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

    def _frames_l4Book(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        """The book server's stream: the whole book, then one frame a block with the coin's changes."""
        assert sub.coin is not None
        decimals = self.coins[sub.coin].sz_decimals
        if start is None:  # a private market and tape from the first tick
            tape = L4Tape(sub.coin, self.seed)
            ticks = self._ticks(sub.coin, None)
            first = next(ticks)
            first.trades()
            tape.step(first)
            yield first.n, snapshot_frame(tape.snapshot(decimals))
            for m in ticks:
                yield m.n, updates_frame(tape.step(m))
        with self.tapes.lock:
            shared = self.tapes.get(sub.coin, start)
            shared.advance_to(start)
            n = shared.market.n  # the tape may be ahead (another reader walked it): join it there
            snapshot = snapshot_frame(shared.tape.snapshot(decimals))
        yield n, snapshot
        while True:
            n += 1
            with self.tapes.lock:
                block = shared.block(n)
            yield n, updates_frame(block)

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
            rng = random.Random(seed_of(self.seed, sub.user.lower(), "events", n))
            if fills:
                yield n, {"channel": "user", "data": {"fills": fills}}
            elif rng.random() < 0.02:
                yield n, {"channel": "user", "data": {"funding": funding_event(rng, time_ms, rng.choice(coins))}}
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
        rng = random.Random(seed_of(self.seed, sub.user.lower(), name))
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
        return self._timed_user_stream(sub, start, "fundings", lambda rng, t: funding_event(rng, t, rng.choice(coins)), 10)

    def _frames_userNonFundingLedgerUpdates(self, sub: Subscription, start: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
        def update(rng: random.Random, t: int) -> dict[str, Any]:
            kind = rng.choice(("deposit", "withdraw", "accountClassTransfer"))
            if kind == "accountClassTransfer":
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2), "toPerp": rng.random() < 0.5}
            elif kind == "withdraw":
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2), "nonce": t, "fee": "1.0"}
            else:
                delta = {"type": kind, "usdc": fmt(rng.uniform(1, 1000), 2)}
            return {"time": t, "hash": random_hex(rng, 32), "delta": delta}

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
                    "assetCtxs": [{"markPx": m.px(m.mid_ticks), "midPx": mid_text(m)} for m in markets],
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



