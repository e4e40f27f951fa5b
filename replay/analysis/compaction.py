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
from schemas.layout import PartName, parquet_options, part_metadata, read_metadata

from ..archive import Part, check_root, find_parts, open_part
from ..storage import Store

COMPACT_DIR = "_compact"


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
    jobs: int = 1,
    _after_write: Callable[[], None] | None = None,
) -> CompactionReport:
    """Merge the small parts of each partition into parts of up to ``target_rows`` rows, in order;
    ``jobs`` partitions at a time (worker processes when more than one)."""
    store = check_root(root)
    report = CompactionReport()
    report.finished_interrupted = finish_interrupted(store)
    groups: dict[str, list[Part]] = defaultdict(list)
    for part in find_parts(store, channels=channels, include_special=True, dates=dates):
        groups[part.directory].append(part)
    todo = [(d, ps) for d, ps in sorted(groups.items()) if len(ps) > 1]
    report.partitions = len(todo)
    report.parts_before = sum(len(ps) for _, ps in todo)
    if jobs <= 1 or len(todo) <= 1:
        for i, (directory, parts) in enumerate(todo):
            if progress:
                progress(i + 1, len(todo))
            rows, written = _compact_partition(store, directory, parts, target_rows, _after_write)
            report.rows += rows
            report.parts_after += written
        return report
    with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_compact_partition, store, directory, parts, target_rows, None) for directory, parts in todo]
        for done, future in enumerate(as_completed(futures), start=1):
            rows, written = future.result()
            report.rows += rows
            report.parts_after += written
            if progress:
                progress(done, len(todo))
    return report


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
    for name, chunk in new_parts:
        store.write(f"{directory}/{name}", lambda sink, chunk=chunk: pq.write_table(chunk, sink, **parquet_options(chunk.schema, row_group_rows=65_536)))
    if after_write is not None:
        after_write()  # tests interrupt here: new parts written, old ones not yet removed
    for part in parts:
        store.delete(part.path)
    store.delete(manifest)
    return table.num_rows, len(new_parts)


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
            for name in plan["old"]:
                root.delete(f"{directory}/{name}")  # the new parts hold every row: finish the swap
        else:
            for name in plan["new"]:
                root.delete(f"{directory}/{name}")  # not all written: the old parts stay, undo
        root.delete(manifest)
        finished += 1
    return finished
