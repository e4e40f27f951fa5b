"""``record --node-data DIR`` and ``import DIR``: a node's L4 streams, joined block by block, into the archive.

The three streams (order statuses, book diffs, fills) are read in block order and joined by block
number. When one lags, the others wait for it: the wait is bounded only in what it reports (a
``node_stream_lag`` event, then again each period), never in what it keeps; nothing is dropped.
A block absent from a stream whose next line is already later is a block without such events.

The node's files are the journal: parts commit every ``flush_seconds``, and after each full flush
``_node/cursor.json`` names the block every partition holds. A restart (after ``kill -9`` too)
reads again from there and skips each event already committed (``resume.Recorded``), so nothing is
lost and nothing doubled, across hour turns as well.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from schemas.l4.node import (
    DIFFS,
    EVENT_NO,
    FILLS,
    NODE_DIRS,
    NODE_FILLS,
    STATUSES,
    STREAM_NO,
    Block,
    NodeColumns,
    NodeLineError,
    block_columns,
    block_rows,
    node_seq,
    parse_block,
    snapshot_rows,
)
from schemas.layout import ArchiveError, session_id
from schemas.rows import encode_raw
from schemas.subscriptions import Subscription, parse_subscription

from ..writer import ArchiveWriter
from .bulk import BulkImport, Line, batches, progress_every, stream_lines
from .resume import SESSION_PREFIX, Recorded, read_cursor, write_cursor
from .snapshot import SnapshotUnavailable, request_snapshot
from .tail import StreamTail

STREAM_ORDER = (STATUSES, DIFFS, FILLS)
RECENT_BLOCKS = 36_000  # an hour of blocks: a node snapshot that comes late still gets its block's time


@dataclass
class FollowStatus:
    """What the status line and the metrics show."""

    blocks: int = 0
    events: int = 0
    skipped: int = 0  # events already in the archive (a restart, a second import)
    height: int | None = None  # the newest block written
    newest: int | None = None  # the newest block any stream has shown
    bad_lines: int = 0
    lag_events: int = 0
    snapshots: int = 0
    waiting_for: str | None = None  # the stream the join waits on, if any
    started: float = field(default_factory=time.monotonic)

    @property
    def lag_blocks(self) -> int:
        return 0 if self.newest is None or self.height is None else max(0, self.newest - self.height)


def node_streams(node_dir: Path) -> dict[str, Path]:
    """The node's stream directories under its data root; statuses and diffs are required."""
    if not node_dir.is_dir():
        raise ArchiveError(f"--node-data {node_dir}: no such directory; give the node's data root (the one holding {NODE_DIRS[STATUSES]}/)")
    found = {stream: node_dir / name for stream, name in NODE_DIRS.items() if (node_dir / name).is_dir()}
    missing = [NODE_DIRS[s] for s in (STATUSES, DIFFS) if s not in found]
    if missing:
        raise ArchiveError(f"{node_dir} has no {' or '.join(missing)}/: run the node with its order-status and raw-book-diff outputs (batched by block), or point at its data root")
    return found


class BlockJoin:
    """Blocks of several streams in, whole blocks out in height order (a stream may skip a height)."""

    def __init__(self, streams: Iterable[str]) -> None:
        self.pending: dict[str, deque[Block]] = {s: deque() for s in streams}
        self.last: int | None = None

    def add(self, stream: str, block: Block) -> None:
        if self.last is not None and block.height <= self.last:
            return  # a block joined already (a file re-read): its events are in
        self.pending[stream].append(block)

    def ready(self) -> Iterator[dict[str, Block]]:
        """Every block all streams have reached."""
        while all(self.pending.values()):
            yield self._pop()

    def drain(self) -> Iterator[dict[str, Block]]:
        """At the end of finished files: what is left, the missing streams taken as empty."""
        while any(self.pending.values()):
            yield self._pop()

    def _pop(self) -> dict[str, Block]:
        height = min(q[0].height for q in self.pending.values() if q)
        joined = {s: q.popleft() for s, q in self.pending.items() if q and q[0].height == height}
        self.last = height
        return joined

    def waiting_for(self) -> str | None:
        """The stream the others wait on (the first one with nothing pending while others have some)."""
        if any(self.pending.values()):
            for stream, queue in self.pending.items():
                if not queue:
                    return stream
        return None


