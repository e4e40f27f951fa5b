"""``hlarchive import`` of Hyperliquid's published history: L2 snapshots, asset contexts, node fills
and node trades, from a directory in the buckets' layout, single files, or ``s3://`` (requester-pays).

Files are LZ4 frames, decoded as a stream (memory does not grow with the file). Each file is one
import *session* named after its key and content: its parts carry that session and the key, and a
marker in ``_imports/`` written after its last part commits makes a second import of it add nothing.
A file that fails half-way (a bad line, a truncated frame) or was interrupted leaves no part behind
once the next run (or the error itself) removes that session's parts; nothing is half-imported.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import IO, Any, Callable, Iterator, TypeVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from schemas.imports.history import (
    ASSET_CTXS,
    DATASETS,
    NODE_FILLS,
    NODE_TRADES,
    FillPairer,
    HistoryError,
    asset_ctx_row,
    check_asset_ctx_header,
    detect_dataset,
    fills_of_line,
    l2book_record,
    node_trade,
)
from schemas.imports.historybulk import FillsChunk, L2BookChunk, fills_chunk, l2book_chunk, order_counts, pair_fills
from schemas.layout import IMPORTS_DIR, ArchiveError, parse_part_name
from schemas.rows import encode_raw
from schemas.subscriptions import Subscription, parse_subscription

from ..parts.catalog import CatalogLog
from ..writer import ArchiveWriter
from .pairing import pair_across_files
from .workers import FileProgress, run_files

T = TypeVar("T")
MARKERS = IMPORTS_DIR
HEAD_BYTES = 1 << 20  # the content part of a file's identity: its size and first and last MiB


@dataclass(frozen=True)
class Source:
    """One file to import: where it is, its key (the bucket key, or the path below the directory given)."""

    location: str  # a local path or s3://bucket/key
    key: str
    size: int
    dataset: str


@dataclass
class HistoryReport:
    files: int = 0
    skipped: int = 0  # imported before: nothing added
    rows: int = 0
    trades: int = 0
    unpaired_fills: int = 0  # fills whose other side was in no file imported with them
    bytes_read: int = 0
    seconds: float = 0.0
    by_dataset: dict[str, int] = field(default_factory=dict)
    rows_in_flight: int = 0  # written by files still being imported (for progress)
    workers: int = 0  # files being imported right now


# --- where the files are ------------------------------------------------------------------------------


def list_sources(locations: list[str], dataset: str | None = None) -> list[Source]:
    """Every file under the given directories, files and ``s3://`` prefixes, in key order."""
    if dataset is not None and dataset not in DATASETS:
        raise ArchiveError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    found: list[Source] = []
    for location in locations:
        if location.startswith("s3://"):
            entries = [(f"s3://{bucket}/{key}", key, size) for bucket, key, size in _s3_list(location)]
        else:
            path = Path(location)
            if path.is_dir():
                entries = [(str(p), p.relative_to(path).as_posix(), p.stat().st_size) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix == ".lz4"]
            elif path.is_file():
                entries = [(str(path), path.name, path.stat().st_size)]
            else:
                raise ArchiveError(f"no file or directory {location!r} to import")
        for where, key, size in entries:
            kind = dataset or detect_dataset(key) or detect_dataset(where)
            if kind is None:
                raise ArchiveError(f"cannot tell which dataset {where} is: give --dataset ({', '.join(DATASETS)})")
            found.append(Source(where, key, size, kind))
    if not found:
        raise ArchiveError(f"no .lz4 files under {', '.join(locations)}")
    return sorted(found, key=lambda s: (_hour_order(s.key), s.key))


def _hour_order(key: str) -> tuple[str, int]:
    """Hourly files sort by date, then hour as a number (``10`` after ``9``), so fills pair across hours."""
    parts = key.split("/")
    for i, part in enumerate(parts[:-1]):
        if len(part) == 8 and part.isdigit():
            stem = parts[i + 1].split(".")[0]
            return part, int(stem) if stem.isdigit() else -1
    return "", -1


def _s3_client() -> Any:
    try:
        import boto3
    except ImportError:
        raise ArchiveError("reading s3:// needs boto3: pip install 'hlarchive[s3]'") from None
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # never probe the EC2 metadata address for keys
    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise ArchiveError(
            "no AWS credentials for s3:// (the buckets are requester-pays: your account pays for reads): "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION)"
        )
    return session.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def _s3_list(url: str) -> Iterator[tuple[str, str, int]]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = _s3_client()
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, RequestPayer="requester")
        for page in pages:
            for item in page.get("Contents", []):
                if item["Key"].endswith(".lz4"):
                    yield bucket, item["Key"], item["Size"]
    except Exception as exc:  # noqa: BLE001 - botocore's errors all mean "cannot list": say which
        raise ArchiveError(f"cannot list {url}: {_one_line(exc)}") from None


