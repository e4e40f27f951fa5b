"""The paper exchange: matching paper orders against recorded (or synthetic) market data, and the
accounts they move. Pure: market frames and actions go in, responses and stream events come out.

Paper orders never change the market they trade against: the book and the trades are the ones that
were recorded. Within one book snapshot, liquidity a paper order took is gone for the next paper
order (until the next snapshot), so two orders cannot both take the same visible size.

Fills:
- a marketable order walks the visible book at that instant (the last snapshot at or before it);
- a resting order queues behind the size that was at its level when it was placed; later trades at
  its price eat that queue first, then fill it; trades through its price, or a book that crosses
  it, fill it at its own price (as a maker);
- with the coin's order-level (L4) book (``l4Book`` frames), the queue is exact: the order stands
  behind the very orders resting at its price when it arrived, moves up only as those fill or leave
  (their diffs), and trades at its price fill it once they exceed what is still ahead. A block's
  diffs are applied once the trades of its time have been seen (they are the same fills), so no
  fill is counted twice whichever the archive delivers first.

Everything is a function of the frames and actions in order, so a run is repeatable to the byte.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any

from schemas.info import clearinghouse_state, money
from schemas.l4.book import L4Book

from .accounts import Account, Order, Position
from .assets import AssetSpec, price_ok, size_ok, wire_decimal, wire_number
from .book import Book
from .triggers import GROUPINGS, Trigger

# Hyperliquid's base tier (14-day volume under $5M)
PERP_TAKER_FEE = 0.00045
PERP_MAKER_FEE = 0.00015
SPOT_TAKER_FEE = 0.0007
SPOT_MAKER_FEE = 0.0004
MIN_ORDER_VALUE = 10.0
SAMPLE_MS = 1_000  # the report's curves: a point a second of market time at most
HOUR_MS = 3_600_000
SCHEDULE_CANCEL_MIN_DELAY_MS = 5_000
EPS = 1e-12

Event = tuple[str, str, Any]  # (user, channel, data): what the wallet's streams carry


class ActionError(ValueError):
    """A request the exchange refuses as a whole: ``{"status": "err", "response": <sentence>}``."""


class PaperEngine:
    """One paper exchange: books per coin, accounts per user, and the events their streams carry."""

    def __init__(self, assets: dict[int, AssetSpec], *, balance: float = 100_000.0, seed: int = 0) -> None:
        self.assets = assets
        self.by_coin = {spec.coin: spec for spec in assets.values()}
        self.balance = balance
        self.seed = seed
        self.books: dict[str, Book] = {}
        self.l4_books: dict[str, L4Book] = {}  # coins whose order-level book feeds the engine: exact queues
        self._l4_held: dict[str, dict[str, Any]] = {}  # coin -> the newest blocks' updates, applied after their trades
        self.last_trade_px: dict[str, float] = {}
        self.funding_rates: dict[str, float] = {}
        self.mark_px: dict[str, float] = {}  # the recorded activeAssetCtx markPx: what triggers fire on
        self.mark_text: dict[str, str] = {}  # and its text, the price a liquidation fills at
        self.prices: dict[str, list[tuple[int, float]]] = {}  # (time ms, mark) of traded coins, for the report
        self._next_sample_ms = 0
        self.accounts: dict[str, Account] = {}
        self.time_ms = 0  # the latest time seen (frames, actions, the clock)
        self.event_ms = 0  # the time of what is being processed: a fill's or a status's time
        self._hour: int | None = None
        self._by_coin: dict[str, tuple[list[Order], list[Order]]] = {}  # resting orders, sorted, per coin
        self._next_oid = 1_000_000_001
        self._next_tid = 500_000_000_000_001
        self.events: list[Event] = []

    # --- accounts ---------------------------------------------------------------------------------

    def account(self, user: str) -> Account:
        """The paper account of ``user``: every address starts funded."""
        user = user.lower()
        acc = self.accounts.get(user)
        if acc is None:
            acc = self.accounts[user] = Account(user, self.balance)
        return acc

    def mark(self, coin: str) -> float | None:
        """The mid of the last book, else the last trade price."""
        book = self.books.get(coin)
        if book is not None:
            bid, ask = book.best(False), book.best(True)
            if bid is not None and ask is not None:
                return (bid + ask) / 2
        return self.last_trade_px.get(coin)

    # --- market -----------------------------------------------------------------------------------

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

    # --- the order-level book: exact queues --------------------------------------------------------

    def queue_model(self, coin: str) -> str:
        """``"L4 exact"`` when the coin's order-level book feeds the engine, else ``"L2 sizes"``."""
        return "L4 exact" if coin in self.l4_books else "L2 sizes"

    def on_l4(self, coin: str, data: dict[str, Any]) -> None:
        """An ``l4Book`` frame: a ``Snapshot`` (re)builds the coin's book; an ``Updates`` is held until
        the trades of its time have been seen, then applied (``_apply_l4``)."""
        if "Snapshot" in data:
            self._apply_held(coin)
            snap = data["Snapshot"]
            self.l4_books[coin] = L4Book.from_snapshot(coin, snap["height"], snap["time"], *snap["levels"])
            return
        update = data.get("Updates")
        if update is None or coin not in self.l4_books:
            return
        held = self._l4_held.get(coin)
        if held is not None and held["time"] < update["time"]:
            self._apply_held(coin)
        self._l4_held.setdefault(coin, {"time": update["time"], "blocks": []})["blocks"].append(update)

    def _apply_held(self, coin: str) -> None:
        held = self._l4_held.pop(coin, None)
        book = self.l4_books.get(coin)
        if held is None or book is None:
            return
        buys, sells = self._resting(coin)
        waiting = [o for o in (*buys, *sells) if o.ahead]
        for update in held["blocks"]:
            book.apply_block(update["height"], update["time"], update["order_statuses"], update["book_diffs"])
            for diff in update["book_diffs"]:
                for order in waiting:
                    size = order.ahead.get(diff["oid"]) if order.ahead else None
                    if size is None:
                        continue
                    change = diff["raw_book_diff"]
                    if change == "remove":
                        del order.ahead[diff["oid"]]  # filled or gone: it no longer stands ahead
                    elif isinstance(change, dict) and ("update" in change or "modified" in change):
                        new = float(change["update"]["newSz"] if "update" in change else change["modified"]["sz"])
                        order.ahead[diff["oid"]] = min(size, new)  # a trade may have taken it already
                        if order.ahead[diff["oid"]] <= EPS:
                            del order.ahead[diff["oid"]]
        for order in waiting:
            order.queue_ahead = sum(order.ahead.values()) if order.ahead else 0.0

    def _join_queue(self, order: Order, book: Book | None) -> None:
        """Where a resting order stands: behind the L4 orders at its price, or the L2 size there."""
        l4 = self.l4_books.get(order.spec.coin)
        if l4 is not None:
            self._apply_held(order.spec.coin)
            side = "B" if order.is_buy else "A"
            order.ahead = {o["oid"]: float(o["sz"]) for o in l4.orders(side) if abs(float(o["limitPx"]) - order.px) <= EPS * max(1.0, order.px)}
            order.queue_ahead = sum(order.ahead.values())
            return
        order.queue_ahead = (book.size_at(not order.is_buy, order.px) or 0.0) if book is not None else 0.0

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
            take = _round(min(order.sz, left), order.spec.sz_decimals)
            if take > 0:
                left -= take
                self._fill(self.account(order.user), order, order.px, order.px_text, take, crossed=False)
        return left

    def _resting(self, coin: str) -> tuple[list[Order], list[Order]]:
        """Resting paper orders on ``coin`` in price-time priority: (buys, sells), kept sorted as they change."""
        sides = self._by_coin.get(coin)
        if sides is None:
            sides = self._by_coin[coin] = ([], [])
        return sides

    def _rest(self, acc: Account, order: Order) -> None:
        acc.orders[order.oid] = order
        buys, sells = self._resting(order.spec.coin)
        if order.is_buy:
            bisect.insort(buys, order, key=lambda o: (-o.px, o.oid))
        else:
            bisect.insort(sells, order, key=lambda o: (o.px, o.oid))
        if not order.spec.spot and not order.reduce_only:
            acc.order_margin += order.px * order.sz / acc.position(order.spec).leverage

    def _unrest(self, acc: Account, order: Order) -> None:
        del acc.orders[order.oid]
        buys, sells = self._resting(order.spec.coin)
        (buys if order.is_buy else sells).remove(order)
        if not order.spec.spot and not order.reduce_only:
            acc.order_margin = max(0.0, acc.order_margin - order.px * order.sz / acc.position(order.spec).leverage)
        if not acc.orders:
            acc.order_margin = 0.0  # no drift from rounding

    def _cross(self, order: Order, book: Book) -> None:
        """A book that crossed a resting order fills it at its own price, as far as the crossing size goes."""
        for level in book.walk(order.is_buy):
            if order.sz <= EPS or (level.px > order.px if order.is_buy else level.px < order.px):
                break
            take = _round(min(order.sz, book.available(order.is_buy, level)), order.spec.sz_decimals)
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

    # --- actions ------------------------------------------------------------------------------------

    def act(self, user: str, action: dict[str, Any], time_ms: int | None = None) -> dict[str, Any]:
        """Apply a verified action of ``user``: the exchange's response body."""
        if time_ms is not None:
            self.advance_time(time_ms)
        acc = self.account(user)
        kind = action.get("type") if isinstance(action, dict) else None
        handler = _ACTIONS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return {"status": "err", "response": f"Unsupported action for the paper exchange: {kind!r} (it takes {', '.join(_ACTIONS)})"}
        try:
            return handler(self, acc, action)
        except ActionError as exc:
            return {"status": "err", "response": str(exc)}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return {"status": "err", "response": f"Failed to deserialize the action: {type(exc).__name__} {exc}"}

    def _order_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        grouping = action.get("grouping", "na")
        if grouping not in GROUPINGS:
            raise ActionError(f"Unknown grouping {grouping!r}: use na, normalTpsl or positionTpsl")
        statuses: list[Any] = []
        parent: Order | None = None
        for i, wire in enumerate(action["orders"]):
            if grouping == "normalTpsl" and i > 0:  # the entry order first, then its TP/SL
                statuses.append(self._place(acc, wire, grouping, parent) if parent is not None else {"error": "The entry order of this normalTpsl group was refused."})
                continue
            status = self._place(acc, wire, grouping)
            if grouping == "normalTpsl" and i == 0:
                oid = (status.get("resting") or status.get("filled") or {}).get("oid") if isinstance(status, dict) else None
                parent = acc.statuses[oid][0] if oid is not None else None
            statuses.append(status)
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _place(self, acc: Account, wire: dict[str, Any], grouping: str = "na", parent: Order | None = None) -> Any:
        asset = wire["a"]
        spec = self.assets.get(asset) if isinstance(asset, int) else None
        if spec is None:
            return {"error": f"Unknown asset {asset!r}: not in meta or spotMeta"}
        tail = f" asset={asset}"
        kind = wire["t"] if isinstance(wire.get("t"), dict) else {}
        if isinstance(kind.get("trigger"), dict):
            return self._place_trigger(acc, spec, wire, kind["trigger"], grouping, parent, tail)
        if grouping != "na" and parent is not None:
            return {"error": "TP/SL orders of a normalTpsl group must be trigger orders." + tail}
        limit = kind.get("limit")
        if limit is None:
            return {"error": "Order type must be limit or trigger." + tail}
        tif = limit.get("tif")
        if tif not in ("Gtc", "Alo", "Ioc", "FrontendMarket"):
            return {"error": f"Invalid TIF {tif!r}: use Gtc, Alo or Ioc." + tail}
        px_d, sz_d = wire_decimal(wire["p"]), wire_decimal(wire["s"])
        if px_d is None or not price_ok(spec, px_d):
            return {"error": "Price must be divisible by tick size." + tail}
        if sz_d is None or not size_ok(spec, sz_d):
            return {"error": "Order has invalid size." + tail}
        is_buy, px, sz = bool(wire["b"]), px_d.value, sz_d.value
        reduce_only = bool(wire.get("r", False))
        cloid = wire.get("c")
        book = self.books.get(spec.coin)
        if tif == "Alo" and book is not None:
            opposite = book.asks if is_buy else book.bids
            if opposite and (opposite[0].px <= px if is_buy else opposite[0].px >= px):
                bid = book.bids[0].px_text if book.bids else "0.0"
                ask = book.asks[0].px_text if book.asks else "0.0"
                return {"error": f"Post only order would have immediately matched, bbo was {bid}@{ask}." + tail}
        if reduce_only:
            if spec.spot:
                return {"error": "Reduce only orders are for perps." + tail}
            pos = acc.position(spec)
            if pos.szi == 0 or (pos.szi > 0) == is_buy:
                return {"error": "Reduce only order would increase position." + tail}
            sz = min(sz, abs(pos.szi))
        if px * sz < MIN_ORDER_VALUE - EPS and not reduce_only:
            return {"error": ("Order must have minimum value of 10 USDC." if spec.spot else "Order must have minimum value of $10.") + tail}
        problem = self._affordability(acc, spec, is_buy, px, sz, reduce_only)
        if problem:
            return {"error": problem + tail}
        order = Order(self._oid(), acc.user, spec, is_buy, px, px_d.text, sz, sz, tif, reduce_only, cloid, self.event_ms)
        if cloid is not None:
            acc.by_cloid[cloid] = order.oid
        filled_sz, notional = 0.0, 0.0
        if tif != "Alo" and book is not None:
            filled_sz, notional = self._take(acc, order, book)
        ident = {"oid": order.oid, **({"cloid": cloid} if cloid is not None else {})}
        if order.sz <= EPS:
            self._status(acc, order, "filled")
            return {"filled": {"totalSz": wire_number(filled_sz, spec.sz_decimals), "avgPx": _avg_px(notional, filled_sz), **ident}}
        if tif in ("Ioc", "FrontendMarket"):
            self._status(acc, order, "canceled" if filled_sz else "iocCancelRejected", emit=bool(filled_sz))
            if filled_sz:
                return {"filled": {"totalSz": wire_number(filled_sz, spec.sz_decimals), "avgPx": _avg_px(notional, filled_sz), **ident}}
            return {"error": "Order could not immediately match against any resting orders." + tail}
        # behind everything already at its level on its own side
        self._join_queue(order, book)
        self._rest(acc, order)
        self._status(acc, order, "open")
        return {"resting": ident}

    # --- trigger orders -----------------------------------------------------------------------------

    def _place_trigger(self, acc: Account, spec: AssetSpec, wire: dict[str, Any], trigger: dict[str, Any], grouping: str, parent: Order | None, tail: str) -> Any:
        """A stop loss or take profit: off the book until the mark reaches its trigger."""
        if spec.spot:
            return {"error": "Trigger orders are for perps." + tail}
        tpsl = trigger.get("tpsl")
        if tpsl not in ("tp", "sl"):
            return {"error": f"Invalid tpsl {tpsl!r}: use tp or sl." + tail}
        trigger_d, px_d, sz_d = wire_decimal(trigger.get("triggerPx")), wire_decimal(wire["p"]), wire_decimal(wire["s"])
        if trigger_d is None or not price_ok(spec, trigger_d) or trigger_d.value <= 0:
            return {"error": "Invalid trigger price." + tail}
        if px_d is None or not price_ok(spec, px_d):
            return {"error": "Price must be divisible by tick size." + tail}
        if sz_d is None or not (size_ok(spec, sz_d) or (grouping == "positionTpsl" and sz_d.value == 0)):
            return {"error": "Order has invalid size." + tail}
        is_buy = bool(wire["b"])
        armed = grouping != "normalTpsl" or parent is None or acc.statuses.get(parent.oid, (None, ""))[1] == "filled"
        shown = trigger_d.text if "." in trigger_d.text else trigger_d.text + ".0"  # the exchange prints "98.0" for the SDK's "98"
        rule = Trigger(trigger_d.value, shown, bool(trigger.get("isMarket")), tpsl, grouping, parent.oid if parent is not None else None, armed)
        cloid = wire.get("c")
        order = Order(self._oid(), acc.user, spec, is_buy, px_d.value, px_d.text, sz_d.value, sz_d.value, "Gtc", bool(wire.get("r", False)) or grouping != "na", cloid, self.event_ms, trigger=rule)
        if cloid is not None:
            acc.by_cloid[cloid] = order.oid
        acc.triggers[order.oid] = order
        self._status(acc, order, "open")
        if grouping == "na":
            return {"resting": {"oid": order.oid, **({"cloid": cloid} if cloid is not None else {})}}
        return "waitingForTrigger" if armed else "waitingForFill"

    def trigger_mark(self, coin: str) -> float | None:
        """What triggers fire on: the recorded mark price, else the mid of the book."""
        return self.mark_px.get(coin, self.mark(coin))

    def _check_triggers(self, coin: str) -> None:
        mark = None
        for user in sorted(self.accounts):
            acc = self.accounts[user]
            if not acc.triggers:
                continue
            for order in sorted(acc.triggers.values(), key=lambda o: o.oid):
                if order.spec.coin != coin or order.trigger is None or not order.trigger.armed:
                    continue
                mark = self.trigger_mark(coin) if mark is None else mark
                if mark is not None and order.trigger.fires(order.is_buy, mark) and order.oid in acc.triggers:
                    self._fire(acc, order)

    def _fire(self, acc: Account, order: Order) -> None:
        """A trigger reached: ``triggered``, then a market order (to its limit price) or a limit order."""
        rule = order.trigger
        assert rule is not None
        del acc.triggers[order.oid]
        spec = order.spec
        order.trigger = None
        self._status(acc, order, "triggered")
        pos = acc.position(spec).szi
        if order.reduce_only:
            if pos == 0 or (pos > 0) == order.is_buy:
                self._status(acc, order, "reduceOnlyCanceled")
                return
            order.sz = abs(pos) if rule.grouping == "positionTpsl" or order.orig_sz == 0 else min(order.sz, abs(pos))
        book = self.books.get(spec.coin)
        filled = self._take(acc, order, book)[0] if book is not None else 0.0
        if order.sz <= EPS:
            self._status(acc, order, "filled")
        elif rule.is_market:
            self._status(acc, order, "canceled")  # what the book could not give, to its limit price
        else:
            self._join_queue(order, book)
            self._rest(acc, order)
        if filled:
            self._cancel_siblings(acc, order, rule)

    def _cancel_siblings(self, acc: Account, order: Order, rule: Trigger) -> None:
        """One TP/SL of a group filled: the others go; a closed position takes its position TP/SL with it."""
        closed = acc.position(order.spec).szi == 0
        for other in sorted(acc.triggers.values(), key=lambda o: o.oid):
            if other.trigger is None or other.spec.coin != order.spec.coin:
                continue
            same_group = rule.parent is not None and other.trigger.parent == rule.parent
            if same_group or (closed and other.trigger.grouping == "positionTpsl"):
                del acc.triggers[other.oid]
                self._status(acc, other, "siblingFilledCanceled")

    # --- liquidation ------------------------------------------------------------------------------

    def _check_liquidations(self, coin: str) -> None:
        """Accounts holding ``coin`` whose margin ran out are liquidated at the mark: a cross account
        when its value falls below the maintenance margin of all its cross positions (half the initial
        margin at the asset's largest leverage), an isolated position when its own margin does."""
        for user in sorted(self.accounts):
            acc = self.accounts[user]
            held = acc.positions.get(coin)
            if held is None or not held.szi:
                continue
            cross = [(c, p) for c, p in sorted(acc.positions.items()) if p.szi and p.is_cross]
            if held.is_cross:
                value = acc.usdc + sum(p.szi * (self._liq_mark(c, p) - p.entry_px) for c, p in acc.positions.items() if p.szi and p.is_cross)
                needed = sum(abs(p.szi) * self._liq_mark(c, p) * self._maintenance(c) for c, p in cross)
                if value < needed:
                    for c, p in cross:
                        self._liquidate(acc, self.by_coin[c], p)
            else:
                mark = self._liq_mark(coin, held)
                if held.isolated_margin + held.szi * (mark - held.entry_px) < abs(held.szi) * mark * self._maintenance(coin):
                    self._liquidate(acc, self.by_coin[coin], held)

    def _maintenance(self, coin: str) -> float:
        return 0.5 / max(1, self.by_coin[coin].max_leverage)

    def _liq_mark(self, coin: str, pos: Position) -> float:
        return self.trigger_mark(coin) or pos.entry_px

    def _liquidate(self, acc: Account, spec: AssetSpec, pos: Position) -> None:
        """Close the position at the mark as a market order; the account's orders on the coin go."""
        for order in sorted([*acc.orders.values(), *acc.triggers.values()], key=lambda o: o.oid):
            if order.spec.coin == spec.coin:
                self._cancel(acc, order, "liquidatedCanceled")
        mark = self._liq_mark(spec.coin, pos)
        text = self.mark_text.get(spec.coin) or wire_number(mark, max(0, 6 - spec.sz_decimals))
        size = abs(pos.szi)
        order = Order(self._oid(), acc.user, spec, pos.szi < 0, mark, text, size, size, "Ioc", True, None, self.event_ms)
        liquidation = {"liquidatedUser": acc.user, "markPx": text, "method": "market"}
        self._fill(acc, order, mark, text, size, crossed=True, liquidation=liquidation)
        self._status(acc, order, "filled")

    def _affordability(self, acc: Account, spec: AssetSpec, is_buy: bool, px: float, sz: float, reduce_only: bool) -> str | None:
        if spec.spot:
            if is_buy:
                held = sum(o.px * o.sz for o in acc.orders.values() if o.spec.spot and o.is_buy)
                if px * sz > acc.usdc - held + EPS:
                    return "Order has insufficient spot balance to trade."
            else:
                held = sum(o.sz for o in acc.orders.values() if o.spec.coin == spec.coin and not o.is_buy)
                if sz > acc.tokens.get(spec.base, 0.0) - held + EPS:
                    return "Order has insufficient spot balance to trade."
            return None
        if reduce_only:
            return None
        pos = acc.position(spec)
        opposite = max(0.0, -pos.szi) if is_buy else max(0.0, pos.szi)
        increase = max(0.0, sz - opposite)
        if increase <= 0:
            return None
        if increase * px / pos.leverage > self._available_margin(acc) + EPS:
            return "Insufficient margin to place order."
        return None

    def _available_margin(self, acc: Account) -> float:
        value, used = self._account_value(acc)
        return value - used - acc.order_margin

    def _account_value(self, acc: Account) -> tuple[float, float]:
        """(perp account value, margin used by positions)."""
        value, used = acc.usdc, 0.0
        for coin, pos in acc.positions.items():
            if not pos.szi:
                continue
            mark = self.mark(coin) or pos.entry_px
            value += pos.szi * (mark - pos.entry_px)
            used += pos.isolated_margin if not pos.is_cross else abs(pos.szi) * mark / pos.leverage
        return value, used

    def _take(self, acc: Account, order: Order, book: Book) -> tuple[float, float]:
        """Walk the visible book as a taker: (size filled, notional)."""
        filled, notional = 0.0, 0.0
        ask = order.is_buy
        for level in book.walk(ask):
            if order.sz <= EPS or (level.px > order.px if ask else level.px < order.px):
                break
            take = _round(min(order.sz, book.available(ask, level)), order.spec.sz_decimals)
            if take <= 0:
                continue
            book.taken[(ask, level.px_text)] = book.taken.get((ask, level.px_text), 0.0) + take
            self._fill(acc, order, level.px, level.px_text, take, crossed=True)
            filled += take
            notional += take * level.px
        return filled, notional

    def _fill(self, acc: Account, order: Order, px: float, px_text: str, sz: float, *, crossed: bool, liquidation: dict[str, Any] | None = None) -> None:
        spec = order.spec
        d = spec.sz_decimals
        tid = self._next_tid
        self._next_tid += 1
        if spec.spot:
            rate = SPOT_TAKER_FEE if crossed else SPOT_MAKER_FEE
            start = acc.tokens.get(spec.base, 0.0)
            closed = 0.0
            if order.is_buy:
                fee, fee_token = sz * rate, spec.base
                cost = acc.token_cost.get(spec.base, 0.0) * start + px * sz
                acc.tokens[spec.base] = start + sz - fee
                acc.token_cost[spec.base] = cost / max(start + sz - fee, EPS)
                acc.usdc -= px * sz
                acc.fees_paid += fee * px
            else:
                fee, fee_token = px * sz * rate, spec.quote
                closed = sz * (px - acc.token_cost.get(spec.base, px))
                acc.tokens[spec.base] = _round(start - sz, 10)
                acc.usdc += px * sz - fee
                acc.fees_paid += fee
            direction = "Buy" if order.is_buy else "Sell"
            fee_text = wire_number(fee, 8 if order.is_buy else 6)
        else:
            rate = PERP_TAKER_FEE if crossed else PERP_MAKER_FEE
            pos = acc.position(spec)
            start = pos.szi
            delta = sz if order.is_buy else -sz
            closed = 0.0
            if start and (start > 0) != (delta > 0):
                closing = min(abs(delta), abs(start))
                closed = closing * (px - pos.entry_px) * (1 if start > 0 else -1)
                if not pos.is_cross and start:
                    pos.isolated_margin *= 1 - closing / abs(start)
            new = _round(start + delta, d)
            if new == 0:
                pos.entry_px, pos.funding_since_open = 0.0, 0.0
            elif start == 0 or (start > 0) != (new > 0):
                pos.entry_px = px
                pos.funding_since_open = 0.0
            elif abs(new) > abs(start):
                pos.entry_px = (abs(start) * pos.entry_px + sz * px) / abs(new)
            if not pos.is_cross and abs(new) > abs(start) and (start == 0 or (start > 0) == (new > 0)):
                pos.isolated_margin += (abs(new) - abs(start)) * px / pos.leverage
            elif not pos.is_cross and start and (start > 0) != (new > 0):
                pos.isolated_margin = abs(new) * px / pos.leverage
            pos.szi = new
            fee, fee_token = px * sz * rate, "USDC"
            acc.usdc += closed - fee
            acc.fees_paid += fee
            direction = _direction(start, new)
            fee_text = wire_number(fee, 6)
        order.sz = _round(order.sz - sz, d)
        fill = {
            "coin": spec.coin,
            "px": px_text,
            "sz": wire_number(sz, d),
            "side": "B" if order.is_buy else "A",
            "time": self.event_ms,
            "startPosition": wire_number(start, d),
            "dir": direction,
            "closedPnl": wire_number(closed, 6),
            "hash": _hash(self.seed, tid),
            "oid": order.oid,
            "crossed": crossed,
            "fee": fee_text,
            "tid": tid,
            "feeToken": fee_token,
        }
        if order.cloid is not None:
            fill["cloid"] = order.cloid
        if liquidation is not None:  # where the exchange puts it: after tid (and cloid), before feeToken
            fee_token = fill.pop("feeToken")
            fill["liquidation"] = liquidation
            fill["feeToken"] = fee_token
        acc.fills.append(fill)
        acc.held.append((self.event_ms, spec.coin, acc.tokens.get(spec.base, 0.0) if spec.spot else acc.position(spec).szi))
        if not acc.equity:  # the curve starts at the first fill, from the balance before it
            acc.equity.append((self.event_ms, self.balance))
        self.events.append((acc.user, "userFills", fill))
        self.events.append((acc.user, "userEvents", {"fills": [fill]}))
        if order.oid in acc.orders:
            if not spec.spot and not order.reduce_only:  # the filled part no longer holds margin
                acc.order_margin = max(0.0, acc.order_margin - px * sz / acc.position(spec).leverage)
            if order.sz <= EPS:
                self._unrest(acc, order)
                self._status(acc, order, "filled")

    def _status(self, acc: Account, order: Order, status: str, *, emit: bool = True) -> None:
        acc.statuses[order.oid] = (order, status, self.event_ms)
        if emit:
            update = {"order": order.wire(), "status": status, "statusTimestamp": self.event_ms}
            self.events.append((acc.user, "orderUpdates", update))
        if acc.triggers and status not in ("open", "triggered"):  # an entry order's TP/SL wait for it to fill
            for child in sorted(acc.triggers.values(), key=lambda o: o.oid):
                if child.trigger is not None and child.trigger.parent == order.oid and not child.trigger.armed:
                    if status == "filled":
                        child.trigger.armed = True
                    else:
                        del acc.triggers[child.oid]
                        self._status(acc, child, "canceled")

    def _cancel(self, acc: Account, order: Order, status: str = "canceled") -> None:
        if acc.triggers.pop(order.oid, None) is None:
            self._unrest(acc, order)
        self._status(acc, order, status)

    def _find(self, acc: Account, asset: Any, oid: Any) -> Order | None:
        if isinstance(oid, str):
            oid = acc.by_cloid.get(oid)
        order = (acc.orders.get(oid) or acc.triggers.get(oid)) if isinstance(oid, int) else None
        if order is None or order.spec.asset != asset:
            return None
        return order

    def _cancel_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        return self._cancels(acc, [(c["a"], c["o"]) for c in action["cancels"]])

    def _cancel_by_cloid_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        return self._cancels(acc, [(c["asset"], str(c["cloid"])) for c in action["cancels"]])

    def _cancels(self, acc: Account, targets: list[tuple[Any, Any]]) -> dict[str, Any]:
        statuses: list[Any] = []
        for asset, oid in targets:
            order = self._find(acc, asset, oid)
            if order is None:
                statuses.append({"error": f"Order was never placed, already canceled, or filled. asset={asset}"})
            else:
                self._cancel(acc, order)
                statuses.append("success")
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _modify(self, acc: Account, oid: Any, wire: dict[str, Any]) -> dict[str, Any]:
        order = self._find(acc, wire.get("a"), oid)
        if order is None:
            return {"error": "Cannot modify canceled or filled order"}
        self._cancel(acc, order)
        return self._place(acc, wire)

    def _modify_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        status = self._modify(acc, action["oid"], action["order"])
        if "error" in status:
            raise ActionError(status["error"])
        return {"status": "ok", "response": {"type": "default"}}

    def _batch_modify_action(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        statuses = [self._modify(acc, m["oid"], m["order"]) for m in action["modifies"]]
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _update_leverage(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        spec = self.assets.get(action["asset"])
        if spec is None or spec.spot:
            raise ActionError(f"Unknown perp asset {action['asset']!r}")
        leverage, is_cross = action["leverage"], bool(action["isCross"])
        if not isinstance(leverage, int) or not 1 <= leverage <= spec.max_leverage:
            raise ActionError(f"Invalid leverage value: {spec.coin} takes 1 to {spec.max_leverage}")
        pos = acc.position(spec)
        if pos.szi and pos.is_cross != is_cross:
            raise ActionError("Cannot switch leverage type with open position.")
        mark = self.mark(spec.coin) or pos.entry_px
        if pos.szi and abs(pos.szi) * mark / leverage > self._available_margin(acc) + self._account_value(acc)[1] + EPS:
            raise ActionError("Insufficient margin to update leverage.")
        pos.leverage, pos.is_cross = leverage, is_cross
        acc.order_margin = sum(o.px * o.sz / acc.position(o.spec).leverage for o in acc.orders.values() if not o.spec.spot and not o.reduce_only)
        if not is_cross and pos.szi:
            pos.isolated_margin = abs(pos.szi) * pos.entry_px / leverage
        return {"status": "ok", "response": {"type": "default"}}

    def _schedule_cancel(self, acc: Account, action: dict[str, Any]) -> dict[str, Any]:
        at = action.get("time")
        if at is None:
            acc.scheduled_cancel_ms = None
        elif not isinstance(at, int) or at < self.time_ms + SCHEDULE_CANCEL_MIN_DELAY_MS:
            raise ActionError("Scheduled cancel time too early, must be at least 5 seconds after current time.")
        else:
            acc.scheduled_cancel_ms = at
        return {"status": "ok", "response": {"type": "default"}}

    def _oid(self) -> int:
        self._next_oid += 1
        return self._next_oid - 1

    # --- what /info and the streams show -----------------------------------------------------------

    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        acc = self.account(user)
        positions = []
        for coin, pos in sorted(acc.positions.items()):
            if not pos.szi:
                continue
            spec = self.by_coin[coin]
            mark = self.mark(coin) or pos.entry_px
            value = abs(pos.szi) * mark
            upnl = pos.szi * (mark - pos.entry_px)
            used = pos.isolated_margin if not pos.is_cross else value / pos.leverage
            leverage: dict[str, Any] = {"type": "cross" if pos.is_cross else "isolated", "value": pos.leverage}
            if not pos.is_cross:
                leverage["rawUsd"] = money(-pos.szi * pos.entry_px + pos.isolated_margin)
            positions.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": coin,
                        "szi": wire_number(pos.szi, spec.sz_decimals),
                        "leverage": leverage,
                        "entryPx": _significant(pos.entry_px),
                        "positionValue": money(value),
                        "unrealizedPnl": money(upnl),
                        "returnOnEquity": wire_number(upnl / used if used else 0.0, 9),
                        "liquidationPx": None,
                        "marginUsed": money(used),
                        "maxLeverage": spec.max_leverage,
                        "cumFunding": {
                            "allTime": money(pos.funding_all_time),
                            "sinceOpen": money(pos.funding_since_open),
                            "sinceChange": money(pos.funding_since_open),
                        },
                    },
                }
            )
        return clearinghouse_state(acc.usdc, self.time_ms, positions)

    def spot_clearinghouse_state(self, user: str) -> dict[str, Any]:
        acc = self.account(user)
        index = {spec.base: spec.base_index for spec in self.assets.values() if spec.spot}
        usdc_hold = sum(o.px * o.sz for o in acc.orders.values() if o.spec.spot and o.is_buy)
        balances = [{"coin": "USDC", "token": index.get("USDC", 0), "hold": money(usdc_hold), "total": money(acc.usdc), "entryNtl": "0.0"}]
        for token, total in sorted(acc.tokens.items()):
            if total <= EPS:
                continue
            hold = sum(o.sz for o in acc.orders.values() if o.spec.spot and not o.is_buy and o.spec.base == token)
            balances.append(
                {
                    "coin": token,
                    "token": index.get(token, 0),
                    "hold": wire_number(hold, 8),
                    "total": wire_number(total, 8),
                    "entryNtl": money(total * acc.token_cost.get(token, 0.0)),
                }
            )
        return {"balances": balances}

    def open_orders(self, user: str, *, frontend: bool = False) -> list[dict[str, Any]]:
        acc = self.account(user)
        orders = sorted([*acc.orders.values(), *acc.triggers.values()], key=lambda o: -o.oid)  # newest first, as the exchange lists
        return [o.frontend() if frontend else o.wire() for o in orders]

    def order_status(self, user: str, oid: int | str) -> dict[str, Any]:
        acc = self.account(user)
        key = acc.by_cloid.get(oid) if isinstance(oid, str) else oid
        found = acc.statuses.get(key) if isinstance(key, int) else None
        if found is None:
            return {"status": "unknownOid"}
        order, status, at = found
        return {"status": "order", "order": {"order": order.frontend(), "status": status, "statusTimestamp": at}}

    def user_fills(self, user: str) -> list[dict[str, Any]]:
        """Newest first, at most 2000: as ``userFills`` answers."""
        return list(reversed(self.account(user).fills[-2000:]))

    def user_fills_by_time(self, user: str, start: int, end: int | None = None) -> list[dict[str, Any]]:
        return [f for f in self.account(user).fills if f["time"] >= start and (end is None or f["time"] <= end)][:2000]

    def drain(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    def has_account(self, user: str) -> bool:
        return user.lower() in self.accounts


_ACTIONS = {
    "order": PaperEngine._order_action,
    "cancel": PaperEngine._cancel_action,
    "cancelByCloid": PaperEngine._cancel_by_cloid_action,
    "modify": PaperEngine._modify_action,
    "batchModify": PaperEngine._batch_modify_action,
    "updateLeverage": PaperEngine._update_leverage,
    "scheduleCancel": PaperEngine._schedule_cancel,
}

ACTION_TYPES = tuple(_ACTIONS)


def _round(value: float, decimals: int) -> float:
    return round(value + 0.0, decimals)


def _avg_px(notional: float, size: float) -> str:
    return _significant(notional / size) if size else "0.0"


def _significant(value: float) -> str:
    """A price with at most 6 significant figures, trailing zeros trimmed (``avgPx``, ``entryPx``)."""
    text = f"{value:.6g}"
    if "e" in text:
        text = f"{value:.10f}".rstrip("0")
    if "." not in text:
        text += ".0"
    return text


def _direction(start: float, new: float) -> str:
    if start >= 0 and new > start:
        return "Open Long"
    if start <= 0 and new < start:
        return "Open Short"
    if start > 0 and new < 0:
        return "Long > Short"
    if start < 0 and new > 0:
        return "Short > Long"
    return "Close Long" if start > 0 else "Close Short"


def _hash(seed: int, tid: int) -> str:
    return "0x" + hashlib.blake2b(f"paper {seed} {tid}".encode(), digest_size=32).hexdigest()


__all__ = ["ACTION_TYPES", "ActionError", "Event", "PaperEngine"]
