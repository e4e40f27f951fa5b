"""The order-level (L4) book of one coin as a pure state machine, as a node's data describes it.

Start from a snapshot (or empty), then apply each block: its order statuses give the details of the
orders its diffs place (``new`` needs its order's status line), and its diffs move the book
(``new``, ``update`` from ``origSz`` to ``newSz``, ``modified`` to a size in place, ``remove``).
Orders keep price-time priority within a level. An inconsistency (a diff for an unknown oid, an
``origSz`` that is not the size held, a ``new`` without its order, a crossed book after a block) is a
``Desync``: returned, never raised, and the book is marked unsafe until the next snapshot. Sizes and
prices stay exact decimal text; ``l2`` sums them as decimals, the way the exchange aggregates.

Each side keeps its prices in order and each price level its queue, and a diff only marks its level
changed: a block's ``l2``/``bbo`` sums again only the levels it shows that changed since they were
last shown, not every resting order, and applying a diff costs what it did without levels.
No I/O, no clock: heights and times are arguments.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

# the order fields a snapshot level carries, in the book server's order (the status line's order,
# with the user first)
ORDER_KEYS = (
    "user", "coin", "side", "limitPx", "sz", "oid", "timestamp", "triggerCondition", "isTrigger", "triggerPx",
    "isPositionTpsl", "reduceOnly", "orderType", "tif", "cloid",
)


@dataclass(frozen=True)
class Desync:
    """The book stopped matching the data at ``height``: what was expected, and what was found."""

    coin: str
    height: int
    oid: int | None
    expected: str
    found: str

    def as_event(self) -> dict[str, Any]:
        return {"coin": self.coin, "height": self.height, "oid": self.oid, "expected": self.expected, "found": self.found}


_DECIMALS: dict[str, Decimal] = {}  # prices and sizes repeat: each text is parsed once


def _dec(text: str) -> Decimal:
    value = _DECIMALS.get(text)
    if value is None:
        if len(_DECIMALS) > 200_000:
            _DECIMALS.clear()
        value = _DECIMALS[text] = Decimal(text)
    return value


def _details(statuses: list[dict[str, Any]], coin: str) -> dict[int, tuple[Any, dict[str, Any]]]:
    """oid -> (user, order) of a block's status lines: where a ``new`` diff finds its order."""
    details = {}
    for line in statuses:
        order = line.get("order")
        if type(order) is dict and order.get("coin", coin) == coin and "oid" in order:
            oid = order["oid"]
            details[oid if type(oid) is int else int(oid)] = (line.get("user"), order)
    return details


class _Resting:
    """A resting order. Its snapshot-shaped dict is made only when asked for (``whole``): applying a
    block touches sizes, not shapes."""

    __slots__ = ("base", "given", "level", "oid", "order", "px", "px_text", "side", "sz", "sz_text", "user")

    def __init__(self, oid: int, side: int, px_text: str, sz_text: str, user: Any, base: dict[str, Any], order: dict[str, Any] | None) -> None:
        self.oid, self.side, self.px_text, self.sz_text, self.user, self.base, self.order = oid, side, px_text, sz_text, user, base, order
        self.px, self.sz = _DECIMALS.get(px_text) or _dec(px_text), _DECIMALS.get(sz_text) or _dec(sz_text)
        self.level: _Level | None = None  # the level it rests in
        self.given = order is not None  # shown as a snapshot gave it, not in the book server's shape

    def whole(self, coin: str) -> dict[str, Any]:
        """The order as a snapshot shows it (``ORDER_KEYS``)."""
        if self.order is None:  # ORDER_KEYS, written out: this runs for every order a seek shows
            get = self.base.get
            self.order = {
                "user": self.user, "coin": coin, "side": "B" if self.side == 0 else "A", "limitPx": self.px_text, "sz": self.sz_text, "oid": self.oid,
                "timestamp": get("timestamp"), "triggerCondition": get("triggerCondition"), "isTrigger": get("isTrigger"), "triggerPx": get("triggerPx"),
                "isPositionTpsl": get("isPositionTpsl"), "reduceOnly": get("reduceOnly"), "orderType": get("orderType"), "tif": get("tif"), "cloid": get("cloid"),
            }
        self.order["sz"] = self.sz_text
        return self.order

    def resize(self, text: str) -> None:
        self.sz_text, self.sz = text, _dec(text)

    def copy(self) -> _Resting:
        twin = _Resting(self.oid, self.side, self.px_text, self.sz_text, self.user, self.base, None if self.order is None else dict(self.order))
        twin.given = self.given
        return twin

    def full(self, coin: str, keys: tuple[str, ...]) -> tuple[dict[str, Any], bool]:
        """The order in a node snapshot's full shape (``keys``, user first) and whether it is shown
        in the book server's shorter one (``whole``): what a checkpoint keeps of it."""
        if self.given:
            return dict(self.whole(coin)), False
        order = {"user": self.user, **{k: self.base.get(k) for k in keys[1:]}}
        order["coin"], order["oid"], order["side"], order["limitPx"], order["sz"] = coin, self.oid, "B" if self.side == 0 else "A", self.px_text, self.sz_text
        return order, True


