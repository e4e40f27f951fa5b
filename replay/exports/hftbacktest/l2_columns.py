"""hftbacktest's L2 rows from the archive's columns, a batch of frames at a time, in Arrow and numpy:
what the per-frame path does (``levels.LevelDiff``), without a Python object per level.

A frame's levels are flattened to (frame, side, px, sz); each is looked up in the previous frame's
levels by (frame, side, price) keys, sorted and searched, so a level that changed, came or left is
found in C. Frames where a consumer's book must start again (a new UTC day, a new recorder session,
the first frame after a gap) get a clear and the whole book as snapshot rows instead."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..levels import DAY_NS
from .events import BUY_EVENT, DEPTH_CLEAR_EVENT, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, SELL_EVENT, TRADE_EVENT

MS = 1_000_000


class NotColumnar(Exception):
    """A batch the columns cannot carry (rows kept as raw text, another shape): use the frame path."""


class BookRows:
    """Turns ``l2Book`` batches of one stream, in receive order, into event rows (no EXCH/LOCAL flags)."""

    def __init__(self, stream: str, resumes: list[int]) -> None:
        import numpy as np

        self.np = np
        self.stream = stream
        self.resumes = np.array(sorted(resumes), dtype=np.int64)
        self.prev: tuple[Any, Any, Any] | None = None  # the last frame's (side, px, sz)
        self.prev_day: int | None = None
        self.prev_session: str | None = None
        self.prev_gap = 0
        self.first_px: float | None = None

    def rows(self, batch: pa.RecordBatch) -> Any:
        np = self.np
        from .events import event_dtype

        batch = batch.filter(pc.equal(batch.column("stream"), self.stream))
        if not batch.num_rows:
            return np.zeros(0, event_dtype())
        if batch.column("raw").null_count != batch.num_rows or batch.column("data").null_count:
            raise NotColumnar("rows kept whole as text")
        data = batch.column("data")
        levels = data.field("levels")
        if pc.any(pc.not_equal(pc.list_value_length(levels), 2)).as_py():
            raise NotColumnar("a frame without two sides")
        recv = batch.column("recv_ns").to_numpy()
        exch = data.field("time").to_numpy(zero_copy_only=False).astype(np.int64) * MS
        n = len(recv)
        sides = levels.flatten()
        entries = sides.flatten()
        parent = pc.list_parent_indices(sides).to_numpy()
        frame, side = parent // 2, parent % 2
        px = pc.cast(entries.field("px"), pa.float64()).to_numpy(zero_copy_only=False)
        sz = pc.cast(entries.field("sz"), pa.float64()).to_numpy(zero_copy_only=False)
        if self.first_px is None and len(px):
            self.first_px = float(px[0])

        # where the book starts again
        day = recv // DAY_NS
        session = np.asarray(batch.column("session").to_pylist(), dtype=object)
        gap = np.searchsorted(self.resumes, recv, side="left")
        prev_day = np.concatenate([[self.prev_day if self.prev_day is not None else -1], day[:-1]])
        prev_session = np.concatenate([np.asarray([self.prev_session], dtype=object), session[:-1]])
        prev_gap = np.concatenate([[self.prev_gap], gap[:-1]])
        snapshot = (day != prev_day) | (session != prev_session) | (gap != prev_gap)
        if self.prev is None:
            snapshot[0] = True

        # the previous frame's levels, moved to the frame after them
        if self.prev is not None:
            p_side, p_px, p_sz = self.prev
            b_frame = np.concatenate([np.zeros(len(p_side), np.int64), frame + 1])
            b_side, b_px, b_sz = np.concatenate([p_side, side]), np.concatenate([p_px, px]), np.concatenate([p_sz, sz])
        else:
            b_frame, b_side, b_px, b_sz = frame + 1, side, px, sz
        keep_b = b_frame < n
        keep_b[keep_b] &= ~snapshot[b_frame[keep_b]]
        b_frame, b_side, b_px, b_sz = b_frame[keep_b], b_side[keep_b], b_px[keep_b], b_sz[keep_b]

        prices, codes = np.unique(np.concatenate([px, b_px]), return_inverse=True)
        width = len(prices) + 1
        a_key = (frame * 2 + side) * width + codes[: len(px)]
        b_key = (b_frame * 2 + b_side) * width + codes[len(px) :]
        order = np.argsort(b_key, kind="stable")
        sorted_b = b_key[order]
        at = np.searchsorted(sorted_b, a_key)
        at_clipped = np.minimum(at, max(len(sorted_b) - 1, 0))
        found = (at < len(sorted_b)) & (sorted_b[at_clipped] == a_key) if len(sorted_b) else np.zeros(len(a_key), bool)
        unchanged = found & (b_sz[order][at_clipped] == sz) if len(sorted_b) else found
        is_snap = snapshot[frame]
        emit = is_snap | ~unchanged
        sorted_a = np.sort(a_key)
        at_b = np.searchsorted(sorted_a, b_key)
        gone = (at_b >= len(sorted_a)) | (sorted_a[np.minimum(at_b, max(len(sorted_a) - 1, 0))] != b_key) if len(sorted_a) else np.ones(len(b_key), bool)

        # the clears: each snapshot frame's non-empty sides, up to their last level
        offsets = sides.offsets.to_numpy()
        lengths = offsets[1:] - offsets[:-1]
        side_frame, side_side = np.arange(len(lengths)) // 2, np.arange(len(lengths)) % 2
        clear = snapshot[side_frame] & (lengths > 0)
        clear_px = px[offsets[1:][clear] - 1]

        f_rows = np.concatenate([side_frame[clear], frame[emit], b_frame[gone]])
        s_rows = np.concatenate([side_side[clear], side[emit], b_side[gone]])
        # the frame path's order: the clears of a frame first, then each side's changes, then its removals
        not_clear = np.concatenate([np.zeros(clear.sum(), np.int8), np.ones(emit.sum() + gone.sum(), np.int8)])
        removal = np.concatenate([np.zeros(clear.sum() + emit.sum(), np.int8), np.ones(gone.sum(), np.int8)])
        kind = np.concatenate([np.full(clear.sum(), DEPTH_CLEAR_EVENT), np.where(is_snap[emit], DEPTH_SNAPSHOT_EVENT, DEPTH_EVENT), np.full(gone.sum(), DEPTH_EVENT)])
        out_px = np.concatenate([clear_px, px[emit], b_px[gone]])
        out_qty = np.concatenate([np.zeros(clear.sum()), sz[emit], np.zeros(gone.sum())])
        position = np.arange(len(f_rows))
        sort = np.lexsort((position, removal, s_rows, not_clear, f_rows))
        out = np.zeros(len(sort), event_dtype())
        f_sorted = f_rows[sort]
        out["ev"] = (kind[sort] | np.where(s_rows[sort] == 1, SELL_EVENT, BUY_EVENT)).astype(np.uint64)
        out["exch_ts"] = exch[f_sorted]
        out["local_ts"] = recv[f_sorted]
        out["px"] = out_px[sort]
        out["qty"] = out_qty[sort]

        last = frame == n - 1
        self.prev = (side[last], px[last], sz[last])
        self.prev_day, self.prev_session, self.prev_gap = int(day[-1]), session[-1], int(gap[-1])
        return out


def trade_rows(batch: pa.RecordBatch, stream: str) -> Any:
    """``trades`` batches as ``TRADE_EVENT`` rows, the taker's side, in receive order."""
    import numpy as np

    from .events import event_dtype

    batch = batch.filter(pc.equal(batch.column("stream"), stream))
    if not batch.num_rows:
        return np.zeros(0, event_dtype())
    if batch.column("raw").null_count != batch.num_rows or batch.column("data").null_count:
        raise NotColumnar("rows kept whole as text")
    data = batch.column("data")
    trades = data.flatten() if isinstance(data, pa.ListArray) else data
    parent = pc.list_parent_indices(data).to_numpy()
    recv = batch.column("recv_ns").to_numpy()
    out = np.zeros(len(trades), event_dtype())
    buy = pc.equal(trades.field("side"), "B").to_numpy(zero_copy_only=False)
    out["ev"] = (TRADE_EVENT | np.where(buy, BUY_EVENT, SELL_EVENT)).astype(np.uint64)
    out["exch_ts"] = trades.field("time").to_numpy(zero_copy_only=False).astype(np.int64) * MS
    out["local_ts"] = recv[parent]
    out["px"] = pc.cast(trades.field("px"), pa.float64()).to_numpy(zero_copy_only=False)
    out["qty"] = pc.cast(trades.field("sz"), pa.float64()).to_numpy(zero_copy_only=False)
    return out


__all__ = ["BookRows", "NotColumnar", "trade_rows"]
