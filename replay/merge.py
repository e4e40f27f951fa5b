"""The ordered merge: rows of many parts as one stream, in receipt or exchange order.

Receipt order ``(recv_ns, session, seq)``: every part is stored in that order, so a streaming
k-way merge holds a batch per open part. Exchange order ``(exch_ms, recv_ns, session, seq)``: a
part is sorted by that key when opened (a part is bounded by the writer's flush size), then merged
the same way. A frame with no exchange time sorts at its receipt time, in milliseconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from schemas.jsontext import batch_frame_bytes
from schemas.layout import EVENTS_CHANNEL
from schemas.rows import batch_messages

from .archive import READ_THREADS, Part, open_part, part_batches

ORDERS = ("recv", "exchange")


class Item:
    """One frame or event of the merged stream (a slotted class: one is made per row, on the hot path)."""

    __slots__ = ("exch_ms", "message", "recv_ns", "seq", "session", "stream")

    def __init__(self, recv_ns: int, session: str, seq: int, exch_ms: int | None, stream: str | None, message: dict[str, Any]) -> None:
        self.recv_ns = recv_ns
        self.session = session
        self.seq = seq
        self.exch_ms = exch_ms
        self.stream = stream  # None for events
        self.message = message  # a frame; for an event: kind, connection, detail, text, recv_ns

    def __repr__(self) -> str:
        return f"Item({self.recv_ns}, {self.session!r}, {self.seq}, {self.stream!r})"


def _filtered(batch: Any, streams: pa.Array | None, start_ns: int | None, end_ns: int | None) -> Any:
    mask = None
    if streams is not None and "stream" in batch.schema.names:
        mask = pc.is_in(batch.column("stream"), value_set=streams)
    if start_ns is not None:
        after = pc.greater_equal(batch.column("recv_ns"), start_ns)
        mask = after if mask is None else pc.and_(mask, after)
    if end_ns is not None:
        before = pc.less_equal(batch.column("recv_ns"), end_ns)
        mask = before if mask is None else pc.and_(mask, before)
    if mask is None or (mask.null_count == 0 and pc.all(mask).as_py()):
        return batch  # every row wanted (a part is usually one stream): no copy of nested columns
    return batch.filter(mask)


def part_items(
    part: Part,
    *,
    streams: Collection[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    order: str = "recv",
    batch_size: int = 2048,
    decode: str = "dicts",
) -> Iterator[tuple[tuple[Any, ...], Item]]:
    """``(key, Item)`` pairs of one part, sorted by the order's key; messages are dicts, or with
    ``decode="bytes"`` each frame's JSON text (what ``orjson.dumps`` of the dict would give)."""
    parquet = open_part(part)
    value_set = pa.array(sorted(streams), pa.string()) if streams is not None else None
    if order == "exchange":
        table = _filtered(parquet.read(), value_set, start_ns, end_ns)
        if table.num_rows == 0:
            return
        recv_ms = pc.divide(table.column("recv_ns"), 1_000_000)
        key = pc.coalesce(table.column("exch_ms"), recv_ms) if "exch_ms" in table.schema.names else recv_ms
        table = table.append_column("_key", key).sort_by(
            [("_key", "ascending"), ("recv_ns", "ascending"), ("session", "ascending"), ("seq", "ascending")]
        )
        batches: Any = table.to_batches(max_chunksize=batch_size)
    elif part.store.local and part.channel != EVENTS_CHANNEL:
        # typed strings as dictionaries: each distinct price is decoded, and rendered, once a batch
        batches = (_filtered(b, value_set, start_ns, end_ns) for b in part_batches(part, parquet.metadata))
    else:
        batches = (_filtered(b, value_set, start_ns, end_ns) for b in parquet.iter_batches(batch_size=batch_size, use_threads=READ_THREADS))
    events = part.channel == EVENTS_CHANNEL
    for batch in batches:
        if batch.num_rows == 0:
            continue
        recv = batch.column("recv_ns").to_pylist()
        sessions = batch.column("session").to_pylist()
        seqs = batch.column("seq").to_pylist()
        if events:
            exch: list[Any] = [None] * len(recv)
            streams_: list[Any] = [None] * len(recv)
            messages: Any = _event_messages(batch)
        else:
            exch = batch.column("exch_ms").to_pylist()
            streams_ = batch.column("stream").to_pylist()
            messages = decode_batch(batch, decode)
        if order == "exchange":
            keys = batch.column("_key").to_pylist()
            for k, r, s, q, e, st, m in zip(keys, recv, sessions, seqs, exch, streams_, messages):
                yield (k, r, s, q), Item(r, s, q, e, st, m)
        else:
            for r, s, q, e, st, m in zip(recv, sessions, seqs, exch, streams_, messages):
                yield (r, s, q), Item(r, s, q, e, st, m)


