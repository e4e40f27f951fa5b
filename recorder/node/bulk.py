"""``import`` of a node's finished files in bulk: the statuses and diffs of many blocks parsed by
Arrow at once (``schemas.l4.bulk``) and written as columns, no Python object an event.

The files are read as lines and cut into batches by height (every stream's lines up to the same
block), so a batch joins its streams as the row path's join does. In a batch, a block whose lines
are all proven to be the typed shape is written in bulk; a block with any line of another shape
(an unknown field, a ``remove`` spelled otherwise, an older diff without ``side``) takes the row
path (``NodeRecorder.write_block``), whole, in its place between the others; a batch with a line
that is not a block at all, or heights out of order, takes the row path entirely. Fills are text
frames: they take the row path's columns (``block_columns``) a line at a time. Either way a block
gets the receive time the row path gives it (its first stream's ``local_time``, never backwards).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from schemas.imports.history import HistoryError, iso_ns
from schemas.l4.bulk import BULK_STREAMS, BulkColumns, BulkLines, bulk_columns, parse_lines
from schemas.l4.node import DIFFS, FILLS, STATUSES, Block, NodeLineError, block_columns, parse_block, peek_height
from schemas.layout import ArchiveError

from .tail import file_lines, hourly_files

BATCH_BYTES = 16 << 20  # of one stream's lines in a batch: parsed by Arrow at once, while the batch before is written
STREAM_ORDER = (STATUSES, DIFFS, FILLS)  # a block's receive time is its first stream's line's


@dataclass
class Line:
    stream: str
    path: Path
    number: int
    text: bytes
    height: int | None


def stream_lines(stream: str, directory: Path) -> Iterator[Line]:
    """A stream's lines over its hourly files, each with its height peeked (not parsed)."""
    for path in hourly_files(directory):
        lines, number = file_lines(path), 0
        while True:
            try:
                number, text = next(lines)
            except StopIteration:
                break
            except (RuntimeError, EOFError, OSError) as exc:  # lz4's truncated frame
                raise ArchiveError(f"{path}, after line {number}: cannot read it ({exc}); what was imported before it stays") from None
            yield Line(stream, path, number, text, peek_height(text))


def batches(readers: dict[str, Iterator[Line]], batch_bytes: int | None = None) -> Iterator[dict[str, list[Line]]]:
    """Every stream's lines, a batch at a time: each batch holds every line of every stream up to
    one height (the lowest of the streams' read-ahead), so no block is split between batches."""
    batch_bytes = batch_bytes or BATCH_BYTES
    buffers: dict[str, deque[Line]] = {s: deque() for s in readers}
    sizes = dict.fromkeys(readers, 0)
    ended = dict.fromkeys(readers, False)
    while True:
        for stream, reader in readers.items():
            # read on while a stream's last lines name no height (broken ones): its top is not known yet
            while not ended[stream] and (sizes[stream] < batch_bytes or _top(buffers[stream]) is None):
                line = next(reader, None)
                if line is None:
                    ended[stream] = True
                    break
                buffers[stream].append(line)
                sizes[stream] += len(line.text)
        if not any(buffers.values()):
            return
        tops = [top for s in readers if not ended[s] and (top := _top(buffers[s])) is not None]
        limit = min(tops) if tops else None
        batch: dict[str, list[Line]] = {}
        for stream, buffer in buffers.items():
            taken = []
            while buffer and (limit is None or buffer[0].height is None or buffer[0].height <= limit):
                line = buffer.popleft()
                sizes[stream] -= len(line.text)
                taken.append(line)
            if taken:
                batch[stream] = taken
        yield batch


def _top(buffer: deque[Line]) -> int | None:
    for line in reversed(buffer):
        if line.height is not None:
            return line.height
    return None


@dataclass
class _Placed:
    """One stream's line of a block: where it is in its batch, its times and whether bulk takes it."""

    line: Line
    at: int  # index in the stream's lines of the batch
    local_ns: int
    block_ms: int
    proven: bool
    block: Block | None = None  # parsed already (a line the row path's way)


