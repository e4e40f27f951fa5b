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

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.l4.book import L4Book, _Resting

NEW, UPDATE, MODIFIED, REMOVE = 0, 1, 2, 3
_FORMS = (
    (NEW, '{"new":', r'^\{"new":\{"sz":"(?P<a>[^"\\]*)"\}\}$'),
    (UPDATE, '{"update":', r'^\{"update":\{"origSz":"(?P<a>[^"\\]*)","newSz":"(?P<b>[^"\\]*)"\}\}$'),
    (MODIFIED, '{"modified":', r'^\{"modified":\{"sz":"(?P<a>[^"\\]*)"\}\}$'),
)


def apply_window(book: L4Book, diffs: pa.StructArray, diff_seqs: pa.Array, statuses: pa.StructArray, status_seqs: pa.Array,
                 orders_of: Callable[[list[int]], list[dict[str, Any]]] | None = None) -> bool:
    """Apply a window's typed ``l4Diffs`` and ``open``/``triggered`` ``l4Statuses`` rows (all above
    the book's height) to ``book`` as its blocks would; ``False`` (the book untouched) where the
    block-by-block path must do it. ``orders_of``: the whole orders of status lines (by index),
    where ``statuses`` holds only the fields a lookup needs."""
    followed = follow(book, diffs, diff_seqs, statuses, status_seqs, orders_of)
    if followed is None:
        return False
    if followed.n and followed.crossed():
        return False
    followed.apply()
    return True


