"""Reading the archive: find the parts that matter, and stream their rows in order.

Only the partitions asked for are listed (their directories name channel, coin and date) and a part
is opened only when its name and footer say it can overlap ``[start, end]``. The archive is a local
directory or an object-store URL: the same code reads both through ``storage.Store``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Collection

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.layout import (
    EVENTS_CHANNEL,
    META_CHANNEL,
    ArchiveError,
    PartName,
    escape,
    parse_part_name,
    read_metadata,
    unescape,
    utc_date,
)

from .storage import Store, open_store

NS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class Part:
    store: Store
    path: str  # in the store's filesystem
    channel: str
    coin: str
    date: str
    name: PartName
    size: int | None = None
    entry: Any = field(default=None, compare=False)  # its catalog entry (rows, receive times, hours) when planned from the catalog

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def directory(self) -> str:
        return self.path.rsplit("/", 1)[0]

    def __str__(self) -> str:
        return self.store.where(self.path)


def check_root(root: str | os.PathLike[str] | Store) -> Store:
    """The archive's store; a missing root is the user's to fix, said in one line."""
    store = root if isinstance(root, Store) else open_store(root)
    info = store.info(store.root)
    if info.type == pafs.FileType.NotFound:
        raise ArchiveError(f"no archive at {store.url!r}: give the directory you recorded into (record --out), or the URL you synced to")
    if info.type != pafs.FileType.Directory:
        raise ArchiveError(f"{store.url!r} is a file, not an archive directory")
    return store


def _values(store: Store, directory: str, key: str, wanted: Collection[str] | None) -> list[tuple[str, str]]:
    """The partition values below ``directory``: only the wanted ones are looked at (no listing)."""
    prefix = f"{key}="
    if wanted is not None:
        found = [(value, f"{directory}/{prefix}{escape(value)}") for value in sorted(wanted)]
        if store.local:
            return [(v, p) for v, p in found if os.path.isdir(p)]
        return [(v, p) for v, p in found if store.is_dir(p)]
    if store.local:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        return [(unescape(e.name[len(prefix) :]), e.path) for e in entries if e.is_dir() and e.name.startswith(prefix)]
    return [
        (unescape(i.base_name[len(prefix) :]), i.path)
        for i in store.entries(directory)
        if i.type == pafs.FileType.Directory and i.base_name.startswith(prefix)
    ]


def _files(store: Store, directory: str) -> list[tuple[str, str, int | None]]:
    """``(name, path, size)`` of the files in a partition directory."""
    if store.local:
        try:
            return [(e.name, e.path, None) for e in sorted(os.scandir(directory), key=lambda e: e.name) if e.is_file()]
        except FileNotFoundError:
            return []
    return [(i.base_name, i.path, i.size) for i in store.entries(directory) if i.type == pafs.FileType.File]


def find_parts(
    root: str | os.PathLike[str] | Store,
    *,
    channels: Collection[str] | None = None,
    coins: Collection[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    include_special: bool = False,
    dates: Collection[str] | None = None,
) -> list[Part]:
    """The committed parts of the chosen partitions that may hold rows in ``[start_ns, end_ns]``.

    Planned from the catalog (``catalog``): the dates' entries are read, nothing is listed and no
    footer is read. An archive without a catalog (an older version wrote it) gets one, built from
    the tree once; where it cannot be written, the tree is walked: partitions chosen by directory
    names (on an object store, only the prefixes needed are listed), a part by its name (first
    receive time) and, when it starts before ``start_ns``, by its footer statistics."""
    store = check_root(root)
    first_date = utc_date(start_ns) if start_ns is not None else None
    last_date = utc_date(end_ns) if end_ns is not None else None
    entries = planned(store, first_date, last_date, dates, channels=channels, coins=coins, start_ns=start_ns, end_ns=end_ns, include_special=include_special)
    if entries is None:
        return _walked(store, channels, coins, start_ns, end_ns, include_special, dates, first_date, last_date)
    wanted_channels = set(channels) if channels is not None else None
    wanted_coins = set(coins) if coins is not None else None
    parts: list[Part] = []
    for entry in sorted(entries, key=lambda e: e.path):
        if wanted_channels is not None and entry.channel not in wanted_channels:
            continue
        if not include_special and entry.channel in (EVENTS_CHANNEL, META_CHANNEL):
            continue
        if wanted_coins is not None and entry.coin not in wanted_coins:
            continue
        if (end_ns is not None and entry.first_recv_ns > end_ns) or (start_ns is not None and entry.last_recv_ns < start_ns):
            continue
        name = parse_part_name(entry.path.rsplit("/", 1)[-1])
        if name is None:
            continue
        parts.append(Part(store, store.path(entry.path), entry.channel, entry.coin, entry.date, name, entry.bytes, entry))
    return parts


def planned(store: Store, first_date: str | None = None, last_date: str | None = None, dates: Collection[str] | None = None, **selection: Any) -> list[Any] | None:
    """The catalog's entries of the dates asked for (and of ``selection``: ``catalog.select``'s
    filters); ``None`` when there is no catalog and none can be written, or with
    ``HLARCHIVE_NO_CATALOG=1`` (the caller walks the tree)."""
    from . import catalog

    if os.environ.get("HLARCHIVE_NO_CATALOG"):
        return None
    if not catalog.is_complete(store):
        if not any(i.base_name.startswith("channel=") for i in store.entries(store.root)):
            return None
        try:
            with _REBUILDING:
                if not catalog.is_complete(store):
                    catalog.rebuild(store, walk_parts(store))
        except (OSError, ArchiveError) as exc:
            print(f"catalog: none in this archive and it cannot be written ({exc}): walking the tree", file=sys.stderr)
            return None
    return catalog.read_catalog(store, first_date, last_date, dates, **selection)


_REBUILDING = threading.Lock()


def any_part(root: str | os.PathLike[str] | Store, *, channels: Collection[str] | None = None, coins: Collection[str] | None = None) -> bool:
    """Whether the archive holds a part of those channels and coins: from the catalog, the most
    recent date first, stopping at the first that has one (not every date's entries)."""
    store = check_root(root)
    if planned(store, dates=()) is None:
        return bool(find_parts(store, channels=channels, coins=coins))
    from .catalog import catalog_dates, date_table, select

    narrow = coins if coins is not None and len(coins) <= 8 else None
    return any(select(date_table(store, date, narrow), channels, coins, include_special=False).num_rows for date in reversed(catalog_dates(store)))


def walk_parts(store: Store, *, dates: Collection[str] | None = None) -> list[Part]:
    """Every part in the tree (of ``dates``), special channels included: what the catalog is built from."""
    return _walked(store, None, None, None, None, True, dates, None, None, footers=False)


def _walked(
    store: Store,
    channels: Collection[str] | None,
    coins: Collection[str] | None,
    start_ns: int | None,
    end_ns: int | None,
    include_special: bool,
    dates: Collection[str] | None,
    first_date: str | None,
    last_date: str | None,
    footers: bool = True,
) -> list[Part]:
    parts: list[Part] = []
    for channel, channel_dir in _values(store, store.root, "channel", channels):
        if not include_special and channel in (EVENTS_CHANNEL, META_CHANNEL):
            continue
        for coin, coin_dir in _values(store, channel_dir, "coin", coins):
            for date, date_dir in _values(store, coin_dir, "date", dates):
                if (first_date and date < first_date) or (last_date and date > last_date):
                    continue
                for file_name, path, size in _files(store, date_dir):
                    name = parse_part_name(file_name)
                    if name is None:
                        continue
                    if end_ns is not None and name.first_recv_ns > end_ns:
                        continue
                    part = Part(store, path, channel, coin, date, name, size)
                    if footers and start_ns is not None and name.first_recv_ns < start_ns and _ends_before(part, start_ns):
                        continue
                    parts.append(part)
    return parts


def list_dates(
    root: str | os.PathLike[str] | Store,
    *,
    channels: Collection[str] | None = None,
    coins: Collection[str] | None = None,
    include_special: bool = False,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[str]:
    """The UTC dates that the chosen partitions hold (within ``[start_ns, end_ns]``), in order:
    replay works through them one by one."""
    store = check_root(root)
    first, last = (utc_date(start_ns) if start_ns is not None else ""), (utc_date(end_ns) if end_ns is not None else "9999")
    if planned(store, dates=()) is not None:  # a catalog: a date at a time, in Arrow (no entry made)
        from .catalog import catalog_dates, date_table, select

        return [
            date for date in catalog_dates(store)
            if first <= date <= last and select(date_table(store, date, coins if coins is not None and len(coins) <= 8 else None), channels, coins, include_special=include_special).num_rows
        ]  # fmt: skip
    found: set[str] = set()
    for channel, channel_dir in _values(store, store.root, "channel", channels):
        if not include_special and channel in (EVENTS_CHANNEL, META_CHANNEL):
            continue
        for _coin, coin_dir in _values(store, channel_dir, "coin", coins):
            found.update(date for date, _ in _values(store, coin_dir, "date", None) if first <= date <= last)
    return sorted(found)


def open_part(part: Part, metadata: pq.FileMetaData | None = None, *, dictionary_data: bool = False) -> pq.ParquetFile:
    """The part's Parquet file (``metadata``: its footer, when already read), its format version checked.

    ``dictionary_data`` (with ``metadata``): the typed columns' strings come as Arrow dictionaries,
    as Parquet stores them, so a price repeated on every book is decoded, and made a Python string,
    once a batch (``schemas.shapes.column_values`` takes them)."""
    read_dictionary = data_dictionary_columns(metadata) if dictionary_data and metadata is not None else None
    try:
        parquet = pq.ParquetFile(part.path if part.store.local else part.store.open(part.path), metadata=metadata, read_dictionary=read_dictionary)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ArchiveError(f"cannot read part {part}: {exc}; run `hlarchive verify` on the archive") from None
    read_metadata(parquet.schema_arrow.metadata, str(part))
    return parquet


def data_dictionary_columns(metadata: pq.FileMetaData) -> list[str]:
    """The typed columns worth reading as dictionaries: strings whose Parquet dictionary is small
    next to their values (prices and sizes of a book, coins, sides). A column of mostly distinct
    values (hashes) is not: Arrow would hash every value to build a dictionary nobody reuses."""
    if metadata.num_row_groups == 0:
        return []
    chosen = []
    for j in range(metadata.num_columns):
        chunks = [metadata.row_group(g).column(j) for g in range(metadata.num_row_groups)]
        first = chunks[0]
        if not first.path_in_schema.startswith("data.") or first.physical_type != "BYTE_ARRAY" or "key_value" in first.path_in_schema:
            continue
        if all(c.has_dictionary_page and c.data_page_offset - c.dictionary_page_offset < c.num_values for c in chunks):
            chosen.append(first.path_in_schema)
    return chosen


def batch_rows(metadata: pq.FileMetaData, values: int = 65_536) -> int:
    """Rows a batch should hold so that it carries about ``values`` leaf values: 8,192 small frames,
    about 1,600 40-level books. Each batch costs a fixed few dozen Arrow calls to decode or render,
    so small batches cost speed (2,048 small frames a batch made bytes 20-60% slower); a batch's
    frames exist as Python objects at once, so big batches of big frames cost memory."""
    if metadata.num_row_groups == 0 or metadata.num_rows == 0:
        return 2048
    group = metadata.row_group(0)
    widest = max(group.column(j).num_values for j in range(group.num_columns))
    return max(256, min(8192, values * group.num_rows // max(widest, 1)))


# Replay decodes Parquet on its own thread. With Arrow's thread pool, buffers its workers allocate and
# this thread frees stay with the workers' mimalloc heaps: peak RSS grew with the archive's length (an
# l2Book archive ten times longer, 1.05-1.18x the peak; on this thread 0.99-1.00x), for no speed that
# shows above this machine's noise (interleaved A/B, bytes and dicts, l2Book, trades, userFills).
READ_THREADS = False


def part_batches(part: Part, footer: pq.FileMetaData, columns: Collection[str] | None = None) -> Iterator[pa.RecordBatch]:
    """A part's batches (``columns`` of them, those it has: a column not read costs nothing), its
    typed strings as dictionaries (dicts make each distinct string once, text renders it once), a
    row group at a time: a batch across two row groups (two Parquet dictionaries) would be a chunked
    nested column, which Arrow cannot read. Should a column still fail to come as a dictionary, the
    rest of the part is read as plain strings, from the first row not yet given."""
    size, groups = batch_rows(footer), footer.num_row_groups
    group = given = 0  # the row group being read, and how many of its rows were given
    wanted = None
    if columns is not None:
        tops = {path.split(".", 1)[0] for path in column_paths(footer)}
        wanted = [name for name in columns if name in tops]
    try:
        parquet = open_part(part, footer, dictionary_data=True)
        for group in range(groups):
            given = 0
            for batch in parquet.iter_batches(batch_size=size, row_groups=[group], columns=wanted, use_threads=READ_THREADS):
                yield batch
                given += batch.num_rows
        return
    except pa.ArrowNotImplementedError:
        pass
    plain = open_part(part, footer)
    for group in range(group, groups):
        for batch in plain.iter_batches(batch_size=size, row_groups=[group], columns=wanted, use_threads=READ_THREADS):
            if given:
                skip = min(given, batch.num_rows)
                given -= skip
                batch = batch.slice(skip)
                if not batch.num_rows:
                    continue
            yield batch


def column_paths(footer: pq.FileMetaData) -> list[str]:
    """The dotted path of each leaf column. Read from the first row group: a footer's ``schema``
    object and the footer refer to each other, so every footer that was asked for its schema is
    garbage only the cyclic collector frees (replay keeps that collector rare: memory grew with the
    number of parts read)."""
    if footer.num_row_groups:
        group = footer.row_group(0)
        return [group.column(j).path_in_schema for j in range(footer.num_columns)]
    return [footer.schema.column(j).path for j in range(footer.num_columns)]


def read_footer(part: Part) -> pq.FileMetaData:
    return pq.read_metadata(part.path if part.store.local else part.store.open(part.path))


def _ends_before(part: Part, start_ns: int) -> bool:
    """Whether the part's footer statistics say every row was received before ``start_ns``."""
    try:
        metadata = read_footer(part)
    except (OSError, pa.ArrowInvalid, ArchiveError):
        return False  # let open_part report it
    last = last_recv_ns(metadata)
    return last is not None and last < start_ns


def last_recv_ns(metadata: pq.FileMetaData) -> int | None:
    """The largest ``recv_ns`` from the footer's statistics, without reading any data."""
    paths = column_paths(metadata)
    if "recv_ns" not in paths:
        return None
    index = paths.index("recv_ns")
    best = None
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        best = stats.max if best is None else max(best, stats.max)
    return best
