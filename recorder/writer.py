"""ArchiveWriter: frames in, committed Parquet parts out.

Rows are buffered per partition as Arrow batches (a short staging list of rows is converted every
``stage_rows``), and a partition's buffer becomes a part when it passes a row count, a byte size or
an age. A part is written under a hidden temporary name, fsynced, then renamed: a reader sees a
whole part or none. With ``open_parts`` (an import), a partition's commits are row groups appended
to one part, named when it closes (a flush, the hour's end, ``PART_ROWS``): however the memory
budget cuts the buffers, an import leaves a part a partition and hour, each row written once.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas import __version__ as HLARCHIVE_VERSION
from schemas.catalog import entry_of_footer, entry_of_table
from schemas.channels import channel_spec
from schemas.layout import (
    ALL,
    EVENTS_CHANNEL,
    META_CHANNEL,
    ArchiveError,
    PartName,
    check_session,
    parquet_options,
    part_metadata,
    partition_dir,
    session_id,
    utc_date,
)
from schemas.rows import EVENT_SCHEMA, META_SCHEMA, FrameError, Row, data_schema, rows_to_batch, to_row
from schemas.subscriptions import Subscription, parse_subscription

from .parts.catalog import CatalogLog, start_catalog
from .root import prepare_root

NS_PER_DAY = 86_400 * 1_000_000_000
HOUR_NS = 3_600_000_000_000
PART_ROWS = 1_000_000  # an open part closes at this many rows (compaction's part size)
Clock = Callable[[], int]


@dataclass
class _OpenPart:
    """A part being written (``open_parts``): its buffer's commits appended as row groups; named,
    fsynced and cataloged when it closes."""

    directory: Path
    name: PartName
    writer: pq.ParquetWriter
    schema: pa.Schema  # without metadata: what each appended table must be
    hour: int
    streams: frozenset[str]
    row_group_rows: int
    rows: int = 0
    last_seq: int = 0


@dataclass
class _Buffer:
    """One partition's rows not yet in a part: converted batches plus a short list being staged."""

    directory: str
    schema: pa.Schema | None = None
    batches: list[pa.RecordBatch] = field(default_factory=list)
    staged: list[Any] = field(default_factory=list)
    rows: int = 0
    nbytes: int = 0
    first_recv_ns: int = 0
    opened_ns: int = 0
    streams: set[str] = field(default_factory=set)
    open: _OpenPart | None = None  # ``open_parts``: the part its commits go to


@dataclass
class WriterStats:
    frames: int = 0
    parts: int = 0
    rows_committed: int = 0
    bytes_committed: int = 0


