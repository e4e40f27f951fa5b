"""hftbacktest's event rows, as far as writing them needs: the flags and kinds of ``ev``, the
64-byte row (``event_dtype``), and the event order its ``correct_event_order`` documents. Numpy only:
hftbacktest itself is not needed to write its files."""

from __future__ import annotations

from typing import Any

EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28
DEPTH_EVENT = 1
TRADE_EVENT = 2
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4
ADD_ORDER_EVENT = 10
CANCEL_ORDER_EVENT = 11
MODIFY_ORDER_EVENT = 12

EVENT_FIELDS = [("ev", "<u8"), ("exch_ts", "<i8"), ("local_ts", "<i8"), ("px", "<f8"), ("qty", "<f8"), ("order_id", "<u8"), ("ival", "<i8"), ("fval", "<f8")]
def event_dtype() -> Any:
    import numpy as np

    return np.dtype(EVENT_FIELDS, align=True)  # hftbacktest's: 64 bytes a row


def correct_local_timestamp(data: Any) -> int:
    """Shift every ``local_ts`` by the most negative feed latency, if any (hftbacktest's documented
    fix, base latency 0): the ns shifted."""
    if not len(data):
        return 0
    worst = int((data["local_ts"] - data["exch_ts"]).min())
    if worst >= 0:
        return 0
    data["local_ts"] -= worst
    return -worst


def correct_event_order(data: Any) -> Any:
    """Rows flagged ``EXCH_EVENT`` in exchange-time order and ``LOCAL_EVENT`` in receive-time order,
    a row that stands at the same place in both carrying both (hftbacktest's ``correct_event_order``
    documents this split)."""
    import numpy as np

    if (np.diff(data["exch_ts"]) >= 0).all() and (np.diff(data["local_ts"]) >= 0).all():  # the common case: both in order already
        data["ev"] |= EXCH_EVENT | LOCAL_EVENT  # in place: the rows are the caller's to give
        return data

    by_exch = np.argsort(data["exch_ts"], kind="stable")
    by_local = np.argsort(data["local_ts"], kind="stable")
    if np.array_equal(by_exch, by_local):
        out = data[by_exch]
        out["ev"] |= EXCH_EVENT | LOCAL_EVENT
        return out
    exch_ts, local_ts = data["exch_ts"].tolist(), data["local_ts"].tolist()
    order: list[tuple[int, int]] = []  # (row, flags)
    e = loc = 0
    n = len(data)
    ex, lo = by_exch.tolist(), by_local.tolist()
    while e < n or loc < n:
        if e < n and loc < n and exch_ts[ex[e]] == exch_ts[lo[loc]] and local_ts[ex[e]] == local_ts[lo[loc]]:
            order.append((ex[e], EXCH_EVENT | LOCAL_EVENT))
            e, loc = e + 1, loc + 1
        elif e < n and (loc >= n or exch_ts[ex[e]] < exch_ts[lo[loc]] or (exch_ts[ex[e]] == exch_ts[lo[loc]] and local_ts[ex[e]] < local_ts[lo[loc]])):
            order.append((ex[e], EXCH_EVENT))
            e += 1
        else:
            order.append((lo[loc], LOCAL_EVENT))
            loc += 1
    index = np.fromiter((row for row, _ in order), dtype=np.int64, count=len(order))
    out = data[index]
    out["ev"] |= np.fromiter((flags for _, flags in order), dtype=np.uint64, count=len(order))
    return out


__all__ = ["EVENT_FIELDS", "correct_event_order", "correct_local_timestamp", "event_dtype"]