@dataclass
class Followed:
    """A window's diffs followed oid by oid: each diff (``by_oid`` order: an oid's diffs together,
    in window order) with the order it acts on before and after it."""

    book: L4Book
    n: int
    diffs: pa.StructArray  # the window's diffs of the coin, in seq order
    seqs: pa.Array
    by_oid: Any  # window index of each diff, oids together
    oid: Any
    head: Any  # an oid's first diff
    kind: Any
    alive_before: Any
    alive_after: Any
    size_after: pa.Array  # text the diff leaves (remove: null)
    held: list[Any]  # the resting order each oid's first diff finds (a group an oid)
    held_alive: Any
    news: Any  # by-oid indexes of the `new`s
    found: Any  # the status line of each `new`
    lines: _StatusLines
    _leaves: tuple[set[int], list[tuple[Any, str]], list[Any]] | None = None

    def placement(self) -> tuple[pa.Array, pa.Array]:
        """Side and price text of the order each diff acts on (by-oid order): a ``new``'s own, else
        the one the oid's last ``new`` placed, else the resting order's."""
        at_new = self._latest_new()
        news = np.flatnonzero(self.kind == NEW)
        new_side, new_px = self._new_fields(news)
        placed = at_new >= 0
        k = pa.array(np.searchsorted(news, np.maximum(at_new, 0)))
        group = pa.array(np.cumsum(self.head) - 1)
        held_side = pa.array([None if h is None else ("B" if h.side == 0 else "A") for h in self.held], pa.string())
        held_px = pa.array([None if h is None else h.px_text for h in self.held], pa.string())
        mask = pa.array(placed)
        if len(news):
            side = pc.if_else(mask, pc.take(new_side, k), pc.take(held_side, group))
            px = pc.if_else(mask, pc.take(new_px, k), pc.take(held_px, group))
        else:
            side, px = pc.take(held_side, group), pc.take(held_px, group)
        return side, px

    def size_before(self) -> pa.Array:
        """The size each diff finds (text): the one the oid's diff before left, or its resting size."""
        group = np.cumsum(self.head) - 1
        held_size = pa.array([None if h is None else h.sz_text for h in self.held], pa.string())
        before = np.arange(self.n) - 1
        return pc.if_else(pa.array(self.head), pc.take(held_size, pa.array(group)), pc.take(self.size_after, pa.array(np.maximum(before, 0))))

    def _latest_new(self) -> Any:
        """For each diff, the by-oid index of its oid's latest ``new`` so far (itself included), or -1."""
        at_new = np.maximum.accumulate(np.where(self.kind == NEW, np.arange(self.n), -1))
        starts = np.flatnonzero(self.head)
        group_start = starts[np.cumsum(self.head) - 1]
        return np.where(at_new >= group_start, at_new, -1)

    def _new_fields(self, at: Any) -> tuple[pa.Array, pa.Array]:
        """Side and price of the ``new``s at by-oid indexes ``at`` (the diff's, else its status line's)."""
        if not len(at):
            return pa.array([], pa.string()), pa.array([], pa.string())
        window_at = pa.array(self.by_oid[at])
        rows = pa.array(self.found[np.searchsorted(self.news, at)])
        side = _or(pc.take(pc.struct_field(self.diffs, "side"), window_at), pc.take(self.lines.field("side"), rows))
        px = _or(pc.take(pc.struct_field(self.diffs, "px"), window_at), pc.take(self.lines.field("limitPx"), rows))
        return side, px

    def leaves(self) -> tuple[set[int], list[tuple[Any, str]], list[Any]]:
        """What the window leaves of the book: the resting orders removed, those resized, and those
        placed (``(seq of its new, oid, side, px, user, size, status line)``, in arrival order)."""
        if self._leaves is not None:
            return self._leaves
        n, head = self.n, self.head
        ends = np.append(np.flatnonzero(head)[1:] - 1, n - 1)
        final_new = self._latest_new()[ends]
        final_alive = self.alive_after[ends]
        final_size = pc.take(self.size_after, pa.array(ends)).to_pylist()
        removed: set[int] = set()
        resized: list[tuple[Any, str]] = []
        for g in np.flatnonzero(self.held_alive).tolist():
            h = self.held[g]
            if not final_alive[g] or final_new[g] >= 0:
                removed.add(h.oid)
            elif final_size[g] is not None and final_size[g] != h.sz_text:
                resized.append((h, final_size[g]))
        staying = np.flatnonzero(final_alive & (final_new >= 0))
        placed: list[Any] = []
        if len(staying):
            at = final_new[staying]
            rows = self.found[np.searchsorted(self.news, at)]
            window_at = pa.array(self.by_oid[at])
            side, px = (a.to_pylist() for a in self._new_fields(at))
            user = _or(pc.take(pc.struct_field(self.diffs, "user"), window_at), pc.take(self.lines.field("user"), pa.array(rows))).to_pylist()
            placed = sorted(zip(pc.take(self.seqs, window_at).to_pylist(), self.oid[at].tolist(), side, px, user, [final_size[g] for g in staying.tolist()], rows.tolist()))
        self._leaves = removed, resized, placed
        return self._leaves

    def crossed(self) -> bool:
        """Whether the book would be crossed at the window's end."""
        removed, _, placed = self.leaves()
        return _crossed(self.book, removed, [(side, px) for _, _, side, px, *_ in placed])

    def apply(self) -> None:
        """Change the book as the window leaves it (only the orders that changed)."""
        if not self.n:
            return
        book = self.book
        removed, resized, placed = self.leaves()
        for gone in removed:
            book._remove(gone)
        for h, size in resized:
            h.resize(size)
            h.level.shown = None  # type: ignore[union-attr]
        orders = self.lines.orders([row for *_, row in placed])  # only the orders that stay become dicts
        for (_, o, side, px, user, size, _), whole in zip(placed, orders):
            book._add(_Resting(o, 0 if side == "B" else 1, px, size, user, whole, None))
        book.aged()  # the window is a generation of its own: what it placed and keeps settles a few windows on


