"""Checkpoints: the book every few minutes of blocks, so a seek reads minutes of rows, not hours.

A node writes its own snapshot about once an hour; a seek to an instant then applies every block
since that snapshot. A checkpoint is the book as this archive's own rows built it, written as an
``l4Checkpoints`` row (its own channel: never mistaken for a node snapshot) at the receive time of
the block it was taken after, with the book's ``safe`` (False when a desync was met and no snapshot
has vouched for the book since). ``l4_state`` starts from the nearest checkpoint or snapshot.

Written after the fact from the archive itself (``hlarchive checkpoint``, ``hlarchive compact``, the
importer and the compaction behind a node follower), each run going on from the coin's last
checkpoint: a checkpoint only ever says what the rows before it say.

    python -m replay.l4.checkpoints ROOT [EVERY_MS]
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Collection
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from schemas import __version__ as HLARCHIVE_VERSION
from schemas.catalog import entry_of_table
from schemas.channels import L4_SNAPSHOT_ORDER
from schemas.l4.node import node_seq, seq_height
from schemas.layout import PartName, parquet_options, part_metadata, partition_dir, utc_date
from schemas.rows import rows_to_batch, to_row
from schemas.shapes import one_array
from schemas.subscriptions import parse_subscription

from ..archive import check_root, find_parts
from ..catalog import write_ops
from ..storage import Store
from .state import CHECKPOINTS, DIFFS, STATUSES, CoinBook, l4_state, latest_base

CHECKPOINT_NO = 6  # the seq range of checkpoint rows (node streams 0-2, snapshots 5, events 7)
DEFAULT_EVERY_MS = 300_000
ORDER_FIELDS = tuple(f.name for f in L4_SNAPSHOT_ORDER.fields)  # a node snapshot's order, user first: rows stay typed


def write_checkpoints(
    root: Any,
    *,
    every_ms: int = DEFAULT_EVERY_MS,
    coins: Collection[str] | None = None,
    say: Callable[[str], None] | None = None,
) -> int:
    """Checkpoints of every coin with L4 rows (or of ``coins``) from its last checkpoint on, one at
    the first block of each ``every_ms`` of block time; the number written."""
    if every_ms < 1000:
        raise ValueError("checkpoints every 1 s of blocks at least")
    store = check_root(root)
    if coins is None:
        coins = sorted({part.coin for part in find_parts(store, channels=[DIFFS])})
    session = f"checkpoint{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}_{secrets.token_hex(3)}"
    written = 0
    for coin in sorted(coins):
        rows = _coin_checkpoints(store, coin, every_ms, session)
        _write_rows(store, coin, session, rows)
        written += len(rows)
        if say is not None and rows:
            say(f"{coin}: {len(rows)} checkpoint(s), every {every_ms / 60_000:g} min of blocks")
    return written


def _coin_checkpoints(store: Store, coin: str, every_ms: int, session: str) -> list[Any]:
    """The coin's checkpoints after its last one: which blocks are due is read from the rows' block
    columns alone; the book is then moved from one due block to the next a window at a time (as a
    seek moves it), and nothing is applied past the last due block."""
    last = latest_base(store, coin, None, channels=(CHECKPOINTS,))
    start_ns: int | None = None
    after_height, next_bucket = -1, None
    if last is not None:  # go on from the last one
        start_ns, after_height = last.recv_ns, last.message["data"]["height"]
        next_bucket = (last.message["data"].get("block_ms") or 0) // every_ms + 1
    due = _due_blocks(store, coin, start_ns, after_height, every_ms, next_bucket)
    if not due:
        return []
    sub = parse_subscription({"type": CHECKPOINTS, "coin": coin}, allow_unknown=True)
    known: tuple[CoinBook, int] | None = None
    reads: dict[Any, Any] = {}  # the windows share parts: each row group is read once
    rows = []
    for recv_ns in due:
        state = l4_state(store, coin, recv_ns, known=known, reads=reads)
        known = (state, recv_ns)
        book = state.book
        if rows and book.height <= seq_height(rows[-1].seq):
            continue  # no block since the last one (a snapshot's book was ahead of these)
        levels, short = book.checkpoint_levels(ORDER_FIELDS)
        data = {"block": book.height, "block_ms": book.time_ms, "coin": coin, "height": book.height, "safe": book.safe, "levels": levels, "short": short}
        frame = {"channel": CHECKPOINTS, "data": data}
        rows.append(to_row(frame, recv_ns=recv_ns, session=session, seq=node_seq(book.height, CHECKPOINT_NO, 0), subscription=sub))
    return rows


def _due_blocks(store: Store, coin: str, start_ns: int | None, after_height: int, every_ms: int, next_bucket: int | None) -> list[int]:
    """The receive times of the blocks a checkpoint is due after: the first block of each period of
    ``every_ms`` of block time (the first period seen starts none), above ``after_height``."""
    import numpy as np
    import pyarrow.compute as pc

    from ..archive import open_part

    columns: list[tuple[Any, Any, Any]] = []  # (receive ns, height, block ms) arrays, a part's rows each
    for part in find_parts(store, channels=[STATUSES, DIFFS], coins=[coin], start_ns=start_ns):
        parquet = open_part(part)
        names = parquet.schema_arrow.names
        table = parquet.read(columns=[n for n in ("recv_ns", "data.block", "data.block_ms", "raw") if n.split(".")[0] in names])
        if start_ns is not None:
            table = table.filter(pc.greater_equal(table.column("recv_ns"), start_ns))
        if "raw" in table.column_names and table.column("raw").null_count < table.num_rows:  # rows kept whole as text
            raws = table.filter(pc.is_valid(table.column("raw")))
            texts = [orjson.loads(t)["data"] for t in raws.column("raw").to_pylist()]
            columns.append((raws.column("recv_ns").to_numpy(), np.array([r.get("block") or -1 for r in texts], np.int64), np.array([r.get("block_ms") or 0 for r in texts], np.int64)))
        if "data" in table.column_names:
            typed = table.filter(pc.is_valid(table.column("data")))
            data = one_array(typed.column("data"))
            columns.append((typed.column("recv_ns").to_numpy(), pc.fill_null(pc.struct_field(data, "block"), -1).to_numpy(), pc.fill_null(pc.struct_field(data, "block_ms"), 0).to_numpy()))
    if not columns:
        return []
    recv, heights, times = (np.concatenate([c[i] for c in columns]) for i in range(3))
    keep = heights > after_height
    recv, heights, times = recv[keep], heights[keep], times[keep]
    order = np.lexsort((recv, heights))  # by height, then receive time: each block's first row first
    recv, heights, times = recv[order], heights[order], times[order]
    first = np.ones(len(heights), bool)
    first[1:] = heights[1:] != heights[:-1]
    recv, heights, times = recv[first], heights[first], times[first]
    order = np.lexsort((heights, recv))  # the blocks in the order they were received
    firsts = zip(recv[order].tolist(), times[order].tolist())
    due = []
    for recv_ns, block_ms in firsts:
        bucket = block_ms // every_ms
        if next_bucket is None:
            next_bucket = bucket + 1  # the first checkpoint at the first block of the next period
        elif bucket >= next_bucket:
            next_bucket = bucket + 1
            due.append(recv_ns)
    return due


def _write_rows(store: Store, coin: str, session: str, rows: list[Any]) -> None:
    """One part a date and shape (typed rows, rows kept as text), each with its catalog entry."""
    groups: dict[tuple[str, bool], list[Any]] = {}
    for row in rows:
        groups.setdefault((utc_date(row.recv_ns), row.typed), []).append(row)
    added = []
    for n, ((date, _typed), chunk) in enumerate(sorted(groups.items()), start=1):
        table = pa.Table.from_batches([rows_to_batch(chunk)])
        metadata = part_metadata(session=session, channel=CHECKPOINTS, subscriptions=orjson.dumps([chunk[0].stream]).decode(), source_url="", hlarchive_version=HLARCHIVE_VERSION)
        table = table.replace_schema_metadata(metadata)
        relative = f"{partition_dir(CHECKPOINTS, coin, date)}/{PartName(chunk[0].recv_ns, session, n)}"
        path = store.path(relative)
        store.write(path, lambda sink, table=table: pq.write_table(table, sink, **parquet_options(table.schema, row_group_rows=1)))  # a seek reads one
        added.append(entry_of_table(relative, table, store.size(path)))
    if added:
        write_ops(store, session, added=added)


def main(argv: list[str]) -> None:
    every = int(argv[1]) if len(argv) > 1 else DEFAULT_EVERY_MS
    print(orjson.dumps({"written": write_checkpoints(argv[0], every_ms=every)}).decode())


if __name__ == "__main__":
    main(sys.argv[1:])
