"""hftbacktest's L3 rows from the archive's ``l4Diffs`` columns, in Arrow and numpy: the book at the
start from ``l4_state`` (the last snapshot and the rows after it), then each diff as one row, with no
Python object per diff. Used where that start can be vouched for (``safe``); else the per-block path
(``Replay``'s derived ``l4Book``, which rebuilds an unsafe book at the next snapshot) runs."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .events import ADD_ORDER_EVENT, BUY_EVENT, CANCEL_ORDER_EVENT, DEPTH_CLEAR_EVENT, MODIFY_ORDER_EVENT, SELL_EVENT
from .l2_columns import MS, NotColumnar

NEW, MODIFIED, UPDATE, NEW_SIZE = '{"new":{"sz":"', '{"modified":{"sz":"', '{"update":{"origSz":"', '","newSz":"'


def book_rows(book: Any, exch: int, local: int) -> Any:
    """A whole L4 book as a clear a side then ``ADD_ORDER_EVENT`` rows, best price first, in priority order."""
    import numpy as np

    from .events import event_dtype

    out: list[tuple[int, int, int, float, float, int, int, float]] = []
    for side, flag, best in (("B", BUY_EVENT, min), ("A", SELL_EVENT, max)):
        orders = book.orders(side)
        if orders:
            out.append((DEPTH_CLEAR_EVENT | flag, exch, local, float(best(float(o["limitPx"]) for o in orders)), 0.0, 0, 0, 0.0))
            out.extend((ADD_ORDER_EVENT | flag, exch, local, float(o["limitPx"]), float(o["sz"]), int(o["oid"]), 0, 0.0) for o in orders)
    return np.array(out, dtype=event_dtype()) if out else np.zeros(0, event_dtype())


def sizes(raw: pa.Array, new: Any, modified: Any, update: Any, *, with_texts: bool = False) -> tuple[Any, list[pa.Array]]:
    """Each diff's size as a float (0 for a remove), cut from the JSON text by its shape's fixed
    prefix (``{"new":{"sz":"S"}}``, ``{"modified":{"sz":"S"}}``; an update's ``newSz`` follows its
    ``origSz``), and, if asked, the size texts (for a lot read from them)."""
    import numpy as np

    out = np.zeros(len(raw), np.float64)
    texts = []
    as_bytes = raw.cast(pa.binary())
    for mask, prefix in ((new, NEW), (modified, MODIFIED)):
        if mask.any():
            text = pc.binary_slice(as_bytes.filter(pa.array(mask)), len(prefix), -3).cast(pa.string())
            out[mask] = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
            if with_texts:
                texts.append(text)
    if update.any():
        parts = pc.split_pattern(raw.filter(pa.array(update)), NEW_SIZE, max_splits=1)
        if pc.any(pc.not_equal(pc.list_value_length(parts), 2)).as_py():
            raise NotColumnar("an update without newSz")
        text = pc.binary_slice(pc.list_element(parts, 1).cast(pa.binary()), 0, -3).cast(pa.string())
        out[update] = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        if with_texts:
            texts.append(text)
    return out, texts


class DiffRows:
    """``l4Diffs`` batches (one coin, receive order) as L3 rows; blocks up to ``after_block`` skipped
    (they are in the starting book already)."""

    FIELDS = ("block", "block_ms", "oid", "side", "px", "raw_book_diff")  # what is read of a diff row (not its user)

    def __init__(self, after_block: int, *, track_decimals: bool = False) -> None:
        self.after_block = after_block
        self.track_decimals = track_decimals  # without a meta: the lot from the most decimals a size shows
        self.sz_decimals = 0

    def rows(self, batch: pa.RecordBatch) -> Any:
        import numpy as np

        from .events import event_dtype

        if batch.column("raw").null_count != batch.num_rows or batch.column("data").null_count:
            raise NotColumnar("rows kept whole as text")
        keep = pc.greater(batch.column("data").field("block"), self.after_block)
        if not pc.all(keep).as_py():  # only the first batches hold blocks the starting book has
            batch = batch.filter(keep)
        data = batch.column("data")
        if not batch.num_rows:
            return np.zeros(0, event_dtype())
        raw = data.field("raw_book_diff")
        # the node's four shapes, their key order proven by exact prefixes (anything else: the frame path)
        remove = pc.equal(raw, '"remove"').to_numpy(zero_copy_only=False)
        new = pc.starts_with(raw, NEW).to_numpy(zero_copy_only=False)
        update = pc.starts_with(raw, UPDATE).to_numpy(zero_copy_only=False)
        modified = pc.starts_with(raw, MODIFIED).to_numpy(zero_copy_only=False)
        closed = pc.ends_with(raw, '"}}').to_numpy(zero_copy_only=False)
        if not ((remove | ((new | update | modified) & closed)).all()):
            raise NotColumnar("a book diff of another shape")
        try:
            sz, texts = sizes(raw, new, modified, update, with_texts=self.track_decimals)
        except pa.ArrowInvalid as exc:
            raise NotColumnar(f"a size that is not a number: {exc}") from None
        if self.track_decimals:
            for text in texts:
                decimals = pc.utf8_length(pc.extract_regex(text, r"\.(?P<d>\d*?)0*$").field("d"))
                self.sz_decimals = max(self.sz_decimals, pc.max(decimals).as_py() or 0)
        kinds = np.where(remove | (~new & (sz == 0)), CANCEL_ORDER_EVENT, np.where(new, ADD_ORDER_EVENT, MODIFY_ORDER_EVENT))
        buy = pc.equal(data.field("side"), "B").to_numpy(zero_copy_only=False)
        out = np.zeros(batch.num_rows, event_dtype())
        out["ev"] = (kinds | np.where(buy, BUY_EVENT, SELL_EVENT)).astype(np.uint64)
        out["exch_ts"] = data.field("block_ms").to_numpy(zero_copy_only=False).astype(np.int64) * MS
        out["local_ts"] = batch.column("recv_ns").to_numpy()
        out["px"] = pc.cast(data.field("px"), pa.float64()).to_numpy(zero_copy_only=False)
        out["qty"] = np.where(kinds == CANCEL_ORDER_EVENT, 0.0, sz)
        out["order_id"] = data.field("oid").to_numpy(zero_copy_only=False).astype(np.uint64)
        return out


__all__ = ["DiffRows", "book_rows"]