def follow(book: L4Book, diffs: pa.StructArray, diff_seqs: pa.Array, statuses: pa.StructArray, status_seqs: pa.Array,
           orders_of: Callable[[list[int]], list[dict[str, Any]]] | None = None) -> Followed | None:
    """Each oid's diffs followed through the window with the book's own checks on every diff (a
    ``new`` for an oid resting already or without its status line in its block, a change to an oid
    not resting, an ``origSz`` that is not the size held); None where one fails, or a diff is of
    another form. Sorted by oid in numpy: no Python a diff."""
    coin = book.coin
    same = pc.fill_null(pc.equal(pc.struct_field(diffs, "coin"), coin), True)
    ordered = diff_seqs.to_numpy(zero_copy_only=False)
    if len(ordered) > 1 and not np.all(ordered[1:] > ordered[:-1]):  # several parts: put them in seq order
        order = pc.sort_indices(diff_seqs)
        diffs, diff_seqs, same = diffs.take(order), pc.take(diff_seqs, order), pc.take(same, order)
    if not pc.all(same).as_py():
        diffs, diff_seqs = diffs.filter(same), diff_seqs.filter(same)
    lines = _StatusLines(statuses, status_seqs, coin, orders_of)
    n = len(diffs)
    empty = np.empty(0, np.int64)
    if not n:
        return Followed(book, 0, diffs, diff_seqs, empty, empty, empty.astype(bool), empty, empty.astype(bool), empty.astype(bool), pa.array([], pa.string()), [], empty.astype(bool), empty, empty, lines)
    parsed = _changes(pc.struct_field(diffs, "raw_book_diff"))
    if parsed is None:
        return None  # a diff of another form: the book's own parser decides
    kinds, first, second = parsed
    after = pc.if_else(pc.equal(kinds, UPDATE), second, first)  # the size each diff leaves (remove: null)
    oids = pc.struct_field(diffs, "oid").to_numpy(zero_copy_only=False)
    by_oid = np.lexsort((np.arange(n), oids))  # each oid's diffs together, in window order
    oid = oids[by_oid]
    head = np.ones(n, bool)
    head[1:] = oid[1:] != oid[:-1]
    kind = kinds.to_numpy(zero_copy_only=False)[by_oid]
    resting = book._orders
    group = np.cumsum(head) - 1
    held = [resting.get(o) for o in oid[head].tolist()]  # the order each oid's first diff finds
    held_alive = np.array([h is not None for h in held], bool)
    taken = pa.array(by_oid)
    size_after = pc.take(after, taken)
    zero = pc.fill_null(pc.match_substring_regex(size_after, r"^[-+]?(?:0+\.?0*|\.0+)(?:[eE][-+]?[0-9]+)?$"), False).to_numpy(zero_copy_only=False)
    alive_after = (kind == NEW) | ((kind != REMOVE) & ~zero)
    alive_before = np.empty(n, bool)
    alive_before[head] = held_alive
    alive_before[1:][~head[1:]] = alive_after[:-1][~head[1:]]
    if np.any((kind == NEW) & alive_before) or np.any((kind != NEW) & ~alive_before):
        return None  # a new oid resting already, or a change to one not resting
    updates = np.flatnonzero(kind == UPDATE)
    if len(updates):  # origSz must be the size held: the one the oid's diff before left, or its resting size
        held_size = pa.array([None if h is None else h.sz_text for h in held], pa.string())
        before = np.where(head[updates], -1, updates - 1)
        held_text = pc.take(held_size, pa.array(group[updates]))
        prior = pc.if_else(pa.array(before >= 0), pc.take(size_after, pa.array(np.maximum(before, 0))), held_text)
        orig = pc.take(pc.take(first, taken), pa.array(updates))
        differ = np.flatnonzero(~pc.fill_null(pc.equal(orig, prior), False).to_numpy(zero_copy_only=False))
        for i in differ.tolist():  # the same size written otherwise ("1.0" for "1")?
            a, b = orig[i].as_py(), prior[i].as_py()
            if a is None or b is None or Decimal(a) != Decimal(b):
                return None
    news = np.flatnonzero(kind == NEW)
    blocks = pc.struct_field(diffs, "block").to_numpy(zero_copy_only=False)[by_oid]
    found = lines.find(blocks[news], oid[news])
    if np.any(found < 0):
        return None  # a new without its order's status line in its block
    return Followed(book, n, diffs, diff_seqs, by_oid, oid, head, kind, alive_before, alive_after, size_after, held, held_alive, news, found, lines)


def _or(value: pa.Array, other: pa.Array) -> pa.Array:
    """``value or other`` of each pair, as Python's ``or`` takes it (an empty text is no value)."""
    given = pc.fill_null(pc.not_equal(value, ""), False)
    return pc.if_else(given, value, other)


def _changes(text: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array] | None:
    """Each ``raw_book_diff`` text as (kind, first size, second size): ``new``/``modified`` their
    ``sz``, ``update`` its ``origSz`` and ``newSz``; None if any is of another form. Told apart by
    their fixed prefixes; each form's sizes read by its own pattern, from its own rows only."""
    n = len(text)
    kinds = pc.if_else(pc.equal(text, '"remove"'), pa.scalar(REMOVE, pa.int8()), pa.scalar(None, pa.int8()))
    first = pa.nulls(n, pa.string())
    second = pa.nulls(n, pa.string())
    for kind, prefix, pattern in _FORMS:
        matched = pc.starts_with(text, prefix)
        if not pc.any(matched).as_py():
            continue
        found = pc.extract_regex(text.filter(matched), pattern)
        if found.null_count:
            return None  # the prefix of a form, but not the rest of it
        kinds = pc.if_else(matched, pa.scalar(kind, pa.int8()), kinds)
        first = pc.replace_with_mask(first, matched, pc.struct_field(found, "a"))
        if kind == UPDATE:
            second = pc.replace_with_mask(second, matched, pc.struct_field(found, "b"))
    if kinds.null_count:
        return None
    return kinds, first, second


