"""What an archive holds and whether it is whole: ``ls`` (``summarize``) and ``verify``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from recorder.journal import is_locked  # the journal's own lock rule: one place decides "live"
from schemas.layout import (
    ALL,
    EVENTS_CHANNEL,
    JOURNAL_DIR,
    ArchiveFormatError,
    read_metadata,
)

from ..archive import Part, check_root, find_parts, open_part, read_footer, walk_parts
from ..gaps import archive_gaps
from ..storage import Store
from .compaction import compaction_manifests


def all_parts(root: Store) -> list[Part]:
    return find_parts(root, include_special=True)


# --- ls --------------------------------------------------------------------------------------------


@dataclass
class PartitionSummary:
    channel: str
    coin: str
    dates: set[str] = field(default_factory=set)
    parts: int = 0
    rows: int = 0
    bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "coin": self.coin,
            "first_date": min(self.dates),
            "last_date": max(self.dates),
            "days": len(self.dates),
            "parts": self.parts,
            "rows": self.rows,
            "bytes": self.bytes,
            "first_recv_ns": self.first_ns,
            "last_recv_ns": self.last_ns,
        }


def summarize(root: str | os.PathLike[str]) -> dict[str, Any]:
    """What the archive holds per channel and coin (from the catalog, else names and footers: no data
    is read), and its gaps."""
    store = check_root(root)
    by_key: dict[tuple[str, str], PartitionSummary] = {}
    events: list[pa.Table] = []
    cataloged = _cataloged_summaries(store)
    if cataloged is not None:  # the catalog's entries, summed in Arrow: no footer read
        by_key = cataloged
        for part in find_parts(store, channels=[EVENTS_CHANNEL], include_special=True):
            events.append(open_part(part).read(columns=["session", "kind", "detail"]).replace_schema_metadata(None))
    for part in [] if cataloged is not None else all_parts(store):
        summary = by_key.setdefault((part.channel, part.coin), PartitionSummary(part.channel, part.coin))
        summary.dates.add(part.date)
        summary.parts += 1
        summary.bytes += part.size if part.size is not None else os.path.getsize(part.path)
        if part.channel == EVENTS_CHANNEL:
            events.append(open_part(part).read(columns=["session", "kind", "detail"]).replace_schema_metadata(None))
        if part.entry is not None:  # the catalog's: no footer read
            summary.rows += part.entry.rows
            summary.first_ns = min(filter(None, (summary.first_ns, part.name.first_recv_ns)))
            summary.last_ns = max(filter(None, (summary.last_ns, part.entry.last_recv_ns)), default=None)
            continue
        metadata = read_footer(part)
        summary.rows += metadata.num_rows
        last = _footer_max(metadata, "recv_ns")
        summary.first_ns = min(filter(None, (summary.first_ns, part.name.first_recv_ns)))
        summary.last_ns = max(filter(None, (summary.last_ns, last)), default=None)
    gaps = []
    if events:
        event_rows = pa.concat_tables(events)  # noqa: F841 - read by DuckDB's replacement scan below
        gaps = duckdb.sql(
            "select session, kind, count(*) from event_rows "
            "where kind in ('disconnect', 'stall', 'connect_failed', 'malformed', 'server_error', 'writer_lagging') "
            "and not (kind = 'disconnect' and coalesce(detail, '') like '%\"stopping\":true%') group by 1, 2 order by 1, 2"
        ).fetchall()
    holes: dict[tuple[str, str], int] = {}
    for gap in archive_gaps(store):
        key = (gap.channel, gap.coin or ALL)
        holes[key] = holes.get(key, 0) + 1
    return {
        "root": store.url,
        "partitions": [
            {**s.as_dict(), "gaps": holes.get(key, 0), "verdict": _verdict(key[0], holes.get(key, 0))} for key, s in sorted(by_key.items())
        ],
        "gaps": [{"session": s, "kind": k, "count": n} for s, k, n in gaps],
        "journals": journal_state(store),
    }


def _cataloged_summaries(store: Store) -> dict[tuple[str, str], PartitionSummary] | None:
    from ..archive import planned
    from ..catalog import catalog_dates, date_table

    if planned(store, dates=()) is None:
        return None
    tables = [date_table(store, date) for date in catalog_dates(store)]
    out: dict[tuple[str, str], PartitionSummary] = {}
    if not tables:
        return out
    grouped = pa.concat_tables(tables).group_by(["channel", "coin"]).aggregate([
        ("path", "count"), ("rows", "sum"), ("bytes", "sum"), ("first_recv_ns", "min"), ("last_recv_ns", "max"), ("date", "distinct"),
    ])  # fmt: skip
    for row in grouped.to_pylist():
        out[(row["channel"], row["coin"])] = PartitionSummary(
            row["channel"], row["coin"], set(row["date_distinct"]), row["path_count"], row["rows_sum"], row["bytes_sum"], row["first_recv_ns_min"], row["last_recv_ns_max"],
        )
    return out


def _verdict(channel: str, gaps: int) -> str:
    if channel.startswith("_"):
        return "-"
    return "complete" if not gaps else f"{gaps} gap{'s' if gaps > 1 else ''}"


def _footer_max(metadata: pq.FileMetaData, column: str) -> int | None:
    names = metadata.schema.to_arrow_schema().names
    if column not in names:
        return None
    index = names.index(column)
    best = None
    for g in range(metadata.num_row_groups):
        stats = metadata.row_group(g).column(index).statistics
        if stats is not None and stats.has_min_max:
            best = stats.max if best is None else max(best, stats.max)
    return best


def journal_state(store: Store) -> list[dict[str, Any]]:
    """The journals left in a local archive (the journal is always local: never synced)."""
    if not store.local:
        return []
    from_journal = Path(store.root) / JOURNAL_DIR
    out = []
    if from_journal.is_dir():
        for session_dir in sorted(p for p in from_journal.iterdir() if p.is_dir()):
            segments = list(session_dir.glob("seg-*.wal"))
            if not segments:
                continue
            live = is_locked(session_dir)
            out.append({"session": session_dir.name, "segments": len(segments), "bytes": sum(s.stat().st_size for s in segments), "live": live})
    return out


# --- verify ----------------------------------------------------------------------------------------


@dataclass
class Verification:
    parts: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(root: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None) -> Verification:
    """Read every part whole; check metadata, versions, duplicates and the journal."""
    store = check_root(root)
    result = Verification()
    parts = walk_parts(store)  # the tree, not the catalog: verify checks the catalog against it
    seen_keys: list[pa.Table] = []
    for i, part in enumerate(parts):
        if progress:
            progress(i + 1, len(parts))
        try:
            parquet = pq.ParquetFile(part.path if store.local else store.open(part.path))
            found = read_metadata(parquet.schema_arrow.metadata, str(part))
            table = parquet.read()
        except ArchiveFormatError as exc:
            result.problems.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - any unreadable part is a finding, not a crash
            result.problems.append(f"{part}: unreadable ({str(exc).splitlines()[0]}); move it aside and re-import from its journal or source")
            continue
        if found.get("session") != part.name.session and not found.get("session", "").startswith("compact"):
            result.notes.append(f"{part}: metadata session {found.get('session')!r} differs from its name")
        result.parts += 1
        result.rows += table.num_rows
        seen_keys.append(table.select(["session", "seq"]))
    if seen_keys:
        keys = pa.concat_tables(seen_keys)  # noqa: F841 - read by DuckDB's replacement scan below
        dupes = duckdb.sql("select session, seq, count(*) as n from keys group by 1, 2 having n > 1 order by 1, 2 limit 5").fetchall()
        if dupes:
            total = duckdb.sql("select count(*) from (select session, seq from keys group by 1, 2 having count(*) > 1)").fetchall()[0][0]
            result.problems.append(f"{total} (session, seq) keys appear more than once, e.g. {dupes[0][0]}/{dupes[0][1]}: run `hlarchive compact` to finish an interrupted compaction")
    for entry in journal_state(store):
        if entry["live"]:
            result.notes.append(f"session {entry['session']} is being recorded now ({entry['segments']} journal segments)")
        else:
            result.problems.append(f"session {entry['session']} left a journal ({entry['bytes']:,} bytes not in parts): run `hlarchive recover {store.url}`")
    for manifest in compaction_manifests(store):
        result.problems.append(f"an interrupted compaction ({manifest.rsplit('/', 1)[-1]}): run `hlarchive compact {store.url}` to finish it")
    result.problems.extend(catalog_problems(store))
    stale = list(Path(store.root).glob("channel=*/coin=*/date=*/.part-*.tmp")) if store.local else []
    if stale:
        result.notes.append(f"{len(stale)} temporary files from interrupted writes (never visible as parts; safe to delete)")
    return result


def catalog_problems(store: Store) -> list[str]:
    """Where the catalog and the tree disagree (the tree is the truth): one line each way."""
    from ..catalog import differences, is_complete

    if not is_complete(store):
        return []
    missing, gone = differences(store, walk_parts(store))
    problems = []
    if missing:
        problems.append(f"{len(missing)} part(s) the catalog does not list, e.g. {missing[0].path}: run `hlarchive catalog {store.url} --rebuild`")
    if gone:
        problems.append(f"{len(gone)} catalog entr(ies) whose part is gone, e.g. {gone[0]}: run `hlarchive catalog {store.url} --rebuild`")
    return problems
