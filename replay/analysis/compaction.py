"""``compact``: each partition's small parts merged into large ones, partitions in parallel.

Compaction writes the merged part first (temporary name, fsync, rename) and only then deletes the
parts it replaces, with a manifest under ``_compact/`` recording the swap: if it is interrupted,
the next ``compact`` (or ``verify``) finishes or undoes it, so no row is lost or kept twice. A
partition is the unit of work, so ``jobs`` worker processes compact ``jobs`` partitions at once.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from schemas import __version__ as HLARCHIVE_VERSION
from schemas.catalog import entry_of_footer, entry_of_table
from schemas.layout import PartName, parquet_options, part_metadata, read_metadata

from ..archive import Part, check_root, find_parts, open_part
from ..catalog import write_ops
from ..storage import Store

COMPACT_DIR = "_compact"


@dataclass
class CompactionReport:
    partitions: int = 0
    parts_before: int = 0
    parts_after: int = 0
    rows: int = 0
    finished_interrupted: int = 0


SPANS_NS = {"hour": 3_600_000_000_000, "day": 86_400_000_000_000}


def compact(
    root: str | os.PathLike[str],
    *,
    channels: list[str] | None = None,
    dates: list[str] | None = None,
    target_rows: int = 1_000_000,
    progress: Callable[[int, int], None] | None = None,
    jobs: int = 1,
    into: str = "day",
    span_ns: int | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    _after_write: Callable[[], None] | None = None,
) -> CompactionReport:
    """Merge the small parts of each partition into parts of up to ``target_rows`` rows, in order:
    the parts of each ``into`` span (``hour`` or ``day``, or ``span_ns``; by a part's first receive time), of the
    parts that start in ``[start_ns, end_ns)`` when given; ``jobs`` partitions at a time (worker
    processes when more than one). The catalog records each swap, and the dates touched are folded."""
    store = check_root(root)
    report = CompactionReport()
    report.finished_interrupted = finish_interrupted(store)
    span = span_ns or SPANS_NS[into]
    groups: dict[tuple[str, int], list[Part]] = defaultdict(list)
    for part in find_parts(store, channels=channels, include_special=True, dates=dates, start_ns=start_ns, end_ns=end_ns):
        first = part.name.first_recv_ns
        if (start_ns is not None and first < start_ns) or (end_ns is not None and first >= end_ns):
            continue
        groups[(part.directory, first // span)].append(part)
    todo = [(d, ps) for (d, _), ps in sorted(groups.items()) if len(ps) > 1]
    touched = {p.date for ps in groups.values() for p in ps}
    report.partitions = len(todo)
    report.parts_before = sum(len(ps) for _, ps in todo)
    if jobs <= 1 or len(todo) <= 1:
        for i, (directory, parts) in enumerate(todo):
            if progress:
                progress(i + 1, len(todo))
            rows, written = _compact_partition(store, directory, parts, target_rows, _after_write)
            report.rows += rows
            report.parts_after += written
        _fold(store, touched)
        return report
    with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_compact_partition, store, directory, parts, target_rows, None) for directory, parts in todo]
        for done, future in enumerate(as_completed(futures), start=1):
            rows, written = future.result()
            report.rows += rows
            report.parts_after += written
            if progress:
                progress(done, len(todo))
    _fold(store, touched)
    return report


def _fold(store: Store, dates: set[str]) -> None:
    from ..catalog import fold_date, is_complete

    if is_complete(store):
        for date in sorted(dates):
            fold_date(store, date)


def _compact_partition(store: Store, directory: str, parts: list[Part], target_rows: int, after_write: Callable[[], None] | None) -> tuple[int, int]:
    """One partition's parts swapped for merged ones; ``(rows, parts written)``."""
    tables = []
    streams: set[str] = set()
    from_meta: dict[str, str] = {}
    for part in parts:
        parquet = open_part(part)
        found = read_metadata(parquet.schema_arrow.metadata, str(part))
        from_meta = from_meta or found
        streams.update(orjson.loads(found.get("subscriptions", "[]")))
        tables.append(parquet.read().replace_schema_metadata(None))
    table = pa.concat_tables(tables, promote_options="default").sort_by([("recv_ns", "ascending"), ("session", "ascending"), ("seq", "ascending")])
    compaction = f"compact{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}_{secrets.token_hex(3)}"
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
    manifest = store.path(COMPACT_DIR, f"{compaction}.json")
    store.write(manifest, orjson.dumps({
        "directory": directory[len(store.root) + 1 :],
        "old": [p.file_name for p in parts],
        "new": [str(name) for name, _ in new_parts],
    }))
    added = []
    for name, chunk in new_parts:
        path = f"{directory}/{name}"
        store.write(path, lambda sink, chunk=chunk: pq.write_table(chunk, sink, **parquet_options(chunk.schema, row_group_rows=65_536)))
        added.append(entry_of_table(_relative(store, path), chunk, store.size(path)))
    _kill_point("written")
    if after_write is not None:
        after_write()  # tests interrupt here: new parts written, old ones not yet removed
    write_ops(store, compaction, added=added, removed=[_relative(store, p.path) for p in parts])
    _kill_point("cataloged")
    for i, part in enumerate(parts):
        store.delete(part.path)
        if i == 0:
            _kill_point("deleting")
    store.delete(manifest)
    return table.num_rows, len(new_parts)


def _relative(store: Store, path: str) -> str:
    return path[len(store.root.rstrip("/")) + 1 :]


def _kill_point(where: str) -> None:
    """Tests kill -9 the compaction here (``HLARCHIVE_KILL_COMPACTION=written|cataloged|deleting``)."""
    if os.environ.get("HLARCHIVE_KILL_COMPACTION") == where:
        os.kill(os.getpid(), 9)


def compaction_manifests(store: Store) -> list[str]:
    """The manifests of compactions that have not finished (``verify`` reports them)."""
    return [i.path for i in store.entries(store.path(COMPACT_DIR)) if i.base_name.endswith(".json")]


def finish_interrupted(root: Store) -> int:
    """Finish (or undo) compactions a crash interrupted; returns how many."""
    finished = 0
    for manifest in compaction_manifests(root):
        plan = orjson.loads(root.read_bytes(manifest))
        directory = root.path(plan["directory"])
        if all(root.exists(f"{directory}/{name}") for name in plan["new"]):
            added = []
            for name in plan["new"]:  # the new parts hold every row: finish the swap, the catalog first
                path = f"{directory}/{name}"
                with root.open(path) as handle:
                    added.append(entry_of_footer(_relative(root, path), pq.ParquetFile(handle).metadata, root.size(path)))
            write_ops(root, "compact-finish", added=added, removed=[_relative(root, f"{directory}/{name}") for name in plan["old"]])
            for name in plan["old"]:
                root.delete(f"{directory}/{name}")
        else:
            for name in plan["new"]:
                root.delete(f"{directory}/{name}")  # not all written: the old parts stay, undo
            write_ops(root, "compact-undo", removed=[_relative(root, f"{directory}/{name}") for name in plan["new"]])
        root.delete(manifest)
        finished += 1
    return finished


def main(argv: list[str]) -> None:
    """``python -m replay.analysis.compaction ROOT START_NS END_NS SPAN_NS [CHECKPOINT_MS]``: what a
    recorder runs, in its own low-priority process, behind itself (``record --compact-every``); a
    node follower also has its L4 checkpoints written (``--checkpoint-every``)."""
    root, start_ns, end_ns, span_ns = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    report = compact(root, start_ns=start_ns, end_ns=end_ns, span_ns=span_ns, jobs=1)
    checkpoints = 0
    if len(argv) > 4 and int(argv[4]):  # a node follower's archive: its checkpoints, from the last one on
        from ..l4.checkpoints import write_checkpoints

        checkpoints = write_checkpoints(root, every_ms=int(argv[4]))
    print(orjson.dumps({"partitions": report.partitions, "parts_before": report.parts_before, "parts_after": report.parts_after, "rows": report.rows, "finished_interrupted": report.finished_interrupted, "checkpoints": checkpoints}).decode())


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
