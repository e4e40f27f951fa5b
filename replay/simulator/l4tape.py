"""The individual orders behind one synthetic coin's book, block by block, in a node's formats.

A tick of the market is a block. Each level of the tick's book (``CoinMarket.pre_book``) is held by
``n`` orders splitting its size (``split_lots``); an order keeps its oid while its level and place
last, and changes size in place (``update``). The tick's trades then fill orders from the front of
their level's queue. So the book after a block, summed per level, is exactly the tick's ``l2Book``
(``CoinMarket.book``), its best levels are the ``bbo``, and its fills are the ``trades``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .coins import MAKERS, CoinMarket, lots_of, lots_text, seed_of, split_lots

FIRST_HEIGHT = 650_000_000  # tick 0's block number
NODE_LATENCY_NS = 130_000_000  # a node writes a block this long after its block time


def height_of(tick: int) -> int:
    return FIRST_HEIGHT + tick


def iso_time(ns: int) -> str:
    """A node's time text: UTC, no zone, nanosecond digits."""
    whole = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ns % 1_000_000_000:09d}"


@dataclass
class _Order:
    oid: int
    user: str
    lots: int
    orig: str  # size text when placed
    timestamp: int


@dataclass
class L4Block:
    """One coin's part of a block: its status lines, diffs and fills (``[user, fill]``), in node shapes."""

    height: int
    time_ms: int
    statuses: list[dict[str, Any]] = field(default_factory=list)
    diffs: list[dict[str, Any]] = field(default_factory=list)
    fills: list[list[Any]] = field(default_factory=list)


