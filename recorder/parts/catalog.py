"""The writers' side of the catalog (format: ``schemas.catalog``), on a local archive: each
committed part's entry appended to this writer's own file of the hour, right after the part's
rename; and, at a writer's start, the recent dates caught up with the tree (a crash between a part
and its entry)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import orjson

from schemas.catalog import (
    CATALOG_DIR,
    COMPLETE,
    FOLDED,
    Entry,
    Folding,
    added_line,
    date_of,
    entry_of_footer,
    log_name,
    removed_line,
)
from schemas.layout import escape, parse_part_name, utc_date


class CatalogLog:
    """One writer's appends: a line per part added or removed, written at once (no buffering)."""

    def __init__(self, root: str | os.PathLike[str], writer: str) -> None:
        self.root = Path(root)
        self.writer = f"{writer}-{os.getpid()}"
        self._lock = threading.Lock()

    def added(self, entries: Iterable[Entry]) -> None:
        now = time.time_ns()
        self._append([(e.date, added_line(e, now)) for e in entries])

    def removed(self, relatives: Iterable[str]) -> None:
        now = time.time_ns()
        self._append([(date_of(r), removed_line(r, now)) for r in relatives])

    def _append(self, lines: list[tuple[str, bytes]]) -> None:
        if not lines:
            return
        name = log_name(time.strftime("%Y%m%d%H", time.gmtime()), self.writer)
        by_date: dict[str, list[bytes]] = {}
        for date, line in lines:
            by_date.setdefault(date, []).append(line)
        with self._lock:
            for date, texts in by_date.items():
                directory = self.root / CATALOG_DIR / f"date={escape(date)}"
                directory.mkdir(parents=True, exist_ok=True)
                with open(directory / name, "ab") as handle:
                    handle.write(b"".join(texts))


def start_catalog(root: str | os.PathLike[str]) -> None:
    """An archive with no part yet starts with its catalog complete (every part it gets is listed)."""
    root = Path(root)
    if (root / CATALOG_DIR / COMPLETE).exists():
        return
    if root.is_dir() and any(p.name.startswith("channel=") for p in root.iterdir()):
        return  # parts an older version wrote: the first reader builds the catalog from the tree
    (root / CATALOG_DIR).mkdir(parents=True, exist_ok=True)
    (root / CATALOG_DIR / COMPLETE).write_bytes(orjson.dumps({"format": 1, "since_ns": time.time_ns()}))


def catch_up(root: str | os.PathLike[str], *, days: int = 2, say: bool = True) -> int:
    """Bring the most recent ``days`` dates of the catalog level with the tree; one line if anything
    was missing. Returns the entries fixed."""
    root = Path(root)
    catalog = root / CATALOG_DIR
    if not (catalog / COMPLETE).exists():
        return 0
    import pyarrow.parquet as pq  # here, not at import: the receiving process loads no Arrow
    known = sorted({p.name[5:].removesuffix(FOLDED) for p in catalog.iterdir() if p.name.startswith("date=")})
    dates = sorted({*known[-days:], utc_date(time.time_ns())})
    listed: dict[str, Entry] = {}
    for date in dates:
        folding = Folding()
        folded = catalog / f"date={escape(date)}{FOLDED}"
        if folded.exists():
            folding.rows(pq.read_table(folded))
        directory = catalog / f"date={escape(date)}"
        if directory.is_dir():
            for log in sorted(directory.glob("*.jsonl")):
                folding.lines(log.read_bytes())
        listed.update(folding.result())
    tree = {}
    for date in dates:
        for path in root.glob(f"channel=*/coin=*/date={escape(date)}/part-*.parquet"):
            if parse_part_name(path.name) is not None:
                relative = path.relative_to(root).as_posix()
                tree[relative] = path
    missing = [entry_of_footer(r, pq.read_metadata(p), p.stat().st_size) for r, p in sorted(tree.items()) if r not in listed]
    gone = sorted(set(listed) - set(tree))
    if missing or gone:
        log = CatalogLog(root, "catch-up")
        log.added(missing)
        log.removed(gone)
        if say:
            print(f"catalog: caught up with the tree ({len(missing)} parts added, {len(gone)} entries of removed parts dropped)", file=sys.stderr)
    return len(missing) + len(gone)


__all__ = ["CatalogLog", "catch_up", "start_catalog"]