def _open(source: Source) -> IO[bytes]:
    if source.location.startswith("s3://"):
        bucket, _, key = source.location.removeprefix("s3://").partition("/")
        try:
            body = _s3_client().get_object(Bucket=bucket, Key=key, RequestPayer="requester")["Body"]
        except Exception as exc:  # noqa: BLE001
            raise ArchiveError(f"cannot read {source.location}: {_one_line(exc)}") from None
        return io.BufferedReader(_BodyReader(body), 1 << 20)
    return open(source.location, "rb")


class _BodyReader(io.RawIOBase):
    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def identity(source: Source) -> str:
    """The import session of a file: its key, size, and first and last MiB (an S3 range read each)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{source.key}\0{source.size}\0".encode())
    with _open(source) as handle:
        digest.update(handle.read(HEAD_BYTES))
        if source.size > 2 * HEAD_BYTES and not source.location.startswith("s3://"):
            handle.seek(source.size - HEAD_BYTES)
            digest.update(handle.read(HEAD_BYTES))
    return "h" + digest.hexdigest()


# --- importing ------------------------------------------------------------------------------------------


class _Counted(io.RawIOBase):
    """Counts the compressed bytes read, for progress."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner, self.count = inner, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.count += len(data)
        buffer[: len(data)] = data
        return len(data)


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    import lz4.frame

    with lz4.frame.open(handle, "rb") as stream:
        yield from stream


CHUNK_BYTES = 4 << 20  # of decompressed text a bulk step reads
# fills go through more intermediate arrays, each the chunk's size: smaller chunks keep RSS well under
# 400 MB on a 1 GB file (300 MB against 380 MB at 4 MiB, for 5% less speed)
FILLS_CHUNK_BYTES = 2 << 20


def _chunks(handle: IO[bytes], size: int) -> Iterator[bytes]:
    """The decompressed text in chunks of whole lines (the last may lack its newline)."""
    import lz4.frame

    with lz4.frame.open(handle, "rb") as stream:
        rest = b""
        while block := stream.read(size):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield block[:cut]
        if rest:
            yield rest


BULK_DATASETS = ("l2Book", "node_fills_by_block", "node_fills")


def _bulk_chunks(handle: IO[bytes], dataset: str, threads: bool = True) -> Iterator[tuple[bytes, L2BookChunk | FillsChunk | None]]:
    """Each chunk with its columns, or ``None`` when it must go line by line. An l2Book chunk of
    several coins goes line by line too (seqs then stay in line order, as the line path numbers them)."""
    counter = ThreadPoolExecutor(1, thread_name_prefix="hlarchive-import-count") if dataset == "l2Book" and threads else None
    try:
        for chunk in _chunks(handle, CHUNK_BYTES if dataset == "l2Book" else FILLS_CHUNK_BYTES):
            if dataset == "l2Book":
                # the key-order counts hold the GIL: on their own thread they overlap Arrow's parse
                counts = counter.submit(order_counts, chunk).result if counter is not None else (lambda chunk=chunk: order_counts(chunk))
                bulk = l2book_chunk(chunk, counts)
                yield chunk, bulk if bulk is not None and pc.count_distinct(bulk.coins).as_py() == 1 else None
            else:
                yield chunk, fills_chunk(chunk, dataset)
    finally:
        if counter is not None:
            counter.shutdown(wait=True)


def _write_bulk(writer: ArchiveWriter, bulk: L2BookChunk | FillsChunk, pairer: FillPairer, subs: _Subscriptions) -> tuple[int, int] | None:
    """Write a chunk's columns; ``(rows, trades frames)``, or ``None`` (nothing written) when its fills
    cannot be paired in bulk."""
    if isinstance(bulk, L2BookChunk):
        stream = subs["l2Book", bulk.coins[0].as_py()]
        for recv_ns, data in bulk.batches:
            writer.write_columns(stream, recv_ns, data.field("time"), data=data)
        return bulk.lines, 0
    fills = bulk.fills
    paired = pair_fills(fills, pairer.pending)
    if paired is None:
        return None
    count, trades = fills.num_rows, len(paired.at)
    # the line path's numbering: each fill, then the trade it completes
    first = writer.reserve_seqs(count + trades)
    position = pa.array(range(count), pa.int64())
    completes = pc.is_in(position, value_set=paired.at).cast(pa.int64())
    fill_seq = pc.add(pc.add(position, first), pc.subtract(pc.cumulative_sum(completes), completes))
    trade_seq = pc.add(fill_seq.take(paired.at), 1)
    coin, recv_ns, exch_ms, text = (fills.column(name).combine_chunks() for name in ("coin", "recv_ns", "time", "text"))
    for name, at in _by_coin(coin):
        writer.write_columns(subs[NODE_FILLS, name], recv_ns.take(at), exch_ms.take(at), raw=text.take(at), seq=fill_seq.take(at))
    trade_ms = pc.list_flatten(paired.data).field("time")
    for name, at in _by_coin(paired.coin):
        writer.write_columns(subs["trades", name], paired.recv_ns.take(at), trade_ms.take(at), data=paired.data.take(at), seq=trade_seq.take(at))
    pairer.pending = paired.pending
    return count, trades