class NodeRecorder:
    """The archive side shared by following and importing: joined blocks in, rows out, exactly once."""

    def __init__(self, root: Path, coins: Iterable[str] | None, *, flush_seconds: float, resume_all: bool, source: str, buffer_bytes: int | None = None, open_parts: bool = False) -> None:
        self.root = root
        self.coins = frozenset(coins) if coins else None
        self.status = FollowStatus()
        self.cursor = read_cursor(root)
        # a follower trusts the cursor (nothing below it is missing); an import checks every height
        self.recorded = Recorded(root, None if resume_all or self.cursor is None else self.cursor + 1)
        # node sessions are told apart by their prefix; partitions commit together (``flush``), not on their own clock
        session = SESSION_PREFIX + session_id(time.time_ns(), secrets.token_hex(3))
        budget = {} if buffer_bytes is None else {"max_buffer_bytes": buffer_bytes}
        # an import's parts stay open until it ends (``open_parts``): one a partition and hour, however many coins share the memory budget
        self.writer = ArchiveWriter(root, session=session, source_url=source, flush_seconds=max(flush_seconds * 10, 600.0), open_parts=open_parts, **budget)
        self.flush_seconds = flush_seconds
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._last_flush = time.monotonic()
        self.last_recv_ns = 0
        self._held_snapshots: list[tuple[int, Any]] = []
        self._recent: dict[int, tuple[int, int]] = {}  # height -> (block ms, receive ns) of recent blocks

    def subscription(self, channel: str, coin: str) -> Subscription:
        sub = self._subs.get((channel, coin))
        if sub is None:
            sub = self._subs[channel, coin] = parse_subscription({"type": channel, "coin": coin}, allow_unknown=True)
        return sub

    def write_block(self, joined: dict[str, Block]) -> None:
        first = next(joined[s] for s in STREAM_ORDER if s in joined)
        recv_ns = max(first.local_ns, self.last_recv_ns)  # never backwards, whatever the node's clock did
        self.last_recv_ns = recv_ns
        for stream in STREAM_ORDER:
            block = joined.get(stream)
            if block is not None:
                self.write_stream(stream, block, recv_ns)
        self.status.blocks += 1
        self.status.height = first.height
        self._recent[first.height] = (first.block_ms, recv_ns)
        if len(self._recent) > RECENT_BLOCKS:
            del self._recent[next(iter(self._recent))]
        if self._held_snapshots:
            self._write_snapshots(first.height, first.block_ms, recv_ns)

    def write_stream(self, stream: str, block: Block, recv_ns: int) -> None:
        """One stream's line of a block: as columns where its events are the typed shape, else row by row."""
        columns = block_columns(stream, block, self.coins)
        if columns is not None:
            for group in columns:
                self._write_columns(group, recv_ns, block.block_ms)
            return
        rows, _ = block_rows(stream, block, self.coins)
        for row in rows:
            if row.seq in self.recorded:
                self.status.skipped += 1
                continue
            if row.channel == NODE_FILLS:  # text, with the fill's own time (as the columns write it)
                self.writer.write_text(encode_raw(row.frame), recv_ns, self.subscription(row.channel, row.coin), exch_ms=row.exch_ms, seq=row.seq, user=row.frame["data"].get("user"))
            else:
                self.writer.write(row.frame, recv_ns, self.subscription(row.channel, row.coin), seq=row.seq)
            self.status.events += 1

    def _write_columns(self, group: NodeColumns, recv_ns: int, block_ms: int) -> None:
        seqs, users, data, raw = group.seqs, group.users, group.data, group.raw
        if self.recorded.parts:  # after a restart: leave out what is committed already
            keep = [seq not in self.recorded for seq in seqs]
            if not all(keep):
                self.status.skipped += keep.count(False)
                mask = pa.array(keep)
                seqs = [s for s, k in zip(seqs, keep) if k]
                users = [u for u, k in zip(users, keep) if k]
                data = None if data is None else data.filter(mask)
                raw = None if raw is None else raw.filter(mask)
        count = len(seqs)
        if not count:
            return
        times = group.exch_ms
        if times is not None and len(times) != count:
            kept = set(seqs)
            times = [t for t, s in zip(times, group.seqs) if s in kept]
        exch_ms = pa.array([block_ms] * count if times is None else times, pa.int64())
        self.writer.write_columns(self.subscription(group.channel, group.coin), pa.array([recv_ns] * count, pa.int64()), exch_ms,
                                  data=data, raw=raw, seq=pa.array(seqs, pa.int64()), user=pa.array(users, pa.string()))
        self.status.events += count

    def hold_snapshot(self, payload: Any) -> None:
        """A node snapshot, written once the join reaches its height (so it sits among its blocks)."""
        height = payload[0] if isinstance(payload, list) and payload else None
        if type(height) is not int:
            raise NodeLineError("not an L4 snapshot ([height, [[coin, [bids, asks]], ...]])")
        self._held_snapshots.append((height, payload))

    def _write_snapshots(self, height: int, block_ms: int, recv_ns: int) -> None:
        due = [p for h, p in self._held_snapshots if h <= height]
        self._held_snapshots = [(h, p) for h, p in self._held_snapshots if h > height]
        for payload in due:
            # at its own height's receive time when that block went by recently: a reader that seeks
            # to the snapshot then reads only the rows from there on
            at_ms, at_ns = self._recent.get(payload[0], (block_ms, recv_ns))
            _, rows = snapshot_rows(payload, self.coins, at_ms)
            for row in rows:
                if row.seq not in self.recorded:
                    self.writer.write(row.frame, at_ns, self.subscription(row.channel, row.coin), seq=row.seq)
            self.status.snapshots += 1

    def event(self, kind: str, height: int, index: int, detail: dict[str, Any], text: str | None = None) -> None:
        seq = node_seq(max(height, 0), EVENT_NO, index)
        if seq in self.recorded:
            return
        self.writer.write_event(kind, recv_ns=self.last_recv_ns or time.time_ns(), seq=seq, detail=detail, text=text)

    def flush_due(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Commit every partition, then move the cursor: all rows up to it are in parts."""
        self.writer.flush()
        self._last_flush = time.monotonic()
        if self.status.height is not None and (self.cursor is None or self.status.height > self.cursor):
            write_cursor(self.root, self.status.height)
            self.cursor = self.status.height

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
        if self.status.height is not None and (self.cursor is None or self.status.height > self.cursor):
            write_cursor(self.root, self.status.height)


class NodeFollower:
    """Follows a node's files until stopped (``run``)."""

    def __init__(
        self,
        node_dir: str | Path,
        root: str | Path,
        *,
        coins: Iterable[str] | None = None,
        node_info: str | None = None,
        snapshot_every_s: float = 3600.0,
        max_wait_s: float = 5.0,
        flush_seconds: float = 10.0,
        poll_s: float = 0.02,
        say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    ) -> None:
        self.node_dir = Path(node_dir)
        self.streams = node_streams(self.node_dir)
        self.root = Path(root)
        self.out = NodeRecorder(self.root, coins, flush_seconds=flush_seconds, resume_all=False, source=f"node:{self.node_dir}")
        self.status = self.out.status
        self.node_info = node_info
        self.snapshot_every_s = snapshot_every_s
        self.max_wait_s = max_wait_s
        self.poll_s = poll_s
        self.say = say
        self.join = BlockJoin(self.streams)
        self.tails = {s: StreamTail(s, d) for s, d in self.streams.items()}
        start = self.out.cursor
        for tail in self.tails.values():
            tail.start_after(start)
        if start is not None:
            self.join.last = start
        self._wait_started: float | None = None
        self._lag_reported = 0
        self._snapshot_thread: threading.Thread | None = None
        self._snapshot_result: list[Any] = []
        self._next_snapshot = 0.0
        self._said_no_node = False

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None, on_status: Callable[[FollowStatus], None] | None = None, status_s: float = 5.0) -> FollowStatus:
        stop = stop or threading.Event()
        ends = None if duration_s is None else time.monotonic() + duration_s
        said = time.monotonic()
        try:
            while not stop.is_set() and (ends is None or time.monotonic() < ends):
                got = self.step()
                if self.node_info:
                    self._snapshots_due()
                self.out.flush_due()
                now = time.monotonic()
                if on_status and now - said >= status_s:
                    on_status(self.status)
                    said = now
                if not got:
                    stop.wait(self.poll_s)
        finally:
            self.close()
        return self.status

    def step(self) -> int:
        """Read what the streams completed and write every block all have reached; lines read."""
        now = time.monotonic()
        count = 0
        for stream, tail in self.tails.items():
            lines, problem = tail.poll(now)
            if problem:
                self.say(f"{problem}: the node moved to its next file; the line is kept as a bad line")
            for number, line in lines:
                count += 1
                self._take(stream, tail, number, line)
        for joined in self.join.ready():
            self.out.write_block(joined)
        self._watch_lag(now)
        return count

    def _take(self, stream: str, tail: StreamTail, number: int, line: bytes) -> None:
        try:
            block = parse_block(line)
        except NodeLineError as exc:
            self.status.bad_lines += 1
            where = f"{tail.path}, line {number}"
            self.say(f"bad line: {where}: {exc}; kept as a node_bad_line event, following goes on")
            height = self.status.height or 0
            self.out.event("node_bad_line", height, STREAM_NO[stream] * 1000 + self.status.bad_lines % 1000, {"file": str(tail.path), "line": number, "stream": stream, "error": str(exc)}, line[:1 << 16].decode("utf-8", "replace"))
            return
        self.status.newest = block.height if self.status.newest is None else max(self.status.newest, block.height)
        self.join.add(stream, block)

    def _watch_lag(self, now: float) -> None:
        waiting = self.join.waiting_for()
        self.status.waiting_for = waiting
        if waiting is None:
            self._wait_started, self._lag_reported = None, 0
            return
        if self._wait_started is None:
            self._wait_started = now
            return
        waited = now - self._wait_started
        if waited >= self.max_wait_s * (self._lag_reported + 1):
            self._lag_reported += 1
            self.status.lag_events += 1
            ahead = {s: q[-1].height for s, q in self.join.pending.items() if q}
            detail = {"waiting_for": waiting, "waited_s": round(waited, 3), "others_at": ahead, "last_joined": self.join.last}
            self.say(f"node stream {waiting} lags: waited {waited:.1f} s for block {(self.join.last or 0) + 1} (others at {max(ahead.values())}); still waiting, nothing dropped")
            self.out.event("node_stream_lag", (self.join.last or 0) + 1, 500 + self._lag_reported % 500, detail)

    def _snapshots_due(self) -> None:
        if self._snapshot_result:
            outcome = self._snapshot_result.pop()
            if isinstance(outcome, SnapshotUnavailable):
                if not self._said_no_node:
                    self.say(f"{outcome}: recording without node snapshots (books rebuild from the first block recorded); will ask again every {self.snapshot_every_s:g} s")
                    self._said_no_node = True
            else:
                try:
                    self.out.hold_snapshot(outcome)
                except NodeLineError as exc:
                    self.say(f"node snapshot ignored: {exc}")
        now = time.monotonic()
        if now >= self._next_snapshot and (self._snapshot_thread is None or not self._snapshot_thread.is_alive()):
            self._next_snapshot = now + self.snapshot_every_s
            self._snapshot_thread = threading.Thread(target=self._ask, name="hlarchive-node-snapshot", daemon=True)
            self._snapshot_thread.start()

    def _ask(self) -> None:
        assert self.node_info is not None
        try:
            self._snapshot_result.append(request_snapshot(self.node_info))
        except SnapshotUnavailable as exc:
            self._snapshot_result.append(exc)

    def close(self) -> None:
        for tail in self.tails.values():
            tail.close()
        self.out.close()