class _Level:
    """One price level of one side: its orders in arrival order, and the ``l2Book`` entry it shows
    with its size sum (made when asked for, dropped by any change to the level)."""

    __slots__ = ("queue", "shown", "sz")

    def __init__(self) -> None:
        self.queue: dict[int, _Resting] = {}
        self.shown: dict[str, Any] | None = None
        self.sz = Decimal(0)

    def entry(self) -> dict[str, Any]:
        shown = self.shown
        if shown is None:
            queue = self.queue
            total = Decimal(0)
            for resting in queue.values():
                total += resting.sz
            self.sz = total
            shown = self.shown = {"px": next(iter(queue.values())).px_text, "sz": _text(total), "n": len(queue)}  # its first order's price text
        return shown

    def total(self) -> Decimal:
        if self.shown is None:
            self.entry()
        return self.sz


@dataclass
class L4Book:
    coin: str
    height: int = 0
    time_ms: int = 0
    safe: bool = True  # False from a desync (or a start without a snapshot) until the next snapshot
    _orders: dict[int, _Resting] = field(default_factory=dict)  # oid -> order; dicts keep arrival order
    _levels: tuple[dict[Decimal, _Level], dict[Decimal, _Level]] = field(default_factory=lambda: ({}, {}))
    _prices: tuple[list[Decimal], list[Decimal]] = field(default_factory=lambda: ([], []))  # each side ascending
    mixed_texts: int = 0  # orders placed in a level whose first order writes its price otherwise ("100" in "100.0")

    # --- building ---------------------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, coin: str, height: int, time_ms: int, bids: list[dict[str, Any]], asks: list[dict[str, Any]]) -> L4Book:
        """A book from a snapshot's two sides (orders in priority order, each an order dict with its user)."""
        book = cls(coin, height, time_ms)
        for side in (bids, asks):
            for order in side:
                whole = dict(order)
                book._add(_Resting(int(whole["oid"]), 0 if whole["side"] == "B" else 1, whole["limitPx"], whole["sz"], whole.get("user"), whole, whole))
        return book

    @classmethod
    def from_checkpoint(cls, coin: str, height: int, time_ms: int, levels: list[list[dict[str, Any]]], short: list[list[bool]] | None, safe: bool) -> L4Book:
        """A book from a checkpoint (``checkpoint_levels``): every order shown again as it was."""
        book = cls(coin, height, time_ms, safe)
        for index, side in enumerate(levels):
            flags = short[index] if short else [False] * len(side)
            for whole, is_short in zip(side, flags):  # the caller's dicts, kept (a checkpoint row's, made for this)
                book._add(_Resting(int(whole["oid"]), 0 if whole["side"] == "B" else 1, whole["limitPx"], whole["sz"], whole.get("user"), whole, None if is_short else whole))
        return book

    def checkpoint_levels(self, keys: tuple[str, ...]) -> tuple[list[list[dict[str, Any]]], list[list[bool]]]:
        """Both sides' orders in priority order, each in a node snapshot's full shape (``keys``), and
        which are shown in the book server's shape: ``from_checkpoint`` gives the same book back."""
        levels: list[list[dict[str, Any]]] = [[], []]
        short: list[list[bool]] = [[], []]
        for index in (0, 1):
            prices = self._prices[index]
            for px in reversed(prices) if index == 0 else prices:
                for resting in self._levels[index][px].queue.values():
                    order, is_short = resting.full(self.coin, keys)
                    levels[index].append(order)
                    short[index].append(is_short)
        return levels, short

    def reset(self, snapshot: L4Book, *, adopt: bool = False) -> None:
        """Take a snapshot's state: a desynced book is rebuilt and safe again. ``adopt``: the
        snapshot's orders themselves (the caller lets go of it), not copies."""
        self.height, self.time_ms, self.safe = snapshot.height, snapshot.time_ms, True
        if adopt:
            self._orders, self._levels, self._prices, self.mixed_texts = snapshot._orders, snapshot._levels, snapshot._prices, snapshot.mixed_texts
            return
        self.mixed_texts = 0
        self._orders = {}
        self._levels = ({}, {})
        self._prices = ([], [])
        for side in (0, 1):
            for px in snapshot._prices[side]:
                for resting in snapshot._levels[side][px].queue.values():
                    self._add(resting.copy())

    def _add(self, resting: _Resting) -> None:
        self._orders[resting.oid] = resting
        side = resting.side
        level = self._levels[side].get(resting.px)
        if level is None:
            level = self._levels[side][resting.px] = _Level()
            insort(self._prices[side], resting.px)
        elif level.queue and next(iter(level.queue.values())).px_text != resting.px_text:
            self.mixed_texts += 1
        level.queue[resting.oid] = resting
        level.shown = None
        resting.level = level

    def _remove(self, oid: int) -> _Resting:
        resting = self._orders.pop(oid)
        self._unlevel(resting)
        return resting

    def _unlevel(self, resting: _Resting) -> None:
        level = resting.level
        queue = level.queue  # type: ignore[union-attr]
        del queue[resting.oid]
        if queue:
            level.shown = None  # type: ignore[union-attr]
            return
        side, px = resting.side, resting.px
        del self._levels[side][px]
        prices = self._prices[side]
        del prices[bisect_left(prices, px)]

    # --- one block ------------------------------------------------------------------------------

    def apply_block(self, height: int, time_ms: int, statuses: list[dict[str, Any]], diffs: list[dict[str, Any]]) -> list[Desync]:
        """Apply one block's status lines and book diffs of this coin; the desyncs found."""
        self.height, self.time_ms = height, time_ms
        coin, orders, unlevel, add = self.coin, self._orders, self._unlevel, self._add
        details: dict[int, tuple[Any, dict[str, Any]]] | None = None  # oid -> (user, order), built at the first `new`
        found: list[Desync] = []
        for diff in diffs:  # the common cases inline: this loop is the hot path of every L4 replay
            if diff.get("coin", coin) != coin:
                continue
            oid = diff["oid"]
            if type(oid) is not int:
                oid = int(oid)
            change = diff.get("raw_book_diff")
            problem = None
            if change == "remove":
                resting = orders.pop(oid, None)
                if resting is None:
                    problem = ("a resting order to remove", "no such oid")
                else:
                    unlevel(resting)
            elif type(change) is dict and len(change) == 1:
                placed = change.get("new")
                resize = change.get("update") if placed is None else None
                if resize is not None and type(resize) is dict and "origSz" in resize and "newSz" in resize:  # a partial fill, inline
                    resting = orders.get(oid)
                    orig, new = resize["origSz"], resize["newSz"]
                    if resting is None:
                        problem = ("a resting order to update", "no such oid")
                    elif orig != resting.sz_text and _dec(orig) != resting.sz:
                        problem = (f"origSz {resting.sz_text}", f"origSz {orig}")
                    else:
                        size = _DECIMALS.get(new) or _dec(new)
                        if size:
                            resting.sz_text, resting.sz = new, size
                            resting.level.shown = None  # type: ignore[union-attr]
                        else:
                            del orders[oid]
                            unlevel(resting)
                elif placed is None:
                    problem = self._change(oid, diff, change, details)
                else:
                    if details is None:
                        details = _details(statuses, coin)
                    got = details.get(oid)
                    if oid in orders:
                        problem = ("a new oid", "it rests already")
                    elif got is None:
                        problem = ("the order's status line in the same block", "none")
                    else:
                        user, order = got
                        side = diff.get("side") or order.get("side")
                        add(_Resting(oid, 0 if side == "B" else 1, diff.get("px") or order.get("limitPx"), placed["sz"], diff.get("user") or user, order, None))
            else:
                problem = ("new, update, modified or remove", repr(change)[:200])
            if problem is not None:
                found.append(Desync(coin, height, oid, *problem))
        crossed = self._crossed()
        if crossed is not None:
            found.append(Desync(coin, height, None, "best bid below best ask", crossed))
        if found:
            self.safe = False
        return found

    def _change(self, oid: int, diff: dict[str, Any], change: dict[str, Any], details: dict[int, tuple[Any, dict[str, Any]]] | None) -> tuple[str, str] | None:
        (kind, body), = change.items()
        if kind == "new":
            if oid in self._orders:
                return "a new oid", "it rests already"
            user, order = (details or {}).get(oid, (None, None))
            if order is None:
                return "the order's status line in the same block", "none"
            side = diff.get("side") or order.get("side")
            self._add(_Resting(oid, 0 if side == "B" else 1, diff.get("px") or order.get("limitPx"), body["sz"], diff.get("user") or user, order, None))
            return None
        resting = self._orders.get(oid)
        if resting is None:
            return f"a resting order to {kind}", "no such oid"
        if kind == "update":
            orig = body["origSz"]
            if orig != resting.sz_text and _dec(orig) != resting.sz:
                return f"origSz {resting.sz_text}", f"origSz {orig}"
            new = body["newSz"]
        elif kind == "modified":
            new = body["sz"]
        else:
            return "new, update, modified or remove", kind
        if not _dec(new):
            self._remove(oid)
        else:
            resting.resize(new)
            resting.level.shown = None  # type: ignore[union-attr]
        return None

    def _crossed(self) -> str | None:
        bids, asks = self._prices
        if bids and asks and bids[-1] >= asks[0]:
            return f"bid {bids[-1]} >= ask {asks[0]}"
        return None

    # --- what it shows --------------------------------------------------------------------------

    def orders(self, side: str) -> list[dict[str, Any]]:
        """One side's orders in priority order: best price first, then arrival."""
        index = 0 if side == "B" else 1
        levels, prices = self._levels[index], self._prices[index]
        out = []
        for px in (reversed(prices) if index == 0 else prices):
            out.extend(dict(resting.whole(self.coin)) for resting in levels[px].queue.values())
        return out

    def snapshot(self) -> dict[str, Any]:
        """The book server's ``Snapshot`` shape."""
        return {"coin": self.coin, "time": self.time_ms, "height": self.height, "levels": [self.orders("B"), self.orders("A")]}

    def best(self, side: str) -> tuple[str, str, int] | None:
        """The best level of a side as ``(px, sz, n)`` text (``bbo``), or None when the side is empty."""
        index = 0 if side == "B" else 1
        prices = self._prices[index]
        if not prices:
            return None
        entry = self._levels[index][prices[-1] if index == 0 else prices[0]].entry()
        return entry["px"], entry["sz"], entry["n"]

    def l2(self, n_levels: int = 20, n_sig_figs: int | None = None, mantissa: int | None = None) -> dict[str, Any]:
        """The ``l2Book`` shape: levels summed as exact decimals, ``n`` the order count; with
        ``nSigFigs`` (and ``mantissa``) prices are bucketed, bids rounded down and asks up."""
        sides = []
        for index in (0, 1):
            prices, levels = self._prices[index], self._levels[index]
            if not n_sig_figs:  # each level's entry is kept until the level changes; a fresh dict each frame
                chosen = prices[: -n_levels - 1 : -1] if index == 0 else prices[:n_levels]
                sides.append([dict(levels[px].entry()) for px in chosen])
                continue
            buckets: dict[Decimal, list[Any]] = {}
            for px in reversed(prices) if index == 0 else prices:
                key = _bucket(px, n_sig_figs, mantissa, down=index == 0)
                if key not in buckets and len(buckets) == n_levels:
                    break
                level = levels[px]
                entry = buckets.setdefault(key, [Decimal(0), 0])
                entry[0] += level.total()
                entry[1] += len(level.queue)
            # buckets print their prices as the exchange does
            sides.append([{"px": _text(px), "sz": _text(sz), "n": n} for px, (sz, n) in buckets.items()])
        return {"coin": self.coin, "time": self.time_ms, "levels": sides}

    def __len__(self) -> int:
        return len(self._orders)


def _bucket(px: Decimal, n_sig_figs: int, mantissa: int | None, *, down: bool) -> Decimal:
    exponent = px.adjusted() - n_sig_figs + 1
    step = Decimal(mantissa or 1).scaleb(exponent)
    units = (px / step).to_integral_value(rounding=ROUND_FLOOR if down else ROUND_CEILING)
    return units * step


def _text(value: Decimal) -> str:
    """Decimal text as the exchange prints it in books: no exponent, no trailing zeros, and a ``.0``
    on whole numbers (``"106217.0"``, ``"0.015"``)."""
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"
