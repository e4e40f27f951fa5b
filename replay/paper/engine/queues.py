"""Where resting paper orders stand: sorted per coin, and, with the coin's order-level (L4) book,
behind the very orders resting at their price when they arrived. Pure.

An order moves up only as those fill or leave (their diffs), and trades at its price fill it once
they exceed what is still ahead. A block's diffs are applied once the trades of its time have been
seen (they are the same fills), so no fill is counted twice whichever the archive delivers first."""

from __future__ import annotations

import bisect
from typing import Any

from schemas.l4.book import L4Book

from .accounts import Account, Order
from .book import Book
from .state import EPS, EngineState


class QueueMixin(EngineState):
    """The resting orders of each coin and their queues."""

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


__all__ = ["QueueMixin"]