def decode_batch(batch: pa.RecordBatch, decode: str) -> Any:
    """A batch's frames: as JSON bytes (rebuilt from the typed columns, never as dicts), or as dicts
    (built column by column)."""
    if decode == "bytes":
        return batch_frame_bytes(batch)
    return batch_messages(batch)


def _event_messages(batch: pa.RecordBatch) -> Iterator[dict[str, Any]]:
    for row in batch.select(["recv_ns", "kind", "connection", "detail", "text"]).to_pylist():
        row["detail"] = orjson.loads(row["detail"]) if row["detail"] else None
        yield row


def lower_bound(part: Part, order: str) -> int:
    """The smallest first key component any row of ``part`` can have, known without reading data."""
    if order == "recv":
        return part.name.first_recv_ns
    parquet = open_part(part)
    bound = part.name.first_recv_ns // 1_000_000
    names = parquet.schema_arrow.names
    if "exch_ms" in names:
        index = names.index("exch_ms")
        for g in range(parquet.metadata.num_row_groups):
            stats = parquet.metadata.row_group(g).column(index).statistics
            if stats is None or (not stats.has_min_max and stats.null_count != parquet.metadata.row_group(g).num_rows):
                return -(2**63)  # no statistics: open it at once
            if stats.has_min_max:
                bound = min(bound, stats.min)
    return bound


def merge(parts: list[Part], *, order: str = "recv", **options: Any) -> Iterator[Item]:
    """Every item of ``parts`` in order. A part is opened only when the merge reaches the earliest key
    it could hold, so the parts open at once are those overlapping in time, not the whole archive.
    Ties are broken by part position: the result is deterministic."""
    pending = sorted((lower_bound(part, order), i) for i, part in enumerate(parts))
    position = 0
    heap: list[tuple[tuple[Any, ...], int, Item, Iterator[tuple[tuple[Any, ...], Item]]]] = []

    def open_part_at(index: int) -> None:
        rows = part_items(parts[index], order=order, **options)
        first = next(rows, None)
        if first is not None:
            heapq.heappush(heap, (first[0], index, first[1], rows))

    previous: tuple[int, str, int] | None = None
    while heap or position < len(pending):
        while position < len(pending) and (not heap or pending[position][0] <= heap[0][0][0]):
            open_part_at(pending[position][1])
            position += 1
        if not heap:
            continue
        if len(heap) == 1:
            # one open part (the common case of a single stream): no heap work until the next
            # part could start
            key, index, item, rows = heap.pop()
            limit = pending[position][0] if position < len(pending) else None
            while True:
                identity = (item.recv_ns, item.session, item.seq)
                if identity != previous:
                    yield item
                    previous = identity
                following = next(rows, None)
                if following is None:
                    break
                key, item = following
                if limit is not None and key[0] >= limit:
                    heapq.heappush(heap, (key, index, item, rows))
                    break
            continue
        key, index, item, rows = heap[0]
        identity = (item.recv_ns, item.session, item.seq)
        if identity != previous:  # the same row twice: a compaction caught between its two steps
            yield item
            previous = identity
        following = next(rows, None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following[0], index, following[1], rows))