def _by_coin(coins: pa.Array) -> Iterator[tuple[str, pa.Array]]:
    """Each coin with the positions of its rows, ascending."""
    order = pc.sort_indices(coins)  # a stable sort: a coin's positions stay ascending
    runs = pc.run_end_encode(coins.take(order))
    start = 0
    for name, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist()):
        yield name, order.slice(start, end - start)
        start = end


_DONE = object()


def _read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, computed by a thread up to ``depth`` ahead: Arrow's JSON parsing there and Parquet's
    writing here both release the GIL, so they overlap on two cores. Its errors are raised here, in turn."""
    queue: Queue[tuple[Any, BaseException | None]] = Queue(depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> None:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return
            except Full:
                continue

    def run() -> None:
        try:
            for item in items:
                put((item, None))
                if stop.is_set():
                    return
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
            put((_DONE, exc))

    thread = threading.Thread(target=run, name="hlarchive-import-read", daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass
class FileResult:
    """What one file added; ``unpaired`` are its fills whose other side it did not hold (kept in its
    marker too, so a neighbouring hour imported later, by any worker, can still pair them)."""

    key: str
    dataset: str
    size: int
    rows: int
    trades: int
    unpaired: list[Any] = field(default_factory=list)  # [recv_ns, user, fill]




def import_history(
    locations: list[str],
    root: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    progress: Callable[[HistoryReport, int], None] | None = None,
    jobs: int = 1,
) -> HistoryReport:
    """Import every file under ``locations`` into the archive at ``root``, ``jobs`` files at a time
    (worker processes when more than one); see the module's docstring. The archive is the same
    whatever ``jobs``: each file is imported alone, and fills that pair across files are paired last."""
    if "://" in str(root):
        raise ArchiveError(f"--root {root}: a local import writes to a directory; to land in object storage, import with --spark, or import here and `hlarchive sync` it")
    root = Path(root)
    sources = list_sources(locations, dataset)
    total = sum(s.size for s in sources)
    report = HistoryReport()
    started = time.monotonic()
    (root / MARKERS).mkdir(parents=True, exist_ok=True)

    def show(bytes_read: int, rows_in_flight: int, busy: int) -> None:
        report.bytes_read, report.rows_in_flight, report.workers = bytes_read, rows_in_flight, busy
        if progress:
            progress(report, total)

    for source, result in run_files(sources, root, import_file, jobs=jobs, on_progress=show, worker_setup=without_threads):
        add_result(report, source, result)
    pairing = pair_across_files(root)
    report.trades += pairing.trades
    report.unpaired_fills = pairing.unpaired
    report.seconds = time.monotonic() - started
    report.bytes_read, report.rows_in_flight, report.workers = total, 0, 0
    if progress:
        progress(report, total)
    return report


def add_result(report: HistoryReport, source: Source, result: FileResult | None) -> None:
    """Count one file's outcome (``None``: imported before, skipped) into ``report``."""
    if result is None:
        report.skipped += 1
        return
    report.files += 1
    report.rows += result.rows
    report.trades += result.trades
    report.by_dataset[source.dataset] = report.by_dataset.get(source.dataset, 0) + result.rows


# Threads overlap one file's parsing and writing on two cores. Worker processes of a parallel import
# already keep every core busy: there they only add hand-offs of the GIL, so workers turn them off.
THREADS = True


def without_threads() -> None:
    """A worker process's set-up: one thread a file."""
    global THREADS
    THREADS = False


def import_file(source: Source, root: Path, on_progress: FileProgress | None = None) -> FileResult | None:
    """One file into ``root``, whole or not at all; ``None`` when its marker says it is in already.

    Parts of an earlier, interrupted run of the same file (no marker) are removed first, and so are
    this run's when it fails; the marker is written after the last part commits."""
    session = identity(source)
    marker = root / MARKERS / f"{session}.json"
    if marker.exists():
        return None
    _remove_session(root, session)
    pairer = FillPairer()
    try:
        rows, trades = _import_file(source, root, session, pairer, on_progress)
    except BaseException:
        _remove_session(root, session)
        raise
    unpaired = [[recv_ns, user, fill] for recv_ns, user, fill in pairer.pending.values()]
    marker.parent.mkdir(parents=True, exist_ok=True)
    _write_marker(marker, {"key": source.key, "location": source.location, "dataset": source.dataset, "rows": rows, "trades": trades, "size": source.size, "unpaired": unpaired})
    return FileResult(source.key, source.dataset, source.size, rows, trades, unpaired)