class L4Tape:
    """One coin's orders, moved one tick (block) at a time by ``step(market)``."""

    def __init__(self, coin: str, seed: int) -> None:
        self.coin = coin
        self.seed = seed
        self.height = 0
        self.time_ms = 0
        self.levels: tuple[dict[str, list[_Order]], dict[str, list[_Order]]] = ({}, {})
        self._next_oid = 10**11 + seed_of(seed, coin, "oid") % 10**10
        self._time_text = ""
        self._texts: dict[int, str] = {}  # lots -> size text (a coin's sizes repeat)
        self._rng = random.Random(seed_of(seed, coin, "l4 users"))

    # --- one block --------------------------------------------------------------------------------

    def step(self, m: CoinMarket) -> L4Block:
        """Move the orders to market ``m``'s tick (it must be the next tick, or the first seen)."""
        block = L4Block(height_of(m.n), m.time_ms)
        self.height, self.time_ms = block.height, block.time_ms
        self._time_text = iso_time(self.time_ms * 1_000_000)
        decimals = m.spec.sz_decimals
        if len(self._texts) > 50_000:
            self._texts.clear()
        bids, asks = m.pre_book()
        for index, side_levels in ((0, bids), (1, asks)):
            self._move_side(block, index, side_levels, decimals, m)
        for trade in m.trades():
            self._fill(block, trade, decimals)
        return block

    def _move_side(self, block: L4Block, index: int, target: list[dict[str, Any]], decimals: int, m: CoinMarket) -> None:
        held = self.levels[index]
        wanted = {level["px"]: split_lots(lots_of(level["sz"], decimals), level["n"]) for level in target}
        other = self.levels[1 - index]
        for px in [px for px in held if px not in wanted]:
            for order in held.pop(px):
                self._leave(block, index, px, order, "canceled", decimals)
        for px in [px for px in other if px in wanted]:  # the price moved to the other side of the mid
            for order in other.pop(px):
                self._leave(block, 1 - index, px, order, "canceled", decimals)
        for px, sizes in wanted.items():
            queue = held.setdefault(px, [])
            for place, lots in enumerate(sizes):
                if place < len(queue):
                    order = queue[place]
                    if order.lots != lots:
                        block.diffs.append(self._diff(order, index, px, {"update": {"origSz": self._sz(order.lots, decimals), "newSz": self._sz(lots, decimals)}}))
                        order.lots = lots
                else:
                    order = self._new_order(lots, decimals, m.time_ms)
                    queue.append(order)
                    block.statuses.append(self._status(order, index, px, "open", decimals))
                    block.diffs.append(self._diff(order, index, px, {"new": {"sz": self._sz(lots, decimals)}}))
            for order in queue[len(sizes):]:
                self._leave(block, index, px, order, "canceled", decimals)
            del queue[len(sizes):]

    def _fill(self, block: L4Block, trade: dict[str, Any], decimals: int) -> None:
        index = 0 if trade["side"] == "A" else 1  # a seller hits bids, a buyer lifts asks
        queue = self.levels[index].get(trade["px"], [])
        lots = lots_of(trade["sz"], decimals)
        buyer, seller = trade["users"]
        taker = seller if index == 0 else buyer
        while lots > 0 and queue:
            order = queue[0]
            take = min(lots, order.lots)
            lots -= take
            fill = {"coin": self.coin, "px": trade["px"], "sz": self._sz(take, decimals), "time": trade["time"], "hash": trade["hash"], "tid": trade["tid"], "oid": order.oid}
            block.fills.append([order.user, {**fill, "side": "B" if index == 0 else "A", "crossed": False}])
            block.fills.append([taker, {**fill, "side": trade["side"], "crossed": True}])
            if take == order.lots:
                queue.pop(0)
                self._leave(block, index, trade["px"], order, "filled", decimals, filled=True)
            else:
                block.diffs.append(self._diff(order, index, trade["px"], {"update": {"origSz": self._sz(order.lots, decimals), "newSz": self._sz(order.lots - take, decimals)}}))
                order.lots -= take
        if not queue:
            self.levels[index].pop(trade["px"], None)

    def _sz(self, lots: int, decimals: int) -> str:
        text = self._texts.get(lots)
        if text is None:
            text = self._texts[lots] = lots_text(lots, decimals)
        return text

    def _new_order(self, lots: int, decimals: int, time_ms: int) -> _Order:
        self._next_oid += 1 + int(self._rng.random() * 40)
        return _Order(self._next_oid, MAKERS[int(self._rng.random() * len(MAKERS))], lots, self._sz(lots, decimals), time_ms)

    def _leave(self, block: L4Block, index: int, px: str, order: _Order, status: str, decimals: int, *, filled: bool = False) -> None:
        block.statuses.append(self._status(order, index, px, status, decimals, left=0 if filled else order.lots))
        block.diffs.append(self._diff(order, index, px, "remove"))

    def _order(self, order: _Order, index: int, px: str, sz: str, decimals: int) -> dict[str, Any]:
        return {
            "coin": self.coin, "side": "B" if index == 0 else "A", "limitPx": px, "sz": sz, "oid": order.oid,
            "timestamp": order.timestamp, "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0",
            "children": [], "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit",
            "origSz": order.orig, "tif": "Alo", "cloid": None,
        }  # fmt: skip

    def _status(self, order: _Order, index: int, px: str, status: str, decimals: int, left: int | None = None) -> dict[str, Any]:
        sz = self._sz(order.lots if left is None else left, decimals)
        return {"time": self._time_text, "user": order.user, "status": status, "order": self._order(order, index, px, sz, decimals)}

    def _diff(self, order: _Order, index: int, px: str, change: Any) -> dict[str, Any]:
        return {"user": order.user, "oid": order.oid, "coin": self.coin, "side": "B" if index == 0 else "A", "px": px, "raw_book_diff": change}

    # --- the whole book -----------------------------------------------------------------------------

    def sides(self, decimals: int) -> list[list[tuple[str, dict[str, Any]]]]:
        """Both sides as ``[user, order]`` pairs in priority order (best price first, then arrival)."""
        out = []
        for index in (0, 1):
            levels = self.levels[index]
            pairs = []
            for px in sorted(levels, key=float, reverse=index == 0):
                for order in levels[px]:
                    pairs.append((order.user, self._order(order, index, px, self._sz(order.lots, decimals), decimals)))
            out.append(pairs)
        return out

    def snapshot(self, decimals: int) -> dict[str, Any]:
        """The book server's ``Snapshot`` (its orders have no ``children`` or ``origSz``)."""
        levels = [[{"user": user, **{k: v for k, v in order.items() if k not in ("children", "origSz")}} for user, order in side] for side in self.sides(decimals)]
        return {"coin": self.coin, "time": self.time_ms, "height": self.height, "levels": levels}


def updates_frame(block: L4Block) -> dict[str, Any]:
    """The book server's frame of one block's changes of one coin."""
    return {"channel": "l4Book", "data": {"Updates": {"time": block.time_ms, "height": block.height, "order_statuses": block.statuses, "book_diffs": block.diffs}}}


def snapshot_frame(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {"channel": "l4Book", "data": {"Snapshot": snapshot}}
