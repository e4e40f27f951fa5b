"""A window of blocks applied at once (``net.apply_window``, each oid followed in numpy) leaves the
book that applying the blocks one by one leaves, or refuses and leaves the book untouched: random
books and windows, good ones and ones with every kind of desync."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
from hypothesis import event, given, settings
from hypothesis import strategies as st

from replay.l4.net import apply_window
from schemas.channels import CHANNELS
from schemas.l4.book import L4Book

COIN = "BTC"
USER = "0x" + "ef" * 20
BIDS, ASKS = ["99.5", "99.0", "98.5", "98"], ["100.5", "101.0", "101.5", "102"]  # never crossed; "98" and "102" written short
SIZES = ["0.5", "1", "1.25", "2.0", "3"]


def order(oid: int, side: str, px: str, sz: str) -> dict[str, Any]:
    return {"coin": COIN, "side": side, "limitPx": px, "sz": sz, "oid": oid, "timestamp": oid, "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0",
            "children": [], "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "origSz": sz, "tif": "Gtc", "cloid": None}


@st.composite
def windows(draw: Any) -> tuple[L4Book, list[tuple[int, list[dict[str, Any]], list[dict[str, Any]]]]]:
    """A book, and blocks of status lines and diffs that mostly fit it (sometimes not)."""
    resting: dict[int, tuple[str, str, str]] = {}
    sides: list[list[dict[str, Any]]] = [[], []]
    for oid in range(1, draw(st.integers(0, 12)) + 1):
        side = draw(st.sampled_from("BA"))
        px, sz = draw(st.sampled_from(BIDS if side == "B" else ASKS)), draw(st.sampled_from(SIZES))
        resting[oid] = (side, px, sz)
        sides[side == "A"].append({"user": USER, **order(oid, side, px, sz)})
    book = L4Book.from_snapshot(COIN, 100, 0, *sides)
    blocks = []
    next_oid = 1000
    for height in range(101, 101 + draw(st.integers(1, 6))):
        statuses, diffs = [], []
        for _ in range(draw(st.integers(0, 8))):
            action = draw(st.sampled_from(["new"] * 4 + ["remove", "update", "modified", "zero"] * 2 + ["bad"]))
            live = sorted(resting)
            if action == "new" or not live:
                oid = draw(st.sampled_from([next_oid, *live])) if live and draw(st.integers(0, 40)) == 0 else next_oid  # now and then an oid resting already
                next_oid += 1
                side = draw(st.sampled_from("BA"))
                px, sz = draw(st.sampled_from(BIDS if side == "B" else ASKS)), draw(st.sampled_from(SIZES))
                if draw(st.integers(0, 40)):  # now and then no status line for it
                    statuses.append({"time": "t", "user": USER, "status": "open", "order": order(oid, side, px, sz)})
                diffs.append({"user": USER, "oid": oid, "coin": COIN, "side": side if draw(st.integers(0, 4)) else None, "px": px, "raw_book_diff": {"new": {"sz": sz}}})
                resting[oid] = (side, px, sz)
                continue
            oid = draw(st.sampled_from(live))
            side, px, sz = resting[oid]
            if action == "bad":  # an oid that does not rest, or an origSz that is not the size held
                if draw(st.booleans()):
                    diffs.append({"user": USER, "oid": 999_999, "coin": COIN, "side": side, "px": px, "raw_book_diff": "remove"})
                else:
                    diffs.append({"user": USER, "oid": oid, "coin": COIN, "side": side, "px": px, "raw_book_diff": {"update": {"origSz": "7.77", "newSz": "1"}}})
                continue
            if action == "remove":
                change: Any = "remove"
                del resting[oid]
            elif action == "zero":
                change = {"modified": {"sz": "0.0"}}
                del resting[oid]
            else:
                new = draw(st.sampled_from(SIZES))
                orig = sz if sz != "2.0" else "2"  # the same size written otherwise is no desync
                change = {"update": {"origSz": orig, "newSz": new}} if action == "update" else {"modified": {"sz": new}}
                resting[oid] = (side, px, new)
            diffs.append({"user": USER, "oid": oid, "coin": COIN, "side": side, "px": px, "raw_book_diff": change})
        blocks.append((height, statuses, diffs))
    return book, blocks


def columns(blocks: list[tuple[int, list[dict[str, Any]], list[dict[str, Any]]]]) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    diffs, statuses, diff_seqs, status_seqs = [], [], [], []
    for height, lines, changes in blocks:
        for i, line in enumerate(lines):
            statuses.append({"block": height, "block_ms": height, **line, "order": {**line["order"], "children": "[]"}})
            status_seqs.append((height << 21) | i)
        for i, diff in enumerate(changes):
            diffs.append({"block": height, "block_ms": height, **diff, "raw_book_diff": orjson.dumps(diff["raw_book_diff"]).decode()})
            diff_seqs.append((height << 21) | (1 << 18) | i)
    return (pa.array(diffs, CHANNELS["l4Diffs"].shape.arrow_type), pa.array(diff_seqs, pa.int64()),
            pa.array(statuses, CHANNELS["l4Statuses"].shape.arrow_type), pa.array(status_seqs, pa.int64()))


def state(book: L4Book) -> tuple[Any, ...]:
    return (book.height, book.safe, [[(o["oid"], o["limitPx"], o["sz"], o["user"]) for o in book.orders(side)] for side in "BA"], book.l2(10))


@settings(max_examples=300, deadline=None)
@given(windows())
def test_a_window_at_once_is_the_blocks_one_by_one_or_refused_untouched(window):
    book, blocks = window
    reference = L4Book.from_snapshot(COIN, 100, 0, *(book.orders(s) for s in "BA"))
    before = state(book)
    desyncs = []
    for height, lines, changes in blocks:
        desyncs += reference.apply_block(height, height, lines, [{k: v for k, v in d.items() if v is not None or k != "side"} for d in changes])
    taken = apply_window(book, *columns(blocks))
    event("taken at once" if taken else "refused")
    if not taken:
        assert state(book) == before  # refused: untouched, the block path records the desync
        assert desyncs, "a window the blocks apply cleanly was refused"
        return
    assert not desyncs
    book.height, book.time_ms = reference.height, reference.time_ms  # the caller sets the window's last block
    assert state(book) == state(reference)


@settings(max_examples=300, deadline=None)
@given(windows(), st.booleans(), st.booleans(), st.booleans())
def test_a_seeks_snapshot_straight_from_its_base_is_the_books_or_refused(window, from_checkpoint, safe, as_columns):
    """``seek.snapshot_at`` (the base's orders as they came, the window's net effect, no book made)
    shows exactly the book that applying the blocks to the base leaves: every order's dict, in
    priority order, from a node snapshot or a checkpoint (orders kept short or as given); it
    refuses only where the blocks find a desync."""
    from replay.l4.checkpoints import ORDER_FIELDS
    from replay.l4.seek import snapshot_at

    book, blocks = window
    base = L4Book.from_snapshot(COIN, 100, 0, *(book.orders(s) for s in "BA"))
    short = None
    if from_checkpoint:  # a checkpoint of a book that placed some orders itself: they are kept short
        base.apply_block(100, 100, [{"time": "t", "user": USER, "status": "open", "order": order(500, "B", "97.5", "4")}],
                         [{"user": USER, "oid": 500, "coin": COIN, "side": "B", "px": "97.5", "raw_book_diff": {"new": {"sz": "4"}}}])
        levels, short = base.checkpoint_levels(ORDER_FIELDS)
        base = L4Book.from_checkpoint(COIN, 100, 100, levels, short, safe)
    else:
        levels = [base.orders(s) for s in "BA"]
    sides: Any = levels
    if as_columns:  # the base as a typed row holds it: its orders as struct arrays, and as its frame's dicts
        from schemas.channels import L4_SNAPSHOT_ORDER
        from schemas.shapes import column_values

        sides = [pa.array([L4_SNAPSHOT_ORDER.prepare(o) for o in side], L4_SNAPSHOT_ORDER.arrow_type) for side in levels]
        levels = [column_values(L4_SNAPSHOT_ORDER, side) for side in sides]
    reference = L4Book.from_snapshot(COIN, 100, 0, *levels) if not from_checkpoint else L4Book.from_checkpoint(COIN, 100, 100, levels, short, safe)
    expected_before = reference.snapshot()
    desyncs = []
    for height, lines, changes in blocks:
        desyncs += reference.apply_block(height, height, lines, [{k: v for k, v in d.items() if v is not None or k != "side"} for d in changes])
    diffs, diff_seqs, statuses, status_seqs = columns(blocks)
    shown = snapshot_at(COIN, reference.height, reference.time_ms, safe if from_checkpoint else True, sides, short, (diff_seqs, diffs), (status_seqs, statuses), columns=as_columns)
    event("shown straight" if shown is not None else "refused")
    assert (L4Book.from_checkpoint(COIN, 100, 100, levels, short, safe) if from_checkpoint else L4Book.from_snapshot(COIN, 100, 0, *levels)).snapshot() == expected_before  # the base untouched
    if shown is None:
        assert desyncs, "a window the blocks apply cleanly was refused"
        return
    assert not desyncs
    assert shown == {**reference.snapshot(), "safe": reference.safe}
    assert orjson.dumps(shown) == orjson.dumps({**reference.snapshot(), "safe": reference.safe})  # the same types, the same key order


def test_windows_applied_at_once_settle_the_orders_they_keep():
    """A replay that only ever applies windows (derived ``l2Book`` from level sums) never applies a
    block: its placed orders still settle a few windows on, and nothing keeps the ones that left."""
    from schemas.l4.book import SETTLE_AFTER_BLOCKS

    book = L4Book.from_snapshot(COIN, 100, 0, [], [])
    height, oid = 100, 1
    for _ in range(SETTLE_AFTER_BLOCKS + 3):
        blocks = []
        for _ in range(3):
            height += 1
            lines = [{"time": "t", "user": USER, "status": "open", "order": order(o, "B", "99.5", "1")} for o in (oid, oid + 1)]
            changes = [{"user": USER, "oid": o, "coin": COIN, "side": "B", "px": "99.5", "raw_book_diff": {"new": {"sz": "1"}}} for o in (oid, oid + 1)]
            changes.append({"user": USER, "oid": oid + 1, "coin": COIN, "side": "B", "px": "99.5", "raw_book_diff": "remove"})
            blocks.append((height, lines, changes))
            oid += 2
        assert apply_window(book, *columns(blocks))
        assert book._fresh == [] and len(book._young) <= SETTLE_AFTER_BLOCKS
    settled = [r for r in book._orders.values() if type(r.rest) is tuple]
    assert len(book) == 3 * (SETTLE_AFTER_BLOCKS + 3) and len(settled) == 3 * 3  # the first windows' orders, compact
    assert book.orders("B")[0]["timestamp"] == 1 and book.orders("B")[-1]["oid"] == oid - 2