def status_line(status: FollowStatus) -> str:
    seconds = max(1e-9, time.monotonic() - status.started)
    at = "-" if status.height is None else str(status.height)
    wait = f", waiting for {status.waiting_for}" if status.waiting_for else ""
    return (f"node: block {at}, {status.blocks} blocks ({status.blocks / seconds:.1f}/s), {status.events} events ({status.events / seconds:,.0f}/s), "
            f"lag {status.lag_blocks} blocks{wait}, {status.snapshots} snapshots, {status.bad_lines} bad lines")


# --- import of finished files -------------------------------------------------------------------------------


def import_node_data(node_dir: str | Path, root: str | Path, *, coins: Iterable[str] | None = None, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
                     progress: Callable[[FollowStatus], None] | None = None, bulk: bool = True, jobs: int = 2, buffer_bytes: int | None = None) -> FollowStatus:
    """Every block of a node's finished files (plain or ``.lz4``) into the archive, exactly once;
    ``bulk``: many blocks at once through Arrow where their lines allow it (``bulk.BulkImport``, on
    ``jobs`` threads), else (or ``bulk=False``) a block at a time. Both give the same rows. Each
    partition's rows go to one part an hour, however its buffer is cut (``buffer_bytes``: the
    writer's memory budget, all partitions together)."""
    node_dir = Path(node_dir)
    streams = node_streams(node_dir)
    out = NodeRecorder(Path(root), coins, flush_seconds=3600.0, resume_all=True, source=f"import:{node_dir}", buffer_bytes=buffer_bytes, open_parts=True)
    readers = {s: stream_lines(s, d) for s, d in streams.items()}
    tick = progress_every(progress, out.status)
    join = BlockJoin(streams)
    try:
        if not bulk:
            _join_lines(out, join, readers, say, tick)
        else:
            importer = BulkImport(out, join, lambda batch: _join_lines(out, join, {s: iter(lines) for s, lines in batch.items()}, say, tick), jobs)
            try:
                importer.run(batches(readers), tick)
            finally:
                importer.close()
    finally:
        out.close()
    return out.status