class _StatusLines:
    """Where a ``new`` finds its status line: the block's last line for the oid (as the book's own
    lookup keeps it), found for many at once (``find``); a line's fields are read only for the
    orders that stay (``field``, ``orders``)."""

    def __init__(self, statuses: pa.StructArray, seqs: pa.Array, coin: str, orders_of: Callable[[list[int]], list[dict[str, Any]]] | None = None) -> None:
        self.by_seq = pc.sort_indices(seqs) if len(statuses) else pa.array([], pa.uint64())
        self.lines = statuses.take(self.by_seq) if len(statuses) else statuses
        self.orders_of = orders_of
        order = pc.struct_field(self.lines, "order")
        self.order = order
        ok = pc.and_(pc.is_valid(pc.struct_field(order, "oid")), pc.fill_null(pc.equal(pc.struct_field(order, "coin"), coin), True))
        self.rows = np.flatnonzero(ok.to_numpy(zero_copy_only=False)) if len(statuses) else np.empty(0, np.int64)
        self.blocks = pc.struct_field(self.lines, "block").to_numpy(zero_copy_only=False)[self.rows] if len(statuses) else np.empty(0, np.int64)
        self.oids = pc.struct_field(order, "oid").to_numpy(zero_copy_only=False)[self.rows] if len(statuses) else np.empty(0, np.int64)

    def find(self, blocks: Any, oids: Any) -> Any:
        """The line of each ``(block, oid)``, or -1."""
        if not len(oids) or not len(self.oids):
            return np.full(len(oids), -1, np.int64)
        uniq, inverse = np.unique(np.concatenate([self.oids, oids]), return_inverse=True)
        low = min(int(self.blocks.min()), int(blocks.min()))
        span = max(int(self.blocks.max()), int(blocks.max())) - low + 1
        if span * len(uniq) >= 2**62:
            return np.full(len(oids), -1, np.int64)  # too wide to key at once: the block path takes it
        keys = (self.blocks - low) * len(uniq) + inverse[: len(self.oids)]
        wanted = (blocks - low) * len(uniq) + inverse[len(self.oids) :]
        by_key = np.argsort(keys, kind="stable")
        keys, rows = keys[by_key], self.rows[by_key]
        last = np.ones(len(keys), bool)
        last[:-1] = keys[1:] != keys[:-1]  # of lines of one key, the last (by seq) is the one kept
        keys, rows = keys[last], rows[last]
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where(keys[at] == wanted, rows[at], -1)

    def field(self, name: str) -> pa.Array:
        return pc.struct_field(self.lines, "user") if name == "user" else pc.struct_field(self.order, name)

    def orders(self, rows: list[int]) -> list[dict[str, Any]]:
        if not rows:
            return []
        if self.orders_of is not None:
            return self.orders_of(pc.take(self.by_seq, pa.array(rows, pa.int64())).to_pylist())
        return pc.struct_field(self.lines.take(pa.array(rows, pa.int64())), "order").to_pylist()

    def order_fields(self, rows: list[int], names: tuple[str, ...]) -> list[list[Any]]:
        """Fields ``names`` of the orders of lines ``rows``, a list of values each (``orders``,
        without a dict an order)."""
        if not rows:
            return [[] for _ in names]
        if self.orders_of is not None:
            return self.orders_of(pc.take(self.by_seq, pa.array(rows, pa.int64())).to_pylist(), names)  # type: ignore[call-arg]
        orders = pc.struct_field(self.lines.take(pa.array(rows, pa.int64())), "order")
        return [pc.struct_field(orders, name).to_pylist() for name in names]


def _crossed(book: L4Book, removed: set[int], placed: list[tuple[str, str]]) -> bool:
    """Whether the book would be crossed once ``removed`` leave it and ``placed`` (side, px) join."""
    best: list[Decimal | None] = [None, None]
    for index in (0, 1):
        prices, levels = book._prices[index], book._levels[index]
        for px in reversed(prices) if index == 0 else prices:
            if any(oid not in removed for oid in levels[px].queue):
                best[index] = px
                break
    for side, text in placed:
        index = 0 if side == "B" else 1
        px = Decimal(text)
        if best[index] is None or (px > best[index] if index == 0 else px < best[index]):  # type: ignore[operator]
            best[index] = px
    return best[0] is not None and best[1] is not None and best[0] >= best[1]


__all__ = ["Followed", "apply_window", "follow"]
