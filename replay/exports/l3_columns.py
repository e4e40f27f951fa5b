"""hftbacktest's L3 rows from the archive's ``l4Diffs`` columns, in Arrow and numpy: the book at the
start from ``l4_state`` (the last snapshot and the rows after it), then each diff as one row, with no
Python object per diff. Used where that start can be vouched for (``safe``); else the per-block path
(``Replay``'s derived ``l4Book``, which rebuilds an unsafe book at the next snapshot) runs."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .l2_columns import BUY_EVENT, MS, SELL_EVENT, NotColumnar

DEPTH_CLEAR_EVENT, ADD_ORDER_EVENT, CANCEL_ORDER_EVENT, MODIFY_ORDER_EVENT = 3, 10, 11, 12
KIND = r'^(?:\{"(?P<kind>new|update|modified)":\{|"(?P<remove>remove)"$)'
SIZE = r'"(?:sz|newSz)":"(?P<sz>[^"]+)"\}\}$'


def book_rows(book: Any, exch: int, local: int) -> Any:
    """A whole L4 book as a clear a side then ``ADD_ORDER_EVENT`` rows, best price first, in priority order."""
    import numpy as np

    from .hftbacktest import event_dtype

    out: list[tuple[int, int, int, float, float, int, int, float]] = []
    for side, flag, best in (("B", BUY_EVENT, min), ("A", SELL_EVENT, max)):
        orders = book.orders(side)
        if orders:
            out.append((DEPTH_CLEAR_EVENT | flag, exch, local, float(best(float(o["limitPx"]) for o in orders)), 0.0, 0, 0, 0.0))
            out.extend((ADD_ORDER_EVENT | flag, exch, local, float(o["limitPx"]), float(o["sz"]), int(o["oid"]), 0, 0.0) for o in orders)
    return np.array(out, dtype=event_dtype()) if out else np.zeros(0, event_dtype())


class DiffRows:
    """``l4Diffs`` batches (one coin, receive order) as L3 rows; blocks up to ``after_block`` skipped
    (they are in the starting book already)."""

    def __init__(self, after_block: int) -> None:
        self.after_block = after_block
        self.sz_decimals = 0

    def rows(self, batch: pa.RecordBatch) -> Any:
        import numpy as np

        from .hftbacktest import event_dtype

        if batch.column("raw").null_count != batch.num_rows or batch.column("data").null_count:
            raise NotColumnar("rows kept whole as text")
        data = batch.column("data")
        keep = pc.greater(data.field("block"), self.after_block)
        batch, data = batch.filter(keep), data.filter(keep)
        if not batch.num_rows:
            return np.zeros(0, event_dtype())
        raw = data.field("raw_book_diff")
        kind = pc.extract_regex(raw, KIND)
        if kind.null_count:
            raise NotColumnar("a book diff of another shape")
        remove = pc.equal(kind.field("remove"), "remove").to_numpy(zero_copy_only=False)
        new = pc.equal(kind.field("kind"), "new").to_numpy(zero_copy_only=False)
        sized = pc.extract_regex(raw, SIZE)  # a struct's field keeps its values where the struct is null
        has_size = pc.invert(pc.is_null(sized)).to_numpy(zero_copy_only=False)
        if (has_size == remove).any():
            raise NotColumnar("a book diff without its size")
        size = pc.if_else(pc.is_null(sized), "0", sized.field("sz"))
        decimals = pc.utf8_length(pc.extract_regex(size, r"\.(?P<d>\d*?)0*$").field("d"))
        self.sz_decimals = max(self.sz_decimals, pc.max(decimals).as_py() or 0)
        sz = pc.cast(size, pa.float64()).to_numpy(zero_copy_only=False)
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