def _join_lines(out: NodeRecorder, join: BlockJoin, readers: dict[str, Iterator[Line]], say: Callable[[str], None], tick: Callable[[], None]) -> None:
    """The row path: each stream's lines parsed one by one, joined by height, a block at a time."""
    blocks = {s: _stream_blocks(s, r, out, say) for s, r in readers.items()}
    heads: dict[str, Block | None] = {s: next(b, None) for s, b in blocks.items()}
    while any(h is not None for h in heads.values()):
        height = min(h.height for h in heads.values() if h is not None)
        for stream, head in heads.items():
            if head is not None and head.height == height:
                join.add(stream, head)
                heads[stream] = next(blocks[stream], None)
        for joined in join.drain():
            out.write_block(joined)
        tick()


def _stream_blocks(stream: str, lines: Iterator[Line], out: NodeRecorder, say: Callable[[str], None]) -> Iterator[Block]:
    for line in lines:
        try:
            yield parse_block(line.text)
        except NodeLineError as exc:
            out.status.bad_lines += 1
            say(f"bad line: {line.path}, line {line.number}: {exc}; kept as a node_bad_line event, import goes on")
            out.event("node_bad_line", out.status.height or 0, STREAM_NO[stream] * 1000 + out.status.bad_lines % 1000, {"file": str(line.path), "line": line.number, "stream": stream, "error": str(exc)}, line.text[:1 << 16].decode("utf-8", "replace"))
