"""The book at an instant shown straight from its base and the window's net effect, with no book made.

A seek (``Replay.l4_book``) wants the book server's ``Snapshot`` once, not a book to go on with.
Its base (a node snapshot or a checkpoint) already holds the orders in priority order, as the
dicts the snapshot will show; the window's diffs, followed oid by oid (``net.follow``, with every
check the book makes), say which of them leave, which change size and which orders join. So the
snapshot is the base's orders that stay, each as it was (a size changed where one was), with the
orders that join placed at the end of their price level in arrival order: a dict made only for an
order the window placed or a checkpoint keeps in its short form. Anything else (a base whose sides
are not in priority order, an oid twice, a check that fails, a book crossed at the end) is None:
the caller builds the book, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.l4.book import _DECIMALS, ORDER_KEYS, _dec, _Resting

from .net import follow


class _Held:
    """A base order as ``follow`` reads it (``book._orders``): its place and size, nothing else."""

    __slots__ = ("oid", "px_text", "side", "sz_text")

    def __init__(self, oid: int, side: int, px_text: str, sz_text: str) -> None:
        self.oid, self.side, self.px_text, self.sz_text = oid, side, px_text, sz_text


class _Base:
    """A base's orders as they came (``levels``: bids then asks, in priority order, as dicts;
    ``short``: which a checkpoint keeps in the node's full shape and shows in the book server's).
    What a seek reads of a base: ``valid``, each order's oid and price (``oids``, ``prices``), the
    orders the window touches (``_orders``, as ``follow`` reads a book), and ``shown``."""

    def __init__(self, coin: str, levels: list[list[dict[str, Any]]], short: list[list[bool]] | None) -> None:
        self.coin, self.levels, self.short = coin, levels, short
        self.oids: list[list[int]] = [[], []]
        self.prices: list[list[Decimal]] = [[], []]  # each order's, as its level's key
        self._orders: dict[int, _Held] = {}

    def valid(self, touched: Any) -> bool:
        """Whether the book would hold these orders in this order: each on its list's side, each
        side in price order (best first; a level's orders together), no oid twice."""
        held = self._orders
        for side, orders in enumerate(self.levels):
            bids = side == 0
            prices, oids = self.prices[side], self.oids[side]
            last: Decimal | None = None
            for order in orders:
                oid, text, size = order.get("oid"), order.get("limitPx"), order.get("sz")
                if (order.get("side") == "B") != bids or type(oid) is not int or oid in held or type(size) is not str:
                    return False
                held[oid] = _Held(oid, side, text, size)  # type: ignore[arg-type]
                price = _price(text)
                if price is None or (last is not None and (price > last if bids else price < last)):
                    return False
                prices.append(price)
                oids.append(oid)
                last = price
        return True

    def shown(self, side: int, kept: list[int], coin: str, sizes: dict[int, str]) -> list[dict[str, Any]]:
        """The base orders at ``kept`` as the book would show them, each size as the window left it."""
        oids = self.oids[side]
        return [self._shown(side, at, coin, sizes.get(oids[at])) for at in kept]

    def _shown(self, side: int, at: int, coin: str, size: str | None) -> dict[str, Any]:
        order = self.levels[side][at]
        if not (self.short and self.short[side][at]):
            return order if size is None else dict(order, sz=size)
        return _short(order, side, coin, size)


class _Columns(_Base):
    """A base read as Arrow columns (a typed row): only the orders the window touches become
    ``_Held``, only the orders that stay become dicts, as the row's own frame would make them
    (``column_values``, which ``message`` uses)."""

    def __init__(self, coin: str, sides: list[Any], short: list[list[bool]] | None) -> None:
        super().__init__(coin, [[], []], short)
        self.sides = sides  # each side's orders, a struct array

    def valid(self, touched: Any) -> bool:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        everyone = []
        for side, orders in enumerate(self.sides):
            n = len(orders)
            if not n:
                continue
            oid, px, sz, letter = (orders.field(name) for name in ("oid", "limitPx", "sz", "side"))
            if oid.null_count or px.null_count or sz.null_count or not pa.types.is_integer(oid.type):
                return False
            bids = pc.fill_null(pc.equal(letter, "B"), False).to_numpy(zero_copy_only=False)
            if not (bids.all() if side == 0 else not bids.any()):
                return False
            codes = pc.dictionary_encode(px)
            texts = codes.dictionary.to_pylist()
            decimals = [_price(t) for t in texts]
            if any(d is None for d in decimals):
                return False
            rank = {d: i for i, d in enumerate(sorted(set(decimals)))}  # type: ignore[type-var]
            ranks = np.array([rank[d] for d in decimals], np.int64)[codes.indices.to_numpy(zero_copy_only=False)]
            if len(ranks) > 1 and not (np.all(ranks[1:] <= ranks[:-1]) if side == 0 else np.all(ranks[1:] >= ranks[:-1])):
                return False
            oids = oid.to_numpy(zero_copy_only=False)
            everyone.append(oids)
            self.oids[side] = oids.tolist()
            self.prices[side] = [decimals[i] for i in codes.indices.to_pylist()]
            near = np.flatnonzero(np.isin(oids, touched)).tolist()
            if near:
                taken = pa.array(near, pa.int64())
                for at, px_text, sz_text in zip(near, pc.take(px, taken).to_pylist(), pc.take(sz, taken).to_pylist()):
                    self._orders[self.oids[side][at]] = _Held(self.oids[side][at], side, px_text, sz_text)
        every = np.concatenate(everyone) if everyone else np.empty(0, np.int64)
        return len(np.unique(every)) == len(every)

    def shown(self, side: int, kept: list[int], coin: str, sizes: dict[int, str]) -> list[dict[str, Any]]:
        import pyarrow as pa

        from schemas.channels import L4_SNAPSHOT_ORDER
        from schemas.shapes import column_values

        if not kept:
            return []
        orders = column_values(L4_SNAPSHOT_ORDER, self.sides[side].take(pa.array(kept, pa.int64())))  # this seek's own dicts
        short, oids = self.short[side] if self.short else None, self.oids[side]
        for i, (at, order) in enumerate(zip(kept, orders)):
            size = sizes.get(oids[at])
            if short is not None and short[at]:
                orders[i] = _short(order, side, coin, size)
            elif size is not None:
                order["sz"] = size
        return orders


def _short(order: dict[str, Any], side: int, coin: str, size: str | None) -> dict[str, Any]:
    """A checkpoint's order kept in the node's full shape, as the book server shows it. The dict is
    this seek's own and becomes that shape in place: the same keys in the same order, less
    ``children`` and ``origSz``."""
    if len(order) == len(_FULL) and tuple(order) == _FULL:
        del order["children"], order["origSz"]
        letter = "B" if side == 0 else "A"
        if size is not None:
            order["sz"] = size
        if order["coin"] != coin or order["side"] != letter:
            order["coin"], order["side"] = coin, letter
        return order
    return _Resting(order["oid"], side, order["limitPx"], order["sz"] if size is None else size, order.get("user"), order, None).whole(coin)


_FULL = ("user", *(k for k in ORDER_KEYS[1:10]), "children", *ORDER_KEYS[10:13], "origSz", *ORDER_KEYS[13:])  # a checkpoint row's order (a node snapshot's)
# a placed order's fields the book shows beside its place (``_Resting.whole``), read as columns
SHOWN = ("timestamp", "triggerCondition", "isTrigger", "triggerPx", "isPositionTpsl", "reduceOnly", "orderType", "tif", "cloid")


def _price(text: Any) -> Decimal | None:
    """A price text as the book keys its level (its own cache of decimals), or None where the book
    could not take it."""
    if type(text) is not str:
        return None
    try:
        found = _DECIMALS.get(text) or _dec(text)
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def _best(index: int, joins: list[tuple[Decimal, int, dict[str, Any]]], prices: list[Decimal], oids: list[int], removed: set[int]) -> Decimal | None:
    """The side's best price as the book keys it once the window is applied."""
    kept = next((prices[at] for at, oid in enumerate(oids) if oid not in removed), None)
    joined = joins[0][0] if joins else None  # joins are best first
    if kept is None or joined is None:
        return joined if kept is None else kept
    return max(kept, joined) if index == 0 else min(kept, joined)


def snapshot_at(coin: str, height: int, time_ms: int, safe: bool, levels: list[list[dict[str, Any]]] | list[Any], short: list[list[bool]] | None,
                diffs: tuple[Any, Any], statuses: tuple[Any, Any], orders_of: Callable[..., Any] | None = None, *, columns: bool = False) -> dict[str, Any] | None:
    """The ``Snapshot`` (with ``safe``) of the base ``levels`` after the window's diffs and status
    lines (``(seqs, data)`` each; ``orders_of`` as ``net.follow`` takes it); None where the book
    must be built (see the module's docstring). ``levels``: each side's orders as dicts, or with
    ``columns`` as struct arrays of a typed row (dicts made only for the orders that stay)."""
    import pyarrow.compute as pc

    base = _Columns(coin, levels, short) if columns else _Base(coin, levels, short)  # type: ignore[arg-type]
    if not base.valid(pc.struct_field(diffs[1], "oid").to_numpy(zero_copy_only=False)):
        return None
    followed = follow(base, diffs[1], diffs[0], statuses[1], statuses[0], orders_of)  # type: ignore[arg-type]
    if followed is None:
        return None
    removed, resized, placed = followed.leaves() if followed.n else (set(), [], [])
    fields = followed.lines.order_fields([row for *_, row in placed], SHOWN)
    joining: list[list[tuple[Decimal, int, dict[str, Any]]]] = [[], []]
    for (seq, oid, side, px, user, size, _), ts, condition, trigger, trigger_px, tpsl, reduce, kind, tif, cloid in zip(placed, *fields):
        price = _price(px)
        if price is None:
            return None
        bid = side == "B"
        joining[0 if bid else 1].append((price, seq, {  # as the book shows an order a status line placed (L4Book ``_Resting.whole``)
            "user": user, "coin": coin, "side": "B" if bid else "A", "limitPx": px, "sz": size, "oid": oid, "timestamp": ts, "triggerCondition": condition,
            "isTrigger": trigger, "triggerPx": trigger_px, "isPositionTpsl": tpsl, "reduceOnly": reduce, "orderType": kind, "tif": tif, "cloid": cloid,
        }))
    for index in (0, 1):
        joining[index].sort(key=lambda j: (-j[0] if index == 0 else j[0], j[1]))
    best = [_best(index, joining[index], base.prices[index], base.oids[index], removed) for index in (0, 1)]
    if best[0] is not None and best[1] is not None and best[0] >= best[1]:
        return None  # crossed: the book records a desync, block by block (nothing here changed yet)
    sizes = {h.oid: size for h, size in resized}
    sides: list[list[dict[str, Any]]] = []
    for index in (0, 1):
        joins, prices, oids = joining[index], base.prices[index], base.oids[index]
        kept = [at for at, oid in enumerate(oids) if oid not in removed]
        out: list[dict[str, Any]] = []
        taken = 0  # joins shown so far
        level: Decimal | None = None
        for at, order in zip(kept, base.shown(index, kept, coin, sizes)):
            price = prices[at]
            if price != level:  # a new level: the joins at the one before go after its orders, then those better than this one
                while taken < len(joins) and (joins[taken][0] == level or (joins[taken][0] > price if index == 0 else joins[taken][0] < price)):
                    out.append(joins[taken][2])
                    taken += 1
                level = price
            out.append(order)
        out.extend(j[2] for j in joins[taken:])
        sides.append(out)
    return {"coin": coin, "time": time_ms, "height": height, "levels": sides, "safe": safe}


__all__ = ["snapshot_at"]
