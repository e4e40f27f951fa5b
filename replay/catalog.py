"""The readers' side of the catalog (format: ``schemas.catalog``), local or on an object store:
the entries of the dates a reader needs (one listing of ``_catalog/``, then a file or two a date),
a date's lines folded into one file, the catalog rebuilt from the tree, and where catalog and tree
disagree (``verify``)."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.catalog import (
    CATALOG_DIR,
    COMPLETE,
    FOLDED,
    Entry,
    Folding,
    added_line,
    entry_of_footer,
    log_name,
    removed_line,
    schema,
)
from schemas.layout import escape

from .storage import Store


def is_complete(store: Store) -> bool:
    return store.exists(store.path(CATALOG_DIR, COMPLETE))


def mark_complete(store: Store) -> None:
    store.write(store.path(CATALOG_DIR, COMPLETE), orjson.dumps({"format": 1, "since_ns": time.time_ns()}))


def catalog_dates(store: Store) -> list[str]:
    """The dates the catalog holds entries for (one listing of ``_catalog/``)."""
    return sorted({i.base_name[5:].removesuffix(FOLDED) for i in store.entries(store.path(CATALOG_DIR)) if i.base_name.startswith("date=")})


def read_date(store: Store, date: str) -> dict[str, Entry]:
    """A date's entries (path -> entry): its folded file, then every writer's lines."""
    folding = Folding()
    folded = store.path(CATALOG_DIR, f"date={escape(date)}{FOLDED}")
    if store.exists(folded):
        with store.open(folded) as handle:
            folding.rows(pq.read_table(handle))
    for info in store.entries(store.path(CATALOG_DIR, f"date={escape(date)}")):
        if info.base_name.endswith(".jsonl"):
            folding.lines(store.read_bytes(info.path))
    return folding.result()


def read_catalog(store: Store, first_date: str | None = None, last_date: str | None = None, dates: Iterable[str] | None = None) -> list[Entry]:
    """Every entry of the dates in ``[first_date, last_date]`` (and among ``dates``, if given)."""
    wanted = set(dates) if dates is not None else None
    out: list[Entry] = []
    for date in catalog_dates(store):
        if (first_date and date < first_date) or (last_date and date > last_date) or (wanted is not None and date not in wanted):
            continue
        out.extend(read_date(store, date).values())
    return out


def write_ops(store: Store, writer: str, added: Iterable[Entry] = (), removed: Iterable[str] = ()) -> None:
    """Record parts added and removed as a new file of lines a date (an object store cannot append):
    what compaction and sync write."""
    by_date: dict[str, list[bytes]] = {}
    for entry in added:
        by_date.setdefault(entry.date, []).append(added_line(entry))
    for relative in removed:
        line = removed_line(relative)
        by_date.setdefault(orjson.loads(line)["date"], []).append(line)
    name = log_name(time.strftime("%Y%m%d%H", time.gmtime()), f"{writer}-{secrets.token_hex(4)}")
    for date, lines in by_date.items():
        store.write(store.path(CATALOG_DIR, f"date={escape(date)}", name), b"".join(lines))


def fold_date(store: Store, date: str, *, before_hour: str | None = None) -> int:
    """Rewrite a date's folded file with its lines taken in, then delete the files of hours before
    ``before_hour`` (default the current one: no writer appends to those any more). Returns its
    entries. An interruption leaves lines also in the folded file: folding again gives the same."""
    before_hour = before_hour or time.strftime("%Y%m%d%H", time.gmtime())
    directory = store.path(CATALOG_DIR, f"date={escape(date)}")
    done = [i.path for i in store.entries(directory) if i.base_name.endswith(".jsonl") and i.base_name[:10] < before_hour]
    folding = Folding()
    folded = store.path(CATALOG_DIR, f"date={escape(date)}{FOLDED}")
    if store.exists(folded):
        with store.open(folded) as handle:
            folding.rows(pq.read_table(handle))
    for info in store.entries(directory):
        if info.base_name.endswith(".jsonl"):
            folding.lines(store.read_bytes(info.path))
    table = folding.table()
    store.write(folded, lambda sink: pq.write_table(table, sink, compression="zstd"))
    for path in done:
        store.delete(path)
    return table.num_rows


def entries_of(store: Store, parts: Iterable[Any], *, skip_unreadable: bool = False) -> list[Entry]:
    """The entries of parts found in the tree (``archive.walk_parts``), from their footers: what the
    catalog should say. A part whose footer cannot be read is left out with ``skip_unreadable``
    (``verify`` reports it as unreadable), else listed by its name alone."""
    out = []
    root = store.root.rstrip("/")
    for part in parts:
        try:
            out.append(_entry_of_part(store, part, root))
        except (OSError, pa.ArrowInvalid):
            if not skip_unreadable:
                out.append(_unread_entry(part, root))
    return out


def _entry_of_part(store: Store, part: Any, root: str) -> Entry:
    if store.local:
        meta = pq.read_metadata(part.path)
        size = part.size if part.size is not None else os.path.getsize(part.path)
    else:
        with store.open(part.path) as handle:
            meta = pq.ParquetFile(handle).metadata
            size = part.size if part.size is not None else handle.size()
    return entry_of_footer(part.path[len(root) + 1 :], meta, size)


def _unread_entry(part: Any, root: str) -> Entry:
    """A part whose footer cannot be read, listed by its name alone (never pruned by time), so a
    reader still opens it and says it is unreadable rather than skip it."""
    relative = part.path[len(root) + 1 :]
    return Entry(relative, part.channel, part.coin, part.date, 0, part.size or 0, part.name.first_recv_ns, 2**63 - 1, 0, 0, part.name.session)


def rebuild(store: Store, parts: Iterable[Any], *, say: bool = True) -> int:
    """The catalog built from the tree's ``parts`` (``archive.walk_parts``), a folded file a date,
    then ``COMPLETE``; parts listed."""
    started = time.monotonic()
    entries = entries_of(store, parts)
    by_date: dict[str, list[Entry]] = {}
    for entry in entries:
        by_date.setdefault(entry.date, []).append(entry)
    for info in store.entries(store.path(CATALOG_DIR)):  # what an earlier catalog said goes
        if info.base_name.startswith("date="):
            if info.base_name.endswith(FOLDED):
                store.delete(info.path)
            else:
                for child in store.entries(info.path):
                    store.delete(child.path)
    for date, items in by_date.items():
        table = pa.Table.from_pylist([e.as_dict() for e in sorted(items, key=lambda e: e.path)], schema=schema())
        store.write(store.path(CATALOG_DIR, f"date={escape(date)}{FOLDED}"), lambda sink, table=table: pq.write_table(table, sink, compression="zstd"))
    mark_complete(store)
    if say:
        print(f"catalog: built from the tree, once ({len(entries):,} parts in {len(by_date)} dates, {time.monotonic() - started:.1f} s): this archive had none", file=sys.stderr)
    return len(entries)


def differences(store: Store, parts: Iterable[Any]) -> tuple[list[Entry], list[str]]:
    """``(parts in the tree the catalog lacks, entries whose part is gone)``: ``parts`` is the whole
    tree (``archive.walk_parts``)."""
    root = store.root.rstrip("/")
    tree = {part.path[len(root) + 1 :]: part for part in parts}
    listed = {e.path for e in read_catalog(store)}
    unlisted = [part for relative, part in sorted(tree.items()) if relative not in listed]
    return entries_of(store, unlisted, skip_unreadable=True), sorted(listed - set(tree))


__all__ = ["catalog_dates", "differences", "fold_date", "is_complete", "mark_complete", "read_catalog", "read_date", "rebuild", "entries_of", "write_ops"]
