"""hftbacktest's input: ``event_dtype`` arrays in ``.npz`` files (key ``data``), one a coin and UTC day.

- ``exch_ts`` is the exchange's time (an ``l2Book`` frame's ``time``, a trade's ``time``), ``local_ts``
  ours (``recv_ns``), both ns: the feed latency hftbacktest models is the one the archive measured.
- The book: ``DEPTH_CLEAR_EVENT`` (one a side, up to the snapshot's last level) then
  ``DEPTH_SNAPSHOT_EVENT`` rows at each day's start, each session's start and after each gap of the
  ``l2Book`` stream; between them ``DEPTH_EVENT`` rows for the levels that changed from the previous
  frame, quantity 0 for a level that left the 20 shown. Trades: ``TRADE_EVENT`` with the taker's side.
- Order: where exchange and receive orders differ, rows are split as hftbacktest's
  ``correct_event_order`` documents. On the columnar paths a receive time before the exchange's is
  raised to it (``npz``); the frame path shifts a negative feed latency away as hftbacktest's
  ``correct_local_timestamp`` documents (said in the summary). Numpy only: hftbacktest itself is
  not needed to write its files.
- Tick and lot size go beside the data as ``<coin>.json``, for ``BacktestAsset().tick_size(...).lot_size(...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import orjson

from schemas.layout import ArchiveError

from ..files import Output, safe_name
from ..levels import DAY_NS, LevelDiff
from ..reader import ArchiveSlice, stream_of
from ..summary import Summary
from .events import (
    ADD_ORDER_EVENT,
    BUY_EVENT,
    CANCEL_ORDER_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    MODIFY_ORDER_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    correct_event_order,
    correct_local_timestamp,
    event_dtype,
)
from .l2_columns import BookRows, NotColumnar, trade_rows
from .l3_columns import DiffRows, book_rows

MS = 1_000_000
COLUMNS = ["recv_ns", "session", "stream", "data", "raw"]
DIFF_ROWS = 65_536  # diff rows read at once (4 MB of event rows)

Row = tuple[int, int, int, float, float, int, int, float]


def write_hftbacktest(source: ArchiveSlice, coin: str, output: Output, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
    """L3 (market by order) where the archive holds the coin's order-level book, else L2."""
    columns, frames = (write_l3_columns, write_l3) if source.has_l4(coin) else (write_l2_columns, write_l2)
    paths, events, notes = len(summary.paths), summary.events, len(summary.notes)
    try:
        columns(source, coin, output, summary, progress)
    except NotColumnar:  # rows kept whole as text, another shape, an unsafe start: frame by frame
        output.discard()
        del summary.paths[paths:], summary.notes[notes:]
        summary.events = events
        frames(source, coin, output, summary, progress)


