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
An order that has rested a few blocks is kept compact (``_Resting.settle``): about 250-300 bytes,
not its status line's 1-2 KB. No I/O, no clock: heights and times are arguments.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

# the order fields a snapshot level carries, in the book server's order (the status line's order,
# with the user first)
ORDER_KEYS = (
    "user", "coin", "side", "limitPx", "sz", "oid", "timestamp", "triggerCondition", "isTrigger", "triggerPx",
    "isPositionTpsl", "reduceOnly", "orderType", "tif", "cloid",
)


# Most orders a block places leave within a few blocks (on a busy book, 90% within three): an order
# is kept as it came until it has rested this many blocks, and only then made compact.
SETTLE_AFTER_BLOCKS = 4


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


_TEXTS: dict[str, str] = {}  # prices, sizes and users repeat across orders: a resting order keeps one shared object of each


def _one(text: Any) -> Any:
    if type(text) is not str:
        return text
    kept = _TEXTS.get(text)
    if kept is None:
        if len(_TEXTS) > 500_000:
            _TEXTS.clear()
        kept = _TEXTS[text] = text
    return kept


def _lines_by_oid(statuses: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """oid -> status line, the quick way: a ``new`` finds its line here if the lines are as a node
    writes them; otherwise (``{}``, or a line of another coin) ``_details`` decides."""
    try:
        return {line["order"]["oid"]: line for line in statuses}
    except (KeyError, TypeError, IndexError):
        return {}


def _details(statuses: list[dict[str, Any]], coin: str) -> dict[int, tuple[Any, dict[str, Any]]]:
    """oid -> (user, order) of a block's status lines: where a ``new`` diff finds its order."""
    details = {}
    for line in statuses:
        order = line.get("order")
        if type(order) is dict and order.get("coin", coin) == coin and "oid" in order:
            oid = order["oid"]
            details[oid if type(oid) is int else int(oid)] = (line.get("user"), order)
    return details


# An order's fields other than its place in the book (side, price, size, oid, user) mostly repeat
# (``"N/A"``, ``False``, ``"Limit"``, ``"Gtc"``): they are kept as one shared tuple, its *shape*, and
# the fields of its own (timestamp, cloid, origSz) beside it. A resting order is then some 250 bytes,
# not the 1 KB of its status line's dict. An order whose fields do not fit (``children`` not empty,
# a value of another type) keeps its dict.
_SHAPE_KEYS = ("triggerCondition", "isTrigger", "triggerPx", "isPositionTpsl", "reduceOnly", "orderType", "tif")
_SHAPE_TYPES = (str, bool, str, bool, bool, str, str)
_SHAPES: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # (children's mark, the values of _SHAPE_KEYS) -> a status line's shape
_SHARED: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # every shape, once
_EMPTY: tuple[()] = ()  # children: [] (a fresh list whenever shown); a text (as typed rows give it, "[]") is kept as it is
_OWN = frozenset(("timestamp", "cloid", "origSz", "children", *_SHAPE_KEYS))


def _children_mark(children: Any) -> Any:
    """What a shape keeps of ``children``: ``_EMPTY`` for ``[]``, a text as it is; None for
    anything else (no children, or some: the order keeps its dict)."""
    if type(children) is list:
        return _EMPTY if not children else None
    return children if type(children) is str else None


def _shape(given: str | bool, children: Any, values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The shared shape of these values, or None where they cannot be shared. ``given``: False, or
    the coin a snapshot's dict gave (shown as given)."""
    mark = _children_mark(children)
    if mark is None and children is not None:
        return None
    for value, kind in zip(values, _SHAPE_TYPES):
        if value is not None and type(value) is not kind:  # never 0 for False (equal as keys): the lookup checks only the flags
            return None
    shape = (given, mark, *values)
    shape = _SHARED.setdefault(shape, shape)
    if given is False:
        _SHAPES.setdefault((mark, values), shape)  # where the next status line of these values finds it
    if len(_SHARED) > 10_000:
        _SHARED.clear()
        _SHAPES.clear()
    return shape


class _Resting:
    """A resting order: its place in the book, and what else it shows, kept compact (see ``_shape``).
    Its snapshot-shaped dict is made only when asked for (``whole``): applying a block touches sizes,
    not shapes."""

    __slots__ = ("cloid", "level", "oid", "orig", "px_text", "rest", "side", "sz_text", "ts", "user")

    def __init__(self, oid: int, side: int, px_text: str, sz_text: str, user: Any, base: dict[str, Any], order: dict[str, Any] | None) -> None:
        """``base``: the order's fields (its status line's order); ``order``: the dict a snapshot gave
        it, shown as given (``whole``). Both are kept as they come until ``settle``."""
        self.oid, self.side, self.px_text, self.sz_text, self.user = oid, side, px_text, sz_text, user
        self.level: _Level | None = None  # the level it rests in
        self.ts = self.cloid = self.orig = None
        self.rest: tuple[Any, ...] | dict[str, Any] | list[dict[str, Any]] = base if order is None else [order]

    def settle(self) -> None:
        """Kept compact from now on: its texts shared, its fields as a shape (``_shape``). Most
        orders a block places leave within a few blocks: the book settles the ones that stay."""
        rest = self.rest
        if type(rest) is tuple:
            return
        texts = _TEXTS
        self.px_text, self.sz_text, self.user = texts.get(self.px_text) or _one(self.px_text), texts.get(self.sz_text) or _one(self.sz_text), texts.get(self.user) or _one(self.user)
        if type(rest) is list:
            self._keep_given(rest[0])
            return
        if type(rest) is not dict:
            return
        base = rest
        children, values = base.get("children"), tuple(map(base.get, _SHAPE_KEYS))
        mark = _children_mark(children)
        try:
            shape = _SHAPES.get((mark, values)) if mark is not None or children is None else None
        except TypeError:  # a value that cannot be a key: _shape says no
            shape = None
        if shape is None or shape[3] is not values[1] or shape[5] is not values[3] or shape[6] is not values[4]:  # 0 where a shape holds False
            shape = _shape(False, children, values)
        if shape is not None:
            self.ts, self.cloid, orig = base.get("timestamp"), base.get("cloid"), base.get("origSz")
            self.orig, self.rest = texts.get(orig) or _one(orig), shape

    def _keep_given(self, order: dict[str, Any]) -> None:
        """A snapshot's dict kept as its fields where it is exactly what ``whole`` would make of them."""
        if len(order) != len(ORDER_KEYS) or tuple(order) != ORDER_KEYS:
            return
        oid, side = order["oid"], order["side"]
        if type(oid) is not int or oid != self.oid or side != ("B" if self.side == 0 else "A") or order["user"] != self.user:
            return
        if order["limitPx"] != self.px_text or order["sz"] != self.sz_text:
            return
        if type(order["coin"]) is not str:
            return
        shape = _shape(order["coin"], None, tuple(order[k] for k in _SHAPE_KEYS))
        if shape is not None:
            self.ts, self.cloid, self.rest = order["timestamp"], order["cloid"], shape

    def get(self, key: str) -> Any:
        """A field of its status line's order beside its place in the book (``_OWN``: what a
        checkpoint keeps), as ``dict.get`` gives it; None for any other key."""
        if key not in _OWN:
            return None
        rest = self.rest
        if type(rest) is dict:
            return rest.get(key)
        if type(rest) is list:
            return rest[0].get(key)
        if key == "timestamp":
            return self.ts
        if key == "cloid":
            return self.cloid
        if key == "origSz":
            return self.orig
        if key == "children":
            children = rest[1]
            return [] if children is _EMPTY else children
        return rest[2 + _SHAPE_KEYS.index(key)]

    def whole(self, coin: str) -> dict[str, Any]:
        """The order as a snapshot shows it (``ORDER_KEYS``, or as a snapshot gave it): a new dict."""
        rest = self.rest
        if type(rest) is list:
            return dict(rest[0], sz=self.sz_text)
        if type(rest) is tuple:  # ORDER_KEYS, written out: this runs for every order a seek shows
            return {
                "user": self.user, "coin": coin if rest[0] is False else rest[0], "side": "B" if self.side == 0 else "A", "limitPx": self.px_text, "sz": self.sz_text,
                "oid": self.oid, "timestamp": self.ts, "triggerCondition": rest[2], "isTrigger": rest[3], "triggerPx": rest[4], "isPositionTpsl": rest[5],
                "reduceOnly": rest[6], "orderType": rest[7], "tif": rest[8], "cloid": self.cloid,
            }
        get = rest.get
        return {
            "user": self.user, "coin": coin, "side": "B" if self.side == 0 else "A", "limitPx": self.px_text, "sz": self.sz_text, "oid": self.oid,
            "timestamp": get("timestamp"), "triggerCondition": get("triggerCondition"), "isTrigger": get("isTrigger"), "triggerPx": get("triggerPx"),
            "isPositionTpsl": get("isPositionTpsl"), "reduceOnly": get("reduceOnly"), "orderType": get("orderType"), "tif": get("tif"), "cloid": get("cloid"),
        }

    @property
    def given(self) -> bool:
        """Shown as a snapshot gave it, not in the book server's shape."""
        rest = self.rest
        return type(rest) is list or (type(rest) is tuple and rest[0] is not False)

    def resize(self, text: str) -> None:
        self.sz_text = _one(text)

    def copy(self) -> _Resting:
        twin = _Resting.__new__(_Resting)
        twin.oid, twin.side, twin.px_text, twin.sz_text, twin.user, twin.level = self.oid, self.side, self.px_text, self.sz_text, self.user, None
        twin.rest = self.rest
        if type(self.rest) is tuple:
            twin.ts, twin.cloid, twin.orig = self.ts, self.cloid, self.orig
        return twin

    def full(self, coin: str, keys: tuple[str, ...]) -> tuple[dict[str, Any], bool]:
        """The order in a node snapshot's full shape (``keys``, user first) and whether it is shown
        in the book server's shorter one (``whole``): what a checkpoint keeps of it."""
        if self.given:
            return self.whole(coin), False
        get = self.get
        order = {"user": self.user, **{k: get(k) for k in keys[1:]}}
        order["coin"], order["oid"], order["side"], order["limitPx"], order["sz"] = coin, self.oid, "B" if self.side == 0 else "A", self.px_text, self.sz_text
        return order, True


class _Level:
    """One price level of one side: its orders in arrival order, and the ``l2Book`` entry it shows
    with its size sum (made when asked for, dropped by any change to the level)."""

    __slots__ = ("mixed", "px", "queue", "shown", "sz", "text")

    def __init__(self, px: Decimal, text: str) -> None:
        self.px, self.text = px, text  # text: its first order's price text; all its orders' unless mixed
        self.mixed = False
        self.queue: dict[int, _Resting] = {}
        self.shown: dict[str, Any] | None = None
        self.sz = Decimal(0)

    def entry(self) -> dict[str, Any]:
        shown = self.shown
        if shown is None:
            queue = self.queue
            total = Decimal(0)
            for resting in queue.values():
                text = resting.sz_text
                total += _DECIMALS.get(text) or _dec(text)
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
    _young: deque[list[_Resting]] = field(default_factory=deque)  # the orders each of the last blocks placed, not yet settled (``_Resting.settle``)
    _fresh: list[_Resting] = field(default_factory=list)  # placed since the last block: the next one's generation
    mixed_texts: int = 0  # orders placed in a level whose first order writes its price otherwise ("100" in "100.0")
    settles: bool = True  # False: orders stay as they came (a book only summed by level never shows them)

    # --- building ---------------------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, coin: str, height: int, time_ms: int, bids: list[dict[str, Any]], asks: list[dict[str, Any]], *, settle: bool = True) -> L4Book:
        """A book from a snapshot's two sides (orders in priority order, each an order dict with its
        user). ``settle``: its orders made compact at once, for a book that lives on (not a seek's)."""
        book = cls(coin, height, time_ms)
        for side in (bids, asks):
            for order in side:
                resting = _Resting(int(order["oid"]), 0 if order["side"] == "B" else 1, order["limitPx"], order["sz"], order.get("user"), order, order)
                if settle:
                    resting.settle()
                if type(resting.rest) is list:
                    resting.rest = [dict(order)]  # kept as given: a copy, the caller's may change
                book._add(resting)
        if settle:
            book._fresh = []
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
        self._young, self._fresh = deque(), []
        if adopt:
            self._young, self._fresh = snapshot._young, snapshot._fresh
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
        self._fresh.append(resting)
        self._orders[resting.oid] = resting
        side, text = resting.side, resting.px_text
        px = _DECIMALS.get(text) or _dec(text)
        level = self._levels[side].get(px)
        if level is None:
            level = self._levels[side][px] = _Level(px, text)
            insort(self._prices[side], px)
        elif level.mixed or text != level.text:
            self._mixed(level, text)
        level.queue[resting.oid] = resting
        level.shown = None
        resting.level = level

    def aged(self) -> None:
        """A block (or a window of them, applied at once) has gone by for the orders placed since the
        last: those placed ``SETTLE_AFTER_BLOCKS`` generations ago that still rest are settled."""
        if not self.settles:
            self._fresh = []
            return
        if self._fresh:
            self._young.append(self._fresh)
            self._fresh = []
        if len(self._young) > SETTLE_AFTER_BLOCKS:
            self._settle(self._young.popleft())

    def _settle(self, placed: list[_Resting]) -> None:
        orders = self._orders
        for resting in placed:
            if orders.get(resting.oid) is resting:
                resting.settle()

    def _mixed(self, level: _Level, text: str) -> None:
        """An order joins a level whose orders may write its price otherwise."""
        if text != level.text:
            level.mixed = True
        if next(iter(level.queue.values())).px_text != text:
            self.mixed_texts += 1

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
        self._drop(resting.side, level)  # type: ignore[arg-type]

    def _drop(self, side: int, level: _Level) -> None:
        """An emptied level leaves its side."""
        px = level.px
        del self._levels[side][px]
        prices = self._prices[side]
        del prices[bisect_left(prices, px)]

    # --- one block ------------------------------------------------------------------------------

    def apply_block(self, height: int, time_ms: int, statuses: list[dict[str, Any]], diffs: list[dict[str, Any]]) -> list[Desync]:
        """Apply one block's status lines and book diffs of this coin; the desyncs found."""
        self.height, self.time_ms = height, time_ms
        coin, orders, unlevel, levels, prices = self.coin, self._orders, self._unlevel, self._levels, self._prices
        new_resting = _Resting.__new__
        placed_here = self._fresh  # settled if still resting SETTLE_AFTER_BLOCKS blocks on
        lines: dict[Any, dict[str, Any]] | None = None  # oid -> status line, built at the first `new`
        details: dict[int, tuple[Any, dict[str, Any]]] | None = None  # the same, the careful way (``_details``), where that finds none
        found: list[Desync] = []
        for diff in diffs:  # the common cases inline, the most common first: this loop is the hot path of every L4 replay
            if diff.get("coin", coin) != coin:
                continue
            oid = diff["oid"]
            if type(oid) is not int:
                oid = int(oid)
            change = diff.get("raw_book_diff")
            if type(change) is dict and len(change) == 1:
                placed = change.get("new")
                if placed is not None:  # a new order
                    if lines is None:
                        lines = _lines_by_oid(statuses)
                    line = lines.get(oid)
                    order = line["order"] if line is not None else None
                    if order is None or order.get("coin", coin) != coin:  # none, or another coin's: the careful way
                        if details is None:
                            details = _details(statuses, coin)
                        user, order = details.get(oid, (None, None))
                    else:
                        user = line.get("user")
                    if oid in orders:
                        found.append(Desync(coin, height, oid, "a new oid", "it rests already"))
                    elif order is None:
                        found.append(Desync(coin, height, oid, "the order's status line in the same block", "none"))
                    else:
                        index = 0 if (diff.get("side") or order.get("side")) == "B" else 1
                        text = diff.get("px") or order.get("limitPx")
                        resting = orders[oid] = new_resting(_Resting)  # _Resting(...), inline: its fields of its own are set when it settles
                        resting.oid, resting.side, resting.px_text, resting.sz_text, resting.user, resting.rest = oid, index, text, placed["sz"], diff.get("user") or user, order
                        px = _DECIMALS.get(text) or _dec(text)
                        level = levels[index].get(px)
                        if level is None:
                            level = levels[index][px] = _Level(px, text)
                            insort(prices[index], px)
                        elif level.mixed or text != level.text:
                            self._mixed(level, text)
                        level.queue[oid] = resting
                        level.shown = None
                        resting.level = level
                        placed_here.append(resting)
                    continue
                resize = change.get("update")
                if type(resize) is dict and "origSz" in resize and "newSz" in resize:  # a partial fill
                    resting = orders.get(oid)
                    orig, new = resize["origSz"], resize["newSz"]
                    if resting is None:
                        found.append(Desync(coin, height, oid, "a resting order to update", "no such oid"))
                    elif orig != resting.sz_text and _dec(orig) != _dec(resting.sz_text):
                        found.append(Desync(coin, height, oid, f"origSz {resting.sz_text}", f"origSz {orig}"))
                    elif _DECIMALS.get(new) or _dec(new):
                        resting.sz_text = new
                        resting.level.shown = None  # type: ignore[union-attr]
                    else:
                        del orders[oid]
                        unlevel(resting)
                    continue
                problem = self._change(oid, diff, change, details)
            elif change == "remove":
                resting = orders.pop(oid, None)
                if resting is None:
                    found.append(Desync(coin, height, oid, "a resting order to remove", "no such oid"))
                    continue
                level = resting.level  # _unlevel, inline
                queue = level.queue  # type: ignore[union-attr]
                del queue[oid]
                if queue:
                    level.shown = None  # type: ignore[union-attr]
                else:
                    self._drop(resting.side, level)  # type: ignore[arg-type]
                continue
            else:
                problem = ("new, update, modified or remove", repr(change)[:200])
            if problem is not None:
                found.append(Desync(coin, height, oid, *problem))
        self.aged()
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
            if orig != resting.sz_text and _dec(orig) != _dec(resting.sz_text):
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
            out.extend(resting.whole(self.coin) for resting in levels[px].queue.values())  # each a new dict
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
