"""``l2Book`` frames derived from a coin's L4 rows read as columns, a day at a time: the block path.

The row path (``derive``) makes an ``Item`` and a dict for every status line and diff, and merges
them one by one with everything else: a busy book's block is hundreds of rows for one frame. Here a
day's rows of the coin are read as Arrow columns (only the fields a book needs), put in receipt
order by Arrow, and applied to the same ``CoinBook`` with the same rules (a block ends at a row of
another height or of a later receive time; a snapshot row rebuilds a desynced book), so the frames
are the row path's, each made once a block from the book's kept level sums. The frames come after
every other row received at their block's time, as on the row path.

Used when nothing needs the rows themselves: every derived stream of the coin is an ``l2Book`` or
``bbo``, and neither ``l4Book`` nor the row streams are subscribed. A day is offered to ``levels``
first (its frames from level sums, a window of blocks at a time); this applies the days it declines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from schemas.l4.node import event_of_row
from schemas.shapes import one_array
from schemas.subscriptions import Subscription

from ..archive import find_parts, list_dates, open_part
from ..merge import Item, _filtered
from ..storage import Store
from .state import DIFFS, SNAPSHOTS, STATUS_LOOKUP, STATUSES, CoinBook, _Block, book_frame, groups_within

CHANNELS = (STATUSES, DIFFS, SNAPSHOTS)
_KEPT_STATUSES = pa.array(["open", "triggered"])  # the status lines a `new` diff takes its order from
_REMOVE = '"remove"'


def usable(derived: dict[str, Subscription], subscribed: set[str], row_streams: dict[str, str]) -> bool:
    """Whether every derived stream can take the block path: all ``l2Book`` or ``bbo``, and no
    coin's row streams subscribed as themselves."""
    coins = {sub.coin for sub in derived.values()}
    return all(sub.type in ("l2Book", "bbo") for sub in derived.values()) and not any(row_streams.get(stream) in coins for stream in subscribed)


Key = tuple[Any, ...]


def frames(store: Store, state: CoinBook, subs: list[Subscription], start_ns: int | None, end_ns: int | None, decode: str) -> Iterator[tuple[Key, Item]]:
    """The coin's derived ``l2Book`` items over ``[start_ns, end_ns]``, from ``state`` (the book seeked
    to the start), each with its merge key: ``(recv_ns, 0, session, seq)`` of the coin's row that
    ended its block at the same receive time (the row path sends the frame just before that row), or
    ``(recv_ns, 1)`` of the block (after every row received at its time). A day at a time from
    level sums (``levels``) where the day allows it, else a block at a time here."""
    from . import levels

    shown: dict[str, Any] = {}
    state.book.settles = False  # its orders are only summed by level here: settling them would buy nothing
    for tables in _days(store, state.coin, start_ns, end_ns, CHANNELS):
        made = levels.day_frames(state, tables, subs, decode, shown)
        if made is not None:
            yield from made
            continue
        for key, block in _day_blocks(state, tables):
            yield from _block_frames(state, key, block, subs, decode, shown)
    for block in state.finish():
        yield from _block_frames(state, (block.recv_ns, 1), block, subs, decode, shown)


def _days(store: Store, coin: str, start_ns: int | None, end_ns: int | None, channels: tuple[str, ...]) -> Iterator[list[tuple[str, pa.Table]]]:
    """Each day's ``(channel, rows)`` of the coin's parts, read for the window."""
    for day in list_dates(store, channels=list(channels), coins=[coin], start_ns=start_ns, end_ns=end_ns):
        parts = find_parts(store, channels=list(channels), coins=[coin], start_ns=start_ns, end_ns=end_ns, dates=[day])
        yield [(part.channel, table) for part in parts if (table := _read(part, start_ns, end_ns)) is not None]


def _block_frames(state: CoinBook, key: Key, block: _Block, subs: list[Subscription], decode: str, shown: dict[str, Any]) -> Iterator[tuple[Key, Item]]:
    book = state.book
    for sub in subs:
        frame = book_frame(book, sub, shown)
        if frame is None:
            continue
        yield key, Item(block.recv_ns, block.session, block.seq, block.block_ms, sub.stream, frame if decode == "dicts" else orjson.dumps(frame))


