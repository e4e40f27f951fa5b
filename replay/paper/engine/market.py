"""The market as the engine reads it: books, trades and contexts in time order, the clock that pays
funding and fires scheduled cancels, and the samples of the report's curves. Pure.

Paper orders never change the market they trade against: the book and the trades are the ones that
were recorded. A resting order queues behind the size at its level when it was placed; later trades
at its price eat that queue first, then fill it; trades through its price, or a book that crosses
it, fill it at its own price (as a maker)."""

from __future__ import annotations

from typing import Any

from ..assets import wire_number
from .accounts import Account, Order
from .book import Book
from .state import EPS, EngineState, round_to

SAMPLE_MS = 1_000  # the report's curves: a point a second of market time at most
HOUR_MS = 3_600_000


class MarketMixin(EngineState):
    """Frames in, fills of resting orders out."""

    def on_frame(self, frame: dict[str, Any], coin: str | None = None) -> None:
        """A market frame as the websocket sends it: ``l2Book``, ``trades``, ``activeAssetCtx`` and
        ``l4Book`` (whose ``Updates`` name no coin: give ``coin``) move the engine."""
        channel, data = frame.get("channel"), frame.get("data")
        if channel == "l4Book" and coin is not None:
            self.on_l4(coin, data)
            return
        if channel == "l2Book":
            self.on_book(data["coin"], int(data["time"]), data["levels"])
        elif channel == "trades" and data:
            self.on_trades(data)
        elif channel == "activeAssetCtx":
            ctx = data.get("ctx", {})
            funding = ctx.get("funding")
            if funding is not None:
                self.funding_rates[data["coin"]] = float(funding)
            if ctx.get("markPx") is not None:
                self.mark_px[data["coin"]] = float(ctx["markPx"])
                self.mark_text[data["coin"]] = str(ctx["markPx"])
                self._check_triggers(data["coin"])
                self._check_liquidations(data["coin"])

    def advance_time(self, time_ms: int) -> None:
        """Move the clock: funding is paid on the hour, scheduled cancels fire."""
        self.event_ms = time_ms
        if time_ms <= self.time_ms:
            return
        self.time_ms = time_ms
        hour = time_ms // HOUR_MS
        if self._hour is not None and hour > self._hour:
            self._pay_funding(hour * HOUR_MS)
        self._hour = hour
        if time_ms >= self._next_sample_ms:
            self._sample(time_ms)
        for acc in self.accounts.values():
            if acc.scheduled_cancel_ms is not None and acc.scheduled_cancel_ms <= time_ms:
                self.event_ms = acc.scheduled_cancel_ms
                acc.scheduled_cancel_ms = None
                for order in sorted([*acc.orders.values(), *acc.triggers.values()], key=lambda o: o.oid):
                    self._cancel(acc, order, "scheduledCancel")
        self.event_ms = time_ms

    def _sample(self, time_ms: int) -> None:
        """The report's curves, once a second of market time: each trading account's value, and the
        marks of the coins they trade."""
        self._next_sample_ms = time_ms - time_ms % SAMPLE_MS + SAMPLE_MS
        coins: set[str] = set()
        for acc in self.accounts.values():
            if acc.fills or acc.equity:
                acc.equity.append((time_ms, self.account_value(acc)))
                coins.update(f["coin"] for f in acc.fills[-50:])
                coins.update(c for c, p in acc.positions.items() if p.szi)
        for coin in coins:
            mark = self.trigger_mark(coin)
            if mark is not None:
                self.prices.setdefault(coin, []).append((time_ms, mark))

    def account_value(self, acc: Account) -> float:
        """USDC, the perp positions' unrealised PnL and the spot tokens at their marks."""
        value = self._account_value(acc)[0]
        for token, amount in acc.tokens.items():
            spec = next((s for s in self.assets.values() if s.spot and s.base == token), None)
            mark = self.mark(spec.coin) if spec is not None else None
            value += amount * (mark or 0.0)
        return value

    def on_book(self, coin: str, time_ms: int, levels: list[list[dict[str, Any]]]) -> None:
        self.advance_time(time_ms)
        held = self._l4_held.get(coin)
        if held is not None and held["time"] < time_ms:
            self._apply_held(coin)
        book = self.books[coin] = Book(time_ms, levels)
        buys, sells = self._resting(coin)
        best_ask, best_bid = book.best(True), book.best(False)
        if buys and best_ask is not None and best_ask <= buys[0].px:
            for order in buys:
                if order.px < best_ask:
                    break
                self._cross(order, book)
        if sells and best_bid is not None and best_bid >= sells[0].px:
            for order in sells:
                if order.px > best_bid:
                    break
                self._cross(order, book)
        self._check_triggers(coin)
        self._check_liquidations(coin)

    def on_trades(self, trades: list[dict[str, Any]]) -> None:
        for trade in trades:
            coin, px, left = trade["coin"], float(trade["px"]), float(trade["sz"])
            held = self._l4_held.get(coin)
            if held is not None and held["time"] < trade["time"]:
                self._apply_held(coin)  # a later trade: the held block's own trades have all been seen
            self.advance_time(int(trade["time"]))
            self.last_trade_px[coin] = px
            buys, sells = self._resting(coin)
            if trade["side"] == "A" or (buys and px < buys[0].px):
                left = self._trade_through(buys, px, left, trade["side"] == "A", coin)
            if trade["side"] == "B" or (sells and px > sells[0].px):
                self._trade_through(sells, px, left, trade["side"] == "B", coin)
        if trades:
            self._check_triggers(trades[-1]["coin"])
            self._check_liquidations(trades[-1]["coin"])

    def _trade_through(self, orders: list[Order], px: float, left: float, hits_level: bool, coin: str) -> float:
        """Fill ``orders`` (one side, best first) from a trade of ``left`` at ``px``: those it printed
        through in full, those at its price after the size still ahead of them."""
        book = self.books.get(coin)
        for order in orders:
            if left <= EPS:
                break
            if order.sz <= EPS:
                continue
            at_level = abs(order.px - px) <= EPS * max(1.0, px)
            if not at_level and (px >= order.px if order.is_buy else px <= order.px):
                break  # this order and the rest are behind the trade's price
            if at_level:
                if not hits_level:
                    break  # a buyer lifting asks at our bid's price never reaches the bids
                if book is not None and order.ahead is None:  # what is ahead can never be more than the level now shows
                    shown = book.size_at(not order.is_buy, order.px)
                    if shown is None and book.within_depth(not order.is_buy, order.px):
                        shown = 0.0
                    if shown is not None:
                        order.queue_ahead = min(order.queue_ahead, shown)
                eat = min(order.queue_ahead, left)
                order.queue_ahead -= eat
                left -= eat
                if order.ahead:  # the trade fills the orders ahead front first: their diffs will say so too
                    for oid in list(order.ahead):
                        if eat <= EPS:
                            break
                        take = min(eat, order.ahead[oid])
                        eat -= take
                        order.ahead[oid] -= take
                        if order.ahead[oid] <= EPS:
                            del order.ahead[oid]
            take = round_to(min(order.sz, left), order.spec.sz_decimals)
            if take > 0:
                left -= take
                self._fill(self.account(order.user), order, order.px, order.px_text, take, crossed=False)
        return left

    def _cross(self, order: Order, book: Book) -> None:
        """A book that crossed a resting order fills it at its own price, as far as the crossing size goes."""
        for level in book.walk(order.is_buy):
            if order.sz <= EPS or (level.px > order.px if order.is_buy else level.px < order.px):
                break
            take = round_to(min(order.sz, book.available(order.is_buy, level)), order.spec.sz_decimals)
            if take > 0:
                book.taken[(order.is_buy, level.px_text)] = book.taken.get((order.is_buy, level.px_text), 0.0) + take
                self._fill(self.account(order.user), order, order.px, order.px_text, take, crossed=False)

    def _pay_funding(self, time_ms: int) -> None:
        self.event_ms = time_ms
        for acc in self.accounts.values():
            for coin, pos in sorted(acc.positions.items()):
                rate, mark = self.funding_rates.get(coin), self.mark(coin)
                if not pos.szi or rate is None or mark is None:
                    continue
                usdc = -pos.szi * mark * rate
                acc.usdc += usdc
                pos.funding_all_time -= usdc
                pos.funding_since_open -= usdc
                spec = self.by_coin[coin]
                delta = {
                    "time": time_ms,
                    "coin": coin,
                    "usdc": wire_number(usdc, 6),
                    "szi": wire_number(pos.szi, spec.sz_decimals),
                    "fundingRate": wire_number(rate, 10),
                }
                acc.fundings.append(delta)
                self.events.append((acc.user, "userFundings", delta))
                self.events.append((acc.user, "userEvents", {"funding": delta}))


__all__ = ["MarketMixin", "HOUR_MS", "SAMPLE_MS"]
