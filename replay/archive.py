"""Reading the archive: find the parts that matter, and stream their rows in order.

Only the partitions asked for are listed (their directories name channel, coin and date) and a part
is opened only when its name and footer say it can overlap ``[start, end]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.layout import ArchiveError, EVENTS_CHANNEL, META_CHANNEL, PartName, escape, parse_part_name, read_metadata, unescape, utc_date
from schemas.rows import batch_messages

NS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class Part:
    path: Path
    channel: str
    coin: str
    date: str
    name: PartName


def check_root(root: str | os.PathLike[str]) -> Path:
    path = Path(root)
    if not path.exists():
        raise ArchiveError(f"no archive at {str(path)!r}: give the directory you recorded into (record --out)")
    if not path.is_dir():
        raise ArchiveError(f"{str(path)!r} is a file, not an archive directory")
    return path


def _values(directory: Path, key: str, wanted: Collection[str] | None) -> list[tuple[str, Path]]:
    prefix = f"{key}="
    if wanted is not None:
        found = [(value, directory / f"{prefix}{escape(value)}") for value in sorted(wanted)]
        return [(v, p) for v, p in found if p.is_dir()]
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [(unescape(e.name[len(prefix) :]), Path(e.path)) for e in entries if e.is_dir() and e.name.startswith(prefix)]


def find_parts(
    root: str | os.PathLike[str],
    *,
    channels: Collection[str] | None = None,
    coins: Collection[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    include_special: bool = False,
) -> list[Part]:
    """The committed parts of the chosen partitions that may hold rows in ``[start_ns, end_ns]``."""
    root = check_root(root)
    first_date = utc_date(start_ns) if start_ns is not None else None
    last_date = utc_date(end_ns) if end_ns is not None else None
    parts: list[Part] = []
    for channel, channel_dir in _values(root, "channel", channels):
        if not include_special and channel in (EVENTS_CHANNEL, META_CHANNEL):
            continue
        for coin, coin_dir in _values(channel_dir, "coin", coins):
            for date, date_dir in _values(coin_dir, "date", None):
                if (first_date and date < first_date) or (last_date and date > last_date):
                    continue
                for entry in sorted(os.scandir(date_dir), key=lambda e: e.name):
                    name = parse_part_name(entry.name)
                    if name is None:
                        continue
                    if end_ns is not None and name.first_recv_ns > end_ns:
                        continue
                    parts.append(Part(Path(entry.path), channel, coin, date, name))
    return parts


def open_part(part: Part) -> pq.ParquetFile:
    try:
        parquet = pq.ParquetFile(part.path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ArchiveError(f"cannot read part {part.path}: {exc}; run `hlarchive verify` on the archive") from None
    read_metadata(parquet.schema_arrow.metadata, str(part.path))
    return parquet


def last_recv_ns(parquet: pq.ParquetFile) -> int | None:
    """The largest ``recv_ns`` from the footer's statistics, without reading any data."""
    index = parquet.schema_arrow.get_field_index("recv_ns")
    best = None
    for i in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(i).column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        best = stats.max if best is None else max(best, stats.max)
    return best


def part_rows(
    part: Part,
    *,
    streams: Collection[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    batch_size: int = 4096,
) -> Iterator[tuple[int, str, int, int | None, str, dict[str, Any]]]:
    """``(recv_ns, session, seq, exch_ms, stream, message)`` of one part, in its stored order, filtered."""
    parquet = open_part(part)
    if start_ns is not None:
        last = last_recv_ns(parquet)
        if last is not None and last < start_ns:
            return
    value_set = pa.array(sorted(streams), pa.string()) if streams is not None else None
    for batch in parquet.iter_batches(batch_size=batch_size):
        mask = None
        if value_set is not None:
            mask = pc.is_in(batch.column("stream"), value_set=value_set)
        if start_ns is not None:
            after = pc.greater_equal(batch.column("recv_ns"), start_ns)
            mask = after if mask is None else pc.and_(mask, after)
        if end_ns is not None:
            before = pc.less_equal(batch.column("recv_ns"), end_ns)
            mask = before if mask is None else pc.and_(mask, before)
        if mask is not None:
            batch = batch.filter(mask)
            if batch.num_rows == 0:
                continue
        recv = batch.column("recv_ns").to_pylist()
        sessions = batch.column("session").to_pylist()
        seqs = batch.column("seq").to_pylist()
        exch = batch.column("exch_ms").to_pylist()
        streams_ = batch.column("stream").to_pylist()
        yield from zip(recv, sessions, seqs, exch, streams_, batch_messages(batch))
