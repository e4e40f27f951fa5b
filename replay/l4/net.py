"""A seek's blocks applied at once: what a window of diffs leaves of each order it touches.

A seek wants the book at one instant, not after each block. So each oid's diffs in the window are
followed in order (is it resting, at what size), with the checks the book makes on every diff (a
``new`` for an oid already resting or without its status line in its block, an ``update``,
``modified`` or ``remove`` of an oid not resting, an ``origSz`` that is not the size held); then
only the orders that changed are removed, resized or placed (in the order their ``new`` came),
with no dict for a diff and no per-block work. Anything else — a check that fails, a diff of
another form, a book crossed at the instant — returns ``False`` before the book is touched, and the
caller applies the window block by block, which records the desync as it always did.

One thing the block-by-block path sees and this one does not: a book crossed after some block and
uncrossed by a later one, within the window (it does not happen in a node's own data).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.l4.book import L4Book, _dec, _Resting

NEW, UPDATE, MODIFIED, REMOVE = 0, 1, 2, 3
_FORMS = (
    (NEW, r'^\{"new":\{"sz":"(?P<a>[^"\\]*)"\}\}$'),
    (UPDATE, r'^\{"update":\{"origSz":"(?P<a>[^"\\]*)","newSz":"(?P<b>[^"\\]*)"\}\}$'),
    (MODIFIED, r'^\{"modified":\{"sz":"(?P<a>[^"\\]*)"\}\}$'),
)


def apply_window(book: L4Book, diffs: pa.StructArray, diff_seqs: pa.Array, statuses: pa.StructArray, status_seqs: pa.Array) -> bool:
    """Apply a window's typed ``l4Diffs`` and ``open``/``triggered`` ``l4Statuses`` rows (all above
    the book's height) to ``book`` as its blocks would; ``False`` (the book untouched) where the
    block-by-block path must do it."""
    coin = book.coin
    same = pc.fill_null(pc.equal(pc.struct_field(diffs, "coin"), coin), True)
    order = pc.sort_indices(diff_seqs)
    diffs = diffs.take(order).filter(pc.take(same, order))
    n = len(diffs)
    text = pc.struct_field(diffs, "raw_book_diff")
    kinds = pa.nulls(n, pa.int8())
    first = pa.nulls(n, pa.string())
    second = pa.nulls(n, pa.string())
    kinds = pc.if_else(pc.equal(text, '"remove"'), pa.scalar(REMOVE, pa.int8()), kinds)
    for kind, pattern in _FORMS:
        found = pc.extract_regex(text, pattern)
        matched = pc.is_valid(found)
        kinds = pc.if_else(matched, pa.scalar(kind, pa.int8()), kinds)
        first = pc.if_else(matched, pc.struct_field(found, "a"), first)
        if kind == UPDATE:
            second = pc.if_else(matched, pc.struct_field(found, "b"), second)
    if kinds.null_count:
        return False  # a diff of another form: the book's own parser decides
    lines = _StatusLines(statuses, status_seqs, coin)
    placed = lines.where
    resting = book._orders
    touched: dict[int, list[Any]] = {}  # oid -> [alive, size text, arrival seq of its `new` (None: as it rested), side, px, user, status line]
    columns = [c.to_pylist() for c in (pc.struct_field(diffs, "oid"), kinds, first, second, pc.struct_field(diffs, "block"), pc.struct_field(diffs, "side"), pc.struct_field(diffs, "px"), pc.struct_field(diffs, "user"))]
    seqs = pc.take(diff_seqs, order).filter(pc.take(same, order)).to_pylist()
    gone = [False, None, None, None, None, None, None]
    for oid, kind, a, b, block, side, px, user, seq in zip(*columns, seqs):
        state = touched.get(oid)
        if state is None:
            held = resting.get(oid)
            alive, size = held is not None, held.sz_text if held is not None else None
        else:
            alive, size = state[0], state[1]
        if kind == NEW:
            line = placed.get((block, oid))
            if alive or line is None:
                return False
            touched[oid] = [True, a, seq, side or lines.side[line], px or lines.px[line], user or lines.user[line], line]
            continue
        if not alive:
            return False
        if kind == REMOVE:
            touched[oid] = gone
            continue
        if kind == UPDATE and a != size and Decimal(a) != Decimal(size):
            return False
        new = b if kind == UPDATE else a
        if state is None:
            state = touched[oid] = [True, new, None, None, None, None, None]
        if _dec(new):
            state[1] = new
        else:  # resized to nothing: it leaves the book
            touched[oid] = gone
    if _crossed_after(book, touched):
        return False
    for oid, state in touched.items():
        held = resting.get(oid)
        if held is not None and (not state[0] or state[2] is not None):
            book._remove(oid)
        elif held is not None and state[1] != held.sz_text:
            held.resize(state[1])
            held.level.shown = None  # type: ignore[union-attr]
    born = sorted((s[2], oid, s) for oid, s in touched.items() if s[0] and s[2] is not None)
    orders = lines.orders([state[6] for _, _, state in born])  # only the orders that stay become dicts
    for (_, oid, state), placed_order in zip(born, orders):
        side = state[3]
        book._add(_Resting(oid, 0 if side == "B" else 1, state[4], state[1], state[5], placed_order, None))
    return True


class _StatusLines:
    """Where a ``new`` finds its status line: ``(block, oid) -> row`` (the block's last line for the
    oid, as the book's own lookup keeps it), with the few fields a ``new`` may take from it; the
    whole order is made a dict only for the orders that stay (``orders``)."""

    def __init__(self, statuses: pa.StructArray, seqs: pa.Array, coin: str) -> None:
        ordered = statuses.take(pc.sort_indices(seqs)) if len(statuses) else statuses
        self.lines = ordered
        order = pc.struct_field(ordered, "order")
        coins = pc.struct_field(order, "coin").to_pylist()
        oids = pc.struct_field(order, "oid").to_pylist()
        self.where = {(block, oid): i for i, (block, oid, c) in enumerate(zip(pc.struct_field(ordered, "block").to_pylist(), oids, coins)) if oid is not None and (c is None or c == coin)}
        self.side = pc.struct_field(order, "side").to_pylist()
        self.px = pc.struct_field(order, "limitPx").to_pylist()
        self.user = pc.struct_field(ordered, "user").to_pylist()

    def orders(self, rows: list[int]) -> list[dict[str, Any]]:
        if not rows:
            return []
        return [line["order"] for line in self.lines.take(pa.array(rows, pa.int64())).to_pylist()]


def _crossed_after(book: L4Book, touched: dict[int, list[Any]]) -> bool:
    """Whether the book would be crossed once ``touched`` is applied (the best price of each side
    among the orders that stay and those placed)."""
    best: list[Decimal | None] = [None, None]
    for index in (0, 1):
        prices = book._prices[index]
        levels = book._levels[index]
        for px in reversed(prices) if index == 0 else prices:
            if any(touched.get(oid, (True, None, None))[0] and touched.get(oid, (True, None, None))[2] is None for oid in levels[px].queue):
                best[index] = px
                break
    for state in touched.values():
        if state[0] and state[2] is not None:
            index = 0 if state[3] == "B" else 1
            px = Decimal(state[4])
            if best[index] is None or (px > best[index] if index == 0 else px < best[index]):  # type: ignore[operator]
                best[index] = px
    return best[0] is not None and best[1] is not None and best[0] >= best[1]


__all__ = ["apply_window"]
