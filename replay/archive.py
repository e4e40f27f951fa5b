"""Reading the archive: find the parts that matter, and stream their rows in order.

Only the partitions asked for are listed (their directories name channel, coin and date) and a part
is opened only when its name and footer say it can overlap ``[start, end]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.layout import ArchiveError, EVENTS_CHANNEL, META_CHANNEL, PartName, escape, parse_part_name, read_metadata, unescape, utc_date

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
    dates: Collection[str] | None = None,
) -> list[Part]:
    """The committed parts of the chosen partitions that may hold rows in ``[start_ns, end_ns]``.

    Partitions are chosen by directory names; a part by its name (first receive time) and, when it
    starts before ``start_ns``, by its footer statistics, so no data is read to prune it."""
    root = check_root(root)
    first_date = utc_date(start_ns) if start_ns is not None else None
    last_date = utc_date(end_ns) if end_ns is not None else None
    parts: list[Part] = []
    for channel, channel_dir in _values(root, "channel", channels):
        if not include_special and channel in (EVENTS_CHANNEL, META_CHANNEL):
            continue
        for coin, coin_dir in _values(channel_dir, "coin", coins):
            for date, date_dir in _values(coin_dir, "date", dates):
                if (first_date and date < first_date) or (last_date and date > last_date):
                    continue
                for entry in sorted(os.scandir(date_dir), key=lambda e: e.name):
                    name = parse_part_name(entry.name)
                    if name is None:
                        continue
                    if end_ns is not None and name.first_recv_ns > end_ns:
                        continue
                    if start_ns is not None and name.first_recv_ns < start_ns and _ends_before(Path(entry.path), start_ns):
                        continue
                    parts.append(Part(Path(entry.path), channel, coin, date, name))
    return parts


def list_dates(
    root: str | os.PathLike[str],
    *,
    channels: Collection[str] | None = None,
    coins: Collection[str] | None = None,
    include_special: bool = False,
) -> list[str]:
    """The UTC dates that the chosen partitions hold, in order: replay works through them one by one."""
    root = check_root(root)
    found: set[str] = set()
    for channel, channel_dir in _values(root, "channel", channels):
        if not include_special and channel in (EVENTS_CHANNEL, META_CHANNEL):
            continue
        for _coin, coin_dir in _values(channel_dir, "coin", coins):
            found.update(date for date, _ in _values(coin_dir, "date", None))
    return sorted(found)


def open_part(part: Part) -> pq.ParquetFile:
    try:
        parquet = pq.ParquetFile(part.path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ArchiveError(f"cannot read part {part.path}: {exc}; run `hlarchive verify` on the archive") from None
    read_metadata(parquet.schema_arrow.metadata, str(part.path))
    return parquet


def _ends_before(path: Path, start_ns: int) -> bool:
    """Whether the part's footer statistics say every row was received before ``start_ns``."""
    try:
        metadata = pq.read_metadata(path)
    except (OSError, pa.ArrowInvalid):
        return False  # let open_part report it
    last = last_recv_ns(metadata)
    return last is not None and last < start_ns


def last_recv_ns(metadata: pq.FileMetaData) -> int | None:
    """The largest ``recv_ns`` from the footer's statistics, without reading any data."""
    index = metadata.schema.to_arrow_schema().get_field_index("recv_ns")
    best = None
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        best = stats.max if best is None else max(best, stats.max)
    return best
