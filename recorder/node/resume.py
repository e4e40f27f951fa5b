"""Where an earlier run stopped: the node rows already in the archive, found by their ``seq``.

A node row's ``seq`` says which block, stream and event it is (``schemas.l4.node.node_seq``), and
every run writes the same ``seq`` for the same event. So the follower and the importer skip an event
whose ``seq`` is in a committed part of any node session: a restart after ``kill -9``, a second
import of the same files, or an import of files a follower already read add nothing.

``cursor.json`` (under ``_node/``) names the newest block every partition had committed at the last
full flush; below it nothing needs checking, above it the parts' ``seq`` columns are read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pyarrow.parquet as pq

from schemas.l4.node import L4_DIFFS, L4_SNAPSHOTS, L4_STATUSES, NODE_FILLS, first_seq
from schemas.layout import EVENTS_CHANNEL, parse_part_name

NODE_CHANNELS = (L4_STATUSES, L4_DIFFS, NODE_FILLS, L4_SNAPSHOTS, EVENTS_CHANNEL)
SESSION_PREFIX = "node_"
COMPACTED_PREFIX = "compact"
CURSOR = Path("_node") / "cursor.json"


@dataclass(frozen=True)
class _Part:
    path: Path
    low: int
    high: int


class Recorded:
    """The ``seq`` of every node row committed at or above a height, loaded a window at a time."""

    WINDOW = 1 << 14  # blocks whose seqs are loaded together

    def __init__(self, root: Path, above_height: int | None = None) -> None:
        self.root = root
        self._at_least = None if above_height is None else first_seq(above_height)
        self.parts = _node_parts(root, self._at_least)
        self._loaded: tuple[int, int] | None = None
        self._seqs: set[int] = set()

    def __contains__(self, seq: int) -> bool:
        if not self.parts:
            return False
        loaded = self._loaded
        if loaded is None or not loaded[0] <= seq < loaded[1]:
            self._load(seq)
        return seq in self._seqs

    def _load(self, seq: int) -> None:
        low = seq - seq % first_seq(self.WINDOW)
        high = low + first_seq(self.WINDOW)
        self._loaded, self._seqs = (low, high), self.between(low, high - 1)

    def between(self, low: int, high: int) -> set[int]:
        """Every committed seq in ``[low, high]`` (a bulk write leaves them out at once)."""

        def read() -> set[int]:
            seqs: set[int] = set()
            for part in self.parts:
                if part.high >= low and part.low <= high:
                    column = pq.read_table(part.path, columns=["seq"]).column("seq").to_pylist()
                    seqs.update(s for s in column if low <= s <= high)
            return seqs

        return _relisted(read, self._relist)

    def _relist(self) -> None:
        """A part compaction behind the follower merged away: its rows are in the merged part."""
        self.parts = _node_parts(self.root, self._at_least)

    def newest_height(self) -> int | None:
        """The highest block any committed node row holds."""
        from schemas.l4.node import seq_height

        return max((seq_height(p.high) for p in self.parts), default=None)


_RELISTS = 5  # tries while a compaction swaps parts under a listing or a read
T = TypeVar("T")


def _relisted(read: Callable[[], T], relist: Callable[[], None] | None = None) -> T:
    """``read()``, again (after ``relist()``) where a part it went to has just been merged away."""
    for attempt in range(_RELISTS):
        try:
            return read()
        except FileNotFoundError:
            if attempt == _RELISTS - 1:
                raise
            if relist is not None:
                relist()
    raise AssertionError("unreachable")


def _node_parts(root: Path, at_least: int | None) -> list[_Part]:
    """The node rows' parts with a seq at or above ``at_least``. A part compaction removed between
    the listing and its footer means the merged part may have been missed: list again."""
    return _relisted(lambda: _list_node_parts(root, at_least))


def _list_node_parts(root: Path, at_least: int | None) -> list[_Part]:
    found = []
    for channel in NODE_CHANNELS:
        for path in root.glob(f"channel={channel}/coin=*/date=*/part-*.parquet"):
            name = parse_part_name(path.name)
            # a node session's parts, or parts `hlarchive compact` merged (their rows keep their seq)
            if name is None or not name.session.startswith((SESSION_PREFIX, COMPACTED_PREFIX)):
                continue
            low, high = _seq_range(path)
            if high is not None and (at_least is None or high >= at_least):
                found.append(_Part(path, low, high))
    return found


def _seq_range(path: Path) -> tuple[int, int | None]:
    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    if "seq" not in names:
        return 0, None
    index = names.index("seq")
    lows, highs = [], []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            column = pq.read_table(path, columns=["seq"]).column("seq")
            values = column.to_pylist()
            return (min(values), max(values)) if values else (0, None)
        lows.append(stats.min)
        highs.append(stats.max)
    return (min(lows), max(highs)) if highs else (0, None)


def read_cursor(root: Path) -> int | None:
    """The height every partition had committed at the last full flush (None: no run wrote one)."""
    try:
        return int(orjson.loads((root / CURSOR).read_bytes())["height"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cursor(root: Path, height: int, extra: dict[str, Any] | None = None) -> None:
    path = root / CURSOR
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps({"height": height, **(extra or {})}))
    os.replace(temporary, path)
