"""The catalog's format, sans I/O: an entry per committed part, the lines writers append, and how a
date's lines fold into its entries. The files themselves are written by ``recorder.catalog`` (the
writers' appends) and read by ``replay.catalog`` (readers, folding, rebuilding from the tree).

Layout under the archive root, plain files any tool can read:

- ``_catalog/COMPLETE``: the catalog lists every part (written by the first writer of a new
  archive, or by a rebuild from the tree). Without it, readers build the catalog from the tree once.
- ``_catalog/date=<YYYY-MM-DD>/<YYYYMMDDHH>-<writer>.jsonl``: what one writer did in one wall-clock
  hour, a JSON line a part added (``{"op": "add", "path", "channel", "coin", "date", "rows",
  "bytes", "first_recv_ns", "last_recv_ns", "first_seq", "last_seq", "session"}``) or removed
  (``{"op": "remove", "path", "date"}``).
- ``_catalog/date=<YYYY-MM-DD>.parquet``: the date's entries folded (adds less removes), rewritten
  whole; the hourly files it took in are then deleted. Folding twice gives the same: a part's path is
  never reused, and a removal is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .layout import parse_part_name, unescape

if TYPE_CHECKING:  # Arrow is loaded where entries are made from rows or footers, not by the writers' appends
    import pyarrow as pa
    import pyarrow.parquet as pq

CATALOG_DIR = "_catalog"
COMPLETE = "COMPLETE"
FIELDS = ("path", "channel", "coin", "date", "rows", "bytes", "first_recv_ns", "last_recv_ns", "first_seq", "last_seq", "session")


def schema() -> pa.Schema:
    """The folded file's columns."""
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("channel", pa.string()), ("coin", pa.string()), ("date", pa.string()),
        ("rows", pa.int64()), ("bytes", pa.int64()), ("first_recv_ns", pa.int64()), ("last_recv_ns", pa.int64()),
        ("first_seq", pa.int64()), ("last_seq", pa.int64()), ("session", pa.string()),
    ])  # fmt: skip


@dataclass(frozen=True)
class Entry:
    path: str  # below the root: channel=.../coin=.../date=.../part-....parquet
    channel: str
    coin: str
    date: str
    rows: int
    bytes: int
    first_recv_ns: int
    last_recv_ns: int
    first_seq: int
    last_seq: int
    session: str

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FIELDS}


def _where(relative: str) -> tuple[str, str, str, str]:
    channel, coin, date = (unescape(piece.split("=", 1)[1]) for piece in relative.split("/")[:3])
    name = parse_part_name(relative.rsplit("/", 1)[-1])
    return channel, coin, date, name.session if name is not None else ""


def entry_of_table(relative: str, table: pa.Table, size: int) -> Entry:
    """A part's entry from the rows it was written with."""
    import pyarrow.compute as pc

    channel, coin, date, session = _where(relative)
    recv, seq = pc.min_max(table.column("recv_ns")).as_py(), pc.min_max(table.column("seq")).as_py()
    return Entry(relative, channel, coin, date, table.num_rows, size, recv["min"], recv["max"], seq["min"], seq["max"], session)


def entry_of_footer(relative: str, meta: pq.FileMetaData, size: int) -> Entry:
    """A part's entry from its footer's statistics (no row read)."""
    channel, coin, date, session = _where(relative)
    bounds = {"recv_ns": [0, 0], "seq": [0, 0]}
    if meta.num_row_groups:
        group = meta.row_group(0)
        paths = [group.column(j).path_in_schema for j in range(meta.num_columns)]
        for column in bounds:
            index = paths.index(column)
            stats = [meta.row_group(g).column(index).statistics for g in range(meta.num_row_groups)]
            stats = [s for s in stats if s is not None and s.has_min_max]
            if stats:
                bounds[column] = [min(s.min for s in stats), max(s.max for s in stats)]
    return Entry(relative, channel, coin, date, meta.num_rows, size, *bounds["recv_ns"], *bounds["seq"], session)


def added_line(entry: Entry) -> bytes:
    return orjson.dumps({"op": "add", **entry.as_dict()}) + b"\n"


def removed_line(relative: str) -> bytes:
    return orjson.dumps({"op": "remove", "path": relative, "date": relative.split("/")[2].split("=", 1)[1]}) + b"\n"


def date_of(relative: str) -> str:
    return unescape(relative.split("/")[2].split("=", 1)[1])


def log_name(hour: str, writer: str) -> str:
    """A writer's file of one wall-clock hour (``YYYYMMDDHH``): the fold takes files of past hours."""
    return f"{hour}-{writer}.jsonl"


class Folding:
    """A date's entries, folded from its folded file's rows and its writers' lines in any order."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.removed: set[str] = set()

    def rows(self, table: pa.Table) -> None:
        for row in table.to_pylist():
            self.entries[row["path"]] = Entry(**{k: row[k] for k in FIELDS})

    def lines(self, text: bytes) -> None:
        for line in text.splitlines():
            if not line.endswith(b"}"):
                continue  # cut short by a crash: its part is caught up from the tree
            op = orjson.loads(line)
            if op.get("op") == "add":
                self.entries[op["path"]] = Entry(**{k: op[k] for k in FIELDS})
            elif op.get("op") == "remove":
                self.removed.add(op["path"])

    def result(self) -> dict[str, Entry]:
        return {path: entry for path, entry in self.entries.items() if path not in self.removed}

    def table(self) -> pa.Table:
        import pyarrow as pa

        return pa.Table.from_pylist([e.as_dict() for _, e in sorted(self.result().items())], schema=schema())


__all__ = [
    "CATALOG_DIR", "COMPLETE", "FIELDS", "Entry", "Folding", "added_line", "date_of", "entry_of_footer",
    "entry_of_table", "log_name", "removed_line", "schema",
]  # fmt: skip