class Recorder(Protocol):
    """What the bulk import writes through: ``follow.NodeRecorder`` (its writer, its resume set, its
    status, the receive time it is at), named here so the two modules need not import each other."""

    coins: frozenset[str] | None
    status: Any
    recorded: Any
    writer: Any
    last_recv_ns: int

    def subscription(self, channel: str, coin: str) -> Any: ...

    def write_stream(self, stream: str, block: Block, recv_ns: int) -> None: ...


class BulkImport:
    """Writes batches through a ``Recorder``, in bulk where the lines allow it."""

    def __init__(self, out: Recorder, join: Any, row_path: Callable[[dict[str, list[Line]]], None], jobs: int = 2) -> None:
        self.out = out
        self.join = join  # the row path's join, shared: a height joined already is skipped either way
        self.row_path = row_path  # a batch, or a block's lines, the row path's way
        # Arrow releases the GIL: statuses and diffs parse at once, and the next batch while one is written
        self.pool = ThreadPoolExecutor(jobs)
        self.threads = jobs > 1

    def close(self) -> None:
        self.pool.shutdown()

    def run(self, batches: Iterator[dict[str, list[Line]]], tick: Callable[[], None]) -> None:
        """Every batch, each parsed (in Arrow's threads) while the one before it is written."""
        waiting: tuple[dict[str, list[Line]], dict[str, Future[BulkLines | None]]] | None = None
        for batch in batches:
            parsing = {s: self.pool.submit(parse_lines, s, [line.text for line in batch[s]], self.threads) for s in BULK_STREAMS if s in batch}
            if waiting is not None:
                self.write(*waiting)
                tick()
            waiting = batch, parsing
        if waiting is not None:
            self.write(*waiting)

    def write(self, batch: dict[str, list[Line]], parsing: dict[str, Future[BulkLines | None]]) -> None:
        parsed = {s: f.result() for s, f in parsing.items()}
        blocks = self._blocks(batch, parsed)
        if blocks is None:
            self.row_path(batch)
            return
        heights = sorted(blocks)
        segment: list[int] = []
        for height in heights:
            if all(p.proven for p in blocks[height].values()):
                segment.append(height)
                continue
            self._segment(segment, blocks, parsed)
            segment = []
            self.row_path({s: [p.line] for s, p in blocks[height].items()})
        self._segment(segment, blocks, parsed)

    def _blocks(self, batch: dict[str, list[Line]], parsed: dict[str, BulkLines | None]) -> dict[int, dict[str, _Placed]] | None:
        """height -> stream -> its line; None when the batch must take the row path whole (a line
        that is not a block, two lines of one height, heights going back)."""
        blocks: dict[int, dict[str, _Placed]] = {}
        for stream, lines in batch.items():
            bulk = parsed.get(stream)
            heads = _heads(bulk) if bulk is not None else None
            last = self.join.last
            for at, line in enumerate(lines):
                if heads is not None and bulk is not None and bulk.proven[at]:
                    height, local_ns, block_ms = heads[at]
                    proven, block = True, None
                else:
                    try:
                        block = parse_block(line.text)
                    except NodeLineError:
                        return None
                    height, local_ns, block_ms, proven = block.height, block.local_ns, block.block_ms, stream == FILLS
                if last is not None and height <= last:
                    if self.join.last is not None and height <= self.join.last:
                        continue  # joined already (a file read again): the row path skips it too
                    return None
                last = height
                blocks.setdefault(height, {})[stream] = _Placed(line, at, local_ns, block_ms, proven, None if proven and stream != FILLS else block)
        return blocks

    def _segment(self, heights: list[int], blocks: dict[int, dict[str, _Placed]], parsed: dict[str, BulkLines | None]) -> None:
        """Blocks all proven, in height order: their receive times, then each stream's rows at once."""
        if not heights:
            return
        out = self.out
        recv: dict[int, int] = {}
        last = out.last_recv_ns
        for height in heights:
            placed = blocks[height]
            first = next(placed[s] for s in STREAM_ORDER if s in placed)
            last = recv[height] = max(first.local_ns, last)
        out.last_recv_ns = last
        for stream in BULK_STREAMS:
            bulk = parsed.get(stream)
            chosen = [(blocks[h][stream].at, blocks[h][stream].block_ms, recv[h]) for h in heights if stream in blocks[h]]
            if bulk is None or not chosen:
                continue
            by_line = {at: (ms, ns) for at, ms, ns in chosen}
            for group in bulk_columns(bulk, [at for at, _, _ in chosen], [ms for _, ms, _ in chosen], out.coins):
                self._write(group, by_line)
        self._fills([(blocks[h][FILLS].block, recv[h]) for h in heights if FILLS in blocks[h]])
        status = out.status
        status.blocks += len(heights)
        status.height = self.join.last = heights[-1]

    def _write(self, group: BulkColumns, by_line: dict[int, tuple[int, int]]) -> None:
        lines = group.line.to_numpy()
        self._columns(group.channel, group.coin, group.seq, group.user, _per_line(lines, by_line, 1), _per_line(lines, by_line, 0), data=group.data)

    def _columns(self, channel: str, coin: str, seq: pa.Array, user: pa.Array, recv_ns: pa.Array, exch_ms: pa.Array, *, data: pa.Array | None = None, raw: pa.Array | None = None) -> None:
        """One partition's rows, less any a run before left in the archive."""
        out = self.out
        if out.recorded.parts:
            low, high = pc.min_max(seq).values()
            done = out.recorded.between(low.as_py(), high.as_py())
            if done:
                keep = pc.invert(pc.is_in(seq, value_set=pa.array(sorted(done), pa.int64())))
                out.status.skipped += len(seq) - pc.sum(keep).as_py()
                seq, user, recv_ns, exch_ms = (a.filter(keep) for a in (seq, user, recv_ns, exch_ms))
                data, raw = (None if a is None else a.filter(keep) for a in (data, raw))
        if not len(seq):
            return
        out.writer.write_columns(out.subscription(channel, coin), recv_ns, exch_ms, data=data, raw=raw, seq=seq, user=user)
        out.status.events += len(seq)

    def _fills(self, lines: list[tuple[Block | None, int]]) -> None:
        """Fills lines as the row path's columns make them, a partition's rows of the lines together
        (a line of another shape is written the row path's way, in its place)."""
        out = self.out
        held: dict[str, list[tuple[Any, int]]] = {}

        def release() -> None:
            for coin, groups in held.items():
                seqs = pa.array([s for g, _ in groups for s in g.seqs], pa.int64())
                users = pa.array([u for g, _ in groups for u in g.users], pa.string())
                recv = pa.array([ns for g, ns in groups for _ in g.seqs], pa.int64())
                exch = pa.array([t for g, _ in groups for t in g.exch_ms], pa.int64())
                self._columns(groups[0][0].channel, coin, seqs, users, recv, exch, raw=pa.concat_arrays([g.raw for g, _ in groups]))
            held.clear()

        for block, recv_ns in lines:
            if block is None:
                continue
            columns = block_columns(FILLS, block, out.coins)
            if columns is None:
                release()
                out.write_stream(FILLS, block, recv_ns)
                continue
            for group in columns:
                held.setdefault(group.coin, []).append((group, recv_ns))
        release()


def _heads(bulk: BulkLines) -> list[tuple[int, int, int]] | None:
    """(height, receive ns, block ms) of each line as the row path reads them; None if a time is bad."""
    table = bulk.table
    out = []
    try:
        for height, local, block in zip(bulk.heights, table.column("local_time").to_pylist(), table.column("block_time").to_pylist()):
            out.append((height, iso_ns(local or block), iso_ns(block or local) // 1_000_000))
    except HistoryError:
        return None
    return out


def _per_line(lines: object, by_line: dict[int, tuple[int, int]], which: int) -> pa.Array:
    import numpy as np

    top = max(by_line) + 1
    values = np.zeros(top, np.int64)
    for at, pair in by_line.items():
        values[at] = pair[which]
    return pa.array(values[lines])  # type: ignore[index]


def progress_every(progress: Callable[[object], None] | None, status: object, seconds: float = 2.0) -> Callable[[], None]:
    said = [time.monotonic()]

    def tick() -> None:
        if progress and time.monotonic() - said[0] > seconds:
            progress(status)
            said[0] = time.monotonic()

    return tick