class ArchiveWriter:
    """Writes frames into the archive at ``root``; usable directly as an SDK callback.

    ``info.subscribe(sub, writer)`` archives every frame the SDK delivers; ``write`` takes the
    receive time and the subscription when the caller knows them. Thread-safe.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        session: str | None = None,
        source_url: str = "",
        flush_rows: int = 100_000,
        flush_bytes: int = 64 * 1024 * 1024,
        flush_seconds: float = 60.0,
        stage_rows: int = 256,
        max_buffer_bytes: int = 32 * 1024 * 1024,
        row_group_rows: int = 16_384,
        compression_level: int | None = None,
        clock: Clock = time.time_ns,
        on_commit: Callable[[Path, int, int], None] | None = None,
        background: bool = False,
        open_parts: bool = False,
    ) -> None:
        if open_parts and background:
            raise ValueError("open_parts writes in the caller's thread: give one of open_parts and background")
        self.root = prepare_root(root)
        self.open_parts = open_parts
        self.clock = clock
        self.session = check_session(session) if session else session_id(clock(), secrets.token_hex(3))
        self.source_url = source_url
        self.flush_rows = flush_rows
        self.flush_bytes = flush_bytes
        self.flush_ns = int(flush_seconds * 1e9)
        self.stage_rows = stage_rows
        self.max_buffer_bytes = max_buffer_bytes
        self._buffered_bytes = 0
        self.row_group_rows = row_group_rows
        self.compression_level = compression_level
        self.on_commit = on_commit
        start_catalog(self.root)
        self._catalog = CatalogLog(self.root, self.session)  # each committed part's entry, appended after its rename
        # ``background``: parts are encoded and written by a thread while the caller goes on (Parquet
        # releases the GIL), one part at a time; ``flush`` and ``close`` wait for them. For bulk
        # imports, whose parsing then overlaps the writing of the part before.
        self._committer: ThreadPoolExecutor | None = ThreadPoolExecutor(1, thread_name_prefix="hlarchive-write") if background else None
        self._writing: Future[tuple[Path, int, int]] | None = None
        self.stats = WriterStats()
        self._buffers: dict[tuple[Any, ...], _Buffer] = {}
        self._dates: dict[int, str] = {}
        self._seq = 0
        self._part_n = 0
        self._lock = threading.RLock()
        self._closed = False

    # --- taking frames --------------------------------------------------------------------------

    def __call__(self, message: Any) -> None:
        self.write(message)

    def _take_seq(self, seq: int | None) -> int:
        """The given seq (the recorder numbers frames itself), or the session's next one."""
        if seq is None:
            self._seq += 1
            return self._seq
        self._seq = max(self._seq, seq)
        return seq

    def write(
        self,
        message: Any,
        recv_ns: int | None = None,
        subscription: Subscription | Mapping[str, Any] | None = None,
        *,
        seq: int | None = None,
    ) -> Row:
        """Archive one frame. ``recv_ns`` defaults to now; ``seq`` to the session's next number."""
        if subscription is not None and type(subscription) is not Subscription:
            subscription = parse_subscription(subscription, allow_unknown=True)
        with self._lock:
            self._check_open()
            recv_ns = self.clock() if recv_ns is None else recv_ns
            row = to_row(message, recv_ns=recv_ns, session=self.session, seq=self._take_seq(seq), subscription=subscription)
            self.stats.frames += 1
            buffer = self._buffer((row.partition, recv_ns // NS_PER_DAY), row.channel, row.coin, recv_ns)
            buffer.staged.append(row)
            buffer.streams.add(row.stream)
            if len(buffer.staged) >= self.stage_rows:
                self._stage(buffer)
            self._flush_due(buffer, recv_ns)
            return row

    def write_text(self, text: str, recv_ns: int, subscription: Subscription, *, exch_ms: int | None = None, seq: int | None = None, user: str | None = None) -> None:
        """Archive a frame of a channel the schemas do not type, given as its exact JSON text (kept in
        ``raw``): bulk imports skip parsing it again."""
        with self._lock:
            self._check_open()
            coin = subscription.coin or ALL
            row = Row(subscription.type, coin, recv_ns, self.session, self._take_seq(seq), exch_ms, user or subscription.user,
                      subscription.stream, subscription.channel, None, text, False)
            self.stats.frames += 1
            buffer = self._buffer((row.partition, recv_ns // NS_PER_DAY), row.channel, coin, recv_ns)
            buffer.staged.append(row)
            buffer.streams.add(row.stream)
            if len(buffer.staged) >= self.stage_rows:
                self._stage(buffer)
            self._flush_due(buffer, recv_ns)

    def reserve_seqs(self, count: int) -> int:
        """Take ``count`` seqs for frames written later with ``write_columns(..., seq=...)``; the first."""
        with self._lock:
            first = self._seq + 1
            self._seq += count
            return first

    def write_columns(
        self,
        subscription: Subscription,
        recv_ns: pa.Array,
        exch_ms: pa.Array,
        *,
        data: pa.Array | None = None,
        raw: pa.Array | None = None,
        seq: pa.Array | None = None,
        user: pa.Array | None = None,
    ) -> None:
        """Archive many frames of one stream at once, given as the archive's columns: ``data`` of the
        channel's Arrow type, or ``raw``, the frames' exact text (channels the schemas do not type). A
        bulk import makes no Python object per frame. ``seq``: from ``reserve_seqs``, or the next ones;
        ``user``: each frame's user, where the frames name one (default: the subscription's)."""
        typed = data is not None
        spec = channel_spec(subscription.channel) if typed else None
        if typed == (raw is not None) or (typed and (spec is None or data.type != spec.shape.arrow_type)):  # type: ignore[union-attr]
            raise FrameError(f"columns of {subscription.stream} are neither the {subscription.channel} shape nor text")
        count = len(data if typed else raw)  # type: ignore[arg-type]
        if count == 0:
            return
        coin = subscription.coin or ALL
        with self._lock:
            self._check_open()
            if seq is None:
                first = self.reserve_seqs(count)
                seq = pa.array(range(first, first + count), pa.int64())
            else:
                self._seq = max(self._seq, pc.max(seq).as_py())
            repeat = lambda value: pa.repeat(pa.scalar(value, pa.string()), count)  # noqa: E731
            users = user if user is not None else repeat(subscription.user)
            arrays = [recv_ns, repeat(self.session), seq, exch_ms, repeat(coin), users, repeat(subscription.stream), repeat(subscription.channel)]
            arrays += [data, pa.nulls(count, pa.string())] if typed else [raw]
            batch = pa.RecordBatch.from_arrays(arrays, schema=data_schema(spec))
            partition = (subscription.type, coin, subscription.channel if typed else "", typed)
            self.stats.frames += count
            days = pc.divide(recv_ns, NS_PER_DAY)
            each_day = pc.unique(days).to_pylist()
            for day in each_day:
                part = batch if len(each_day) == 1 else batch.filter(pc.equal(days, day))
                first_ns = part.column(0)[0].as_py()
                buffer = self._buffer((partition, day), subscription.type, coin, first_ns)
                self._stage(buffer)  # rows written one by one before these keep their place
                self._append(buffer, part)
                buffer.streams.add(subscription.stream)
                self._flush_due(buffer, first_ns)

    def write_event(
        self,
        kind: str,
        *,
        recv_ns: int | None = None,
        seq: int | None = None,
        connection: int | None = None,
        detail: Mapping[str, Any] | None = None,
        text: str | None = None,
    ) -> None:
        """Record a connection or session event (connect, disconnect, malformed frame...) in ``_events``."""
        with self._lock:
            self._check_open()
            recv_ns = self.clock() if recv_ns is None else recv_ns
            record = {
                "recv_ns": recv_ns,
                "session": self.session,
                "seq": self._take_seq(seq),
                "kind": kind,
                "connection": connection,
                "detail": orjson.dumps(detail).decode() if detail is not None else None,
                "text": text,
            }
            buffer = self._buffer((EVENTS_CHANNEL, recv_ns // NS_PER_DAY), EVENTS_CHANNEL, ALL, recv_ns, EVENT_SCHEMA)
            buffer.staged.append(record)
            self._flush_due(buffer, recv_ns)

    def write_meta(self, kind: str, payload: Any, *, recv_ns: int | None = None, seq: int | None = None) -> None:
        """Store an info endpoint answer (``meta``, ``spotMeta``) in ``_meta``."""
        with self._lock:
            self._check_open()
            recv_ns = self.clock() if recv_ns is None else recv_ns
            record = {
                "recv_ns": recv_ns,
                "session": self.session,
                "seq": self._take_seq(seq),
                "kind": kind,
                "payload": orjson.dumps(payload).decode(),
            }
            buffer = self._buffer((META_CHANNEL, recv_ns // NS_PER_DAY), META_CHANNEL, ALL, recv_ns, META_SCHEMA)
            buffer.staged.append(record)
            self._flush_due(buffer, recv_ns)

    # --- buffers --------------------------------------------------------------------------------

    def _buffer(self, key: tuple[Any, ...], channel: str, coin: str, recv_ns: int, schema: pa.Schema | None = None) -> _Buffer:
        buffer = self._buffers.get(key)
        if buffer is None:
            day = recv_ns // NS_PER_DAY
            date = self._dates.get(day)
            if date is None:
                date = self._dates[day] = utc_date(recv_ns)
            buffer = _Buffer(partition_dir(channel, coin, date), schema=schema)
            self._buffers[key] = buffer
        if buffer.rows == 0 and not buffer.staged:
            buffer.first_recv_ns = recv_ns
            buffer.opened_ns = self.clock()
        return buffer

    def _stage(self, buffer: _Buffer) -> None:
        """Turn the staged rows into an Arrow batch, so memory holds Arrow data, not Python objects."""
        if not buffer.staged:
            return
        if buffer.schema is None or isinstance(buffer.staged[0], Row):
            batch = rows_to_batch(buffer.staged)
        else:
            batch = pa.RecordBatch.from_pylist(buffer.staged, schema=buffer.schema)
        buffer.staged = []
        self._append(buffer, batch)

    def _append(self, buffer: _Buffer, batch: pa.RecordBatch) -> None:
        buffer.batches.append(batch)
        buffer.rows += batch.num_rows
        buffer.nbytes += batch.nbytes
        self._buffered_bytes += batch.nbytes

    def _flush_due(self, buffer: _Buffer, now_ns: int) -> None:
        pending = buffer.rows + len(buffer.staged)
        if pending >= self.flush_rows or buffer.nbytes >= self.flush_bytes:
            self._commit(buffer)
        elif self._buffered_bytes > self.max_buffer_bytes:
            # one budget for all partitions: commit the biggest buffer, so memory stays bounded
            # however many coins and channels are recorded
            self._commit(max(self._buffers.values(), key=lambda b: b.nbytes))

    def flush_due(self) -> int:
        """Commit every buffer older than ``flush_seconds``; returns the number of parts written."""
        with self._lock:
            now = self.clock()
            due = [b for b in self._buffers.values() if (b.rows or b.staged) and now - b.opened_ns >= self.flush_ns]
            for buffer in due:
                self._commit(buffer)
            return len(due)

    def flush(self) -> int:
        """Commit every buffered row now; returns the number of parts written."""
        with self._lock:
            written = 0
            for buffer in list(self._buffers.values()):
                if buffer.rows or buffer.staged:
                    self._commit(buffer)
                    written += 1
                self._close_open(buffer)
            self._buffers = {k: b for k, b in self._buffers.items() if b.rows or b.staged}
            self._wait_for_write()
            return written

    @property
    def buffered_rows(self) -> int:
        with self._lock:
            return sum(b.rows + len(b.staged) for b in self._buffers.values())

    # --- parts ----------------------------------------------------------------------------------

    def _commit(self, buffer: _Buffer) -> None:
        self._stage(buffer)
        if not buffer.batches:
            return
        table = pa.Table.from_batches(buffer.batches)
        if self.open_parts:
            self._append_open(buffer, table)  # a failed write raises before the rows leave the buffer
            self._clear(buffer)
            return
        self._part_n += 1
        name = PartName(buffer.first_recv_ns, self.session, self._part_n)
        channel = buffer.directory.split("/", 1)[0].split("=", 1)[1]
        metadata = part_metadata(
            session=self.session,
            channel=channel,
            subscriptions=orjson.dumps(sorted(buffer.streams)).decode(),
            source_url=self.source_url,
            hlarchive_version=HLARCHIVE_VERSION,
        )
        directory = self.root / buffer.directory
        while (directory / str(name)).exists():  # a recovered session continues an earlier numbering
            self._part_n += 1
            name = PartName(buffer.first_recv_ns, self.session, self._part_n)
        table = table.replace_schema_metadata(metadata)
        if self._committer is None:
            written = self._write(directory, name, table)  # a failed write keeps the rows buffered
            self._clear(buffer)
            self._committed(written)
            return
        self._wait_for_write()  # one part in flight: memory stays bounded
        self._clear(buffer)
        self._writing = self._committer.submit(self._write, directory, name, table)

    def _append_open(self, buffer: _Buffer, table: pa.Table) -> None:
        """The buffer's rows as row groups of its open part, hour by hour (a part holds one hour)."""
        hours = pc.divide(table.column("recv_ns"), HOUR_NS)
        low, high = (v.as_py() for v in pc.min_max(hours).values())
        for hour in range(low, high + 1):
            chunk = table if low == high else table.filter(pc.equal(hours, hour))
            if not chunk.num_rows:
                continue
            part = buffer.open
            if part is not None and (part.hour != hour or part.rows >= PART_ROWS or part.streams != frozenset(buffer.streams) or not chunk.schema.equals(part.schema)):
                self._close_open(buffer)
                part = None
            if part is None:
                part = buffer.open = self._open_part(buffer, chunk, hour)
            part.writer.write_table(chunk, row_group_size=part.row_group_rows)
            part.rows += chunk.num_rows
            part.last_seq = max(part.last_seq, pc.max(chunk.column("seq")).as_py())

    def _open_part(self, buffer: _Buffer, chunk: pa.Table, hour: int) -> _OpenPart:
        self._part_n += 1
        directory = self.root / buffer.directory
        directory.mkdir(parents=True, exist_ok=True)
        first_ns = chunk.column("recv_ns")[0].as_py()
        name = PartName(first_ns, self.session, self._part_n)
        while (directory / str(name)).exists():  # a recovered session continues an earlier numbering
            self._part_n += 1
            name = PartName(first_ns, self.session, self._part_n)
        channel = buffer.directory.split("/", 1)[0].split("=", 1)[1]
        metadata = part_metadata(session=self.session, channel=channel, subscriptions=orjson.dumps(sorted(buffer.streams)).decode(),
                                 source_url=self.source_url, hlarchive_version=HLARCHIVE_VERSION)
        options = parquet_options(chunk.schema, self.row_group_rows, self.compression_level)
        row_group_rows = options.pop("row_group_size")
        writer = pq.ParquetWriter(str(directory / name.temporary), chunk.schema.with_metadata(metadata), **options)
        return _OpenPart(directory, name, writer, chunk.schema.remove_metadata(), hour, frozenset(buffer.streams), row_group_rows)

    def _close_open(self, buffer: _Buffer) -> None:
        """The open part named: closed, fsynced, renamed, cataloged."""
        part, buffer.open = buffer.open, None
        if part is None:
            return
        part.writer.close()
        temporary, final = part.directory / part.name.temporary, part.directory / str(part.name)
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, final)
        _fsync_dir(part.directory)
        self._catalog.added([entry_of_footer(final.relative_to(self.root).as_posix(), pq.ParquetFile(final).metadata, final.stat().st_size)])
        self._committed((final, part.rows, part.last_seq))

    def _clear(self, buffer: _Buffer) -> None:
        buffer.batches = []
        buffer.rows = 0
        self._buffered_bytes -= buffer.nbytes
        buffer.nbytes = 0
        buffer.streams = set()

    def _write(self, directory: Path, name: PartName, table: pa.Table) -> tuple[Path, int, int]:
        path = write_part(directory, name, table, self.row_group_rows, self.compression_level)
        self._catalog.added([entry_of_table(path.relative_to(self.root).as_posix(), table, path.stat().st_size)])
        return path, table.num_rows, int(pc.max(table.column("seq")).as_py())

    def _committed(self, written: tuple[Path, int, int]) -> None:
        path, rows, last_seq = written
        self.stats.parts += 1
        self.stats.rows_committed += rows
        self.stats.bytes_committed += path.stat().st_size
        if self.on_commit is not None:
            self.on_commit(path, rows, last_seq)

    def _wait_for_write(self) -> None:
        """Wait for the part being written in the background; its error is raised here."""
        writing, self._writing = self._writing, None
        if writing is not None:
            self._committed(writing.result())

    # --- life cycle -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ArchiveError("this ArchiveWriter is closed: open a new one to write more")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            finally:
                self._closed = True
                if self._committer is not None:
                    self._committer.shutdown(wait=True)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_part(
    directory: Path,
    name: PartName,
    table: pa.Table,
    row_group_rows: int = 16_384,
    compression_level: int | None = None,
) -> Path:
    """Write ``table`` as a committed part: temporary name, fsync, rename, fsync the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / str(name)
    temporary = directory / name.temporary
    with open(temporary, "wb") as sink:
        pq.write_table(table, sink, **parquet_options(table.schema, row_group_rows, compression_level))
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(temporary, final)
    _fsync_dir(directory)
    return final


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
