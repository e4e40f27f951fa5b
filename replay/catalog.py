"""The readers' side of the catalog (format: ``schemas.catalog``), local or on an object store:
the entries of the dates a reader needs (one listing of ``_catalog/``, then a file or two a date),
a date's lines folded into one file, the catalog rebuilt from the tree, and where catalog and tree
disagree (``verify``)."""

from __future__ import annotations

import io
import os
import secrets
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.json as pa_json
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
    return {e.path: e for e in _entries(date_table(store, date))}


def date_table(store: Store, date: str, coins: Iterable[str] | None = None) -> pa.Table:
    """A date's entries as one Arrow table: its folded file and its writers' lines (parsed by Arrow's
    JSON reader, a file at once), adds less removes; with ``coins``, only theirs (the lines of other
    coins are skipped before parsing: a day being recorded has tens of thousands). Kept per process
    while the date's files stay as they were (their names, sizes and times: one listing tells)."""
    directory = store.path(CATALOG_DIR, f"date={escape(date)}")
    folded = store.path(CATALOG_DIR, f"date={escape(date)}{FOLDED}")
    logs = [i for i in store.entries(directory) if i.base_name.endswith(".jsonl")]
    folded_info = store.info(folded)
    signature = (folded_info.size, folded_info.mtime_ns, tuple((i.base_name, i.size, i.mtime_ns) for i in logs))
    only = None if coins is None else frozenset(coins)
    key = (store.url, date, only)
    cached = _TABLES.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    tables = []
    if folded_info.type != pafs.FileType.NotFound:
        with store.open(folded) as handle:
            rows = _conform(pq.read_table(handle))
        tables.append(rows.append_column("t", pa.repeat(pa.scalar(-1, pa.int64()), rows.num_rows)).append_column("add", pa.repeat(pa.scalar(True), rows.num_rows)))
    if logs:
        texts = []
        for info in logs:
            text = store.read_bytes(info.path)
            if not text.endswith(b"\n"):
                text = text[: text.rfind(b"\n") + 1]  # a last line a crash cut short: its part is caught up from the tree
            texts.append(text)
        text = b"".join(texts)
        if only is not None and text:  # each line's path names its coin: keep the lines of these
            text = b"".join(_lines_with(text, f"/coin={escape(c)}/".encode()) for c in sorted(only))
        if text:
            ops = pa_json.read_json(io.BytesIO(text), read_options=pa_json.ReadOptions(block_size=1 << 20),  # blocks parsed on every core
                                    parse_options=pa_json.ParseOptions(explicit_schema=_OPS_SCHEMA, unexpected_field_behavior="ignore"))
            tables.append(_conform(ops).append_column("t", pc.fill_null(ops.column("t"), 0)).append_column("add", pc.equal(ops.column("op"), "add")))
    table = pa.concat_tables(tables) if tables else schema().empty_table().append_column("t", pa.array([], pa.int64())).append_column("add", pa.array([], pa.bool_()))
    if table.num_rows and (not pc.all(table.column("add")).as_py() or len(pc.unique(table.column("path"))) != table.num_rows):
        # a path listed more than once (removed; written again by an import's retry; a fold interrupted):
        # its latest line says (a removal wins a tie)
        table = table.take(pc.sort_indices(table, sort_keys=[("path", "ascending"), ("t", "ascending"), ("add", "descending")]))
        paths = table.column("path").combine_chunks()
        last = pc.not_equal(paths.slice(0, len(paths) - 1), paths.slice(1)) if len(paths) > 1 else pa.array([], pa.bool_())
        last = pa.concat_arrays([last, pa.array([True])])
        table = table.filter(pc.and_(last, table.column("add").combine_chunks()))
    table = table.drop_columns(["t", "add"])
    if only is not None and table.num_rows:
        table = table.filter(pc.is_in(table.column("coin"), pa.array(sorted(only), pa.string())))
    if len(_TABLES) >= 64:
        _TABLES.pop(next(iter(_TABLES)))
    _TABLES[key] = (signature, table)
    return table


def _lines_with(text: bytes, needle: bytes) -> bytes:
    """The whole lines of ``text`` that hold ``needle`` (found by ``bytes.find``: a few lines among
    tens of thousands cost a few jumps, not a pass of Python over each line)."""
    out = []
    at = 0
    while (hit := text.find(needle, at)) >= 0:
        start = text.rfind(b"\n", 0, hit) + 1
        end = text.find(b"\n", hit) + 1 or len(text)
        out.append(text[start:end])
        at = end
    return b"".join(out)


_TABLES: dict[tuple[str, str], tuple[Any, pa.Table]] = {}
_OPS_SCHEMA = pa.schema([pa.field("op", pa.string()), pa.field("t", pa.int64()), *schema()])


def _conform(table: pa.Table) -> pa.Table:
    """A table of entries in the catalog's columns (a folded file from before a column was added)."""
    wanted = schema()
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in wanted]
    return pa.Table.from_arrays(columns, schema=wanted)


def _entries(table: pa.Table) -> list[Entry]:
    return [Entry.of(row) for row in table.to_pylist()]


def select(table: pa.Table, channels: Iterable[str] | None = None, coins: Iterable[str] | None = None, start_ns: int | None = None, end_ns: int | None = None, include_special: bool = True) -> pa.Table:
    """The entries of ``table`` of those channels and coins that may hold rows in ``[start_ns, end_ns]``."""
    mask = None

    def both(m: Any) -> None:
        nonlocal mask
        mask = m if mask is None else pc.and_(mask, m)

    if channels is not None:
        both(pc.is_in(table.column("channel"), pa.array(list(channels), pa.string())))
    if not include_special:
        both(pc.invert(pc.starts_with(table.column("channel"), "_")))
    if coins is not None:
        both(pc.is_in(table.column("coin"), pa.array(list(coins), pa.string())))
    if end_ns is not None:
        both(pc.less_equal(table.column("first_recv_ns"), end_ns))
    if start_ns is not None:
        both(pc.greater_equal(table.column("last_recv_ns"), start_ns))
    return table if mask is None else table.filter(mask)


def read_catalog(
    store: Store,
    first_date: str | None = None,
    last_date: str | None = None,
    dates: Iterable[str] | None = None,
    **selection: Any,
) -> list[Entry]:
    """The entries of the dates in ``[first_date, last_date]`` (and among ``dates``, if given), of the
    ``selection`` (``select``'s filters, applied in Arrow before any entry is made)."""
    wanted = set(dates) if dates is not None else None
    out: list[Entry] = []
    for date in catalog_dates(store):
        if (first_date and date < first_date) or (last_date and date > last_date) or (wanted is not None and date not in wanted):
            continue
        coins = selection.get("coins")
        narrow = coins if coins is not None and len(coins) <= 8 else None  # a few coins: parse only their lines
        out.extend(_entries(select(date_table(store, date, narrow), **selection)))
    return out


def write_ops(store: Store, writer: str, added: Iterable[Entry] = (), removed: Iterable[str] = ()) -> None:
    """Record parts added and removed as a new file of lines a date (an object store cannot append):
    what compaction and sync write."""
    now = time.time_ns()
    by_date: dict[str, list[bytes]] = {}
    for entry in added:
        by_date.setdefault(entry.date, []).append(added_line(entry, now))
    for relative in removed:
        line = removed_line(relative, now)
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
