"""Keeping an archive healthy: list it, verify it, compact small parts.

Compaction writes the merged part first (temporary name, fsync, rename) and only then deletes the
parts it replaces, with a manifest under ``_compact/`` recording the swap: if it is interrupted,
the next ``compact`` (or ``verify``) finishes or undoes it, so no row is lost or kept twice.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from recorder.journal import is_locked  # the journal's own lock rule: one place decides "live"
from schemas import __version__ as HLARCHIVE_VERSION
from schemas.layout import (
    EVENTS_CHANNEL,
    JOURNAL_DIR,
    ArchiveFormatError,
    PartName,
    parquet_options,
    part_metadata,
    read_metadata,
)

from .archive import Part, check_root, find_parts

COMPACT_DIR = "_compact"


def all_parts(root: Path) -> list[Part]:
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
    """What the archive holds per channel and coin (from names and footers: no data is read), and its gaps."""
    root = check_root(root)
    by_key: dict[tuple[str, str], PartitionSummary] = {}
    for part in all_parts(root):
        summary = by_key.setdefault((part.channel, part.coin), PartitionSummary(part.channel, part.coin))
        metadata = pq.read_metadata(part.path)
        summary.dates.add(part.date)
        summary.parts += 1
        summary.rows += metadata.num_rows
        summary.bytes += part.path.stat().st_size
        last = _footer_max(metadata, "recv_ns")
        summary.first_ns = min(filter(None, (summary.first_ns, part.name.first_recv_ns)))
        summary.last_ns = max(filter(None, (summary.last_ns, last)), default=None)
    gaps = []
    events_glob = (root / f"channel={EVENTS_CHANNEL}" / "*" / "*" / "*.parquet").as_posix()
    if (EVENTS_CHANNEL, "_all") in by_key:
        gaps = duckdb.sql(
            f"select session, kind, count(*) from read_parquet('{events_glob}') "
            "where kind in ('disconnect', 'stall', 'connect_failed', 'malformed', 'server_error', 'writer_lagging') "
            "and not (kind = 'disconnect' and coalesce(detail, '') like '%\"stopping\":true%') group by 1, 2 order by 1, 2"
        ).fetchall()
    return {
        "root": str(root),
        "partitions": [s.as_dict() for _, s in sorted(by_key.items())],
        "gaps": [{"session": s, "kind": k, "count": n} for s, k, n in gaps],
        "journals": journal_state(root),
    }


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


def journal_state(root: Path) -> list[dict[str, Any]]:
    from_journal = root / JOURNAL_DIR
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
    root = check_root(root)
    result = Verification()
    parts = all_parts(root)
    seen_keys: list[pa.Table] = []
    for i, part in enumerate(parts):
        if progress:
            progress(i + 1, len(parts))
        try:
            parquet = pq.ParquetFile(part.path)
            found = read_metadata(parquet.schema_arrow.metadata, str(part.path))
            table = parquet.read()
        except ArchiveFormatError as exc:
            result.problems.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - any unreadable part is a finding, not a crash
            result.problems.append(f"{part.path}: unreadable ({str(exc).splitlines()[0]}); move it aside and re-import from its journal or source")
            continue
        if found.get("session") != part.name.session and not found.get("session", "").startswith("compact"):
            result.notes.append(f"{part.path}: metadata session {found.get('session')!r} differs from its name")
        result.parts += 1
        result.rows += table.num_rows
        seen_keys.append(table.select(["session", "seq"]))
    if seen_keys:
        keys = pa.concat_tables(seen_keys)  # noqa: F841 - read by DuckDB's replacement scan below
        dupes = duckdb.sql("select session, seq, count(*) as n from keys group by 1, 2 having n > 1 order by 1, 2 limit 5").fetchall()
        if dupes:
            total = duckdb.sql("select count(*) from (select session, seq from keys group by 1, 2 having count(*) > 1)").fetchall()[0][0]
            result.problems.append(f"{total} (session, seq) keys appear more than once, e.g. {dupes[0][0]}/{dupes[0][1]}: run `hlarchive compact` to finish an interrupted compaction")
    for entry in journal_state(root):
        if entry["live"]:
            result.notes.append(f"session {entry['session']} is being recorded now ({entry['segments']} journal segments)")
        else:
            result.problems.append(f"session {entry['session']} left a journal ({entry['bytes']:,} bytes not in parts): run `hlarchive recover {root}`")
    for manifest in (root / COMPACT_DIR).glob("*.json") if (root / COMPACT_DIR).is_dir() else []:
        result.problems.append(f"an interrupted compaction ({manifest.name}): run `hlarchive compact {root}` to finish it")
    stale = [p for p in root.glob("channel=*/coin=*/date=*/.part-*.tmp")]
    if stale:
        result.notes.append(f"{len(stale)} temporary files from interrupted writes (never visible as parts; safe to delete)")
    return result


# --- compact ---------------------------------------------------------------------------------------


@dataclass
class CompactionReport:
    partitions: int = 0
    parts_before: int = 0
    parts_after: int = 0
    rows: int = 0
    finished_interrupted: int = 0


def compact(
    root: str | os.PathLike[str],
    *,
    channels: list[str] | None = None,
    dates: list[str] | None = None,
    target_rows: int = 1_000_000,
    progress: Callable[[int, int], None] | None = None,
    _after_write: Callable[[], None] | None = None,
) -> CompactionReport:
    """Merge the small parts of each partition into parts of up to ``target_rows`` rows, in order."""
    root = check_root(root)
    report = CompactionReport()
    report.finished_interrupted = finish_interrupted(root)
    groups: dict[Path, list[Part]] = defaultdict(list)
    for part in find_parts(root, channels=channels, include_special=True, dates=dates):
        groups[part.path.parent].append(part)
    todo = [(d, ps) for d, ps in sorted(groups.items()) if len(ps) > 1]
    for i, (directory, parts) in enumerate(todo):
        if progress:
            progress(i + 1, len(todo))
        report.partitions += 1
        report.parts_before += len(parts)
        report.parts_after += _compact_partition(root, directory, parts, target_rows, report, _after_write)
    return report


def _compact_partition(root: Path, directory: Path, parts: list[Part], target_rows: int, report: CompactionReport, after_write: Callable[[], None] | None) -> int:
    tables = []
    for part in parts:
        parquet = pq.ParquetFile(part.path)
        read_metadata(parquet.schema_arrow.metadata, str(part.path))
        tables.append(parquet.read().replace_schema_metadata(None))
    table = pa.concat_tables(tables, promote_options="default").sort_by([("recv_ns", "ascending"), ("session", "ascending"), ("seq", "ascending")])
    report.rows += table.num_rows
    compaction = f"compact{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}_{secrets.token_hex(3)}"
    from_meta = read_metadata(pq.read_schema(parts[0].path).metadata, str(parts[0].path))
    streams = set()
    for part in parts:
        streams.update(orjson.loads(read_metadata(pq.read_schema(part.path).metadata, str(part.path)).get("subscriptions", "[]")))
    new_parts = []
    for n, offset in enumerate(range(0, table.num_rows, target_rows), start=1):
        chunk = table.slice(offset, target_rows)
        name = PartName(chunk.column("recv_ns")[0].as_py(), compaction, n)
        metadata = part_metadata(
            session=compaction,
            channel=from_meta.get("channel", parts[0].channel),
            subscriptions=orjson.dumps(sorted(streams)).decode(),
            source_url=from_meta.get("source_url", ""),
            hlarchive_version=HLARCHIVE_VERSION,
        )
        new_parts.append((name, chunk.replace_schema_metadata(metadata)))
    manifest_dir = root / COMPACT_DIR
    manifest_dir.mkdir(exist_ok=True)
    manifest = manifest_dir / f"{compaction}.json"
    _write_atomic(manifest, orjson.dumps({
        "directory": directory.relative_to(root).as_posix(),
        "old": [p.path.name for p in parts],
        "new": [str(name) for name, _ in new_parts],
    }))
    for name, chunk in new_parts:
        _write_part(directory, name, chunk)
    if after_write is not None:
        after_write()  # tests interrupt here: new parts written, old ones not yet removed
    for part in parts:
        part.path.unlink()
    _fsync_dir(directory)
    manifest.unlink()
    return len(new_parts)


def _write_part(directory: Path, name: PartName, table: pa.Table) -> None:
    temporary, final = directory / name.temporary, directory / str(name)
    with open(temporary, "wb") as sink:
        pq.write_table(table, sink, **parquet_options(table.schema, row_group_rows=65_536))
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(temporary, final)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as sink:
        sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(temporary, path)


def finish_interrupted(root: Path) -> int:
    """Finish (or undo) compactions a crash interrupted; returns how many."""
    manifest_dir = root / COMPACT_DIR
    if not manifest_dir.is_dir():
        return 0
    finished = 0
    for manifest in sorted(manifest_dir.glob("*.json")):
        plan = orjson.loads(manifest.read_bytes())
        directory = root / plan["directory"]
        if all((directory / name).exists() for name in plan["new"]):
            for name in plan["old"]:
                (directory / name).unlink(missing_ok=True)  # the new parts hold every row: finish the swap
        else:
            for name in plan["new"]:
                (directory / name).unlink(missing_ok=True)  # not all written: the old parts stay, undo
        manifest.unlink()
        finished += 1
    return finished