def _import_file(source: Source, root: Path, session: str, pairer: FillPairer, on_progress: FileProgress | None) -> tuple[int, int]:
    rows = trades = 0
    subs = _Subscriptions()
    counted = _Counted(_open(source))
    number = 0
    try:
        with ArchiveWriter(root, session=session, source_url=source.key, background=True) as writer:
            if source.dataset in BULK_DATASETS:
                chunked = _bulk_chunks(io.BufferedReader(counted, 1 << 20), source.dataset, THREADS)
                with closing(_read_ahead(chunked) if THREADS else chunked) as chunks:
                    for chunk, bulk in chunks:
                        written = _write_bulk(writer, bulk, pairer, subs) if bulk is not None else None
                        if written is not None:
                            number += bulk.lines
                            rows += written[0]
                            trades += written[1]
                        else:  # line by line keeps, or refuses, what the bulk checks could not prove
                            for number, line in enumerate(io.BytesIO(chunk), start=number + 1):
                                if line.strip():
                                    r, t = _write_line(writer, source.dataset, line, pairer, subs)
                                    rows += r
                                    trades += t
                        if on_progress:
                            on_progress(counted.count, rows)
            else:
                lines = _lines(io.BufferedReader(counted, 1 << 20))
                if source.dataset == "asset_ctxs":
                    number += 1
                    check_asset_ctx_header(next(lines, b"").decode("utf-8", "replace"))
                for number, line in enumerate(lines, start=number + 1):
                    if not line.strip():
                        continue
                    r, t = _write_line(writer, source.dataset, line, pairer, subs)
                    rows += r
                    trades += t
                    if on_progress and number % 20_000 == 0:
                        on_progress(counted.count, rows)
    except HistoryError as exc:
        raise ArchiveError(f"{source.location}, line {number}: {exc}; nothing of this file was imported") from None
    except (RuntimeError, EOFError, OSError) as exc:  # lz4's "truncated frame", a read error
        raise ArchiveError(f"{source.location}, line {number + 1}: cannot decode the LZ4 frame ({_one_line(exc)}); nothing of this file was imported") from None
    finally:
        counted.inner.close()
    return rows, trades


class _Subscriptions(dict):  # type: ignore[type-arg]
    """One Subscription per (type, coin), parsed once: an import writes millions of rows."""

    def __missing__(self, key: tuple[str, str]) -> Subscription:
        sub = self[key] = parse_subscription({"type": key[0], "coin": key[1]}, allow_unknown=True)
        return sub


def _write_line(writer: ArchiveWriter, dataset: str, line: bytes, pairer: FillPairer, subs: _Subscriptions) -> tuple[int, int]:
    """Write one line's frames; ``(rows, trades frames)`` written."""
    if dataset == "l2Book":
        recv_ns, frame = l2book_record(line)
        writer.write(frame, recv_ns, subs["l2Book", frame["data"]["coin"]])
        return 1, 0
    if dataset == "asset_ctxs":
        recv_ns, coin, frame = asset_ctx_row(line.decode("utf-8", "replace"))
        writer.write_text(encode_raw(frame), recv_ns, subs[ASSET_CTXS, coin])
        return 1, 0
    if dataset == "node_trades":
        recv_ns, record_frame, trade_frame = node_trade(line)
        coin = trade_frame["data"][0]["coin"]
        writer.write_text(encode_raw(record_frame), recv_ns, subs[NODE_TRADES, coin])
        writer.write(trade_frame, recv_ns, subs["trades", coin])
        return 1, 1
    rows = trades = 0
    for recv_ns, user, fill, frame in fills_of_line(line, dataset):
        writer.write_text(encode_raw(frame), recv_ns, subs[NODE_FILLS, fill["coin"]], exch_ms=fill["time"])
        rows += 1
        paired = pairer.add(recv_ns, user, fill)
        if paired is not None:
            trade_ns, trade_frame = paired
            writer.write(trade_frame, trade_ns, subs["trades", fill["coin"]])
            trades += 1
    return rows, trades


def _remove_session(root: Path, session: str) -> None:
    removed = []
    for part in root.glob(f"channel=*/coin=*/date=*/part-*-{session}-*.parquet"):
        name = parse_part_name(part.name)
        if name is not None and name.session == session:
            part.unlink()
            removed.append(part.relative_to(root).as_posix())
    CatalogLog(root, "import-cleanup").removed(removed)


def _write_marker(marker: Path, record: dict[str, Any]) -> None:
    temporary = marker.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(record))
    os.replace(temporary, marker)


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