def write_l3_columns(source: ArchiveSlice, coin: str, output: Output, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
    """``write_l3`` from the archive's ``l4Diffs`` columns (``l3_columns``): the book at the start and
    at each day's start from ``l4_state``, then a row a diff, merged with the trades."""
    from ...l4 import l4_state

    diffs = source.batches("l4Diffs", coin, ["recv_ns", *(f"data.{name}" for name in DiffRows.FIELDS), "raw"], batch_size=DIFF_ROWS)
    first = next(diffs, None)
    if first is None or not first.num_rows:
        raise NotColumnar("no diff rows in the window")
    first_recv = int(first.column("recv_ns")[0].as_py())
    state = l4_state(source.store, coin, first_recv - 1)
    if not state.book.safe:
        raise NotColumnar("a start no snapshot vouches for")
    try:
        source.asset(coin)
        no_meta = False
    except ArchiveError:
        no_meta = True
    converter = DiffRows(state.book.height, track_decimals=no_meta)
    start_rows = book_rows(state.book, int(state.book.time_ms) * MS, first_recv)

    start = object()

    def with_start() -> Iterator[Any]:
        yield start  # the starting book first, then the diff batches
        yield first
        yield from diffs

    def convert(batch: Any) -> Any:
        return start_rows if batch is start else converter.rows(batch)

    def day_start(day: int, local: int) -> Any:
        at_day = l4_state(source.store, coin, day * DAY_NS - 1)
        return book_rows(at_day.book, int(at_day.book.time_ms) * MS, local)

    _write_merged([(with_start(), convert), *_trade_stream(source, coin)], output, coin, summary, progress, day_start)
    if any(p.name.startswith(safe_name(coin) + "_") for p in summary.paths):
        bids = state.book.orders("B")
        spec = source.spec(coin, float(bids[0]["limitPx"]) if bids else None, sz_decimals=converter.sz_decimals)
        summary.specs[coin] = spec
        summary.notes.append(f"{coin}: L3 (market by order) from the order-level book: use BacktestAsset().l3_fifo_queue_model()")
        write_json(output, f"{safe_name(coin)}.json", spec)


def write_l2_columns(source: ArchiveSlice, coin: str, output: Output, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
    """``write_l2`` from the archive's columns (``l2_columns``), merged with the trades by receive
    time a batch at a time and written a chunk at a time (``npz.DayFile``): memory holds a batch."""
    book_stream = stream_of("l2Book", coin)
    gaps = source.gaps(coin, ("l2Book",))
    converter = BookRows(book_stream, [g.start_ns for g in gaps if g.stream == book_stream])
    streams = [(source.batches("l2Book", coin, COLUMNS), converter.rows), *_trade_stream(source, coin)]
    _write_merged(streams, output, coin, summary, progress)
    if any(p.name.startswith(safe_name(coin) + "_") for p in summary.paths):
        spec = source.spec(coin, converter.first_px)
        summary.specs[coin] = spec
        write_json(output, f"{safe_name(coin)}.json", spec)


def _trade_stream(source: ArchiveSlice, coin: str) -> list[tuple[Iterator[Any], Callable[[Any], Any]]]:
    if not source.has(coin, "trades"):
        return []
    trade_stream = stream_of("trades", coin)
    return [(source.batches("trades", coin, COLUMNS), lambda batch: trade_rows(batch, trade_stream))]


def _write_merged(
    streams: list[tuple[Iterator[Any], Callable[[Any], Any]]],
    output: Output,
    coin: str,
    summary: Summary,
    progress: Callable[[int, int], None] | None,
    day_start: Callable[[int, int], Any] | None = None,
) -> None:
    """Rows of each stream (batches -> rows, each in receive order) merged by receive time, a batch at a
    time, into one ``DayFile`` a UTC day; ``day_start(day, first local_ts)`` gives rows each later
    day's file opens with."""
    import numpy as np

    from .npz import DayFile

    empty = np.zeros(0, event_dtype())
    pending = [empty for _ in streams]
    done = [False for _ in streams]
    day_file: DayFile | None = None
    day: int | None = None
    try:
        while True:
            for i, (batches, convert) in enumerate(streams):
                while not done[i] and not len(pending[i]):
                    batch = next(batches, None)
                    if batch is None:
                        done[i] = True
                    else:
                        rows = convert(batch)
                        if len(rows) and (np.diff(rows["local_ts"]) < 0).any():
                            raise NotColumnar("rows out of receive order")
                        pending[i] = rows
            live = [i for i in range(len(streams)) if len(pending[i])]
            if not live:
                break
            open_streams = [int(pending[i]["local_ts"][-1]) for i in live if not done[i]]
            watermark = min(open_streams) if open_streams else None
            taken = []
            for i in reversed(live):  # trades before the book at one instant, as hftbacktest's converters order them
                rows = pending[i]
                cut = len(rows) if watermark is None else int(np.searchsorted(rows["local_ts"], watermark, side="right"))
                taken.append(rows[:cut])
                pending[i] = rows[cut:]
            if len(taken) == 1:
                merged = taken[0]  # one stream: already in receive order
            else:
                merged = np.concatenate(taken)
                merged = merged[np.argsort(merged["local_ts"], kind="stable")]
            days = merged["local_ts"] // DAY_NS
            starts = np.flatnonzero(np.concatenate([[True], days[1:] != days[:-1]]))
            for k, start in enumerate(starts.tolist()):
                end = starts[k + 1] if k + 1 < len(starts) else len(merged)
                this_day = int(days[start])
                if this_day != day:
                    first_day = day is None
                    if day_file is not None:
                        _finish(day_file, coin, summary)
                    day, day_file = this_day, DayFile(output, f"{safe_name(coin)}_{_date(this_day).replace('-', '')}.npz")
                    if day_start is not None and not first_day:
                        day_file.add(day_start(this_day, int(merged["local_ts"][start])))
                assert day_file is not None
                day_file.add(merged[start:end])
                if progress is not None:  # as it goes: rows, and the bytes they take in the day's array
                    progress(end - start, (end - start) * merged.dtype.itemsize)
        if day_file is not None:
            _finish(day_file, coin, summary)
    except BaseException:
        if day_file is not None:
            day_file.abandon()
        raise


def _finish(day_file: Any, coin: str, summary: Summary) -> None:
    path = day_file.close()
    summary.paths.append(path)
    summary.events += day_file.rows
    if day_file.raised:
        summary.notes.append(f"{coin}: {day_file.raised} rows arrived over 10 s late; their exchange time was raised to keep hftbacktest's order")


def write_l2(source: ArchiveSlice, coin: str, output: Output, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
    items, gaps = source.items(coin, ("l2Book", "trades"))
    book_stream, trade_stream = stream_of("l2Book", coin), stream_of("trades", coin)
    resumes = sorted(g.start_ns for g in gaps if g.stream == book_stream)
    rows: list[Row] = []
    levels_of = LevelDiff(resumes)
    first_px: float | None = None
    for item in items:
        recv = item.recv_ns
        day = levels_of.day
        if levels_of.moved_to(recv, item.session) and rows and day is not None:
            _write_day(output, coin, day, rows, summary, progress)  # each day's file starts from a snapshot
            rows = []
        data = item.message["data"]
        if item.stream == trade_stream:
            for trade in data:
                side = BUY_EVENT if trade["side"] == "B" else SELL_EVENT
                rows.append((TRADE_EVENT | side, int(trade["time"]) * MS, recv, float(trade["px"]), float(trade["sz"]), 0, 0, 0.0))
        elif item.stream == book_stream:
            exch = int(data["time"]) * MS
            levels = data["levels"]
            if first_px is None and levels[0]:
                first_px = float(levels[0][0]["px"])
            snapshot, changes = levels_of.frame(levels)
            if snapshot:
                for side, flag in ((0, BUY_EVENT), (1, SELL_EVENT)):
                    if levels[side]:  # clear the side up to the snapshot's last level, then the snapshot
                        rows.append((DEPTH_CLEAR_EVENT | flag, exch, recv, float(levels[side][-1]["px"]), 0.0, 0, 0, 0.0))
            kind = DEPTH_SNAPSHOT_EVENT if snapshot else DEPTH_EVENT
            rows.extend((kind | (SELL_EVENT if side else BUY_EVENT), exch, recv, float(px), float(sz), 0, 0, 0.0) for side, px, sz in changes)
    day = levels_of.day
    if rows and day is not None:
        _write_day(output, coin, day, rows, summary, progress)
    if any(p.name.startswith(safe_name(coin) + "_") for p in summary.paths):
        spec = source.spec(coin, first_px)
        summary.specs[coin] = spec
        write_json(output, f"{safe_name(coin)}.json", spec)


def write_l3(source: ArchiveSlice, coin: str, output: Output, summary: Summary, progress: Callable[[int, int], None] | None) -> None:
    """The book at the start (the last snapshot before it, rebuilt by ``Replay``) as ``ADD_ORDER_EVENT``
    rows after a clear, again at each day's start and at each snapshot the stream resyncs from; then
    each block's diffs: ``new`` -> ``ADD_ORDER_EVENT``, ``update``/``modified`` -> ``MODIFY_ORDER_EVENT``
    (``CANCEL_ORDER_EVENT`` at size 0), ``remove`` -> ``CANCEL_ORDER_EVENT``; ``order_id`` = oid."""
    items, _ = source.items(coin, ("l4Book", "trades"))
    book_stream, trade_stream = stream_of("l4Book", coin), stream_of("trades", coin)
    rows: list[Row] = []
    resting: dict[int, list[Any]] = {}  # oid -> [side flag, px, sz], in arrival order
    day: int | None = None
    first_px: float | None = None
    sz_decimals = 0
    for item in items:
        recv = item.recv_ns
        data = item.message["data"]
        if day is not None and recv // DAY_NS != day:
            _write_day(output, coin, day, rows, summary, progress)
            rows = []
            _dump(rows, resting, resting, int(item.exch_ms or recv // MS) * MS, recv)  # each day's file starts from the whole book
        day = recv // DAY_NS
        if item.stream == trade_stream:
            for trade in data:
                side = BUY_EVENT if trade["side"] == "B" else SELL_EVENT
                rows.append((TRADE_EVENT | side, int(trade["time"]) * MS, recv, float(trade["px"]), float(trade["sz"]), 0, 0, 0.0))
            continue
        if item.stream != book_stream:
            continue
        if "Snapshot" in data:
            snapshot = data["Snapshot"]
            before = dict(resting)
            resting.clear()
            for side, flag in ((0, BUY_EVENT), (1, SELL_EVENT)):
                for order in snapshot["levels"][side]:
                    resting[int(order["oid"])] = [flag, float(order["limitPx"]), float(order["sz"])]
                    sz_decimals = max(sz_decimals, _decimals(order["sz"]))
            if first_px is None and snapshot["levels"][0]:
                first_px = float(snapshot["levels"][0][0]["limitPx"])
            if snapshot.get("safe") is False and not any("unsafe" in n for n in summary.notes):
                summary.notes.append(f"{coin}: the book at the start is from a snapshot that cannot be vouched for (safe: false)")
            _dump(rows, resting, before, int(snapshot["time"]) * MS, recv)
            continue
        update = data.get("Updates")
        if update is None:
            continue
        exch = int(update["time"]) * MS
        for diff in update["book_diffs"]:
            oid = int(diff["oid"])
            change = diff["raw_book_diff"]
            flag = BUY_EVENT if diff.get("side") == "B" else SELL_EVENT
            px = float(diff["px"])
            if change == "remove":
                held = resting.pop(oid, None)
                rows.append((CANCEL_ORDER_EVENT | (held[0] if held else flag), exch, recv, px, 0.0, oid, 0, 0.0))
                continue
            if not isinstance(change, dict):
                continue
            if "new" in change:
                sz = change["new"]["sz"]
                sz_decimals = max(sz_decimals, _decimals(sz))
                resting[oid] = [flag, px, float(sz)]
                rows.append((ADD_ORDER_EVENT | flag, exch, recv, px, float(sz), oid, 0, 0.0))
                continue
            new_sz = change["update"]["newSz"] if "update" in change else change.get("modified", {}).get("sz")
            if new_sz is None:
                continue
            if float(new_sz) == 0:
                resting.pop(oid, None)
                rows.append((CANCEL_ORDER_EVENT | flag, exch, recv, px, 0.0, oid, 0, 0.0))
            else:
                if oid in resting:
                    resting[oid][2] = float(new_sz)
                rows.append((MODIFY_ORDER_EVENT | flag, exch, recv, px, float(new_sz), oid, 0, 0.0))
    if rows and day is not None:
        _write_day(output, coin, day, rows, summary, progress)
    if any(p.name.startswith(safe_name(coin) + "_") for p in summary.paths):
        spec = source.spec(coin, first_px, sz_decimals=sz_decimals)
        summary.specs[coin] = spec
        summary.notes.append(f"{coin}: L3 (market by order) from the order-level book: use BacktestAsset().l3_fifo_queue_model()")
        write_json(output, f"{safe_name(coin)}.json", spec)


def _dump(rows: list[Row], resting: dict[int, list[Any]], before: dict[int, list[Any]], exch: int, recv: int) -> None:
    """Clear each side (as far as the book held before or holds now), then every resting order as
    ``ADD_ORDER_EVENT`` rows, best price first, in arrival order within a price."""
    for flag, best_first in ((BUY_EVENT, True), (SELL_EVENT, False)):
        prices = [o[1] for o in (*before.values(), *resting.values()) if o[0] == flag]
        if prices:
            rows.append((DEPTH_CLEAR_EVENT | flag, exch, recv, min(prices) if best_first else max(prices), 0.0, 0, 0, 0.0))
        side = [(oid, o) for oid, o in resting.items() if o[0] == flag]
        side.sort(key=lambda entry: -entry[1][1] if best_first else entry[1][1])  # stable: arrival order within a price
        rows.extend((ADD_ORDER_EVENT | flag, exch, recv, o[1], o[2], oid, 0, 0.0) for oid, o in side)


def _decimals(text: str) -> int:
    return len(text.partition(".")[2].rstrip("0"))


def _write_day(output: Output, coin: str, day: int, rows: list[Row], summary: Summary, progress: Callable[[int, int], None] | None) -> None:
    import numpy as np

    data = np.array(rows, dtype=event_dtype())
    shift = correct_local_timestamp(data)
    if shift:
        summary.notes.append(f"{coin} {_date(day)}: receive times shifted by {shift / 1e6:.3f} ms (a negative feed latency, as hftbacktest's correct_local_timestamp does)")
    data = correct_event_order(data)
    name = f"{safe_name(coin)}_{_date(day).replace('-', '')}.npz"
    with open(output.temporary(name), "wb") as handle:
        np.savez_compressed(handle, data=data)
    path = output.commit(name)
    summary.paths.append(path)
    summary.events += len(data)
    if progress is not None:
        progress(len(data), path.stat().st_size)


def write_json(output: Output, name: str, payload: Any) -> None:
    with open(output.temporary(name), "wb") as handle:
        handle.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    output.commit(name)


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, timezone.utc).strftime("%Y-%m-%d")


__all__ = ["ADD_ORDER_EVENT", "BUY_EVENT", "CANCEL_ORDER_EVENT", "DEPTH_CLEAR_EVENT", "DEPTH_SNAPSHOT_EVENT", "EXCH_EVENT", "LOCAL_EVENT", "MODIFY_ORDER_EVENT", "TRADE_EVENT", "correct_event_order", "event_dtype", "write_hftbacktest", "write_l2", "write_l3"]
