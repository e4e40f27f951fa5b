"""The batch merge: many streams in receive order without an item per row.

Every open part is read a batch at a time and each batch is decoded once, whole (decoding has a
fixed cost a batch: a batch decoded in slices pays it, and renders its dictionaries, once a slice).
Then, step by step, the rows every open part holds from before the earliest time any of them (or a
part not yet open) could still reach are put in order by one Arrow sort of their keys, and their
frames are picked in that order. Memory holds about a decoded batch per open part, as the heap
merge (``merge.merge``) does; its order is the heap merge's, which the tests keep as the reference.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from .archive import Part, column_paths, open_part, part_batches
from .merge import _filtered, decode_batch

_KEYS = [("recv_ns", "ascending"), ("session", "ascending"), ("seq", "ascending"), ("src", "ascending")]


class Merged(NamedTuple):
    """One step: frames in order, with their receive times (an Arrow array) and, when asked, streams."""

    recv_ns: pa.Array
    streams: Sequence[str] | None
    messages: Sequence[Any]


class _Decoded:
    """One batch of a part, decoded: its keys as Arrow arrays, its streams and frames as lists."""

    __slots__ = ("first", "messages", "recv", "seq", "session", "streams")

    def __init__(self, batch: pa.RecordBatch, stream: str | None, decode: str, with_streams: bool) -> None:
        self.recv = batch.column("recv_ns")
        session = batch.column("session")
        self.session = session.cast(pa.string()) if pa.types.is_dictionary(session.type) else session
        self.seq = batch.column("seq")
        self.messages = list(decode_batch(batch, decode))
        self.streams = None
        if with_streams:
            self.streams = [stream] * batch.num_rows if stream is not None else batch.column("stream").to_pylist()
        self.first = 0  # rows before it were given


class _Cursor:
    """A part's rows not yet given: its decoded batches, usually one at a time."""

    __slots__ = ("batches", "decode", "done", "last_recv", "queue", "src", "stream", "with_streams")

    def __init__(self, src: int, batches: Iterator[pa.RecordBatch], stream: str | None, decode: str, with_streams: bool) -> None:
        self.src, self.batches, self.stream, self.decode, self.with_streams = src, batches, stream, decode, with_streams
        self.queue: list[_Decoded] = []
        self.done = False
        self.last_recv = -1
        self.extend()

    def extend(self) -> None:
        """Decode the next batch into the queue (or learn that there is none)."""
        for batch in self.batches:
            if batch.num_rows:
                decoded = _Decoded(batch, self.stream, self.decode, self.with_streams)
                self.queue.append(decoded)
                self.last_recv = decoded.recv[batch.num_rows - 1].as_py()
                return
        self.done = True

    def take_before(self, horizon: int | None, out: list[tuple[int, _Decoded, int, int]]) -> None:
        """Hand the rows received before ``horizon`` (all, for None) to ``out``; a batch given whole
        leaves, and the next is decoded when none is left."""
        while self.queue:
            decoded = self.queue[0]
            n, first = len(decoded.recv), decoded.first
            if horizon is None or horizon > decoded.recv[n - 1].as_py():
                end = n
            else:  # rows are in receive order: those before the horizon are a prefix, found by bisection
                low, high = first, n
                while low < high:
                    middle = (low + high) // 2
                    if decoded.recv[middle].as_py() < horizon:
                        low = middle + 1
                    else:
                        high = middle
                end = low
            if end > first:
                out.append((self.src, decoded, first, end))
                decoded.first = end
            if end < n:
                return
            self.queue.pop(0)
            if not self.queue and not self.done:
                self.extend()


