"""``hlarchive sync SRC DST``: copy committed parts to another store (an object store, another disk).

Only committed parts are copied (never ``_journal/``, never temporaries), each verified (size, and
a footer that reads with the source's row count) before it counts; a part already at DST and
verified is skipped, so a second run copies nothing and an interrupted one continues. A copy is
atomic (a renamed temporary on disk, a single upload on an object store). ``delete_source`` removes
a source part only once its copy is verified.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.catalog import Entry, entry_of_footer
from schemas.layout import ArchiveError

from ..archive import Part, check_root, find_parts, read_footer
from ..catalog import mark_complete, write_ops
from ..storage import Store, open_store, storage_error

COPY_CHUNK = 8 << 20
CATALOG_BATCH = 500  # parts copied between two writes of their catalog entries


@dataclass
class SyncReport:
    parts: int = 0
    copied: int = 0
    skipped: int = 0  # already at DST, verified
    deleted: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0


def _rows_at(store: Store, path: str) -> int | None:
    """The row count of the part at ``path`` by its footer, or None when it is missing or unreadable."""
    try:
        with store.open(path) as handle:
            return pq.read_metadata(handle).num_rows
    except (OSError, pa.ArrowInvalid, ArchiveError):
        return None


def copy_verified(source: Store, path: str, size: int, rows: int, target: Store, target_path: str) -> bool:
    """Copy one part unless an equal copy is there; True if it copied. Raises unless the copy verifies."""
    info = target.info(target_path)
    if info.type == pafs.FileType.File and info.size == size and _rows_at(target, target_path) == rows:
        return False

    def stream(sink: object) -> None:
        with source.open(path) as handle:
            while chunk := handle.read(COPY_CHUNK):
                sink.write(chunk)  # type: ignore[attr-defined]

    target.write(target_path, stream)
    copied = target.info(target_path)
    if copied.size != size or _rows_at(target, target_path) != rows:
        raise ArchiveError(f"the copy of {source.where(path)} at {target.where(target_path)} did not verify (size or footer differ): run sync again")
    return True


def sync(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    delete_source: bool = False,
    progress: Callable[[SyncReport, int], None] | None = None,
) -> SyncReport:
    """Copy every committed part of ``src`` that ``dst`` lacks; see the module's docstring."""
    began = time.monotonic()
    source = check_root(src)
    target = open_store(dst)
    if target.local:
        os.makedirs(target.root, exist_ok=True)
    else:
        _check_reachable(target)
    parts = find_parts(source, include_special=True)
    report = SyncReport(parts=len(parts))
    if not any(i.base_name.startswith("channel=") for i in target.entries(target.root)):
        mark_complete(target)  # a new copy: its catalog lists every part synced into it
    copied: list[Entry] = []
    removed: list[str] = []
    for part in parts:
        size = part.size if part.size is not None else os.path.getsize(part.path)
        footer = read_footer(part)
        relative = part.path[len(source.root.rstrip("/")) + 1 :]
        if copy_verified(source, part.path, size, footer.num_rows, target, target.path(relative)):
            report.copied += 1
            report.bytes_copied += size
        else:
            report.skipped += 1
        copied.append(entry_of_footer(relative, footer, size))  # skipped ones too: re-listing is harmless
        if delete_source:
            source.delete(part.path)
            removed.append(relative)
            report.deleted += 1
        if len(copied) >= CATALOG_BATCH:
            _catalog(source, target, copied, removed)
        if progress:
            progress(report, len(parts))
    _catalog(source, target, copied, removed)
    report.seconds = time.monotonic() - began
    return report


def _catalog(source: Store, target: Store, copied: list[Entry], removed: list[str]) -> None:
    """The copies' entries in the target's catalog, the removed sources' in the source's: after the
    parts themselves, so no entry names a part that is not there."""
    write_ops(target, "sync", added=copied)
    write_ops(source, "sync", removed=removed)
    copied.clear()
    removed.clear()


def _check_reachable(store: Store) -> None:
    """Fail in one line before copying anything: no credentials, no bucket, no endpoint."""
    bucket = store.root.split("/", 1)[0]
    try:
        found = store.fs.get_file_info(bucket)
        store.fs.get_file_info(pafs.FileSelector(store.root, allow_not_found=True))
    except OSError as exc:
        raise storage_error(exc, store.url) from None
    if found.type == pafs.FileType.NotFound:
        raise ArchiveError(f"{store.url}: the bucket does not exist ({bucket}): create it, or check the URL")


__all__ = ["Part", "SyncReport", "copy_verified", "sync"]