def _day_blocks(state: CoinBook, tables: list[tuple[str, pa.Table]]) -> Iterator[tuple[Key, _Block]]:
    """The blocks the day's rows complete, in receipt order, applied to ``state``, with their keys."""
    keys: list[pa.Table] = []
    payloads: list[Any] = []  # (channel, height, block_ms, event) a row, in the order of ``keys``
    for channel, table in tables:
        keys.append(pa.table({"recv_ns": table.column("recv_ns"), "session": table.column("session"), "seq": table.column("seq"), "at": pa.array(range(len(payloads), len(payloads) + table.num_rows), pa.int64())}))
        payloads += _payloads(channel, table)
    if not keys:
        return
    ordered = pa.concat_tables(keys).sort_by([("recv_ns", "ascending"), ("session", "ascending"), ("seq", "ascending")])
    previous: tuple[int, str, int] | None = None
    take = state.take_event
    for recv_ns, session, seq, at in zip(*(ordered.column(n).to_pylist() for n in ("recv_ns", "session", "seq", "at"))):
        identity = (recv_ns, session, seq)
        if identity == previous:  # the same row twice: a compaction caught between its two steps
            continue
        previous = identity
        pending = state.pending
        if pending is not None and pending.recv_ns < recv_ns:  # a later row: the pending block is whole
            for block in state.finish():
                yield (block.recv_ns, 1), block
        channel, height, block_ms, event = payloads[at]
        for block in take(channel, height, block_ms, event, recv_ns, session, seq):  # ended by this row
            yield (recv_ns, 0, session, seq), block


def _read(part: Any, start_ns: int | None, end_ns: int | None) -> pa.Table | None:
    """The part's rows received in ``[start_ns, end_ns]``: only the row groups that can hold them.
    A status line with only what a ``new`` takes from it (side, price, user): the frames here show
    sizes by level, never an order's shape, so the rest of the order is not read."""
    parquet = open_part(part)
    names = parquet.schema_arrow.names
    groups = groups_within(parquet.metadata, start_ns, end_ns)
    if not groups:
        return None
    wanted = [n for n in ("recv_ns", "session", "seq", "raw") if n in names]
    if "data" in names:
        wanted += STATUS_LOOKUP if part.channel == STATUSES else ["data"]
    table = _filtered(parquet.read_row_groups(groups, columns=wanted), None, start_ns, end_ns)
    return table if table.num_rows else None


def _payloads(channel: str, table: pa.Table) -> list[Any]:
    """``(channel, height, block_ms, event)`` of each row: the event as the book takes it (a status
    line no ``new`` needs stays ``None``; a snapshot row is its data)."""
    n = table.num_rows
    out: list[Any] = [None] * n
    raw = one_array(table.column("raw")) if "raw" in table.column_names else pa.nulls(n, pa.string())
    if "data" in table.column_names:
        data = one_array(table.column("data"))
        typed = pc.is_valid(data).to_pylist()
        if channel == DIFFS:
            columns = [pc.struct_field(data, name).to_pylist() for name in ("block", "block_ms", "user", "oid", "coin", "side", "px", "raw_book_diff")]
            for i, (block, block_ms, user, oid, coin, side, px, change) in enumerate(zip(*columns)):
                if typed[i]:
                    diff = {"user": user, "oid": oid, "coin": coin, "side": side, "px": px, "raw_book_diff": "remove" if change == _REMOVE else orjson.loads(change)}
                    if side is None:
                        del diff["side"]  # older data has none
                    out[i] = (DIFFS, block, block_ms, diff)
        elif channel == STATUSES:
            wanted = pc.fill_null(pc.is_in(pc.struct_field(data, "status"), _KEPT_STATUSES), False).to_pylist()
            blocks, times = pc.struct_field(data, "block").to_pylist(), pc.struct_field(data, "block_ms").to_pylist()
            chosen = [i for i, keep in enumerate(wanted) if keep and typed[i]]
            if chosen:
                lines = data.take(pa.array(chosen, pa.int64())).to_pylist()
                for i, line in zip(chosen, lines):
                    out[i] = (STATUSES, line.pop("block"), line.pop("block_ms"), line)
            for i, keep in enumerate(wanted):  # lines no `new` needs still end blocks
                if typed[i] and not keep:
                    out[i] = (STATUSES, blocks[i], times[i], None)
        else:
            for i, row in enumerate(data.to_pylist()):
                if typed[i]:
                    out[i] = (SNAPSHOTS, row["block"], row.get("block_ms"), row)
    for i, text in enumerate(raw.to_pylist()):
        if text is not None:  # a row kept whole as text
            row = orjson.loads(text)["data"]
            out[i] = (channel, row.get("block"), row.get("block_ms"), row if channel == SNAPSHOTS else event_of_row(row))
    return out


__all__ = ["frames", "usable"]