def merge_batches(
    parts: list[Part],
    *,
    streams: Collection[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    decode: str = "dicts",
    with_streams: bool = False,
) -> Iterator[Merged]:
    """The frames of ``parts`` in receive order ``(recv_ns, session, seq)``, ties by part position,
    each row once; see the module's docstring."""
    value_set = pa.array(sorted(streams), pa.string()) if streams is not None else None
    order = sorted(range(len(parts)), key=lambda i: (parts[i].name.first_recv_ns, i))
    waiting = 0
    cursors: list[_Cursor] = []
    previous: tuple[int, str, int] | None = None
    while True:
        bounds = [c.last_recv for c in cursors if not c.done]
        if waiting < len(order):
            bounds.append(parts[order[waiting]].name.first_recv_ns)
        horizon = min(bounds) if bounds else None  # None: nothing can come any more; give the rest
        taken: list[tuple[int, _Decoded, int, int]] = []
        for cursor in cursors:
            cursor.take_before(horizon, taken)
        if taken:
            merged, previous = _ordered(taken, previous, with_streams)
            if merged is not None:
                yield merged
            cursors = [c for c in cursors if c.queue or not c.done]
            continue
        if horizon is None:
            return
        if waiting < len(order) and parts[order[waiting]].name.first_recv_ns <= horizon:
            index = order[waiting]
            waiting += 1
            cursors.append(_open(parts[index], index, value_set, start_ns, end_ns, decode, with_streams))
            continue
        for cursor in [c for c in cursors if not c.done and c.last_recv == horizon]:
            cursor.extend()  # every row it holds is at the horizon: read on until one is past it


def _open(part: Part, src: int, value_set: pa.Array | None, start_ns: int | None, end_ns: int | None, decode: str, with_streams: bool) -> _Cursor:
    footer = open_part(part).metadata
    stream = single_stream(footer)
    only_wanted = stream is not None and (value_set is None or stream in value_set.to_pylist())
    columns = ["recv_ns", "session", "seq", "wire_channel", "data", "raw"] + ([] if only_wanted else ["stream"])
    batches = (_filtered(b, None if only_wanted else value_set, start_ns, end_ns) for b in part_batches(part, footer, columns))
    return _Cursor(src, batches, stream if only_wanted else None, decode, with_streams)


def single_stream(footer: Any) -> str | None:
    """The one stream every row of a part belongs to, when the footer's statistics say so."""
    if footer.num_row_groups == 0 or "stream" not in (paths := column_paths(footer)):
        return None
    index = paths.index("stream")
    found = None
    for g in range(footer.num_row_groups):
        stats = footer.row_group(g).column(index).statistics
        if stats is None or not stats.has_min_max or stats.null_count or stats.min != stats.max or found not in (None, stats.min):
            return None
        found = stats.min
    return found


def _ordered(taken: list[tuple[int, _Decoded, int, int]], previous: tuple[int, str, int] | None, with_streams: bool) -> tuple[Merged | None, tuple[int, str, int] | None]:
    """The rows taken, in key order, without a row already given (a compaction caught between its
    two steps leaves the same row in two parts); and the last key given."""
    if len(taken) == 1:
        _, decoded, first, end = taken[0]
        recv, session, seq = (a.slice(first, end - first) for a in (decoded.recv, decoded.session, decoded.seq))
        messages = decoded.messages[first:end]
        names = decoded.streams[first:end] if decoded.streams is not None else None
        order = None
    else:
        recv = pa.concat_arrays([d.recv.slice(f, e - f) for _, d, f, e in taken])
        session = pa.concat_arrays([d.session.slice(f, e - f) for _, d, f, e in taken])
        seq = pa.concat_arrays([d.seq.slice(f, e - f) for _, d, f, e in taken])
        src = pa.concat_arrays([pa.repeat(pa.scalar(s, pa.int32()), e - f) for s, _, f, e in taken])
        messages = [m for _, d, f, e in taken for m in d.messages[f:e]] if len(taken) < 3 else _joined([d.messages[f:e] for _, d, f, e in taken])
        names = _joined([d.streams[f:e] for _, d, f, e in taken]) if with_streams else None  # type: ignore[index]
        order = pc.sort_indices(pa.table({"recv_ns": recv, "session": session, "seq": seq, "src": src}), sort_keys=_KEYS)
        recv, session, seq = recv.take(order), session.take(order), seq.take(order)
    n = len(recv)
    drop: list[int] = []
    if n > 1:  # the same key twice in a row: one row in two parts
        same = pc.indices_nonzero(pc.and_(pc.equal(recv.slice(1), recv.slice(0, n - 1)), pc.equal(seq.slice(1), seq.slice(0, n - 1))))
        drop = [i + 1 for i in same.to_pylist() if session[i + 1] == session[i]]
    if previous is not None and (recv[0].as_py(), session[0].as_py(), seq[0].as_py()) == previous:
        drop.insert(0, 0)
    last = (recv[n - 1].as_py(), session[n - 1].as_py(), seq[n - 1].as_py())
    if order is None and not drop:
        return Merged(recv, names if with_streams else None, messages), last
    pick = order.to_pylist() if order is not None else list(range(n))
    if drop:
        dropped = set(drop)
        keep = [i for i in range(n) if i not in dropped]
        pick = [pick[i] for i in keep]
        recv = recv.take(pa.array(keep, pa.int64()))
        if not pick:
            return None, last
    get = itemgetter(*pick)
    ordered = list(get(messages)) if len(pick) > 1 else [messages[pick[0]]]
    streams = None
    if with_streams:
        assert names is not None
        streams = list(get(names)) if len(pick) > 1 else [names[pick[0]]]
    return Merged(recv, streams, ordered), last


def _joined(lists: list[list[Any]]) -> list[Any]:
    out: list[Any] = []
    for items in lists:
        out.extend(items)
    return out
