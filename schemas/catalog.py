"""The catalog's format, sans I/O: an entry per committed part, the lines writers append, and how a
date's lines fold into its entries. The files themselves are written by ``recorder.parts.catalog`` (the
writers' appends) and read by ``replay.catalog`` (readers, folding, rebuilding from the tree).

Layout under the archive root, plain files any tool can read:

- ``_catalog/COMPLETE``: the catalog lists every part (written by the first writer of a new
  archive, or by a rebuild from the tree). Without it, readers build the catalog from the tree once.
- ``_catalog/date=<YYYY-MM-DD>/<YYYYMMDDHH>-<writer>.jsonl``: what one writer did in one wall-clock
  hour, a JSON line a part added (``{"op": "add", "path", "channel", "coin", "date", "rows",
  "bytes", "first_recv_ns", "last_recv_ns", "first_seq", "last_seq", "session"}``) or removed
  (``{"op": "remove", "path", "date"}``), each with ``t``, the time it was written (ns).
- ``_catalog/date=<YYYY-MM-DD>.pq``: the date's entries folded (adds less removes), a Parquet file
  (not named ``.parquet``, so no glob for the data's parts takes it), rewritten whole; the hourly
  files it took in are then deleted. For each path the latest line wins (the folded file counts as
  older than every line), so folding twice gives the same, and a part an import's retry writes
  again after its cleanup removed it is listed again.
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
FOLDED = ".pq"  # a date's folded entries: date=<YYYY-MM-DD>.pq
FIELDS = ("path", "channel", "coin", "date", "rows", "bytes", "first_recv_ns", "last_recv_ns", "first_seq", "last_seq", "session", "hours", "schema")
HOUR_NS = 3_600_000_000_000


def schema() -> pa.Schema:
    """The folded file's columns."""
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("channel", pa.string()), ("coin", pa.string()), ("date", pa.string()),
        ("rows", pa.int64()), ("bytes", pa.int64()), ("first_recv_ns", pa.int64()), ("last_recv_ns", pa.int64()),
        ("first_seq", pa.int64()), ("last_seq", pa.int64()), ("session", pa.string()),
        ("hours", pa.list_(pa.list_(pa.int64()))), ("schema", pa.string()),
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
    hours: tuple[tuple[int, int], ...] = ()  # (UTC hour start ns, rows received in it): coverage reads no row
    schema: str = ""  # a fingerprint of its columns: the SQL views read parts of one schema without comparing them

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in FIELDS}
        out["hours"] = [list(h) for h in self.hours]
        return out

    @classmethod
    def of(cls, values: dict[str, Any]) -> Entry:
        return cls(**{k: values[k] for k in FIELDS[:-2]}, hours=tuple(tuple(h) for h in values.get("hours") or ()), schema=values.get("schema") or "")


def schema_id(schema: pa.Schema) -> str:
    """A short fingerprint of a part's columns (names and types, not metadata)."""
    import hashlib

    text = ";".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _where(relative: str) -> tuple[str, str, str, str]:
    channel, coin, date = (unescape(piece.split("=", 1)[1]) for piece in relative.split("/")[:3])
    name = parse_part_name(relative.rsplit("/", 1)[-1])
    return channel, coin, date, name.session if name is not None else ""


def entry_of_table(relative: str, table: pa.Table, size: int) -> Entry:
    """A part's entry from the rows it was written with."""
    import pyarrow.compute as pc

    channel, coin, date, session = _where(relative)
    recv, seq = pc.min_max(table.column("recv_ns")).as_py(), pc.min_max(table.column("seq")).as_py()
    if recv["min"] // HOUR_NS == recv["max"] // HOUR_NS:
        hours = ((recv["min"] // HOUR_NS * HOUR_NS, table.num_rows),)
    else:
        counts = pc.value_counts(pc.multiply(pc.divide(table.column("recv_ns"), HOUR_NS), HOUR_NS)).to_pylist()
        hours = tuple(sorted((c["values"], c["counts"]) for c in counts))
    return Entry(relative, channel, coin, date, table.num_rows, size, recv["min"], recv["max"], seq["min"], seq["max"], session, hours, schema_id(table.schema))


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
    first, last = bounds["recv_ns"]
    hours = ((first // HOUR_NS * HOUR_NS, meta.num_rows),) if meta.num_rows and first // HOUR_NS == last // HOUR_NS else ()
    return Entry(relative, channel, coin, date, meta.num_rows, size, first, last, *bounds["seq"], session, hours, schema_id(meta.schema.to_arrow_schema()))


def added_line(entry: Entry, t: int) -> bytes:
    """An ``add`` line; ``t`` (ns, the writer's clock) orders it against a ``remove`` of the same path."""
    return orjson.dumps({"op": "add", "t": t, **entry.as_dict()}) + b"\n"


def removed_line(relative: str, t: int) -> bytes:
    return orjson.dumps({"op": "remove", "t": t, "path": relative, "date": relative.split("/")[2].split("=", 1)[1]}) + b"\n"


def date_of(relative: str) -> str:
    return unescape(relative.split("/")[2].split("=", 1)[1])


def log_name(hour: str, writer: str) -> str:
    """A writer's file of one wall-clock hour (``YYYYMMDDHH``): the fold takes files of past hours."""
    return f"{hour}-{writer}.jsonl"


class Folding:
    """A date's entries, folded from its folded file's rows and its writers' lines in any order: for
    each path the latest line (by its ``t``) says whether the part is there. A path comes back
    after a removal only when an import retried after its cleanup writes the same part again."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, Entry | None]] = {}  # path -> (t, entry, or None if removed)

    def _take(self, path: str, t: int, entry: Entry | None) -> None:
        current = self.latest.get(path)
        if current is None or t > current[0] or (t == current[0] and entry is None):
            self.latest[path] = (t, entry)

    def rows(self, table: pa.Table) -> None:
        for row in table.to_pylist():
            self._take(row["path"], -1, Entry.of(row))  # a folded file: older than every line

    def lines(self, text: bytes) -> None:
        for line in text.splitlines():
            if not line.endswith(b"}"):
                continue  # cut short by a crash: its part is caught up from the tree
            op = orjson.loads(line)
            if op.get("op") == "add":
                self._take(op["path"], op.get("t") or 0, Entry.of(op))
            elif op.get("op") == "remove":
                self._take(op["path"], op.get("t") or 0, None)

    def result(self) -> dict[str, Entry]:
        return {path: entry for path, (_, entry) in self.latest.items() if entry is not None}

    def table(self) -> pa.Table:
        import pyarrow as pa

        return pa.Table.from_pylist([e.as_dict() for _, e in sorted(self.result().items())], schema=schema())


__all__ = [
    "CATALOG_DIR", "COMPLETE", "FIELDS", "FOLDED", "Entry", "Folding", "added_line", "date_of", "entry_of_footer",
    "entry_of_table", "log_name", "removed_line", "schema", "schema_id",
]  # fmt: skip
